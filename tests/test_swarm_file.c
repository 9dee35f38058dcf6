/* Swarm files: the example loads, every kind of problem is reported at
 * its line and column, steps come out in a valid order, templates render
 * and hostile YAML gives errors, never a crash. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/sha256.h"
#include "gguf/gguf.h"
#include "swarm/swarm.h"

static const char *const INTENT_LABELS[] = {
    "order_problem", "refund_request", "billing", "technical", "other"};
static const char *const SLOTS[] = {"order_number", "product"};

static char models_dir[512];

/* A GGUF with metadata only: the swarm loader never reads tensors. */
static void write_model(const char *name, const char *task,
                        const char *const *labels, size_t n_labels)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", models_dir, name);
    gguf_writer *w = NULL;
    assert_int_equal(gguf_writer_create(&w), ROJ_OK);
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama"),
                     ROJ_OK);
    if (task) {
        assert_int_equal(gguf_writer_set_str(w, "roj.task", task), ROJ_OK);
        const char *key = strcmp(task, "extract") ? "roj.labels"
                                                  : "roj.slots";
        assert_int_equal(gguf_writer_set_arr_str(w, key, labels, n_labels),
                         ROJ_OK);
    }
    assert_int_equal(gguf_writer_write(w, path), ROJ_OK);
    gguf_writer_free(w);
}

static int setup_models(void **state)
{
    (void)state;
    snprintf(models_dir, sizeof models_dir, "%s/models", test_tmpdir());
    if (mkdir(models_dir, 0755) != 0)
        return -1;
    write_model("intent.gguf", "classify", INTENT_LABELS, 5);
    write_model("intent-small.gguf", "classify", INTENT_LABELS, 5);
    write_model("slots.gguf", "extract", SLOTS, 2);
    write_model("base.gguf", NULL, NULL, 0);
    write_model("urgency.lora.gguf", NULL, NULL, 0);
    return 0;
}

/* Writes yaml to case.yaml next to models/ and loads it. */
static roj_status load_case(const char *yaml, swarm_file **out,
                            char **problems)
{
    char path[600];
    snprintf(path, sizeof path, "%s/case.yaml", test_tmpdir());
    test_write_file(path, yaml, strlen(yaml));
    return swarm_load(path, out, problems);
}

/* The load fails with a problem at "LINE:COL" whose line has every word
 * of words (NULL-terminated). */
static void expect_problem_at(const char *yaml, const char *where,
                              const char *const *words)
{
    swarm_file *f = NULL;
    char *problems = NULL;
    roj_status st = load_case(yaml, &f, &problems);
    assert_null(f);
    assert_int_equal(st, ROJ_ERR_FORMAT);
    assert_non_null(problems);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "case.yaml:%s:", where);
    const char *line = strstr(problems, prefix);
    if (!line)
        fail_msg("no problem at %s in:\n%s", where, problems);
    size_t len = strcspn(line, "\n");
    char *problem_line = strndup(line, len);
    for (size_t i = 0; words[i]; i++)
        if (!strstr(problem_line, words[i]))
            fail_msg("\"%s\" missing from: %s", words[i], problem_line);
    free(problem_line);
    free(problems);
}

#define EXPECT(yaml, where, ...)                                              \
    expect_problem_at(yaml, where, (const char *const[]){__VA_ARGS__, NULL})

static const char *example_path(void)
{
    static char path[1024];
    const char *src = __FILE__;
    const char *cut = strstr(src, "tests/test_swarm_file.c");
    assert_non_null(cut);
    snprintf(path, sizeof path, "%.*sexamples/helpdesk.yaml",
             (int)(cut - src), src);
    return path;
}

static char *read_example(void)
{
    size_t size;
    return test_read_file(example_path(), &size);
}

/* ---- the example ---- */

