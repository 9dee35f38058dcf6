/*
 * Token sampler: penalties, top-k, top-p, min-p, temperature and a seeded
 * draw, in llama.cpp's default order (see roj/sampler.h for the rules).
 */
#include "roj/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sample/sample_util.h"
#include "sample/sampler_internal.h"

struct roj_sampler {
    roj_sampler_params params;
    int32_t n_vocab;
    sample_rng rng;
    roj_token *history;       /* ring of penalty_last_n recent tokens */
    int32_t n_history;        /* tokens in the ring */
    int32_t history_next;     /* slot the next token goes to */
    int32_t *counts;          /* (n_vocab) scratch, zero between calls */
    sample_candidate *cands;  /* (n_vocab) candidate list */
    sample_candidate *spare;  /* (n_vocab) copy for the top-p search */
    double *weights;          /* (n_vocab) softmax numerators */
    float *bias;              /* (n_vocab) added to the logits, or NULL */
};

roj_sampler_params roj_sampler_default_params(void)
{
    roj_sampler_params p = {
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .frequency_penalty = 0.0f,
        .presence_penalty = 0.0f,
        .penalty_last_n = 64,
        .seed = 0x5EED,
    };
    return p;
}

roj_sampler_params roj_sampler_greedy_params(void)
{
    roj_sampler_params p = roj_sampler_default_params();
    p.temperature = 0.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

static roj_status check_params(const roj_sampler_params *p, int32_t n_vocab)
{
    if (n_vocab < 1)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "sampler: n_vocab %d must be at least 1", n_vocab);
    if (isnan(p->temperature) || isnan(p->top_p) || isnan(p->min_p) ||
        isnan(p->frequency_penalty) || isnan(p->presence_penalty))
        return roj_error(ROJ_ERR_INVALID_ARG, "sampler: a parameter is NaN");
    if (!(p->repeat_penalty > 0.0f) || isinf(p->repeat_penalty))
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "sampler: repeat_penalty %g must be finite and > 0",
                         (double)p->repeat_penalty);
    if (p->penalty_last_n < 0)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "sampler: penalty_last_n %d must not be negative",
                         p->penalty_last_n);
    return ROJ_OK;
}

roj_status roj_sampler_create(const roj_sampler_params *params,
                              int32_t n_vocab, roj_sampler **out)
{
    roj_sampler *s = NULL;
    roj_status st;

    *out = NULL;
    st = check_params(params, n_vocab);
    if (st != ROJ_OK)
        return st;
    s = calloc(1, sizeof *s);
    if (!s)
        return roj_error(ROJ_ERR_NOMEM, "sampler: out of memory");
    s->params = *params;
    s->n_vocab = n_vocab;
    s->history = calloc((size_t)params->penalty_last_n + 1,
                        sizeof *s->history);
    s->counts = calloc((size_t)n_vocab, sizeof *s->counts);
    s->cands = malloc((size_t)n_vocab * sizeof *s->cands);
    s->spare = malloc((size_t)n_vocab * sizeof *s->spare);
    s->weights = malloc((size_t)n_vocab * sizeof *s->weights);
    if (!s->history || !s->counts || !s->cands || !s->spare ||
        !s->weights) {
        roj_sampler_free(s);
        return roj_error(ROJ_ERR_NOMEM,
                         "sampler: out of memory for %d tokens", n_vocab);
    }
    sample_rng_seed(&s->rng, params->seed);
    *out = s;
    return ROJ_OK;
}

void roj_sampler_free(roj_sampler *sampler)
{
    if (!sampler)
        return;
    free(sampler->history);
    free(sampler->counts);
    free(sampler->cands);
    free(sampler->spare);
    free(sampler->weights);
    free(sampler->bias);
    free(sampler);
}

void roj_sampler_reset(roj_sampler *sampler, uint64_t seed)
{
    sampler->n_history = 0;
    sampler->history_next = 0;
    sampler->params.seed = seed;
    sample_rng_seed(&sampler->rng, seed);
}

