/*
 * The corpus of a BPE training run: the training texts split into pieces
 * exactly as roj_tokenize splits its input, counted as distinct pieces
 * with frequencies, then laid out as one symbol slot per byte.
 *
 * Splitting runs on several threads, each on a contiguous range of texts
 * with its own piece table; the tables are then merged in range order.
 * Piece order never affects the merges (counts are exact sums), so the
 * thread count changes only the speed.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/threadpool.h"
#include "tokenizer/tok_internal.h"
#include "train/bpe_train_internal.h"

#define SLOT_EMPTY UINT32_MAX

typedef struct piece_entry {
    size_t off; /* in piece_table.bytes */
    uint32_t len;
    uint32_t hash;
    uint64_t count;
} piece_entry;

/* Distinct pieces with counts; slots (slot_cap, a power of two) hold entry
 * indices, SLOT_EMPTY when unused. */
typedef struct piece_table {
    char *bytes;
    size_t n_bytes;
    size_t cap_bytes;
    piece_entry *entries;
    uint32_t n;
    uint32_t cap;
    uint32_t *slots;
    uint32_t slot_cap;
} piece_table;

static void table_free(piece_table *pt)
{
    free(pt->bytes);
    free(pt->entries);
    free(pt->slots);
    memset(pt, 0, sizeof *pt);
}

static roj_status table_grow_slots(piece_table *pt)
{
    uint32_t cap = pt->slot_cap ? pt->slot_cap * 2 : 4096;
    uint32_t *slots = cap > pt->slot_cap ? malloc((size_t)cap * sizeof *slots)
                                         : NULL;

    if (!slots)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for a table of %u "
                         "distinct pieces", pt->n);
    for (uint32_t i = 0; i < cap; i++)
        slots[i] = SLOT_EMPTY;
    for (uint32_t e = 0; e < pt->n; e++) {
        uint32_t i = pt->entries[e].hash & (cap - 1);
        while (slots[i] != SLOT_EMPTY)
            i = (i + 1) & (cap - 1);
        slots[i] = e;
    }
    free(pt->slots);
    pt->slots = slots;
    pt->slot_cap = cap;
    return ROJ_OK;
}

/* Makes room for one more entry of len bytes. */
static roj_status table_reserve(piece_table *pt, size_t len)
{
    if (2 * ((size_t)pt->n + 1) > pt->slot_cap) {
        roj_status st = table_grow_slots(pt);
        if (st != ROJ_OK)
            return st;
    }
    if (pt->n == pt->cap) {
        uint32_t cap = pt->cap ? pt->cap * 2 : 2048;
        piece_entry *entries = realloc(pt->entries, cap * sizeof *entries);
        if (!entries)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for %u distinct "
                             "pieces", cap);
        pt->entries = entries;
        pt->cap = cap;
    }
    if (pt->n_bytes + len > pt->cap_bytes) {
        size_t cap = pt->cap_bytes ? pt->cap_bytes : 65536;
        while (cap < pt->n_bytes + len)
            cap *= 2;
        char *bytes = realloc(pt->bytes, cap);
        if (!bytes)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for %zu bytes of "
                             "distinct pieces", cap);
        pt->bytes = bytes;
        pt->cap_bytes = cap;
    }
    return ROJ_OK;
}

