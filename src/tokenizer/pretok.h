/* Pre-tokenizer families of byte-level BPE vocabs. */
#ifndef ROJ_TOKENIZER_PRETOK_H
#define ROJ_TOKENIZER_PRETOK_H

#include <stdbool.h>

typedef struct pretok_config {
    const char *id;             /* name of the family in pretok_table.c */
    const char *const *regexes; /* NULL-terminated, applied in order */
    bool ignore_merges;         /* a piece that is a whole token is kept */
    bool add_bos;               /* adds BOS unless the metadata disables it */
    bool no_bos;                /* the family defines no BOS token */
} pretok_config;

/* The family used for a tokenizer.ggml.pre value, or NULL when roj does
 * not support it. */
const pretok_config *pretok_find(const char *name);

#endif