void roj_sampler_accept(roj_sampler *sampler, roj_token token)
{
    int32_t cap = sampler->params.penalty_last_n;

    if (cap == 0 || token < 0 || token >= sampler->n_vocab)
        return;
    sampler->history[sampler->history_next] = token;
    sampler->history_next = (sampler->history_next + 1) % cap;
    if (sampler->n_history < cap)
        sampler->n_history++;
}

/* Copies the finite logits into the candidate list, rejecting NaN and
 * +inf; -inf entries are masked tokens and are left out. */
static roj_status load_candidates(roj_sampler *s, const float *logits,
                                  int32_t *n_out)
{
    int32_t n = 0;

    for (int32_t i = 0; i < s->n_vocab; i++) {
        float l = logits[i];
        if (isnan(l) || (isinf(l) && l > 0))
            return roj_error(ROJ_ERR_NUMERIC,
                             "sampler: logit of token %d is %s", i,
                             isnan(l) ? "NaN" : "+inf");
        if (s->bias)
            l += s->bias[i];
        if (isinf(l))
            continue;
        s->cands[n].id = i;
        s->cands[n].logit = l;
        n++;
    }
    if (n == 0)
        return roj_error(ROJ_ERR_NUMERIC,
                         "sampler: every one of the %d logits is -inf",
                         s->n_vocab);
    *n_out = n;
    return ROJ_OK;
}

static void apply_penalties(roj_sampler *s, int32_t n)
{
    const roj_sampler_params *p = &s->params;

    if (s->n_history == 0 ||
        (p->repeat_penalty == 1.0f && p->frequency_penalty == 0.0f &&
         p->presence_penalty == 0.0f))
        return;
    for (int32_t i = 0; i < s->n_history; i++)
        s->counts[s->history[i]]++;
    for (int32_t i = 0; i < n; i++) {
        int32_t count = s->counts[s->cands[i].id];
        float l = s->cands[i].logit;
        if (count == 0)
            continue;
        if (l <= 0.0f)
            l *= p->repeat_penalty;
        else
            l /= p->repeat_penalty;
        l -= (float)count * p->frequency_penalty + p->presence_penalty;
        s->cands[i].logit = l;
    }
    for (int32_t i = 0; i < s->n_history; i++)
        s->counts[s->history[i]] = 0;
}

/* Whether a ranks before b: higher logit first, lower id among ties. */
static int ranks_before(const sample_candidate *a, const sample_candidate *b)
{
    if (a->logit != b->logit)
        return a->logit > b->logit;
    return a->id < b->id;
}

static int compare_candidates(const void *pa, const void *pb)
{
    const sample_candidate *a = pa, *b = pb;
    if (a->logit == b->logit && a->id == b->id)
        return 0;
    return ranks_before(a, b) ? -1 : 1;
}

/* Sifts element i down a heap whose root is the worst-ranked element. */
static void heap_sift_down(sample_candidate *h, int32_t n, int32_t i)
{
    for (;;) {
        int32_t worst = i, l = 2 * i + 1, r = 2 * i + 2;
        if (l < n && ranks_before(&h[worst], &h[l]))
            worst = l;
        if (r < n && ranks_before(&h[worst], &h[r]))
            worst = r;
        if (worst == i)
            return;
        sample_candidate t = h[i];
        h[i] = h[worst];
        h[worst] = t;
        i = worst;
    }
}

/* Keeps the k best candidates, sorted, in O(n log k). */
static int32_t apply_top_k(sample_candidate *c, int32_t n, int32_t k)
{
    if (k > n)
        k = n;
    for (int32_t i = k / 2 - 1; i >= 0; i--)
        heap_sift_down(c, k, i);
    for (int32_t i = k; i < n; i++) {
        if (ranks_before(&c[i], &c[0])) {
            c[0] = c[i];
            heap_sift_down(c, k, 0);
        }
    }
    qsort(c, (size_t)k, sizeof *c, compare_candidates);
    return k;
}

