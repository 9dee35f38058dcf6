/*
 * Whole-model quantization: GGUF in, GGUF out, with llama.cpp's choice of
 * tensor types.
 *
 * A file type (ftype) names a default tensor type plus, for the K-quant
 * mixes, rules that give some tensors more bits: attn_v and ffn_down in
 * the layers where use_more_bits() holds, the output projection, and the
 * first attn_v layers of Q4_K_S. A tensor whose row size is not a
 * multiple of its type's block size falls back to a 32-element type
 * (Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0), or to F16 when even that
 * does not fit. Norms and other 1-D tensors are copied unchanged. The
 * rules are those of llama.cpp's llama_tensor_get_type at commit
 * c392e5094 for dense (non-MoE) models. Without an imatrix the output
 * matches that llama-quantize byte for byte; this is checked for F16,
 * Q8_0, Q4_0 and Q4_K_M files of the synthetic tiny and 135M-shape
 * models.
 *
 * Threading: one call uses its own thread pool; separate calls may run at
 * the same time on different files.
 */
#ifndef ROJ_QUANT_QUANTIZE_FILE_H
#define ROJ_QUANT_QUANTIZE_FILE_H

#include <stdbool.h>
#include <stdint.h>

#include "gguf/gguf.h"
#include "roj/roj.h"

/* llama.cpp's llama_ftype numbers, stored as general.file_type. */
enum quant_ftype {
    QUANT_FTYPE_ALL_F32 = 0,
    QUANT_FTYPE_F16 = 1,
    QUANT_FTYPE_Q4_0 = 2,
    QUANT_FTYPE_Q4_1 = 3,
    QUANT_FTYPE_Q8_0 = 7,
    QUANT_FTYPE_Q5_0 = 8,
    QUANT_FTYPE_Q5_1 = 9,
    QUANT_FTYPE_Q2_K = 10,
    QUANT_FTYPE_Q3_K_S = 11,
    QUANT_FTYPE_Q3_K_M = 12,
    QUANT_FTYPE_Q3_K_L = 13,
    QUANT_FTYPE_Q4_K_S = 14,
    QUANT_FTYPE_Q4_K_M = 15,
    QUANT_FTYPE_Q5_K_S = 16,
    QUANT_FTYPE_Q5_K_M = 17,
    QUANT_FTYPE_Q6_K = 18,
    QUANT_FTYPE_BF16 = 32
};

/* Parses a type name as llama-quantize accepts it ("Q4_K_M", "q8_0",
 * "F16"; "Q4_K" and "Q5_K" mean Q4_K_M and Q5_K_M, "Q3_K" means Q3_K_M).
 * Returns ROJ_ERR_INVALID_ARG listing the valid names otherwise. */
roj_status quant_ftype_parse(const char *name, enum quant_ftype *out);

/* Returns "Q4_K_M" and so on, or "unknown". */
const char *quant_ftype_name(enum quant_ftype ftype);

/* Writes the valid type names, separated by ", ", into buf. */
void quant_ftype_list(char *buf, size_t size);

/* Progress of quant_quantize_file_ex(), reported after each tensor. */
typedef struct quant_progress {
    int64_t index;        /* 1-based position in the output file */
    int64_t count;        /* number of tensors */
    const char *name;
    uint32_t from_type;   /* enum roj_type of the input tensor */
    uint32_t to_type;     /* enum roj_type written */
    uint64_t in_bytes;
    uint64_t out_bytes;
    double seconds;       /* time spent on this tensor */
} quant_progress;

typedef struct quant_file_options {
    int n_threads;        /* 1 .. 256 */
    bool pure;            /* every quantizable tensor gets the default type */
    void (*progress)(const quant_progress *progress, void *user);
    void *user;
} quant_file_options;

/*
 * Chooses the output type of every tensor of in for ftype, in file order
 * of in; types must have room for gguf_n_tensors(in) entries. Returns
 * ROJ_ERR_UNSUPPORTED naming the tensor when a fallback would need a type
 * roj cannot write (IQ4_NL, for Q2_K and Q3_K rows not a multiple of 256),
 * or when pure is set and a row does not fit the default type.
 */
roj_status quant_choose_types(const gguf_file *in, enum quant_ftype ftype,
                              bool pure, uint32_t *types);

/*
 * Quantizes in_path into out_path. Keeps every metadata key in order,
 * moves general.quantization_version (2) and general.file_type (ftype) to
 * the end, and writes the tensors in llama-quantize's order: non-layer
 * tensors by name, then blk.N tensors by layer number and name. A tensor
 * that already has its target type is copied byte for byte; any other is
 * converted to float first. opts may be NULL (one thread, no progress).
 */
roj_status quant_quantize_file_ex(const char *in_path, const char *out_path,
                                  enum quant_ftype ftype,
                                  const quant_file_options *opts);

/* Same as quant_quantize_file_ex() with n_threads and no progress. */
roj_status quant_quantize_file(const char *in_path, const char *out_path,
                               enum quant_ftype ftype, int n_threads);

#endif
