/* Helpers shared by the roj subcommands: a table-driven option parser with
 * generated --help text, a progress bar on stderr, human-readable sizes,
 * clocks and process statistics. Everything here is for the command-line
 * program only and is not thread-safe. */
#ifndef ROJ_CLI_CLI_UTIL_H
#define ROJ_CLI_CLI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "roj/context.h"
#include "roj/model.h"
#include "roj/sampler.h"

/* Exit statuses of every command. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_RUNTIME 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_INTERRUPTED 130 /* 128 + SIGINT, as shells report it */

/* What an option's value is parsed into (the type behind cli_option.dest). */
typedef enum cli_kind {
    CLI_FLAG,     /* bool, set to true; takes no value */
    CLI_FLAG_OFF, /* bool, set to false; takes no value */
    CLI_INT,      /* int32_t */
    CLI_I64,      /* int64_t */
    CLI_FLOAT,    /* float */
    CLI_STRING,   /* const char *, pointing into argv */
    CLI_STRINGS,  /* cli_strings: repeatable, each use adds one */
    CLI_INTS      /* cli_ints: comma-separated list, repeatable */
} cli_kind;

/* Growing list of strings pointing into argv. */
typedef struct cli_strings {
    const char **items;
    size_t n;
} cli_strings;

/* Growing list of integers. The command may point items at default
 * values it owns (not freed here); the first use of the option replaces
 * them with a new array, and later uses append. */
typedef struct cli_ints {
    int32_t *items;
    size_t n;
    bool user_set;
} cli_ints;

/* One option: "-x" and/or "--long" names, the variable it sets and its
 * help line (say what it sets, its unit and its default). */
typedef struct cli_option {
    const char *short_name; /* "-n" or NULL */
    const char *long_name;  /* "--n-predict" or NULL */
    cli_kind kind;
    void *dest;
    const char *value_name; /* "N", "FILE"; ignored for flags */
    const char *help;
} cli_option;

/* Number of options that cli_nats_auth_options writes. */
#define CLI_NATS_AUTH_OPTIONS 8

struct natsx_options;

/* Writes the NATS credential options (--user, --password, --token,
 * --creds, --nkey, --tls-ca, --tls-cert, --tls-key), which set the fields
 * of nats, into out[0 .. CLI_NATS_AUTH_OPTIONS). */
void cli_nats_auth_options(struct natsx_options *nats, cli_option *out);

/* Description of a command for the parser and its --help output. */
typedef struct cli_command {
    const char *name;     /* "generate" */
    const char *usage;    /* "-m FILE -p TEXT [options]" */
    const char *summary;  /* one or more lines printed after usage */
    const cli_option *options;
    size_t n_options;
    const char *epilog;   /* printed after the options; may be NULL */
    cli_strings *positional; /* non-option arguments; NULL: rejected */
} cli_command;

/*
 * Parses argv[1..argc) against cmd's options (argv[0] is the command
 * name). Values may follow as the next argument or after "=" for long
 * names. Returns -1 when parsing succeeded and the command should run,
 * CLI_EXIT_OK after printing --help to stdout, and CLI_EXIT_USAGE after
 * printing a one-line hint to stderr (unknown option, missing or invalid
 * value, stray argument). Lists are freed with cli_free_lists().
 */
int cli_parse(const cli_command *cmd, int argc, char **argv);

/* Frees the arrays that cli_parse() allocated for the CLI_STRINGS and
 * CLI_INTS options of cmd. */
void cli_free_lists(const cli_command *cmd);

/* Prints cmd's usage line, summary, options and epilog to out. */
void cli_print_help(const cli_command *cmd, FILE *out);

/* Prints "roj NAME: MESSAGE\nRun 'roj NAME --help' ..." to stderr and
 * returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "roj NAME: WHAT: <roj_last_error()>" to stderr and returns
 * CLI_EXIT_RUNTIME. */
int cli_runtime_error(const char *name, const char *what);

/* Prints "roj NAME: write error on standard output: <strerror>" and
 * returns CLI_EXIT_RUNTIME when flushing stdout fails or an earlier write
 * to it failed; otherwise returns rc. Call it before exiting after
 * writing to stdout. */
int cli_finish_stdout(const char *name, int rc);

/* Flushes stdout; returns false when that or an earlier write failed,
 * keeping the first errno for cli_finish_stdout(). */
bool cli_flush_stdout(void);

/* Writes len bytes to stdout and flushes them, for streamed output.
 * Returns false when this or an earlier write failed (EPIPE with SIGPIPE
 * ignored, ENOSPC), keeping the first errno. */
bool cli_write_stdout(const char *text, size_t len);

