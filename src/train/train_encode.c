/* Turns examples into prompt and target token ids (see trainer.h). */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "roj/tokenizer.h"
#include "train/trainer.h"

const char *train_default_template(train_task task)
{
    switch (task) {
    case TRAIN_CLASSIFY:
        return "{text}\nlabel:";
    case TRAIN_EXTRACT:
        return "{text}\n{slot}:";
    default:
        return "{text}";
    }
}

const char *train_context_template(train_task task)
{
    switch (task) {
    case TRAIN_CLASSIFY:
        return "{context}\n{text}\nlabel:";
    case TRAIN_EXTRACT:
        return "{context}\n{text}\n{slot}:";
    default:
        return "{context}\n{text}";
    }
}

const char *train_template_of(const train_opts *o)
{
    if (o->template_text)
        return o->template_text;
    return o->data.context_column ? train_context_template(o->task)
                                  : train_default_template(o->task);
}

char *train_fill_template(const char *tmpl, const char *text,
                          size_t text_len, const char *slot)
{
    return train_fill_template_ctx(tmpl, text, text_len, slot, "", 0);
}

char *train_fill_template_ctx(const char *tmpl, const char *text,
                              size_t text_len, const char *slot,
                              const char *context, size_t context_len)
{
    size_t cap = strlen(tmpl) + 1, n = 0;
    for (const char *p = tmpl; (p = strchr(p, '{')); p++) {
        if (!strncmp(p, "{text}", 6))
            cap += text_len;
        else if (!strncmp(p, "{slot}", 6) && slot)
            cap += strlen(slot);
        else if (!strncmp(p, "{context}", 9))
            cap += context_len;
    }
    char *out = malloc(cap);
    if (!out)
        return NULL;
    for (const char *p = tmpl; *p;) {
        if (!strncmp(p, "{text}", 6)) {
            memcpy(out + n, text, text_len);
            n += text_len;
            p += 6;
        } else if (!strncmp(p, "{slot}", 6) && slot) {
            memcpy(out + n, slot, strlen(slot));
            n += strlen(slot);
            p += 6;
        } else if (!strncmp(p, "{context}", 9)) {
            memcpy(out + n, context, context_len);
            n += context_len;
            p += 9;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    return out;
}

void tenc_free(tenc *e)
{
    free(e->tok);
    free(e->off);
    free(e->len);
    free(e->n_prompt);
    free(e->label);
    memset(e, 0, sizeof *e);
}

/* Appends ids to the growing token array. */
static roj_status push(tenc *e, int64_t *cap, const int32_t *ids, size_t n,
                       int64_t at)
{
    if (at + (int64_t)n > *cap) {
        int64_t nc = *cap * 2 + (int64_t)n + 1024;
        int32_t *t = realloc(e->tok, (size_t)nc * sizeof *t);
        if (!t)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for tokens");
        e->tok = t;
        *cap = nc;
    }
    memcpy(e->tok + at, ids, n * sizeof *ids);
    return ROJ_OK;
}

/* Target token ids of example x: classify [label, EOS]; extract
 * " span" or " none" then EOS; generate the completion then EOS. */
static roj_status target_ids(const tenc_spec *s, const train_example *x,
                             roj_token **ids, size_t *n)
{
    const roj_token eos = roj_vocab_eos(s->vocab);
    if (s->task == TRAIN_CLASSIFY && s->label_tokens) {
        *ids = malloc(2 * sizeof **ids);
        if (!*ids)
            return roj_error(ROJ_ERR_NOMEM, "out of memory");
        (*ids)[0] = s->label_tokens[x->label];
        (*ids)[1] = eos;
        *n = 2;
        return ROJ_OK;
    }
    const char *txt = x->target ? x->target : TRAIN_NONE_WORD;
    const size_t len = x->target ? x->target_len : strlen(TRAIN_NONE_WORD);
    char *buf = malloc(len + 2);
    if (!buf)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    size_t k = 0;
    /* Extract and classify targets follow "slot:" / "label:" after a
     * space, as a tokenizer that prefixes words with spaces expects. */
    if (s->task != TRAIN_GENERATE)
        buf[k++] = ' ';
    memcpy(buf + k, txt, len);
    k += len;
    roj_status st = roj_tokenize(s->vocab, buf, k, 0, ids, n);
    free(buf);
    if (st)
        return st;
    roj_token *t = realloc(*ids, (*n + 1) * sizeof **ids);
    if (!t) {
        free(*ids);
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    }
    t[(*n)++] = eos;
    *ids = t;
    return ROJ_OK;
}

static roj_status encode_one(const tenc_spec *s, const train_dataset *d,
                             const train_example *x, tenc *e, int64_t *cap,
                             int64_t *at, size_t i)
{
    const char *slot = s->task == TRAIN_EXTRACT ? d->labels[x->label] : NULL;
    char *prompt = train_fill_template_ctx(s->template_text, x->text,
                                           x->text_len, slot,
                                           x->context ? x->context : "",
                                           x->context_len);
    if (!prompt)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    roj_token *p = NULL, *t = NULL;
    size_t np = 0, nt = 0;
    roj_status st = roj_tokenize(s->vocab, prompt, strlen(prompt), 0, &p,
                                 &np);
    free(prompt);
    if (!st)
        st = target_ids(s, x, &t, &nt);
    if (st)
        goto done;
    if ((int64_t)nt + 2 > s->n_ctx) {
        st = roj_error(ROJ_ERR_RANGE,
                       "%s:%u: the target is %zu tokens, more than the "
                       "context of %d allows; raise --n-ctx", d->path,
                       x->line, nt, (int)s->n_ctx);
        goto done;
    }
    /* Keep the end of a long prompt, because the question ("label:") is
     * there. */
    size_t skip = 0;
    if ((int64_t)(1 + np + nt) > s->n_ctx) {
        skip = 1 + np + nt - (size_t)s->n_ctx;
        e->n_truncated++;
    }
    const int32_t bos = roj_vocab_bos(s->vocab);
    e->off[i] = *at;
    if ((st = push(e, cap, &bos, 1, *at)))
        goto done;
    *at += 1;
    if ((st = push(e, cap, p + skip, np - skip, *at)))
        goto done;
    *at += (int64_t)(np - skip);
    if ((st = push(e, cap, t, nt, *at)))
        goto done;
    *at += (int64_t)nt;
    e->n_prompt[i] = (int32_t)(1 + np - skip);
    e->len[i] = (int32_t)(*at - e->off[i]);
    e->label[i] = x->label;
    if (e->len[i] > e->max_len)
        e->max_len = e->len[i];
done:
    free(p);
    free(t);
    return st;
}

roj_status tenc_build(const tenc_spec *spec, const train_dataset *d,
                      const size_t *idx, size_t n, tenc *out)
{
    memset(out, 0, sizeof *out);
    out->off = malloc((n + 1) * sizeof *out->off);
    out->len = malloc((n + 1) * sizeof *out->len);
    out->n_prompt = malloc((n + 1) * sizeof *out->n_prompt);
    out->label = malloc((n + 1) * sizeof *out->label);
    if (!out->off || !out->len || !out->n_prompt || !out->label) {
        tenc_free(out);
        return roj_error(ROJ_ERR_NOMEM, "out of memory for %zu examples",
                         n);
    }
    int64_t cap = 0, at = 0;
    for (size_t i = 0; i < n; i++) {
        roj_status st = encode_one(spec, d, &d->ex[idx ? idx[i] : i], out,
                                   &cap, &at, i);
        if (st) {
            tenc_free(out);
            return st;
        }
    }
    out->n = n;
    return ROJ_OK;
}
