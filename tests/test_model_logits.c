/*
 * Parity of the forward pass with llama.cpp on the tiny synthetic models:
 * same token ids, same argmax, logits within a per-type tolerance, both
 * for one batched prompt and for token-by-token evaluation.
 */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roj/context.h"
#include "roj/model.h"

typedef struct model_case {
    const char *type;
    float tol_batch; /* max |logit - llama.cpp| over the vocabulary */
    float tol_seq;
} model_case;

/* Tolerances: the measured differences with margin. F32 and Q8_0 are
 * about 1e-7 on AVX-512, AVX2 and scalar; F16 is 1e-7 on AVX-512 but
 * 1.3e-4 on AVX2 and scalar, whose F16 sums run in another order; Q4_0
 * and Q4_K_M are 6.4e-3 everywhere. The logits span about +-0.7. Q4_0 and Q5_0 stay further away
 * because llama.cpp rounds their block products in another order and
 * activation quantization amplifies the last-bit differences. */
static const model_case cases[] = {
    {"f32", 1e-4f, 1e-4f},
    {"f16", 1e-3f, 1e-3f},
    {"q8_0", 1e-2f, 1e-2f},
    {"q4_0", 2e-2f, 2e-2f},
    {"q4_k_m", 2e-2f, 2e-2f},
};

typedef struct fixture {
    roj_token *tokens;
    int n_tokens;
    int n_vocab;
    float *logits;     /* batch evaluation */
    float *logits_seq; /* token by token */
    char *prompt;
} fixture;

static float *read_f32(const char *path, int n)
{
    size_t size;
    char *data = test_read_file(path, &size);
    assert_int_equal(size, (size_t)n * sizeof(float));
    float *out = malloc(size);
    memcpy(out, data, size);
    free(data);
    return out;
}

static void fixture_load(const char *type, int prompt, fixture *fx)
{
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/logits/tiny-%s.%d.json", type,
             prompt);
    char *text = test_read_file(test_shared_path(rel), NULL);
    cJSON *json = cJSON_Parse(text);
    assert_non_null(json);
    cJSON *ids = cJSON_GetObjectItem(json, "token_ids");
    fx->n_tokens = cJSON_GetArraySize(ids);
    fx->n_vocab = cJSON_GetObjectItem(json, "n_vocab")->valueint;
    fx->tokens = malloc((size_t)fx->n_tokens * sizeof *fx->tokens);
    for (int i = 0; i < fx->n_tokens; i++)
        fx->tokens[i] = cJSON_GetArrayItem(ids, i)->valueint;
    fx->prompt = strdup(cJSON_GetObjectItem(json, "prompt")->valuestring);
    cJSON_Delete(json);
    free(text);

    snprintf(rel, sizeof rel, "fixtures/logits/tiny-%s.%d.f32", type, prompt);
    fx->logits = read_f32(test_shared_path(rel), fx->n_vocab);
    snprintf(rel, sizeof rel, "fixtures/logits/tiny-%s.%d.seq.f32", type,
             prompt);
    fx->logits_seq = read_f32(test_shared_path(rel), fx->n_vocab);
}

static void fixture_free(fixture *fx)
{
    free(fx->tokens);
    free(fx->logits);
    free(fx->logits_seq);
    free(fx->prompt);
}

