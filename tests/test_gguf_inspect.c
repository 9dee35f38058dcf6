/* `roj inspect`: output, --json fields and the exit status that reports
 * whether a file is runnable. Runs the roj program named by $ROJ_BIN. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>

#include "gguf/gguf.h"
#include "quant/qtypes.h"

/* Output and exit status of one roj run. */
struct run {
    char *out;
    char *err;
    int status;
};

static const char *roj_bin(void)
{
    const char *bin = getenv("ROJ_BIN");
    if (!bin || !*bin) {
        printf("SKIPPED: ROJ_BIN is not set (run through ctest)\n");
        exit(TEST_SKIP_EXIT);
    }
    return bin;
}

/* Runs `roj inspect ARGS` with stdout and stderr captured in files. */
static struct run run_inspect(const char *args)
{
    char command[16384], out_path[4200], err_path[4200];
    struct run r = {NULL, NULL, -1};
    size_t size = 0;

    snprintf(out_path, sizeof out_path, "%s/out.txt", test_tmpdir());
    snprintf(err_path, sizeof err_path, "%s/err.txt", test_tmpdir());
    int n = snprintf(command, sizeof command, "'%s' inspect %s >'%s' 2>'%s'",
                     roj_bin(), args, out_path, err_path);
    assert_true(n > 0 && (size_t)n < sizeof command);
    int st = system(command);
    assert_true(st != -1 && WIFEXITED(st));
    r.status = WEXITSTATUS(st);
    r.out = test_read_file(out_path, &size);
    r.err = test_read_file(err_path, &size);
    return r;
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

static void inspect_runnable_model(void **state)
{
    (void)state;
    char args[4200];
    snprintf(args, sizeof args, "'%s'",
             test_shared_path("fixtures/logits/tiny-q4_k_m.gguf"));
    struct run r = run_inspect(args);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "GGUF version: 3"));
    assert_non_null(strstr(r.out, "alignment:    32 bytes"));
    assert_non_null(strstr(r.out, "data offset:  725408 bytes"));
    assert_non_null(strstr(r.out, "array[string; 32000] [\"<unk>\", \"<s>\""));
    assert_non_null(strstr(r.out, "blk.1.ffn_down.weight"));
    assert_non_null(strstr(r.out, "parameters: 4170048"));
    assert_non_null(strstr(r.out, "Q8_0        2186880 bytes in 3 tensors"));
    assert_non_null(strstr(r.out, "runnable:     yes"));
    assert_string_equal(r.err, "");
    run_free(&r);
}

static void inspect_vocab_not_runnable(void **state)
{
    (void)state;
    char args[4200];
    snprintf(args, sizeof args, "--no-tensors '%s'",
             test_shared_path("fixtures/tokenizer/ggml-vocab-llama-bpe.gguf"));
    struct run r = run_inspect(args);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, "array[string; 280147]"));
    assert_non_null(strstr(r.out, "(348 bytes)"));
    assert_null(strstr(r.out, "tensors ("));
    assert_non_null(strstr(r.err, "is not runnable: no tensors"));
    run_free(&r);
}

static void inspect_json_fields(void **state)
{
    (void)state;
    char args[4200];
    snprintf(args, sizeof args, "--json '%s'",
             test_shared_path("fixtures/logits/tiny-f32.gguf"));
    struct run r = run_inspect(args);
    assert_int_equal(r.status, 0);
    cJSON *root = cJSON_Parse(r.out);
    assert_non_null(root);
    assert_int_equal(cJSON_GetObjectItem(root, "version")->valuedouble, 3);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(root, "runnable")));
    cJSON *tensors = cJSON_GetObjectItem(root, "tensors");
    assert_int_equal(cJSON_GetArraySize(tensors), 21);
    cJSON *t0 = cJSON_GetArrayItem(tensors, 0);
    assert_string_equal(cJSON_GetObjectItem(t0, "type")->valuestring, "F32");
    cJSON *metadata = cJSON_GetObjectItem(root, "metadata");
    int found = 0;
    cJSON *kv;
    cJSON_ArrayForEach(kv, metadata)
    {
        const char *key = cJSON_GetObjectItem(kv, "key")->valuestring;
        if (strcmp(key, "tokenizer.ggml.tokens") != 0)
            continue;
        found = 1;
        assert_int_equal(cJSON_GetObjectItem(kv, "count")->valuedouble,
                         32000);
        assert_int_equal(
            cJSON_GetArraySize(cJSON_GetObjectItem(kv, "values")), 16);
    }
    assert_true(found);
    cJSON *totals = cJSON_GetObjectItem(root, "totals");
    assert_int_equal(cJSON_GetObjectItem(totals, "parameters")->valuedouble,
                     4170048);
    cJSON_Delete(root);
    run_free(&r);
}

/* A llama file with a tensor type roj has no kernels for. */
static void inspect_unsupported_type(void **state)
{
    (void)state;
    static uint8_t q2_k[84];
    char path[4200], args[4300];
    gguf_writer *w = NULL;

    snprintf(path, sizeof path, "%s/q2k.gguf", test_tmpdir());
    assert_int_equal(gguf_writer_create(&w), ROJ_OK);
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "qwen2"),
                     ROJ_OK);
    assert_int_equal(gguf_writer_add_tensor(w, "blk.0.w", ROJ_TYPE_Q2_K, 1,
                                            (int64_t[]){256}, q2_k,
                                            sizeof q2_k), ROJ_OK);
    assert_int_equal(gguf_writer_write(w, path), ROJ_OK);
    gguf_writer_free(w);

    snprintf(args, sizeof args, "--json '%s'", path);
    struct run r = run_inspect(args);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "tensor 'blk.0.w' has type Q2_K, which "
                                  "roj cannot compute with"));
    cJSON *root = cJSON_Parse(r.out);
    assert_non_null(root);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(root, "runnable")));
    assert_non_null(strstr(cJSON_GetObjectItem(root, "reason")->valuestring,
                           "Q2_K"));
    cJSON_Delete(root);
    run_free(&r);
}

static void inspect_usage_errors(void **state)
{
    (void)state;
    struct run r = run_inspect("");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "missing FILE"));
    run_free(&r);
    r = run_inspect("--frobnicate x.gguf");
    assert_int_equal(r.status, 2);
    assert_non_null(strstr(r.err, "unknown option '--frobnicate'"));
    run_free(&r);
    r = run_inspect("--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "--no-tensors"));
    run_free(&r);
    r = run_inspect("/nonexistent/file.gguf");
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "/nonexistent/file.gguf: cannot open"));
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(inspect_runnable_model),
        cmocka_unit_test(inspect_vocab_not_runnable),
        cmocka_unit_test(inspect_json_fields),
        cmocka_unit_test(inspect_unsupported_type),
        cmocka_unit_test(inspect_usage_errors),
    };
    return test_run_group(tests, NULL, NULL);
}