static void example_validates(void **state)
{
    (void)state;
    char *yaml = read_example();
    swarm_file *f = NULL;
    char *problems = NULL;
    roj_status st = load_case(yaml, &f, &problems);
    if (st)
        fail_msg("example failed:\n%s", problems ? problems : "");
    assert_string_equal(f->name, "helpdesk");
    assert_int_equal(f->n_models, 4);
    assert_int_equal(f->n_skills, 7);
    assert_int_equal(f->n_pipelines, 2);

    long intent = swarm_find_skill(f, "intent");
    assert_true(intent >= 0);
    const swarm_skill *s = &f->skills[intent];
    assert_int_equal(s->output.kind, SWARM_OUTPUT_CHOICE);
    assert_int_equal(s->output.n_labels, 5);
    assert_string_equal(s->output.labels[1], "refund_request");
    assert_true(s->prompt_from_model);
    assert_string_equal(s->prompt, "{text}\nlabel:");
    assert_int_equal(s->timeout_ms, 30000);

    const swarm_skill *order = &f->skills[swarm_find_skill(f, "order_number")];
    assert_int_equal(order->output.kind, SWARM_OUTPUT_SPAN);
    assert_string_equal(order->output.slot, "order_number");
    assert_string_equal(order->output.none_word, "none");

    const swarm_skill *urgency = &f->skills[swarm_find_skill(f, "urgency")];
    assert_non_null(strstr(urgency->lora_path, "models/urgency.lora.gguf"));
    assert_int_equal(urgency->timeout_ms, 5000);
    assert_int_equal(urgency->sampling.seed, 1);
    assert_int_equal(urgency->n_fields, 1);
    assert_string_equal(urgency->fields[0], "text");

    const swarm_skill *reply = &f->skills[swarm_find_skill(f, "reply")];
    assert_int_equal(reply->output.kind, SWARM_OUTPUT_TEXT);
    assert_int_equal(reply->output.max_tokens, 48);
    assert_int_equal(reply->output.n_stop, 1);
    assert_string_equal(reply->output.stop[0], "\n");
    assert_true(reply->sampling.top_p > 0.89f && reply->sampling.top_p < 0.91f);

    const swarm_pipeline *p = &f->pipelines[swarm_find_pipeline(f, "triage")];
    assert_int_equal(p->n_steps, 6);
    const swarm_step *cascade = &p->steps[0];
    assert_true(cascade->cascade);
    assert_int_equal(cascade->n_skills, 2);
    assert_true(cascade->threshold > 0.79f && cascade->threshold < 0.81f);
    const swarm_step *ord = &p->steps[swarm_find_step(p, "order")];
    assert_int_equal(ord->n_when, 1);
    assert_int_equal(ord->when[0].step, 0);
    assert_int_equal(ord->n_deps, 1);
    assert_int_equal(ord->n_input, 1);
    assert_string_equal(ord->input[0].tmpl, "{job.text}");
    const swarm_step *refund = &p->steps[swarm_find_step(p, "refund")];
    assert_int_equal(refund->n_deps, 2); /* intent (when), order (after) */
    const swarm_step *map = &p->steps[swarm_find_step(p, "urgency")];
    assert_true(map->map);
    assert_int_equal(map->reduce, SWARM_REDUCE_VOTE);
    assert_int_equal(map->split, SWARM_SPLIT_SENTENCES);
    assert_string_equal(map->input[0].tmpl, "{item}");
    assert_int_equal(map->n_deps, 0);
    assert_int_equal(p->n_output, 7);
    const char *expected[] = {"intent", "order", "product", "refund",
                              "urgency", "reply"};
    for (size_t i = 0; i < 6; i++)
        assert_string_equal(p->steps[p->order[i]].id, expected[i]);

    const swarm_pipeline *v = &f->pipelines[1];
    assert_int_equal(v->steps[0].vote, 2);
    assert_int_equal(v->steps[0].vote_rule, SWARM_VOTE_CONFIDENCE);
    swarm_free(f);
    free(yaml);
}

/* ---- problems, each at its line and column ---- */

#define PRELUDE                                                               \
    "version: 1\n"                                /* 1 */                    \
    "models:\n"                                   /* 2 */                    \
    "  intent: {path: models/intent.gguf}\n"      /* 3 */                    \
    "  slots: {path: models/slots.gguf}\n"        /* 4 */                    \
    "  base: {path: models/base.gguf}\n"          /* 5 */                    \
    "skills:\n"                                   /* 6 */                    \
    "  intent: {model: intent}\n"                 /* 7 */                    \
    "  order:\n"                                  /* 8 */                    \
    "    model: slots\n"                          /* 9 */                    \
    "    output: {span: {slot: order_number}}\n"  /* 10 */                   \
    "  tone:\n"                                   /* 11 */                   \
    "    model: base\n"                           /* 12 */                   \
    "    prompt: \"{text}\\nTone:\"\n"            /* 13 */                   \
    "    output: {choice: [calm, angry]}\n"       /* 14 */                   \
    "pipelines:\n"                                /* 15 */                   \
    "  p:\n"                                      /* 16 */                   \
    "    input: [text]\n"                         /* 17 */                   \
    "    output: {r: \"{job.text}\"}\n"           /* 18 */                   \
    "    steps:\n"                                /* 19 */

