/*
 * `roj tokenize`: the JSON id list, --no-bos, --no-parse-special,
 * --show-pieces, -f with exact bytes, --help, and the errors for a missing
 * file, a file that is not GGUF and bad options. Runs the roj program
 * ($ROJ_BIN, set by CTest, or the build folder's roj).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testutil.h"

static const char *roj_bin(void)
{
    static char path[4096];
    const char *env = getenv("ROJ_BIN");

    snprintf(path, sizeof path, "%s", env && *env ? env
                                                  : ROJ_BINARY_DIR "/roj");
    return path;
}

/* Runs "roj tokenize ARGS" with stderr merged into the output; returns the
 * exit status and stores the output (NUL-terminated) in out. */
static int run(const char *args, char *out, size_t cap)
{
    char cmd[8192];
    size_t n = 0;

    snprintf(cmd, sizeof cmd, "'%s' tokenize %s 2>&1", roj_bin(), args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    while (n + 1 < cap) {
        size_t got = fread(out + n, 1, cap - 1 - n, p);
        if (got == 0)
            break;
        n += got;
    }
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *vocab(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "fixtures/tokenizer/ggml-vocab-%s.gguf", name);
    return strdup(test_shared_path(rel));
}

static void prints_json_ids(void **state)
{
    (void)state;
    char *llama3 = vocab("llama-bpe");
    char args[8192], out[65536];

    snprintf(args, sizeof args, "-m %s -p 'Hello world<|eot_id|>'", llama3);
    assert_int_equal(run(args, out, sizeof out), 0);
    assert_string_equal(out, "[128000, 9906, 1917, 128009]\n");

    snprintf(args, sizeof args, "-m %s -p 'Hello world' --no-bos", llama3);
    assert_int_equal(run(args, out, sizeof out), 0);
    assert_string_equal(out, "[9906, 1917]\n");

    snprintf(args, sizeof args,
             "-m %s -p '<|eot_id|>' --no-bos --no-parse-special", llama3);
    assert_int_equal(run(args, out, sizeof out), 0);
    assert_null(strstr(out, "128009"));
    assert_int_equal(out[0], '[');

    snprintf(args, sizeof args, "-m %s -p 'Hello world' --show-pieces",
             llama3);
    assert_int_equal(run(args, out, sizeof out), 0);
    assert_non_null(strstr(out, "128000 -> '<|begin_of_text|>'\n"));
    assert_non_null(strstr(out, "  1917 -> ' world'\n"));
    free(llama3);
}

static void reads_text_files_exactly(void **state)
{
    (void)state;
    char *spm = vocab("llama-spm");
    char path[4096], args[8192], out[65536];

    /* A trailing newline is part of the text: " Hi" then <0x0A> (13). */
    snprintf(path, sizeof path, "%s/text.txt", test_tmpdir());
    test_write_file(path, "Hi\n", 3);
    snprintf(args, sizeof args, "-m %s -f %s", spm, path);
    assert_int_equal(run(args, out, sizeof out), 0);
    assert_string_equal(out, "[1, 6324, 13]\n");

    test_write_file(path, "", 0);
    assert_int_equal(run(args, out, sizeof out), 0);
    assert_string_equal(out, "[1]\n");
    free(spm);
}

static void reports_errors(void **state)
{
    (void)state;
    char args[8192], out[65536], path[4096];

    assert_int_equal(run("--help", out, sizeof out), 0);
    assert_non_null(strstr(out, "--no-parse-special"));
    assert_non_null(strstr(out, "--show-pieces"));

    snprintf(path, sizeof path, "%s/none.gguf", test_tmpdir());
    snprintf(args, sizeof args, "-m %s -p x", path);
    assert_int_equal(run(args, out, sizeof out), 1);
    assert_non_null(strstr(out, path));
    assert_non_null(strstr(out, "exists"));

    snprintf(path, sizeof path, "%s/plain.gguf", test_tmpdir());
    test_write_file(path, "plain text, not a GGUF file at all", 34);
    snprintf(args, sizeof args, "-m %s -p x", path);
    assert_int_equal(run(args, out, sizeof out), 1);
    assert_non_null(strstr(out, path));
    assert_non_null(strstr(out, "GGUF"));
    /* The path once, and no "exists" hint for a file that exists. */
    assert_null(strstr(strstr(out, path) + strlen(path), path));
    assert_null(strstr(out, "exists"));

    snprintf(args, sizeof args, "-m %s -p x", test_tmpdir());
    assert_int_equal(run(args, out, sizeof out), 1);
    assert_non_null(strstr(out, "directory"));
    assert_null(strstr(out, "exists"));

    snprintf(args, sizeof args, "-m %s -p x -f y", path);
    assert_int_equal(run(args, out, sizeof out), 2);
    assert_int_equal(run("-p x", out, sizeof out), 2);
    assert_non_null(strstr(out, "-m"));
    assert_int_equal(run("-m", out, sizeof out), 2);
    assert_int_equal(run("--bogus", out, sizeof out), 2);
    assert_non_null(strstr(out, "--bogus"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prints_json_ids),
        cmocka_unit_test(reads_text_files_exactly),
        cmocka_unit_test(reports_errors),
    };
    return test_run_group(tests, NULL, NULL);
}
