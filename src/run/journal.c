/*
 * The run journal on SQLite; journal.h describes the tables and the
 * contract.
 *
 * Connections: the writer holds one write transaction (BEGIN IMMEDIATE)
 * from journal_open or the last commit to the next commit, so every
 * journal_put_* lands in it and a crash rolls all of them back together.
 * A second, read-only connection runs the walks, counts and the output
 * position: in WAL mode it sees the last committed state only, never the
 * writer's queued rows.
 *
 * Durability: WAL with synchronous=NORMAL. A commit appends to the WAL
 * file without fsync, and fsync happens only at checkpoints. So a process
 * crash, kill -9 or Ctrl-C loses nothing committed, because the kernel
 * still holds the written pages, but an operating system crash or power
 * loss may lose the last commits. The database stays consistent in both
 * cases, and the runner computes the lost results again.
 *
 * Strings are stored as BLOBs of their bytes. They hold whatever a model
 * or an input wrote (any bytes but NUL), and SQLite leaves TEXT values
 * that are not valid UTF-8 undefined.
 */
#define _GNU_SOURCE
#include "run/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/error.h"

/* The schema this code writes and reads. A journal with another version
 * is rejected, because its tables may mean something else. */
#define JOURNAL_SCHEMA_VERSION 1

/* SQLite's application_id header field for roj journals: the ASCII
 * bytes "rojJ" read as a big-endian integer. */
#define JOURNAL_APPLICATION_ID 0x726f6a4a

/* How long a connection waits for a lock that another connection holds
 * before the call fails with "database is locked" (milliseconds). */
#define JOURNAL_BUSY_TIMEOUT_MS 5000

static const char SCHEMA_SQL[] =
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value NOT NULL);"
    "CREATE TABLE jobs (job INTEGER PRIMARY KEY, id BLOB NOT NULL,"
    "  status INTEGER NOT NULL, line BLOB NOT NULL);"
    "CREATE TABLE subtasks (job INTEGER NOT NULL, key BLOB NOT NULL,"
    "  skill BLOB NOT NULL, result BLOB NOT NULL, PRIMARY KEY (job, key));"
    "CREATE TABLE attempts (job INTEGER NOT NULL, key BLOB NOT NULL,"
    "  agent INTEGER NOT NULL, pid INTEGER NOT NULL, ms REAL NOT NULL,"
    "  error BLOB);"
    "CREATE TABLE emitted (one INTEGER PRIMARY KEY CHECK (one = 1),"
    "  next_job INTEGER NOT NULL, out_bytes INTEGER NOT NULL);"
    "INSERT INTO emitted VALUES (1, 0, 0);";

/* The meta values that must match for a journal to be resumed, in the
 * order they are checked, with the words the mismatch message uses. */
static const struct meta_field {
    const char *name;   /* row name in the meta table */
    const char *label;  /* what the value is, for messages */
    bool quoted;        /* print the value in quotes */
} META_FIELDS[] = {
    {"swarm_sha256", "swarm file sha256", false},
    {"input_sha256", "input sha256", false},
    {"pipeline", "pipeline", true},
    {"output_path", "output file", true},
};
#define N_META_FIELDS (sizeof META_FIELDS / sizeof META_FIELDS[0])

struct journal {
    char *path;
    int lock_fd;      /* PATH-lock, write-locked while the journal is open */
    sqlite3 *db;      /* writer; holds the open write transaction */
    sqlite3 *reader;  /* read-only; sees committed rows only */
    sqlite3_stmt *put_result;
    sqlite3_stmt *put_attempt;
    sqlite3_stmt *put_job;
    sqlite3_stmt *set_emitted;
    sqlite3_stmt *get_emitted;   /* on reader */
    sqlite3_stmt *each_result;   /* on reader */
    sqlite3_stmt *each_job;      /* on reader */
    sqlite3_stmt *counts;        /* on reader */
};

/* Turns a failed SQLite call into a roj_error naming the journal, the
 * step and SQLite's message. */