/* Adds count occurrences of the piece [s, s + len). */
static roj_status table_add(piece_table *pt, const char *s, size_t len,
                            uint64_t count)
{
    uint32_t hash = vocab_hash(s, len);
    roj_status st;

    if (len > INT32_MAX)
        return roj_error(ROJ_ERR_UNSUPPORTED, "a pre-tokenizer piece of %zu "
                         "bytes is too long to train on (max %d)", len,
                         INT32_MAX);
    if (pt->slot_cap > 0) {
        uint32_t mask = pt->slot_cap - 1;
        for (uint32_t i = hash & mask; pt->slots[i] != SLOT_EMPTY;
             i = (i + 1) & mask) {
            piece_entry *e = &pt->entries[pt->slots[i]];
            if (e->hash == hash && e->len == len &&
                memcmp(pt->bytes + e->off, s, len) == 0) {
                e->count += count;
                return ROJ_OK;
            }
        }
    }
    if (pt->n == UINT32_MAX - 1)
        return roj_error(ROJ_ERR_UNSUPPORTED, "more than %u distinct "
                         "pre-tokenizer pieces", pt->n);
    if ((st = table_reserve(pt, len)) != ROJ_OK)
        return st;

    uint32_t mask = pt->slot_cap - 1;
    uint32_t i = hash & mask;
    while (pt->slots[i] != SLOT_EMPTY)
        i = (i + 1) & mask;
    pt->slots[i] = pt->n;
    piece_entry *e = &pt->entries[pt->n++];
    e->off = pt->n_bytes;
    e->len = (uint32_t)len;
    e->hash = hash;
    e->count = count;
    memcpy(pt->bytes + pt->n_bytes, s, len);
    pt->n_bytes += len;
    return ROJ_OK;
}

/* Splits one text on special tokens, then each raw fragment with the
 * pre-tokenizer, and counts the pieces. */
static roj_status split_text(const roj_vocab *base, const char *text,
                             size_t len, piece_table *pt)
{
    tok_fragment_list frags = {0};
    tok_span_list spans = {0};
    roj_status st;

    if ((st = special_split(base, text, len, true, &frags)) != ROJ_OK)
        return st;
    for (size_t f = 0; f < frags.n && st == ROJ_OK; f++) {
        const tok_fragment *frag = &frags.items[f];
        if (frag->token != ROJ_TOKEN_NULL)
            continue;
        const char *s = text + frag->off;
        if ((st = pretok_split(base, s, frag->len, &spans)) != ROJ_OK)
            break;
        for (size_t i = 0; i < spans.n && st == ROJ_OK; i++)
            st = table_add(pt, s + spans.spans[i].off, spans.spans[i].len, 1);
        free(spans.spans);
        spans.spans = NULL;
    }
    free(frags.items);
    return st;
}

/* One thread's share of the texts and its result. */
typedef struct corpus_part {
    size_t begin;
    size_t end;
    piece_table table;
    roj_status status;
    char message[256]; /* roj_last_error() of the worker on failure */
} corpus_part;

typedef struct corpus_job {
    const roj_vocab *base;
    const char *const *texts;
    const size_t *lens;
    corpus_part *parts;
} corpus_job;

static void corpus_task(void *ctx, int part, int n_parts)
{
    corpus_job *job = ctx;
    corpus_part *p = &job->parts[part];

    (void)n_parts;
    for (size_t i = p->begin; i < p->end && p->status == ROJ_OK; i++)
        p->status = split_text(job->base, job->texts[i], job->lens[i],
                               &p->table);
    if (p->status != ROJ_OK)
        strncpy(p->message, roj_last_error(), sizeof p->message - 1);
}

/* Gives each part a contiguous range of texts with about the same number
 * of bytes. */
static void assign_ranges(const size_t *lens, size_t n_texts,
                          corpus_part *parts, int n_parts)
{
    size_t total = 0;
    size_t acc = 0;
    size_t i = 0;

    for (size_t k = 0; k < n_texts; k++)
        total += lens[k];
    for (int p = 0; p < n_parts; p++) {
        /* The part ends where the running sum reaches its share. */
        size_t goal = p + 1 == n_parts
                          ? total
                          : (size_t)((double)total * (p + 1) / n_parts);
        parts[p].begin = i;
        while (i < n_texts && (acc < goal || p + 1 == n_parts))
            acc += lens[i++];
        parts[p].end = i;
    }
}

/* Splits the texts into parts.table on n_threads threads and merges the
 * tables into *all in part order. */
