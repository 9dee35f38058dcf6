/* Constrained output: the JSON byte grammar on its own, then choice, span
 * and JSON decoding end to end on the tiny random-weight model. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "roj/constrain.h"
#include "roj/context.h"
#include "model/synth.h"
#include "roj/sampler.h"
#include "sample/constrain_internal.h"
#include "sample/sample_util.h"

static const char *const COLORS[3] = {"red", "green", "bl\"ue"};

static const roj_json_field FIELDS[5] = {
    {.key = "name", .type = ROJ_JSON_STRING, .max_length = 12},
    {.key = "age", .type = ROJ_JSON_INTEGER, .max_length = 3},
    {.key = "score", .type = ROJ_JSON_NUMBER, .max_length = 5},
    {.key = "ok", .type = ROJ_JSON_BOOLEAN},
    {.key = "color", .type = ROJ_JSON_ENUM, .values = COLORS, .n_values = 3},
};

static json_grammar *make_grammar(void)
{
    json_grammar *g = NULL;
    assert_int_equal(json_grammar_create(FIELDS, 5, &g), ROJ_OK);
    return g;
}

/* Feeds text to a fresh grammar; returns whether every byte was accepted
 * and the object is complete. */
static bool grammar_accepts(const json_grammar *g, const char *text)
{
    json_state s = json_grammar_start(g);
    for (const char *p = text; *p; p++)
        if (!json_grammar_step(g, &s, (unsigned char)*p))
            return false;
    return json_state_done(&s);
}

static void json_grammar_accepts_valid(void **state)
{
    (void)state;
    json_grammar *g = make_grammar();

    assert_true(grammar_accepts(g, "{\"name\": \"Bob\", \"age\": 42, "
                                   "\"score\": -0.5, \"ok\": true, "
                                   "\"color\": \"red\"}"));
    assert_true(grammar_accepts(g, "{\"name\": \"\", \"age\": -0, "
                                   "\"score\": 12345, \"ok\": false, "
                                   "\"color\": \"bl\\\"ue\"}"));
    assert_true(grammar_accepts(g, "{\"name\": \"a\\n\\\"\\\\\xC3\xA9\xF0\x9F"
                                   "\xA6\x99\", \"age\": 999, \"score\": "
                                   "1.2345, \"ok\": true, \"color\": "
                                   "\"green\"}"));
    json_grammar_free(g);
}

static void json_grammar_rejects_invalid(void **state)
{
    (void)state;
    json_grammar *g = make_grammar();
    static const char *const bad[] = {
        /* white space outside the forced text */
        "{\"name\":\"Bob\", \"age\": 1, \"score\": 1, \"ok\": true, "
        "\"color\": \"red\"}",
        "{\"name\": \"Bob\" , \"age\": 1, \"score\": 1, \"ok\": true, "
        "\"color\": \"red\"}",
        /* leading zero, too many digits, exponent */
        "{\"name\": \"B\", \"age\": 01, \"score\": 1, \"ok\": true, "
        "\"color\": \"red\"}",
        "{\"name\": \"B\", \"age\": 1000, \"score\": 1, \"ok\": true, "
        "\"color\": \"red\"}",
        "{\"name\": \"B\", \"age\": 1, \"score\": 1e5, \"ok\": true, "
        "\"color\": \"red\"}",
        "{\"name\": \"B\", \"age\": 1, \"score\": 1.23456, \"ok\": true, "
        "\"color\": \"red\"}",
        /* fraction in an integer, dangling dot */
        "{\"name\": \"B\", \"age\": 1.5, \"score\": 1, \"ok\": true, "
        "\"color\": \"red\"}",
        "{\"name\": \"B\", \"age\": 1, \"score\": 1., \"ok\": true, "
        "\"color\": \"red\"}",
        /* string too long, raw newline, \u escape, invalid UTF-8 */
        "{\"name\": \"abcdefghijklm\", \"age\": 1, \"score\": 1, \"ok\": "
        "true, \"color\": \"red\"}",
        "{\"name\": \"a\nb\", \"age\": 1, \"score\": 1, \"ok\": true, "
        "\"color\": \"red\"}",
        "{\"name\": \"\\u0041\", \"age\": 1, \"score\": 1, \"ok\": true, "
        "\"color\": \"red\"}",
        "{\"name\": \"\xC0\xAF\", \"age\": 1, \"score\": 1, \"ok\": true, "
        "\"color\": \"red\"}",
        "{\"name\": \"\xED\xA0\x80\", \"age\": 1, \"score\": 1, \"ok\": "
        "true, \"color\": \"red\"}",
        /* bad literal, enum value outside the list, wrong key */
        "{\"name\": \"B\", \"age\": 1, \"score\": 1, \"ok\": yes, "
        "\"color\": \"red\"}",
        "{\"name\": \"B\", \"age\": 1, \"score\": 1, \"ok\": true, "
        "\"color\": \"blue\"}",
        "{\"nam\": \"B\", \"age\": 1, \"score\": 1, \"ok\": true, "
        "\"color\": \"red\"}",
        /* unfinished */
        "{\"name\": \"B\", \"age\": 1, \"score\": 1, \"ok\": true, "
        "\"color\": \"red\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (grammar_accepts(g, bad[i]))
            printf("accepted: %s\n", bad[i]);
        assert_false(grammar_accepts(g, bad[i]));
    }
    json_grammar_free(g);
}

