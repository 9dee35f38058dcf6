/*
 * roj quantize IN.gguf OUT.gguf TYPE [NTHREADS]: converts a model to
 * another tensor type with llama-quantize's per-tensor rules, printing
 * one progress line per tensor on stderr.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "gguf/gguf.h"
#include "quant/qtypes.h"
#include "quant/quantize_file.h"
#include "roj/roj.h"

struct progress_state {
    bool quiet;
    uint64_t in_bytes;
    uint64_t out_bytes;
};

/* Breaks the comma-separated list in place so lines stay under 72
 * columns after the 6-column "TYPE: " prefix. */
static void wrap_list(char *list)
{
    int column = 6;
    for (char *p = list; *p; p++, column++) {
        if (*p == ' ' && p > list && p[-1] == ',' && column > 60) {
            *p = '\n';
            memmove(p + 7, p + 1, strlen(p + 1) + 1);
            memset(p + 1, ' ', 6);
            p += 6;
            column = 6;
        }
    }
}

static void print_progress(const quant_progress *p, void *user)
{
    struct progress_state *state = user;
    const double mb_in = (double)p->in_bytes / 1e6;
    const double mb_out = (double)p->out_bytes / 1e6;
    state->in_bytes += p->in_bytes;
    state->out_bytes += p->out_bytes;
    if (state->quiet)
        return;
    if (p->from_type == p->to_type) {
        fprintf(stderr, "[%4lld/%4lld] %-32s %-5s -> %-5s %9.2f MB copied\n",
                (long long)p->index, (long long)p->count, p->name,
                qtype_name(p->from_type), qtype_name(p->to_type), mb_out);
        return;
    }
    double rate = p->seconds > 0 ? mb_in / p->seconds : 0;
    fprintf(stderr, "[%4lld/%4lld] %-32s %-5s -> %-5s %9.2f -> %8.2f MB "
            "%8.1f MB/s\n", (long long)p->index, (long long)p->count, p->name,
            qtype_name(p->from_type), qtype_name(p->to_type), mb_in, mb_out,
            rate);
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > 256 ? 256 : (int)n;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* OUT.tmp, the file the writer fills before renaming it to OUT; a static
 * buffer so the signal handler can remove it. */
static char tmp_path[4096];

/* Removes OUT.tmp and exits 128 + sig; only async-signal-safe calls. */
static void on_signal(int sig)
{
    if (tmp_path[0])
        unlink(tmp_path);
    _exit(128 + sig);
}

/* Checks the paths before any work: the input is not the output (also
 * through a symlink or a hard link), the output's folder exists, and the
 * input has tensors. Returns CLI_EXIT_OK or prints why and returns
 * CLI_EXIT_RUNTIME. */
static int check_paths(const char *in, const char *out)
{
    struct stat in_st, out_st;
    char *folder = strdup(out), *slash;
    gguf_file *f = NULL;
    int rc = CLI_EXIT_RUNTIME;

    if (!folder)
        return CLI_EXIT_RUNTIME;
    if (stat(in, &in_st) != 0) {
        fprintf(stderr, "roj quantize: cannot open %s: %s\n", in,
                strerror(errno));
        goto cleanup;
    }
    if (stat(out, &out_st) == 0 && out_st.st_dev == in_st.st_dev &&
        out_st.st_ino == in_st.st_ino) {
        fprintf(stderr, "roj quantize: %s and %s are the same file; give a "
                "different OUT.gguf so the input is not replaced\n", in,
                out);
        goto cleanup;
    }
    slash = strrchr(folder, '/');
    if (slash) {
        struct stat dir_st;
        if (slash == folder)
            slash[1] = '\0';
        else
            *slash = '\0';
        if (stat(folder, &dir_st) != 0 || !S_ISDIR(dir_st.st_mode)) {
            fprintf(stderr, "roj quantize: the folder %s of %s does not "
                    "exist\n", folder, out);
            goto cleanup;
        }
    }
    if (gguf_open(in, &f) != ROJ_OK) {
        fprintf(stderr, "roj quantize: %s\n", roj_last_error());
        goto cleanup;
    }
    if (gguf_n_tensors(f) == 0) {
        fprintf(stderr, "roj quantize: %s has no tensors (a vocabulary-only "
                "file?); there is nothing to quantize\n", in);
        goto cleanup;
    }
    rc = CLI_EXIT_OK;

cleanup:
    gguf_close(f);
    free(folder);
    return rc;
}

/* Parses the arguments; returns -1 to run or the exit status. */
static int parse_args(int argc, char **argv, quant_file_options *opts,
                      struct progress_state *state, const char **in,
                      const char **out, enum quant_ftype *ftype)
{
    char types[512], epilog[1024];
    cli_strings args = {0};
    const cli_option options[] = {
        {NULL, "--pure", CLI_FLAG, &opts->pure, NULL,
         "give every quantized tensor TYPE itself; fails on rows that do "
         "not fit TYPE's block size (default: llama.cpp's mixes)"},
        {"-q", "--quiet", CLI_FLAG, &state->quiet, NULL,
         "print no progress lines (default: one line per tensor)"},
    };
    const cli_command cmd = {
        .name = "quantize",
        .usage = "[options] IN.gguf OUT.gguf TYPE [NTHREADS]",
        .summary =
            "Write OUT.gguf with the tensors of IN.gguf converted to TYPE. "
            "Every metadata\nkey is kept; general.file_type and "
            "general.quantization_version are set.\nThe mixes give attn_v, "
            "ffn_down and the output tensor more bits where\nllama.cpp "
            "does, tensors whose rows do not fit a K-quant block fall back "
            "to a\n32-element type, and norms stay F32. The file is meant "
            "to match\nllama-quantize's byte for byte (checked for F16, "
            "Q8_0, Q4_0 and Q4_K_M).\nIN.gguf may have any type roj can "
            "read.",
        .options = options,
        .n_options = sizeof options / sizeof options[0],
        .epilog = epilog,
        .positional = &args,
    };
    int rc;

    quant_ftype_list(types, 256);
    wrap_list(types);
    snprintf(epilog, sizeof epilog,
             "TYPE: %s\n      (Q3_K, Q4_K and Q5_K mean the _M mixes)\n"
             "NTHREADS: worker threads, 1 to 256 (default: online CPUs)\n\n"
             "The output is written to OUT.gguf.tmp and renamed when "
             "complete. Ctrl-C and\nSIGTERM remove OUT.gguf.tmp (exit "
             "130 and 143); a run killed with SIGKILL\nor a crash may "
             "leave it behind.", types);
    rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0)
        goto done;
    rc = CLI_EXIT_USAGE;
    if (args.n < 3) {
        cli_usage_error("quantize", "missing IN.gguf, OUT.gguf or TYPE");
        goto done;
    }
    if (args.n > 4) {
        cli_usage_error("quantize", "too many arguments ('%s')",
                        args.items[4]);
        goto done;
    }
    if (quant_ftype_parse(args.items[2], ftype) != ROJ_OK) {
        cli_usage_error("quantize", "%s", roj_last_error());
        goto done;
    }
    if (args.n == 4) {
        char *end = NULL;
        long n = strtol(args.items[3], &end, 10);
        if (end == args.items[3] || *end != '\0' || n < 1 || n > 256) {
            cli_usage_error("quantize", "NTHREADS '%s' is not a number "
                            "from 1 to 256", args.items[3]);
            goto done;
        }
        opts->n_threads = (int)n;
    }
    *in = args.items[0];
    *out = args.items[1];
    rc = -1;

done:
    cli_free_lists(&cmd);
    return rc;
}

