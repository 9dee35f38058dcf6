/* `roj models push`, `roj models list` and the model fetch of
 * `roj agent` against a real nats-server on 127.0.0.1, with a seeded
 * random model of a few MiB (several chunks). Agents run in their own
 * folders, where the swarm file exists but the model file does not. */
#define _GNU_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/sha256.h"
#include "model/lora.h"
#include "model/synth.h"
#include "nats_server.h"
#include "run/nats_models.h"
#include "run/nats_proto.h"
#include "swarm/swarm.h"

/* The swarm file. The first %s is the model's {path, sha256} or plain
 * path, the second the adapter's. */
static const char SWARM_FORMAT[] =
    "version: 1\n"
    "name: mdist\n"
    "models:\n"
    "  m: %s\n"
    "skills:\n"
    "  topic:\n"
    "    model: m\n"
    "    prompt: \"Ticket: {text}\\nTopic:\"\n"
    "    output: {choice: [billing, shipping, login, other]}\n"
    "  tuned:\n"
    "    model: m\n"
    "    lora: %s\n"
    "    prompt: \"Ticket: {text}\\nTopic:\"\n"
    "    output: {choice: [billing, other]}\n"
    "pipelines:\n"
    "  triage:\n"
    "    input: [text]\n"
    "    steps:\n"
    "      - id: topic\n"
    "        skill: topic\n"
    "    output:\n"
    "      topic: \"{topic.label}\"\n";

static nts_server server;
static char dir[512], src_swarm[600], model_path[700];
static char model_sha[SHA256_HEX_SIZE], adapter_sha[SHA256_HEX_SIZE];
static uint64_t model_size;
static char *swarm_text; /* the swarm file with the model's sha256 */
static nproto_names names;
static natsx_conn *conn;
static natsx_kv *results, *agents, *meta;
static nmodels_bucket bucket;

static pid_t pids[8];
static int n_pids;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts roj with args (NULL-terminated), writing its stdout to out_path
 * and its stderr to err_path. */
static pid_t start_roj(const char *const *args, const char *out_path,
                       const char *err_path)
{
    pid_t pid = test_roj_start(args, out_path, err_path, 0);
    if (n_pids < 8)
        pids[n_pids++] = pid;
    return pid;
}

/* Waits up to timeout_ms for pid. Returns its exit status, or 128 plus
 * the signal that ended it. */
static int wait_exit(pid_t pid, int timeout_ms)
{
    int status = test_roj_wait(pid, timeout_ms);
    for (int i = 0; i < n_pids; i++)
        if (pids[i] == pid)
            pids[i] = 0;
    return status;
}

/* Runs roj to completion; *out and *err (may be NULL) receive its
 * output (the caller frees them). Returns the exit status. */
static int run_roj(const char *const *args, char **out, char **err)
{
    char out_path[700], err_path[700];
    snprintf(out_path, sizeof out_path, "%s/run.out", dir);
    snprintf(err_path, sizeof err_path, "%s/run.err", dir);
    int rc = wait_exit(start_roj(args, out_path, err_path), 60000);
    char *o = test_read_file(out_path, NULL);
    char *e = test_read_file(err_path, NULL);
    if (out)
        *out = o;
    else
        free(o);
    if (err)
        *err = e;
    else
        free(e);
    return rc;
}

static int push(char **out, char **err)
{
    const char *args[] = {"models", "push", src_swarm, "--nats", server.url,
                          NULL};
    return run_roj(args, out, err);
}

/* Creates dir/NAME/swarm.yaml with text and returns its path in buf. */
static void agent_folder(const char *name, const char *text, char *buf,
                         size_t size)
{
    char folder[600];
    snprintf(folder, sizeof folder, "%s/%s", dir, name);
    assert_int_equal(mkdir(folder, 0755), 0);
    snprintf(buf, size, "%s/swarm.yaml", folder);
    test_write_file(buf, text, strlen(text));
}

