/* The skill executor of roj run: a tiny classifier and extractor trained
 * here, and a seeded random model, run every output kind through
 * exec_run. Results have the documented fields, batching changes no
 * bit of them, seeds decide sampled output, and bad tasks (too long,
 * invalid UTF-8, missing fields) get their own error while the rest of
 * the batch succeeds. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/synth.h"
#include "run/exec.h"
#include "run/exec_internal.h"
#include "swarm/swarm.h"
#include "train/trainer.h"

static const char *const TEXTS[] = {
    "where is my new card", "my card has not arrived yet",
    "card still not delivered", "when will the card come",
    "I want my money back", "please refund the payment",
    "refund my last purchase", "give me a refund now",
    "what is the exchange rate", "how much is one euro in dollars",
    "rate for pounds today", "currency conversion rate please",
};
static const char *const TEXT_LABELS[] = {
    "card", "card", "card", "card", "refund", "refund",
    "refund", "refund", "rate", "rate", "rate", "rate"};
static const char *const NAMES[] = {"Anna", "Boris", "Carl",
                                    "Dana", "Emil", "Fay"};

#define N_TEXTS 12

static const char SWARM_YAML[] =
    "version: 1\n"
    "models:\n"
    "  cls: models/cls.gguf\n"
    "  ext: models/ext.gguf\n"
    "  base: models/base.gguf\n"
    "skills:\n"
    "  intent:\n"
    "    model: cls\n"
    "  intent_two:\n"
    "    model: cls\n"
    "    output: {choice: [rate, card]}\n"
    "  intent_warm:\n"
    "    model: cls\n"
    "    sampling: {temperature: 50, seed: 9}\n"
    "  name:\n"
    "    model: ext\n"
    "  name_lora:\n"
    "    model: ext\n"
    "    lora: models/ext.lora.gguf\n"
    "  pick:\n"
    "    model: base\n"
    "    prompt: \"Question: {question}\\nAnswer:\"\n"
    "    output: {choice: [yes, no, maybe]}\n"
    "  find:\n"
    "    model: base\n"
    "    prompt: \"Find the city in: {text}\\nCity:\"\n"
    "    output: {span: {slot: city, none: nothing}}\n"
    "  form:\n"
    "    model: base\n"
    "    prompt: \"{text}\\nAs JSON:\"\n"
    "    output:\n"
    "      json: {fields: {who: string, qty: integer, price: number,\n"
    "                     paid: boolean}}\n"
    "  say:\n"
    "    model: base\n"
    "    prompt: \"{text}\"\n"
    "    output: {text: {max_tokens: 12}}\n"
    "    sampling: {temperature: 1.0, seed: 3}\n"
    "  say_long:\n"
    "    model: base\n"
    "    prompt: \"{text}\"\n"
    "    output: {text: {max_tokens: 40}}\n"
    "    sampling: {temperature: 1.0, seed: 3}\n"
    "  say_stop:\n"
    "    model: base\n"
    "    prompt: \"{text}\"\n"
    "    output: {text: {max_tokens: 40, stop: [e]}}\n"
    "    sampling: {temperature: 1.0, seed: 3}\n"
    "  say_greedy:\n"
    "    model: base\n"
    "    prompt: \"{text}\"\n"
    "    output: {text: {max_tokens: 12}}\n"
    "pipelines:\n"
    "  triage:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - id: intent\n"
    "        skill: intent\n"
    "    output: {intent: \"{intent.label}\"}\n";

static swarm_file *swarm;

/* A small training shape that runs in a second or two. */
static void tiny_opts(train_opts *o, const char *data, const char *out)
{
    train_opts_default(o);
    o->data_path = data;
    o->out_path = out;
    o->preset = "tiny";
    o->shape = (tshape){.n_embd = 32, .n_layer = 2, .n_head = 2,
                        .n_head_kv = 1, .n_ff = 64, .n_ctx = 48};
    o->vocab_size = 320;
    o->valid_fraction = 0.0;
    o->max_steps = 120;
    o->lr = 5e-3f;
    o->warmup = 5;
    o->batch_tokens = 256;
    o->n_threads = 1;
    o->lm_weight = 0.0f;
    o->dropout = 0.0f;
    o->augment = 0;
    o->quiet = true;
    o->no_plot = true;
}