static void json_grammar_rejects_bad_schema(void **state)
{
    (void)state;
    json_grammar *g = NULL;
    roj_json_field f = {.key = "c", .type = ROJ_JSON_ENUM};
    assert_int_equal(json_grammar_create(&f, 1, &g), ROJ_ERR_INVALID_ARG);
    assert_null(g);
    f.key = NULL;
    f.type = ROJ_JSON_STRING;
    assert_int_equal(json_grammar_create(&f, 1, &g), ROJ_ERR_INVALID_ARG);
    assert_int_equal(json_grammar_create(FIELDS, 0, &g),
                     ROJ_ERR_INVALID_ARG);
}

/* Random walks over allowed bytes always end and always parse. */
static void json_grammar_random_walks(void **state)
{
    (void)state;
    json_grammar *g = make_grammar();
    uint64_t rng = 11;

    for (int walk = 0; walk < 2000; walk++) {
        json_state s = json_grammar_start(g);
        char out[1024];
        size_t len = 0;
        while (!json_state_done(&s)) {
            unsigned char allowed[256];
            int n = 0;
            for (int b = 0; b < 256; b++) {
                json_state t = s;
                if (json_grammar_step(g, &t, (unsigned char)b))
                    allowed[n++] = (unsigned char)b;
            }
            assert_true(n > 0);
            unsigned char b = allowed[test_rand_u64(&rng) % (uint64_t)n];
            assert_true(json_grammar_step(g, &s, b));
            assert_true(len < sizeof out - 1);
            out[len++] = (char)b;
        }
        out[len] = '\0';
        cJSON *j = cJSON_ParseWithLength(out, len);
        if (!j)
            printf("does not parse: %s\n", out);
        assert_non_null(j);
        cJSON_Delete(j);
    }
    json_grammar_free(g);
}

/* ------------------------------------------------------------------ */
/* End to end on tiny-f32 */

typedef struct model_fixture {
    roj_model *model;
    roj_context *ctx;
    roj_pieces *pieces;
    int32_t n_vocab;
    float *prompt_logits; /* (n_vocab) after the prompt in sequence 0 */
    int32_t prompt_len;
} model_fixture;

static const char *const PROMPT =
    "Review: the film was a delight from start to end. Sentiment:";