static void prelude_alone_validates(void **state)
{
    (void)state;
    swarm_file *f = NULL;
    char *problems = NULL;
    roj_status st = load_case(PRELUDE "      - {id: i, skill: intent}\n", &f,
                              &problems);
    if (st)
        fail_msg("%s", problems ? problems : roj_last_error());
    swarm_free(f);
}

static void problem_unknown_keys(void **state)
{
    (void)state;
    EXPECT("version: 1\nmodles: {}\n", "2:1", "unknown key \"modles\"",
           "Did you mean \"models\"?");
    EXPECT(PRELUDE "      - {id: i, skil: intent}\n", "20:17",
           "pipelines.p.steps[0]", "unknown key \"skil\"",
           "Did you mean \"skill\"?");
    EXPECT(PRELUDE "      - {id: i, skill: tone, map: {ovr: x, split: "
           "lines}, reduce: count}\n", "20:36", "steps[0].map",
           "unknown key \"ovr\"", "\"over\"");
}

static void problem_unknown_names(void **state)
{
    (void)state;
    EXPECT(PRELUDE "      - {id: i, skill: intnet}\n", "20:24",
           "steps[0].skill", "unknown skill \"intnet\"",
           "Did you mean \"intent\"?");
    EXPECT("version: 1\nmodels:\n  base: {path: models/base.gguf}\n"
           "skills:\n  s: {model: bsae, prompt: \"{text}\", output: "
           "{text: {}}}\npipelines: {}\n",
           "5:14", "skills.s.model", "unknown model \"bsae\"",
           "Did you mean \"base\"?");
}

static void problem_cycle(void **state)
{
    (void)state;
    EXPECT(PRELUDE
           "      - {id: a, skill: tone, input: {text: \"{b.label}\"}}\n"
           "      - {id: b, skill: tone, after: [a]}\n",
           "20:9", "pipelines.p.steps", "dependency cycle: a -> b -> a");
    EXPECT(PRELUDE
           "      - {id: a, skill: tone, when: {a: [calm]}}\n",
           "20:9", "dependency cycle: a -> a");
}

static void problem_placeholders(void **state)
{
    (void)state;
    EXPECT(PRELUDE "      - {id: i, skill: tone, input: {text: "
           "\"{job.txt}\"}}\n", "20:44", "steps[0].input.text",
           "{job.txt}", "no field \"txt\"", "Did you mean \"text\"?");
    EXPECT(PRELUDE "      - {id: i, skill: tone, input: {text: "
           "\"{intnt.label}\"}}\n", "20:44", "unknown step \"intnt\"");
    EXPECT(PRELUDE "      - {id: o, skill: order}\n"
           "      - {id: t, skill: tone, input: {text: \"{o.label}\"}}\n",
           "21:44", "step \"o\" gives no field \"label\"",
           "Known: text, found.");
    EXPECT(PRELUDE "      - {id: t, skill: tone, input: {text: \"{item}\"}}\n",
           "20:44", "{item} refers to nothing", "map steps only");
    EXPECT(PRELUDE "      - {id: t, skill: tone, input: {txt: \"x\"}}\n",
           "20:38", "has no {txt}", "Did you mean \"text\"?");
    EXPECT(PRELUDE "      - {id: t, skill: tone, input: {text: \"{job\"}}\n",
           "20:44", "placeholder", "{{");
}

static void problem_output_placeholder(void **state)
{
    (void)state;
    const char *yaml =
        "version: 1\n"
        "models: {base: models/base.gguf}\n"
        "skills:\n"
        "  tone: {model: base, prompt: \"{text}\", output: {choice: [a]}}\n"
        "pipelines:\n"
        "  p:\n"
        "    input: [text]\n"
        "    steps: [{id: t, skill: tone}]\n"
        "    output: {tone: \"{t.labl}\"}\n";
    EXPECT(yaml, "9:20", "pipelines.p.output.tone",
           "gives no field \"labl\"", "Did you mean \"label\"?");
}