static roj_status sqlite_fail(const journal *j, sqlite3 *db, int rc,
                              const char *step)
{
    roj_status st;
    const char *hint = "";

    switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        st = ROJ_ERR_FORMAT;
        break;
    case SQLITE_NOMEM:
        st = ROJ_ERR_NOMEM;
        break;
    case SQLITE_TOOBIG:
        st = ROJ_ERR_RANGE;
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        st = ROJ_ERR_IO;
        hint = "; another roj run may be using this journal";
        break;
    default:
        st = ROJ_ERR_IO;
        break;
    }
    return roj_error(st, "journal %s: %s failed: %s%s", j->path, step,
                     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), hint);
}

static roj_status exec_sql(const journal *j, const char *sql,
                           const char *step)
{
    int rc = sqlite3_exec(j->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? ROJ_OK : sqlite_fail(j, j->db, rc, step);
}

static roj_status prepare(const journal *j, sqlite3 *db, const char *sql,
                          sqlite3_stmt **out)
{
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, out,
                                NULL);
    return rc == SQLITE_OK ? ROJ_OK
                           : sqlite_fail(j, db, rc, "preparing a statement");
}

/* Binds the bytes of s (up to its NUL) as a BLOB; NULL binds SQL NULL.
 * The statement reads s until it is reset, so s must live that long. */
static int bind_string(sqlite3_stmt *s, int index, const char *text)
{
    if (!text)
        return sqlite3_bind_null(s, index);
    return sqlite3_bind_blob64(s, index, text, strlen(text), SQLITE_STATIC);
}

/* Returns a stored string column as a NUL-terminated string that lives
 * until the next step or reset of s. */
static const char *column_string(sqlite3_stmt *s, int index)
{
    const unsigned char *text = sqlite3_column_text(s, index);
    return text ? (const char *)text : "";
}

/* Runs a write statement whose parameters are bound, then resets it and
 * clears its bindings. A failed bind (rc) skips the step. */
static roj_status step_write(const journal *j, sqlite3_stmt *s, int rc,
                             const char *step)
{
    roj_status st = ROJ_OK;

    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc != SQLITE_OK && rc != SQLITE_DONE)
        st = sqlite_fail(j, j->db, rc, step);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return st;
}

/* Checks what every journal_put_* needs: a handle, a job index SQLite
 * can store, and the write transaction still open. SQLite rolls the
 * transaction back by itself after some errors (disk full, I/O error),
 * and writing on without one would commit each row alone. */
static roj_status check_writable(const journal *j, uint64_t job,
                                 const char *function)
{
    if (!j)
        return roj_error(ROJ_ERR_INVALID_ARG, "%s: journal is NULL",
                         function);
    if (job > INT64_MAX)
        return roj_error(ROJ_ERR_RANGE, "journal %s: job index %" PRIu64
                         " is larger than %" PRId64, j->path, job,
                         INT64_MAX);
    if (sqlite3_get_autocommit(j->db))
        return roj_error(ROJ_ERR_IO, "journal %s: the write transaction "
                         "was rolled back after an earlier error, so the "
                         "writes since the last commit are lost; stop the "
                         "run and resume it", j->path);
    return ROJ_OK;
}

/* Reads the first row of the one-value query sql into *value (an
 * INTEGER), or sets *found = false when the query has no row. */
static roj_status query_int(const journal *j, const char *sql,
                            int64_t *value, bool *found)
{
    sqlite3_stmt *s = NULL;
    roj_status st = prepare(j, j->db, sql, &s);
    if (st != ROJ_OK)
        return st;
    int rc = sqlite3_step(s);
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        *value = sqlite3_column_int64(s, 0);
    else if (rc != SQLITE_DONE)
        st = sqlite_fail(j, j->db, rc, "reading the file");
    sqlite3_finalize(s);
    return st;
}

/* Sets *fresh when the file holds no tables yet (it did not exist, or
 * it is empty). Returns ROJ_ERR_FORMAT, touching nothing, when the file
 * is not SQLite or is another program's database. */
