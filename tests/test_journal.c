/* The run journal: a new file and a resumed one, what survives a crash
 * (committed rows) and what does not (queued rows), first result wins,
 * meta mismatches and files that are not journals, WAL mode and counts. */
#include "testutil.h"

#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "run/journal.h"

#define SWARM_SHA \
    "1111111111111111111111111111111111111111111111111111111111111111"
#define INPUT_SHA \
    "2222222222222222222222222222222222222222222222222222222222222222"

static const journal_meta META = {SWARM_SHA, INPUT_SHA, "triage",
                                  "out.jsonl"};

/* Builds a fresh path in the test folder for each call. */
static const char *new_path(const char *name)
{
    static char path[4200];
    static int serial;
    snprintf(path, sizeof path, "%s/%d-%s", test_tmpdir(), serial++, name);
    return path;
}

/* What the walks saw, one line per row. */
typedef struct seen {
    char text[4096];
    size_t len;
    int rows;
    int stop_after; /* fn returns ROJ_ERR_ABORTED at this row; 0: never */
} seen;

static void seen_add(seen *s, const char *line)
{
    int n = snprintf(s->text + s->len, sizeof s->text - s->len, "%s\n",
                     line);
    assert_true(n > 0 && (size_t)n < sizeof s->text - s->len);
    s->len += (size_t)n;
}

static roj_status collect_result(void *ctx, uint64_t job, const char *key,
                                 const char *result_json)
{
    seen *s = ctx;
    char line[512];
    snprintf(line, sizeof line, "%llu %s %s", (unsigned long long)job, key,
             result_json);
    seen_add(s, line);
    s->rows++;
    return s->rows == s->stop_after ? ROJ_ERR_ABORTED : ROJ_OK;
}

static roj_status collect_job(void *ctx, uint64_t job, const char *id,
                              journal_job_status status, const char *line)
{
    seen *s = ctx;
    char text[512];
    snprintf(text, sizeof text, "%llu %s %d %s", (unsigned long long)job, id,
             (int)status, line);
    seen_add(s, text);
    s->rows++;
    return s->rows == s->stop_after ? ROJ_ERR_ABORTED : ROJ_OK;
}

static journal *open_new(const char *path)
{
    journal *j = NULL;
    bool resumed = true;
    roj_status st = journal_open(path, &META, &resumed, &j);
    if (st != ROJ_OK)
        fail_msg("journal_open %s: %s", path, roj_last_error());
    assert_false(resumed);
    return j;
}

static journal *open_resumed(const char *path)
{
    journal *j = NULL;
    bool resumed = false;
    roj_status st = journal_open(path, &META, &resumed, &j);
    if (st != ROJ_OK)
        fail_msg("journal_open %s: %s", path, roj_last_error());
    assert_true(resumed);
    return j;
}

/* Writes the rows of a small run: three jobs, five results, attempts. */
static void put_rows(journal *j)
{
    assert_int_equal(journal_put_result(j, 0, "intent", "classify",
                                        "{\"label\":\"billing\"}"), ROJ_OK);
    assert_int_equal(journal_put_result(j, 0, "urgency[1]", "rate",
                                        "{\"score\":3}"), ROJ_OK);
    assert_int_equal(journal_put_result(j, 2, "intent#1", "classify",
                                        "{\"label\":\"other\"}"), ROJ_OK);
    assert_int_equal(journal_put_result(j, 1, "intent", "classify",
                                        "{\"label\":\"refund\"}"), ROJ_OK);
    assert_int_equal(journal_put_result(j, 0, "slots", "extract", "{}"),
                     ROJ_OK);
    assert_int_equal(journal_put_attempt(j, 0, "intent", 1, 4242, 12.5,
                                         NULL), ROJ_OK);
    assert_int_equal(journal_put_attempt(j, 1, "intent", 0, 4241, 80.0,
                                         "agent 0 timed out"), ROJ_OK);
    assert_int_equal(journal_put_attempt(j, 1, "intent", 1, 4242, 9.0,
                                         NULL), ROJ_OK);
    assert_int_equal(journal_put_job(j, 0, "ticket-7", JOURNAL_JOB_OK,
                                     "{\"id\":\"ticket-7\"}"), ROJ_OK);
    assert_int_equal(journal_put_job(j, 1, "8", JOURNAL_JOB_FAILED,
                                     "{\"id\":8,\"error\":\"x\"}"), ROJ_OK);
    assert_int_equal(journal_set_emitted(j, 2, 57), ROJ_OK);
}

