/*
 * Parity with llama.cpp on the SmolLM2-135M-shaped synthetic model (30
 * layers, tied embeddings, GPT-2 BPE vocabulary). The model is rebuilt
 * from the seeded generator, checked against the published SHA-256,
 * quantized by roj (which must reproduce llama-quantize's files bit for
 * bit), and evaluated on the three fixture prompts.
 */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "model/synth.h"
#include "quant/quantize_file.h"
#include "roj/context.h"
#include "roj/model.h"

typedef struct type_case {
    const char *name;      /* fixture file infix */
    const char *ftype;     /* roj quantize type */
    const char *sha256;    /* of llama-quantize's file */
    float tol;             /* max |logit - llama.cpp|; logits span +-2 */
} type_case;

static const type_case cases[] = {
    {"f32", NULL,
     "2b7b79c1c34ccb56c7fcfac33824bc34bec8bd5e416350267a4b49d50a92a608",
     2e-3f},
    {"f16", "F16",
     "b3e4251dd6f3d7a543978504dea682dfdad2f653f996610dd34619cd7e3ebb74",
     1e-2f},
    {"q8_0", "Q8_0",
     "f6443388c510603da2f2f2ce6cec24c808f8312a9f30b18e938add23b97a6f93",
     8e-2f},
    {"q4_0", "Q4_0",
     "0750def2453cab7707a7f6c2dd55827810ad78db59a5d9b2a679a0f64dfaa6d1",
     8e-2f},
    {"q4_k_m", "Q4_K_M",
     "77f5b182f83031f4160dc61eb3caf2ab0aa9b7cba966fd55dd67d10a5346e925",
     8e-2f},
};

static char model_dir[4096];

static const char *model_path(const char *type)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/smollm2-135m-shape-%s.gguf", model_dir,
             type);
    return path;
}

static void check_sha256(const char *path, const char *want)
{
    char hex[65];
    assert_int_equal(sha256_file(path, hex), ROJ_OK);
    if (strcmp(hex, want) != 0)
        fail_msg("%s: sha256 %s, llama.cpp's file has %s", path, hex, want);
}

static int setup_models(void **state)
{
    (void)state;
    synth_shape shape;
    snprintf(model_dir, sizeof model_dir, "%s", test_tmpdir());
    assert_int_equal(synth_preset("smollm2-135m-shape", &shape), ROJ_OK);
    shape.vocab_path =
        test_require_shared("fixtures/tokenizer/ggml-vocab-gpt-2.gguf");
    char f32[4200];
    snprintf(f32, sizeof f32, "%s", model_path("f32"));
    if (synth_write_model(f32, &shape) != ROJ_OK) {
        fprintf(stderr, "synth_write_model: %s\n", roj_last_error());
        return -1;
    }
    for (size_t i = 1; i < sizeof cases / sizeof cases[0]; i++) {
        enum quant_ftype ftype;
        assert_int_equal(quant_ftype_parse(cases[i].ftype, &ftype), ROJ_OK);
        if (quant_quantize_file(f32, model_path(cases[i].name), ftype, 2) !=
            ROJ_OK) {
            fprintf(stderr, "quantize %s: %s\n", cases[i].ftype,
                    roj_last_error());
            return -1;
        }
    }
    return 0;
}

/* The generator and roj quantize reproduce llama.cpp's files exactly. */
static void smollm_files_match_llama_cpp(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_sha256(model_path(cases[i].name), cases[i].sha256);
}

