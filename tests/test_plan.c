/* The job plan of roj run: which subtasks become ready and when, what
 * their keys, prompt values and seeds are, how results combine (routing,
 * vote, cascade, map and reduce) and the exact output line of each job.
 * No model runs: the tests hand the plan results written by hand. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "gguf/gguf.h"
#include "run/plan.h"
#include "swarm/swarm.h"

static const char SWARM_YAML[] =
    "version: 1\n"
    "models:\n"
    "  base: models/base.gguf\n"
    "skills:\n"
    "  cls:\n"
    "    model: base\n"
    "    prompt: \"Classify: {text}\"\n"
    "    output: {choice: [a, b, c]}\n"
    "    sampling: {seed: 5}\n"
    "  cls2:\n"
    "    model: base\n"
    "    prompt: \"Again: {text}\"\n"
    "    output: {choice: [a, b, c]}\n"
    "  big:\n"
    "    model: base\n"
    "    prompt: \"Carefully: {text}\"\n"
    "    output: {choice: [a, b, c]}\n"
    "  find:\n"
    "    model: base\n"
    "    prompt: \"Order number in: {text}\"\n"
    "    output: {span: {slot: order, none: none}}\n"
    "  say:\n"
    "    model: base\n"
    "    prompt: \"{text} / {hint}\"\n"
    "    output: {text: {max_tokens: 8}}\n"
    "  form:\n"
    "    model: base\n"
    "    prompt: \"As JSON: {text}\"\n"
    "    output:\n"
    "      json: {fields: {order: string, qty: integer, price: number,\n"
    "                      rush: boolean}}\n"
    "pipelines:\n"
    "  plain:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - {id: c, skill: cls}\n"
    "    output: {label: \"{c.label}\", conf: \"{c.confidence}\",\n"
    "             both: \"{c.label} at {c.confidence}\",\n"
    "             braces: \"{{{c.label}}}\"}\n"
    "  order:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - {id: a, skill: cls}\n"
    "      - {id: b, skill: find, after: [a]}\n"
    "      - {id: c, skill: cls2}\n"
    "      - {id: d, skill: say, input: {text: \"{b.text}\",\n"
    "                                    hint: \"{c.label}\"}}\n"
    "    output: {a: \"{a.label}\", d: \"{d.text}\"}\n"
    "  route:\n"
    "    input: [text, n, tags, flag]\n"
    "    steps:\n"
    "      - {id: c, skill: cls}\n"
    "      - {id: s, skill: find, when: {c: [a]}}\n"
    "      - {id: t, skill: cls2, when: {c: [a, b]}}\n"
    "      - {id: u, skill: big, when: {t: [c]}}\n"
    "      - id: g\n"
    "        skill: say\n"
    "        input:\n"
    "          text: \"{s.text}\"\n"
    "          hint: \"{s.found}|{t.label}|{t.confidence}|{job.n}|"
    "{job.tags}|{job.flag}\"\n"
    "    output: {label: \"{c.label}\", span: \"{s.text}\",\n"
    "             found: \"{s.found}\", tconf: \"{t.confidence}\",\n"
    "             u: \"{u.label}\", reply: \"{g.text}\", n: \"{job.n}\",\n"
    "             tags: \"{job.tags}\", n_text: \"n={job.n}\"}\n"
    "  vote:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - {id: v, skill: cls, vote: 3}\n"
    "    output: {label: \"{v.label}\", conf: \"{v.confidence}\",\n"
    "             agree: \"{v.agreement}\"}\n"
    "  vote4:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - {id: v, skill: cls, vote: {k: 4, by: majority}}\n"
    "    output: {label: \"{v.label}\", conf: \"{v.confidence}\",\n"
    "             agree: \"{v.agreement}\"}\n"
    "  vote_conf:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - {id: v, skill: cls, vote: {k: 3, by: confidence}}\n"
    "    output: {label: \"{v.label}\", conf: \"{v.confidence}\",\n"
    "             agree: \"{v.agreement}\"}\n"
    "  vote_skills:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - {id: v, vote: {skills: [cls, cls2, big]}}\n"
    "    output: {label: \"{v.label}\", agree: \"{v.agreement}\"}\n"
    "  vote_span:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - {id: v, skill: find, vote: 3}\n"
    "    output: {text: \"{v.text}\", found: \"{v.found}\",\n"
    "             agree: \"{v.agreement}\"}\n"
    "  cascade:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - {id: x, cascade: [cls, cls2, big], threshold: 0.8}\n"
    "    output: {label: \"{x.label}\", skill: \"{x.skill}\",\n"
    "             conf: \"{x.confidence}\"}\n"
    "  map_collect:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - id: m\n"
    "        skill: cls\n"
    "        map: {over: \"{job.text}\", split: sentences}\n"
    "        reduce: collect\n"
    "    output: {items: \"{m.items}\", n: \"{m.n_items}\"}\n"
    "  map_concat:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - id: m\n"
    "        skill: say\n"
    "        input: {hint: \"#{item}\"}\n"
    "        map: {over: \"{job.text}\", split: lines}\n"
    "        reduce: concat\n"
    "    output: {text: \"{m.text}\", n: \"{m.n_items}\"}\n"
    "  map_count:\n"
    "    input: [tags]\n"
    "    steps:\n"
    "      - id: m\n"
    "        skill: find\n"
    "        map: {over: \"{job.tags}\", split: list}\n"
    "        reduce: count\n"
    "    output: {count: \"{m.count}\", n: \"{m.n_items}\"}\n"
    "  map_vote:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - id: m\n"
    "        skill: cls\n"
    "        map: {over: \"{job.text}\", split: sentences}\n"
    "        reduce: vote\n"
    "    output: {label: \"{m.label}\", agree: \"{m.agreement}\",\n"
    "             n: \"{m.n_items}\"}\n"
    "  map_chunks:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - id: m\n"
    "        skill: say\n"
    "        input: {hint: \"-\"}\n"
    "        map: {over: \"{job.text}\", split: chunks, tokens: 4}\n"
    "        reduce: concat\n"
    "    output: {text: \"{m.text}\", n: \"{m.n_items}\"}\n"
    "  map_cascade:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - id: m\n"
    "        cascade: [cls, big]\n"
    "        threshold: 0.5\n"
    "        map: {over: \"{job.text}\", split: lines}\n"
    "        reduce: collect\n"
    "    output: {items: \"{m.items}\", skill: \"{m.skill}\"}\n"
    "  map_vote_k:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - id: m\n"
    "        skill: cls\n"
    "        vote: 2\n"
    "        map: {over: \"{job.text}\", split: lines}\n"
    "        reduce: vote\n"
    "    output: {label: \"{m.label}\", agree: \"{m.agreement}\"}\n"
      "  skip_kinds:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - {id: c, skill: cls}\n"
    "      - {id: f, skill: form, when: {c: [a]}}\n"
    "      - id: m\n"
    "        skill: cls\n"
    "        when: {c: [a]}\n"
    "        map: {over: \"{job.text}\", split: lines}\n"
    "        reduce: collect\n"
    "      - {id: v, skill: cls, vote: 3, when: {c: [a]}}\n"
    "      - {id: x, cascade: [cls, big], threshold: 0.5, when: {c: [a]}}\n"
    "      - {id: r, skill: cls, when: {v: [b], x: [b]}}\n"
    "    output: {order: \"{f.order}\", qty: \"{f.qty}\",\n"
    "             price: \"{f.price}\", rush: \"{f.rush}\",\n"
    "             text: \"{f.text}\",\n"
    "             items: \"{m.items}\", n: \"{m.n_items}\",\n"
    "             vote: \"{v.label}\", vconf: \"{v.confidence}\",\n"
    "             agree: \"{v.agreement}\", cascade: \"{x.label}\",\n"
    "             skill: \"{x.skill}\", xconf: \"{x.confidence}\",\n"
    "             r: \"{r.label}\"}\n"
  "  json:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - {id: f, skill: form}\n"
    "      - id: g\n"
    "        skill: say\n"
    "        input: {text: \"{f.order}\",\n"
    "                hint: \"{f.qty} x {f.price} {f.rush}\"}\n"
    "    output: {order: \"{f.order}\", qty: \"{f.qty}\",\n"
    "             price: \"{f.price}\", rush: \"{f.rush}\",\n"
    "             line: \"{g.text}\", raw: \"{f.text}\"}\n";

static swarm_file *swarm;

/* Tasks of the last take_ready call. */
static plan_task ready[64];
static size_t n_ready;

