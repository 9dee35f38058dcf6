/* Helpers shared by the test programs. */
#ifndef ROJ_TESTS_TESTUTIL_H
#define ROJ_TESTS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Exit status that CTest reports as "skipped". */
#define TEST_SKIP_EXIT 77

/* Returns the shared folder (fixtures and data): $ROJ_SHARED_DIR, else
 * ../shared next to the source tree. NULL when it does not exist. */
const char *test_shared_dir(void);

/* Builds "<shared>/<relative>" into a static buffer. When the shared
 * folder or the file is missing, prints a SKIPPED line and skips the
 * current test (cmocka's skip()), so call it inside a test; the program
 * then exits with TEST_SKIP_EXIT through test_exit_status(). */
const char *test_shared_path(const char *relative);

/* Same as test_shared_path for main() and group setup functions: exits
 * with TEST_SKIP_EXIT at once when the file is missing. */
const char *test_require_shared(const char *relative);

/* Skips the current test, visibly, when ROJ_TEST_NO_THREADS is set (to
 * anything but 0): scripts/test_arm64.sh sets it because qemu-aarch64
 * 7.2 hangs in pthread_create on this project's CI kernel. */
void test_need_threads(void);

/* Returns the thread count for a test whose result does not depend on it:
 * n_threads (0: one per core), or 1 when ROJ_TEST_NO_THREADS is set. */
int test_threads(int n_threads);

/* Exit status of a test program: the failure count when tests failed,
 * else TEST_SKIP_EXIT when a test was skipped for missing fixtures, else
 * 0. */
int test_exit_status(int failed);

/* Runs a cmocka group and returns test_exit_status() of the result. */
#define test_run_group(tests, setup, teardown)                                \
    test_exit_status(cmocka_run_group_tests(tests, setup, teardown))

/* Creates a fresh temporary folder for this test process and returns it;
 * it is removed at exit. */
const char *test_tmpdir(void);

/* Reads a whole file into a new buffer (NUL-terminated, *size excludes the
 * NUL). Fails the test when the file cannot be read. */
char *test_read_file(const char *path, size_t *size);

/* Writes size bytes to path; fails the test on error. */
void test_write_file(const char *path, const void *data, size_t size);

/* Deterministic random numbers for tests (splitmix64). */
uint64_t test_rand_u64(uint64_t *state);
/* Uniform float in [lo, hi). */
float test_rand_float(uint64_t *state, float lo, float hi);

/* Starts the roj program ($ROJ_BIN, set by CTest) with args
 * (NULL-terminated, without argv[0]) as a child that is killed when the
 * test process dies. Standard input is /dev/null; standard output goes
 * to out_path and standard error to err_path (NULL: out_path too), both
 * truncated unless append is set. Fails the test when ROJ_BIN is
 * unset. */
int test_roj_start(const char *const *args, const char *out_path,
                   const char *err_path, int append);

/* Waits for process pid up to timeout_ms (negative: no limit) and
 * returns its exit status, or 128 plus the signal that ended it. Kills
 * it and fails the test when it does not exit in time. */
int test_roj_wait(int pid, int timeout_ms);

#endif
