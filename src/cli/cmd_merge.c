/*
 * roj merge BASE.gguf ADAPTER.gguf[:SCALE] ... --out MERGED.gguf: writes a
 * standalone model with LoRA adapters folded into its weights.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "core/threadpool.h"
#include "model/lora.h"
#include "quant/qtypes.h"

bool cli_split_lora_arg(const char *arg, char **path, float *scale)
{
    const char *colon = strrchr(arg, ':');
    size_t len = strlen(arg);

    *scale = 1.0f;
    if (colon && colon[1]) {
        char *end = NULL;
        errno = 0;
        float value = strtof(colon + 1, &end);
        /* "dir:1/a.gguf" keeps its colon: only a full number is a SCALE. */
        if (*end == '\0' && errno == 0 && isfinite(value)) {
            *scale = value;
            len = (size_t)(colon - arg);
        }
    }
    if (len == 0)
        return false;
    *path = strndup(arg, len);
    return *path != NULL;
}

/* Returns whether a and b are the same existing file. */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > 8 ? 8 : (int)n;
}

static bool parse_type(const char *name, enum roj_type *type)
{
    static const struct {
        const char *name;
        enum roj_type type;
    } types[] = {{"same", ROJ_TYPE_COUNT}, {"f32", ROJ_TYPE_F32},
                 {"f16", ROJ_TYPE_F16}, {"q8_0", ROJ_TYPE_Q8_0}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(name, types[i].name)) {
            *type = types[i].type;
            return true;
        }
    return false;
}

int cmd_merge(int argc, char **argv)
{
    const char *out = NULL, *type_name = "same";
    int32_t n_threads = 0;
    cli_strings args = {0};
    const cli_option options[] = {
        {"-o", "--out", CLI_STRING, &out, "FILE",
         "merged GGUF to write (required)"},
        {NULL, "--type", CLI_STRING, &type_name, "TYPE",
         "type of the changed tensors: f32, f16, q8_0 or same (each "
         "tensor's type in BASE; default same)"},
        {"-t", "--threads", CLI_INT, &n_threads, "N",
         "worker threads for dequantizing and quantizing; 0 = one per "
         "core, up to 8 (default 0)"},
    };
    const cli_command cmd = {
        .name = "merge",
        .usage = "BASE.gguf ADAPTER.gguf[:SCALE] ... --out MERGED.gguf "
                 "[options]",
        .summary = "Write MERGED.gguf: BASE.gguf with each LoRA adapter "
                   "added to the weights it\nchanges, W' = W + SCALE * "
                   "alpha / rank * B A (SCALE alone when the adapter's\n"
                   "alpha is 0; SCALE defaults to 1). Every other tensor "
                   "and every metadata key\nis copied; roj.merge.adapters "
                   "lists the adapters and scales.",
        .options = options,
        .n_options = sizeof options / sizeof options[0],
        .epilog = "The output is written to MERGED.gguf.tmp and renamed "
                  "when complete.",
        .positional = &args,
    };
    char **paths = NULL;
    float *scales = NULL;
    enum roj_type type;
    roj_pool *pool = NULL;
    size_t n = 0;
    int rc = cli_parse(&cmd, argc, argv);

    if (rc >= 0)
        goto done;
    rc = CLI_EXIT_USAGE;
    if (args.n < 2) {
        cli_usage_error("merge", "missing BASE.gguf or ADAPTER.gguf");
        goto done;
    }
    if (!out) {
        cli_usage_error("merge", "missing --out MERGED.gguf");
        goto done;
    }
    if (!parse_type(type_name, &type)) {
        cli_usage_error("merge", "--type '%s' is not f32, f16, q8_0 or "
                        "same", type_name);
        goto done;
    }
    if (cli_check_ctx_threads("merge", 0, n_threads) >= 0)
        goto done;
    n = args.n - 1;
    paths = calloc(n, sizeof *paths);
    scales = calloc(n, sizeof *scales);
    if (!paths || !scales) {
        rc = CLI_EXIT_RUNTIME;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (!cli_split_lora_arg(args.items[i + 1], &paths[i], &scales[i])) {
            cli_usage_error("merge", "invalid adapter argument '%s'; give "
                            "FILE or FILE:SCALE", args.items[i + 1]);
            goto done;
        }
    }
    for (size_t i = 0; i <= n; i++) {
        const char *in = i == 0 ? args.items[0] : paths[i - 1];
        if (same_file(in, out)) {
            cli_usage_error("merge", "--out %s is the input file %s; give "
                            "a new file name", out, in);
            goto done;
        }
    }

    cli_log_setup(false);
    rc = CLI_EXIT_RUNTIME;
    if (n_threads == 0)
        n_threads = default_threads();
    if (pool_create(n_threads, &pool) != ROJ_OK) {
        cli_runtime_error("merge", "cannot start the worker threads");
        goto done;
    }
    double t0 = cli_now_ms();
    if (lora_merge(args.items[0], (const char *const *)paths, scales, n, out,
                   type, pool) != ROJ_OK) {
        cli_runtime_error("merge", "merging failed");
        goto done;
    }
    fprintf(stderr, "roj merge: wrote %s (%zu adapter%s) in %.1f ms\n", out,
            n, n == 1 ? "" : "s", cli_now_ms() - t0);
    rc = CLI_EXIT_OK;

done:
    pool_destroy(pool);
    for (size_t i = 0; paths && i < n; i++)
        free(paths[i]);
    free(paths);
    free(scales);
    cli_free_lists(&cmd);
    return rc;
}