static void journal_new_file(void **state)
{
    (void)state;
    const char *path = new_path("new.journal");
    journal *j = open_new(path);

    uint64_t next_job = 9, out_bytes = 9;
    assert_int_equal(journal_emitted(j, &next_job, &out_bytes), ROJ_OK);
    assert_int_equal(next_job, 0);
    assert_int_equal(out_bytes, 0);

    uint64_t results = 9, attempts = 9, failed = 9;
    assert_int_equal(journal_counts(j, &results, &attempts, &failed),
                     ROJ_OK);
    assert_int_equal(results, 0);
    assert_int_equal(attempts, 0);
    assert_int_equal(failed, 0);

    seen s = {0};
    assert_int_equal(journal_each_result(j, 0, collect_result, &s), ROJ_OK);
    assert_int_equal(s.rows, 0);
    assert_int_equal(journal_each_job(j, 0, collect_job, &s), ROJ_OK);
    assert_int_equal(s.rows, 0);
    assert_int_equal(journal_close(j), ROJ_OK);
}

static void journal_reopen_reads_back(void **state)
{
    (void)state;
    const char *path = new_path("resume.journal");
    journal *j = open_new(path);
    put_rows(j);
    assert_int_equal(journal_commit(j), ROJ_OK);
    assert_int_equal(journal_close(j), ROJ_OK);

    j = open_resumed(path);
    seen s = {0};
    assert_int_equal(journal_each_result(j, 0, collect_result, &s), ROJ_OK);
    assert_int_equal(s.rows, 5);
    assert_string_equal(s.text,
                        "0 intent {\"label\":\"billing\"}\n"
                        "0 slots {}\n"
                        "0 urgency[1] {\"score\":3}\n"
                        "1 intent {\"label\":\"refund\"}\n"
                        "2 intent#1 {\"label\":\"other\"}\n");

    seen from1 = {0};
    assert_int_equal(journal_each_result(j, 1, collect_result, &from1),
                     ROJ_OK);
    assert_string_equal(from1.text,
                        "1 intent {\"label\":\"refund\"}\n"
                        "2 intent#1 {\"label\":\"other\"}\n");

    seen jobs = {0};
    assert_int_equal(journal_each_job(j, 0, collect_job, &jobs), ROJ_OK);
    assert_string_equal(jobs.text,
                        "0 ticket-7 1 {\"id\":\"ticket-7\"}\n"
                        "1 8 2 {\"id\":8,\"error\":\"x\"}\n");
    seen jobs1 = {0};
    assert_int_equal(journal_each_job(j, 1, collect_job, &jobs1), ROJ_OK);
    assert_string_equal(jobs1.text, "1 8 2 {\"id\":8,\"error\":\"x\"}\n");
    seen none = {0};
    assert_int_equal(journal_each_job(j, UINT64_MAX, collect_job, &none),
                     ROJ_OK);
    assert_int_equal(none.rows, 0);

    uint64_t next_job = 0, out_bytes = 0;
    assert_int_equal(journal_emitted(j, &next_job, &out_bytes), ROJ_OK);
    assert_int_equal(next_job, 2);
    assert_int_equal(out_bytes, 57);

    uint64_t results = 0, attempts = 0, failed = 0;
    assert_int_equal(journal_counts(j, &results, &attempts, &failed),
                     ROJ_OK);
    assert_int_equal(results, 5);
    assert_int_equal(attempts, 3);
    assert_int_equal(failed, 1);
    assert_int_equal(journal_close(j), ROJ_OK);
}