static void problem_when(void **state)
{
    (void)state;
    EXPECT(PRELUDE "      - {id: o, skill: order}\n"
           "      - {id: t, skill: tone, when: {o: [x]}}\n",
           "21:37", "steps[1].when.o", "chooses no label",
           "route on a choice step");
    EXPECT(PRELUDE "      - {id: i, skill: intent}\n"
           "      - {id: t, skill: tone, when: {i: []}}\n",
           "21:40", "label set is empty");
    EXPECT(PRELUDE "      - {id: i, skill: intent}\n"
           "      - {id: t, skill: tone, when: {i: [biling]}}\n",
           "21:41", "never chooses \"biling\"",
           "Did you mean \"billing\"?");
}

static void problem_empty_labels(void **state)
{
    (void)state;
    EXPECT("version: 1\nmodels: {base: models/base.gguf}\nskills:\n"
           "  s: {model: base, prompt: \"{text}\", output: {choice: []}}\n"
           "pipelines: {}\n",
           "4:55", "skills.s.output.choice", "label set is empty");
}

/* A missing model file is one problem, not one more per step whose
 * skill takes its output from that file. */
static void problem_missing_model_alone(void **state)
{
    (void)state;
    const char *yaml =
        "version: 1\nmodels:\n  m: {path: models/missing.gguf}\n"
        "skills:\n  s: {model: m}\n"
        "pipelines:\n  p:\n    input: [text]\n"
        "    steps:\n      - {id: a, skill: s}\n"
        "    output: {x: \"{a.text}\", y: \"{a.label}\"}\n";
    swarm_file *f = NULL;
    char *problems = NULL;
    assert_int_equal(load_case(yaml, &f, &problems), ROJ_ERR_FORMAT);
    assert_null(f);
    assert_non_null(problems);
    assert_non_null(strstr(problems, "models/missing.gguf"));
    assert_null(strstr(problems, "gives no field"));
    assert_null(strstr(problems, "chooses no label"));
    free(problems);
}