/* ---- chunk hook ---- */

/* Ends a chunk every `tokens` bytes, as if each byte were a token. */
typedef struct chunk_spy {
    size_t calls;
    size_t skill;
    uint32_t tokens;
    bool fail;       /* return an error */
    bool short_ends; /* end the last chunk before the text's end */
} chunk_spy;

static roj_status chunk_bytes(void *ctx, size_t skill, const char *text,
                              size_t len, uint32_t tokens, size_t **ends,
                              size_t *n)
{
    chunk_spy *spy = ctx;
    (void)text;
    spy->calls++;
    spy->skill = skill;
    spy->tokens = tokens;
    if (spy->fail)
        return ROJ_ERR_IO;
    size_t count = (len + tokens - 1) / tokens;
    *ends = calloc(count + 1, sizeof **ends);
    if (!*ends)
        return ROJ_ERR_NOMEM;
    for (size_t i = 0; i < count; i++)
        (*ends)[i] = (i + 1) * tokens < len ? (i + 1) * tokens : len;
    if (spy->short_ends && count)
        (*ends)[count - 1]--;
    *n = count;
    return ROJ_OK;
}

/* ---- helpers ---- */

static void write_model(const char *path)
{
    gguf_writer *w = NULL;
    assert_int_equal(gguf_writer_create(&w), ROJ_OK);
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama"),
                     ROJ_OK);
    assert_int_equal(gguf_writer_write(w, path), ROJ_OK);
    gguf_writer_free(w);
}

static int setup_swarm(void **state)
{
    (void)state;
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/models", test_tmpdir());
    if (mkdir(dir, 0755) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/base.gguf", dir);
    write_model(path);
    snprintf(path, sizeof path, "%s/plan.yaml", test_tmpdir());
    char *problems = NULL;
    roj_status st = swarm_parse(SWARM_YAML, strlen(SWARM_YAML), path, &swarm,
                                &problems);
    if (st) {
        fprintf(stderr, "the test swarm does not load:\n%s\n",
                problems ? problems : roj_last_error());
        free(problems);
        return -1;
    }
    return 0;
}

static int teardown_swarm(void **state)
{
    (void)state;
    swarm_free(swarm);
    return 0;
}

static size_t skill_index(const char *name)
{
    long k = swarm_find_skill(swarm, name);
    assert_true(k >= 0);
    return (size_t)k;
}

/* Starts job `index` of pipeline name with id "j1". */
static plan_job *start_job(const char *pipeline, uint64_t index,
                           const char *fields, const plan_hooks *hooks)
{
    long p = swarm_find_pipeline(swarm, pipeline);
    assert_true(p >= 0);
    plan_job *job = NULL;
    assert_int_equal(plan_job_new(swarm, (size_t)p, index, "j1", fields,
                                  hooks, &job), ROJ_OK);
    assert_non_null(job);
    return job;
}

static plan_job *start(const char *pipeline, const char *fields)
{
    return start_job(pipeline, 0, fields, NULL);
}

/* Takes every ready task into `ready` and returns their keys joined by
 * commas ("" when none is ready). */
static const char *take_ready(plan_job *job)
{
    static char keys[1024];
    n_ready = plan_job_ready(job, ready, 64);
    keys[0] = '\0';
    for (size_t i = 0; i < n_ready; i++) {
        if (i)
            strcat(keys, ",");
        strcat(keys, ready[i].key);
    }
    return keys;
}

/* Returns the task named key from the last take_ready call. */
static const plan_task *ready_task(const char *key)
{
    for (size_t i = 0; i < n_ready; i++)
        if (!strcmp(ready[i].key, key))
            return &ready[i];
    fail_msg("task \"%s\" is not among the ready tasks", key);
    return NULL;
}

/* Returns the value of prompt field name in ready task key. */
static const char *task_value(const char *key, const char *name)
{
    const plan_task *t = ready_task(key);
    for (size_t i = 0; i < t->n_fields; i++)
        if (!strcmp(t->names[i], name))
            return t->values[i];
    fail_msg("task \"%s\" has no field \"%s\"", key, name);
    return NULL;
}

static void answer(plan_job *job, const char *key, const char *result)
{
    assert_int_equal(plan_job_result(job, key, result), ROJ_OK);
}

/* Asserts that job is done and its output line is expected. */
static void expect_line(const plan_job *job, const char *expected)
{
    assert_true(plan_job_done(job));
    char *line = NULL;
    assert_int_equal(plan_job_output(job, &line), ROJ_OK);
    assert_non_null(line);
    assert_string_equal(line, expected);
    free(line);
}

/* Asserts that job failed with an error that contains every word of
 * words (NULL-terminated). */
static void expect_error(const plan_job *job, const char *const *words)
{
    assert_true(plan_job_done(job));
    assert_true(plan_job_failed(job));
    char *line = NULL;
    assert_int_equal(plan_job_output(job, &line), ROJ_OK);
    assert_non_null(line);
    assert_non_null(strstr(line, "{\"id\":\"j1\",\"ok\":false,\"error\":"));
    for (size_t i = 0; words[i]; i++)
        if (!strstr(line, words[i]))
            fail_msg("\"%s\" missing from: %s", words[i], line);
    free(line);
}

#define EXPECT_ERROR(job, ...)                                                \
    expect_error(job, (const char *const[]){__VA_ARGS__, NULL})

/* ---- plain steps and dependencies ---- */

static void plain_step(void **state)
{
    (void)state;
    plan_job *job = start("plain", "{\"text\": \"my order\"}");
    assert_false(plan_job_done(job));
    assert_string_equal(take_ready(job), "c");
    assert_int_equal(ready[0].skill, skill_index("cls"));
    assert_int_equal(ready[0].step, 0);
    assert_int_equal(ready[0].n_fields, 1);
    assert_string_equal(ready[0].names[0], "text");
    assert_string_equal(ready[0].values[0], "my order");
    assert_int_equal(plan_job_pending(job), 1);
    assert_string_equal(take_ready(job), "");

    answer(job, "c", "{\"label\": \"b\", \"confidence\": 0.93, "
                     "\"probs\": [0.02, 0.93, 0.05]}");
    assert_int_equal(plan_job_pending(job), 0);
    assert_false(plan_job_failed(job));
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"b\","
                     "\"conf\":0.93,\"both\":\"b at 0.93\","
                     "\"braces\":\"{b}\"}}");
    plan_job_free(job);
}