/* journal_close commits what is queued, like journal_commit. */
static void journal_close_commits(void **state)
{
    (void)state;
    const char *path = new_path("close.journal");
    journal *j = open_new(path);
    put_rows(j);
    assert_int_equal(journal_close(j), ROJ_OK);

    j = open_resumed(path);
    uint64_t results = 0, attempts = 0, failed = 0;
    assert_int_equal(journal_counts(j, &results, &attempts, &failed),
                     ROJ_OK);
    assert_int_equal(results, 5);
    assert_int_equal(attempts, 3);
    assert_int_equal(failed, 1);
    assert_int_equal(journal_close(j), ROJ_OK);
}

/* The walks, counts and position show committed rows only. */
static void journal_queued_invisible(void **state)
{
    (void)state;
    const char *path = new_path("queued.journal");
    journal *j = open_new(path);
    put_rows(j);

    seen s = {0};
    assert_int_equal(journal_each_result(j, 0, collect_result, &s), ROJ_OK);
    assert_int_equal(s.rows, 0);
    uint64_t next_job = 9, out_bytes = 9;
    assert_int_equal(journal_emitted(j, &next_job, &out_bytes), ROJ_OK);
    assert_int_equal(next_job, 0);
    assert_int_equal(out_bytes, 0);

    assert_int_equal(journal_commit(j), ROJ_OK);
    assert_int_equal(journal_each_result(j, 0, collect_result, &s), ROJ_OK);
    assert_int_equal(s.rows, 5);
    assert_int_equal(journal_emitted(j, &next_job, &out_bytes), ROJ_OK);
    assert_int_equal(next_job, 2);
    assert_int_equal(out_bytes, 57);
    assert_int_equal(journal_close(j), ROJ_OK);
}

/* In a child: opens path, commits job 0 and position (1, 10), queues
 * jobs 1 and 10 .. 4009 and position (2, 20), then writes a byte to
 * ready_fd. With hang, it waits to be killed, else it calls _exit(0)
 * with no commit or close. A failed step exits with its own status
 * (1 to 6), so the parent can tell which one broke. */
static void child_write_and_crash(const char *path, int ready_fd, bool hang)
{
    journal *j = NULL;
    bool resumed = false;
    if (journal_open(path, &META, &resumed, &j) != ROJ_OK)
        _exit(1);
    if (journal_put_result(j, 0, "intent", "classify", "{\"a\":0}") ||
        journal_put_job(j, 0, "first", JOURNAL_JOB_OK, "{}") ||
        journal_set_emitted(j, 1, 10))
        _exit(2);
    if (journal_commit(j) != ROJ_OK)
        _exit(3);
    if (journal_put_result(j, 1, "intent", "classify", "{\"a\":1}") ||
        journal_put_result(j, 0, "urgency", "rate", "{\"a\":2}") ||
        journal_put_attempt(j, 1, "intent", 0, 1, 1.0, "lost") ||
        journal_put_job(j, 1, "second", JOURNAL_JOB_OK, "{}") ||
        journal_set_emitted(j, 2, 20))
        _exit(4);
    /* Enough queued bytes (about 4 MB) that SQLite spills pages of the
     * open transaction into the WAL file before any commit. */
    char big[1025];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (uint64_t job = 10; job < 4010; job++)
        if (journal_put_result(j, job, "intent", "classify", big))
            _exit(6);
    char byte = 'r';
    if (write(ready_fd, &byte, 1) != 1)
        _exit(5);
    if (hang)
        for (;;)
            pause();
    _exit(0);
}