/* errno of the first failed write or flush of stdout, 0 while none. */
int cli_stdout_errno(void);

/* Prints "roj NAME: write error on standard output: <strerror>" once per
 * process when a write failed; returns whether one did. */
bool cli_report_stdout_error(const char *name);

/* Checks -c (>= 0) and -t (0..256). Returns -1 when both are valid, else
 * prints a usage error naming the option and returns CLI_EXIT_USAGE. */
int cli_check_ctx_threads(const char *name, int32_t n_ctx,
                          int32_t n_threads);

/* Sampling options shared by generate and chat, with llama.cpp's names
 * and defaults. */
typedef struct cli_sampling {
    float temp;
    int32_t top_k;
    float top_p;
    float min_p;
    float repeat_penalty;
    int32_t repeat_last_n;
    float frequency_penalty;
    float presence_penalty;
    int64_t seed; /* -1: a new random seed per run */
} cli_sampling;

#define CLI_SAMPLING_N_OPTIONS 9

/* Checks the ranges of the sampling options: --temp >= 0, --top-k >= 0,
 * --top-p in (0, 1], --min-p in [0, 1], --repeat-penalty > 0 and
 * --repeat-last-n in 0..1048576. Returns -1 when all are valid, else prints a
 * usage error naming the option and returns CLI_EXIT_USAGE. */
int cli_sampling_check(const char *name, const cli_sampling *s);

/* Fills s with the defaults of roj_sampler_default_params() and seed -1. */
void cli_sampling_defaults(cli_sampling *s);

/* Writes the CLI_SAMPLING_N_OPTIONS options that set s into out and
 * returns how many it wrote. */
size_t cli_sampling_options(cli_sampling *s, cli_option *out);

/* Converts s to sampler parameters; a seed of -1 becomes a seed taken from
 * the clock and the process id. */
roj_sampler_params cli_sampler_params(const cli_sampling *s);

/*
 * Opens the model at path and a context of n_ctx positions (0: the
 * model's, up to 4096), n_threads workers (0: one per core, up to 8) and
 * n_batch tokens per decode. Sets *load_ms to the wall time of both.
 * On failure prints "roj NAME: cannot load model PATH: <error>" (the path
 * once) and returns CLI_EXIT_RUNTIME; on success returns CLI_EXIT_OK and
 * the caller frees *ctx and then *model. Warns on stderr when the context
 * is larger than the model's training context.
 */
int cli_model_load(const char *name, const char *path, int32_t n_ctx,
                   int32_t n_threads, int32_t n_batch, roj_model **model,
                   roj_context **ctx, double *load_ms);

/* Prints "roj NAME: WHAT PATH: MESSAGE" to stderr, leaving out PATH when
 * MESSAGE already contains it. */
void cli_path_error(const char *name, const char *what, const char *path,
                    const char *message);

/* Sets the library log level: warnings by default, debug with verbose. */
void cli_log_setup(bool verbose);

/* Monotonic clock in milliseconds. */
double cli_now_ms(void);

/* Formats bytes as "512 B", "1.50 KiB", "3.25 MiB", "1.02 GiB" into buf
 * (cap bytes) and returns buf. */
char *cli_format_size(uint64_t bytes, char *buf, size_t cap);

/* Formats a parameter count as llama.cpp does: "4.17 M", "135.15 M",
 * "1.10 B". Returns buf. */
char *cli_format_params(uint64_t n, char *buf, size_t cap);

/* Peak resident set size of this process in bytes (VmHWM from
 * /proc/self/status), or 0 when it cannot be read. */
uint64_t cli_peak_rss(void);

/* Reads a whole file into a new NUL-terminated buffer the caller frees;
 * *len (may be NULL) excludes the NUL. Returns NULL with errno set on
 * failure. */
char *cli_read_file(const char *path, size_t *len);

/* CPU model name from /proc/cpuinfo into buf, "unknown" when absent. */
char *cli_cpu_name(char *buf, size_t cap);

/*
 * Progress bar on stderr: "label [=====>    ]  42%  12.3 MiB/s  ETA 0:05".
 * On a terminal it redraws in place at most ten times a second; otherwise
 * only the final line is printed. Units are bytes when bytes is true
 * (rates print as sizes per second), items otherwise.
 */
typedef struct cli_progress {
    const char *label;
    uint64_t total;
    bool bytes;
    bool tty;
    double start_ms;
    double drawn_ms;
} cli_progress;

void cli_progress_start(cli_progress *p, const char *label, uint64_t total,
                        bool bytes);
void cli_progress_update(cli_progress *p, uint64_t done);
/* Draws the bar at 100% and ends its line. */
void cli_progress_finish(cli_progress *p);

#endif