static void after_orders_ready(void **state)
{
    (void)state;
    plan_job *job = start("order", "{\"text\": \"order A-1 is late\"}");
    /* a and c wait for nothing; b waits for a, d for b and c. */
    assert_string_equal(take_ready(job), "a,c");
    assert_string_equal(task_value("c", "text"), "order A-1 is late");

    answer(job, "c", "{\"label\": \"c\", \"confidence\": 0.7}");
    assert_string_equal(take_ready(job), "");
    answer(job, "a", "{\"label\": \"a\", \"confidence\": 0.6}");
    assert_string_equal(take_ready(job), "b");
    assert_string_equal(task_value("b", "text"), "order A-1 is late");

    answer(job, "b", "{\"text\": \"A-1\", \"found\": true}");
    assert_string_equal(take_ready(job), "d");
    assert_string_equal(task_value("d", "text"), "A-1");
    assert_string_equal(task_value("d", "hint"), "c");
    assert_false(plan_job_done(job));

    answer(job, "d", "{\"text\": \"We are on it\"}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"a\":\"a\","
                     "\"d\":\"We are on it\"}}");
    plan_job_free(job);
}

static void output_before_done_rejected(void **state)
{
    (void)state;
    plan_job *job = start("plain", "{\"text\": \"x\"}");
    char *line = (char *)"unset";
    assert_int_equal(plan_job_output(job, &line), ROJ_ERR_INVALID_ARG);
    assert_null(line);
    plan_job_free(job);
}

static void ready_in_batches(void **state)
{
    (void)state;
    plan_job *job = start("vote4", "{\"text\": \"t\"}");
    plan_task one[2];
    assert_int_equal(plan_job_ready(job, one, 1), 1);
    assert_string_equal(one[0].key, "v#0");
    assert_int_equal(plan_job_ready(job, one, 2), 2);
    assert_string_equal(one[0].key, "v#1");
    assert_string_equal(one[1].key, "v#2");
    assert_int_equal(plan_job_pending(job), 3);
    assert_int_equal(plan_job_ready(job, one, 0), 0);
    assert_int_equal(plan_job_ready(job, one, 2), 1);
    assert_string_equal(one[0].key, "v#3");
    assert_int_equal(plan_job_ready(job, one, 2), 0);
    plan_job_free(job);
}

static void job_new_rejects_pipeline(void **state)
{
    (void)state;
    plan_job *job = (plan_job *)&job;
    assert_int_equal(plan_job_new(swarm, swarm->n_pipelines, 0, "j1",
                                  "{\"text\": \"t\"}", NULL, &job),
                     ROJ_ERR_INVALID_ARG);
    assert_null(job);
}

static void output_escapes_id(void **state)
{
    (void)state;
    long p = swarm_find_pipeline(swarm, "plain");
    plan_job *job = NULL;
    assert_int_equal(plan_job_new(swarm, (size_t)p, 7, "say \"hi\"\n",
                                  "{\"text\": \"t\"}", NULL, &job), ROJ_OK);
    take_ready(job);
    answer(job, "c", "{\"label\": \"a\", \"confidence\": 0.5}");
    expect_line(job, "{\"id\":\"say \\\"hi\\\"\\n\",\"ok\":true,"
                     "\"result\":{\"label\":\"a\",\"conf\":0.5,"
                     "\"both\":\"a at 0.5\",\"braces\":\"{a}\"}}");
    plan_job_free(job);
}

/* ---- routing ---- */

static const char ROUTE_FIELDS[] =
    "{\"text\": \"help\", \"n\": 2.5, \"tags\": [\"x\", 1], \"flag\": true}";

static void when_skips_and_dependents_run(void **state)
{
    (void)state;
    plan_job *job = start("route", ROUTE_FIELDS);
    assert_string_equal(take_ready(job), "c");
    answer(job, "c", "{\"label\": \"c\", \"confidence\": 0.9}");

    /* s and t are skipped, u through t; g still runs on their empty
     * fields. */
    assert_string_equal(take_ready(job), "g");
    assert_string_equal(task_value("g", "text"), "");
    assert_string_equal(task_value("g", "hint"),
                        "false||0|2.5|[\"x\",1]|true");
    answer(job, "g", "{\"text\": \"ok\"}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"c\","
                     "\"span\":\"\",\"found\":false,\"tconf\":0,\"u\":\"\","
                     "\"reply\":\"ok\",\"n\":2.5,\"tags\":[\"x\",1],"
                     "\"n_text\":\"n=2.5\"}}");
    plan_job_free(job);
}

static void when_routes_to_listed_label(void **state)
{
    (void)state;
    plan_job *job = start("route", ROUTE_FIELDS);
    assert_string_equal(take_ready(job), "c");
    answer(job, "c", "{\"label\": \"a\", \"confidence\": 0.9}");
    assert_string_equal(take_ready(job), "s,t");

    answer(job, "t", "{\"label\": \"c\", \"confidence\": 0.30000000000000004}");
    assert_string_equal(take_ready(job), "u");
    answer(job, "u", "{\"label\": \"b\", \"confidence\": 1}");
    assert_string_equal(take_ready(job), "");
    answer(job, "s", "{\"text\": \"A-7\", \"found\": true}");
    assert_string_equal(take_ready(job), "g");
    assert_string_equal(task_value("g", "text"), "A-7");
    assert_string_equal(task_value("g", "hint"),
                        "true|c|0.30000000000000004|2.5|[\"x\",1]|true");
    answer(job, "g", "{\"text\": \"sent\"}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"a\","
                     "\"span\":\"A-7\",\"found\":true,"
                     "\"tconf\":0.30000000000000004,\"u\":\"b\","
                     "\"reply\":\"sent\",\"n\":2.5,\"tags\":[\"x\",1],"
                     "\"n_text\":\"n=2.5\"}}");
    plan_job_free(job);
}

static void when_skip_fields_by_kind(void **state)
{
    (void)state;
    plan_job *job = start("skip_kinds", "{\"text\": \"t\"}");
    assert_string_equal(take_ready(job), "c");
    answer(job, "c", "{\"label\": \"b\", \"confidence\": 0.9}");
    assert_string_equal(take_ready(job), "");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"order\":\"\","
                     "\"qty\":0,\"price\":0,\"rush\":false,\"text\":\"\","
                     "\"items\":[],\"n\":0,\"vote\":\"\",\"vconf\":0,"
                     "\"agree\":0,\"cascade\":\"\",\"skill\":\"\","
                     "\"xconf\":0,\"r\":\"\"}}");
    plan_job_free(job);
}

static void when_needs_every_entry(void **state)
{
    (void)state;
    plan_job *job = start("skip_kinds", "{\"text\": \"t\"}");
    take_ready(job);
    answer(job, "c", "{\"label\": \"a\", \"confidence\": 0.9}");
    assert_string_equal(take_ready(job), "f,m[0],v#0,v#1,v#2,x~0");
    answer(job, "f", "{\"text\": \"{}\", \"order\": \"A-1\", \"qty\": 1, "
                     "\"price\": 2.5, \"rush\": false}");
    answer(job, "m[0]", "{\"label\": \"c\", \"confidence\": 0.5}");
    for (int i = 0; i < 3; i++) {
        char key[8];
        snprintf(key, sizeof key, "v#%d", i);
        answer(job, key, "{\"label\": \"b\", \"confidence\": 0.5, "
                         "\"probs\": [0.25, 0.5, 0.25]}");
    }
    /* v chose b but x chose a: r does not run. */
    answer(job, "x~0", "{\"label\": \"a\", \"confidence\": 0.75}");
    assert_string_equal(take_ready(job), "");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"order\":"
                     "\"A-1\",\"qty\":1,\"price\":2.5,\"rush\":false,"
                     "\"text\":\"{}\",\"items\":[{\"label\":\"c\","
                     "\"confidence\":0.5}],\"n\":1,\"vote\":\"b\","
                     "\"vconf\":0.5,\"agree\":1,\"cascade\":\"a\","
                     "\"skill\":\"cls\",\"xconf\":0.75,\"r\":\"\"}}");
    plan_job_free(job);
}