/* Checks a journal that child_write_and_crash left behind. */
static void expect_committed_part(const char *path)
{
    journal *j = open_resumed(path);
    seen results = {0};
    assert_int_equal(journal_each_result(j, 0, collect_result, &results),
                     ROJ_OK);
    assert_string_equal(results.text, "0 intent {\"a\":0}\n");
    seen jobs = {0};
    assert_int_equal(journal_each_job(j, 0, collect_job, &jobs), ROJ_OK);
    assert_string_equal(jobs.text, "0 first 1 {}\n");
    uint64_t next_job = 0, out_bytes = 0;
    assert_int_equal(journal_emitted(j, &next_job, &out_bytes), ROJ_OK);
    assert_int_equal(next_job, 1);
    assert_int_equal(out_bytes, 10);
    uint64_t n_results = 0, attempts = 0, failed = 0;
    assert_int_equal(journal_counts(j, &n_results, &attempts, &failed),
                     ROJ_OK);
    assert_int_equal(n_results, 1);
    assert_int_equal(attempts, 0);
    assert_int_equal(failed, 0);

    /* The lost rows can be written again and committed. */
    assert_int_equal(journal_put_result(j, 1, "intent", "classify",
                                        "{\"a\":3}"), ROJ_OK);
    assert_int_equal(journal_commit(j), ROJ_OK);
    seen again = {0};
    assert_int_equal(journal_each_result(j, 1, collect_result, &again),
                     ROJ_OK);
    assert_string_equal(again.text, "1 intent {\"a\":3}\n");
    assert_int_equal(journal_close(j), ROJ_OK);
}