int cmd_quantize(int argc, char **argv)
{
    struct progress_state state = {false, 0, 0};
    quant_file_options opts = {default_threads(), false, print_progress,
                               &state};
    const char *in = NULL, *out = NULL;
    enum quant_ftype ftype;
    struct sigaction sa;
    int rc = parse_args(argc, argv, &opts, &state, &in, &out, &ftype);

    if (rc >= 0)
        return rc;
    if (check_paths(in, out) != CLI_EXIT_OK)
        return CLI_EXIT_RUNTIME;
    if (snprintf(tmp_path, sizeof tmp_path, "%s.tmp", out) >=
        (int)sizeof tmp_path) {
        fprintf(stderr, "roj quantize: the output path is too long\n");
        return CLI_EXIT_RUNTIME;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (!state.quiet)
        fprintf(stderr, "roj quantize: %s -> %s as %s (ftype %d), %d "
                "thread%s\n", in, out, quant_ftype_name(ftype), (int)ftype,
                opts.n_threads, opts.n_threads == 1 ? "" : "s");
    double start = seconds_now();
    roj_status st = quant_quantize_file_ex(in, out, ftype, &opts);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    tmp_path[0] = '\0';
    if (st != ROJ_OK) {
        fprintf(stderr, "roj quantize: %s\n", roj_last_error());
        return CLI_EXIT_RUNTIME;
    }
    double seconds = seconds_now() - start;
    if (!state.quiet)
        fprintf(stderr, "roj quantize: wrote %s: %.2f MB -> %.2f MB in "
                "%.2f s (%.1f MB/s)\n", out,
                (double)state.in_bytes / 1e6, (double)state.out_bytes / 1e6,
                seconds,
                seconds > 0 ? (double)state.in_bytes / 1e6 / seconds : 0.0);
    return CLI_EXIT_OK;
}