static void problem_model_files(void **state)
{
    (void)state;
    EXPECT("version: 1\nmodels:\n  m: {path: models/missing.gguf}\n",
           "3:13", "models.m.path", "models/missing.gguf", "not found");

    char hex[SHA256_HEX_SIZE], path[600], yaml[1024];
    snprintf(path, sizeof path, "%s/base.gguf", models_dir);
    assert_int_equal(sha256_file(path, hex), ROJ_OK);
    const char *wrong =
        "0000000000000000000000000000000000000000000000000000000000000000";
    snprintf(yaml, sizeof yaml, "version: 1\nmodels:\n  m:\n"
             "    path: models/base.gguf\n    sha256: \"%s\"\n", wrong);
    EXPECT(yaml, "5:13", "models.m.sha256", "digest mismatch", hex, wrong);
    EXPECT("version: 1\nmodels:\n  m: {path: models/base.gguf, sha256: "
           "abc}\n", "3:39", "not a SHA-256 digest");

    /* The right digest, in capitals, loads. */
    for (char *c = hex; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    snprintf(yaml, sizeof yaml, PRELUDE "      - {id: i, skill: tone}\n");
    char *at = strstr(yaml, "models/base.gguf}");
    assert_non_null(at);
    char tail[1024];
    snprintf(tail, sizeof tail, "models/base.gguf, sha256: %s}%s", hex,
             at + strlen("models/base.gguf}"));
    strcpy(at, tail);
    swarm_file *f = NULL;
    char *problems = NULL;
    if (load_case(yaml, &f, &problems) != ROJ_OK)
        fail_msg("%s", problems);
    assert_int_equal(strlen(f->models[2].sha256), 64);
    assert_int_equal(f->models[2].sha256[0], hex[0] | 0x20);
    swarm_free(f);

    EXPECT("version: 1\nmodels:\n  m: {path: case.yaml}\n", "3:6",
           "models.m", "cannot read the model");
}

static void problem_step_shapes(void **state)
{
    (void)state;
    EXPECT(PRELUDE "      - {id: t, skill: tone, map: {over: \"{job.text}\", "
           "split: lines}}\n", "20:35", "steps[0]", "needs reduce");
    EXPECT(PRELUDE "      - {id: t, skill: tone, reduce: vote}\n", "20:38",
           "reduce applies to map steps only");
    EXPECT(PRELUDE "      - {id: t, skill: tone, vote: 0}\n", "20:36",
           "steps[0].vote", "use 1 or more agents");
    EXPECT(PRELUDE "      - {id: t, cascade: [intent], threshold: 0.5}\n",
           "20:26", "steps[0].cascade", "at least 2 skills");
    EXPECT(PRELUDE "      - {id: t, cascade: [tone, tone], threshold: 1.5}\n",
           "20:51", "steps[0].threshold", "outside (0, 1)");
    EXPECT(PRELUDE "      - {id: t, cascade: [tone, tone], threshold: 0}\n",
           "20:51", "outside (0, 1)");
    EXPECT(PRELUDE "      - {id: t, cascade: [tone, intent], threshold: "
           "0.5}\n", "20:26", "answer alike");
    EXPECT(PRELUDE "      - {id: t, skill: order, vote: 3}\n"
           "      - {id: u, skill: tone, map: {over: \"{job.text}\", split: "
           "chunks}, reduce: collect}\n", "21:35", "map.tokens",
           "size in tokens");
    EXPECT(PRELUDE "      - {id: t, skill: order, map: {over: \"{job.text}\","
           " split: lines}, reduce: vote}\n", "20:9",
           "reduce: vote counts labels");
}

static void problem_durations(void **state)
{
    (void)state;
    static const char *const bad[] = {"5", "5 s", "s", "-1s", "0ms", "25h",
                                      "1.5.2s", "5sec"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, "version: 1\nmodels: {base: "
                 "models/base.gguf}\nskills:\n  s:\n    model: base\n"
                 "    timeout: \"%s\"\n", bad[i]);
        EXPECT(yaml, "6:14", "skills.s.timeout", "not a valid duration",
               "250ms");
    }
    struct {
        const char *text;
        uint32_t ms;
    } good[] = {{"250ms", 250}, {"5s", 5000}, {"1.5s", 1500},
                {"2m", 120000}, {"1h", 3600000}, {"24h", 86400000}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char yaml[2048];
        snprintf(yaml, sizeof yaml, "%s      - {id: i, skill: tone}\n",
                 PRELUDE);
        char *at = strstr(yaml, "    model: base\n");
        char rest[2048];
        snprintf(rest, sizeof rest, "    timeout: %s\n%s", good[i].text, at);
        strcpy(at, rest);
        swarm_file *f = NULL;
        char *problems = NULL;
        if (load_case(yaml, &f, &problems) != ROJ_OK)
            fail_msg("%s: %s", good[i].text, problems);
        assert_int_equal(f->skills[2].timeout_ms, good[i].ms);
        swarm_free(f);
    }
}

static void problem_duplicates(void **state)
{
    (void)state;
    EXPECT("version: 1\nmodels:\n  base: {path: models/base.gguf}\n"
           "  base: {path: models/intent.gguf}\n", "4:3",
           "duplicate key \"base\" (first at line 3)");
    EXPECT(PRELUDE "      - {id: i, skill: intent}\n"
           "      - {id: i, skill: tone}\n", "21:14",
           "steps[1].id", "duplicate step id \"i\" (first at line 20)");
}

static void problem_yaml_syntax(void **state)
{
    (void)state;
    EXPECT("version: 1\nmodels: [a, b\nskills: {}\n", "3:7",
           "YAML syntax error");
    EXPECT("version: 1\n  bad: indent\n", "2:6", "YAML syntax error");
    EXPECT("version: 2\n", "1:10", "version 2 is not supported");
}

