/*
 * The BPE merge loop with incremental pair counts.
 *
 * Every adjacent pair of live symbols is counted once per occurrence,
 * weighted by the frequency of its piece. Each pair keeps the list of
 * slots where it was created. An entry goes stale when a neighbour merges,
 * so entries are checked when used. A max-heap holds (count, left, right)
 * entries; a pair whose count changes gets a fresh entry, and popped
 * entries whose count no longer matches are skipped. Merging a pair
 * visits only its own occurrences and updates the counts of their
 * neighbours, so a merge costs O(occurrences log pairs).
 *
 * Should a pair that was merged before reappear, because a later merge
 * formed one of its sides by another route ("ab" + "c" after "a" + "bc"),
 * the encoder would apply it at once since its rank is lower. The loop
 * does the same: it re-applies such pairs, lowest rank first, before
 * choosing the next merge, and records no new merge for them.
 * NOTE: randomized runs on small alphabets never produced such a pair or a
 * reused token string, so this path and the reuse in merge_loop have not
 * run; they keep token texts unique if the case exists.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "train/bpe_train_internal.h"

#define PAIR_NONE UINT32_MAX

typedef struct pair_info {
    int32_t left;
    int32_t right;
    int64_t count;   /* occurrences times piece frequency */
    uint32_t *occ;   /* (n_occ) left slots; may hold stale entries */
    uint32_t n_occ;
    uint32_t cap_occ;
    int32_t merged;  /* token the pair became, or -1 */
    uint32_t rank;   /* merge rank once merged */
    bool dirty;      /* count changed since the last heap update */
    bool banned;     /* forms the text of a special or added token */
} pair_info;

typedef struct heap_entry {
    int64_t count;
    int32_t left;
    int32_t right;
    uint32_t pair;
} heap_entry;

typedef struct merge_state {
    bpe_corpus *c;
    pair_info *pairs; /* (n_pairs) */
    uint32_t n_pairs;
    uint32_t cap_pairs;
    uint32_t *slots;  /* (slot_cap) pair index by key hash, or PAIR_NONE */
    uint32_t slot_cap;
    heap_entry *heap; /* (n_heap) */
    size_t n_heap;
    size_t cap_heap;
    uint32_t *dirty;  /* (n_dirty) pairs whose count changed */
    size_t n_dirty;
    size_t cap_dirty;
    char *joined;     /* (joined_cap) stored text of the chosen pair */
    size_t n_joined;
    size_t joined_cap;
    uint32_t min_frequency;
} merge_state;

static uint32_t pair_hash(int32_t left, int32_t right)
{
    uint64_t x = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x;
}

static roj_status grow_pair_slots(merge_state *ms)
{
    uint32_t cap = ms->slot_cap ? ms->slot_cap * 2 : 1u << 16;
    uint32_t *slots = cap > ms->slot_cap ? malloc((size_t)cap * sizeof *slots)
                                         : NULL;

    if (!slots)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for %u symbol pairs",
                         ms->n_pairs);
    for (uint32_t i = 0; i < cap; i++)
        slots[i] = PAIR_NONE;
    for (uint32_t p = 0; p < ms->n_pairs; p++) {
        uint32_t i = pair_hash(ms->pairs[p].left, ms->pairs[p].right) &
                     (cap - 1);
        while (slots[i] != PAIR_NONE)
            i = (i + 1) & (cap - 1);
        slots[i] = p;
    }
    free(ms->slots);
    ms->slots = slots;
    ms->slot_cap = cap;
    return ROJ_OK;
}

