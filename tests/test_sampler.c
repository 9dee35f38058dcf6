/* Sampler filters, determinism and numeric checks; streaming detokenizer
 * with UTF-8 hold-back and stop strings. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roj/context.h"
#include "roj/sampler.h"
#include "roj/tokenizer.h"
#include "sample/sample_util.h"
#include "sample/sampler_internal.h"

/* Sampler settings that switch every filter off at temperature 1. */
static roj_sampler_params plain_params(void)
{
    roj_sampler_params p = roj_sampler_greedy_params();
    p.temperature = 1.0f;
    return p;
}

static roj_sampler *make_sampler(const roj_sampler_params *p, int32_t n)
{
    roj_sampler *s = NULL;
    assert_int_equal(roj_sampler_create(p, n, &s), ROJ_OK);
    assert_non_null(s);
    return s;
}

static bool has_id(const sample_candidate *c, int32_t n, roj_token id)
{
    for (int32_t i = 0; i < n; i++)
        if (c[i].id == id)
            return true;
    return false;
}

static void sampler_greedy_takes_max(void **state)
{
    (void)state;
    float logits[6] = {0.1f, 2.5f, -1.0f, 2.5f, 2.4f, -INFINITY};
    roj_sampler_params p = roj_sampler_greedy_params();
    roj_sampler *s = make_sampler(&p, 6);
    roj_token t = -1;
    float prob = 0;

    assert_int_equal(roj_sampler_sample(s, logits, &t, &prob), ROJ_OK);
    assert_int_equal(t, 1); /* the lower id of the tie */
    assert_true(prob == 1.0f);
    roj_sampler_free(s);
}

/* Draws n tokens from fixed logits. */
static void draw_sequence(uint64_t seed, roj_token *out, int n)
{
    float logits[16];
    roj_sampler_params p = roj_sampler_default_params();
    p.seed = seed;
    p.top_k = 0;
    p.min_p = 0.0f;
    p.temperature = 1.0f;
    for (int i = 0; i < 16; i++)
        logits[i] = (float)(i % 5) * 0.3f;
    roj_sampler *s = make_sampler(&p, 16);
    for (int i = 0; i < n; i++)
        assert_int_equal(roj_sampler_sample(s, logits, &out[i], NULL),
                         ROJ_OK);
    roj_sampler_free(s);
}

static void sampler_seed_determinism(void **state)
{
    (void)state;
    roj_token a[200], b[200], c[200];
    /* Fixed outputs: xoshiro256** and the portable exp make these the
     * same on every IEEE-754 platform. */
    static const roj_token expected[12] = {4, 3, 7, 0, 10, 1, 12, 6, 12, 2,
                                           7, 14};
    int differ = 0;

    draw_sequence(42, a, 200);
    draw_sequence(42, b, 200);
    draw_sequence(43, c, 200);
    assert_memory_equal(a, b, sizeof a);
    for (int i = 0; i < 200; i++)
        differ += a[i] != c[i];
    assert_true(differ > 100);
    for (int i = 0; i < 12; i++) {
        if (a[i] != expected[i])
            printf("draw %d: got %d, expected %d\n", i, a[i], expected[i]);
    }
    for (int i = 0; i < 12; i++) {
        assert_int_equal(a[i], expected[i]);
    }
}

/* Reference outputs of splitmix64 and xoshiro256** from their authors'
 * definitions. */
static void sample_rng_reference_values(void **state)
{
    (void)state;
    sample_rng rng = {{1, 2, 3, 4}};

    assert_true(sample_rng_next(&rng) == 11520u);
    assert_true(sample_rng_next(&rng) == 0u);
    assert_true(sample_rng_next(&rng) == 1509978240u);
    assert_true(sample_rng_next(&rng) == 1215971899390074240u);
    sample_rng_seed(&rng, 0);
    assert_true(rng.s[0] == 0xE220A8397B1DCDAFu);
    for (int i = 0; i < 1000; i++) {
        double u = sample_rng_uniform(&rng);
        assert_true(u >= 0.0 && u < 1.0);
    }
}

static void sampler_reset_restarts_sequence(void **state)
{
    (void)state;
    float logits[8] = {0, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f};
    roj_sampler_params p = plain_params();
    roj_sampler *s = make_sampler(&p, 8);
    roj_token first[20], again[20];

    roj_sampler_reset(s, 7);
    for (int i = 0; i < 20; i++)
        assert_int_equal(roj_sampler_sample(s, logits, &first[i], NULL), 0);
    roj_sampler_reset(s, 7);
    for (int i = 0; i < 20; i++)
        assert_int_equal(roj_sampler_sample(s, logits, &again[i], NULL), 0);
    assert_memory_equal(first, again, sizeof first);
    roj_sampler_free(s);
}