static void problem_skill_meta(void **state)
{
    (void)state;
    /* A plain model needs an output and a prompt. */
    EXPECT("version: 1\nmodels: {base: models/base.gguf}\n"
           "skills:\n  s: {model: base}\n", "4:6", "skills.s",
           "carries no roj.task", "add output");
    /* An extract model with two slots needs one chosen. */
    EXPECT("version: 1\nmodels: {slots: models/slots.gguf}\n"
           "skills:\n  s: {model: slots}\n", "4:6", "extracts 2 slots");
    EXPECT("version: 1\nmodels: {slots: models/slots.gguf}\n"
           "skills:\n  s: {model: slots, output: {span: {slot: prodct}}}\n",
           "4:43", "skills.s.output.span.slot", "slot \"prodct\"",
           "Did you mean \"product\"?");
    EXPECT("version: 1\nmodels: {m: models/intent.gguf}\n"
           "skills:\n  s: {model: m, output: {choice: [billing, refnd]}}\n",
           "4:44", "skills.s.output.choice", "label \"refnd\"",
           "roj.labels");
    EXPECT("version: 1\nmodels: {m: models/intent.gguf}\n"
           "skills:\n  s: {model: m, output: {text: {}}}\n",
           "4:25", "skills.s.output", "does not match",
           "classify");
    EXPECT("version: 1\nmodels: {base: models/base.gguf}\n"
           "skills:\n  s: {model: base, prompt: \"{job.text}\", output: "
           "{text: {}}}\n", "4:28", "plain field names");
}

/* ---- execution order ---- */

static void order_is_topological_stable(void **state)
{
    (void)state;
    const char *yaml = PRELUDE
        "      - {id: c, skill: tone, after: [b]}\n"
        "      - {id: a, skill: intent}\n"
        "      - {id: d, skill: tone}\n"
        "      - {id: b, skill: tone, input: {text: \"{a.label}\"}}\n"
        "      - {id: e, skill: tone, when: {a: [billing]}, after: [c]}\n";
    swarm_file *f = NULL;
    char *problems = NULL;
    if (load_case(yaml, &f, &problems) != ROJ_OK)
        fail_msg("%s", problems);
    const swarm_pipeline *p = &f->pipelines[0];
    /* a and d are ready first (file order: a before d); b needs a, c needs
     * b, e needs a and c. */
    const char *expected[] = {"a", "d", "b", "c", "e"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(p->steps[p->order[i]].id, expected[i]);
    const swarm_step *e = &p->steps[4];
    assert_int_equal(e->n_deps, 2);
    assert_int_equal(e->deps[0], 0); /* c */
    assert_int_equal(e->deps[1], 1); /* a */
    swarm_free(f);
}

/* ---- rendering ---- */

typedef struct kv {
    const char *name, *value;
} kv;

static roj_status lookup(void *ctx, const char *name, const char **value,
                         size_t *len)
{
    for (const kv *p = ctx; p->name; p++)
        if (!strcmp(p->name, name)) {
            *value = p->value;
            *len = strlen(p->value);
            return ROJ_OK;
        }
    return ROJ_ERR_NOT_FOUND;
}

static void render_fills_placeholders(void **state)
{
    (void)state;
    const kv table[] = {{"job.text", "my order 12 is late"},
                        {"intent.label", "order_problem"},
                        {"q", "say \"hi\"\n\\"},
                        {NULL, NULL}};
    char *out = NULL;
    assert_int_equal(swarm_render("Ticket: {job.text} -> {intent.label}",
                                  lookup, (void *)table, 0, &out), ROJ_OK);
    assert_string_equal(out, "Ticket: my order 12 is late -> order_problem");
    free(out);

    assert_int_equal(swarm_render("{{\"a\": \"{intent.label}\"}}", lookup,
                                  (void *)table, 0, &out), ROJ_OK);
    assert_string_equal(out, "{\"a\": \"order_problem\"}");
    free(out);

    assert_int_equal(swarm_render("{{{q}}}", lookup, (void *)table,
                                  SWARM_RENDER_JSON, &out), ROJ_OK);
    assert_string_equal(out, "{say \\\"hi\\\"\\n\\\\}");
    free(out);

    assert_int_equal(swarm_render("", lookup, (void *)table, 0, &out),
                     ROJ_OK);
    assert_string_equal(out, "");
    free(out);
}

static void render_reports_errors(void **state)
{
    (void)state;
    const kv table[] = {{"job.text", "x"}, {NULL, NULL}};
    char *out = (char *)1;
    assert_int_equal(swarm_render("a {job.txt} b", lookup, (void *)table, 0,
                                  &out), ROJ_ERR_NOT_FOUND);
    assert_null(out);
    assert_non_null(strstr(roj_last_error(), "{job.txt}"));
    assert_non_null(strstr(roj_last_error(), "byte 2"));
    static const char *const bad[] = {"a { b", "a } b", "{}", "{job.text",
                                      "{a b}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(swarm_render(bad[i], lookup, (void *)table, 0, &out),
                         ROJ_ERR_FORMAT);
        assert_null(out);
        assert_non_null(strstr(roj_last_error(), "brace"));
    }
}