static roj_status inspect_file(const journal *j, bool *fresh)
{
    int64_t tables = 0, app_id = 0;
    bool found;
    roj_status st = query_int(j, "SELECT count(*) FROM sqlite_master",
                              &tables, &found);
    if (st == ROJ_ERR_FORMAT)
        return roj_error(ROJ_ERR_FORMAT, "journal %s is not a SQLite "
                         "database (%s), so it cannot be a roj journal; "
                         "use another --journal path", j->path,
                         sqlite3_errmsg(j->db));
    if (st == ROJ_OK)
        st = query_int(j, "PRAGMA application_id", &app_id, &found);
    if (st != ROJ_OK)
        return st;

    *fresh = tables == 0 && (app_id == 0 || app_id == JOURNAL_APPLICATION_ID);
    if (!*fresh && app_id != JOURNAL_APPLICATION_ID)
        return roj_error(ROJ_ERR_FORMAT, "journal %s is a SQLite database "
                         "but not a roj journal (application_id %" PRId64
                         ", expected %d); use another --journal path",
                         j->path, app_id, JOURNAL_APPLICATION_ID);
    return ROJ_OK;
}

/* Opens the writer connection and switches the file to WAL mode. */
static roj_status open_writer(journal *j)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(j->path, &j->db, flags, NULL);
    if (rc != SQLITE_OK)
        return sqlite_fail(j, j->db, rc, "opening");
    sqlite3_busy_timeout(j->db, JOURNAL_BUSY_TIMEOUT_MS);

    /* Look before writing: WAL mode would change another program's file. */
    bool fresh;
    roj_status st = inspect_file(j, &fresh);
    if (st != ROJ_OK)
        return st;

    sqlite3_stmt *s = NULL;
    st = prepare(j, j->db, "PRAGMA journal_mode = WAL", &s);
    if (st != ROJ_OK)
        return st;
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW)
        st = sqlite_fail(j, j->db, rc, "switching to WAL mode");
    else if (strcmp(column_string(s, 0), "wal") != 0)
        st = roj_error(ROJ_ERR_IO, "journal %s: SQLite cannot use WAL mode "
                       "on this file (journal_mode is %s); put the journal "
                       "on a local file system", j->path,
                       column_string(s, 0));
    sqlite3_finalize(s);
    if (st != ROJ_OK)
        return st;
    return exec_sql(j, "PRAGMA synchronous = NORMAL",
                    "setting synchronous=NORMAL");
}

/* Creates the tables and stores meta and the schema version, inside the
 * write transaction that the caller began. */
static roj_status create_schema(const journal *j, const journal_meta *meta)
{
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA application_id = %d",
             JOURNAL_APPLICATION_ID);
    roj_status st = exec_sql(j, pragma, "setting the application_id");
    if (st == ROJ_OK)
        st = exec_sql(j, SCHEMA_SQL, "creating the tables");
    if (st != ROJ_OK)
        return st;

    sqlite3_stmt *s = NULL;
    st = prepare(j, j->db, "INSERT INTO meta VALUES (?, ?)", &s);
    if (st != ROJ_OK)
        return st;
    int rc = sqlite3_bind_text(s, 1, "schema_version", -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 2, JOURNAL_SCHEMA_VERSION);
    st = step_write(j, s, rc, "storing meta");

    const char *values[N_META_FIELDS] = {meta->swarm_sha256,
                                         meta->input_sha256, meta->pipeline,
                                         meta->output_path};
    for (size_t i = 0; i < N_META_FIELDS && st == ROJ_OK; i++) {
        rc = sqlite3_bind_text(s, 1, META_FIELDS[i].name, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = bind_string(s, 2, values[i] ? values[i] : "");
        st = step_write(j, s, rc, "storing meta");
    }
    sqlite3_finalize(s);
    return st;
}

/* Checks the schema version stored in meta against this code's. */
static roj_status check_schema_version(const journal *j)
{
    int64_t version = 0;
    bool found = false;
    roj_status st = query_int(j, "SELECT value FROM meta "
                              "WHERE name = 'schema_version' "
                              "AND typeof(value) = 'integer'",
                              &version, &found);
    if (st == ROJ_OK && !found)
        st = ROJ_ERR_FORMAT;
    if (st != ROJ_OK)
        return roj_error(ROJ_ERR_FORMAT, "journal %s has no schema_version "
                         "in its meta table, so it is damaged or not a roj "
                         "journal; use another --journal path", j->path);
    if (version > JOURNAL_SCHEMA_VERSION)
        return roj_error(ROJ_ERR_UNSUPPORTED, "journal %s has schema "
                         "version %" PRId64 ", newer than version %d that "
                         "this roj reads; resume it with the roj that made "
                         "it, or use another --journal file", j->path,
                         version, JOURNAL_SCHEMA_VERSION);
    if (version < JOURNAL_SCHEMA_VERSION)
        return roj_error(ROJ_ERR_UNSUPPORTED, "journal %s has schema "
                         "version %" PRId64 ", older than version %d that "
                         "this roj reads; use another --journal file or "
                         "delete %s to start over", j->path, version,
                         JOURNAL_SCHEMA_VERSION, j->path);
    return ROJ_OK;
}