static void sampler_top_k_keeps_k(void **state)
{
    (void)state;
    float logits[100];
    uint64_t rng = 99;
    roj_sampler_params p = plain_params();
    const sample_candidate *c = NULL;
    int32_t n = 0;

    for (int i = 0; i < 100; i++)
        logits[i] = test_rand_float(&rng, -3.0f, 3.0f);
    logits[17] = 10.0f;
    logits[3] = 9.0f;
    logits[60] = 8.0f;
    logits[71] = 7.5f;
    logits[88] = 7.0f;
    logits[5] = 6.9f; /* sixth best: must be cut */
    p.top_k = 5;
    roj_sampler *s = make_sampler(&p, 100);
    assert_int_equal(sampler_filter(s, logits, &c, &n), ROJ_OK);
    assert_int_equal(n, 5);
    assert_int_equal(c[0].id, 17);
    assert_int_equal(c[1].id, 3);
    assert_int_equal(c[2].id, 60);
    assert_int_equal(c[3].id, 71);
    assert_int_equal(c[4].id, 88);
    assert_false(has_id(c, n, 5));
    roj_sampler_free(s);
}

/* Logits whose softmax is exactly probs (up to rounding). */
static void logits_from_probs(const double *probs, float *logits, int n)
{
    for (int i = 0; i < n; i++)
        logits[i] = (float)log(probs[i]);
}

static void sampler_top_p_cumulative(void **state)
{
    (void)state;
    const double probs[5] = {0.05, 0.5, 0.15, 0.3, 0.0};
    float logits[5];
    const sample_candidate *c = NULL;
    int32_t n = 0;
    roj_sampler_params p = plain_params();

    logits_from_probs(probs, logits, 4);
    logits[4] = -INFINITY;

    p.top_p = 0.79f; /* 0.5 + 0.3 reaches it */
    roj_sampler *s = make_sampler(&p, 5);
    assert_int_equal(sampler_filter(s, logits, &c, &n), ROJ_OK);
    assert_int_equal(n, 2);
    assert_int_equal(c[0].id, 1);
    assert_int_equal(c[1].id, 3);
    roj_sampler_free(s);

    p.top_p = 0.81f; /* needs 0.15 too */
    s = make_sampler(&p, 5);
    assert_int_equal(sampler_filter(s, logits, &c, &n), ROJ_OK);
    assert_int_equal(n, 3);
    assert_int_equal(c[2].id, 2);
    roj_sampler_free(s);

    p.top_p = 0.1f; /* the best token alone */
    s = make_sampler(&p, 5);
    assert_int_equal(sampler_filter(s, logits, &c, &n), ROJ_OK);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].id, 1);
    roj_sampler_free(s);
}

static int compare_desc(const void *pa, const void *pb)
{
    const sample_candidate *a = pa, *b = pb;
    if (a->logit != b->logit)
        return a->logit > b->logit ? -1 : 1;
    return a->id < b->id ? -1 : 1;
}

/* Large vocabularies go through the partial-selection path of top-p; the
 * kept list must equal a full sort followed by the cumulative cut. */
static void sampler_top_p_large_vocab(void **state)
{
    (void)state;
    const int32_t n = 20000;
    float *logits = malloc((size_t)n * sizeof *logits);
    sample_candidate *ref = malloc((size_t)n * sizeof *ref);
    const float tops[4] = {0.3f, 0.9f, 0.99f, 0.999999f};
    uint64_t rng = 3;

    assert_non_null(logits);
    assert_non_null(ref);
    for (int32_t i = 0; i < n; i++)
        logits[i] = test_rand_float(&rng, -4.0f, 4.0f);
    for (int t = 0; t < 4; t++) {
        roj_sampler_params p = plain_params();
        const sample_candidate *c = NULL;
        int32_t kept = 0, want = n;
        double total = 0.0, cum = 0.0;
        float max = -INFINITY;

        p.top_p = tops[t];
        roj_sampler *s = make_sampler(&p, n);
        assert_int_equal(sampler_filter(s, logits, &c, &kept), ROJ_OK);
        for (int32_t i = 0; i < n; i++) {
            ref[i].id = i;
            ref[i].logit = logits[i];
            if (logits[i] > max)
                max = logits[i];
        }
        for (int32_t i = 0; i < n; i++)
            total += sample_exp((double)logits[i] - (double)max);
        qsort(ref, (size_t)n, sizeof *ref, compare_desc);
        for (int32_t i = 0; i < n; i++) {
            cum += sample_exp((double)ref[i].logit - (double)max) / total;
            if (cum >= (double)tops[t]) {
                want = i + 1;
                break;
            }
        }
        printf("  top_p %g keeps %d of %d\n", (double)tops[t], kept, n);
        assert_int_equal(kept, want);
        for (int32_t i = 0; i < kept; i++)
            assert_int_equal(c[i].id, ref[i].id);
        roj_sampler_free(s);
    }
    free(logits);
    free(ref);
}

static void sampler_min_p_threshold(void **state)
{
    (void)state;
    const double probs[4] = {0.05, 0.5, 0.15, 0.3};
    float logits[4];
    const sample_candidate *c = NULL;
    int32_t n = 0;
    roj_sampler_params p = plain_params();

    logits_from_probs(probs, logits, 4);
    p.min_p = 0.2f; /* keep p >= 0.1 */
    roj_sampler *s = make_sampler(&p, 4);
    assert_int_equal(sampler_filter(s, logits, &c, &n), ROJ_OK);
    assert_int_equal(n, 3);
    assert_true(has_id(c, n, 1));
    assert_true(has_id(c, n, 2));
    assert_true(has_id(c, n, 3));
    assert_false(has_id(c, n, 0));
    roj_sampler_free(s);

    p.min_p = 0.61f; /* 0.3 / 0.5 = 0.6 is below */
    s = make_sampler(&p, 4);
    assert_int_equal(sampler_filter(s, logits, &c, &n), ROJ_OK);
    assert_int_equal(n, 1);
    assert_int_equal(c[0].id, 1);
    roj_sampler_free(s);
}