static pid_t start_agent(const char *name, const char *swarm_path)
{
    char log[700];
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    const char *args[] = {"agent", swarm_path, "--nats", server.url,
                          "--name", name, NULL};
    return start_roj(args, log, log);
}

static char *agent_log(const char *name)
{
    char log[700];
    snprintf(log, sizeof log, "%s/%s.log", dir, name);
    return test_read_file(log, NULL);
}

static char *kv_wait(natsx_kv *kv, const char *key, int timeout_ms)
{
    for (int waited = 0;; waited += 50) {
        bool found = false;
        char *value = NULL;
        if (natsx_kv_get(kv, key, &found, &value, NULL, NULL) != ROJ_OK)
            fail_msg("read %s: %s", key, roj_last_error());
        if (found || waited >= timeout_ms)
            return value;
        sleep_ms(50);
    }
}

/* Counts the entries of folder whose name contains part. */
static int entries_with(const char *folder, const char *part)
{
    DIR *d = opendir(folder);
    if (!d)
        return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

static uint64_t chunk_count(void)
{
    return (model_size + NMODELS_CHUNK_SIZE - 1) / NMODELS_CHUNK_SIZE;
}

/* ---- tests ---- */

static void files_read_lists_refs(void **state)
{
    (void)state;
    char path[700];
    snprintf(path, sizeof path, "%s/refs/swarm.yaml", dir);
    char folder[600];
    snprintf(folder, sizeof folder, "%s/refs", dir);
    assert_int_equal(mkdir(folder, 0755), 0);
    const char *text =
        "version: 1\n"
        "name: refs\n"
        "models:\n"
        "  a: {path: m/a.gguf, sha256: "
        "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789}\n"
        "  b: /abs/b.gguf\n"
        "skills:\n"
        "  s1: {model: a, lora: ad.gguf}\n"
        "  s2: {model: b, lora: ad.gguf}\n"
        "pipelines: {}\n";
    test_write_file(path, text, strlen(text));
    swarm_file_list *list = NULL;
    assert_int_equal(swarm_files_read(path, &list), ROJ_OK);
    assert_string_equal(list->name, "refs");
    assert_int_equal(list->n_files, 3);
    char want[700];
    snprintf(want, sizeof want, "%s/m/a.gguf", folder);
    assert_string_equal(list->files[0].path, want);
    assert_string_equal(list->files[0].field, "models.a");
    assert_string_equal(list->files[0].sha256, "abcdef0123456789abcdef012345"
                        "6789abcdef0123456789abcdef0123456789");
    assert_string_equal(list->files[1].path, "/abs/b.gguf");
    assert_null(list->files[1].sha256);
    assert_string_equal(list->files[2].field, "skills.s1.lora");
    assert_int_equal(list->files[2].mark.line, 7);
    swarm_file_list_free(list);

    const char *bad = "version: 1\nmodels:\n  a: {path: a.gguf, sha256: "
                      "beef}\n";
    test_write_file(path, bad, strlen(bad));
    assert_int_equal(swarm_files_read(path, &list), ROJ_ERR_FORMAT);
    assert_null(list);
    assert_non_null(strstr(roj_last_error(), ":3:"));
    assert_non_null(strstr(roj_last_error(), "models.a.sha256"));
}

static void push_stores_chunks(void **state)
{
    (void)state;
    char *out = NULL, *err = NULL;
    int rc = push(&out, &err);
    if (rc != 0)
        fail_msg("roj models push exited %d: %s", rc, err);
    assert_non_null(strstr(out, model_sha));
    assert_non_null(strstr(out, "models.m"));
    assert_non_null(strstr(out, "pushed ("));
    assert_non_null(strstr(out, adapter_sha));
    assert_non_null(strstr(out, "skills.tuned.lora"));
    free(out);
    free(err);

    assert_true(chunk_count() >= 4);
    bool found = false;
    nmodels_manifest m;
    assert_int_equal(nmodels_manifest_get(&bucket, model_sha, &found, &m),
                     ROJ_OK);
    assert_true(found);
    assert_int_equal(m.size, model_size);
    assert_int_equal(m.chunks, chunk_count());
    assert_int_equal(m.chunk_size, NMODELS_CHUNK_SIZE);
    assert_string_equal(m.name, "base.gguf");
    char key[128];
    snprintf(key, sizeof key, "%s.%llu", model_sha,
             (unsigned long long)(chunk_count() - 1));
    size_t len = 0;
    char *last = NULL;
    assert_int_equal(natsx_kv_get(bucket.kv, key, &found, &last, &len,
                                  NULL), ROJ_OK);
    assert_true(found);
    assert_int_equal(len, model_size - (chunk_count() - 1) *
                              NMODELS_CHUNK_SIZE);
    free(last);
}

static void push_twice_skips(void **state)
{
    (void)state;
    char key[128];
    snprintf(key, sizeof key, "%s.0", model_sha);
    bool found = false;
    uint64_t before = 0, after = 0;
    assert_int_equal(natsx_kv_get(bucket.kv, key, &found, NULL, NULL,
                                  &before), ROJ_OK);
    assert_true(found);
    char *out = NULL;
    assert_int_equal(push(&out, NULL), 0);
    assert_non_null(strstr(out, "already stored"));
    assert_null(strstr(out, "pushed ("));
    free(out);
    assert_int_equal(natsx_kv_get(bucket.kv, key, &found, NULL, NULL,
                                  &after), ROJ_OK);
    assert_int_equal(after, before);
}

/* An interrupted push (manifest and chunk 1 missing) resumes: the
 * chunks still there are not written again, the missing one is. */
static void push_resumes(void **state)
{
    (void)state;
    char key0[128], key1[128];
    snprintf(key0, sizeof key0, "%s.0", model_sha);
    snprintf(key1, sizeof key1, "%s.1", model_sha);
    bool found = false;
    uint64_t rev0 = 0, rev0_after = 0;
    assert_int_equal(natsx_kv_get(bucket.kv, key0, &found, NULL, NULL,
                                  &rev0), ROJ_OK);
    assert_true(found);
    assert_int_equal(natsx_kv_delete(bucket.kv, model_sha), ROJ_OK);
    assert_int_equal(natsx_kv_delete(bucket.kv, key1), ROJ_OK);

    char *out = NULL;
    assert_int_equal(push(&out, NULL), 0);
    assert_non_null(strstr(out, "pushed ("));
    free(out);
    assert_int_equal(natsx_kv_get(bucket.kv, key0, &found, NULL, NULL,
                                  &rev0_after), ROJ_OK);
    assert_int_equal(rev0_after, rev0);
    size_t len = 0;
    assert_int_equal(natsx_kv_get(bucket.kv, key1, &found, NULL, &len,
                                  NULL), ROJ_OK);
    assert_true(found);
    assert_int_equal(len, NMODELS_CHUNK_SIZE);
    nmodels_manifest m;
    assert_int_equal(nmodels_manifest_get(&bucket, model_sha, &found, &m),
                     ROJ_OK);
    assert_true(found);
    assert_int_equal(m.size, model_size);
}

static void list_shows_manifest(void **state)
{
    (void)state;
    const char *args[] = {"models", "list", "--nats", server.url, "--swarm",
                          "mdist", NULL};
    char *out = NULL, *err = NULL;
    int rc = run_roj(args, &out, &err);
    if (rc != 0)
        fail_msg("roj models list exited %d: %s", rc, err);
    assert_non_null(strstr(out, "models of swarm mdist: 2"));
    assert_non_null(strstr(out, adapter_sha));
    assert_non_null(strstr(out, "tuned.lora.gguf"));
    assert_non_null(strstr(out, model_sha));
    assert_non_null(strstr(out, "base.gguf"));
    free(out);
    free(err);
}

static void agent_fetches_and_serves(void **state)
{
    (void)state;
    char swarm_path[700], fetched[800], models_dir[700];
    agent_folder("fetch", swarm_text, swarm_path, sizeof swarm_path);
    snprintf(models_dir, sizeof models_dir, "%s/fetch/models", dir);
    snprintf(fetched, sizeof fetched, "%s/base.gguf", models_dir);
    assert_int_equal(access(fetched, F_OK), -1);

    pid_t pid = start_agent("fetch", swarm_path);
    char *record = kv_wait(agents, "fetch", 60000);
    if (!record) {
        char *log = agent_log("fetch");
        fail_msg("agent did not register; its log:\n%s", log);
    }
    free(record);
    char sha[SHA256_HEX_SIZE];
    assert_int_equal(sha256_file(fetched, sha), ROJ_OK);
    assert_string_equal(sha, model_sha);
    char adapter[800];
    snprintf(adapter, sizeof adapter, "%s/tuned.lora.gguf", models_dir);
    assert_int_equal(sha256_file(adapter, sha), ROJ_OK);
    assert_string_equal(sha, adapter_sha);
    assert_int_equal(entries_with(models_dir, ".part-"), 0);

    /* One task of the topic skill, as the submitter publishes it. */
    const char *run = "00000000000000f1";
    const char *task = "{\"run\":\"00000000000000f1\",\"job\":1,"
                       "\"key\":\"t#0\",\"skill\":\"topic\",\"seed\":\"1\","
                       "\"in\":{\"text\":\"my invoice is wrong\"}}";
    char subject[NPROTO_NAME_MAX], rkey[NPROTO_NAME_MAX];
    nproto_task_subject(&names, "topic", subject, sizeof subject);
    assert_int_equal(natsx_publish(conn, subject, task, strlen(task),
                                   "f1.1.t0", 5000, NULL, NULL), ROJ_OK);
    assert_true(nproto_result_key(run, 1, "t#0", rkey, sizeof rkey));
    char *result = kv_wait(results, rkey, 30000);
    if (!result) {
        char *log = agent_log("fetch");
        fail_msg("no result for %s; agent log:\n%s", rkey, log);
    }
    assert_non_null(strstr(result, "{\"ok\":true,\"result\":{\"label\":"));
    assert_non_null(strstr(result, "\"agent\":\"fetch\""));
    free(result);

    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, 15000), 0);
    char *log = agent_log("fetch");
    assert_non_null(strstr(log, "fetched 2 missing files from"));
    free(log);
}