static int setup_model(void **state)
{
    model_fixture *f = calloc(1, sizeof *f);
    roj_context_params cp = roj_context_default_params();
    roj_token *ids = NULL;
    size_t n = 0;

    assert_non_null(f);
    assert_int_equal(roj_model_open(
        test_require_shared("fixtures/logits/tiny-f32.gguf"), &f->model), 0);
    cp.n_ctx = 512;
    cp.n_seq = 2;
    cp.n_threads = 1;
    assert_int_equal(roj_context_create(f->model, &cp, &f->ctx), ROJ_OK);
    assert_int_equal(roj_pieces_create(roj_model_vocab(f->model),
                                       &f->pieces), ROJ_OK);
    f->n_vocab = roj_model_n_vocab(f->model);
    assert_int_equal(roj_tokenize(roj_model_vocab(f->model), PROMPT,
                                  strlen(PROMPT), ROJ_TOKENIZE_ADD_SPECIAL,
                                  &ids, &n), ROJ_OK);
    assert_int_equal(roj_decode_tokens(f->ctx, 0, ids, n), ROJ_OK);
    f->prompt_len = (int32_t)n;
    f->prompt_logits = malloc((size_t)f->n_vocab * sizeof(float));
    assert_non_null(f->prompt_logits);
    memcpy(f->prompt_logits, roj_get_logits(f->ctx, -1),
           (size_t)f->n_vocab * sizeof(float));
    free(ids);
    *state = f;
    return 0;
}

static int teardown_model(void **state)
{
    model_fixture *f = *state;
    roj_pieces_free(f->pieces);
    roj_context_free(f->ctx);
    roj_model_free(f->model);
    free(f->prompt_logits);
    free(f);
    return 0;
}

/* Reference score of one label: copy the prompt to sequence 1, decode the
 * label token by token and add up the log-probabilities. */
static double reference_logprob(model_fixture *f, const char *label,
                                int32_t *n_tokens)
{
    roj_token *ids = NULL;
    size_t n = 0;
    double sum = 0.0;

    assert_int_equal(roj_tokenize(roj_model_vocab(f->model), label,
                                  strlen(label), 0, &ids, &n), ROJ_OK);
    assert_int_equal(roj_seq_copy(f->ctx, 0, 1, f->prompt_len), ROJ_OK);
    for (size_t i = 0; i < n; i++) {
        const float *row = f->prompt_logits;
        double lp = 0.0;
        if (i > 0) {
            assert_int_equal(roj_decode_tokens(f->ctx, 1, &ids[i - 1], 1),
                             ROJ_OK);
            row = roj_get_logits(f->ctx, -1);
        }
        assert_int_equal(roj_logits_logprob(row, f->n_vocab, ids[i], &lp),
                         ROJ_OK);
        sum += lp;
    }
    assert_int_equal(roj_seq_truncate(f->ctx, 1, 0), ROJ_OK);
    *n_tokens = (int32_t)n;
    free(ids);
    return sum;
}

static void choice_matches_reference(void **state)
{
    model_fixture *f = *state;
    static const char *const labels[5] = {"very good", "negative",
                                          "very bad", "positive", "very"};
    double logprob[5], probs[5], total = 0.0;
    int32_t n_tokens[5];
    roj_choice_result res = {.logprob = logprob, .probs = probs,
                             .n_tokens = n_tokens};
    size_t best = 0;

    assert_int_equal(roj_choose(f->ctx, 0, f->prompt_logits, labels, 5, NULL,
                                &res), ROJ_OK);
    assert_int_equal(roj_seq_len(f->ctx, 0), f->prompt_len);
    for (size_t i = 0; i < 5; i++) {
        int32_t n = 0;
        double want = reference_logprob(f, labels[i], &n);
        printf("  %-10s logprob %9.5f (reference %9.5f) p %.4f, %d tokens\n",
               labels[i], logprob[i], want, probs[i], n_tokens[i]);
        assert_float_equal(logprob[i], want, 2e-3);
        assert_int_equal(n_tokens[i], n);
        assert_true(logprob[i] < 0.0);
        total += probs[i];
        if (logprob[i] > logprob[best])
            best = i;
    }
    assert_float_equal(total, 1.0, 1e-9);
    assert_int_equal(res.best, best);
    assert_float_equal(res.prob, probs[best], 0);
    /* The summed score favours the one-token "very" over its extensions. */
    assert_true(logprob[4] > logprob[0]);
    assert_true(logprob[4] > logprob[2]);
}