/* ---- vote ---- */

static void vote_majority_agreement(void **state)
{
    (void)state;
    plan_job *job = start("vote", "{\"text\": \"t\"}");
    assert_string_equal(take_ready(job), "v#0,v#1,v#2");
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(ready[i].skill, skill_index("cls"));
    assert_true(ready[0].seed != ready[1].seed);
    assert_true(ready[1].seed != ready[2].seed);

    answer(job, "v#0", "{\"label\": \"a\", \"confidence\": 0.6, "
                       "\"probs\": [0.6, 0.3, 0.1]}");
    answer(job, "v#1", "{\"label\": \"b\", \"confidence\": 0.7, "
                       "\"probs\": [0.2, 0.7, 0.1]}");
    assert_false(plan_job_done(job));
    answer(job, "v#2", "{\"label\": \"a\", \"confidence\": 0.5, "
                       "\"probs\": [0.5, 0.4, 0.1]}");
    /* Confidence: the mean of a's probability over the three voters. */
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"a\","
                     "\"conf\":0.43333333333333335,"
                     "\"agree\":0.6666666666666666}}");
    plan_job_free(job);
}

static void vote_tie_higher_confidence(void **state)
{
    (void)state;
    plan_job *job = start("vote4", "{\"text\": \"t\"}");
    assert_string_equal(take_ready(job), "v#0,v#1,v#2,v#3");
    /* Two votes each; b's confidences sum to more (1.25 to 1.1). */
    answer(job, "v#0", "{\"label\": \"a\", \"confidence\": 0.6, "
                       "\"probs\": [0.6, 0.3, 0.1]}");
    answer(job, "v#1", "{\"label\": \"b\", \"confidence\": 0.7, "
                       "\"probs\": [0.2, 0.7, 0.1]}");
    answer(job, "v#2", "{\"label\": \"b\", \"confidence\": 0.55, "
                       "\"probs\": [0.3, 0.55, 0.15]}");
    answer(job, "v#3", "{\"label\": \"a\", \"confidence\": 0.5, "
                       "\"probs\": [0.5, 0.3, 0.2]}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"b\","
                     "\"conf\":0.4625,\"agree\":0.5}}");
    plan_job_free(job);
}

static void vote_tie_earlier_voter(void **state)
{
    (void)state;
    plan_job *job = start("vote", "{\"text\": \"t\"}");
    assert_string_equal(take_ready(job), "v#0,v#1,v#2");
    /* One vote each; b and c tie on confidence, b voted first. */
    answer(job, "v#2", "{\"label\": \"c\", \"confidence\": 0.7, "
                       "\"probs\": [0.1, 0.2, 0.7]}");
    answer(job, "v#0", "{\"label\": \"a\", \"confidence\": 0.5, "
                       "\"probs\": [0.5, 0.3, 0.2]}");
    answer(job, "v#1", "{\"label\": \"b\", \"confidence\": 0.7, "
                       "\"probs\": [0.1, 0.7, 0.2]}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"b\","
                     "\"conf\":0.39999999999999997,"
                     "\"agree\":0.3333333333333333}}");
    plan_job_free(job);
}

static void vote_by_confidence(void **state)
{
    (void)state;
    plan_job *job = start("vote_conf", "{\"text\": \"t\"}");
    assert_string_equal(take_ready(job), "v#0,v#1,v#2");
    /* a has two votes, but b's probabilities sum higher (1.74 to 1). */
    answer(job, "v#0", "{\"label\": \"a\", \"confidence\": 0.5, "
                       "\"probs\": [0.5, 0.4, 0.1]}");
    answer(job, "v#1", "{\"label\": \"a\", \"confidence\": 0.45, "
                       "\"probs\": [0.45, 0.44, 0.11]}");
    answer(job, "v#2", "{\"label\": \"b\", \"confidence\": 0.9, "
                       "\"probs\": [0.05, 0.9, 0.05]}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"b\","
                     "\"conf\":0.5800000000000001,"
                     "\"agree\":0.3333333333333333}}");
    plan_job_free(job);
}

static void vote_over_skills(void **state)
{
    (void)state;
    plan_job *job = start("vote_skills", "{\"text\": \"t\"}");
    assert_string_equal(take_ready(job), "v#0,v#1,v#2");
    assert_int_equal(ready_task("v#0")->skill, skill_index("cls"));
    assert_int_equal(ready_task("v#1")->skill, skill_index("cls2"));
    assert_int_equal(ready_task("v#2")->skill, skill_index("big"));
    answer(job, "v#0", "{\"label\": \"c\", \"confidence\": 0.4, "
                       "\"probs\": [0.3, 0.3, 0.4]}");
    answer(job, "v#1", "{\"label\": \"c\", \"confidence\": 0.8, "
                       "\"probs\": [0.1, 0.1, 0.8]}");
    answer(job, "v#2", "{\"label\": \"c\", \"confidence\": 0.6, "
                       "\"probs\": [0.2, 0.2, 0.6]}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"c\","
                     "\"agree\":1}}");
    plan_job_free(job);
}

static void vote_span_majority(void **state)
{
    (void)state;
    plan_job *job = start("vote_span", "{\"text\": \"t\"}");
    assert_string_equal(take_ready(job), "v#0,v#1,v#2");
    answer(job, "v#0", "{\"text\": \"none\", \"found\": false}");
    answer(job, "v#1", "{\"text\": \"A-1\", \"found\": true}");
    answer(job, "v#2", "{\"text\": \"A-1\", \"found\": true}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"text\":\"A-1\","
                     "\"found\":true,\"agree\":0.6666666666666666}}");
    plan_job_free(job);
}

static void vote_needs_probs(void **state)
{
    (void)state;
    plan_job *job = start("vote", "{\"text\": \"t\"}");
    take_ready(job);
    answer(job, "v#1", "{\"label\": \"a\", \"confidence\": 0.6}");
    EXPECT_ERROR(job, "v#1", "probs");
    plan_job_free(job);
}

/* ---- cascade ---- */

static void cascade_escalates(void **state)
{
    (void)state;
    plan_job *job = start("cascade", "{\"text\": \"t\"}");
    assert_string_equal(take_ready(job), "x~0");
    assert_int_equal(ready[0].skill, skill_index("cls"));
    answer(job, "x~0", "{\"label\": \"a\", \"confidence\": 0.5}");
    assert_false(plan_job_done(job));

    assert_string_equal(take_ready(job), "x~1");
    assert_int_equal(ready[0].skill, skill_index("cls2"));
    assert_string_equal(task_value("x~1", "text"), "t");
    answer(job, "x~1", "{\"label\": \"b\", \"confidence\": 0.85}");
    assert_string_equal(take_ready(job), "");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"b\","
                     "\"skill\":\"cls2\",\"conf\":0.85}}");
    plan_job_free(job);
}

static void cascade_stops_above(void **state)
{
    (void)state;
    plan_job *job = start("cascade", "{\"text\": \"t\"}");
    assert_string_equal(take_ready(job), "x~0");
    answer(job, "x~0", "{\"label\": \"c\", \"confidence\": 0.8}");
    assert_string_equal(take_ready(job), "");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"c\","
                     "\"skill\":\"cls\",\"conf\":0.8}}");
    plan_job_free(job);
}