static void agent_rejects_bad_chunk(void **state)
{
    (void)state;
    /* Overwrite chunk 1 with bytes of the same length, changed. */
    char key[128];
    snprintf(key, sizeof key, "%s.1", model_sha);
    bool found = false;
    char *chunk = NULL;
    size_t len = 0;
    assert_int_equal(natsx_kv_get(bucket.kv, key, &found, &chunk, &len,
                                  NULL), ROJ_OK);
    assert_true(found);
    assert_int_equal(len, NMODELS_CHUNK_SIZE);
    char *bad = malloc(len);
    memcpy(bad, chunk, len);
    for (size_t i = 0; i < len; i += 4096)
        bad[i] = (char)~bad[i];
    assert_int_equal(natsx_kv_put(bucket.kv, key, bad, len, NULL), ROJ_OK);

    /* The digest that the damaged file has. */
    size_t size = 0;
    char *data = test_read_file(model_path, &size);
    memcpy(data + NMODELS_CHUNK_SIZE, bad, len);
    uint8_t raw[SHA256_DIGEST_SIZE];
    char damaged[SHA256_HEX_SIZE];
    sha256(data, size, raw);
    sha256_hex(raw, damaged);
    free(data);

    char swarm_path[700], models_dir[700];
    agent_folder("damaged", swarm_text, swarm_path, sizeof swarm_path);
    snprintf(models_dir, sizeof models_dir, "%s/damaged/models", dir);
    int rc = wait_exit(start_agent("damaged", swarm_path), 60000);
    assert_int_equal(natsx_kv_put(bucket.kv, key, chunk, len, NULL),
                     ROJ_OK);
    free(chunk);
    free(bad);

    char *log = agent_log("damaged");
    if (rc != 1)
        fail_msg("agent exited %d, expected 1; log:\n%s", rc, log);
    assert_non_null(strstr(log, "models.m: digest mismatch"));
    assert_non_null(strstr(log, model_sha));
    assert_non_null(strstr(log, damaged));
    free(log);
    assert_int_equal(entries_with(models_dir, "base.gguf"), 0);
    assert_null(kv_wait(agents, "damaged", 0));
}