/* Softmax numerators e^(l - max) into w; returns their sum. */
static double softmax_weights(const sample_candidate *c, int32_t n,
                              double *w)
{
    float max = c[0].logit;
    double sum = 0.0;

    for (int32_t i = 1; i < n; i++)
        if (c[i].logit > max)
            max = c[i].logit;
    for (int32_t i = 0; i < n; i++) {
        w[i] = sample_exp((double)c[i].logit - (double)max);
        sum += w[i];
    }
    return sum;
}

/* Length of the shortest prefix of c (sorted) whose mass, relative to
 * total, reaches p; 0 if all n together stay below p. */
static int32_t top_p_prefix(const sample_candidate *c, int32_t n, float max,
                            double total, float p)
{
    double cum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        cum += sample_exp((double)c[i].logit - (double)max) / total;
        if (cum >= (double)p)
            return i + 1;
    }
    return 0;
}

/*
 * Keeps the shortest list of best tokens whose probability mass reaches p
 * (at least one token), leaving it sorted. Unsorted input is not sorted
 * whole: the best 256, 1024, ... tokens are tried first, because real
 * models reach p within a few hundred tokens and a full sort of a 150k
 * vocab costs tens of milliseconds.
 */
static int32_t apply_top_p(roj_sampler *s, int32_t n, float p, bool sorted)
{
    float max = s->cands[0].logit;
    double total = 0.0;
    int32_t kept;

    /* Softmax denominator, summed in list order. */
    for (int32_t i = 1; i < n; i++)
        if (s->cands[i].logit > max)
            max = s->cands[i].logit;
    for (int32_t i = 0; i < n; i++)
        total += sample_exp((double)s->cands[i].logit - (double)max);

    for (int32_t k = 256; !sorted && k < n; k *= 4) {
        memcpy(s->spare, s->cands, (size_t)n * sizeof *s->spare);
        apply_top_k(s->spare, n, k);
        kept = top_p_prefix(s->spare, k, max, total, p);
        if (kept > 0) {
            memcpy(s->cands, s->spare, (size_t)kept * sizeof *s->cands);
            return kept;
        }
    }
    if (!sorted)
        qsort(s->cands, (size_t)n, sizeof *s->cands, compare_candidates);
    kept = top_p_prefix(s->cands, n, max, total, p);
    return kept > 0 ? kept : n;
}

/* Keeps tokens whose probability is at least min_p times the largest,
 * in order; e^(l - max) >= min_p is that ratio without a logarithm. */
static int32_t apply_min_p(roj_sampler *s, int32_t n, float min_p)
{
    int32_t kept = 0;

    softmax_weights(s->cands, n, s->weights);
    for (int32_t i = 0; i < n; i++)
        if (s->weights[i] >= (double)min_p)
            s->cands[kept++] = s->cands[i];
    return kept > 0 ? kept : 1;
}

static int32_t pick_greedy(sample_candidate *c, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (ranks_before(&c[i], &c[best]))
            best = i;
    c[0] = c[best];
    return 1;
}

roj_status sampler_filter(roj_sampler *s, const float *logits,
                          const sample_candidate **cands, int32_t *n_out)
{
    const roj_sampler_params *p = &s->params;
    roj_status st;
    int32_t n = 0;
    bool sorted = false;

    st = load_candidates(s, logits, &n);
    if (st != ROJ_OK)
        return st;
    apply_penalties(s, n);

    if (p->temperature <= 0.0f) {
        n = pick_greedy(s->cands, n);
        goto done;
    }
    if (p->top_k > 0 && p->top_k < n) {
        n = apply_top_k(s->cands, n, p->top_k);
        sorted = true;
    }
    if (p->top_p < 1.0f)
        n = apply_top_p(s, n, p->top_p, sorted);
    if (p->min_p > 0.0f)
        n = apply_min_p(s, n, p->min_p);
    for (int32_t i = 0; i < n; i++)
        s->cands[i].logit /= p->temperature;

done:
    *cands = s->cands;
    *n_out = n;
    return ROJ_OK;
}