static void cascade_extreme_confidence(void **state)
{
    (void)state;
    plan_job *job = start("cascade", "{\"text\": \"t\"}");
    take_ready(job);
    answer(job, "x~0", "{\"label\": \"a\", \"confidence\": -1e300}");
    assert_string_equal(take_ready(job), "x~1");
    answer(job, "x~1", "{\"label\": \"c\", \"confidence\": 1e300}");
    assert_string_equal(take_ready(job), "");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"c\","
                     "\"skill\":\"cls2\",\"conf\":1e+300}}");
    plan_job_free(job);
}

static void cascade_last_level_answers(void **state)
{
    (void)state;
    plan_job *job = start("cascade", "{\"text\": \"t\"}");
    take_ready(job);
    answer(job, "x~0", "{\"label\": \"a\", \"confidence\": 0.1}");
    assert_string_equal(take_ready(job), "x~1");
    answer(job, "x~1", "{\"label\": \"a\", \"confidence\": 0.2}");
    assert_string_equal(take_ready(job), "x~2");
    assert_int_equal(ready[0].skill, skill_index("big"));
    answer(job, "x~2", "{\"label\": \"b\", \"confidence\": 0.3}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"b\","
                     "\"skill\":\"big\",\"conf\":0.3}}");
    plan_job_free(job);
}

/* ---- map and reduce ---- */

static void map_sentences_collect(void **state)
{
    (void)state;
    plan_job *job = start("map_collect", "{\"text\": \"It broke. Where is "
                          "it?  Help!\\n\\nThanks 3.5 times\"}");
    assert_string_equal(take_ready(job), "m[0],m[1],m[2],m[3]");
    assert_string_equal(task_value("m[0]", "text"), "It broke.");
    assert_string_equal(task_value("m[1]", "text"), "Where is it?");
    assert_string_equal(task_value("m[2]", "text"), "Help!");
    assert_string_equal(task_value("m[3]", "text"), "Thanks 3.5 times");

    answer(job, "m[2]", "{\"label\": \"c\", \"confidence\": 0.25}");
    answer(job, "m[0]", "{\"label\": \"a\", \"confidence\": 0.9, "
                        "\"probs\": [0.9, 0.05, 0.05]}");
    answer(job, "m[3]", "{\"label\": \"b\", \"confidence\": 1}");
    assert_false(plan_job_done(job));
    answer(job, "m[1]", "{\"label\": \"b\", \"confidence\": 0.5}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"items\":["
                     "{\"label\":\"a\",\"confidence\":0.9},"
                     "{\"label\":\"b\",\"confidence\":0.5},"
                     "{\"label\":\"c\",\"confidence\":0.25},"
                     "{\"label\":\"b\",\"confidence\":1}],\"n\":4}}");
    plan_job_free(job);
}

static void map_lines_concat(void **state)
{
    (void)state;
    plan_job *job = start("map_concat",
                          "{\"text\": \"first\\n\\n  second  \\nthird\\n\"}");
    assert_string_equal(take_ready(job), "m[0],m[1],m[2]");
    assert_string_equal(task_value("m[1]", "text"), "second");
    assert_string_equal(task_value("m[1]", "hint"), "#second");
    answer(job, "m[0]", "{\"text\": \"1\"}");
    answer(job, "m[1]", "{\"text\": \"\"}");
    answer(job, "m[2]", "{\"text\": \"3\"}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":"
                     "{\"text\":\"1\\n\\n3\",\"n\":3}}");
    plan_job_free(job);
}

static void map_list_count(void **state)
{
    (void)state;
    plan_job *job = start("map_count",
                          "{\"tags\": [\"A-1\", \"  \", \" B-2 \", 7, 0.1]}");
    /* The blank string is dropped; other values give their JSON text. */
    assert_string_equal(take_ready(job), "m[0],m[1],m[2],m[3]");
    assert_string_equal(task_value("m[0]", "text"), "A-1");
    assert_string_equal(task_value("m[1]", "text"), "B-2");
    assert_string_equal(task_value("m[2]", "text"), "7");
    assert_string_equal(task_value("m[3]", "text"), "0.1");
    answer(job, "m[0]", "{\"text\": \"A-1\", \"found\": true}");
    answer(job, "m[1]", "{\"text\": \"none\", \"found\": false}");
    answer(job, "m[2]", "{\"text\": \"7\", \"found\": true}");
    answer(job, "m[3]", "{\"text\": \"none\", \"found\": false}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":"
                     "{\"count\":2,\"n\":4}}");
    plan_job_free(job);
}

static void map_list_not_array(void **state)
{
    (void)state;
    plan_job *job = start("map_count", "{\"tags\": \"A-1, B-2\"}");
    EXPECT_ERROR(job, "step \\\"m\\\"", "JSON array", "A-1, B-2");
    assert_string_equal(take_ready(job), "");
    plan_job_free(job);
}

static void map_sentences_vote(void **state)
{
    (void)state;
    plan_job *job = start("map_vote", "{\"text\": \"One. Two. Three.\"}");
    assert_string_equal(take_ready(job), "m[0],m[1],m[2]");
    answer(job, "m[0]", "{\"label\": \"b\", \"confidence\": 0.9}");
    answer(job, "m[1]", "{\"label\": \"c\", \"confidence\": 0.9}");
    answer(job, "m[2]", "{\"label\": \"c\", \"confidence\": 0.9}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"c\","
                     "\"agree\":0.6666666666666666,\"n\":3}}");
    plan_job_free(job);
}

static void map_vote_tie_first_seen(void **state)
{
    (void)state;
    plan_job *job = start("map_vote", "{\"text\": \"One. Two.\"}");
    assert_string_equal(take_ready(job), "m[0],m[1]");
    answer(job, "m[1]", "{\"label\": \"a\", \"confidence\": 0.9}");
    answer(job, "m[0]", "{\"label\": \"c\", \"confidence\": 0.9}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"c\","
                     "\"agree\":0.5,\"n\":2}}");
    plan_job_free(job);
}