static void agent_needs_sha256(void **state)
{
    (void)state;
    char text[2048], swarm_path[700];
    snprintf(text, sizeof text, SWARM_FORMAT, "models/base.gguf",
             "models/tuned.lora.gguf");
    agent_folder("nosha", text, swarm_path, sizeof swarm_path);
    int rc = wait_exit(start_agent("nosha", swarm_path), 30000);
    char *log = agent_log("nosha");
    if (rc != 1)
        fail_msg("agent exited %d, expected 1; log:\n%s", rc, log);
    assert_non_null(strstr(log, "models.m: file"));
    assert_non_null(strstr(log, "gives no sha256"));
    assert_non_null(strstr(log, "roj models push"));
    assert_non_null(strstr(log, "swarm.yaml:4:"));
    free(log);
}

static void agent_missing_bucket(void **state)
{
    (void)state;
    char *text = strdup(swarm_text);
    memcpy(strstr(text, "name: mdist"), "name: other", 11);
    char swarm_path[700];
    agent_folder("nobucket", text, swarm_path, sizeof swarm_path);
    free(text);
    int rc = wait_exit(start_agent("nobucket", swarm_path), 30000);
    char *log = agent_log("nobucket");
    if (rc != 1)
        fail_msg("agent exited %d, expected 1; log:\n%s", rc, log);
    assert_non_null(strstr(log, "bucket roj_other_models does not exist"));
    free(log);
}