/* Compares the stored meta with the caller's; the first value that
 * differs gives ROJ_ERR_INVALID_ARG. */
static roj_status check_meta(const journal *j, const journal_meta *meta)
{
    const char *values[N_META_FIELDS] = {meta->swarm_sha256,
                                         meta->input_sha256, meta->pipeline,
                                         meta->output_path};
    sqlite3_stmt *s = NULL;
    roj_status st = prepare(j, j->db, "SELECT value FROM meta WHERE name = ?",
                            &s);
    for (size_t i = 0; i < N_META_FIELDS && st == ROJ_OK; i++) {
        const struct meta_field *f = &META_FIELDS[i];
        const char *want = values[i] ? values[i] : "";
        int rc = sqlite3_bind_text(s, 1, f->name, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(s);
        if (rc == SQLITE_DONE) {
            st = roj_error(ROJ_ERR_FORMAT, "journal %s has no %s in its "
                           "meta table, so it is damaged; use another "
                           "--journal path", j->path, f->name);
        } else if (rc != SQLITE_ROW) {
            st = sqlite_fail(j, j->db, rc, "reading meta");
        } else {
            const char *have = column_string(s, 0);
            const char *q = f->quoted ? "'" : "";
            if (strcmp(have, want) != 0)
                st = roj_error(ROJ_ERR_INVALID_ARG, "journal %s was made "
                               "for %s %s%s%s, this run has %s %s%s%s; use "
                               "another --journal file or delete %s to "
                               "start over", j->path, f->label, q, have, q,
                               f->label, q, want, q, j->path);
        }
        sqlite3_reset(s);
    }
    sqlite3_finalize(s);
    return st;
}

static roj_status prepare_statements(journal *j)
{
    /* Writes, on the writer inside its open transaction. */
    roj_status st = prepare(j, j->db, "INSERT INTO subtasks "
                            "VALUES (?, ?, ?, ?) "
                            "ON CONFLICT (job, key) DO NOTHING",
                            &j->put_result);
    if (st == ROJ_OK)
        st = prepare(j, j->db, "INSERT INTO attempts "
                     "VALUES (?, ?, ?, ?, ?, ?)", &j->put_attempt);
    if (st == ROJ_OK)
        st = prepare(j, j->db, "INSERT INTO jobs VALUES (?, ?, ?, ?) "
                     "ON CONFLICT (job) DO NOTHING", &j->put_job);
    if (st == ROJ_OK)
        st = prepare(j, j->db, "UPDATE emitted "
                     "SET next_job = ?, out_bytes = ? WHERE one = 1",
                     &j->set_emitted);

    /* Reads, on the reader, so they see committed rows only. */
    if (st == ROJ_OK)
        st = prepare(j, j->reader, "SELECT next_job, out_bytes "
                     "FROM emitted WHERE one = 1", &j->get_emitted);
    if (st == ROJ_OK)
        st = prepare(j, j->reader, "SELECT job, key, result FROM subtasks "
                     "WHERE job >= ? ORDER BY job, key", &j->each_result);
    if (st == ROJ_OK)
        st = prepare(j, j->reader, "SELECT job, id, status, line FROM jobs "
                     "WHERE job >= ? ORDER BY job", &j->each_job);
    if (st == ROJ_OK)
        st = prepare(j, j->reader, "SELECT (SELECT count(*) FROM subtasks), "
                     "(SELECT count(*) FROM attempts), "
                     "(SELECT count(*) FROM attempts "
                     "WHERE error IS NOT NULL)", &j->counts);
    return st;
}

/* Finalizes the statements and closes both connections. A write
 * transaction still open is rolled back. */
static void journal_free(journal *j)
{
    sqlite3_stmt *stmts[] = {j->put_result, j->put_attempt, j->put_job,
                             j->set_emitted, j->get_emitted, j->each_result,
                             j->each_job, j->counts};
    for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++)
        sqlite3_finalize(stmts[i]);
    /* The last connection to close checkpoints the WAL into the main
     * file and deletes it, so the writer goes last. */
    sqlite3_close(j->reader);
    sqlite3_close(j->db);
    if (j->lock_fd >= 0)
        close(j->lock_fd); /* releases the run lock */
    free(j->path);
    free(j);
}