static void map_empty_input(void **state)
{
    (void)state;
    static const struct {
        const char *pipeline, *fields, *line;
    } cases[] = {
        {"map_collect", "{\"text\": \"  \\n \"}",
         "{\"id\":\"j1\",\"ok\":true,\"result\":{\"items\":[],\"n\":0}}"},
        {"map_concat", "{\"text\": \"\\n\\n\"}",
         "{\"id\":\"j1\",\"ok\":true,\"result\":{\"text\":\"\",\"n\":0}}"},
        {"map_count", "{\"tags\": []}",
         "{\"id\":\"j1\",\"ok\":true,\"result\":{\"count\":0,\"n\":0}}"},
        {"map_vote", "{\"text\": \"\"}",
         "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"\","
         "\"agree\":0,\"n\":0}}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        plan_job *job = start(cases[i].pipeline, cases[i].fields);
        assert_string_equal(take_ready(job), "");
        expect_line(job, cases[i].line);
        plan_job_free(job);
    }
}

static void map_chunks_hook(void **state)
{
    (void)state;
    chunk_spy spy = {0};
    plan_hooks hooks = {chunk_bytes, &spy};
    plan_job *job = start_job("map_chunks", 0, "{\"text\": \"abcdefghij\"}",
                              &hooks);
    assert_int_equal(spy.calls, 1);
    assert_int_equal(spy.skill, skill_index("say"));
    assert_int_equal(spy.tokens, 4);
    assert_string_equal(take_ready(job), "m[0],m[1],m[2]");
    assert_string_equal(task_value("m[0]", "text"), "abcd");
    assert_string_equal(task_value("m[1]", "text"), "efgh");
    assert_string_equal(task_value("m[2]", "text"), "ij");
    answer(job, "m[0]", "{\"text\": \"x\"}");
    answer(job, "m[1]", "{\"text\": \"y\"}");
    answer(job, "m[2]", "{\"text\": \"z\"}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":"
                     "{\"text\":\"x\\ny\\nz\",\"n\":3}}");
    plan_job_free(job);
}

static void map_chunks_hook_fails(void **state)
{
    (void)state;
    chunk_spy spy = {.fail = true};
    plan_hooks hooks = {chunk_bytes, &spy};
    plan_job *job = start_job("map_chunks", 0, "{\"text\": \"abcdefghij\"}",
                              &hooks);
    EXPECT_ERROR(job, "step \\\"m\\\"", "chunks of 4 tokens failed");

    plan_job *bare = start("map_chunks", "{\"text\": \"abc\"}");
    EXPECT_ERROR(bare, "chunk hook");
    plan_job_free(bare);
    plan_job_free(job);
}

static void map_chunks_bad_offsets(void **state)
{
    (void)state;
    chunk_spy spy = {.short_ends = true};
    plan_hooks hooks = {chunk_bytes, &spy};
    plan_job *job = start_job("map_chunks", 0, "{\"text\": \"abcdefghij\"}",
                              &hooks);
    EXPECT_ERROR(job, "end offset 9 (entry 2 of 3)", "10 bytes");
    plan_job_free(job);
}

static void map_many_items(void **state)
{
    (void)state;
    /* 40 items: the task array and the key table grow on the way. */
    char fields[1024] = "{\"text\": \"";
    for (int i = 0; i < 40; i++)
        snprintf(fields + strlen(fields), sizeof fields - strlen(fields),
                 "s%d. ", i);
    strcat(fields, "\"}");
    plan_job *job = start("map_concat", fields);
    take_ready(job);
    assert_int_equal(n_ready, 1); /* lines: the text is one line */
    plan_job_free(job);

    job = start("map_vote", fields);
    take_ready(job);
    assert_int_equal(n_ready, 40);
    assert_string_equal(ready[39].key, "m[39]");
    assert_string_equal(task_value("m[39]", "text"), "s39.");
    for (int i = 39; i >= 0; i--) {
        char key[16];
        snprintf(key, sizeof key, "m[%d]", i);
        answer(job, key, i % 4 ? "{\"label\": \"b\", \"confidence\": 1}"
                               : "{\"label\": \"a\", \"confidence\": 1}");
        assert_int_equal(plan_job_pending(job), (size_t)i);
    }
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"b\","
                     "\"agree\":0.75,\"n\":40}}");
    plan_job_free(job);
}

static void map_too_many_items(void **state)
{
    (void)state;
    /* 4097 lines, one more than a map step takes. */
    size_t n = 4097;
    char *fields = malloc(n * 3 + 32);
    assert_non_null(fields);
    strcpy(fields, "{\"text\": \"");
    char *at = fields + strlen(fields);
    for (size_t i = 0; i < n; i++) {
        memcpy(at, "x\\n", 3);
        at += 3;
    }
    strcpy(at, "\"}");
    plan_job *job = start("map_concat", fields);
    EXPECT_ERROR(job, "more than 4096 items", "split: lines");
    assert_string_equal(take_ready(job), "");
    plan_job_free(job);
    free(fields);
}

static void map_cascade_many_levels(void **state)
{
    (void)state;
    /* 40 items that all escalate: level 1 tasks are created while
     * results come in, so the task array grows under a result call. */
    char fields[1024] = "{\"text\": \"";
    for (int i = 0; i < 40; i++)
        snprintf(fields + strlen(fields), sizeof fields - strlen(fields),
                 "line %d\\n", i);
    strcat(fields, "\"}");
    plan_job *job = start("map_cascade", fields);
    take_ready(job);
    assert_int_equal(n_ready, 40);
    for (int i = 39; i >= 0; i--) {
        char key[16];
        snprintf(key, sizeof key, "m[%d]~0", i);
        answer(job, key, "{\"label\": \"a\", \"confidence\": 0.1}");
    }
    take_ready(job);
    assert_int_equal(n_ready, 40);
    assert_string_equal(ready[0].key, "m[39]~1");
    assert_string_equal(task_value("m[0]~1", "text"), "line 0");
    for (int i = 0; i < 40; i++) {
        char key[16];
        snprintf(key, sizeof key, "m[%d]~1", i);
        answer(job, key, "{\"label\": \"c\", \"confidence\": 0.3}");
    }
    assert_true(plan_job_done(job));
    assert_false(plan_job_failed(job));
    char *line = NULL;
    assert_int_equal(plan_job_output(job, &line), ROJ_OK);
    assert_non_null(strstr(line, "\"skill\":\"big\"}}"));
    assert_null(strstr(line, "\"skill\":\"cls\""));
    free(line);
    plan_job_free(job);
}

static void map_cascade_keys(void **state)
{
    (void)state;
    plan_job *job = start("map_cascade", "{\"text\": \"one\\ntwo\"}");
    assert_string_equal(take_ready(job), "m[0]~0,m[1]~0");
    answer(job, "m[0]~0", "{\"label\": \"a\", \"confidence\": 0.2}");
    answer(job, "m[1]~0", "{\"label\": \"b\", \"confidence\": 0.7}");
    assert_string_equal(take_ready(job), "m[0]~1");
    assert_int_equal(ready[0].skill, skill_index("big"));
    assert_string_equal(task_value("m[0]~1", "text"), "one");
    answer(job, "m[0]~1", "{\"label\": \"c\", \"confidence\": 0.4}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"items\":["
                     "{\"label\":\"c\",\"confidence\":0.4,\"skill\":\"big\"},"
                     "{\"label\":\"b\",\"confidence\":0.7,\"skill\":\"cls\"}"
                     "],\"skill\":\"big\"}}");
    plan_job_free(job);
}

static void map_vote_keys(void **state)
{
    (void)state;
    plan_job *job = start("map_vote_k", "{\"text\": \"one\\ntwo\"}");
    assert_string_equal(take_ready(job), "m[0]#0,m[0]#1,m[1]#0,m[1]#1");
    assert_string_equal(task_value("m[1]#1", "text"), "two");
    answer(job, "m[0]#0", "{\"label\": \"a\", \"confidence\": 0.6, "
                          "\"probs\": [0.6, 0.3, 0.1]}");
    answer(job, "m[0]#1", "{\"label\": \"a\", \"confidence\": 0.6, "
                          "\"probs\": [0.6, 0.3, 0.1]}");
    answer(job, "m[1]#0", "{\"label\": \"b\", \"confidence\": 0.6, "
                          "\"probs\": [0.3, 0.6, 0.1]}");
    answer(job, "m[1]#1", "{\"label\": \"a\", \"confidence\": 0.5, "
                          "\"probs\": [0.5, 0.4, 0.1]}");
    /* Item 1 ties 1 to 1 and b has the higher confidence; the items then
     * tie a to b and a is seen first. */
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"label\":\"a\","
                     "\"agree\":0.5}}");
    plan_job_free(job);
}

/* ---- placeholders and output values ---- */

static void json_fields_in_placeholders(void **state)
{
    (void)state;
    plan_job *job = start("json", "{\"text\": \"two mugs\"}");
    assert_string_equal(take_ready(job), "f");
    answer(job, "f", "{\"text\": \"{\\\"order\\\": \\\"A-1\\\"}\", "
                     "\"order\": \"A-1\", \"qty\": 2, \"price\": 19.99, "
                     "\"rush\": true}");
    assert_string_equal(take_ready(job), "g");
    assert_string_equal(task_value("g", "text"), "A-1");
    assert_string_equal(task_value("g", "hint"), "2 x 19.99 true");
    answer(job, "g", "{\"text\": \"done\"}");
    expect_line(job, "{\"id\":\"j1\",\"ok\":true,\"result\":{\"order\":\"A-1\","
                     "\"qty\":2,\"price\":19.99,\"rush\":true,"
                     "\"line\":\"done\","
                     "\"raw\":\"{\\\"order\\\": \\\"A-1\\\"}\"}}");
    plan_job_free(job);
}