static int train_classifier(const char *dir)
{
    char data[600], out[600];
    snprintf(data, sizeof data, "%s/cls.csv", dir);
    snprintf(out, sizeof out, "%s/models/cls.gguf", dir);
    FILE *f = fopen(data, "w");
    if (!f)
        return -1;
    fprintf(f, "text,category\n");
    for (int i = 0; i < N_TEXTS; i++)
        fprintf(f, "%s,%s\n", TEXTS[i], TEXT_LABELS[i]);
    fclose(f);
    train_opts o;
    tiny_opts(&o, data, out);
    o.data.label_column = "category";
    return train_run(&o) == ROJ_OK ? 0 : -1;
}

static int train_extractor(const char *dir)
{
    char data[600], out[600];
    snprintf(data, sizeof data, "%s/ext.jsonl", dir);
    snprintf(out, sizeof out, "%s/models/ext.gguf", dir);
    FILE *f = fopen(data, "w");
    if (!f)
        return -1;
    for (int i = 0; i < 6; i++)
        fprintf(f, "{\"text\": \"table for %s at 7\", \"labels\": "
                "[{\"slot\": \"name\", \"valueSpan\": {\"startIndex\": 10, "
                "\"endIndex\": %d}}]}\n", NAMES[i],
                10 + (int)strlen(NAMES[i]));
    fprintf(f, "{\"text\": \"no name here\"}\n");
    fprintf(f, "{\"text\": \"nothing to see\"}\n");
    fclose(f);
    train_opts o;
    tiny_opts(&o, data, out);
    o.task = TRAIN_EXTRACT;
    o.max_steps = 150;
    if (train_run(&o) != ROJ_OK)
        return -1;

    /* A LoRA adapter on the extractor, trained on the same spans: it
     * carries the task and slots in its own metadata. */
    char lora[600];
    snprintf(lora, sizeof lora, "%s/models/ext.lora.gguf", dir);
    tiny_opts(&o, data, lora);
    o.task = TRAIN_EXTRACT;
    o.base_path = out;
    o.lora_rank = 4;
    o.lora_alpha = 8.0f;
    o.lora_targets = TLORA_Q | TLORA_V | TLORA_DOWN;
    o.max_steps = 20;
    o.lr = 1e-2f;
    return train_run(&o) == ROJ_OK ? 0 : -1;
}

/* A seeded random model with roj's byte-level vocabulary. */
static int write_base(const char *dir)
{
    char out[600];
    snprintf(out, sizeof out, "%s/models/base.gguf", dir);
    synth_shape s = {
        .name = "exec", .n_layer = 1, .n_embd = 32, .n_head = 2,
        .n_head_kv = 1, .n_ff = 64, .n_ctx = 256, .n_vocab = 0,
        .rope_freq_base = 10000.0f, .rms_eps = 1e-5f,
        .tied_output = false, .seed = SYNTH_DEFAULT_SEED,
        .vocab_path = NULL,
    };
    return synth_write_model(out, &s) == ROJ_OK ? 0 : -1;
}

static int setup_swarm(void **state)
{
    (void)state;
    const char *dir = test_tmpdir();
    char models[600], path[600];
    snprintf(models, sizeof models, "%s/models", dir);
    if (mkdir(models, 0755) != 0 || train_classifier(dir) ||
        train_extractor(dir) || write_base(dir))
        return -1;
    snprintf(path, sizeof path, "%s/swarm.yaml", dir);
    char *problems = NULL;
    roj_status st = swarm_parse(SWARM_YAML, strlen(SWARM_YAML), path,
                                &swarm, &problems);
    if (st)
        fprintf(stderr, "swarm_parse: %s\n", problems ? problems : "");
    free(problems);
    return st ? -1 : 0;
}