static void sampler_penalties_exact(void **state)
{
    (void)state;
    float logits[4] = {2.0f, -2.0f, 1.0f, 0.5f};
    const sample_candidate *c = NULL;
    int32_t n = 0;
    roj_sampler_params p = plain_params();

    p.repeat_penalty = 2.0f;
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    p.penalty_last_n = 8;
    roj_sampler *s = make_sampler(&p, 4);
    roj_sampler_accept(s, 0);
    roj_sampler_accept(s, 1);
    roj_sampler_accept(s, 1);
    assert_int_equal(sampler_filter(s, logits, &c, &n), ROJ_OK);
    assert_int_equal(n, 4);
    assert_float_equal(c[0].logit, 2.0 / 2 - 0.5 - 0.25, 1e-6);
    assert_float_equal(c[1].logit, -2.0 * 2 - 2 * 0.5 - 0.25, 1e-6);
    assert_float_equal(c[2].logit, 1.0, 0);
    assert_float_equal(c[3].logit, 0.5, 0);
    roj_sampler_free(s);

    /* A window of 2 forgets the first token. */
    p.penalty_last_n = 2;
    s = make_sampler(&p, 4);
    roj_sampler_accept(s, 0);
    roj_sampler_accept(s, 1);
    roj_sampler_accept(s, 1);
    assert_int_equal(sampler_filter(s, logits, &c, &n), ROJ_OK);
    assert_float_equal(c[0].logit, 2.0, 0);
    assert_float_equal(c[1].logit, -5.25, 1e-6);
    roj_sampler_free(s);
}

static void sampler_temperature_scales(void **state)
{
    (void)state;
    float logits[3] = {1.0f, -0.5f, 0.25f};
    const sample_candidate *c = NULL;
    int32_t n = 0;
    roj_sampler_params p = plain_params();

    p.temperature = 0.5f;
    roj_sampler *s = make_sampler(&p, 3);
    assert_int_equal(sampler_filter(s, logits, &c, &n), ROJ_OK);
    assert_int_equal(n, 3);
    assert_float_equal(c[0].logit, 2.0, 0);
    assert_float_equal(c[1].logit, -1.0, 0);
    assert_float_equal(c[2].logit, 0.5, 0);
    roj_sampler_free(s);
}

static void sampler_rejects_nan_inf(void **state)
{
    (void)state;
    float logits[10] = {0};
    roj_sampler_params p = roj_sampler_default_params();
    roj_sampler *s = make_sampler(&p, 10);
    roj_token t = 123;

    logits[7] = NAN;
    assert_int_equal(roj_sampler_sample(s, logits, &t, NULL),
                     ROJ_ERR_NUMERIC);
    assert_non_null(strstr(roj_last_error(), "token 7"));
    assert_int_equal(t, 123);

    logits[7] = 0;
    logits[2] = INFINITY;
    assert_int_equal(roj_sampler_sample(s, logits, &t, NULL),
                     ROJ_ERR_NUMERIC);
    assert_non_null(strstr(roj_last_error(), "token 2"));

    for (int i = 0; i < 10; i++)
        logits[i] = -INFINITY;
    assert_int_equal(roj_sampler_sample(s, logits, &t, NULL),
                     ROJ_ERR_NUMERIC);
    roj_sampler_free(s);
}

static void sampler_mask_never_drawn(void **state)
{
    (void)state;
    float logits[4] = {5.0f, -INFINITY, 0.0f, -INFINITY};
    roj_sampler_params p = plain_params();
    roj_sampler *s = make_sampler(&p, 4);

    for (int i = 0; i < 500; i++) {
        roj_token t = -1;
        assert_int_equal(roj_sampler_sample(s, logits, &t, NULL), ROJ_OK);
        assert_true(t == 0 || t == 2);
    }
    roj_sampler_free(s);
}

static void sampler_draw_frequencies(void **state)
{
    (void)state;
    const double probs[3] = {0.5, 0.3, 0.2};
    float logits[3];
    int counts[3] = {0};
    roj_sampler_params p = plain_params();
    const int n = 20000;

    logits_from_probs(probs, logits, 3);
    roj_sampler *s = make_sampler(&p, 3);
    for (int i = 0; i < n; i++) {
        roj_token t = -1;
        float prob = 0;
        assert_int_equal(roj_sampler_sample(s, logits, &t, &prob), ROJ_OK);
        assert_float_equal(prob, probs[t], 1e-6);
        counts[t]++;
    }
    for (int i = 0; i < 3; i++)
        assert_float_equal((double)counts[i] / n, probs[i], 0.015);
    roj_sampler_free(s);
}

static void sampler_rejects_bad_params(void **state)
{
    (void)state;
    roj_sampler_params p = roj_sampler_default_params();
    roj_sampler *s = NULL;

    p.repeat_penalty = 0.0f;
    assert_int_equal(roj_sampler_create(&p, 10, &s), ROJ_ERR_INVALID_ARG);
    assert_null(s);
    p = roj_sampler_default_params();
    p.penalty_last_n = -1;
    assert_int_equal(roj_sampler_create(&p, 10, &s), ROJ_ERR_INVALID_ARG);
    p = roj_sampler_default_params();
    assert_int_equal(roj_sampler_create(&p, 0, &s), ROJ_ERR_INVALID_ARG);
}

