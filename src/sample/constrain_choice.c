/* Choice among labels: total log-probability of each label's tokens, with
 * shared leading tokens evaluated once. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "roj/constrain.h"
#include "sample/sample_util.h"

/* Tokens decoded per roj_decode call while scoring. */
#define CHOICE_CHUNK 64

typedef struct label_tokens {
    roj_token *ids;
    size_t n;
} label_tokens;

/* Orders labels (pointers into one array) by their token sequences, so
 * labels sharing leading tokens are next to each other. */
static int compare_labels(const void *pa, const void *pb)
{
    const label_tokens *a = *(const label_tokens *const *)pa;
    const label_tokens *b = *(const label_tokens *const *)pb;
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++)
        if (a->ids[i] != b->ids[i])
            return a->ids[i] < b->ids[i] ? -1 : 1;
    if (a->n != b->n)
        return a->n < b->n ? -1 : 1;
    return a < b ? -1 : a > b;
}

static roj_status tokenize_label(const roj_vocab *vocab, const char *label,
                                 const roj_choice_params *p, size_t index,
                                 label_tokens *out)
{
    const char *suffix = p && p->suffix ? p->suffix : "";
    size_t n_label = strlen(label), n_suffix = strlen(suffix), n = 0;
    char *text = malloc(n_label + n_suffix + 1);
    roj_token *ids = NULL;
    roj_status st;

    if (!text)
        return roj_error(ROJ_ERR_NOMEM, "choice: out of memory");
    memcpy(text, label, n_label);
    memcpy(text + n_label, suffix, n_suffix + 1);
    st = roj_tokenize(vocab, text, n_label + n_suffix, 0, &ids, &n);
    free(text);
    if (st != ROJ_OK)
        return roj_error_wrap(st, "choice: label %zu", index);

    if (p && p->score_eog) {
        roj_token eog = roj_vocab_eot(vocab);
        if (eog == ROJ_TOKEN_NULL)
            eog = roj_vocab_eos(vocab);
        roj_token *grown = realloc(ids, (n + 1) * sizeof *ids);
        if (!grown) {
            free(ids);
            return roj_error(ROJ_ERR_NOMEM, "choice: out of memory");
        }
        ids = grown;
        if (eog != ROJ_TOKEN_NULL)
            ids[n++] = eog;
    }
    if (n == 0) {
        free(ids);
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "choice: label %zu ('%s') gives no tokens", index,
                         label);
    }
    out->ids = ids;
    out->n = n;
    return ROJ_OK;
}

/* Decodes tokens on seq keeping every token's logits, copying them into
 * rows (n tokens x n_vocab). */
static roj_status decode_rows(roj_context *ctx, int32_t seq,
                              const roj_token *tokens, size_t n,
                              int32_t n_vocab, float *rows)
{
    int32_t seqs[CHOICE_CHUNK];
    bool keep[CHOICE_CHUNK];

    for (int i = 0; i < CHOICE_CHUNK; i++) {
        seqs[i] = seq;
        keep[i] = true;
    }
    for (size_t done = 0; done < n;) {
        size_t count = n - done < CHOICE_CHUNK ? n - done : CHOICE_CHUNK;
        roj_batch batch = {.n_tokens = (int32_t)count,
                           .tokens = tokens + done,
                           .seq = seqs,
                           .logits = keep};
        roj_status st = roj_decode(ctx, &batch);
        if (st != ROJ_OK)
            return st;
        for (size_t i = 0; i < count; i++) {
            const float *l = roj_get_logits(ctx, (int32_t)i);
            if (!l)
                return roj_error(ROJ_ERR_INTERNAL,
                                 "choice: no logits for batch token %zu", i);
            memcpy(rows + (done + i) * (size_t)n_vocab, l,
                   (size_t)n_vocab * sizeof *rows);
        }
        done += count;
    }
    return ROJ_OK;
}

/* Scores the labels in token order; rows[k] contains the logits after the
 * first k tokens of the label evaluated last. */