static void run_crash_case(bool hang)
{
    const char *path = new_path(hang ? "kill9.journal" : "exit.journal");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_write_and_crash(path, fds[1], hang);
    }
    close(fds[1]);
    char byte = 0;
    ssize_t n = read(fds[0], &byte, 1);
    close(fds[0]);
    if (hang)
        assert_int_equal(kill(pid, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (n != 1)
        fail_msg("the child stopped before its writes, exit status %d",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    if (hang) {
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);
    } else {
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    /* The queued rows reached the WAL file uncommitted. */
    char wal[4300];
    snprintf(wal, sizeof wal, "%s-wal", path);
    struct stat wal_stat;
    assert_int_equal(stat(wal, &wal_stat), 0);
    assert_true(wal_stat.st_size > (1 << 20));
    expect_committed_part(path);
}

static void journal_crash_exit(void **state)
{
    (void)state;
    run_crash_case(false);
}

static void journal_crash_kill9(void **state)
{
    (void)state;
    run_crash_case(true);
}

static void journal_duplicate_keeps_first(void **state)
{
    (void)state;
    const char *path = new_path("dup.journal");
    journal *j = open_new(path);
    assert_int_equal(journal_put_result(j, 4, "intent", "classify",
                                        "{\"n\":1}"), ROJ_OK);
    assert_int_equal(journal_put_result(j, 4, "intent", "other-skill",
                                        "{\"n\":2}"), ROJ_OK);
    assert_int_equal(journal_put_job(j, 4, "a", JOURNAL_JOB_OK, "first"),
                     ROJ_OK);
    assert_int_equal(journal_put_job(j, 4, "b", JOURNAL_JOB_FAILED,
                                     "second"), ROJ_OK);
    assert_int_equal(journal_commit(j), ROJ_OK);
    /* A duplicate in a later transaction is ignored too. */
    assert_int_equal(journal_put_result(j, 4, "intent", "classify",
                                        "{\"n\":3}"), ROJ_OK);
    assert_int_equal(journal_close(j), ROJ_OK);

    j = open_resumed(path);
    assert_int_equal(journal_put_result(j, 4, "intent", "classify",
                                        "{\"n\":4}"), ROJ_OK);
    assert_int_equal(journal_commit(j), ROJ_OK);
    seen s = {0};
    assert_int_equal(journal_each_result(j, 0, collect_result, &s), ROJ_OK);
    assert_string_equal(s.text, "4 intent {\"n\":1}\n");
    seen jobs = {0};
    assert_int_equal(journal_each_job(j, 0, collect_job, &jobs), ROJ_OK);
    assert_string_equal(jobs.text, "4 a 1 first\n");
    uint64_t results = 0, attempts = 0, failed = 0;
    assert_int_equal(journal_counts(j, &results, &attempts, &failed),
                     ROJ_OK);
    assert_int_equal(results, 1);
    assert_int_equal(journal_close(j), ROJ_OK);
}

/* Opens path with meta and expects ROJ_ERR_INVALID_ARG with a message
 * that contains each of words. */
static void expect_mismatch(const char *path, const journal_meta *meta,
                            const char *const *words, size_t n_words)
{
    journal *j = (journal *)1;
    bool resumed = true;
    assert_int_equal(journal_open(path, meta, &resumed, &j),
                     ROJ_ERR_INVALID_ARG);
    assert_null(j);
    assert_false(resumed);
    const char *msg = roj_last_error();
    for (size_t i = 0; i < n_words; i++)
        if (!strstr(msg, words[i]))
            fail_msg("message lacks \"%s\": %s", words[i], msg);
}

static void journal_meta_mismatch(void **state)
{
    (void)state;
    const char *p = new_path("meta.journal");
    char path[4200];
    snprintf(path, sizeof path, "%s", p);
    journal_close(open_new(path));

    const char *other_sha =
        "3333333333333333333333333333333333333333333333333333333333333333";
    journal_meta m = META;
    m.swarm_sha256 = other_sha;
    const char *swarm_words[] = {"swarm file sha256", SWARM_SHA, other_sha,
                                 path, "delete"};
    expect_mismatch(path, &m, swarm_words, 5);

    m = META;
    m.input_sha256 = other_sha;
    const char *input_words[] = {"input sha256", INPUT_SHA, other_sha, path};
    expect_mismatch(path, &m, input_words, 4);

    m = META;
    m.pipeline = "summarize";
    const char *pipeline_words[] = {"pipeline", "'triage'", "'summarize'"};
    expect_mismatch(path, &m, pipeline_words, 3);

    m = META;
    m.output_path = "other.jsonl";
    const char *output_words[] = {"output file", "'out.jsonl'",
                                  "'other.jsonl'"};
    expect_mismatch(path, &m, output_words, 3);

    /* The first field that differs is named. */
    m.pipeline = "summarize";
    const char *first_words[] = {"pipeline", "'summarize'"};
    expect_mismatch(path, &m, first_words, 2);

    /* The rejected opens changed nothing: the journal still resumes. */
    journal_close(open_resumed(path));
}

/* Expects ROJ_ERR_FORMAT naming path, and the file left as it was. */
static void expect_not_journal(const char *path)
{
    size_t size_before = 0;
    char *before = test_read_file(path, &size_before);
    journal *j = (journal *)1;
    bool resumed = true;
    assert_int_equal(journal_open(path, &META, &resumed, &j),
                     ROJ_ERR_FORMAT);
    assert_null(j);
    const char *msg = roj_last_error();
    if (!strstr(msg, path))
        fail_msg("message lacks the path %s: %s", path, msg);
    size_t size_after = 0;
    char *after = test_read_file(path, &size_after);
    assert_int_equal(size_after, size_before);
    assert_memory_equal(after, before, size_before);
    free(before);
    free(after);
}

static void journal_random_bytes(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s", new_path("random.bin"));
    uint64_t rng = 7;
    unsigned char bytes[8192];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (unsigned char)test_rand_u64(&rng);
    test_write_file(path, bytes, sizeof bytes);
    expect_not_journal(path);

    /* Text shorter than a SQLite header. */
    snprintf(path, sizeof path, "%s", new_path("short.txt"));
    test_write_file(path, "hello\n", 6);
    expect_not_journal(path);
}

/* Runs sql on a new SQLite file at path. */
static void make_sqlite(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s: %s", sql, err);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void journal_other_database(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s", new_path("other.db"));
    make_sqlite(path, "CREATE TABLE notes (body TEXT);");
    expect_not_journal(path);

    /* Another program's application_id, no tables. */
    snprintf(path, sizeof path, "%s", new_path("app.db"));
    make_sqlite(path, "PRAGMA application_id = 1234;"
                      "CREATE TABLE t (x); DROP TABLE t;");
    expect_not_journal(path);

    /* The journal's own tables without its meta rows. */
    snprintf(path, sizeof path, "%s", new_path("nometa.db"));
    make_sqlite(path, "PRAGMA application_id = 1919904330;"
                      "CREATE TABLE meta (name TEXT PRIMARY KEY, value);");
    journal *j = NULL;
    bool resumed = true;
    assert_int_equal(journal_open(path, &META, &resumed, &j),
                     ROJ_ERR_FORMAT);
    assert_null(j);
    if (!strstr(roj_last_error(), path))
        fail_msg("message lacks the path: %s", roj_last_error());
}

/* A journal of a newer schema is rejected rather than misread. */
static void journal_newer_schema(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s", new_path("v2.journal"));
    journal_close(open_new(path));
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value = 2 "
                                  "WHERE name = 'schema_version'",
                                  NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);

    journal *j = NULL;
    bool resumed = true;
    assert_int_equal(journal_open(path, &META, &resumed, &j),
                     ROJ_ERR_UNSUPPORTED);
    assert_null(j);
    if (!strstr(roj_last_error(), "version 2"))
        fail_msg("message lacks the version: %s", roj_last_error());
}