/* ---- setup ---- */

static int kill_started(void **state)
{
    (void)state;
    for (int i = 0; i < n_pids; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
        }
    n_pids = 0;
    return 0;
}

/* Writes a rank-2 adapter of blk.0.attn_q.weight for the model at
 * model_path to path and hashes it into adapter_sha. */
static int adapter_write(const char *path)
{
    roj_model *base = NULL;
    if (roj_model_open(model_path, &base) != ROJ_OK) {
        fprintf(stderr, "setup: %s\n", roj_last_error());
        return -1;
    }
    enum { RANK = 2, DIM = 128 };
    static float a[RANK * DIM], b[DIM * RANK];
    uint64_t rng = 7;
    for (size_t i = 0; i < RANK * DIM; i++) {
        a[i] = test_rand_float(&rng, -0.05f, 0.05f);
        b[i] = test_rand_float(&rng, -0.05f, 0.05f);
    }
    lora_tensor t = {"blk.0.attn_q.weight", RANK, DIM, DIM, a, b};
    roj_status st = lora_write(path, base, 4.0f, &t, 1, NULL);
    roj_model_free(base);
    if (st == ROJ_OK)
        st = sha256_file(path, adapter_sha);
    if (st != ROJ_OK)
        fprintf(stderr, "setup: %s\n", roj_last_error());
    return st == ROJ_OK ? 0 : -1;
}

