/*
 * roj quantize IN.gguf OUT.gguf TYPE [NTHREADS]: converts a model to
 * another tensor type with llama-quantize's per-tensor rules, printing
 * one progress line per tensor on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/commands.h"
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

static void print_help(FILE *out)
{
    char types[512];
    quant_ftype_list(types, 256);
    wrap_list(types);
    fprintf(out,
            "usage: roj quantize [OPTIONS] IN.gguf OUT.gguf TYPE [NTHREADS]\n"
            "\n"
            "Writes OUT.gguf with the tensors of IN.gguf converted to TYPE.\n"
            "Every metadata key is kept; general.file_type and\n"
            "general.quantization_version are set. The mixes give attn_v,\n"
            "ffn_down and the output tensor more bits where llama.cpp does,\n"
            "tensors whose rows do not fit a K-quant block fall back to a\n"
            "32-element type, and norms stay F32. The file is meant to match\n"
            "llama-quantize's byte for byte (checked for F16, Q8_0, Q4_0 and\n"
            "Q4_K_M). IN.gguf may have any type roj can read.\n"
            "\n"
            "TYPE: %s\n"
            "      (Q3_K, Q4_K and Q5_K mean the _M mixes)\n"
            "NTHREADS: worker threads, 1 to 256 (default: online CPUs)\n"
            "\n"
            "options:\n"
            "  --pure        give every quantized tensor TYPE itself; fails\n"
            "                on rows that do not fit TYPE's block size\n"
            "  -q, --quiet   print no progress lines\n"
            "  -h, --help    print this help\n",
            types);
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

int cmd_quantize(int argc, char **argv)
{
    const char *positional[4] = {NULL, NULL, NULL, NULL};
    int n_positional = 0;
    struct progress_state state = {false, 0, 0};
    quant_file_options opts = {default_threads(), false, print_progress,
                               &state};
    enum quant_ftype ftype;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            print_help(stdout);
            return 0;
        } else if (!strcmp(arg, "--pure")) {
            opts.pure = true;
        } else if (!strcmp(arg, "-q") || !strcmp(arg, "--quiet")) {
            state.quiet = true;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, "roj quantize: unknown option '%s' (see roj "
                    "quantize --help)\n", arg);
            return 2;
        } else if (n_positional < 4) {
            positional[n_positional++] = arg;
        } else {
            fprintf(stderr, "roj quantize: too many arguments ('%s')\n", arg);
            return 2;
        }
    }
    if (n_positional < 3) {
        print_help(stderr);
        return 2;
    }
    if (quant_ftype_parse(positional[2], &ftype) != ROJ_OK) {
        fprintf(stderr, "roj quantize: %s\n", roj_last_error());
        return 2;
    }
    if (positional[3]) {
        char *end = NULL;
        long n = strtol(positional[3], &end, 10);
        if (*end != '\0' || n < 1 || n > 256) {
            fprintf(stderr, "roj quantize: NTHREADS '%s' is not a number "
                    "from 1 to 256\n", positional[3]);
            return 2;
        }
        opts.n_threads = (int)n;
    }

    if (!state.quiet)
        fprintf(stderr, "roj quantize: %s -> %s as %s (ftype %d), %d "
                "thread%s\n", positional[0], positional[1],
                quant_ftype_name(ftype), (int)ftype, opts.n_threads,
                opts.n_threads == 1 ? "" : "s");
    double start = seconds_now();
    roj_status st = quant_quantize_file_ex(positional[0], positional[1],
                                           ftype, &opts);
    if (st != ROJ_OK) {
        fprintf(stderr, "roj quantize: %s\n", roj_last_error());
        return 1;
    }
    double seconds = seconds_now() - start;
    if (!state.quiet)
        fprintf(stderr, "roj quantize: wrote %s: %.2f MB -> %.2f MB in "
                "%.2f s (%.1f MB/s)\n", positional[1],
                (double)state.in_bytes / 1e6, (double)state.out_bytes / 1e6,
                seconds,
                seconds > 0 ? (double)state.in_bytes / 1e6 / seconds : 0.0);
    return 0;
}