static void logits_prob_stable(void **state)
{
    (void)state;
    float big[3] = {1000.0f, 1000.0f, -INFINITY};
    float mixed[3] = {0.0f, (float)log(3.0), -50.0f};
    double prob = 0, lp = 0;

    assert_int_equal(roj_logits_prob(big, 3, 0, &prob), ROJ_OK);
    assert_float_equal(prob, 0.5, 1e-12);
    assert_int_equal(roj_logits_prob(big, 3, 2, &prob), ROJ_OK);
    assert_true(prob == 0.0);
    assert_int_equal(roj_logits_prob(mixed, 3, 1, &prob), ROJ_OK);
    assert_float_equal(prob, 0.75, 1e-7);
    assert_int_equal(roj_logits_logprob(mixed, 3, 2, &lp), ROJ_OK);
    assert_float_equal(lp, -50.0 - log(4.0), 1e-5);
    big[1] = NAN;
    assert_int_equal(roj_logits_prob(big, 3, 0, &prob), ROJ_ERR_NUMERIC);
    assert_non_null(strstr(roj_last_error(), "token 1"));
    assert_int_equal(roj_logits_prob(mixed, 3, 3, &prob),
                     ROJ_ERR_INVALID_ARG);
}

static void sample_exp_matches_libm(void **state)
{
    (void)state;
    double worst = 0;
    for (int i = 0; i <= 200000; i++) {
        double x = -708.0 + 1417.0 * i / 200000.0;
        double want = exp(x), got = sample_exp(x);
        double rel = fabs(got - want) / want;
        if (rel > worst)
            worst = rel;
    }
    assert_true(worst < 1e-14);
    assert_true(sample_exp(0.0) == 1.0);
    assert_true(sample_exp(-800.0) == 0.0);
    assert_true(isinf(sample_exp(800.0)));
}

/* ------------------------------------------------------------------ */
/* Streamer */

typedef struct chunk_log {
    char text[512];
    size_t len;
    int calls;
    int stop_after; /* return false on this call number (0: never) */
} chunk_log;

static bool log_chunk(const char *text, size_t len, void *user_data)
{
    chunk_log *log = user_data;
    assert_true(log->len + len < sizeof log->text);
    memcpy(log->text + log->len, text, len);
    log->len += len;
    log->text[log->len] = '\0';
    log->calls++;
    return log->stop_after == 0 || log->calls < log->stop_after;
}

static roj_streamer *make_streamer(const char *const *stop, size_t n_stop,
                                   int32_t max_tokens, chunk_log *log)
{
    roj_streamer_params p = {
        .stop = stop, .n_stop = n_stop, .max_tokens = max_tokens,
        .on_text = log_chunk, .user_data = log,
    };
    roj_streamer *s = NULL;
    assert_int_equal(roj_streamer_create(NULL, &p, &s), ROJ_OK);
    return s;
}

static roj_stop_reason push(roj_streamer *s, const char *bytes)
{
    roj_stop_reason reason = ROJ_STOP_NONE;
    assert_int_equal(roj_streamer_push_bytes(s, bytes, strlen(bytes),
                                             &reason), ROJ_OK);
    return reason;
}

static void streamer_holds_split_emoji(void **state)
{
    (void)state;
    chunk_log log = {0};
    roj_streamer *s = make_streamer(NULL, 0, 0, &log);

    push(s, "hi ");
    assert_string_equal(log.text, "hi ");
    push(s, "\xF0");
    push(s, "\x9F");
    push(s, "\x8C");
    assert_string_equal(log.text, "hi ");
    push(s, "\x8D!");
    assert_string_equal(log.text, "hi \xF0\x9F\x8C\x8D!");
    assert_int_equal(roj_streamer_finish(s), ROJ_OK);
    assert_string_equal(roj_streamer_text(s, NULL), log.text);
    assert_int_equal(roj_streamer_n_tokens(s), 5);
    roj_streamer_free(s);
}

static void streamer_stop_split_across_tokens(void **state)
{
    (void)state;
    const char *stop[2] = {"###", "<end>"};
    chunk_log log = {0};
    roj_streamer *s = make_streamer(stop, 2, 0, &log);

    assert_int_equal(push(s, "Hello #"), ROJ_STOP_NONE);
    assert_string_equal(log.text, "Hello ");
    assert_int_equal(push(s, "#"), ROJ_STOP_NONE);
    assert_string_equal(log.text, "Hello ");
    assert_int_equal(push(s, "# world"), ROJ_STOP_STRING);
    assert_string_equal(log.text, "Hello ");
    assert_int_equal(push(s, "more"), ROJ_STOP_STRING);
    assert_int_equal(roj_streamer_finish(s), ROJ_OK);
    assert_string_equal(roj_streamer_text(s, NULL), "Hello ");
    roj_streamer_free(s);
}

