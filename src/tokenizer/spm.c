/*
 * SentencePiece BPE ("llama" vocabs with tokenizer.ggml.scores), as
 * llama.cpp's llm_tokenizer_spm does it.
 *
 * Spaces become U+2581 (a leading one is added when the caller asks), the
 * text is split into characters, and adjacent symbols whose concatenation
 * is a token are merged, the pair with the highest token score first
 * (leftmost first among equal scores). A final symbol that is not a token
 * is written as byte tokens <0xXX>, or as the unknown token where the vocab
 * has no byte token for a byte. Each invalid UTF-8 byte is a symbol of its
 * own, so it always goes to byte fallback.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tok_internal.h"

static const char escaped_space[] = "\xe2\x96\x81"; /* U+2581 */

typedef struct spm_symbol {
    uint32_t off; /* into the escaped text */
    uint32_t n;   /* bytes; 0 once merged into the left neighbour */
    int32_t prev;
    int32_t next;
} spm_symbol;

typedef struct spm_bigram {
    float score;
    int32_t left;
    int32_t right;
    uint32_t size; /* bytes of left + right when queued */
} spm_bigram;

typedef struct spm_state {
    const roj_vocab *v;
    const char *text; /* escaped text */
    spm_symbol *sym;
    spm_bigram *heap; /* (3 * n_symbols) */
    size_t n_heap;
} spm_state;

static bool bigram_before(const spm_bigram *a, const spm_bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(spm_state *st, const spm_bigram *b)
{
    size_t i = st->n_heap++;

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!bigram_before(b, &st->heap[parent]))
            break;
        st->heap[i] = st->heap[parent];
        i = parent;
    }
    st->heap[i] = *b;
}

static spm_bigram heap_pop(spm_state *st)
{
    spm_bigram top = st->heap[0];
    spm_bigram last = st->heap[--st->n_heap];
    size_t n = st->n_heap;
    size_t i = 0;

    while (2 * i + 1 < n) {
        size_t child = 2 * i + 1;
        if (child + 1 < n && bigram_before(&st->heap[child + 1],
                                           &st->heap[child]))
            child++;
        if (!bigram_before(&st->heap[child], &last))
            break;
        st->heap[i] = st->heap[child];
        i = child;
    }
    if (n > 0)
        st->heap[i] = last;
    return top;
}

static void try_bigram(spm_state *st, int32_t left, int32_t right)
{
    spm_bigram b;

    if (left < 0 || right < 0)
        return;
    /* Adjacent symbols are contiguous in the text. */
    b.size = st->sym[left].n + st->sym[right].n;
    roj_token id = vocab_lookup(st->v, st->text + st->sym[left].off, b.size);
    if (id == ROJ_TOKEN_NULL)
        return;
    b.score = st->v->tokens[id].score;
    b.left = left;
    b.right = right;
    heap_push(st, &b);
}

/* Writes the escaped form of text into a new buffer. */
static char *escape_text(const char *text, size_t len, bool add_space,
                         size_t *out_len)
{
    char *buf = malloc(3 * len + 4);
    size_t n = 0;

    if (!buf)
        return NULL;
    if (add_space) {
        memcpy(buf, escaped_space, 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + n, escaped_space, 3);
            n += 3;
        } else {
            buf[n++] = text[i];
        }
    }
    *out_len = n;
    return buf;
}

/* Appends the tokens of one final symbol. */
static roj_status emit_symbol(const spm_state *st, const spm_symbol *sym,
                              tok_list *out)
{
    const roj_vocab *v = st->v;
    const unsigned char *s = (const unsigned char *)st->text + sym->off;
    roj_token id = vocab_lookup(v, (const char *)s, sym->n);
    roj_status status;

    if (id != ROJ_TOKEN_NULL)
        return tok_list_push(out, id);
    for (uint32_t i = 0; i < sym->n; i++) {
        id = v->byte_token[s[i]];
        if (id == ROJ_TOKEN_NULL)
            id = vocab_lookup(v, (const char *)s + i, 1);
        if (id == ROJ_TOKEN_NULL) {
            /* No byte token: one unknown token for the whole symbol. */
            if (v->unk == ROJ_TOKEN_NULL)
                return ROJ_OK;
            return tok_list_push(out, v->unk);
        }
        if ((status = tok_list_push(out, id)) != ROJ_OK)
            return status;
    }
    return ROJ_OK;
}

roj_status spm_tokenize(const roj_vocab *v, const char *text, size_t len,
                        bool add_space, tok_list *out)
{
    spm_state st = {.v = v};
    size_t n_text = 0;
    size_t n_sym = 0;
    roj_status s = ROJ_OK;
    char *escaped = escape_text(text, len, add_space, &n_text);

    if (!escaped)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for %zu bytes of "
                         "text", len);
    if (n_text == 0)
        goto cleanup;
    st.text = escaped;
    st.sym = malloc(n_text * sizeof *st.sym);
    st.heap = malloc(3 * n_text * sizeof *st.heap);
    if (!st.sym || !st.heap) {
        s = roj_error(ROJ_ERR_NOMEM, "out of memory for %zu bytes of text",
                      len);
        goto cleanup;
    }

    /* Characters: a valid UTF-8 sequence, or a single invalid byte. */
    for (size_t off = 0; off < n_text;) {
        uint32_t cp;
        size_t n = utf8_decode((const unsigned char *)escaped + off,
                               n_text - off, &cp);
        if (n == 0)
            n = 1;
        st.sym[n_sym].off = (uint32_t)off;
        st.sym[n_sym].n = (uint32_t)n;
        st.sym[n_sym].prev = (int32_t)n_sym - 1;
        off += n;
        st.sym[n_sym].next = off < n_text ? (int32_t)n_sym + 1 : -1;
        n_sym++;
    }

    for (size_t i = 1; i < n_sym; i++)
        try_bigram(&st, (int32_t)i - 1, (int32_t)i);

    while (st.n_heap > 0) {
        spm_bigram b = heap_pop(&st);
        spm_symbol *left = &st.sym[b.left];
        spm_symbol *right = &st.sym[b.right];
        if (left->n == 0 || right->n == 0 || left->n + right->n != b.size)
            continue; /* stale */

        left->n += right->n;
        right->n = 0;
        left->next = right->next;
        if (right->next >= 0)
            st.sym[right->next].prev = b.left;

        try_bigram(&st, left->prev, b.left);
        try_bigram(&st, b.left, left->next);
    }

    for (int32_t i = 0; i >= 0; i = st.sym[i].next)
        if ((s = emit_symbol(&st, &st.sym[i], out)) != ROJ_OK)
            break;

cleanup:
    free(st.sym);
    free(st.heap);
    free(escaped);
    return s;
}
