/*
 * Hash tables of a vocab: token text -> id, and BPE merge pair -> rank.
 * Both use open addressing with linear probing and are filled only while
 * the vocab is loaded.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tok_internal.h"

/* FNV-1a over the bytes, 32 bits. Token texts are short (mostly under 16
 * bytes), so a byte loop costs little. */
uint32_t vocab_hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

uint32_t vocab_table_capacity(size_t n)
{
    uint32_t cap = 16;

    /* At most 3/4 full: linear probing stays short (about 2.5 probes
     * for a hit, 8.5 for a miss), and a 150k vocabulary's two tables
     * take half the memory of a table at most half full. */
    while ((uint64_t)cap * 3 < (uint64_t)n * 4)
        cap *= 2;
    return cap;
}

roj_status vocab_index_texts(roj_vocab *v, const char *name)
{
    uint32_t cap = vocab_table_capacity((size_t)v->n_tokens);
    uint32_t mask = cap - 1;
    unsigned bits = 1;

    while (bits < 31 && (1u << bits) <= (uint32_t)v->n_tokens)
        bits++;
    v->text_slots = malloc((size_t)cap * sizeof *v->text_slots);
    if (!v->text_slots)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory for the token "
                         "table (%u slots)", name, cap);
    for (uint32_t i = 0; i < cap; i++)
        v->text_slots[i] = VOCAB_TEXT_EMPTY;
    v->text_cap = cap;
    v->text_id_bits = bits;

    const uint32_t id_mask = (1u << bits) - 1;
    for (roj_token id = 0; id < v->n_tokens; id++) {
        const vocab_token *t = &v->tokens[id];
        const char *s = v->text + t->offset;
        uint32_t h = vocab_hash(s, t->len);
        uint32_t tag = h >> bits;

        for (uint32_t i = h & mask;; i = (i + 1) & mask) {
            uint32_t slot = v->text_slots[i];
            if (slot == VOCAB_TEXT_EMPTY) {
                v->text_slots[i] = (tag << bits) | (uint32_t)id;
                break;
            }
            const roj_token other_id = (roj_token)(slot & id_mask);
            const vocab_token *other = &v->tokens[other_id];
            if (slot >> bits == tag && other->len == t->len &&
                memcmp(v->text + other->offset, s, t->len) == 0)
                return roj_error(ROJ_ERR_FORMAT,
                                 "%s: tokenizer.ggml.tokens has the text "
                                 "'%s' twice, at ids %d and %d; every token "
                                 "text must be unique", name, s, other_id,
                                 id);
        }
    }
    return ROJ_OK;
}

roj_token vocab_lookup(const roj_vocab *v, const char *s, size_t len)
{
    const uint32_t mask = v->text_cap - 1;
    const unsigned bits = v->text_id_bits;
    const uint32_t h = vocab_hash(s, len);
    const uint32_t tag = h >> bits;

    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        uint32_t slot = v->text_slots[i];
        if (slot == VOCAB_TEXT_EMPTY)
            return ROJ_TOKEN_NULL;
        if (slot >> bits != tag)
            continue;
        roj_token id = (roj_token)(slot & ((1u << bits) - 1));
        const vocab_token *t = &v->tokens[id];
        if (t->len == len && memcmp(v->text + t->offset, s, len) == 0)
            return id;
    }
}

static uint32_t merge_slot_index(roj_token left, roj_token right,
                                 uint32_t mask)
{
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    /* Fibonacci hashing: the high bits of the product are well mixed. */
    return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

void vocab_merge_insert(roj_vocab *v, roj_token left, roj_token right,
                        roj_token merged)
{
    uint32_t mask = v->merge_cap - 1;
    for (uint32_t i = merge_slot_index(left, right, mask);;
         i = (i + 1) & mask) {
        uint32_t at = v->merge_slots[i];
        if (at == VOCAB_MERGE_EMPTY) {
            v->merge_slots[i] = v->n_merges;
            v->merges[v->n_merges++] = (vocab_merge){left, right, merged};
            return;
        }
        if (v->merges[at].left == left && v->merges[at].right == right)
            return;
    }
}

bool vocab_merge_find(const roj_vocab *v, roj_token left, roj_token right,
                      int32_t *rank, roj_token *merged)
{
    if (v->merge_cap == 0)
        return false;
    uint32_t mask = v->merge_cap - 1;
    for (uint32_t i = merge_slot_index(left, right, mask);;
         i = (i + 1) & mask) {
        uint32_t at = v->merge_slots[i];
        if (at == VOCAB_MERGE_EMPTY)
            return false;
        const vocab_merge *e = &v->merges[at];
        if (e->left == left && e->right == right) {
            *rank = (int32_t)at;
            *merged = e->merged;
            return true;
        }
    }
}