static void streamer_releases_false_prefix(void **state)
{
    (void)state;
    const char *stop[1] = {"<end>"};
    chunk_log log = {0};
    roj_streamer *s = make_streamer(stop, 1, 0, &log);

    push(s, "a<e");
    assert_string_equal(log.text, "a");
    push(s, "nx<");
    assert_string_equal(log.text, "a<enx");
    push(s, "<en");
    assert_string_equal(log.text, "a<enx<");
    assert_int_equal(push(s, "d>tail"), ROJ_STOP_STRING);
    assert_string_equal(log.text, "a<enx<");
    roj_streamer_free(s);
}

static void streamer_flushes_at_end(void **state)
{
    (void)state;
    const char *stop[1] = {"###"};
    chunk_log log = {0};
    roj_streamer *s = make_streamer(stop, 1, 0, &log);

    push(s, "abc##");
    assert_string_equal(log.text, "abc");
    assert_int_equal(roj_streamer_finish(s), ROJ_OK);
    assert_string_equal(log.text, "abc##");
    roj_streamer_free(s);
}

static void streamer_replaces_invalid_utf8(void **state)
{
    (void)state;
    chunk_log log = {0};
    roj_streamer *s = make_streamer(NULL, 0, 0, &log);

    push(s, "a\xFF" "b");
    assert_string_equal(log.text, "a\xEF\xBF\xBD" "b");
    push(s, "\xE2\x82"); /* first two bytes of U+20AC */
    assert_string_equal(log.text, "a\xEF\xBF\xBD" "b");
    assert_int_equal(roj_streamer_finish(s), ROJ_OK);
    assert_string_equal(log.text, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
    roj_streamer_free(s);
}

static void streamer_max_tokens(void **state)
{
    (void)state;
    chunk_log log = {0};
    roj_streamer *s = make_streamer(NULL, 0, 3, &log);

    assert_int_equal(push(s, "a"), ROJ_STOP_NONE);
    assert_int_equal(push(s, "b"), ROJ_STOP_NONE);
    assert_int_equal(push(s, "c"), ROJ_STOP_MAX_TOKENS);
    assert_int_equal(push(s, "d"), ROJ_STOP_MAX_TOKENS);
    assert_int_equal(roj_streamer_finish(s), ROJ_OK);
    assert_string_equal(log.text, "abc");
    assert_int_equal(roj_streamer_n_tokens(s), 3);
    roj_streamer_reset(s);
    assert_int_equal(push(s, "x"), ROJ_STOP_NONE);
    assert_string_equal(roj_streamer_text(s, NULL), "x");
    roj_streamer_free(s);
}

static void streamer_callback_stops(void **state)
{
    (void)state;
    chunk_log log = {.stop_after = 2};
    roj_streamer *s = make_streamer(NULL, 0, 0, &log);

    assert_int_equal(push(s, "one "), ROJ_STOP_NONE);
    assert_int_equal(push(s, "two "), ROJ_STOP_CALLBACK);
    assert_int_equal(push(s, "three"), ROJ_STOP_CALLBACK);
    assert_string_equal(log.text, "one two ");
    assert_string_equal(roj_stop_reason_name(ROJ_STOP_CALLBACK), "callback");
    roj_streamer_free(s);
}

static void streamer_rejects_empty_stop(void **state)
{
    (void)state;
    const char *stop[2] = {"ok", ""};
    roj_streamer_params p = {.stop = stop, .n_stop = 2};
    roj_streamer *s = NULL;
    assert_int_equal(roj_streamer_create(NULL, &p, &s), ROJ_ERR_INVALID_ARG);
    assert_null(s);
}

/* Feeds a long random byte stream in random pieces and checks the output
 * against a one-shot reference: the stream up to the first stop string,
 * with invalid sequences replaced. */
static void streamer_random_pieces(void **state)
{
    (void)state;
    const char *stop[2] = {"STOP", "\xC3\xA9!"};
    static const char *alphabet[] = {"S", "T", "O", "P", "a", " ",
                                     "\xC3", "\xA9", "!", "\xF0\x9F",
                                     "\x8C\x8D", "\xFF"};
    uint64_t rng = 5;

    for (int round = 0; round < 300; round++) {
        char input[256];
        size_t len = 0;
        chunk_log log = {0};
        roj_streamer *s = make_streamer(stop, 2, 0, &log);
        roj_streamer *ref = make_streamer(stop, 2, 0, &(chunk_log){0});
        roj_stop_reason reason = ROJ_STOP_NONE;

        while (len < 120) {
            const char *piece = alphabet[test_rand_u64(&rng) % 12];
            memcpy(input + len, piece, strlen(piece));
            len += strlen(piece);
        }
        for (size_t at = 0; at < len && reason == ROJ_STOP_NONE;) {
            size_t n = 1 + test_rand_u64(&rng) % 4;
            if (n > len - at)
                n = len - at;
            assert_int_equal(roj_streamer_push_bytes(s, input + at, n,
                                                     &reason), ROJ_OK);
            at += n;
        }
        roj_streamer_finish(s);
        assert_int_equal(roj_streamer_push_bytes(ref, input, len, NULL),
                         ROJ_OK);
        roj_streamer_finish(ref);
        assert_string_equal(roj_streamer_text(s, NULL),
                            roj_streamer_text(ref, NULL));
        assert_int_equal(roj_streamer_reason(s), roj_streamer_reason(ref));
        roj_streamer_free(s);
        roj_streamer_free(ref);
    }
}

/* ------------------------------------------------------------------ */
/* Streamer on real vocabs */

static roj_vocab *open_vocab(const char *name)
{
    char rel[256];
    roj_vocab *v = NULL;
    snprintf(rel, sizeof rel, "fixtures/tokenizer/ggml-vocab-%s.gguf", name);
    assert_int_equal(roj_vocab_open(test_shared_path(rel), &v), ROJ_OK);
    return v;
}

static roj_token *tokenize(const roj_vocab *v, const char *text, size_t *n)
{
    roj_token *ids = NULL;
    assert_int_equal(roj_tokenize(v, text, strlen(text), 0, &ids, n),
                     ROJ_OK);
    return ids;
}

/* Checks that every chunk is valid UTF-8 and counts the calls. */
static bool check_utf8_chunk(const char *text, size_t len, void *user_data)
{
    size_t pos = 0;
    while (pos < len) {
        size_t used = 0;
        assert_int_equal(utf8_step((const unsigned char *)text + pos,
                                   len - pos, &used), UTF8_CHAR);
        pos += used;
    }
    (*(int *)user_data)++;
    return true;
}

static void streamer_spm_byte_tokens(void **state)
{
    (void)state;
    roj_vocab *v = open_vocab("llama-spm");
    const char *text = "Llama \xF0\x9F\xA6\x99 and \xF0\x9F\xA7\xAA!";
    size_t n = 0;
    roj_token *ids = tokenize(v, text, &n);
    int calls = 0, silent_pushes = 0;
    roj_streamer_params p = {.on_text = check_utf8_chunk,
                             .user_data = &calls};
    roj_streamer *s = NULL;

    assert_int_equal(roj_streamer_create(v, &p, &s), ROJ_OK);
    assert_true(n > 8); /* the emoji fall back to byte tokens */
    for (size_t i = 0; i < n; i++) {
        int before = calls;
        roj_stop_reason reason = ROJ_STOP_NONE;
        assert_int_equal(roj_streamer_push(s, ids[i], &reason), ROJ_OK);
        assert_int_equal(reason, ROJ_STOP_NONE);
        silent_pushes += calls == before;
    }
    assert_int_equal(roj_streamer_finish(s), ROJ_OK);
    /* Three of the four byte tokens of each emoji emit nothing. */
    assert_true(silent_pushes >= 6);
    /* SentencePiece pieces keep the leading space of the first word. */
    assert_string_equal(roj_streamer_text(s, NULL),
                        " Llama \xF0\x9F\xA6\x99 and \xF0\x9F\xA7\xAA!");
    roj_streamer_free(s);
    free(ids);
    roj_vocab_free(v);
}

static void streamer_gpt2_stop_and_eog(void **state)
{
    (void)state;
    roj_vocab *v = open_vocab("gpt-2");
    const char *stop[1] = {"<|stop|>"};
    size_t n = 0;
    roj_token *ids = tokenize(v, "Hello world<|stop|> more", &n);
    chunk_log log = {0};
    roj_streamer_params p = {.stop = stop, .n_stop = 1,
                             .on_text = log_chunk, .user_data = &log};
    roj_streamer *s = NULL;
    roj_stop_reason reason = ROJ_STOP_NONE;
    size_t pushed = 0;

    assert_int_equal(roj_streamer_create(v, &p, &s), ROJ_OK);
    assert_true(n >= 6); /* the stop string spans several tokens */
    for (; pushed < n && reason == ROJ_STOP_NONE; pushed++)
        assert_int_equal(roj_streamer_push(s, ids[pushed], &reason), ROJ_OK);
    assert_int_equal(reason, ROJ_STOP_STRING);
    assert_true(pushed < n); /* " more" was never pushed */
    assert_int_equal(roj_streamer_finish(s), ROJ_OK);
    assert_string_equal(log.text, "Hello world");

    /* End-of-generation token: stops and adds no text. */
    roj_streamer_reset(s);
    log.len = 0;
    log.text[0] = '\0';
    assert_int_equal(roj_streamer_push(s, ids[0], &reason), ROJ_OK);
    assert_int_equal(roj_streamer_push(s, roj_vocab_eos(v), &reason),
                     ROJ_OK);
    assert_int_equal(reason, ROJ_STOP_EOG);
    assert_int_equal(roj_streamer_finish(s), ROJ_OK);
    assert_string_equal(roj_streamer_text(s, NULL), "Hello");
    assert_int_equal(roj_streamer_n_tokens(s), 2);
    roj_streamer_free(s);
    free(ids);
    roj_vocab_free(v);
}

/* ------------------------------------------------------------------ */
/* Generation loop on the tiny model */

static const char *const FOX = "The quick brown fox jumps over the lazy dog.";

typedef struct gen_fixture {
    roj_model *model;
    roj_context *ctx;
    roj_token *prompt;
    size_t n_prompt;
} gen_fixture;

static gen_fixture *open_tiny(int32_t n_ctx)
{
    gen_fixture *f = calloc(1, sizeof *f);
    roj_context_params cp = roj_context_default_params();

    assert_non_null(f);
    assert_int_equal(roj_model_open(
        test_shared_path("fixtures/logits/tiny-f32.gguf"), &f->model),
        ROJ_OK);
    cp.n_ctx = n_ctx;
    cp.n_threads = 1;
    assert_int_equal(roj_context_create(f->model, &cp, &f->ctx), ROJ_OK);
    assert_int_equal(roj_tokenize(roj_model_vocab(f->model), FOX,
                                  strlen(FOX), ROJ_TOKENIZE_ADD_SPECIAL,
                                  &f->prompt, &f->n_prompt), ROJ_OK);
    assert_int_equal(f->n_prompt, 13);
    return f;
}

static void close_tiny(gen_fixture *f)
{
    free(f->prompt);
    roj_context_free(f->ctx);
    roj_model_free(f->model);
    free(f);
}

/* Runs roj_generate from an empty sequence 0 and copies the text. */
static char *run_generate(gen_fixture *f, const roj_sampler_params *sp,
                          const char *stop, int32_t max_tokens,
                          roj_generate_result *res)
{
    const roj_vocab *v = roj_model_vocab(f->model);
    roj_sampler *s = make_sampler(sp, roj_model_n_vocab(f->model));
    roj_streamer_params p = {.stop = &stop, .n_stop = stop ? 1 : 0,
                             .max_tokens = max_tokens};
    roj_streamer *st = NULL;
    char *text;

    assert_int_equal(roj_seq_truncate(f->ctx, 0, 0), ROJ_OK);
    assert_int_equal(roj_streamer_create(v, &p, &st), ROJ_OK);
    assert_int_equal(roj_generate(f->ctx, 0, f->prompt, f->n_prompt, s, st,
                                  res), ROJ_OK);
    text = strdup(roj_streamer_text(st, NULL));
    assert_non_null(text);
    roj_streamer_free(st);
    roj_sampler_free(s);
    return text;
}

static void generate_greedy_matches_manual(void **state)
{
    (void)state;
    gen_fixture *f = open_tiny(64);
    roj_sampler_params greedy = roj_sampler_greedy_params();
    roj_generate_result res;
    const roj_vocab *v = roj_model_vocab(f->model);
    int32_t n_vocab = roj_model_n_vocab(f->model);
    char expected[512] = "";
    size_t len = 0;

    /* The first greedy token is llama.cpp's argmax for this prompt. */
    char *text = run_generate(f, &greedy, NULL, 1, &res);
    assert_int_equal(res.last_token, 13497);
    assert_int_equal(res.reason, ROJ_STOP_MAX_TOKENS);
    assert_int_equal(res.n_prompt, 13);
    assert_int_equal(res.n_generated, 1);
    free(text);

    /* Eight tokens against a hand-written argmax loop. */
    text = run_generate(f, &greedy, NULL, 8, &res);
    assert_int_equal(res.n_generated, 8);
    assert_false(res.last_evaluated);
    assert_int_equal(roj_seq_len(f->ctx, 0), 13 + 7);
    assert_int_equal(roj_seq_truncate(f->ctx, 0, 0), ROJ_OK);
    assert_int_equal(roj_decode_tokens(f->ctx, 0, f->prompt, f->n_prompt),
                     ROJ_OK);
    for (int i = 0; i < 8; i++) {
        const float *logits = roj_get_logits(f->ctx, -1);
        roj_token best = 0;
        char piece[64];
        size_t n = 0;
        for (roj_token t = 1; t < n_vocab; t++)
            if (logits[t] > logits[best])
                best = t;
        assert_int_equal(roj_token_to_piece(v, best, 0, piece, sizeof piece,
                                            &n), ROJ_OK);
        memcpy(expected + len, piece, n);
        len += n;
        assert_int_equal(roj_decode_tokens(f->ctx, 0, &best, 1), ROJ_OK);
    }
    expected[len] = '\0';
    printf("  greedy: '%s'\n", text);
    assert_string_equal(text, expected);
    free(text);
    close_tiny(f);
}

static void generate_seed_and_stop(void **state)
{
    (void)state;
    gen_fixture *f = open_tiny(64);
    roj_sampler_params sp = roj_sampler_default_params();
    roj_generate_result res;
    char *a, *b, *c, *cut;

    sp.seed = 1;
    a = run_generate(f, &sp, NULL, 16, &res);
    b = run_generate(f, &sp, NULL, 16, &res);
    sp.seed = 2;
    c = run_generate(f, &sp, NULL, 16, &res);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);

    /* Stop at three bytes from the middle of the first run's text. */
    char stop[8];
    size_t at = strlen(a) / 2;
    while (at > 0 && ((unsigned char)a[at] & 0xC0) == 0x80)
        at--;
    snprintf(stop, sizeof stop, "%.3s", a + at);
    sp.seed = 1;
    cut = run_generate(f, &sp, stop, 16, &res);
    assert_int_equal(res.reason, ROJ_STOP_STRING);
    assert_true(strlen(cut) <= at);
    assert_memory_equal(cut, a, strlen(cut));
    assert_null(strstr(cut, stop));
    free(a);
    free(b);
    free(c);
    free(cut);
    close_tiny(f);
}