static int teardown_swarm(void **state)
{
    (void)state;
    swarm_free(swarm);
    return 0;
}

/* ---- helpers ---- */

static size_t skill(const char *name)
{
    const long i = swarm_find_skill(swarm, name);
    assert_true(i >= 0);
    return (size_t)i;
}

static exec_engine *engine_open(void)
{
    exec_engine *e = NULL;
    assert_int_equal(exec_open(swarm, 1, &e), ROJ_OK);
    assert_non_null(e);
    return e;
}

/* Fills n tasks of skill sk, task i with the single field
 * field[0] = values[i]. */
static void make_tasks(exec_task *tasks, size_t n, size_t sk,
                       const char *const *field, const char *const *values,
                       uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        tasks[i] = (exec_task){.skill = sk, .names = field,
                               .values = values + i, .n_fields = 1,
                               .seed = seed};
}

/* Runs one task and returns its result JSON (the caller frees it). */
static char *run_one(exec_engine *e, size_t sk, const char *field,
                     const char *value, uint64_t seed)
{
    const char *const names[1] = {field};
    const char *const values[1] = {value};
    exec_task t;
    make_tasks(&t, 1, sk, names, values, seed);
    exec_result r;
    assert_int_equal(exec_run(e, &t, 1, &r), ROJ_OK);
    if (r.error)
        fprintf(stderr, "unexpected error: %s\n", r.error);
    assert_null(r.error);
    assert_non_null(r.json);
    return r.json;
}

static const cJSON *field_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    assert_non_null(v);
    return v;
}

/* Checks the choice result json over labels and returns its label
 * index. */
static size_t check_choice(const char *json, const char *const *labels,
                           size_t n_labels)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    const cJSON *label = field_of(o, "label");
    const cJSON *conf = field_of(o, "confidence");
    const cJSON *probs = field_of(o, "probs");
    assert_true(cJSON_IsString(label));
    assert_true(cJSON_IsNumber(conf));
    assert_true(cJSON_IsArray(probs));
    assert_int_equal(cJSON_GetArraySize(probs), (int)n_labels);
    size_t index = n_labels;
    for (size_t i = 0; i < n_labels; i++)
        if (!strcmp(labels[i], label->valuestring))
            index = i;
    assert_true(index < n_labels);
    double sum = 0.0;
    for (size_t i = 0; i < n_labels; i++) {
        const cJSON *p = cJSON_GetArrayItem(probs, (int)i);
        assert_true(cJSON_IsNumber(p));
        assert_true(p->valuedouble >= 0.0);
        sum += p->valuedouble;
    }
    assert_float_equal(sum, 1.0, 1e-5);
    const double chosen =
        cJSON_GetArrayItem(probs, (int)index)->valuedouble;
    assert_float_equal(conf->valuedouble, chosen, 0.0);
    cJSON_Delete(o);
    return index;
}

/* Returns a copy of the string field name of json. */
static char *string_field(const char *json, const char *name)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    const cJSON *v = field_of(o, name);
    assert_true(cJSON_IsString(v));
    char *copy = strdup(v->valuestring);
    cJSON_Delete(o);
    return copy;
}

/* ---- choice ---- */

static void test_choice_classifier(void **state)
{
    (void)state;
    exec_engine *e = engine_open();
    static const char *const labels[] = {"card", "rate", "refund"};
    const size_t sk = skill("intent");
    /* roj train stores the labels sorted. */
    assert_int_equal(swarm->skills[sk].output.n_labels, 3);
    for (int i = 0; i < 3; i++)
        assert_string_equal(swarm->skills[sk].output.labels[i], labels[i]);
    for (int i = 0; i < N_TEXTS; i++) {
        char *json = run_one(e, sk, "text", TEXTS[i], 0);
        const size_t got = check_choice(json, labels, 3);
        assert_string_equal(labels[got], TEXT_LABELS[i]);
        free(json);
    }
    exec_close(e);
}