/* Finds the pair (left, right), creating it with count 0 when absent. */
static roj_status pair_get(merge_state *ms, int32_t left, int32_t right,
                           uint32_t *index)
{
    if (2 * ((size_t)ms->n_pairs + 1) > ms->slot_cap) {
        roj_status st = grow_pair_slots(ms);
        if (st != ROJ_OK)
            return st;
    }
    uint32_t mask = ms->slot_cap - 1;
    uint32_t i = pair_hash(left, right) & mask;
    for (; ms->slots[i] != PAIR_NONE; i = (i + 1) & mask) {
        const pair_info *p = &ms->pairs[ms->slots[i]];
        if (p->left == left && p->right == right) {
            *index = ms->slots[i];
            return ROJ_OK;
        }
    }
    if (ms->n_pairs == ms->cap_pairs) {
        uint32_t cap = ms->cap_pairs ? ms->cap_pairs * 2 : 1u << 14;
        pair_info *pairs = cap > ms->cap_pairs
                               ? realloc(ms->pairs, cap * sizeof *pairs)
                               : NULL;
        if (!pairs)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for %u symbol "
                             "pairs", cap);
        ms->pairs = pairs;
        ms->cap_pairs = cap;
    }
    pair_info *p = &ms->pairs[ms->n_pairs];
    memset(p, 0, sizeof *p);
    p->left = left;
    p->right = right;
    p->merged = -1;
    ms->slots[i] = ms->n_pairs;
    *index = ms->n_pairs++;
    return ROJ_OK;
}

/* Adds delta to the count of (left, right) and, when slot is not
 * PAIR_NONE, records slot as an occurrence. */
static roj_status pair_add(merge_state *ms, int32_t left, int32_t right,
                           int64_t delta, uint32_t slot)
{
    uint32_t index = PAIR_NONE;
    roj_status st = pair_get(ms, left, right, &index);

    if (st != ROJ_OK)
        return st;
    pair_info *p = &ms->pairs[index];
    p->count += delta;
    assert(p->count >= 0);
    if (slot != PAIR_NONE) {
        if (p->n_occ == p->cap_occ) {
            uint32_t cap = p->cap_occ ? p->cap_occ * 2 : 4;
            uint32_t *occ = cap > p->cap_occ
                                ? realloc(p->occ, cap * sizeof *occ)
                                : NULL;
            if (!occ)
                return roj_error(ROJ_ERR_NOMEM, "out of memory for %u "
                                 "occurrences of a symbol pair", cap);
            p->occ = occ;
            p->cap_occ = cap;
        }
        p->occ[p->n_occ++] = slot;
    }
    if (!p->dirty) {
        if (ms->n_dirty == ms->cap_dirty) {
            size_t cap = ms->cap_dirty ? ms->cap_dirty * 2 : 1024;
            uint32_t *dirty = realloc(ms->dirty, cap * sizeof *dirty);
            if (!dirty)
                return roj_error(ROJ_ERR_NOMEM, "out of memory for the "
                                 "changed pairs of one merge");
            ms->dirty = dirty;
            ms->cap_dirty = cap;
        }
        ms->dirty[ms->n_dirty++] = index;
        p->dirty = true;
    }
    return ROJ_OK;
}

/* ---- heap ---------------------------------------------------------- */

/* The merge order: higher count first, then smaller left id, then smaller
 * right id. */
static bool entry_before(const heap_entry *a, const heap_entry *b)
{
    if (a->count != b->count)
        return a->count > b->count;
    if (a->left != b->left)
        return a->left < b->left;
    return a->right < b->right;
}

static roj_status heap_push(merge_state *ms, const heap_entry *e)
{
    if (ms->n_heap == ms->cap_heap) {
        size_t cap = ms->cap_heap ? ms->cap_heap * 2 : 1u << 14;
        heap_entry *heap = realloc(ms->heap, cap * sizeof *heap);
        if (!heap)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for a heap of %zu "
                             "symbol pairs", cap);
        ms->heap = heap;
        ms->cap_heap = cap;
    }
    size_t i = ms->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!entry_before(e, &ms->heap[parent]))
            break;
        ms->heap[i] = ms->heap[parent];
        i = parent;
    }
    ms->heap[i] = *e;
    return ROJ_OK;
}

static heap_entry heap_pop(merge_state *ms)
{
    heap_entry top = ms->heap[0];
    heap_entry last = ms->heap[--ms->n_heap];
    size_t n = ms->n_heap;
    size_t i = 0;

    while (2 * i + 1 < n) {
        size_t child = 2 * i + 1;
        if (child + 1 < n && entry_before(&ms->heap[child + 1],
                                          &ms->heap[child]))
            child++;
        if (!entry_before(&ms->heap[child], &last))
            break;
        ms->heap[i] = ms->heap[child];
        i = child;
    }
    if (n > 0)
        ms->heap[i] = last;
    return top;
}