/* ---- hostile YAML ---- */

static void hostile_aliases_rejected(void **state)
{
    (void)state;
    EXPECT("version: 1\na: &x [1, 2]\nb: [*x, *x]\n", "3:5",
           "aliases", "not supported");
    /* A billion laughs: rejected at the first alias, nothing expanded. */
    const char *bomb =
        "a: &a [x, x, x, x, x, x, x, x, x]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n";
    EXPECT(bomb, "2:8", "aliases");
}

static void hostile_depth_and_size(void **state)
{
    (void)state;
    size_t n = 100000;
    char *deep = malloc(2 * n + 16);
    assert_non_null(deep);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\n';
    deep[2 * n + 1] = '\0';
    swarm_file *f = NULL;
    char *problems = NULL;
    assert_int_equal(swarm_parse(deep, strlen(deep), "deep.yaml", &f,
                                 &problems), ROJ_ERR_FORMAT);
    assert_non_null(strstr(problems, "nesting deeper than 64"));
    free(problems);
    free(deep);

    /* A 4 MiB name: libyaml reads it and the report stays short. */
    size_t big = 4u << 20;
    char *huge = malloc(big + 128);
    assert_non_null(huge);
    size_t o = (size_t)sprintf(huge, "version: 1\nmodels: {base: "
                               "models/base.gguf}\nskills:\n  s: {model: ");
    memset(huge + o, 'k', big);
    strcpy(huge + o + big, "}\n");
    char path[600];
    snprintf(path, sizeof path, "%s/huge.yaml", test_tmpdir());
    assert_int_equal(swarm_parse(huge, strlen(huge), path, &f, &problems),
                     ROJ_ERR_FORMAT);
    assert_non_null(strstr(problems, "huge.yaml:4:14: skills.s.model: "
                                     "unknown model \"kkkk"));
    assert_true(strlen(problems) < 4096);
    free(problems);
    free(huge);

    /* Many unknown keys: the report is capped. */
    char *many = malloc(20 * 3000 + 16);
    assert_non_null(many);
    o = (size_t)sprintf(many, "version: 1\n");
    for (int i = 0; i < 3000; i++)
        o += (size_t)sprintf(many + o, "k%d: 1\n", i);
    assert_int_equal(swarm_parse(many, o, "many.yaml", &f, &problems),
                     ROJ_ERR_FORMAT);
    assert_non_null(strstr(problems, "more problems"));
    assert_non_null(strstr(roj_last_error(), "more problems"));
    free(problems);
    free(many);
}

/* The longest pipeline, each step after every earlier one, and long
 * lists of repeated labels: both are checked quickly. */
static void hostile_dense_graph(void **state)
{
    (void)state;
    size_t cap = 1u << 20, o = 0;
    char *yaml = malloc(cap);
    assert_non_null(yaml);
    o += (size_t)snprintf(yaml, cap, "%s", PRELUDE);
    for (int i = 0; i < 256; i++) {
        o += (size_t)snprintf(yaml + o, cap - o, "      - {id: s%d, skill: "
                              "tone, after: [", i);
        for (int j = 0; j < i; j++)
            o += (size_t)snprintf(yaml + o, cap - o, "%ss%d", j ? ", " : "",
                                  j);
        o += (size_t)snprintf(yaml + o, cap - o, "]}\n");
    }
    swarm_file *f = NULL;
    char *problems = NULL;
    if (load_case(yaml, &f, &problems) != ROJ_OK)
        fail_msg("%s", problems);
    const swarm_pipeline *p = &f->pipelines[0];
    assert_int_equal(p->n_steps, 256);
    assert_int_equal(p->steps[255].n_deps, 255);
    for (size_t i = 0; i < 256; i++)
        assert_int_equal(p->order[i], i);
    swarm_free(f);

    /* One step more is rejected. */
    o += (size_t)snprintf(yaml + o, cap - o, "      - {id: x, skill: tone}\n");
    EXPECT(yaml, "20:7", "steps", "1 to 256 steps");

    o = (size_t)snprintf(yaml, cap, "version: 1\nmodels: {base: "
                         "models/base.gguf}\nskills:\n  s: {model: base, "
                         "prompt: x, output: {choice: [");
    for (int i = 0; i < 4096; i++)
        o += (size_t)snprintf(yaml + o, cap - o, "%sa", i ? ", " : "");
    snprintf(yaml + o, cap - o, "]}}\n");
    EXPECT(yaml, "4:58", "\"a\" is listed twice (first at line 4, column "
           "55)");
    free(yaml);
}