static void test_choice_label_subset(void **state)
{
    (void)state;
    exec_engine *e = engine_open();
    static const char *const labels[] = {"rate", "card"};
    char *json = run_one(e, skill("intent_two"), "text",
                         "what is the exchange rate", 0);
    assert_int_equal(check_choice(json, labels, 2), 0);
    free(json);
    json = run_one(e, skill("intent_two"), "text", "where is my new card",
                   0);
    assert_int_equal(check_choice(json, labels, 2), 1);
    free(json);
    exec_close(e);
}

static void test_classify_batch_same(void **state)
{
    (void)state;
    exec_engine *e = engine_open();
    const size_t sk = skill("intent");
    const char *const field[1] = {"text"};
    exec_task tasks[N_TEXTS];
    exec_result batch[N_TEXTS];
    make_tasks(tasks, N_TEXTS, sk, field, TEXTS, 0);
    assert_int_equal(exec_run(e, tasks, N_TEXTS, batch), ROJ_OK);

    /* Alone, on a fresh engine, in reverse order. */
    exec_engine *alone = engine_open();
    for (int i = N_TEXTS - 1; i >= 0; i--) {
        char *json = run_one(alone, sk, "text", TEXTS[i], 0);
        assert_non_null(batch[i].json);
        assert_string_equal(batch[i].json, json);
        free(json);
    }
    for (int i = 0; i < N_TEXTS; i++)
        exec_result_clear(&batch[i]);
    exec_close(alone);
    exec_close(e);
}

static void test_choice_any_model(void **state)
{
    (void)state;
    exec_engine *e = engine_open();
    static const char *const labels[] = {"yes", "no", "maybe"};
    const size_t sk = skill("pick");
    char *a = run_one(e, sk, "question", "Is the sky blue?", 1);
    check_choice(a, labels, 3);
    char *b = run_one(e, sk, "question", "Is the sky blue?", 1);
    assert_string_equal(a, b);
    free(a);
    free(b);
    exec_close(e);
}

static void test_choice_warm_seeds(void **state)
{
    (void)state;
    /* At a temperature of 50 the labels are close to uniform: seeds pick
     * different labels, and one seed always the same one. */
    exec_engine *e = engine_open();
    static const char *const labels[] = {"card", "rate", "refund"};
    const size_t sk = skill("intent_warm");
    bool seen[3] = {false, false, false};
    for (uint64_t seed = 0; seed < 24; seed++) {
        char *json = run_one(e, sk, "text", TEXTS[0], seed);
        seen[check_choice(json, labels, 3)] = true;
        char *again = run_one(e, sk, "text", TEXTS[0], seed);
        assert_string_equal(json, again);
        free(json);
        free(again);
    }
    assert_true(seen[0] + seen[1] + seen[2] >= 2);
    exec_close(e);
}

/* ---- text ---- */

static void test_text_seeds(void **state)
{
    (void)state;
    exec_engine *e = engine_open();
    const size_t sk = skill("say");
    char *first = run_one(e, sk, "text", "Once upon a time", 1);
    char *again = run_one(e, sk, "text", "Once upon a time", 1);
    assert_string_equal(first, again);
    char *text = string_field(first, "text");
    assert_true(strlen(text) > 0);
    free(text);
    int differ = 0;
    for (uint64_t seed = 2; seed < 6; seed++) {
        char *other = run_one(e, sk, "text", "Once upon a time", seed);
        differ += strcmp(first, other) != 0;
        free(other);
    }
    assert_true(differ > 0);
    free(first);
    free(again);

    /* Greedy decoding ignores the seed. */
    const size_t greedy = skill("say_greedy");
    char *g1 = run_one(e, greedy, "text", "Once upon a time", 1);
    char *g2 = run_one(e, greedy, "text", "Once upon a time", 99);
    assert_string_equal(g1, g2);
    free(g1);
    free(g2);
    exec_close(e);
}