static void choice_normalized_and_suffix(void **state)
{
    model_fixture *f = *state;
    static const char *const labels[3] = {"yes", "no", "maybe not"};
    double plain[3], norm[3], with_eog[3];
    int32_t n_plain[3], n_eog[3];
    roj_choice_result a = {.logprob = plain, .n_tokens = n_plain};
    roj_choice_result b = {.probs = norm};
    roj_choice_result c = {.logprob = with_eog, .n_tokens = n_eog};
    roj_choice_params pn = {.normalize = true};
    roj_choice_params pe = {.suffix = "\n", .score_eog = true};
    double best_mean = -INFINITY;
    size_t best = 0;

    assert_int_equal(roj_choose(f->ctx, 0, f->prompt_logits, labels, 3, NULL,
                                &a), ROJ_OK);
    assert_int_equal(roj_choose(f->ctx, 0, f->prompt_logits, labels, 3, &pn,
                                &b), ROJ_OK);
    assert_int_equal(roj_choose(f->ctx, 0, f->prompt_logits, labels, 3, &pe,
                                &c), ROJ_OK);
    for (size_t i = 0; i < 3; i++) {
        double mean = plain[i] / n_plain[i];
        if (mean > best_mean) {
            best_mean = mean;
            best = i;
        }
        /* Suffix and EOG add tokens, each with a negative log-prob. */
        assert_true(n_eog[i] >= n_plain[i] + 2);
        assert_true(with_eog[i] < plain[i]);
    }
    assert_int_equal(b.best, best);
    assert_int_equal(roj_seq_len(f->ctx, 0), f->prompt_len);
}

static void choice_rejects_empty(void **state)
{
    model_fixture *f = *state;
    static const char *const labels[1] = {""};
    roj_choice_result res = {0};
    assert_int_equal(roj_choose(f->ctx, 0, f->prompt_logits, labels, 0, NULL,
                                &res), ROJ_ERR_INVALID_ARG);
    assert_int_equal(roj_choose(f->ctx, 0, f->prompt_logits, labels, 1, NULL,
                                &res), ROJ_ERR_INVALID_ARG);
    assert_int_equal(roj_seq_len(f->ctx, 0), f->prompt_len);
}

static void check_span(const char *input, const roj_span_result *r,
                       const char *none)
{
    if (r->is_none) {
        assert_string_equal(r->text, none ? none : "");
        return;
    }
    size_t len = strlen(r->text);
    assert_true(len > 0);
    assert_int_equal(r->end - r->start, len);
    assert_true(r->end <= strlen(input));
    assert_memory_equal(input + r->start, r->text, len);
    assert_int_equal(r->char_start, utf8_count(input, r->start));
    assert_int_equal(r->char_end, utf8_count(input, r->end));
    assert_null(memchr(r->text, '\n', len));
}

static void span_greedy_and_sampled(void **state)
{
    model_fixture *f = *state;
    const char *input = "Der Fluss heißt Seine, die Stadt Paris; "
                        "the capital of France is Paris.\nNext line.";
    roj_span_params p = {.none_word = "none", .max_tokens = 16};
    roj_sampler_params sp = roj_sampler_default_params();
    roj_sampler *s = NULL;
    int n_none = 0, n_span = 0;

    roj_span_result r;
    assert_int_equal(roj_extract_span(f->ctx, 0, f->prompt_logits, f->pieces,
                                      input, strlen(input), &p, &r), ROJ_OK);
    printf("  greedy span: '%s' [%zu, %zu) none=%d tokens=%d\n", r.text,
           r.start, r.end, r.is_none, r.n_tokens);
    check_span(input, &r, "none");
    assert_true(r.n_tokens >= 1);
    assert_true(r.n_tokens <= 16);
    free(r.text);
    assert_int_equal(roj_seq_len(f->ctx, 0), f->prompt_len);

    sp.temperature = 1.5f;
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    assert_int_equal(roj_sampler_create(&sp, f->n_vocab, &s), ROJ_OK);
    p.sampler = s;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        roj_sampler_reset(s, seed);
        assert_int_equal(roj_extract_span(f->ctx, 0, f->prompt_logits,
                                          f->pieces, input, strlen(input),
                                          &p, &r), ROJ_OK);
        check_span(input, &r, "none");
        n_none += r.is_none;
        n_span += !r.is_none;
        free(r.text);
    }
    printf("  sampled: %d spans, %d none\n", n_span, n_none);
    assert_int_equal(n_span + n_none, 20);
    assert_int_equal(roj_seq_len(f->ctx, 0), f->prompt_len);
    roj_sampler_free(s);
}