static void hostile_random_mutations(void **state)
{
    (void)state;
    char *yaml = read_example();
    size_t len = strlen(yaml);
    char path[600];
    snprintf(path, sizeof path, "%s/mutant.yaml", test_tmpdir());
    static const char pieces[] = "{}[]:,&*!|>-'\"#%@`\n\t ?0a";
    uint64_t rng = 0x5eed;
    int loaded = 0, rejected = 0;
    char *buf = malloc(len + 64);
    assert_non_null(buf);
    for (int iter = 0; iter < 1500; iter++) {
        memcpy(buf, yaml, len + 1);
        size_t n = len;
        int edits = 1 + (int)(test_rand_u64(&rng) % 4);
        for (int e = 0; e < edits && n > 1; e++) {
            size_t at = test_rand_u64(&rng) % n;
            switch (test_rand_u64(&rng) % 3) {
            case 0: /* replace a byte */
                buf[at] = pieces[test_rand_u64(&rng) % (sizeof pieces - 1)];
                break;
            case 1: /* delete a run */
            {
                size_t run = 1 + test_rand_u64(&rng) % 12;
                if (run > n - at)
                    run = n - at;
                memmove(buf + at, buf + at + run, n - at - run + 1);
                n -= run;
                break;
            }
            default: /* insert a byte */
                memmove(buf + at + 1, buf + at, n - at + 1);
                buf[at] = pieces[test_rand_u64(&rng) % (sizeof pieces - 1)];
                n++;
            }
            if (n + 8 > len + 64)
                break;
        }
        swarm_file *f = NULL;
        char *problems = NULL;
        roj_status st = swarm_parse(buf, n, path, &f, &problems);
        if (st == ROJ_OK) {
            assert_non_null(f);
            loaded++;
        } else {
            assert_int_equal(st, ROJ_ERR_FORMAT);
            assert_null(f);
            assert_non_null(problems);
            assert_non_null(strstr(problems, "mutant.yaml:"));
            assert_true(roj_last_error()[0] != '\0');
            rejected++;
        }
        swarm_free(f);
        free(problems);
    }
    /* Both outcomes occur, or the mutations test nothing. */
    assert_true(loaded > 0);
    assert_true(rejected > 0);
    free(buf);
    free(yaml);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(example_validates),
        cmocka_unit_test(prelude_alone_validates),
        cmocka_unit_test(problem_unknown_keys),
        cmocka_unit_test(problem_unknown_names),
        cmocka_unit_test(problem_missing_model_alone),
        cmocka_unit_test(problem_cycle),
        cmocka_unit_test(problem_placeholders),
        cmocka_unit_test(problem_output_placeholder),
        cmocka_unit_test(problem_when),
        cmocka_unit_test(problem_empty_labels),
        cmocka_unit_test(problem_model_files),
        cmocka_unit_test(problem_step_shapes),
        cmocka_unit_test(problem_durations),
        cmocka_unit_test(problem_duplicates),
        cmocka_unit_test(problem_yaml_syntax),
        cmocka_unit_test(problem_skill_meta),
        cmocka_unit_test(order_is_topological_stable),
        cmocka_unit_test(render_fills_placeholders),
        cmocka_unit_test(render_reports_errors),
        cmocka_unit_test(hostile_aliases_rejected),
        cmocka_unit_test(hostile_depth_and_size),
        cmocka_unit_test(hostile_dense_graph),
        cmocka_unit_test(hostile_random_mutations),
    };
    return test_run_group(tests, setup_models, NULL);
}