static void test_text_stop_string(void **state)
{
    (void)state;
    /* The same seed samples the same tokens, so the text with the stop
     * string "e" is the text without it, cut before its first "e". */
    exec_engine *e = engine_open();
    int cut = 0;
    for (uint64_t seed = 0; seed < 8; seed++) {
        char *long_json = run_one(e, skill("say_long"), "text", "Hello",
                                  seed);
        char *stop_json = run_one(e, skill("say_stop"), "text", "Hello",
                                  seed);
        char *whole = string_field(long_json, "text");
        char *text = string_field(stop_json, "text");
        assert_null(strchr(text, 'e'));
        const char *at = strchr(whole, 'e');
        if (at) {
            assert_int_equal(strlen(text), (size_t)(at - whole));
            assert_memory_equal(text, whole, strlen(text));
            cut++;
        } else {
            assert_string_equal(text, whole);
        }
        free(whole);
        free(text);
        free(long_json);
        free(stop_json);
    }
    assert_true(cut > 0);
    exec_close(e);
}

/* ---- span ---- */

static void test_span_extractor(void **state)
{
    (void)state;
    exec_engine *e = engine_open();
    const size_t sk = skill("name");
    for (int i = 0; i < 6; i++) {
        char in[64];
        snprintf(in, sizeof in, "table for %s at 7", NAMES[i]);
        char *json = run_one(e, sk, "text", in, 0);
        cJSON *o = cJSON_Parse(json);
        assert_non_null(o);
        assert_string_equal(field_of(o, "text")->valuestring, NAMES[i]);
        assert_true(cJSON_IsTrue(field_of(o, "found")));
        cJSON_Delete(o);
        free(json);
    }

    /* The engine keeps the common start of these prompts evaluated; a
     * fresh engine, which has nothing cached, gives the same bytes. */
    for (int i = 0; i < 6; i += 5) {
        char in[64];
        snprintf(in, sizeof in, "table for %s at 7", NAMES[i]);
        char *cached = run_one(e, sk, "text", in, 0);
        exec_engine *fresh = engine_open();
        char *json = run_one(fresh, sk, "text", in, 0);
        assert_string_equal(cached, json);
        free(cached);
        free(json);
        exec_close(fresh);
    }

    char *json = run_one(e, sk, "text", "no name here", 0);
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    assert_string_equal(field_of(o, "text")->valuestring, "none");
    assert_true(cJSON_IsFalse(field_of(o, "found")));
    cJSON_Delete(o);
    free(json);
    exec_close(e);
}

static void test_span_lora(void **state)
{
    (void)state;
    exec_engine *e = engine_open();
    char *json = run_one(e, skill("name_lora"), "text",
                         "table for Carl at 7", 0);
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    assert_string_equal(field_of(o, "text")->valuestring, "Carl");
    assert_true(cJSON_IsTrue(field_of(o, "found")));
    cJSON_Delete(o);
    free(json);
    exec_close(e);
}

static void test_span_any_model(void **state)
{
    (void)state;
    exec_engine *e = engine_open();
    const char *in = "We flew from Paris to Rome";
    char *json = run_one(e, skill("find"), "text", in, 0);
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    const cJSON *text = field_of(o, "text");
    const cJSON *found = field_of(o, "found");
    assert_true(cJSON_IsString(text));
    assert_true(cJSON_IsBool(found));
    if (cJSON_IsTrue(found))
        assert_non_null(strstr(in, text->valuestring));
    else
        assert_string_equal(text->valuestring, "nothing");
    cJSON_Delete(o);
    free(json);
    exec_close(e);
}

/* ---- json ---- */

static void test_json_schema(void **state)
{
    (void)state;
    exec_engine *e = engine_open();
    char *json = run_one(e, skill("form"), "text",
                         "Anna bought 3 lamps at 9.50 and paid", 0);
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    assert_true(cJSON_IsString(field_of(o, "who")));
    const cJSON *qty = field_of(o, "qty");
    assert_true(cJSON_IsNumber(qty));
    assert_float_equal(qty->valuedouble, floor(qty->valuedouble), 0.0);
    assert_true(cJSON_IsNumber(field_of(o, "price")));
    assert_true(cJSON_IsBool(field_of(o, "paid")));

    /* text is the object itself, with the same values. */
    const cJSON *text = field_of(o, "text");
    assert_true(cJSON_IsString(text));
    cJSON *inner = cJSON_Parse(text->valuestring);
    assert_non_null(inner);
    assert_int_equal(cJSON_GetArraySize(inner), 4);
    assert_string_equal(field_of(inner, "who")->valuestring,
                        field_of(o, "who")->valuestring);
    assert_float_equal(field_of(inner, "qty")->valuedouble,
                       qty->valuedouble, 0.0);
    cJSON_Delete(inner);
    cJSON_Delete(o);
    free(json);
    exec_close(e);
}