static void span_only_none_possible(void **state)
{
    model_fixture *f = *state;
    roj_span_params p = {.none_word = "none"};
    roj_span_result r;

    /* An empty input leaves the none word as the only answer. */
    assert_int_equal(roj_extract_span(f->ctx, 0, f->prompt_logits, f->pieces,
                                      "", 0, &p, &r), ROJ_OK);
    assert_true(r.is_none);
    assert_string_equal(r.text, "none");
    free(r.text);
    /* A one-byte input: the span is that byte. */
    p.none_word = NULL;
    assert_int_equal(roj_extract_span(f->ctx, 0, f->prompt_logits, f->pieces,
                                      "Q", 1, &p, &r), ROJ_OK);
    assert_false(r.is_none);
    assert_string_equal(r.text, "Q");
    assert_int_equal(r.start, 0);
    assert_int_equal(r.end, 1);
    free(r.text);
}

/* Prompt logits that make one token by far the most likely first step. */
static float *logits_favoring(const model_fixture *f, const char *text)
{
    const roj_vocab *v = roj_model_vocab(f->model);
    roj_token t = roj_vocab_find(v, text, strlen(text));
    float *row = malloc((size_t)f->n_vocab * sizeof *row);

    assert_int_not_equal(t, ROJ_TOKEN_NULL);
    assert_non_null(row);
    memcpy(row, f->prompt_logits, (size_t)f->n_vocab * sizeof *row);
    row[t] = 100.0f;
    return row;
}

static void span_first_token_leftmost(void **state)
{
    model_fixture *f = *state;
    const char *input = "Rivers: Seine. Capital: Paris. Also Paris, Texas.";
    roj_span_params p = {.none_word = "none", .max_tokens = 8};
    roj_span_result r;
    float *row = logits_favoring(f, "\xE2\x96\x81Paris"); /* " Paris" */

    assert_int_equal(roj_extract_span(f->ctx, 0, row, f->pieces, input,
                                      strlen(input), &p, &r), ROJ_OK);
    printf("  forced start: '%s' [%zu, %zu)\n", r.text, r.start, r.end);
    assert_false(r.is_none);
    assert_int_equal(strncmp(r.text, "Paris", 5), 0);
    assert_int_equal(r.start, 24); /* the leftmost "Paris" */
    check_span(input, &r, "none");
    free(r.text);
    free(row);

    row = logits_favoring(f, "\xE2\x96\x81none"); /* " none" */
    assert_int_equal(roj_extract_span(f->ctx, 0, row, f->pieces, input,
                                      strlen(input), &p, &r), ROJ_OK);
    assert_true(r.is_none);
    assert_string_equal(r.text, "none");
    assert_true(r.n_tokens >= 1);
    free(r.text);
    free(row);
    assert_int_equal(roj_seq_len(f->ctx, 0), f->prompt_len);
}

static int count_digits(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s >= '0' && *s <= '9';
    return n;
}