/* Pushes a fresh heap entry for every changed pair that can still be
 * chosen, and clears the changed list. */
static roj_status flush_dirty(merge_state *ms)
{
    for (size_t d = 0; d < ms->n_dirty; d++) {
        pair_info *p = &ms->pairs[ms->dirty[d]];
        p->dirty = false;
        if (p->merged >= 0 || p->banned || p->count < ms->min_frequency)
            continue;
        heap_entry e = {p->count, p->left, p->right, ms->dirty[d]};
        roj_status st = heap_push(ms, &e);
        if (st != ROJ_OK)
            return st;
    }
    ms->n_dirty = 0;
    return ROJ_OK;
}

/* ---- merging ------------------------------------------------------- */

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a;
    uint32_t y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Replaces every live occurrence of pair `index` by token merged, left to
 * right without overlap, and updates the neighbouring pair counts. */
static roj_status apply_merge(merge_state *ms, uint32_t index, int32_t merged)
{
    bpe_corpus *c = ms->c;
    int32_t a = ms->pairs[index].left;
    int32_t b = ms->pairs[index].right;
    uint32_t *occ = ms->pairs[index].occ;
    uint32_t n_occ = ms->pairs[index].n_occ;
    roj_status st = ROJ_OK;

    /* The merged token is longer than either side, so no new occurrence
     * of (a, b) can appear while this list is processed. */
    ms->pairs[index].occ = NULL;
    ms->pairs[index].n_occ = ms->pairs[index].cap_occ = 0;
    qsort(occ, n_occ, sizeof *occ, compare_u32);

    for (uint32_t k = 0; k < n_occ && st == ROJ_OK; k++) {
        uint32_t i = occ[k];
        if (c->sym[i] != a)
            continue;
        int32_t j = c->next[i];
        if (j < 0 || c->sym[j] != b)
            continue;
        int64_t f = (int64_t)c->freq[c->word_of[i]];
        int32_t h = c->prev[i];
        int32_t n = c->next[j];

        ms->pairs[index].count -= f;
        if (h >= 0)
            st = pair_add(ms, c->sym[h], a, -f, PAIR_NONE);
        if (n >= 0 && st == ROJ_OK)
            st = pair_add(ms, b, c->sym[n], -f, PAIR_NONE);

        c->sym[i] = merged;
        c->sym[j] = BPE_SYMBOL_DEAD;
        c->next[i] = n;
        if (n >= 0)
            c->prev[n] = (int32_t)i;

        if (h >= 0 && st == ROJ_OK)
            st = pair_add(ms, c->sym[h], merged, f, (uint32_t)h);
        if (n >= 0 && st == ROJ_OK)
            st = pair_add(ms, merged, c->sym[n], f, i);
    }
    free(occ);
    assert(st != ROJ_OK || ms->pairs[index].count == 0);
    return st;
}

/* Re-applies pairs merged before that the last merge formed again,
 * lowest rank first, until none is left. */
static roj_status reapply_old_merges(merge_state *ms)
{
    for (;;) {
        uint32_t best = PAIR_NONE;
        for (size_t d = 0; d < ms->n_dirty; d++) {
            const pair_info *p = &ms->pairs[ms->dirty[d]];
            if (p->merged < 0 || p->count == 0)
                continue;
            if (best == PAIR_NONE || p->rank < ms->pairs[best].rank)
                best = ms->dirty[d];
        }
        if (best == PAIR_NONE)
            return ROJ_OK;
        roj_status st = apply_merge(ms, best, ms->pairs[best].merged);
        if (st != ROJ_OK)
            return st;
    }
}

/* Counts every adjacent pair of the corpus. */
static roj_status count_initial_pairs(merge_state *ms)
{
    const bpe_corpus *c = ms->c;

    for (size_t i = 0; i < c->n_slots; i++) {
        int32_t j = c->next[i];
        if (j < 0)
            continue;
        roj_status st = pair_add(ms, c->sym[i], c->sym[j],
                                 (int64_t)c->freq[c->word_of[i]],
                                 (uint32_t)i);
        if (st != ROJ_OK)
            return st;
    }
    return flush_dirty(ms);
}