/* Takes a write lock on PATH-lock for as long as the journal is open, so
 * that two runs never use one journal at once. fcntl locks are not
 * inherited by fork, so agents forked by the runner do not hold it, and
 * the kernel releases it when the runner dies, even by SIGKILL. */
static roj_status take_run_lock(journal *j)
{
    char *lock_path = NULL;
    if (asprintf(&lock_path, "%s-lock", j->path) < 0)
        return roj_error(ROJ_ERR_NOMEM, "journal %s: out of memory",
                         j->path);
    j->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (j->lock_fd < 0) {
        roj_status st = roj_error(ROJ_ERR_IO, "journal lock file %s: %s",
                                  lock_path, strerror(errno));
        free(lock_path);
        return st;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(j->lock_fd, F_SETLK, &fl) == 0) {
        free(lock_path);
        return ROJ_OK;
    }
    struct flock who = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    long pid = fcntl(j->lock_fd, F_GETLK, &who) == 0 ? (long)who.l_pid : 0;
    roj_status st = roj_error(ROJ_ERR_IO, "journal %s is in use by "
                              "another roj run (process %ld holds %s); wait "
                              "for it to finish or stop it, or use another "
                              "journal", j->path, pid, lock_path);
    free(lock_path);
    return st;
}

roj_status journal_open(const char *path, const journal_meta *meta,
                        bool *resumed, journal **out)
{
    if (out)
        *out = NULL;
    if (!path || !*path || !meta || !resumed || !out)
        return roj_error(ROJ_ERR_INVALID_ARG, "journal_open: path, meta, "
                         "resumed and out must not be NULL or empty");
    *resumed = false;

    journal *j = calloc(1, sizeof *j);
    if (!j || !(j->path = strdup(path))) {
        free(j);
        return roj_error(ROJ_ERR_NOMEM, "journal %s: out of memory", path);
    }
    j->lock_fd = -1;

    /* Connect: WAL mode, and the write lock held from here on. */
    roj_status st = take_run_lock(j);
    if (st == ROJ_OK)
        st = open_writer(j);
    if (st == ROJ_OK)
        st = exec_sql(j, "BEGIN IMMEDIATE", "locking for writing");
    if (st != ROJ_OK)
        goto fail;

    /* Create or check: another process may have created the tables
     * between the first look and the lock, so look again. */
    bool fresh = false;
    st = inspect_file(j, &fresh);
    if (st == ROJ_OK && fresh) {
        st = create_schema(j, meta);
        if (st == ROJ_OK)
            st = exec_sql(j, "COMMIT", "committing the new tables");
        if (st == ROJ_OK)
            st = exec_sql(j, "BEGIN IMMEDIATE", "locking for writing");
    } else if (st == ROJ_OK) {
        st = check_schema_version(j);
        if (st == ROJ_OK)
            st = check_meta(j, meta);
    }
    if (st != ROJ_OK)
        goto fail;

    /* The reader opens once the tables exist. */
    int rc = sqlite3_open_v2(path, &j->reader,
                             SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        st = sqlite_fail(j, j->reader, rc, "opening a reader");
        goto fail;
    }
    sqlite3_busy_timeout(j->reader, JOURNAL_BUSY_TIMEOUT_MS);
    st = prepare_statements(j);
    if (st != ROJ_OK)
        goto fail;

    *resumed = !fresh;
    *out = j;
    return ROJ_OK;

fail:
    journal_free(j);
    return st;
}

roj_status journal_put_result(journal *j, uint64_t job, const char *key,
                              const char *skill, const char *result_json)
{
    roj_status st = check_writable(j, job, "journal_put_result");
    if (st != ROJ_OK)
        return st;
    if (!key || !skill || !result_json)
        return roj_error(ROJ_ERR_INVALID_ARG, "journal %s: result of job %"
                         PRIu64 " has a NULL key, skill or result", j->path,
                         job);
    sqlite3_stmt *s = j->put_result;
    int rc = sqlite3_bind_int64(s, 1, (sqlite3_int64)job);
    if (rc == SQLITE_OK)
        rc = bind_string(s, 2, key);
    if (rc == SQLITE_OK)
        rc = bind_string(s, 3, skill);
    if (rc == SQLITE_OK)
        rc = bind_string(s, 4, result_json);
    return step_write(j, s, rc, "recording a result");
}

