/*
 * Byte-level BPE ("gpt2" vocabs).
 *
 * Each pre-tokenizer piece starts as one symbol per byte: the token of the
 * character GPT-2's byte-to-unicode table gives that byte. Adjacent pairs
 * are merged in the order of tokenizer.ggml.merges (lowest rank first,
 * leftmost first among equal ranks) with a binary heap and a linked list
 * of symbols, so a piece of n bytes costs O(n log n). Stale heap entries
 * (a side already merged elsewhere) are skipped when popped. Merges work
 * on token ids: a merge whose parts or result are not tokens can never
 * apply and is dropped at load time.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tok_internal.h"

/* Bytes GPT-2 maps to themselves: printable ASCII and Latin-1 except the
 * soft hyphen. The other 68 bytes map to U+0100.. in byte order. */
static bool byte_is_printable(unsigned b)
{
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
}

uint32_t bpe_byte_to_cp(uint8_t b)
{
    if (byte_is_printable(b))
        return b;
    if (b <= 32)
        return 256u + b;
    if (b <= 160)
        return 256u + 33u + (b - 127u);
    return 256u + 67u; /* 173, the soft hyphen */
}

int bpe_cp_to_byte(uint32_t cp)
{
    if (cp < 256)
        return byte_is_printable(cp) ? (int)cp : -1;
    if (cp < 256 + 33)
        return (int)(cp - 256);
    if (cp < 256 + 67)
        return (int)(cp - 256 - 33 + 127);
    if (cp == 256 + 67)
        return 173;
    return -1;
}

#define SYMBOL_DEAD (-2)

typedef struct bpe_symbol {
    roj_token id; /* ROJ_TOKEN_NULL: byte without a token; SYMBOL_DEAD */
    int32_t prev;
    int32_t next;
} bpe_symbol;

/* A candidate merge of symbols left and right (= symbols[left].next). */
typedef struct bpe_pair {
    int32_t rank;
    int32_t left;
    int32_t right;
    roj_token left_id;
    roj_token right_id;
    roj_token merged;
} bpe_pair;

/* Scratch memory of one bpe_tokenize call, sized for the longest piece. */
typedef struct bpe_scratch {
    bpe_symbol *symbols; /* (cap) */
    bpe_pair *heap;      /* (3 * cap): n - 1 seeds plus 2 per merge */
    char *encoded;       /* (2 * cap) byte-to-unicode text of a piece */
    size_t cap;
    size_t n_heap;
} bpe_scratch;

static bool pair_before(const bpe_pair *a, const bpe_pair *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(bpe_scratch *sc, const bpe_pair *p)
{
    size_t i = sc->n_heap++;

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pair_before(p, &sc->heap[parent]))
            break;
        sc->heap[i] = sc->heap[parent];
        i = parent;
    }
    sc->heap[i] = *p;
}

static bpe_pair heap_pop(bpe_scratch *sc)
{
    bpe_pair top = sc->heap[0];
    bpe_pair last = sc->heap[--sc->n_heap];
    size_t n = sc->n_heap;
    size_t i = 0;

    while (2 * i + 1 < n) {
        size_t child = 2 * i + 1;
        if (child + 1 < n && pair_before(&sc->heap[child + 1],
                                         &sc->heap[child]))
            child++;
        if (!pair_before(&sc->heap[child], &last))
            break;
        sc->heap[i] = sc->heap[child];
        i = child;
    }
    if (n > 0)
        sc->heap[i] = last;
    return top;
}

/* Queues the merge of left and its right neighbour, if there is one. */
static void try_pair(const roj_vocab *v, bpe_scratch *sc, int32_t left)
{
    bpe_pair p;

    if (left < 0)
        return;
    p.left = left;
    p.right = sc->symbols[left].next;
    if (p.right < 0)
        return;
    p.left_id = sc->symbols[p.left].id;
    p.right_id = sc->symbols[p.right].id;
    if (p.left_id < 0 || p.right_id < 0)
        return;
    if (!vocab_merge_find(v, p.left_id, p.right_id, &p.rank, &p.merged))
        return;
    heap_push(sc, &p);
}