/* Checks one generated object against FIELDS. */
static void check_object(const char *json)
{
    cJSON *root = cJSON_Parse(json);
    if (!root)
        printf("does not parse: %s\n", json);
    assert_non_null(root);
    assert_true(cJSON_IsObject(root));
    assert_int_equal(cJSON_GetArraySize(root), 5);

    cJSON *item = root->child;
    assert_string_equal(item->string, "name");
    assert_true(cJSON_IsString(item));
    assert_true(utf8_count(item->valuestring, strlen(item->valuestring)) <=
                12);
    item = item->next;
    assert_string_equal(item->string, "age");
    assert_true(cJSON_IsNumber(item));
    assert_true(item->valuedouble == floor(item->valuedouble));
    assert_true(fabs(item->valuedouble) < 1000);
    item = item->next;
    assert_string_equal(item->string, "score");
    assert_true(cJSON_IsNumber(item));
    item = item->next;
    assert_string_equal(item->string, "ok");
    assert_true(cJSON_IsBool(item));
    item = item->next;
    assert_string_equal(item->string, "color");
    assert_true(cJSON_IsString(item));
    assert_true(strcmp(item->valuestring, "red") == 0 ||
                strcmp(item->valuestring, "green") == 0 ||
                strcmp(item->valuestring, "bl\"ue") == 0);
    cJSON_Delete(root);

    /* Digit limits, checked on the text because cJSON keeps doubles. */
    const char *age = strstr(json, "\"age\": ");
    const char *score = strstr(json, "\"score\": ");
    char digits[64];
    assert_non_null(age);
    assert_non_null(score);
    snprintf(digits, sizeof digits, "%.*s", (int)(score - age - 9), age + 7);
    assert_true(count_digits(digits) <= 3);
}