static int group_setup(void **state)
{
    (void)state;
    if (nts_start(&server, NTS_JETSTREAM, NULL, NULL) != 0)
        return -1;
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    char folder[600];
    snprintf(folder, sizeof folder, "%s/src", dir);
    mkdir(folder, 0755);
    snprintf(folder, sizeof folder, "%s/src/models", dir);
    mkdir(folder, 0755);
    snprintf(model_path, sizeof model_path, "%s/base.gguf", folder);
    /* F32 weights of a few MiB, so the file spans several chunks. */
    synth_shape s = {
        .name = "models", .n_layer = 4, .n_embd = 128, .n_head = 4,
        .n_head_kv = 2, .n_ff = 384, .n_ctx = 256, .n_vocab = 0,
        .rope_freq_base = 10000.0f, .rms_eps = 1e-5f,
        .tied_output = true, .seed = SYNTH_DEFAULT_SEED, .vocab_path = NULL,
    };
    struct stat sb;
    if (synth_write_model(model_path, &s) != ROJ_OK ||
        sha256_file(model_path, model_sha) != ROJ_OK ||
        stat(model_path, &sb) != 0) {
        fprintf(stderr, "setup: %s\n", roj_last_error());
        return -1;
    }
    model_size = (uint64_t)sb.st_size;
    char adapter[800];
    snprintf(adapter, sizeof adapter, "%s/tuned.lora.gguf", folder);
    if (adapter_write(adapter) != 0)
        return -1;

    char ref[200], adapter_ref[200];
    snprintf(ref, sizeof ref, "{path: models/base.gguf, sha256: %s}",
             model_sha);
    snprintf(adapter_ref, sizeof adapter_ref, "{path: "
             "models/tuned.lora.gguf, sha256: %s}", adapter_sha);
    size_t n = sizeof SWARM_FORMAT + strlen(ref) + strlen(adapter_ref);
    swarm_text = malloc(n);
    snprintf(swarm_text, n, SWARM_FORMAT, ref, adapter_ref);
    snprintf(src_swarm, sizeof src_swarm, "%s/src/swarm.yaml", dir);
    test_write_file(src_swarm, swarm_text, strlen(swarm_text));

    /* This process is the submitter: it sets up and owns the version. */
    swarm_file *swarm = NULL;
    char sha[SHA256_HEX_SIZE];
    natsx_options opt = {.urls = server.url, .no_env = true};
    roj_status st = swarm_load(src_swarm, &swarm, NULL);
    if (st == ROJ_OK)
        st = sha256_file(src_swarm, sha);
    if (st == ROJ_OK)
        st = nproto_names_init(swarm, &names);
    if (st == ROJ_OK)
        st = natsx_connect(&opt, &conn);
    if (st == ROJ_OK)
        st = nproto_setup(conn, swarm, &names, 1, &results, &agents, &meta);
    if (st == ROJ_OK)
        st = nproto_check_swarm(meta, src_swarm, sha, true);
    if (st == ROJ_OK)
        st = nmodels_open(conn, &names, 1, &bucket);
    swarm_free(swarm);
    if (st != ROJ_OK) {
        fprintf(stderr, "setup: %s\n", roj_last_error());
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    kill_started(state);
    nmodels_close(&bucket);
    natsx_kv_close(results);
    natsx_kv_close(agents);
    natsx_kv_close(meta);
    natsx_close(conn);
    free(swarm_text);
    nts_free(&server);
    return 0;
}

int main(void)
{
    nts_require();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(files_read_lists_refs),
        cmocka_unit_test_teardown(push_stores_chunks, kill_started),
        cmocka_unit_test_teardown(push_twice_skips, kill_started),
        cmocka_unit_test_teardown(push_resumes, kill_started),
        cmocka_unit_test_teardown(list_shows_manifest, kill_started),
        cmocka_unit_test_teardown(agent_fetches_and_serves, kill_started),
        cmocka_unit_test_teardown(agent_rejects_bad_chunk, kill_started),
        cmocka_unit_test_teardown(agent_needs_sha256, kill_started),
        cmocka_unit_test_teardown(agent_missing_bucket, kill_started),
    };
    int rc = test_run_group(tests, group_setup, group_teardown);
    natsx_library_close(2000);
    return rc;
}
