/*
 * Seeded synthetic llama models for tests and benchmarks.
 *
 * synth_write_model() writes an F32 GGUF with seeded random weights. Each
 * tensor has its own splitmix64 stream, seeded with
 * seed ^ fnv1a64(tensor name). Every value is the sum of the four 16-bit
 * lanes of one output, centred and scaled to std 0.02 by one float
 * multiply. Only integer operations and that correctly rounded multiply
 * are involved, so the file is bit-identical on every IEEE-754 machine.
 * Norm weights are 1. The tokenizer.* metadata is copied, in order, from
 * a vocabulary GGUF such as llama.cpp's models/ggml-vocab-*.gguf.
 *
 * With llama.cpp's ggml-vocab-llama-spm.gguf the "tiny" preset gives the
 * file with SHA-256 7d1e1fcedec1e00c89334895c9b77b0b5eac4ba996b5981abac2
 * e161fac6b61d; with ggml-vocab-gpt-2.gguf "smollm2-135m-shape" gives
 * 2b7b79c1c34ccb56c7fcfac33824bc34bec8bd5e416350267a4b49d50a92a608.
 *
 * Threading: the functions keep no state and may run on several threads.
 */
#ifndef ROJ_MODEL_SYNTH_H
#define ROJ_MODEL_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "roj/roj.h"

#define SYNTH_DEFAULT_SEED 0x5EED0135u

typedef struct synth_shape {
    const char *name;       /* general.name becomes "synthetic-<name>" */
    uint32_t n_layer;
    uint32_t n_embd;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t n_ff;
    uint32_t n_ctx;         /* llama.context_length */
    uint32_t n_vocab;       /* 0: take it from the vocabulary file */
    float rope_freq_base;
    float rms_eps;
    bool tied_output;       /* true: no output.weight, token_embd is reused */
    uint64_t seed;
    const char *vocab_path; /* GGUF whose tokenizer.* keys are copied;
                             * NULL: roj's built-in byte-level vocabulary */
} synth_shape;

/* Fills *out with the preset "tiny", "smollm2-135m-shape" or
 * "qwen-0.5b-shape" (vocab_path NULL: the caller sets it). Returns
 * ROJ_ERR_NOT_FOUND, listing the presets, for any other name. */
roj_status synth_preset(const char *name, synth_shape *out);

/* Returns the number of weights the shape has with n_vocab tokens. */
uint64_t synth_param_count(const synth_shape *shape, uint32_t n_vocab);

/* Fills out[0 .. n) with the values of tensor name (ggml memory order,
 * ne[0] fastest) for seed. */
void synth_fill_tensor(float *out, uint64_t n, uint64_t seed,
                       const char *name);

/*
 * Writes the model to path (through path.tmp, renamed when complete).
 * The tensors are held in memory until the file is written, so this needs
 * about 4 bytes per parameter (1.6 GB for qwen-0.5b-shape). Errors name
 * the vocabulary file or the output path.
 */
roj_status synth_write_model(const char *path, const synth_shape *shape);

#endif