/* Reads one text value with sql from path, through its own connection. */
static void query_text(const char *path, const char *sql, char *out,
                       size_t size)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    snprintf(out, size, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void journal_wal_mode(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s", new_path("wal.journal"));
    journal *j = open_new(path);
    char value[64];
    query_text(path, "PRAGMA journal_mode", value, sizeof value);
    assert_string_equal(value, "wal");
    query_text(path, "PRAGMA application_id", value, sizeof value);
    assert_string_equal(value, "1919904330");
    assert_int_equal(journal_close(j), ROJ_OK);

    /* WAL mode is stored in the file, so it stays after a close. */
    query_text(path, "PRAGMA journal_mode", value, sizeof value);
    assert_string_equal(value, "wal");
}

/* Strings are stored as bytes: text that is not UTF-8 comes back as is. */
static void journal_raw_bytes(void **state)
{
    (void)state;
    const char *path = new_path("bytes.journal");
    journal *j = open_new(path);
    const char *key = "k\xff\xfe";
    const char *result = "{\"t\":\"\xc3\x28 caf\xc3\xa9\"}";
    assert_int_equal(journal_put_result(j, 0, key, "s", result), ROJ_OK);
    assert_int_equal(journal_commit(j), ROJ_OK);
    seen s = {0};
    assert_int_equal(journal_each_result(j, 0, collect_result, &s), ROJ_OK);
    char want[256];
    snprintf(want, sizeof want, "0 %s %s\n", key, result);
    assert_string_equal(s.text, want);
    assert_int_equal(journal_close(j), ROJ_OK);
}

/* A callback's error stops the walk, and the next walk starts over. */
static void journal_walk_stops(void **state)
{
    (void)state;
    const char *path = new_path("stop.journal");
    journal *j = open_new(path);
    put_rows(j);
    assert_int_equal(journal_commit(j), ROJ_OK);

    seen s = {.stop_after = 2};
    assert_int_equal(journal_each_result(j, 0, collect_result, &s),
                     ROJ_ERR_ABORTED);
    assert_int_equal(s.rows, 2);
    seen jobs = {.stop_after = 1};
    assert_int_equal(journal_each_job(j, 0, collect_job, &jobs),
                     ROJ_ERR_ABORTED);
    assert_int_equal(jobs.rows, 1);

    seen all = {0};
    assert_int_equal(journal_each_result(j, 0, collect_result, &all),
                     ROJ_OK);
    assert_int_equal(all.rows, 5);
    assert_int_equal(journal_close(j), ROJ_OK);
}

static void journal_bad_arguments(void **state)
{
    (void)state;
    const char *path = new_path("args.journal");
    journal *j = open_new(path);
    assert_int_equal(journal_put_result(j, (uint64_t)INT64_MAX + 1, "k", "s",
                                        "{}"), ROJ_ERR_RANGE);
    assert_int_equal(journal_put_result(j, 0, NULL, "s", "{}"),
                     ROJ_ERR_INVALID_ARG);
    assert_int_equal(journal_put_attempt(j, 0, "k", 0, 1, NAN, NULL),
                     ROJ_ERR_INVALID_ARG);
    assert_int_equal(journal_put_job(j, 0, "id", (journal_job_status)3,
                                     "{}"), ROJ_ERR_INVALID_ARG);
    assert_int_equal(journal_set_emitted(j, 1, UINT64_MAX),
                     ROJ_ERR_RANGE);
    assert_int_equal(journal_put_result(NULL, 0, "k", "s", "{}"),
                     ROJ_ERR_INVALID_ARG);
    assert_int_equal(journal_commit(NULL), ROJ_ERR_INVALID_ARG);
    assert_int_equal(journal_close(NULL), ROJ_OK);

    /* The rejected calls wrote nothing and the journal still works. */
    assert_int_equal(journal_commit(j), ROJ_OK);
    uint64_t results = 9, attempts = 9, failed = 9;
    assert_int_equal(journal_counts(j, &results, &attempts, &failed),
                     ROJ_OK);
    assert_int_equal(results, 0);
    assert_int_equal(attempts, 0);
    assert_int_equal(journal_close(j), ROJ_OK);

    bool resumed = false;
    journal *out = (journal *)1;
    assert_int_equal(journal_open(NULL, &META, &resumed, &out),
                     ROJ_ERR_INVALID_ARG);
    assert_null(out);
    assert_int_equal(journal_open(path, NULL, &resumed, &out),
                     ROJ_ERR_INVALID_ARG);
}

/* A second open of a journal in use fails at once on the run lock,
 * naming the cause, even while the first run commits. */
static void journal_in_use(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s", new_path("busy.journal"));
    journal *j = open_new(path);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        journal *other = NULL;
        bool resumed = false;
        roj_status st = journal_open(path, &META, &resumed, &other);
        char ok = st == ROJ_ERR_IO &&
                  strstr(roj_last_error(), "another roj run") ? 'y' : 'n';
        if (write(fds[1], &ok, 1) != 1)
            _exit(2);
        _exit(0);
    }
    close(fds[1]);

    /* Commit often while the child waits: SQLite's write lock is free
     * for a moment at each commit. */
    struct pollfd ready = {fds[0], POLLIN, 0};
    uint64_t job = 0;
    while (poll(&ready, 1, 0) == 0) {
        assert_int_equal(journal_put_result(j, job++, "k", "s", "{}"),
                         ROJ_OK);
        assert_int_equal(journal_commit(j), ROJ_OK);
    }
    char ok = 0;
    ssize_t n = read(fds[0], &ok, 1);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(n, 1);
    assert_int_equal(ok, 'y');
    assert_int_equal(journal_put_result(j, job, "k", "s", "{}"), ROJ_OK);
    assert_int_equal(journal_close(j), ROJ_OK);

    /* Closing releases the run lock. */
    journal *again = NULL;
    bool resumed = false;
    assert_int_equal(journal_open(path, &META, &resumed, &again), ROJ_OK);
    assert_true(resumed);
    assert_int_equal(journal_close(again), ROJ_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(journal_new_file),
        cmocka_unit_test(journal_reopen_reads_back),
        cmocka_unit_test(journal_close_commits),
        cmocka_unit_test(journal_queued_invisible),
        cmocka_unit_test(journal_crash_exit),
        cmocka_unit_test(journal_crash_kill9),
        cmocka_unit_test(journal_duplicate_keeps_first),
        cmocka_unit_test(journal_meta_mismatch),
        cmocka_unit_test(journal_random_bytes),
        cmocka_unit_test(journal_other_database),
        cmocka_unit_test(journal_newer_schema),
        cmocka_unit_test(journal_wal_mode),
        cmocka_unit_test(journal_raw_bytes),
        cmocka_unit_test(journal_walk_stops),
        cmocka_unit_test(journal_bad_arguments),
        cmocka_unit_test(journal_in_use),
    };
    return test_run_group(tests, NULL, NULL);
}
