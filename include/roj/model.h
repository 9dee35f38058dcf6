/*
 * Models: open a GGUF file, read its hyperparameters, run it.
 *
 * Supported architectures: "llama" (LLaMA 2/3, SmolLM/SmolLM2, TinyLlama,
 * Mistral without sliding window) and "qwen2". Tensor types: F32, F16,
 * BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K.
 *
 * Ownership: roj_model_open() returns a model the caller frees with
 * roj_model_free() after every context made from it is freed. Strings
 * returned by getters belong to the model.
 * Threading: a model is immutable once open; several contexts, on several
 * threads, may share one model.
 */
#ifndef ROJ_MODEL_H
#define ROJ_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/roj.h"
#include "roj/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct roj_model roj_model;

/* Opens a model file. The weights stay memory-mapped (shared between
 * processes through the page cache). */
roj_status roj_model_open(const char *path, roj_model **out);
void roj_model_free(roj_model *model);

const roj_vocab *roj_model_vocab(const roj_model *model);

/* general.architecture, e.g. "llama". */
const char *roj_model_arch(const roj_model *model);
/* general.name, or the file name when absent. */
const char *roj_model_name(const roj_model *model);
int32_t roj_model_n_vocab(const roj_model *model);
int32_t roj_model_n_embd(const roj_model *model);
int32_t roj_model_n_layer(const roj_model *model);
int32_t roj_model_n_head(const roj_model *model);
int32_t roj_model_n_head_kv(const roj_model *model);
/* Context length the model was trained with. */
int32_t roj_model_n_ctx_train(const roj_model *model);
uint64_t roj_model_n_params(const roj_model *model);
/* Bytes of tensor data in the file. */
uint64_t roj_model_size(const roj_model *model);

/* A string metadata value of the file (for example
 * "tokenizer.chat_template"), or NULL when absent or not a string. */
const char *roj_model_meta_str(const roj_model *model, const char *key);

/*
 * LoRA adapters (GGUF files in llama.cpp's --lora layout) for a base
 * model. roj_lora_open checks that the file is a LoRA adapter for the
 * base's architecture and that every tensor pair names a weight matrix
 * of the base with matching shapes. Its errors name the file, the tensor
 * and both shapes. The adapter keeps its matrices as float in memory and
 * refers to base, which must outlive it. Free it with roj_lora_free after
 * every context using it has been freed or has cleared its adapters.
 * An open adapter is immutable and may be shared by contexts on several
 * threads.
 */
typedef struct roj_lora roj_lora;

roj_status roj_lora_open(const roj_model *base, const char *path,
                         roj_lora **out);
void roj_lora_free(roj_lora *lora);
/* adapter.lora.alpha of the file (0 when absent). */
float roj_lora_alpha(const roj_lora *lora);
/* Number of base weights the adapter changes. */
size_t roj_lora_n_tensors(const roj_lora *lora);

#ifdef __cplusplus
}
#endif

#endif
