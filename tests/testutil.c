#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char shared_dir[4096];
static char tmpdir_path[4096];

const char *test_shared_dir(void)
{
    struct stat st;
    const char *env = getenv("ROJ_SHARED_DIR");

    snprintf(shared_dir, sizeof shared_dir, "%s",
             env && *env ? env : ROJ_SHARED_DIR_DEFAULT);
    if (stat(shared_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    return shared_dir;
}

static int skipped_tests;

/* Returns the path, or NULL (after printing why) when it is missing. */
static const char *find_shared(const char *relative)
{
    static char path[8192];
    struct stat st;
    const char *dir = test_shared_dir();

    if (!dir) {
        printf("SKIPPED: shared folder not found at %s "
               "(set ROJ_SHARED_DIR)\n", shared_dir);
        fflush(stdout);
        return NULL;
    }
    snprintf(path, sizeof path, "%s/%s", dir, relative);
    if (stat(path, &st) != 0) {
        printf("SKIPPED: %s not found\n", path);
        fflush(stdout);
        return NULL;
    }
    return path;
}

const char *test_shared_path(const char *relative)
{
    const char *path = find_shared(relative);
    if (!path) {
        skipped_tests++;
        skip();
    }
    return path;
}

const char *test_require_shared(const char *relative)
{
    const char *path = find_shared(relative);
    if (!path)
        exit(TEST_SKIP_EXIT);
    return path;
}

static bool no_threads(void)
{
    const char *env = getenv("ROJ_TEST_NO_THREADS");
    return env && *env && strcmp(env, "0") != 0;
}

void test_need_threads(void)
{
    if (no_threads()) {
        printf("SKIPPED: this test starts threads and ROJ_TEST_NO_THREADS "
               "is set\n");
        fflush(stdout);
        skip(); /* listed by cmocka; the exit status stays 0 */
    }
}

int test_threads(int n_threads)
{
    return no_threads() ? 1 : n_threads;
}

int test_exit_status(int failed)
{
    if (failed)
        return failed;
    if (skipped_tests) {
        printf("SKIPPED: %d test(s) need the shared fixtures\n",
               skipped_tests);
        return TEST_SKIP_EXIT;
    }
    return 0;
}

static void remove_tmpdir(void)
{
    char command[8300];
    if (!tmpdir_path[0])
        return;
    if (getenv("ROJ_TEST_KEEP")) {
        fprintf(stderr, "kept the test files in %s (ROJ_TEST_KEEP)\n",
                tmpdir_path);
        return;
    }
    snprintf(command, sizeof command, "rm -rf '%s'", tmpdir_path);
    if (system(command) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmpdir_path);
}

const char *test_tmpdir(void)
{
    if (tmpdir_path[0])
        return tmpdir_path;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir_path, sizeof tmpdir_path, "%s/roj-test-XXXXXX",
             base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir_path)) {
        fprintf(stderr, "mkdtemp %s: %s\n", tmpdir_path, strerror(errno));
        abort();
    }
    atexit(remove_tmpdir);
    return tmpdir_path;
}

char *test_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail_msg("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        fail_msg("short read on %s", path);
    fclose(f);
    buf[n] = '\0';
    if (size)
        *size = (size_t)n;
    return buf;
}

void test_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fail_msg("cannot create %s: %s", path, strerror(errno));
        return;
    }
    if (size && fwrite(data, 1, size, f) != size)
        fail_msg("short write on %s", path);
    fclose(f);
}

uint64_t test_rand_u64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float test_rand_float(uint64_t *state, float lo, float hi)
{
    double u = (double)(test_rand_u64(state) >> 11) / 9007199254740992.0;
    return lo + (float)(u * (double)(hi - lo));
}

int test_roj_start(const char *const *args, const char *out_path,
                   const char *err_path, int append)
{
    const char *bin = getenv("ROJ_BIN");
    if (!bin || !*bin)
        fail_msg("ROJ_BIN is not set; run this test through ctest");
    const char *argv[48];
    size_t n = 0;
    argv[n++] = bin;
    while (*args && n < 47)
        argv[n++] = *args++;
    argv[n] = NULL;
    const int flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path, flags, 0600);
        int err = err_path ? open(err_path, flags, 0600) : out;
        if (in < 0 || out < 0 || err < 0)
            _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return (int)pid;
}

int test_roj_wait(int pid, int timeout_ms)
{
    int status = 0;
    if (timeout_ms < 0) {
        assert_int_equal(waitpid(pid, &status, 0), pid);
    } else {
        const struct timespec tick = {0, 10 * 1000000L};
        int waited = 0;
        while (waitpid(pid, &status, WNOHANG) != pid) {
            if (waited >= timeout_ms) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                fail_msg("process %d did not exit within %d ms", pid,
                         timeout_ms);
            }
            nanosleep(&tick, NULL);
            waited += 10;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