static void generate_context_full(void **state)
{
    (void)state;
    gen_fixture *f = open_tiny(20);
    roj_sampler_params greedy = roj_sampler_greedy_params();
    roj_generate_result res;
    char *text = run_generate(f, &greedy, NULL, 100, &res);

    assert_int_equal(res.reason, ROJ_STOP_CONTEXT_FULL);
    assert_int_equal(res.n_generated, 20 - 13 + 1);
    assert_false(res.last_evaluated);
    assert_int_equal(roj_seq_len(f->ctx, 0), 20);
    free(text);
    close_tiny(f);
}

static void decode_tokens_small_batch(void **state)
{
    (void)state;
    roj_model *m = NULL;
    roj_context *ctx = NULL;
    roj_context_params cp = roj_context_default_params();
    roj_token t[48];

    assert_int_equal(roj_model_open(
        test_shared_path("fixtures/logits/tiny-f32.gguf"), &m), ROJ_OK);
    cp.n_ctx = 48;
    cp.n_batch = 5;
    cp.n_threads = 1;
    assert_int_equal(roj_context_create(m, &cp, &ctx), ROJ_OK);
    for (int i = 0; i < 48; i++)
        t[i] = 100 + i;
    /* 40 tokens through a batch size of 5: the chunk shrinks to fit. */
    assert_int_equal(roj_decode_tokens(ctx, 0, t, 40), ROJ_OK);
    assert_int_equal(roj_seq_len(ctx, 0), 40);
    assert_non_null(roj_get_logits(ctx, -1));
    /* Failures change nothing. */
    t[43] = 32000;
    assert_int_equal(roj_decode_tokens(ctx, 0, t + 40, 8),
                     ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "32000"));
    assert_int_equal(roj_seq_len(ctx, 0), 40);
    assert_int_equal(roj_decode_tokens(ctx, 0, t, 9), ROJ_ERR_CONTEXT_FULL);
    assert_int_equal(roj_seq_len(ctx, 0), 40);
    assert_int_equal(roj_decode_tokens(ctx, 3, t, 1), ROJ_ERR_INVALID_ARG);
    roj_context_free(ctx);
    roj_model_free(m);
}