roj_status journal_put_attempt(journal *j, uint64_t job, const char *key,
                               int agent, long pid, double ms,
                               const char *error)
{
    roj_status st = check_writable(j, job, "journal_put_attempt");
    if (st != ROJ_OK)
        return st;
    if (!key)
        return roj_error(ROJ_ERR_INVALID_ARG, "journal %s: attempt of job %"
                         PRIu64 " has a NULL key", j->path, job);
    if (!isfinite(ms))
        return roj_error(ROJ_ERR_INVALID_ARG, "journal %s: attempt of job %"
                         PRIu64 " key %s has duration %g ms, expected a "
                         "finite number", j->path, job, key, ms);
    sqlite3_stmt *s = j->put_attempt;
    int rc = sqlite3_bind_int64(s, 1, (sqlite3_int64)job);
    if (rc == SQLITE_OK)
        rc = bind_string(s, 2, key);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 3, agent);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 4, pid);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(s, 5, ms);
    if (rc == SQLITE_OK)
        rc = bind_string(s, 6, error);
    return step_write(j, s, rc, "recording an attempt");
}

/* A second call for the same job is ignored, like a second result: the
 * line first recorded is the one the output gets. */
roj_status journal_put_job(journal *j, uint64_t job, const char *id,
                           journal_job_status status, const char *line)
{
    roj_status st = check_writable(j, job, "journal_put_job");
    if (st != ROJ_OK)
        return st;
    if (!id || !line)
        return roj_error(ROJ_ERR_INVALID_ARG, "journal %s: job %" PRIu64
                         " has a NULL id or line", j->path, job);
    if (status != JOURNAL_JOB_OK && status != JOURNAL_JOB_FAILED)
        return roj_error(ROJ_ERR_INVALID_ARG, "journal %s: job %" PRIu64
                         " has status %d, expected JOURNAL_JOB_OK or "
                         "JOURNAL_JOB_FAILED", j->path, job, (int)status);
    sqlite3_stmt *s = j->put_job;
    int rc = sqlite3_bind_int64(s, 1, (sqlite3_int64)job);
    if (rc == SQLITE_OK)
        rc = bind_string(s, 2, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 3, (int)status);
    if (rc == SQLITE_OK)
        rc = bind_string(s, 4, line);
    return step_write(j, s, rc, "recording a job");
}

roj_status journal_set_emitted(journal *j, uint64_t next_job,
                               uint64_t out_bytes)
{
    roj_status st = check_writable(j, next_job, "journal_set_emitted");
    if (st != ROJ_OK)
        return st;
    if (out_bytes > INT64_MAX)
        return roj_error(ROJ_ERR_RANGE, "journal %s: output size %" PRIu64
                         " bytes is larger than %" PRId64, j->path,
                         out_bytes, INT64_MAX);
    sqlite3_stmt *s = j->set_emitted;
    int rc = sqlite3_bind_int64(s, 1, (sqlite3_int64)next_job);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, (sqlite3_int64)out_bytes);
    return step_write(j, s, rc, "recording the output position");
}

/* COMMIT frees SQLite's write lock until the BEGIN IMMEDIATE that
 * follows; the lock file (take_run_lock) keeps a second run out in that
 * gap. */
roj_status journal_commit(journal *j)
{
    roj_status st = check_writable(j, 0, "journal_commit");
    if (st == ROJ_OK)
        st = exec_sql(j, "COMMIT", "commit");
    if (st == ROJ_OK)
        st = exec_sql(j, "BEGIN IMMEDIATE", "locking for writing");
    return st;
}