/* ---- bad tasks ---- */

static void test_long_prompt_error(void **state)
{
    (void)state;
    exec_engine *e = engine_open();
    char long_text[1200];
    size_t n = 0;
    while (n + 12 < sizeof long_text) {
        memcpy(long_text + n, "refund card ", 12);
        n += 12;
    }
    long_text[n] = '\0';

    /* The classifier (48 positions): the middle task is too long. */
    const char *const values[3] = {TEXTS[0], long_text, TEXTS[4]};
    const char *const field[1] = {"text"};
    exec_task tasks[3];
    exec_result r[3];
    make_tasks(tasks, 3, skill("intent"), field, values, 0);
    assert_int_equal(exec_run(e, tasks, 3, r), ROJ_OK);
    assert_non_null(r[0].json);
    assert_null(r[0].error);
    assert_null(r[1].json);
    assert_non_null(r[1].error);
    assert_true(r[1].permanent);
    assert_non_null(strstr(r[1].error, "intent"));
    assert_non_null(strstr(r[1].error, "context"));
    assert_non_null(r[2].json);
    assert_null(r[2].error);
    char *label = string_field(r[2].json, "label");
    assert_string_equal(label, "refund");
    free(label);
    for (int i = 0; i < 3; i++)
        exec_result_clear(&r[i]);

    /* The random model (256 positions), text output. */
    make_tasks(tasks, 3, skill("say_greedy"), field, values, 0);
    assert_int_equal(exec_run(e, tasks, 3, r), ROJ_OK);
    assert_non_null(r[0].json);
    assert_non_null(r[1].error);
    assert_true(r[1].permanent);
    assert_non_null(r[2].json);
    for (int i = 0; i < 3; i++)
        exec_result_clear(&r[i]);
    exec_close(e);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    exec_engine *e = engine_open();
    static const char *const bad[] = {
        "card \xff\xfe arrived", "refund \xc3", "\xed\xa0\x80 rate",
        "\xf0\x9f\x98", "\x80\x80\x80",
    };
    static const char *const skills[] = {"intent", "name", "say_greedy",
                                         "form", "find", "pick"};
    for (size_t s = 0; s < sizeof skills / sizeof *skills; s++) {
        const char *field = strcmp(skills[s], "pick") ? "text" : "question";
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            char *json = run_one(e, skill(skills[s]), field, bad[i], 0);
            cJSON *o = cJSON_Parse(json);
            assert_non_null(o);
            cJSON_Delete(o);
            free(json);
        }
    }
    exec_close(e);

    char *fixed = NULL;
    assert_int_equal(exec_utf8_repair("a\xff" "b\xc3", &fixed), ROJ_OK);
    assert_string_equal(fixed, "a\xef\xbf\xbd" "b\xef\xbf\xbd");
    free(fixed);
    assert_int_equal(exec_utf8_repair("caf\xc3\xa9", &fixed), ROJ_OK);
    assert_null(fixed);
}

static void test_missing_field(void **state)
{
    (void)state;
    exec_engine *e = engine_open();
    const char *const names[1] = {"other"};
    const char *const values[1] = {"x"};
    exec_task t[2];
    make_tasks(t, 1, skill("pick"), names, values, 0);
    /* The second task names a skill the swarm does not have. */
    make_tasks(t + 1, 1, swarm->n_skills + 3, names, values, 0);
    exec_result r[2];
    assert_int_equal(exec_run(e, t, 2, r), ROJ_OK);
    assert_null(r[0].json);
    assert_non_null(r[0].error);
    assert_non_null(strstr(r[0].error, "question"));
    assert_true(r[0].permanent);
    assert_null(r[1].json);
    assert_non_null(r[1].error);
    assert_true(r[1].permanent);
    exec_result_clear(&r[0]);
    exec_result_clear(&r[1]);
    exec_close(e);
}

