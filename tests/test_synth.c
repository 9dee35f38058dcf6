/* Synthetic model generator: the tiny preset must reproduce the fixture
 * file bit for bit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "model/synth.h"
#include "roj/context.h"
#include "tokenizer/vocab_builtin.h"
#include "testutil.h"

static void synth_first_values(void **state)
{
    (void)state;
    float v[3];
    synth_fill_tensor(v, 3, SYNTH_DEFAULT_SEED, "token_embd.weight");
    assert_true(v[0] == -0.029324030503630638f);
    assert_true(v[1] == 0.021433917805552483f);
    assert_true(v[2] == -0.011918420903384686f);
}

static void synth_param_counts(void **state)
{
    (void)state;
    synth_shape s;
    assert_int_equal(synth_preset("tiny", &s), ROJ_OK);
    assert_int_equal(synth_param_count(&s, 32000), 4170048);
    assert_int_equal(synth_preset("smollm2-135m-shape", &s), ROJ_OK);
    assert_int_equal(synth_param_count(&s, 50257), 135151488);
    assert_int_equal(synth_preset("qwen-0.5b-shape", &s), ROJ_OK);
    assert_int_equal(synth_param_count(&s, 50257), 402900736);
}

static void synth_unknown_preset(void **state)
{
    (void)state;
    synth_shape s;
    assert_int_equal(synth_preset("huge", &s), ROJ_ERR_NOT_FOUND);
    assert_non_null(strstr(roj_last_error(), "'huge'"));
    assert_non_null(strstr(roj_last_error(), "qwen-0.5b-shape"));
}

static void synth_tiny_matches_fixture(void **state)
{
    (void)state;
    synth_shape s;
    char path[4200], hex[SHA256_HEX_SIZE];
    assert_int_equal(synth_preset("tiny", &s), ROJ_OK);
    s.vocab_path = test_shared_path("fixtures/tokenizer/ggml-vocab-llama-spm.gguf");
    snprintf(path, sizeof path, "%s/tiny-f32.gguf", test_tmpdir());

    roj_status st = synth_write_model(path, &s);
    if (st != ROJ_OK)
        print_error("%s\n", roj_last_error());
    assert_int_equal(st, ROJ_OK);
    assert_int_equal(sha256_file(path, hex), ROJ_OK);
    assert_string_equal(
        hex, "7d1e1fcedec1e00c89334895c9b77b0b5eac4ba996b5981abac2e161fac6b61d");
}

static void synth_vocab_mismatch(void **state)
{
    (void)state;
    synth_shape s;
    char path[4200];
    assert_int_equal(synth_preset("smollm2-135m-shape", &s), ROJ_OK);
    /* The SPM vocabulary has 32000 tokens, the shape expects 50257. */
    s.vocab_path = test_shared_path("fixtures/tokenizer/ggml-vocab-llama-spm.gguf");
    snprintf(path, sizeof path, "%s/mismatch.gguf", test_tmpdir());
    assert_int_equal(synth_write_model(path, &s), ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "32000"));

    s.vocab_path = "/nonexistent/vocab.gguf";
    assert_int_not_equal(synth_write_model(path, &s), ROJ_OK);
    assert_non_null(strstr(roj_last_error(), "/nonexistent/vocab.gguf"));
}

/* With no vocabulary file the model gets the built-in vocabulary and
 * runs: load, tokenize, one decode. */
static void synth_builtin_vocab_runs(void **state)
{
    (void)state;
    synth_shape s;
    char path[4200];
    roj_model *model = NULL;
    roj_context *ctx = NULL;
    assert_int_equal(synth_preset("tiny", &s), ROJ_OK);
    s.vocab_path = NULL;
    s.n_vocab = 0;
    snprintf(path, sizeof path, "%s/builtin.gguf", test_tmpdir());
    assert_int_equal(synth_write_model(path, &s), ROJ_OK);
    assert_int_equal(roj_model_open(path, &model), ROJ_OK);
    assert_int_equal(roj_model_n_vocab(model),
                     (int32_t)vocab_builtin_n_tokens());
    assert_int_equal(roj_context_create(model, NULL, &ctx), ROJ_OK);
    roj_token *ids = NULL;
    size_t n = 0;
    assert_int_equal(roj_tokenize(roj_model_vocab(model), "the cat", 7,
                                  ROJ_TOKENIZE_ADD_SPECIAL, &ids, &n),
                     ROJ_OK);
    assert_true(n > 0);
    roj_batch batch = {(int32_t)n, ids, NULL, NULL};
    assert_int_equal(roj_decode(ctx, &batch), ROJ_OK);
    assert_non_null(roj_get_logits(ctx, -1));
    free(ids);
    roj_context_free(ctx);
    roj_model_free(model);

    s.n_vocab = 1000;
    assert_int_equal(synth_write_model(path, &s), ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "built-in vocabulary"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(synth_first_values),
        cmocka_unit_test(synth_param_counts),
        cmocka_unit_test(synth_unknown_preset),
        cmocka_unit_test(synth_tiny_matches_fixture),
        cmocka_unit_test(synth_vocab_mismatch),
        cmocka_unit_test(synth_builtin_vocab_runs),
    };
    return test_run_group(tests, NULL, NULL);
}
