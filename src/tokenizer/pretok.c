/*
 * Regex pre-tokenizer of byte-level BPE vocabs, with PCRE2.
 *
 * The regexes are compiled once per vocab in UTF and UCP mode (\s, \p{L}
 * and friends follow Unicode) with PCRE2_MATCH_INVALID_UTF, so invalid
 * UTF-8 in the input never matches any item of a pattern: such bytes end
 * up in the gaps between matches, which are pieces too, and byte-level BPE
 * tokenizes them byte by byte. JIT compilation is used when available.
 * Matching uses per-call match data, so one vocab serves many threads.
 */
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"
#include "core/log.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tok_internal.h"

/* JIT stack used when the default 32 KiB machine stack is not enough. */
#define JIT_STACK_START (64 * 1024)
#define JIT_STACK_MAX (16 * 1024 * 1024)

roj_status pretok_init(roj_vocab *v, const char *name)
{
    const pretok_config *cfg = pretok_find(v->pre);
    size_t n = 0;

    if (!cfg)
        return roj_error(ROJ_ERR_UNSUPPORTED,
                         "%s: tokenizer.ggml.pre is '%s', a pre-tokenizer "
                         "roj does not support, and guessing would give "
                         "wrong token ids; add its regexes to "
                         "src/tokenizer/pretok_table.c",
                         name, v->pre);
    while (cfg->regexes[n])
        n++;
    v->regex = calloc(n, sizeof *v->regex);
    if (!v->regex)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", name);
    v->n_regex = n;
    v->pretok = cfg;
    v->ignore_merges = cfg->ignore_merges;

    for (size_t i = 0; i < n; i++) {
        int err = 0;
        PCRE2_SIZE err_off = 0;
        pcre2_code *code = pcre2_compile(
            (PCRE2_SPTR)cfg->regexes[i], PCRE2_ZERO_TERMINATED,
            PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &err_off,
            NULL);
        if (!code) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            return roj_error(ROJ_ERR_INTERNAL,
                             "%s: regex %zu of pre-tokenizer '%s' does not "
                             "compile at offset %zu: %s", name, i, cfg->id,
                             (size_t)err_off, (const char *)msg);
        }
        /* Without JIT, matching falls back to the interpreter. */
        (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
        v->regex[i] = code;
    }
    return ROJ_OK;
}

void pretok_free(roj_vocab *v)
{
    for (size_t i = 0; i < v->n_regex; i++)
        pcre2_code_free(v->regex[i]);
    free(v->regex);
    v->regex = NULL;
    v->n_regex = 0;
}

bool pretok_default_add_bos(const roj_vocab *v)
{
    return v->pretok && v->pretok->add_bos;
}

bool pretok_no_bos(const roj_vocab *v)
{
    return v->pretok && v->pretok->no_bos;
}

static roj_status span_push(tok_span_list *list, size_t off, size_t len)
{
    if (list->n == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 64;
        tok_span *spans = realloc(list->spans, cap * sizeof *spans);
        if (!spans)
            return roj_error(ROJ_ERR_NOMEM, "out of memory while "
                             "pre-tokenizing (%zu pieces)", list->n);
        list->spans = spans;
        list->cap = cap;
    }
    list->spans[list->n].off = off;
    list->spans[list->n].len = len;
    list->n++;
    return ROJ_OK;
}

/* State of one pretok_split call. */
typedef struct split_state {
    pcre2_match_data *match;
    pcre2_match_context *context;
    pcre2_jit_stack *jit_stack;
    bool warned;
} split_state;

/* Runs one match from pos; returns PCRE2's code after retrying once with a
 * larger JIT stack when the default one is too small. */
static int match_at(split_state *st, const pcre2_code *code,
                    const char *subject, size_t n, size_t pos)
{
    int rc = pcre2_match(code, (PCRE2_SPTR)subject, n, pos, 0, st->match,
                         st->context);
    if (rc != PCRE2_ERROR_JIT_STACKLIMIT || st->jit_stack)
        return rc;
    st->jit_stack = pcre2_jit_stack_create(JIT_STACK_START, JIT_STACK_MAX,
                                           NULL);
    if (!st->jit_stack)
        return rc;
    pcre2_jit_stack_assign(st->context, NULL, st->jit_stack);
    return pcre2_match(code, (PCRE2_SPTR)subject, n, pos, 0, st->match,
                       st->context);
}

/* Splits subject (n bytes at offset base of the whole text) into matches
 * and gaps, appending them to out. */
static roj_status split_span(split_state *st, const pcre2_code *code,
                             const char *subject, size_t n, size_t base,
                             tok_span_list *out)
{
    size_t pos = 0;
    size_t prev = 0;
    roj_status s;

    while (pos < n) {
        int rc = match_at(st, code, subject, n, pos);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            /* A match limit or similar: keep the rest as one piece. */
            if (!st->warned)
                log_warn("pre-tokenizer regex failed with PCRE2 error %d; "
                         "keeping %zu bytes as one piece", rc, n - prev);
            st->warned = true;
            break;
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(st->match);
        size_t start = ov[0];
        size_t end = ov[1];
        if (end <= start) {
            /* An empty match splits nothing; step over one character. */
            uint32_t cp;
            size_t step = utf8_decode((const unsigned char *)subject + start,
                                      n - start, &cp);
            pos = start + (step ? step : 1);
            continue;
        }
        if (start > prev && (s = span_push(out, base + prev,
                                           start - prev)) != ROJ_OK)
            return s;
        if ((s = span_push(out, base + start, end - start)) != ROJ_OK)
            return s;
        prev = pos = end;
    }
    if (prev < n)
        return span_push(out, base + prev, n - prev);
    return ROJ_OK;
}

roj_status pretok_split(const roj_vocab *v, const char *text, size_t len,
                        tok_span_list *out)
{
    tok_span_list cur = {0};
    tok_span_list next = {0};
    split_state st = {0};
    roj_status s = ROJ_OK;

    memset(out, 0, sizeof *out);
    if (len == 0)
        return ROJ_OK;
    if ((s = span_push(&cur, 0, len)) != ROJ_OK)
        goto cleanup;
    st.match = pcre2_match_data_create(1, NULL);
    st.context = pcre2_match_context_create(NULL);
    if (!st.match || !st.context) {
        s = roj_error(ROJ_ERR_NOMEM, "out of memory for regex match data");
        goto cleanup;
    }

    for (size_t r = 0; r < v->n_regex; r++) {
        next.n = 0;
        for (size_t i = 0; i < cur.n; i++) {
            const tok_span *sp = &cur.spans[i];
            s = split_span(&st, v->regex[r], text + sp->off, sp->len,
                           sp->off, &next);
            if (s != ROJ_OK)
                goto cleanup;
        }
        tok_span_list tmp = cur;
        cur = next;
        next = tmp;
    }
    *out = cur;
    cur.spans = NULL;

cleanup:
    free(cur.spans);
    free(next.spans);
    if (st.jit_stack)
        pcre2_jit_stack_free(st.jit_stack);
    pcre2_match_context_free(st.context);
    pcre2_match_data_free(st.match);
    return s;
}