roj_status journal_emitted(journal *j, uint64_t *next_job,
                           uint64_t *out_bytes)
{
    if (!j || !next_job || !out_bytes)
        return roj_error(ROJ_ERR_INVALID_ARG, "journal_emitted: journal, "
                         "next_job and out_bytes must not be NULL");
    sqlite3_stmt *s = j->get_emitted;
    roj_status st = ROJ_OK;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *next_job = (uint64_t)sqlite3_column_int64(s, 0);
        *out_bytes = (uint64_t)sqlite3_column_int64(s, 1);
    } else if (rc == SQLITE_DONE) {
        st = roj_error(ROJ_ERR_FORMAT, "journal %s: the emitted table has "
                       "no row, so the journal is damaged", j->path);
    } else {
        st = sqlite_fail(j, j->reader, rc, "reading the output position");
    }
    sqlite3_reset(s);
    return st;
}

/* Binds first_job to a walk; *empty is set when no job can be that large. */
static roj_status bind_first_job(const journal *j, sqlite3_stmt *s,
                                 uint64_t first_job, bool *empty)
{
    *empty = first_job > INT64_MAX;
    int rc = sqlite3_bind_int64(s, 1, *empty ? 0 : (sqlite3_int64)first_job);
    return rc == SQLITE_OK ? ROJ_OK
                           : sqlite_fail(j, j->reader, rc, "starting a walk");
}

roj_status journal_each_result(journal *j, uint64_t first_job,
                               journal_result_fn fn, void *ctx)
{
    if (!j || !fn)
        return roj_error(ROJ_ERR_INVALID_ARG, "journal_each_result: journal "
                         "and fn must not be NULL");
    sqlite3_stmt *s = j->each_result;
    bool empty;
    roj_status st = bind_first_job(j, s, first_job, &empty);
    if (st != ROJ_OK || empty)
        return st;

    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        st = fn(ctx, (uint64_t)sqlite3_column_int64(s, 0),
                column_string(s, 1), column_string(s, 2));
        if (st != ROJ_OK)
            break;
    }
    if (st == ROJ_OK && rc != SQLITE_DONE)
        st = sqlite_fail(j, j->reader, rc, "reading results");
    sqlite3_reset(s);
    return st;
}

roj_status journal_each_job(journal *j, uint64_t first_job,
                            journal_job_fn fn, void *ctx)
{
    if (!j || !fn)
        return roj_error(ROJ_ERR_INVALID_ARG, "journal_each_job: journal "
                         "and fn must not be NULL");
    sqlite3_stmt *s = j->each_job;
    bool empty;
    roj_status st = bind_first_job(j, s, first_job, &empty);
    if (st != ROJ_OK || empty)
        return st;

    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        uint64_t job = (uint64_t)sqlite3_column_int64(s, 0);
        int status = sqlite3_column_int(s, 2);
        if (status != JOURNAL_JOB_OK && status != JOURNAL_JOB_FAILED) {
            st = roj_error(ROJ_ERR_FORMAT, "journal %s: job %" PRIu64
                           " has status %d, expected 1 (ok) or 2 (failed)",
                           j->path, job, status);
            break;
        }
        st = fn(ctx, job, column_string(s, 1), (journal_job_status)status,
                column_string(s, 3));
        if (st != ROJ_OK)
            break;
    }
    if (st == ROJ_OK && rc != SQLITE_DONE)
        st = sqlite_fail(j, j->reader, rc, "reading jobs");
    sqlite3_reset(s);
    return st;
}

roj_status journal_counts(journal *j, uint64_t *results, uint64_t *attempts,
                          uint64_t *failed_attempts)
{
    if (!j || !results || !attempts || !failed_attempts)
        return roj_error(ROJ_ERR_INVALID_ARG, "journal_counts: no argument "
                         "may be NULL");
    sqlite3_stmt *s = j->counts;
    roj_status st = ROJ_OK;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *results = (uint64_t)sqlite3_column_int64(s, 0);
        *attempts = (uint64_t)sqlite3_column_int64(s, 1);
        *failed_attempts = (uint64_t)sqlite3_column_int64(s, 2);
    } else {
        st = sqlite_fail(j, j->reader, rc, "counting rows");
    }
    sqlite3_reset(s);
    return st;
}

roj_status journal_close(journal *j)
{
    if (!j)
        return ROJ_OK;
    roj_status st = ROJ_OK;
    if (!sqlite3_get_autocommit(j->db))
        st = exec_sql(j, "COMMIT", "commit");
    journal_free(j);
    return st;
}