static void json_greedy_and_sampled(void **state)
{
    model_fixture *f = *state;
    roj_sampler_params sp = roj_sampler_default_params();
    roj_sampler *s = NULL;
    char *json = NULL;
    size_t len = 0;
    struct timespec t0, t1;

    assert_int_equal(roj_generate_json(f->ctx, 0, f->prompt_logits,
                                       f->pieces, FIELDS, 5, NULL, &json,
                                       &len), ROJ_OK);
    printf("  greedy: %s\n", json);
    assert_int_equal(len, strlen(json));
    check_object(json);
    free(json);
    assert_int_equal(roj_seq_len(f->ctx, 0), f->prompt_len);

    /* Temperature 1.5 over the whole vocab: the most adversarial setting
     * for a random-weight model. */
    sp.temperature = 1.5f;
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    assert_int_equal(roj_sampler_create(&sp, f->n_vocab, &s), ROJ_OK);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t seed = 1; seed <= 100; seed++) {
        roj_sampler_reset(s, seed);
        roj_status st = roj_generate_json(f->ctx, 0, f->prompt_logits,
                                          f->pieces, FIELDS, 5, s, &json,
                                          &len);
        if (st != ROJ_OK)
            printf("seed %llu: %s\n", (unsigned long long)seed,
                   roj_last_error());
        assert_int_equal(st, ROJ_OK);
        if (seed <= 3)
            printf("  seed %llu: %s\n", (unsigned long long)seed, json);
        check_object(json);
        free(json);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("  100 sampled objects in %.0f ms\n",
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    assert_int_equal(roj_seq_len(f->ctx, 0), f->prompt_len);
    roj_sampler_free(s);
}

/* A tiny random model with the Qwen2 byte-level BPE vocab (151,669
 * tokens), written by the synthetic model generator: JSON and choice on a
 * vocab whose pieces are byte-level, with ChatML end-of-turn tokens. */
static void json_and_choice_on_bpe_vocab(void **state)
{
    (void)state;
    synth_shape shape;
    char path[4096];
    roj_model *model = NULL;
    roj_context *ctx = NULL;
    roj_pieces *pieces = NULL;
    roj_sampler *s = NULL;
    roj_sampler_params sp = roj_sampler_default_params();
    roj_context_params cp = roj_context_default_params();
    static const char *const labels[3] = {"yes", "no", "unsure"};
    double probs[3];
    roj_choice_result res = {.probs = probs};
    roj_choice_params chp = {.score_eog = true};
    roj_token *prompt = NULL;
    size_t n_prompt = 0;
    float *logits = NULL;
    int32_t n_vocab;

    assert_int_equal(synth_preset("tiny", &shape), ROJ_OK);
    shape.n_vocab = 0;
    shape.tied_output = true;
    shape.vocab_path =
        test_shared_path("fixtures/tokenizer/ggml-vocab-qwen2.gguf");
    snprintf(path, sizeof path, "%s/tiny-qwen2.gguf", test_tmpdir());
    assert_int_equal(synth_write_model(path, &shape), ROJ_OK);
    assert_int_equal(roj_model_open(path, &model), ROJ_OK);
    cp.n_ctx = 256;
    cp.n_threads = 1;
    assert_int_equal(roj_context_create(model, &cp, &ctx), ROJ_OK);
    assert_int_equal(roj_pieces_create(roj_model_vocab(model), &pieces),
                     ROJ_OK);
    n_vocab = roj_model_n_vocab(model);
    assert_int_equal(n_vocab, 151669);
    assert_int_equal(roj_tokenize(roj_model_vocab(model), "Answer: ", 8, 0,
                                  &prompt, &n_prompt), ROJ_OK);
    assert_int_equal(n_prompt, 3);
    assert_int_equal(roj_decode_tokens(ctx, 0, prompt, n_prompt), ROJ_OK);
    free(prompt);
    logits = malloc((size_t)n_vocab * sizeof *logits);
    assert_non_null(logits);
    memcpy(logits, roj_get_logits(ctx, -1), (size_t)n_vocab * sizeof *logits);

    assert_int_equal(roj_choose(ctx, 0, logits, labels, 3, &chp, &res),
                     ROJ_OK);
    assert_float_equal(probs[0] + probs[1] + probs[2], 1.0, 1e-9);
    assert_int_equal(roj_seq_len(ctx, 0), 3);

    sp.temperature = 1.5f;
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    assert_int_equal(roj_sampler_create(&sp, n_vocab, &s), ROJ_OK);
    struct timespec t0, t1;
    size_t total_len = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        char *json = NULL;
        roj_sampler_reset(s, seed);
        assert_int_equal(roj_generate_json(ctx, 0, logits, pieces, FIELDS,
                                           5, s, &json, NULL), ROJ_OK);
        if (seed == 1)
            printf("  qwen2 vocab: %s\n", json);
        check_object(json);
        total_len += strlen(json);
        free(json);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("  20 objects, %zu bytes, in %.0f ms\n", total_len,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    assert_int_equal(roj_seq_len(ctx, 0), 3);

    /* Span on a 2 KB input: the first step checks every piece. */
    char input[2048];
    size_t input_len = 0;
    roj_span_params span_params = {.none_word = "none"};
    roj_span_result span;
    for (int i = 0; input_len + 40 < sizeof input; i++)
        input_len += (size_t)snprintf(input + input_len,
                                      sizeof input - input_len,
                                      "Item %d costs %d.%02d euros; ", i,
                                      i * 7 % 100, i * 13 % 100);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(roj_extract_span(ctx, 0, logits, pieces, input,
                                      input_len, &span_params, &span),
                     ROJ_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("  span over %zu bytes: '%s', %d tokens in %.0f ms\n", input_len,
           span.text, span.n_tokens,
           (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    if (!span.is_none)
        assert_memory_equal(input + span.start, span.text,
                            span.end - span.start);
    free(span.text);
    assert_int_equal(roj_seq_len(ctx, 0), 3);

    roj_sampler_free(s);
    free(logits);
    roj_pieces_free(pieces);
    roj_context_free(ctx);
    roj_model_free(model);
}

int main(void)
{
    const struct CMUnitTest grammar[] = {
        cmocka_unit_test(json_grammar_accepts_valid),
        cmocka_unit_test(json_grammar_rejects_invalid),
        cmocka_unit_test(json_grammar_rejects_bad_schema),
        cmocka_unit_test(json_grammar_random_walks),
    };
    const struct CMUnitTest model[] = {
        cmocka_unit_test(choice_matches_reference),
        cmocka_unit_test(choice_normalized_and_suffix),
        cmocka_unit_test(choice_rejects_empty),
        cmocka_unit_test(span_greedy_and_sampled),
        cmocka_unit_test(span_only_none_possible),
        cmocka_unit_test(span_first_token_leftmost),
        cmocka_unit_test(json_greedy_and_sampled),
    };
    const struct CMUnitTest bpe[] = {
        cmocka_unit_test(json_and_choice_on_bpe_vocab),
    };
    int failed = cmocka_run_group_tests(grammar, NULL, NULL);
    failed += cmocka_run_group_tests(model, setup_model, teardown_model);
    failed += cmocka_run_group_tests(bpe, NULL, NULL);
    return test_exit_status(failed);
}