static void test_mixed_batch(void **state)
{
    (void)state;
    /* Tasks of several skills in one call give what they give alone. */
    exec_engine *e = engine_open();
    const char *const text[1] = {"text"};
    const char *const question[1] = {"question"};
    const char *const v[4] = {TEXTS[5], "table for Fay at 7", "Why?",
                              TEXTS[9]};
    exec_task t[4] = {
        {.skill = skill("intent"), .names = text, .values = v,
         .n_fields = 1},
        {.skill = skill("name"), .names = text, .values = v + 1,
         .n_fields = 1},
        {.skill = skill("pick"), .names = question, .values = v + 2,
         .n_fields = 1},
        {.skill = skill("intent"), .names = text, .values = v + 3,
         .n_fields = 1},
    };
    exec_result r[4];
    assert_int_equal(exec_run(e, t, 4, r), ROJ_OK);
    exec_engine *alone = engine_open();
    for (int i = 0; i < 4; i++) {
        char *json = run_one(alone, t[i].skill, t[i].names[0], v[i], 0);
        assert_non_null(r[i].json);
        assert_string_equal(r[i].json, json);
        free(json);
        exec_result_clear(&r[i]);
    }
    exec_close(alone);
    exec_close(e);
}

static void test_threads_same(void **state)
{
    (void)state;
    /* Two inference threads give the bytes one thread gives. */
    exec_engine *one = engine_open();
    exec_engine *two = NULL;
    assert_int_equal(exec_open(swarm, 2, &two), ROJ_OK);
    static const char *const skills[] = {"intent", "name", "say", "form"};
    for (size_t s = 0; s < sizeof skills / sizeof *skills; s++) {
        char *a = run_one(one, skill(skills[s]), "text", TEXTS[6], 4);
        char *b = run_one(two, skill(skills[s]), "text", TEXTS[6], 4);
        assert_string_equal(a, b);
        free(a);
        free(b);
    }
    exec_close(two);
    exec_close(one);
}

static void test_model_gone(void **state)
{
    (void)state;
    /* A model file removed after the swarm file loaded stops the engine:
     * every task gets the reason and may be retried elsewhere. */
    char from[600], to[600], yaml_path[600];
    snprintf(from, sizeof from, "%s/models/base.gguf", test_tmpdir());
    snprintf(to, sizeof to, "%s/models/gone.gguf", test_tmpdir());
    snprintf(yaml_path, sizeof yaml_path, "%s/gone.yaml", test_tmpdir());
    size_t size;
    char *bytes = test_read_file(from, &size);
    test_write_file(to, bytes, size);
    free(bytes);
    static const char yaml[] =
        "version: 1\n"
        "models: {gone: models/gone.gguf}\n"
        "skills:\n"
        "  say: {model: gone, prompt: \"{text}\",\n"
        "        output: {text: {max_tokens: 4}}}\n"
        "pipelines:\n"
        "  p: {input: [text], steps: [{id: s, skill: say}],\n"
        "      output: {text: \"{s.text}\"}}\n";
    swarm_file *gone = NULL;
    assert_int_equal(swarm_parse(yaml, strlen(yaml), yaml_path, &gone, NULL),
                     ROJ_OK);
    assert_int_equal(unlink(to), 0);

    exec_engine *e = NULL;
    assert_int_equal(exec_open(gone, 1, &e), ROJ_OK);
    assert_true(exec_preload(e) != ROJ_OK);
    assert_non_null(strstr(roj_last_error(), "gone"));
    const char *const names[1] = {"text"};
    const char *const values[2] = {"a", "b"};
    exec_task t[2];
    make_tasks(t, 2, 0, names, values, 0);
    exec_result r[2];
    assert_true(exec_run(e, t, 2, r) != ROJ_OK);
    for (int i = 0; i < 2; i++) {
        assert_null(r[i].json);
        assert_non_null(r[i].error);
        assert_non_null(strstr(r[i].error, "gone.gguf"));
        assert_false(r[i].permanent);
        exec_result_clear(&r[i]);
    }
    exec_close(e);
    swarm_free(gone);
}