static void json_wrong_type_fails(void **state)
{
    (void)state;
    plan_job *job = start("json", "{\"text\": \"t\"}");
    take_ready(job);
    answer(job, "f", "{\"text\": \"{}\", \"order\": \"A-1\", \"qty\": 2.5, "
                     "\"price\": 1, \"rush\": false}");
    EXPECT_ERROR(job, "subtask \\\"f\\\"", "qty", "integer");
    plan_job_free(job);
}

static void numbers_shortest_text(void **state)
{
    (void)state;
    static const struct {
        const char *json, *text;
    } cases[] = {
        {"0.93", "0.93"},
        {"0.30000000000000004", "0.30000000000000004"},
        {"100", "100"},
        {"-3", "-3"},
        {"1e21", "1e+21"},
        {"0.00001", "1e-05"},
        {"123456789012", "123456789012"},
        {"\"as is\"", "as is"},
        {"[1.5, {\"k\": 0.1}]", "[1.5,{\"k\":0.1}]"},
        {"false", "false"},
        {"null", "null"},
    };
    /* Each value goes in as job field n and comes out in g's hint. */
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char fields[300];
        snprintf(fields, sizeof fields, "{\"text\": \"t\", \"n\": %s, "
                 "\"tags\": 0, \"flag\": 0}", cases[i].json);
        plan_job *route = start("route", fields);
        take_ready(route);
        answer(route, "c", "{\"label\": \"c\", \"confidence\": 0}");
        take_ready(route);
        char expected[200];
        snprintf(expected, sizeof expected, "false||0|%s|0|0",
                 cases[i].text);
        assert_string_equal(task_value("g", "hint"), expected);
        plan_job_free(route);
    }
}

/* ---- bad input and bad results ---- */

static void missing_job_field(void **state)
{
    (void)state;
    plan_job *job = start("plain", "{\"txt\": \"my order\"}");
    assert_string_equal(take_ready(job), "");
    expect_line(job, "{\"id\":\"j1\",\"ok\":false,\"error\":\"job field "
                     "\\\"text\\\" is missing; pipeline \\\"plain\\\" needs "
                     "it as input\"}");
    plan_job_free(job);

    job = start("plain", "[\"my order\"]");
    EXPECT_ERROR(job, "not a JSON object", "plain");
    plan_job_free(job);

    job = start("plain", NULL);
    EXPECT_ERROR(job, "no fields");
    plan_job_free(job);
}

static void result_missing_field(void **state)
{
    (void)state;
    plan_job *job = start("plain", "{\"text\": \"t\"}");
    take_ready(job);
    answer(job, "c", "{\"label\": \"b\"}");
    EXPECT_ERROR(job, "subtask \\\"c\\\"", "confidence", "cls");
    assert_int_equal(plan_job_pending(job), 0);
    plan_job_free(job);

    job = start("order", "{\"text\": \"t\"}");
    take_ready(job);
    answer(job, "a", "{\"label\": \"a\", \"confidence\": 0.5}");
    take_ready(job);
    answer(job, "b", "{\"text\": \"A-1\"}");
    EXPECT_ERROR(job, "subtask \\\"b\\\"", "lacks the field", "found");
    plan_job_free(job);
}

static void result_not_json(void **state)
{
    (void)state;
    plan_job *job = start("plain", "{\"text\": \"t\"}");
    take_ready(job);
    answer(job, "c", "label: b");
    EXPECT_ERROR(job, "subtask \\\"c\\\"", "not a JSON object");
    plan_job_free(job);

    job = start("plain", "{\"text\": \"t\"}");
    take_ready(job);
    answer(job, "c", "{\"label\": \"z\", \"confidence\": 0.5}");
    EXPECT_ERROR(job, "subtask \\\"c\\\"", "\\\"z\\\"", "not one of");
    plan_job_free(job);
}

static void duplicate_result_ignored(void **state)
{
    (void)state;
    plan_job *job = start("order", "{\"text\": \"t\"}");
    /* Created but not handed out yet: ignored. */
    answer(job, "a", "{\"label\": \"b\", \"confidence\": 0.5}");
    answer(job, "nope", "{\"label\": \"b\", \"confidence\": 0.5}");
    assert_string_equal(take_ready(job), "a,c");
    answer(job, "a", "{\"label\": \"a\", \"confidence\": 0.5}");
    answer(job, "a", "{\"label\": \"c\", \"confidence\": 0.5}");
    answer(job, "a", "garbage");
    assert_false(plan_job_failed(job));
    assert_int_equal(plan_job_pending(job), 1);
    assert_string_equal(take_ready(job), "b");
    answer(job, "b", "{\"text\": \"B\", \"found\": true}");
    answer(job, "c", "{\"label\": \"b\", \"confidence\": 0.5}");
    take_ready(job);
    answer(job, "d", "{\"text\": \"reply\"}");
    const char *line = "{\"id\":\"j1\",\"ok\":true,\"result\":{\"a\":\"a\","
                       "\"d\":\"reply\"}}";
    expect_line(job, line);

    /* Late results of a done job change nothing. */
    answer(job, "d", "{\"text\": \"other\"}");
    answer(job, "c", "not json");
    plan_job_abort(job, "deadline");
    plan_job_fail(job, "d", "timed out");
    assert_false(plan_job_failed(job));
    expect_line(job, line);
    plan_job_free(job);
}

static void fail_subtask(void **state)
{
    (void)state;
    plan_job *job = start("vote", "{\"text\": \"t\"}");
    assert_string_equal(take_ready(job), "v#0,v#1,v#2");
    answer(job, "v#0", "{\"label\": \"a\", \"confidence\": 0.6, "
                       "\"probs\": [0.6, 0.3, 0.1]}");
    /* A key that is not out does not fail the job. */
    plan_job_fail(job, "v#0", "late");
    plan_job_fail(job, "zz", "unknown");
    assert_false(plan_job_done(job));

    plan_job_fail(job, "v#1", "subtask v#1 timed out after 5s");
    assert_int_equal(plan_job_pending(job), 1);
    expect_line(job, "{\"id\":\"j1\",\"ok\":false,\"error\":\"subtask "
                     "v#1 timed out after 5s\"}");
    assert_string_equal(take_ready(job), "");

    /* The voter still out sends its result late: only the count changes. */
    answer(job, "v#2", "{\"label\": \"a\", \"confidence\": 0.6, "
                       "\"probs\": [0.6, 0.3, 0.1]}");
    assert_int_equal(plan_job_pending(job), 0);
    EXPECT_ERROR(job, "v#1", "timed out after 5s");
    plan_job_free(job);
}

static void fail_subtask_default_message(void **state)
{
    (void)state;
    plan_job *job = start("plain", "{\"text\": \"t\"}");
    take_ready(job);
    plan_job_fail(job, "c", NULL);
    expect_line(job, "{\"id\":\"j1\",\"ok\":false,\"error\":\"subtask "
                     "\\\"c\\\" failed\"}");
    plan_job_free(job);
}