static roj_status score_labels(roj_context *ctx, int32_t seq,
                               const label_tokens *labels,
                               const label_tokens *const *order,
                               size_t n_labels,
                               float *rows, int32_t n_vocab, double *logprob)
{
    int32_t start_len = roj_seq_len(ctx, seq);
    const label_tokens *prev = NULL;
    size_t depth = 0; /* label tokens of prev in the cache */
    roj_status st = ROJ_OK;

    for (size_t k = 0; k < n_labels && st == ROJ_OK; k++) {
        const label_tokens *cur = order[k];
        size_t common = 0;
        double sum = 0.0;

        while (prev && common < depth && common < cur->n &&
               prev->ids[common] == cur->ids[common])
            common++;
        /* Keep the shared tokens, evaluate the rest but the last. */
        st = roj_seq_truncate(ctx, seq, start_len + (int32_t)common);
        if (st == ROJ_OK && cur->n - 1 > common)
            st = decode_rows(ctx, seq, cur->ids + common,
                             cur->n - 1 - common, n_vocab,
                             rows + (common + 1) * (size_t)n_vocab);
        if (st != ROJ_OK)
            break;
        depth = cur->n - 1 > common ? cur->n - 1 : common;
        prev = cur;

        for (size_t j = 0; j < cur->n && st == ROJ_OK; j++) {
            double lp = 0.0;
            st = roj_logits_logprob(rows + j * (size_t)n_vocab, n_vocab,
                                    cur->ids[j], &lp);
            sum += lp;
        }
        logprob[cur - labels] = sum;
    }
    roj_status restore = roj_seq_truncate(ctx, seq, start_len);
    return st != ROJ_OK ? st : restore;
}

/* Fills the result from the log-probabilities. */
static void rank_labels(const label_tokens *labels, size_t n,
                        const double *logprob, bool normalize,
                        roj_choice_result *res, double *score)
{
    double max = -INFINITY, sum = 0.0;

    res->best = 0;
    for (size_t i = 0; i < n; i++) {
        score[i] = normalize ? logprob[i] / (double)labels[i].n : logprob[i];
        if (score[i] > score[res->best])
            res->best = i;
        if (score[i] > max)
            max = score[i];
    }
    for (size_t i = 0; i < n; i++)
        sum += sample_exp(score[i] - max);
    res->prob = sample_exp(score[res->best] - max) / sum;
    for (size_t i = 0; i < n; i++) {
        if (res->probs)
            res->probs[i] = sample_exp(score[i] - max) / sum;
        if (res->logprob)
            res->logprob[i] = logprob[i];
        if (res->n_tokens)
            res->n_tokens[i] = (int32_t)labels[i].n;
    }
}

roj_status roj_choose(roj_context *ctx, int32_t seq,
                      const float *prompt_logits,
                      const char *const *labels, size_t n_labels,
                      const roj_choice_params *params,
                      roj_choice_result *result)
{
    const roj_model *model = roj_context_model(ctx);
    const roj_vocab *vocab = roj_model_vocab(model);
    int32_t n_vocab = roj_model_n_vocab(model);
    label_tokens *toks = NULL;
    const label_tokens **order = NULL;
    size_t max_n = 0;
    double *logprob = NULL;
    float *rows = NULL;
    roj_status st = ROJ_OK;

    if (n_labels == 0 || !labels || !prompt_logits)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "choice: labels and prompt logits are needed");
    toks = calloc(n_labels, sizeof *toks);
    order = malloc(n_labels * sizeof *order);
    logprob = malloc(2 * n_labels * sizeof *logprob);
    if (!toks || !order || !logprob) {
        st = roj_error(ROJ_ERR_NOMEM, "choice: out of memory");
        goto cleanup;
    }

    /* Tokenize every label and order them so shared prefixes meet. */
    for (size_t i = 0; i < n_labels && st == ROJ_OK; i++) {
        if (!labels[i])
            st = roj_error(ROJ_ERR_INVALID_ARG, "choice: label %zu is NULL",
                           i);
        else
            st = tokenize_label(vocab, labels[i], params, i, &toks[i]);
        if (st == ROJ_OK && toks[i].n > max_n)
            max_n = toks[i].n;
        order[i] = &toks[i];
    }
    if (st != ROJ_OK)
        goto cleanup;
    qsort(order, n_labels, sizeof *order, compare_labels);

    rows = malloc(max_n * (size_t)n_vocab * sizeof *rows);
    if (!rows) {
        st = roj_error(ROJ_ERR_NOMEM, "choice: out of memory for %zu rows",
                       max_n);
        goto cleanup;
    }
    memcpy(rows, prompt_logits, (size_t)n_vocab * sizeof *rows);
    st = score_labels(ctx, seq, toks, order, n_labels, rows, n_vocab,
                      logprob);
    if (st == ROJ_OK)
        rank_labels(toks, n_labels, logprob, params && params->normalize,
                    result, logprob + n_labels);

cleanup:
    for (size_t i = 0; toks && i < n_labels; i++)
        free(toks[i].ids);
    free(toks);
    free(order);
    free(logprob);
    free(rows);
    return st;
}