static roj_status count_pieces(const roj_vocab *base,
                               const char *const *texts, const size_t *lens,
                               size_t n_texts, int n_threads,
                               piece_table *all)
{
    corpus_part *parts = calloc((size_t)n_threads, sizeof *parts);
    roj_pool *pool = NULL;
    roj_status st = ROJ_OK;

    if (!parts)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for %d threads",
                         n_threads);
    assign_ranges(lens, n_texts, parts, n_threads);
    corpus_job job = {base, texts, lens, parts};
    if (n_threads == 1) {
        corpus_task(&job, 0, 1);
    } else {
        if ((st = pool_create(n_threads, &pool)) != ROJ_OK)
            goto cleanup;
        pool_run(pool, corpus_task, &job);
    }
    for (int p = 0; p < n_threads && st == ROJ_OK; p++)
        if (parts[p].status != ROJ_OK)
            st = roj_error(parts[p].status, "%s", parts[p].message);

    for (int p = 0; p < n_threads && st == ROJ_OK; p++) {
        const piece_table *pt = &parts[p].table;
        if (p == 0) {
            *all = parts[0].table;
            memset(&parts[0].table, 0, sizeof parts[0].table);
            continue;
        }
        for (uint32_t e = 0; e < pt->n && st == ROJ_OK; e++)
            st = table_add(all, pt->bytes + pt->entries[e].off,
                           pt->entries[e].len, pt->entries[e].count);
    }

cleanup:
    pool_destroy(pool);
    for (int p = 0; p < n_threads; p++)
        table_free(&parts[p].table);
    free(parts);
    return st;
}

/* Lays the distinct pieces out as slots, one per byte. */
static roj_status layout_slots(const piece_table *pt, int32_t byte_base,
                               bpe_corpus *c)
{
    if (pt->n_bytes > INT32_MAX)
        return roj_error(ROJ_ERR_UNSUPPORTED, "the distinct pieces of the "
                         "training texts take %zu bytes (max %d); train on "
                         "less text", pt->n_bytes, INT32_MAX);
    c->n_words = pt->n;
    c->n_slots = pt->n_bytes;
    c->freq = malloc((pt->n ? pt->n : 1) * sizeof *c->freq);
    size_t n = c->n_slots ? c->n_slots : 1;
    c->sym = malloc(n * sizeof *c->sym);
    c->prev = malloc(n * sizeof *c->prev);
    c->next = malloc(n * sizeof *c->next);
    c->word_of = malloc(n * sizeof *c->word_of);
    if (!c->freq || !c->sym || !c->prev || !c->next || !c->word_of)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for %zu symbols of "
                         "training text", c->n_slots);

    /* The entries' bytes are stored in entry order, back to back, so slot
     * i is byte i of the arena. */
    for (uint32_t w = 0; w < pt->n; w++) {
        const piece_entry *e = &pt->entries[w];
        c->freq[w] = e->count;
        for (uint32_t k = 0; k < e->len; k++) {
            size_t i = e->off + k;
            c->sym[i] = byte_base + (unsigned char)pt->bytes[i];
            c->prev[i] = k == 0 ? -1 : (int32_t)(i - 1);
            c->next[i] = k + 1 == e->len ? -1 : (int32_t)(i + 1);
            c->word_of[i] = w;
        }
    }
    return ROJ_OK;
}

roj_status bpe_corpus_build(const roj_vocab *base, const char *const *texts,
                            const size_t *lens, size_t n_texts,
                            int n_threads, int32_t byte_base,
                            bpe_corpus *out)
{
    piece_table all = {0};
    roj_status st;

    memset(out, 0, sizeof *out);
    if (n_threads < 1)
        n_threads = 1;
    if ((size_t)n_threads > n_texts)
        n_threads = n_texts > 0 ? (int)n_texts : 1;
    st = count_pieces(base, texts, lens, n_texts, n_threads, &all);
    if (st == ROJ_OK)
        st = layout_slots(&all, byte_base, out);
    table_free(&all);
    if (st != ROJ_OK)
        bpe_corpus_free(out);
    return st;
}

void bpe_corpus_free(bpe_corpus *c)
{
    free(c->freq);
    free(c->sym);
    free(c->prev);
    free(c->next);
    free(c->word_of);
    memset(c, 0, sizeof *c);
}