static roj_model *open_tiny(const char *type)
{
    char rel[128];
    roj_model *model = NULL;
    snprintf(rel, sizeof rel, "fixtures/logits/tiny-%s.gguf", type);
    roj_status st = roj_model_open(test_shared_path(rel), &model);
    if (st != ROJ_OK)
        fail_msg("roj_model_open(%s): %s", rel, roj_last_error());
    return model;
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* Gap between the best and the second best logit. */
static float top_gap(const float *v, int n)
{
    int best = argmax(v, n);
    float second = -INFINITY;
    for (int i = 0; i < n; i++)
        if (i != best && v[i] > second)
            second = v[i];
    return v[best] - second;
}

static float max_abs_diff(const float *a, const float *b, int n)
{
    float worst = 0.0f;
    for (int i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (d > worst || d != d)
            worst = d;
    }
    return worst;
}

static void check_logits(const char *what, const float *got,
                         const float *want, int n, float tol)
{
    float diff = max_abs_diff(got, want, n);
    printf("  %-28s max |diff| %.3g (tolerance %.3g)\n", what, diff, tol);
    if (!(diff <= tol))
        fail_msg("%s: logits differ from llama.cpp by %g > %g", what, diff,
                 tol);
    if (top_gap(want, n) > 2 * tol)
        assert_int_equal(argmax(got, n), argmax(want, n));
}

static void eval_batch(roj_context *ctx, const fixture *fx, float *out)
{
    roj_batch batch = {fx->n_tokens, fx->tokens, NULL, NULL};
    assert_int_equal(roj_seq_truncate(ctx, 0, 0), ROJ_OK);
    roj_status st = roj_decode(ctx, &batch);
    if (st != ROJ_OK)
        fail_msg("roj_decode: %s", roj_last_error());
    memcpy(out, roj_get_logits(ctx, -1), (size_t)fx->n_vocab * sizeof *out);
}

static void eval_seq(roj_context *ctx, const fixture *fx, float *out)
{
    assert_int_equal(roj_seq_truncate(ctx, 0, 0), ROJ_OK);
    for (int i = 0; i < fx->n_tokens; i++) {
        roj_batch batch = {1, &fx->tokens[i], NULL, NULL};
        roj_status st = roj_decode(ctx, &batch);
        if (st != ROJ_OK)
            fail_msg("roj_decode token %d: %s", i, roj_last_error());
    }
    assert_int_equal(roj_seq_len(ctx, 0), fx->n_tokens);
    memcpy(out, roj_get_logits(ctx, -1), (size_t)fx->n_vocab * sizeof *out);
}

static void run_case(const model_case *mc, int n_threads)
{
    roj_model *model = open_tiny(mc->type);
    roj_context_params params = roj_context_default_params();
    params.n_ctx = 128;
    params.n_threads = n_threads;
    roj_context *ctx = NULL;
    assert_int_equal(roj_context_create(model, &params, &ctx), ROJ_OK);

    for (int prompt = 1; prompt <= 3; prompt++) {
        fixture fx;
        char what[64];
        fixture_load(mc->type, prompt, &fx);
        assert_int_equal(fx.n_vocab, roj_model_n_vocab(model));
        float *got = malloc((size_t)fx.n_vocab * sizeof *got);

        eval_batch(ctx, &fx, got);
        snprintf(what, sizeof what, "%s prompt %d batch t%d", mc->type,
                 prompt, n_threads);
        check_logits(what, got, fx.logits, fx.n_vocab, mc->tol_batch);

        eval_seq(ctx, &fx, got);
        snprintf(what, sizeof what, "%s prompt %d seq t%d", mc->type,
                 prompt, n_threads);
        check_logits(what, got, fx.logits_seq, fx.n_vocab, mc->tol_seq);

        free(got);
        fixture_free(&fx);
    }
    roj_context_free(ctx);
    roj_model_free(model);
}

static void tiny_f32_matches(void **state) { (void)state; run_case(&cases[0], 1); }
static void tiny_f16_matches(void **state) { (void)state; run_case(&cases[1], 1); }
static void tiny_q8_0_matches(void **state) { (void)state; run_case(&cases[2], 1); }
static void tiny_q4_0_matches(void **state) { (void)state; run_case(&cases[3], 1); }
static void tiny_q4_k_m_matches(void **state) { (void)state; run_case(&cases[4], 1); }
static void tiny_q8_0_two_threads(void **state)
{
    (void)state;
    test_need_threads();
    run_case(&cases[2], 2);
}

/* Token ids from roj's tokenizer equal llama.cpp's for the fixture
 * prompts (BOS added, special tokens parsed). */
static void tiny_tokenizer_matches(void **state)
{
    (void)state;
    roj_model *model = open_tiny("f32");
    for (int prompt = 1; prompt <= 3; prompt++) {
        fixture fx;
        roj_token *ids = NULL;
        size_t n = 0;
        fixture_load("f32", prompt, &fx);
        assert_int_equal(roj_tokenize(roj_model_vocab(model), fx.prompt,
                                      strlen(fx.prompt),
                                      ROJ_TOKENIZE_ADD_SPECIAL |
                                          ROJ_TOKENIZE_PARSE_SPECIAL,
                                      &ids, &n),
                         ROJ_OK);
        assert_int_equal(n, (size_t)fx.n_tokens);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(ids[i], fx.tokens[i]);
        free(ids);
        fixture_free(&fx);
    }
    roj_model_free(model);
}

/* Three prompts as three sequences of one batch give the same logits as
 * each prompt alone. */
static void tiny_multi_sequence_batch(void **state)
{
    (void)state;
    roj_model *model = open_tiny("q8_0");
    roj_context_params params = roj_context_default_params();
    params.n_threads = test_threads(0);
    params.n_ctx = 64;
    params.n_seq = 3;
    roj_context *ctx = NULL;
    assert_int_equal(roj_context_create(model, &params, &ctx), ROJ_OK);

    fixture fx[3];
    int total = 0;
    for (int p = 0; p < 3; p++) {
        fixture_load("q8_0", p + 1, &fx[p]);
        total += fx[p].n_tokens;
    }
    roj_token *tokens = malloc((size_t)total * sizeof *tokens);
    int32_t *seq = malloc((size_t)total * sizeof *seq);
    bool *want = calloc((size_t)total, sizeof *want);
    int last[3] = {0, 0, 0};
    /* Interleave the prompts token by token, as a server would. */
    int n = 0;
    for (int i = 0; n < total; i++)
        for (int p = 0; p < 3; p++)
            if (i < fx[p].n_tokens) {
                tokens[n] = fx[p].tokens[i];
                seq[n] = p;
                last[p] = n;
                n++;
            }
    for (int p = 0; p < 3; p++)
        want[last[p]] = true;
    roj_batch batch = {total, tokens, seq, want};
    assert_int_equal(roj_decode(ctx, &batch), ROJ_OK);
    for (int p = 0; p < 3; p++) {
        char what[64];
        snprintf(what, sizeof what, "q8_0 prompt %d in 3-seq batch", p + 1);
        assert_int_equal(roj_seq_len(ctx, p), fx[p].n_tokens);
        check_logits(what, roj_get_logits(ctx, last[p]), fx[p].logits,
                     fx[p].n_vocab, cases[2].tol_batch);
        fixture_free(&fx[p]);
    }
    free(tokens);
    free(seq);
    free(want);
    roj_context_free(ctx);
    roj_model_free(model);
}

/* A prompt longer than the context is rejected and changes nothing. */
static void tiny_context_overflow(void **state)
{
    (void)state;
    roj_model *model = open_tiny("f32");
    roj_context_params params = roj_context_default_params();
    params.n_threads = test_threads(0);
    params.n_ctx = 8;
    roj_context *ctx = NULL;
    assert_int_equal(roj_context_create(model, &params, &ctx), ROJ_OK);
    roj_token tokens[9] = {1, 450, 4996, 17354, 1701, 29916, 432, 17204, 975};
    roj_batch batch = {9, tokens, NULL, NULL};
    assert_int_equal(roj_decode(ctx, &batch), ROJ_ERR_CONTEXT_FULL);
    assert_non_null(strstr(roj_last_error(), "context holds 8"));
    assert_int_equal(roj_seq_len(ctx, 0), 0);
    batch.n_tokens = 8;
    assert_int_equal(roj_decode(ctx, &batch), ROJ_OK);
    batch.n_tokens = 1;
    assert_int_equal(roj_decode(ctx, &batch), ROJ_ERR_CONTEXT_FULL);
    assert_int_equal(roj_seq_len(ctx, 0), 8);

    roj_token bad = 32000;
    roj_batch bad_batch = {1, &bad, NULL, NULL};
    assert_int_equal(roj_seq_truncate(ctx, 0, 0), ROJ_OK);
    assert_int_equal(roj_decode(ctx, &bad_batch), ROJ_ERR_INVALID_ARG);
    roj_context_free(ctx);
    roj_model_free(model);
}

static bool abort_always(void *user_data)
{
    int *calls = user_data;
    (*calls)++;
    return true;
}

/* An abort callback stops roj_decode, which then leaves the sequence as it
 * was; bad lengths and negative parameters are rejected. */
static void tiny_abort_and_bad_args(void **state)
{
    (void)state;
    roj_model *model = open_tiny("f32");
    roj_context_params params = roj_context_default_params();
    params.n_threads = test_threads(0);
    params.n_ctx = 32;
    params.n_seq = 2;
    roj_context *ctx = NULL;
    assert_int_equal(roj_context_create(model, &params, &ctx), ROJ_OK);
    roj_token tokens[4] = {1, 450, 4996, 17354};
    roj_batch batch = {4, tokens, NULL, NULL};
    int calls = 0;

    roj_context_set_abort(ctx, abort_always, &calls);
    assert_int_equal(roj_decode(ctx, &batch), ROJ_ERR_ABORTED);
    assert_int_equal(calls, 1);
    assert_int_equal(roj_seq_len(ctx, 0), 0);
    roj_context_set_abort(ctx, NULL, NULL);
    assert_int_equal(roj_decode(ctx, &batch), ROJ_OK);
    assert_int_equal(roj_seq_len(ctx, 0), 4);

    assert_int_equal(roj_seq_truncate(ctx, 0, -1), ROJ_ERR_INVALID_ARG);
    assert_int_equal(roj_seq_len(ctx, 0), 4);
    assert_int_equal(roj_seq_truncate(ctx, 0, 10), ROJ_OK);
    assert_int_equal(roj_seq_len(ctx, 0), 4);
    assert_int_equal(roj_seq_copy(ctx, 0, 1, 5), ROJ_ERR_INVALID_ARG);
    assert_int_equal(roj_seq_copy(ctx, 0, 1, -1), ROJ_ERR_INVALID_ARG);
    assert_int_equal(roj_seq_copy(ctx, 0, 1, 3), ROJ_OK);
    assert_int_equal(roj_seq_len(ctx, 1), 3);
    roj_context_free(ctx);

    roj_context *bad = NULL;
    params.n_batch = -1;
    assert_int_equal(roj_context_create(model, &params, &bad),
                     ROJ_ERR_INVALID_ARG);
    assert_null(bad);
    roj_model_free(model);
}

/* Thread count changes which thread computes a row, not the result. */
static void tiny_threads_bitwise_equal(void **state)
{
    (void)state;
    test_need_threads();
    roj_model *model = open_tiny("q4_k_m");
    fixture fx;
    fixture_load("q4_k_m", 2, &fx);
    float *one = malloc((size_t)fx.n_vocab * sizeof *one);
    float *two = malloc((size_t)fx.n_vocab * sizeof *two);
    for (int threads = 1; threads <= 2; threads++) {
        roj_context_params params = roj_context_default_params();
        params.n_ctx = 64;
        params.n_threads = threads;
        roj_context *ctx = NULL;
        assert_int_equal(roj_context_create(model, &params, &ctx), ROJ_OK);
        eval_batch(ctx, &fx, threads == 1 ? one : two);
        roj_context_free(ctx);
    }
    assert_memory_equal(one, two, (size_t)fx.n_vocab * sizeof *one);
    free(one);
    free(two);
    fixture_free(&fx);
    roj_model_free(model);
}


/* Logits of every row of a 150-token batch (two sequences) with the
 * given micro-batch size. */
static float *eval_ubatch(roj_model *model, int n_vocab, int n_ubatch)
{
    enum { N = 150 };
    roj_context_params params = roj_context_default_params();
    params.n_ctx = 128;
    params.n_seq = 2;
    params.n_batch = 256;
    params.n_ubatch = n_ubatch;
    params.n_threads = 1;
    roj_context *ctx = NULL;
    assert_int_equal(roj_context_create(model, &params, &ctx), ROJ_OK);
    roj_token tokens[N];
    int32_t seq[N];
    bool want[N];
    for (int i = 0; i < N; i++) {
        tokens[i] = (roj_token)((i * 7919 + 13) % n_vocab);
        seq[i] = i < 90 ? 0 : 1;
        want[i] = true;
    }
    roj_batch b = {.tokens = tokens, .n_tokens = N, .seq = seq,
                   .logits = want};
    assert_int_equal(roj_decode(ctx, &b), ROJ_OK);
    assert_int_equal(roj_seq_len(ctx, 0), 90);
    assert_int_equal(roj_seq_len(ctx, 1), 60);
    float *out = malloc((size_t)N * n_vocab * sizeof *out);
    for (int i = 0; i < N; i++) {
        const float *row = roj_get_logits(ctx, i);
        assert_non_null(row);
        memcpy(out + (size_t)i * n_vocab, row, (size_t)n_vocab * sizeof *row);
    }
    roj_context_free(ctx);
    return out;
}

/* A batch computed in micro-batches gives the logits of one pass. */
static void tiny_ubatch_split_equal(void **state)
{
    (void)state;
    roj_model *model = open_tiny("q8_0");
    const int n_vocab = roj_model_n_vocab(model);
    float *whole = eval_ubatch(model, n_vocab, 256);
    const int sizes[] = {128, 37, 1};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        float *split = eval_ubatch(model, n_vocab, sizes[k]);
        float diff = max_abs_diff(whole, split, 150 * n_vocab);
        printf("  n_ubatch %-3d max |diff| %.3g\n", sizes[k], diff);
        assert_true(diff <= 1e-5f);
        free(split);
    }
    free(whole);
    roj_model_free(model);
}

int main(void)
{
    test_require_shared("fixtures/logits/tiny-f32.gguf");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tiny_f32_matches),
        cmocka_unit_test(tiny_f16_matches),
        cmocka_unit_test(tiny_q8_0_matches),
        cmocka_unit_test(tiny_q4_0_matches),
        cmocka_unit_test(tiny_q4_k_m_matches),
        cmocka_unit_test(tiny_q8_0_two_threads),
        cmocka_unit_test(tiny_tokenizer_matches),
        cmocka_unit_test(tiny_multi_sequence_batch),
        cmocka_unit_test(tiny_context_overflow),
        cmocka_unit_test(tiny_threads_bitwise_equal),
        cmocka_unit_test(tiny_ubatch_split_equal),
        cmocka_unit_test(tiny_abort_and_bad_args),
    };
    return test_run_group(tests, NULL, NULL);
}