/* A logit bias moves the greedy choice; -inf bans a token; bad biases
 * are rejected. */
static void sampler_logit_bias(void **state)
{
    (void)state;
    float logits[4] = {1.0f, 3.0f, 2.0f, 0.0f};
    float bias[4] = {0.0f, -INFINITY, 0.0f, 2.5f};
    roj_sampler_params p = roj_sampler_greedy_params();
    roj_sampler *s = NULL;
    roj_token token = -1;
    assert_int_equal(roj_sampler_create(&p, 4, &s), ROJ_OK);
    assert_int_equal(roj_sampler_sample(s, logits, &token, NULL), ROJ_OK);
    assert_int_equal(token, 1);
    assert_int_equal(roj_sampler_set_logit_bias(s, bias, 4), ROJ_OK);
    assert_int_equal(roj_sampler_sample(s, logits, &token, NULL), ROJ_OK);
    assert_int_equal(token, 3);
    bias[3] = NAN;
    assert_int_equal(roj_sampler_set_logit_bias(s, bias, 4),
                     ROJ_ERR_NUMERIC);
    assert_int_equal(roj_sampler_set_logit_bias(s, bias, 3),
                     ROJ_ERR_INVALID_ARG);
    assert_int_equal(roj_sampler_set_logit_bias(s, NULL, 0), ROJ_OK);
    assert_int_equal(roj_sampler_sample(s, logits, &token, NULL), ROJ_OK);
    assert_int_equal(token, 1);
    roj_sampler_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sampler_greedy_takes_max),
        cmocka_unit_test(sampler_seed_determinism),
        cmocka_unit_test(sample_rng_reference_values),
        cmocka_unit_test(sampler_reset_restarts_sequence),
        cmocka_unit_test(sampler_top_k_keeps_k),
        cmocka_unit_test(sampler_top_p_cumulative),
        cmocka_unit_test(sampler_top_p_large_vocab),
        cmocka_unit_test(sampler_min_p_threshold),
        cmocka_unit_test(sampler_penalties_exact),
        cmocka_unit_test(sampler_temperature_scales),
        cmocka_unit_test(sampler_rejects_nan_inf),
        cmocka_unit_test(sampler_mask_never_drawn),
        cmocka_unit_test(sampler_draw_frequencies),
        cmocka_unit_test(sampler_rejects_bad_params),
        cmocka_unit_test(logits_prob_stable),
        cmocka_unit_test(sample_exp_matches_libm),
        cmocka_unit_test(streamer_holds_split_emoji),
        cmocka_unit_test(streamer_stop_split_across_tokens),
        cmocka_unit_test(streamer_releases_false_prefix),
        cmocka_unit_test(streamer_flushes_at_end),
        cmocka_unit_test(streamer_replaces_invalid_utf8),
        cmocka_unit_test(streamer_max_tokens),
        cmocka_unit_test(streamer_callback_stops),
        cmocka_unit_test(streamer_rejects_empty_stop),
        cmocka_unit_test(streamer_random_pieces),
        cmocka_unit_test(streamer_spm_byte_tokens),
        cmocka_unit_test(streamer_gpt2_stop_and_eog),
        cmocka_unit_test(generate_greedy_matches_manual),
        cmocka_unit_test(generate_seed_and_stop),
        cmocka_unit_test(generate_context_full),
        cmocka_unit_test(decode_tokens_small_batch),
        cmocka_unit_test(sampler_logit_bias),
    };
    return test_run_group(tests, NULL, NULL);
}