/* Appends the token of a byte that has none: the unknown token when the
 * vocab has a real one. Many BPE vocabs name <|endoftext|> as their
 * unknown token, which would end generation, so otherwise the byte is
 * dropped, as llama.cpp does. */
static roj_status push_untokenizable(const roj_vocab *v, tok_list *out)
{
    if (v->unk != ROJ_TOKEN_NULL &&
        v->tokens[v->unk].type == ROJ_TOKEN_TYPE_UNKNOWN)
        return tok_list_push(out, v->unk);
    return ROJ_OK;
}

static roj_status bpe_piece(const roj_vocab *v, bpe_scratch *sc,
                            const unsigned char *s, size_t n, tok_list *out)
{
    bpe_symbol *sym = sc->symbols;
    roj_status st;

    /* Families with ignore_merges keep a piece that is a token whole. */
    if (v->ignore_merges && n > 1) {
        size_t len = 0;
        for (size_t i = 0; i < n; i++)
            len += utf8_encode(bpe_byte_to_cp(s[i]), sc->encoded + len);
        roj_token whole = vocab_lookup(v, sc->encoded, len);
        if (whole != ROJ_TOKEN_NULL)
            return tok_list_push(out, whole);
    }

    for (size_t i = 0; i < n; i++) {
        sym[i].id = v->byte_token[s[i]];
        sym[i].prev = (int32_t)i - 1;
        sym[i].next = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    sc->n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++)
        try_pair(v, sc, (int32_t)i);

    while (sc->n_heap > 0) {
        bpe_pair p = heap_pop(sc);
        bpe_symbol *left = &sym[p.left];
        bpe_symbol *right = &sym[p.right];
        if (left->id != p.left_id || left->next != p.right ||
            right->id != p.right_id)
            continue; /* stale: one side changed since it was queued */

        left->id = p.merged;
        left->next = right->next;
        if (right->next >= 0)
            sym[right->next].prev = p.left;
        right->id = SYMBOL_DEAD;

        try_pair(v, sc, left->prev);
        try_pair(v, sc, p.left);
    }

    /* The first symbol only ever absorbs its right neighbours. */
    for (int32_t i = 0; i >= 0; i = sym[i].next) {
        st = sym[i].id >= 0 ? tok_list_push(out, sym[i].id)
                            : push_untokenizable(v, out);
        if (st != ROJ_OK)
            return st;
    }
    return ROJ_OK;
}

roj_status bpe_tokenize(const roj_vocab *v, const char *text, size_t len,
                        tok_list *out)
{
    tok_span_list pieces = {0};
    bpe_scratch sc = {0};
    roj_status s;

    if ((s = pretok_split(v, text, len, &pieces)) != ROJ_OK)
        return s;

    for (size_t i = 0; i < pieces.n; i++)
        if (pieces.spans[i].len > sc.cap)
            sc.cap = pieces.spans[i].len;
    if (sc.cap > 0) {
        sc.symbols = malloc(sc.cap * sizeof *sc.symbols);
        sc.heap = malloc(3 * sc.cap * sizeof *sc.heap);
        sc.encoded = malloc(2 * sc.cap);
        if (!sc.symbols || !sc.heap || !sc.encoded) {
            s = roj_error(ROJ_ERR_NOMEM, "out of memory for BPE scratch "
                          "(piece of %zu bytes)", sc.cap);
            goto cleanup;
        }
    }

    for (size_t i = 0; i < pieces.n; i++) {
        const tok_span *p = &pieces.spans[i];
        s = bpe_piece(v, &sc, (const unsigned char *)text + p->off, p->len,
                      out);
        if (s != ROJ_OK)
            goto cleanup;
    }

cleanup:
    free(sc.symbols);
    free(sc.heap);
    free(sc.encoded);
    free(pieces.spans);
    return s;
}