static void test_run_empty(void **state)
{
    (void)state;
    exec_engine *e = engine_open();
    assert_int_equal(exec_run(e, NULL, 0, NULL), ROJ_OK);
    exec_close(e);
}

/* ---- helpers of the runners ---- */

static void test_pick_label(void **state)
{
    (void)state;
    const float probs[4] = {0.1f, 0.4f, 0.1f, 0.4f};
    /* Argmax at temperature 0, the first of equals, for any seed. */
    for (uint64_t seed = 0; seed < 8; seed++)
        assert_int_equal(exec_pick_label(probs, 4, 0.0f, seed), 1);
    const float peak[3] = {0.2f, 0.1f, 0.7f};
    assert_int_equal(exec_pick_label(peak, 3, 0.0f, 5), 2);

    /* A draw at temperature 1 follows the probabilities. */
    int counts[4] = {0, 0, 0, 0};
    for (uint64_t seed = 0; seed < 2000; seed++) {
        const size_t k = exec_pick_label(probs, 4, 1.0f, seed);
        assert_true(k < 4);
        counts[k]++;
        assert_int_equal(exec_pick_label(probs, 4, 1.0f, seed), k);
    }
    assert_in_range(counts[1], 650, 950);
    assert_in_range(counts[3], 650, 950);
    assert_in_range(counts[0], 100, 300);

    /* A label of probability 0 is never drawn. */
    const float one[3] = {0.0f, 1.0f, 0.0f};
    for (uint64_t seed = 0; seed < 50; seed++)
        assert_int_equal(exec_pick_label(one, 3, 2.0f, seed), 1);
}

static void test_mix_seed(void **state)
{
    (void)state;
    assert_int_equal(exec_mix_seed(1, 2), exec_mix_seed(1, 2));
    assert_true(exec_mix_seed(1, 2) != exec_mix_seed(1, 3));
    assert_true(exec_mix_seed(1, 2) != exec_mix_seed(2, 1));
    assert_true(exec_mix_seed(0, 0) != 0);
}

static void test_open_bad_args(void **state)
{
    (void)state;
    exec_engine *e = (exec_engine *)1;
    assert_int_equal(exec_open(NULL, 1, &e), ROJ_ERR_INVALID_ARG);
    assert_null(e);
    assert_int_equal(exec_open(swarm, -1, &e), ROJ_ERR_INVALID_ARG);
    e = engine_open();
    assert_int_equal(exec_preload(e), ROJ_OK);
    exec_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choice_classifier),
        cmocka_unit_test(test_choice_label_subset),
        cmocka_unit_test(test_classify_batch_same),
        cmocka_unit_test(test_choice_any_model),
        cmocka_unit_test(test_choice_warm_seeds),
        cmocka_unit_test(test_text_seeds),
        cmocka_unit_test(test_text_stop_string),
        cmocka_unit_test(test_span_extractor),
        cmocka_unit_test(test_span_lora),
        cmocka_unit_test(test_span_any_model),
        cmocka_unit_test(test_json_schema),
        cmocka_unit_test(test_long_prompt_error),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_missing_field),
        cmocka_unit_test(test_mixed_batch),
        cmocka_unit_test(test_threads_same),
        cmocka_unit_test(test_model_gone),
        cmocka_unit_test(test_run_empty),
        cmocka_unit_test(test_pick_label),
        cmocka_unit_test(test_mix_seed),
        cmocka_unit_test(test_open_bad_args),
    };
    return test_run_group(tests, setup_swarm, teardown_swarm);
}