/* Takes the best pair off the heap: *index is PAIR_NONE when none is
 * left. Leaves the pair's joined stored text in ms->joined (ms->n_joined
 * bytes) and the id of a token with that text in *existing, or -1.
 * Banned pairs are marked and skipped. */
static roj_status pop_best(merge_state *ms, const bpe_trained *t,
                           uint32_t *index, int32_t *existing)
{
    *index = PAIR_NONE;
    while (ms->n_heap > 0) {
        heap_entry e = heap_pop(ms);
        pair_info *p = &ms->pairs[e.pair];
        if (e.count != p->count || p->banned || p->merged >= 0)
            continue;

        /* The stored text of the merge is the two stored texts joined,
         * because the byte-to-unicode mapping works byte by byte. */
        const bpe_train_token *l = &t->tokens[p->left];
        const bpe_train_token *r = &t->tokens[p->right];
        size_t len = (size_t)l->len + r->len;
        if (len > ms->joined_cap) {
            char *grown = realloc(ms->joined, len);
            if (!grown)
                return roj_error(ROJ_ERR_NOMEM, "out of memory for a token "
                                 "of %zu bytes", len);
            ms->joined = grown;
            ms->joined_cap = len;
        }
        memcpy(ms->joined, t->text + l->offset, l->len);
        memcpy(ms->joined + l->len, t->text + r->offset, r->len);
        ms->n_joined = len;
        int32_t id = bpe_trained_find(t, ms->joined, len);
        if (id >= 0 && t->tokens[id].type != ROJ_TOKEN_TYPE_NORMAL) {
            p->banned = true;
            continue;
        }
        *index = e.pair;
        *existing = id;
        return ROJ_OK;
    }
    return ROJ_OK;
}

/* Picks and applies merges until the vocab is full or no pair is left. */
static roj_status merge_loop(merge_state *ms, bpe_trained *t,
                             uint32_t vocab_size)
{
    roj_status st;

    while (t->n_tokens < vocab_size) {
        uint32_t index = PAIR_NONE;
        int32_t id = -1;
        if ((st = pop_best(ms, t, &index, &id)) != ROJ_OK)
            return st;
        if (index == PAIR_NONE)
            break;
        if (id < 0 && (st = bpe_trained_add_token(t, ms->joined, ms->n_joined,
                                                  ROJ_TOKEN_TYPE_NORMAL,
                                                  &id)) != ROJ_OK)
            return st;

        pair_info *p = &ms->pairs[index];
        p->merged = id;
        p->rank = t->n_merges;
        if ((st = bpe_trained_add_merge(t, p->left, p->right)) != ROJ_OK ||
            (st = apply_merge(ms, index, id)) != ROJ_OK ||
            (st = reapply_old_merges(ms)) != ROJ_OK ||
            (st = flush_dirty(ms)) != ROJ_OK)
            return st;
    }
    return ROJ_OK;
}

roj_status bpe_merge_run(bpe_trained *t, bpe_corpus *c, uint32_t vocab_size,
                         uint32_t min_frequency)
{
    merge_state ms = {0};
    roj_status st;

    ms.c = c;
    ms.min_frequency = min_frequency;
    if ((st = count_initial_pairs(&ms)) == ROJ_OK)
        st = merge_loop(&ms, t, vocab_size);
    if (st == ROJ_OK && t->n_tokens < vocab_size)
        log_warn("bpe_train: stopped at %u tokens of the %u requested "
                 "because no remaining pair of symbols occurs %u times or "
                 "more; train on more text or ask for fewer tokens",
                 t->n_tokens, vocab_size, min_frequency);

    for (uint32_t p = 0; p < ms.n_pairs; p++)
        free(ms.pairs[p].occ);
    free(ms.pairs);
    free(ms.slots);
    free(ms.heap);
    free(ms.dirty);
    free(ms.joined);
    return st;
}