roj_status roj_sampler_set_logit_bias(roj_sampler *sampler,
                                      const float *bias, int32_t n)
{
    if (!bias) {
        free(sampler->bias);
        sampler->bias = NULL;
        return ROJ_OK;
    }
    if (n != sampler->n_vocab)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "sampler: logit bias has %d entries, the "
                         "vocabulary %d", n, sampler->n_vocab);
    for (int32_t i = 0; i < n; i++)
        if (isnan(bias[i]) || (isinf(bias[i]) && bias[i] > 0))
            return roj_error(ROJ_ERR_NUMERIC,
                             "sampler: logit bias of token %d is %g; use "
                             "finite values or -inf", i, (double)bias[i]);
    if (!sampler->bias) {
        sampler->bias = malloc((size_t)n * sizeof *sampler->bias);
        if (!sampler->bias)
            return roj_error(ROJ_ERR_NOMEM, "sampler: out of memory");
    }
    memcpy(sampler->bias, bias, (size_t)n * sizeof *bias);
    return ROJ_OK;
}

roj_status roj_sampler_sample(roj_sampler *sampler, const float *logits,
                              roj_token *token, float *prob)
{
    const sample_candidate *c = NULL;
    int32_t n = 0;
    double sum, u, cum = 0.0;
    int32_t chosen;
    roj_status st;

    st = sampler_filter(sampler, logits, &c, &n);
    if (st != ROJ_OK)
        return st;
    if (n == 1) {
        *token = c[0].id;
        if (prob)
            *prob = 1.0f;
        return ROJ_OK;
    }

    /* Draw: the first token whose cumulative weight passes u * sum. */
    sum = softmax_weights(c, n, sampler->weights);
    u = sample_rng_uniform(&sampler->rng) * sum;
    chosen = n - 1;
    for (int32_t i = 0; i < n; i++) {
        cum += sampler->weights[i];
        if (u < cum) {
            chosen = i;
            break;
        }
    }
    *token = c[chosen].id;
    if (prob)
        *prob = (float)(sampler->weights[chosen] / sum);
    return ROJ_OK;
}

/* Finds the maximum of the logits and checks each one. */
static roj_status logits_max(const float *logits, int32_t n, roj_token token,
                             float *max)
{
    *max = -INFINITY;
    if (n < 1 || token < 0 || token >= n)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "token %d is outside the %d logits", token, n);
    for (int32_t i = 0; i < n; i++) {
        if (isnan(logits[i]) || (isinf(logits[i]) && logits[i] > 0))
            return roj_error(ROJ_ERR_NUMERIC, "logit of token %d is %s", i,
                             isnan(logits[i]) ? "NaN" : "+inf");
        if (logits[i] > *max)
            *max = logits[i];
    }
    if (isinf(*max))
        return roj_error(ROJ_ERR_NUMERIC,
                         "every one of the %d logits is -inf", n);
    return ROJ_OK;
}

roj_status roj_logits_logprob(const float *logits, int32_t n,
                              roj_token token, double *logprob)
{
    float max;
    double sum = 0.0;
    roj_status st = logits_max(logits, n, token, &max);

    if (st != ROJ_OK)
        return st;
    for (int32_t i = 0; i < n; i++)
        sum += sample_exp((double)logits[i] - (double)max);
    *logprob = ((double)logits[token] - (double)max) - log(sum);
    return ROJ_OK;
}

roj_status roj_logits_prob(const float *logits, int32_t n, roj_token token,
                           double *prob)
{
    double logprob = 0.0;
    roj_status st = roj_logits_logprob(logits, n, token, &logprob);

    if (st != ROJ_OK)
        return st;
    *prob = sample_exp(logprob);
    return ROJ_OK;
}