static void abort_job(void **state)
{
    (void)state;
    plan_job *job = start("order", "{\"text\": \"t\"}");
    assert_string_equal(take_ready(job), "a,c");
    plan_job_abort(job, "deadline of 60s passed");
    expect_line(job, "{\"id\":\"j1\",\"ok\":false,"
                     "\"error\":\"deadline of 60s passed\"}");
    answer(job, "a", "{\"label\": \"a\", \"confidence\": 0.5}");
    assert_string_equal(take_ready(job), "");
    assert_int_equal(plan_job_pending(job), 1);
    plan_job_abort(job, "cancelled");
    EXPECT_ERROR(job, "deadline of 60s passed");
    plan_job_free(job);
}

/* ---- out of memory ---- */

/* cJSON allocations left before the next one fails; -1: no limit. */
static long json_budget = -1;

static void *budget_malloc(size_t size)
{
    if (json_budget == 0)
        return NULL;
    if (json_budget > 0)
        json_budget--;
    return malloc(size);
}

/* A valid result for one task of skill, so that every step finishes. */
static const char *canned_result(size_t skill)
{
    const char *name = swarm->skills[skill].name;
    if (!strcmp(name, "find"))
        return "{\"text\": \"A-1\", \"found\": true}";
    if (!strcmp(name, "say"))
        return "{\"text\": \"ok\"}";
    if (!strcmp(name, "form"))
        return "{\"text\": \"{}\", \"order\": \"A-1\", \"qty\": 1, "
               "\"price\": 2.5, \"rush\": true}";
    return "{\"label\": \"a\", \"confidence\": 0.9, "
           "\"probs\": [0.9, 0.05, 0.05]}";
}

/* Runs a job of pipeline to its end with canned results while cJSON
 * allocations fail after budget of them. Returns true when the job
 * succeeded; every call must either succeed or report ROJ_ERR_NOMEM. */
static bool drive_with_budget(const swarm_pipeline *pipeline, long budget)
{
    static const char fields[] = "{\"text\": \"One. Two.\\nThree\", "
                                 "\"n\": 1.5, \"tags\": [\"A\", \"B\"], "
                                 "\"flag\": true}";
    chunk_spy spy = {0};
    plan_hooks hooks = {chunk_bytes, &spy};
    plan_job *job = (plan_job *)&job;
    json_budget = budget;
    roj_status st = plan_job_new(swarm, (size_t)(pipeline - swarm->pipelines),
                                 0, "j1", fields, &hooks, &job);
    if (st) {
        json_budget = -1;
        assert_int_equal(st, ROJ_ERR_NOMEM);
        assert_null(job);
        return false;
    }
    plan_task tasks[64];
    size_t n;
    while ((n = plan_job_ready(job, tasks, 64)) > 0) {
        for (size_t i = 0; i < n; i++) {
            st = plan_job_result(job, tasks[i].key,
                                 canned_result(tasks[i].skill));
            if (st) {
                assert_int_equal(st, ROJ_ERR_NOMEM);
                assert_true(plan_job_failed(job));
            }
        }
    }
    assert_true(plan_job_done(job));
    char *line = NULL;
    st = plan_job_output(job, &line);
    json_budget = -1;
    bool ok = !plan_job_failed(job);
    if (st) {
        assert_int_equal(st, ROJ_ERR_NOMEM);
        assert_null(line);
    } else if (ok) {
        assert_non_null(strstr(line, "\"ok\":true"));
    } else {
        assert_non_null(strstr(line, "\"ok\":false"));
    }
    free(line);
    plan_job_free(job);
    return ok && !st;
}

static void nomem_fails_cleanly(void **state)
{
    (void)state;
    cJSON_Hooks counting = {budget_malloc, free};
    cJSON_InitHooks(&counting);
    /* Fail the first cJSON allocation, then the second, and so on, until
     * a job has enough of them to finish. */
    for (size_t p = 0; p < swarm->n_pipelines; p++) {
        long budget = 0;
        while (!drive_with_budget(&swarm->pipelines[p], budget))
            budget++;
        assert_true(budget > 0);
    }
    cJSON_InitHooks(NULL);
}

/* ---- seeds ---- */

static void seed_stable_per_key(void **state)
{
    (void)state;
    uint64_t s = plan_seed(5, 3, "v#1");
    assert_true(s == plan_seed(5, 3, "v#1"));
    assert_true(s != plan_seed(5, 3, "v#2"));
    assert_true(s != plan_seed(5, 4, "v#1"));
    assert_true(s != plan_seed(6, 3, "v#1"));
    assert_true(plan_seed(0, 0, "a") != plan_seed(0, 0, "b"));

    /* Tasks carry the seed of their skill, job index and key, in every
     * plan of the same job. */
    for (int round = 0; round < 2; round++) {
        plan_job *job = start_job("vote", 3, "{\"text\": \"t\"}", NULL);
        take_ready(job);
        assert_true(ready_task("v#1")->seed == s);
        plan_job_free(job);
    }
    plan_job *job = start_job("order", 3, "{\"text\": \"t\"}", NULL);
    take_ready(job);
    /* Skill cls2 sets no seed: the sampling seed is 0. */
    assert_true(ready_task("c")->seed == plan_seed(0, 3, "c"));
    plan_job_free(job);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_step),
        cmocka_unit_test(after_orders_ready),
        cmocka_unit_test(output_before_done_rejected),
        cmocka_unit_test(ready_in_batches),
        cmocka_unit_test(job_new_rejects_pipeline),
        cmocka_unit_test(output_escapes_id),
        cmocka_unit_test(when_skips_and_dependents_run),
        cmocka_unit_test(when_routes_to_listed_label),
        cmocka_unit_test(when_skip_fields_by_kind),
        cmocka_unit_test(when_needs_every_entry),
        cmocka_unit_test(vote_majority_agreement),
        cmocka_unit_test(vote_tie_higher_confidence),
        cmocka_unit_test(vote_tie_earlier_voter),
        cmocka_unit_test(vote_by_confidence),
        cmocka_unit_test(vote_over_skills),
        cmocka_unit_test(vote_span_majority),
        cmocka_unit_test(vote_needs_probs),
        cmocka_unit_test(cascade_escalates),
        cmocka_unit_test(cascade_stops_above),
        cmocka_unit_test(cascade_extreme_confidence),
        cmocka_unit_test(cascade_last_level_answers),
        cmocka_unit_test(map_sentences_collect),
        cmocka_unit_test(map_lines_concat),
        cmocka_unit_test(map_list_count),
        cmocka_unit_test(map_list_not_array),
        cmocka_unit_test(map_sentences_vote),
        cmocka_unit_test(map_vote_tie_first_seen),
        cmocka_unit_test(map_empty_input),
        cmocka_unit_test(map_chunks_hook),
        cmocka_unit_test(map_chunks_hook_fails),
        cmocka_unit_test(map_chunks_bad_offsets),
        cmocka_unit_test(map_many_items),
        cmocka_unit_test(map_too_many_items),
        cmocka_unit_test(map_cascade_many_levels),
        cmocka_unit_test(map_cascade_keys),
        cmocka_unit_test(map_vote_keys),
        cmocka_unit_test(json_fields_in_placeholders),
        cmocka_unit_test(json_wrong_type_fails),
        cmocka_unit_test(numbers_shortest_text),
        cmocka_unit_test(missing_job_field),
        cmocka_unit_test(result_missing_field),
        cmocka_unit_test(result_not_json),
        cmocka_unit_test(duplicate_result_ignored),
        cmocka_unit_test(fail_subtask),
        cmocka_unit_test(fail_subtask_default_message),
        cmocka_unit_test(abort_job),
        cmocka_unit_test(nomem_fails_cleanly),
        cmocka_unit_test(seed_stable_per_key),
    };
    return test_run_group(tests, setup_swarm, teardown_swarm);
}