static float *read_logits(const char *rel, int n)
{
    size_t size;
    char *data = test_read_file(test_shared_path(rel), &size);
    assert_int_equal(size, (size_t)n * sizeof(float));
    return (float *)data;
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

static void compare(const char *what, const float *got, const float *want,
                    int n, float tol)
{
    float worst = 0.0f;
    for (int i = 0; i < n; i++) {
        float d = fabsf(got[i] - want[i]);
        if (!(d <= worst))
            worst = d;
    }
    printf("  %-30s max |diff| %.3g (tolerance %.3g)\n", what, worst, tol);
    if (!(worst <= tol))
        fail_msg("%s: logits differ from llama.cpp by %g > %g", what, worst,
                 tol);
    float second = -INFINITY;
    int best = argmax(want, n);
    for (int i = 0; i < n; i++)
        if (i != best && want[i] > second)
            second = want[i];
    if (want[best] - second > 2 * tol)
        assert_int_equal(argmax(got, n), best);
}

static void run_type(const type_case *tc)
{
    roj_model *model = NULL;
    if (roj_model_open(model_path(tc->name), &model) != ROJ_OK)
        fail_msg("open: %s", roj_last_error());
    roj_context_params params = roj_context_default_params();
    params.n_ctx = 64;
    params.n_threads = 2;
    roj_context *ctx = NULL;
    assert_int_equal(roj_context_create(model, &params, &ctx), ROJ_OK);
    const int n_vocab = roj_model_n_vocab(model);

    for (int p = 1; p <= 3; p++) {
        char rel[256], what[64];
        snprintf(rel, sizeof rel,
                 "fixtures/logits/smollm2-135m-shape-%s.%d.json", tc->name, p);
        char *text = test_read_file(test_shared_path(rel), NULL);
        cJSON *json = cJSON_Parse(text);
        cJSON *ids = cJSON_GetObjectItem(json, "token_ids");
        const char *prompt = cJSON_GetObjectItem(json, "prompt")->valuestring;
        int n = cJSON_GetArraySize(ids);
        roj_token *tokens = malloc((size_t)n * sizeof *tokens);
        for (int i = 0; i < n; i++)
            tokens[i] = cJSON_GetArrayItem(ids, i)->valueint;

        /* roj's tokenizer gives llama.cpp's ids (no BOS for gpt-2). */
        roj_token *mine = NULL;
        size_t n_mine = 0;
        assert_int_equal(roj_tokenize(roj_model_vocab(model), prompt,
                                      strlen(prompt),
                                      ROJ_TOKENIZE_ADD_SPECIAL |
                                          ROJ_TOKENIZE_PARSE_SPECIAL,
                                      &mine, &n_mine),
                         ROJ_OK);
        assert_int_equal(n_mine, (size_t)n);
        assert_memory_equal(mine, tokens, (size_t)n * sizeof *tokens);
        free(mine);

        snprintf(rel, sizeof rel, "fixtures/logits/smollm2-135m-shape-%s.%d.f32",
                 tc->name, p);
        float *want = read_logits(rel, n_vocab);
        roj_batch batch = {n, tokens, NULL, NULL};
        assert_int_equal(roj_seq_truncate(ctx, 0, 0), ROJ_OK);
        assert_int_equal(roj_decode(ctx, &batch), ROJ_OK);
        snprintf(what, sizeof what, "%s prompt %d batch", tc->name, p);
        compare(what, roj_get_logits(ctx, -1), want, n_vocab, tc->tol);
        free(want);

        snprintf(rel, sizeof rel,
                 "fixtures/logits/smollm2-135m-shape-%s.%d.seq.f32", tc->name,
                 p);
        want = read_logits(rel, n_vocab);
        assert_int_equal(roj_seq_truncate(ctx, 0, 0), ROJ_OK);
        for (int i = 0; i < n; i++) {
            roj_batch one = {1, &tokens[i], NULL, NULL};
            assert_int_equal(roj_decode(ctx, &one), ROJ_OK);
        }
        snprintf(what, sizeof what, "%s prompt %d seq", tc->name, p);
        compare(what, roj_get_logits(ctx, -1), want, n_vocab, tc->tol);
        free(want);

        free(tokens);
        cJSON_Delete(json);
        free(text);
    }
    roj_context_free(ctx);
    roj_model_free(model);
}

static void smollm_f32_logits(void **state) { (void)state; run_type(&cases[0]); }
static void smollm_f16_logits(void **state) { (void)state; run_type(&cases[1]); }
static void smollm_q8_0_logits(void **state) { (void)state; run_type(&cases[2]); }
static void smollm_q4_0_logits(void **state) { (void)state; run_type(&cases[3]); }
static void smollm_q4_k_m_logits(void **state) { (void)state; run_type(&cases[4]); }

int main(void)
{
    test_require_shared("fixtures/logits/smollm2-135m-shape-f32.1.f32");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(smollm_files_match_llama_cpp),
        cmocka_unit_test(smollm_f32_logits),
        cmocka_unit_test(smollm_f16_logits),
        cmocka_unit_test(smollm_q8_0_logits),
        cmocka_unit_test(smollm_q4_0_logits),
        cmocka_unit_test(smollm_q4_k_m_logits),
    };
    return test_run_group(tests, setup_models, NULL);
}
