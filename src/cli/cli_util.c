/* Option parsing, help text, progress bar and small process helpers shared
 * by the roj subcommands. */
#include "cli/cli_util.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nats/natsx.h"
#include "roj/roj.h"

/* ------------------------------------------------------------------ */
/* Option parsing */

static bool kind_takes_value(cli_kind kind)
{
    return kind != CLI_FLAG && kind != CLI_FLAG_OFF;
}

static const cli_option *find_option(const cli_command *cmd,
                                     const char *name, size_t len)
{
    for (size_t i = 0; i < cmd->n_options; i++) {
        const cli_option *o = &cmd->options[i];
        const char *names[2] = {o->short_name, o->long_name};
        for (int k = 0; k < 2; k++) {
            if (names[k] && strlen(names[k]) == len &&
                !strncmp(names[k], name, len))
                return o;
        }
    }
    return NULL;
}

static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool append_ints(cli_ints *list, const char *text)
{
    const char *p = text;

    if (!list->user_set) {
        /* The defaults belong to the command; drop them without freeing. */
        list->items = NULL;
        list->n = 0;
        list->user_set = true;
    }
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[32];
        int64_t v;
        int32_t *grown;

        if (len == 0 || len >= sizeof item)
            return false;
        memcpy(item, p, len);
        item[len] = '\0';
        if (!parse_i64(item, INT32_MIN, INT32_MAX, &v))
            return false;
        grown = realloc(list->items, (list->n + 1) * sizeof *grown);
        if (!grown)
            return false;
        list->items = grown;
        list->items[list->n++] = (int32_t)v;
        if (!comma)
            return true;
        p = comma + 1;
    }
}

static bool append_string(cli_strings *list, const char *text)
{
    const char **grown = realloc(list->items, (list->n + 1) * sizeof *grown);
    if (!grown)
        return false;
    list->items = grown;
    list->items[list->n++] = text;
    return true;
}

/* Stores value into o->dest; returns false when it does not parse. */
static bool store_value(const cli_option *o, const char *value)
{
    int64_t i64;
    char *end = NULL;
    float f;

    switch (o->kind) {
    case CLI_FLAG:
        *(bool *)o->dest = true;
        return true;
    case CLI_FLAG_OFF:
        *(bool *)o->dest = false;
        return true;
    case CLI_INT:
        if (!parse_i64(value, INT32_MIN, INT32_MAX, &i64))
            return false;
        *(int32_t *)o->dest = (int32_t)i64;
        return true;
    case CLI_I64:
        if (!parse_i64(value, INT64_MIN, INT64_MAX, &i64))
            return false;
        *(int64_t *)o->dest = i64;
        return true;
    case CLI_FLOAT:
        errno = 0;
        f = strtof(value, &end);
        if (errno || end == value || *end || !isfinite(f))
            return false;
        *(float *)o->dest = f;
        return true;
    case CLI_STRING:
        *(const char **)o->dest = value;
        return true;
    case CLI_STRINGS:
        return append_string(o->dest, value);
    case CLI_INTS:
        return append_ints(o->dest, value);
    }
    return false;
}

static bool is_help(const char *arg)
{
    return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

int cli_parse(const cli_command *cmd, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = NULL, *value = NULL;
        const cli_option *o;
        size_t name_len;

        if (is_help(arg)) {
            cli_print_help(cmd, stdout);
            return CLI_EXIT_OK;
        }
        if (arg[0] != '-' || arg[1] == '\0') {
            if (!cmd->positional)
                return cli_usage_error(cmd->name,
                                       "unexpected argument '%s'", arg);
            if (!append_string(cmd->positional, arg))
                return cli_usage_error(cmd->name, "out of memory");
            continue;
        }
        if (arg[1] == '-')
            eq = strchr(arg, '=');
        name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        o = find_option(cmd, arg, name_len);
        if (!o)
            return cli_usage_error(cmd->name, "unknown option '%.*s'",
                                   (int)name_len, arg);
        if (!kind_takes_value(o->kind)) {
            if (eq)
                return cli_usage_error(cmd->name,
                                       "option '%.*s' takes no value",
                                       (int)name_len, arg);
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return cli_usage_error(cmd->name, "option '%s' needs a value %s",
                                   arg, o->value_name ? o->value_name : "");
        }
        if (!store_value(o, value))
            return cli_usage_error(cmd->name,
                                   "invalid value '%s' for option '%.*s'",
                                   value ? value : "", (int)name_len, arg);
    }
    return -1;
}

void cli_free_lists(const cli_command *cmd)
{
    if (cmd->positional) {
        free(cmd->positional->items);
        cmd->positional->items = NULL;
        cmd->positional->n = 0;
    }
    for (size_t i = 0; i < cmd->n_options; i++) {
        const cli_option *o = &cmd->options[i];
        if (o->kind == CLI_STRINGS) {
            cli_strings *s = o->dest;
            free(s->items);
            s->items = NULL;
            s->n = 0;
        } else if (o->kind == CLI_INTS) {
            cli_ints *l = o->dest;
            if (l->user_set)
                free(l->items);
            l->items = NULL;
            l->n = 0;
            l->user_set = false;
        }
    }
}

/* Prints text from column HELP_INDENT, breaking lines at spaces so that
 * none passes HELP_WIDTH columns. */
static void print_wrapped(FILE *out, const char *text)
{
    enum { HELP_INDENT = 29, HELP_WIDTH = 79 };
    int col = HELP_INDENT;

    while (*text) {
        size_t word = strcspn(text, " ");
        if (col > HELP_INDENT && col + 1 + (int)word > HELP_WIDTH) {
            fprintf(out, "\n%*s", HELP_INDENT, "");
            col = HELP_INDENT;
        } else if (col > HELP_INDENT) {
            fputc(' ', out);
            col++;
        }
        fwrite(text, 1, word, out);
        col += (int)word;
        text += word;
        while (*text == ' ')
            text++;
    }
    fputc('\n', out);
}

void cli_print_help(const cli_command *cmd, FILE *out)
{
    fprintf(out, "usage: roj %s %s\n\n%s\n\noptions:\n", cmd->name,
            cmd->usage, cmd->summary);
    for (size_t i = 0; i < cmd->n_options; i++) {
        const cli_option *o = &cmd->options[i];
        char names[64];
        int len = snprintf(names, sizeof names, "%s%s%s%s%s",
                           o->short_name ? o->short_name : "",
                           o->short_name && o->long_name ? ", " : "",
                           o->long_name ? o->long_name : "",
                           kind_takes_value(o->kind) ? " " : "",
                           kind_takes_value(o->kind) ? o->value_name : "");
        if (len < 26)
            fprintf(out, "  %-26s ", names);
        else
            fprintf(out, "  %s\n  %-26s ", names, "");
        print_wrapped(out, o->help);
    }
    fprintf(out, "  %-26s %s\n", "-h, --help", "print this help and exit");
    if (cmd->epilog)
        fprintf(out, "\n%s\n", cmd->epilog);
}

int cli_usage_error(const char *name, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "roj %s: ", name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (run 'roj %s --help' for the options)\n", name);
    return CLI_EXIT_USAGE;
}

int cli_runtime_error(const char *name, const char *what)
{
    const char *msg = roj_last_error();
    fprintf(stderr, "roj %s: %s%s%s\n", name, what, *msg ? ": " : "", msg);
    return CLI_EXIT_RUNTIME;
}

/* errno of the first failed flush of stdout, 0 while none failed. */
static int stdout_errno;

bool cli_flush_stdout(void)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout))
        return true;
    if (!stdout_errno)
        stdout_errno = errno ? errno : EIO;
    return false;
}

bool cli_write_stdout(const char *text, size_t len)
{
    if (stdout_errno)
        return false;
    errno = 0;
    if (fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0)
        return true;
    stdout_errno = errno ? errno : EIO;
    return false;
}

int cli_stdout_errno(void)
{
    return stdout_errno;
}

bool cli_report_stdout_error(const char *name)
{
    static bool reported;
    if (!stdout_errno)
        return false;
    if (!reported)
        fprintf(stderr, "roj %s: write error on standard output: %s\n",
                name, strerror(stdout_errno));
    reported = true;
    return true;
}

int cli_finish_stdout(const char *name, int rc)
{
    cli_flush_stdout();
    return cli_report_stdout_error(name) ? CLI_EXIT_RUNTIME : rc;
}

int cli_check_ctx_threads(const char *name, int32_t n_ctx,
                          int32_t n_threads)
{
    if (n_ctx < 0)
        return cli_usage_error(name, "-c must be >= 0, not %d", n_ctx);
    if (n_threads < 0 || n_threads > 256)
        return cli_usage_error(name, "-t must be in 0..256, not %d",
                               n_threads);
    return -1;
}

void cli_path_error(const char *name, const char *what, const char *path,
                    const char *message)
{
    size_t len = strlen(path);

    if (!strncmp(message, path, len) && !strncmp(message + len, ": ", 2))
        fprintf(stderr, "roj %s: %s %s: %s\n", name, what, path,
                message + len + 2);
    else if (strstr(message, path))
        fprintf(stderr, "roj %s: %s: %s\n", name, what, message);
    else
        fprintf(stderr, "roj %s: %s %s: %s\n", name, what, path, message);
}

void cli_log_setup(bool verbose)
{
    roj_log_set(NULL, NULL, verbose ? ROJ_LOG_DEBUG : ROJ_LOG_WARN);
}

/* ------------------------------------------------------------------ */
/* Sampling options and model loading */

int cli_sampling_check(const char *name, const cli_sampling *s)
{
    if (!(s->temp >= 0.0f))
        return cli_usage_error(name, "--temp must be >= 0, not %g",
                               (double)s->temp);
    if (s->top_k < 0)
        return cli_usage_error(name, "--top-k must be >= 0, not %d",
                               s->top_k);
    if (!(s->top_p > 0.0f && s->top_p <= 1.0f))
        return cli_usage_error(name, "--top-p must be in (0, 1], not %g",
                               (double)s->top_p);
    if (!(s->min_p >= 0.0f && s->min_p <= 1.0f))
        return cli_usage_error(name, "--min-p must be in [0, 1], not %g",
                               (double)s->min_p);
    if (!(s->repeat_penalty > 0.0f))
        return cli_usage_error(name, "--repeat-penalty must be > 0, not %g",
                               (double)s->repeat_penalty);
    if (s->repeat_last_n < 0 || s->repeat_last_n > 1 << 20)
        return cli_usage_error(name, "--repeat-last-n must be in "
                               "0..1048576, not %d", s->repeat_last_n);
    return -1;
}

void cli_sampling_defaults(cli_sampling *s)
{
    roj_sampler_params d = roj_sampler_default_params();

    s->temp = d.temperature;
    s->top_k = d.top_k;
    s->top_p = d.top_p;
    s->min_p = d.min_p;
    s->repeat_penalty = d.repeat_penalty;
    s->repeat_last_n = d.penalty_last_n;
    s->frequency_penalty = d.frequency_penalty;
    s->presence_penalty = d.presence_penalty;
    s->seed = -1;
}

size_t cli_sampling_options(cli_sampling *s, cli_option *out)
{
    const cli_option opts[CLI_SAMPLING_N_OPTIONS] = {
        {NULL, "--temp", CLI_FLOAT, &s->temp, "T",
         "sampling temperature; 0 = greedy (default 0.8)"},
        {NULL, "--top-k", CLI_INT, &s->top_k, "N",
         "keep the N most likely tokens; 0 = off (default 40)"},
        {NULL, "--top-p", CLI_FLOAT, &s->top_p, "P",
         "keep the smallest set with probability >= P; 1 = off "
         "(default 0.95)"},
        {NULL, "--min-p", CLI_FLOAT, &s->min_p, "P",
         "drop tokens below P times the top probability; 0 = off "
         "(default 0.05)"},
        {NULL, "--repeat-penalty", CLI_FLOAT, &s->repeat_penalty, "X",
         "divide positive logits and multiply negative logits of recent "
         "tokens by X; 1 = off (default 1.0)"},
        {NULL, "--repeat-last-n", CLI_INT, &s->repeat_last_n, "N",
         "recent tokens the penalties look at (default 64)"},
        {NULL, "--frequency-penalty", CLI_FLOAT, &s->frequency_penalty, "X",
         "subtract X per occurrence in recent tokens; 0 = off (default 0)"},
        {NULL, "--presence-penalty", CLI_FLOAT, &s->presence_penalty, "X",
         "subtract X once from recent tokens; 0 = off (default 0)"},
        {NULL, "--seed", CLI_I64, &s->seed, "N",
         "random seed of the sampler; -1 = new each run (default -1)"},
    };
    memcpy(out, opts, sizeof opts);
    return CLI_SAMPLING_N_OPTIONS;
}

roj_sampler_params cli_sampler_params(const cli_sampling *s)
{
    roj_sampler_params p = roj_sampler_default_params();

    p.temperature = s->temp;
    p.top_k = s->top_k;
    p.top_p = s->top_p;
    p.min_p = s->min_p;
    p.repeat_penalty = s->repeat_penalty;
    p.penalty_last_n = s->repeat_last_n;
    p.frequency_penalty = s->frequency_penalty;
    p.presence_penalty = s->presence_penalty;
    if (s->seed < 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        p.seed = ((uint64_t)ts.tv_sec * 1000000007ull) ^
                 (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    } else {
        p.seed = (uint64_t)s->seed;
    }
    return p;
}

int cli_model_load(const char *name, const char *path, int32_t n_ctx,
                   int32_t n_threads, int32_t n_batch, roj_model **model,
                   roj_context **ctx, double *load_ms)
{
    roj_context_params cp = roj_context_default_params();
    double t0 = cli_now_ms();
    int32_t n_train;

    *model = NULL;
    *ctx = NULL;
    if (roj_model_open(path, model) != ROJ_OK) {
        cli_path_error(name, "cannot load model", path, roj_last_error());
        return CLI_EXIT_RUNTIME;
    }
    cp.n_ctx = n_ctx;
    cp.n_threads = n_threads;
    if (n_batch > 0)
        cp.n_batch = n_batch;
    if (roj_context_create(*model, &cp, ctx) != ROJ_OK) {
        cli_path_error(name, "cannot create a context for", path,
                       roj_last_error());
        roj_model_free(*model);
        *model = NULL;
        return CLI_EXIT_RUNTIME;
    }
    n_train = roj_model_n_ctx_train(*model);
    if (n_train > 0 && roj_context_n_ctx(*ctx) > n_train)
        fprintf(stderr, "roj %s: warning: the context of %d tokens is "
                "larger than the %d the model was trained on; output "
                "past %d tokens may be poor\n", name,
                roj_context_n_ctx(*ctx), n_train, n_train);
    *load_ms = cli_now_ms() - t0;
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* Clocks, sizes and process facts */

double cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

char *cli_format_size(uint64_t bytes, char *buf, size_t cap)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = -1;

    if (bytes < 1024) {
        snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    while (v >= 1024.0 && u < 3) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, cap, "%.2f %s", v, units[u]);
    return buf;
}

char *cli_format_params(uint64_t n, char *buf, size_t cap)
{
    if (n >= 1000000000ull)
        snprintf(buf, cap, "%.2f B", (double)n / 1e9);
    else if (n >= 1000000ull)
        snprintf(buf, cap, "%.2f M", (double)n / 1e6);
    else
        snprintf(buf, cap, "%.2f K", (double)n / 1e3);
    return buf;
}

uint64_t cli_peak_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kib = 0;

    if (!f)
        return 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmHWM: %llu kB", &kib) == 1)
            break;
    }
    fclose(f);
    return (uint64_t)kib * 1024;
}

char *cli_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t used = 0, cap = 0;

    if (!f)
        return NULL;
    for (;;) {
        size_t got;
        if (cap - used < 4096) {
            char *grown = realloc(buf, cap ? cap * 2 : 8192);
            if (!grown) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = grown;
            cap = cap ? cap * 2 : 8192;
        }
        got = fread(buf + used, 1, cap - used - 1, f);
        used += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        int saved = errno;
        free(buf);
        fclose(f);
        errno = saved ? saved : EIO;
        return NULL;
    }
    fclose(f);
    buf[used] = '\0';
    if (len)
        *len = used;
    return buf;
}

char *cli_cpu_name(char *buf, size_t cap)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];

    snprintf(buf, cap, "unknown");
    if (!f)
        return buf;
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !colon)
            continue;
        colon++;
        while (*colon == ' ' || *colon == '\t')
            colon++;
        colon[strcspn(colon, "\n")] = '\0';
        snprintf(buf, cap, "%s", colon);
        break;
    }
    fclose(f);
    return buf;
}

/* ------------------------------------------------------------------ */
/* Progress bar */

#define PROGRESS_WIDTH 24
#define PROGRESS_REDRAW_MS 100.0

void cli_progress_start(cli_progress *p, const char *label, uint64_t total,
                        bool bytes)
{
    p->label = label;
    p->total = total;
    p->bytes = bytes;
    p->tty = isatty(STDERR_FILENO) == 1;
    p->start_ms = cli_now_ms();
    p->drawn_ms = 0;
}

static void progress_draw(cli_progress *p, uint64_t done, bool final)
{
    double now = cli_now_ms(), secs = (now - p->start_ms) / 1e3;
    double frac = p->total ? (double)done / (double)p->total : 1.0;
    double rate = secs > 0 ? (double)done / secs : 0;
    char bar[PROGRESS_WIDTH + 1], rate_text[32], eta[32];
    int filled;

    if (frac > 1.0)
        frac = 1.0;
    filled = (int)(frac * PROGRESS_WIDTH);
    for (int i = 0; i < PROGRESS_WIDTH; i++)
        bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
    bar[PROGRESS_WIDTH] = '\0';
    if (p->bytes) {
        cli_format_size((uint64_t)rate, rate_text, sizeof rate_text - 2);
        strcat(rate_text, "/s");
    } else {
        snprintf(rate_text, sizeof rate_text, "%.1f/s", rate);
    }
    if (final) {
        snprintf(eta, sizeof eta, "in %.1f s", secs);
    } else if (done > 0 && rate > 0) {
        long left = (long)((double)(p->total - done) / rate + 0.5);
        snprintf(eta, sizeof eta, "ETA %ld:%02ld", left / 60, left % 60);
    } else {
        snprintf(eta, sizeof eta, "ETA --:--");
    }
    /* On a terminal: return to column 0 first and clear the rest of the
     * line after. */
    fprintf(stderr, "%s%-18s [%s] %3d%%  %s  %s%s", p->tty ? "\r" : "",
            p->label, bar, (int)(frac * 100.0 + 1e-9), rate_text, eta,
            p->tty ? "\033[K" : "");
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
    p->drawn_ms = now;
}

void cli_progress_update(cli_progress *p, uint64_t done)
{
    if (!p->tty)
        return;
    if (cli_now_ms() - p->drawn_ms < PROGRESS_REDRAW_MS)
        return;
    progress_draw(p, done, false);
}

void cli_progress_finish(cli_progress *p)
{
    progress_draw(p, p->total, true);
}

void cli_nats_auth_options(struct natsx_options *nats, cli_option *out)
{
    const cli_option auth[CLI_NATS_AUTH_OPTIONS] = {
        {NULL, "--user", CLI_STRING, &nats->user, "USER",
         "user name (default: $ROJ_NATS_USER)"},
        {NULL, "--password", CLI_STRING, &nats->password, "PASSWORD",
         "password (default: $ROJ_NATS_PASSWORD)"},
        {NULL, "--token", CLI_STRING, &nats->token, "TOKEN",
         "authentication token (default: $ROJ_NATS_TOKEN)"},
        {NULL, "--creds", CLI_STRING, &nats->creds_file, "FILE",
         "user JWT and seed file (default: $ROJ_NATS_CREDS)"},
        {NULL, "--nkey", CLI_STRING, &nats->nkey_file, "FILE",
         "NKey seed file (default: $ROJ_NATS_NKEY)"},
        {NULL, "--tls-ca", CLI_STRING, &nats->tls_ca_file, "FILE",
         "CA certificates to verify the servers (default: "
         "$ROJ_NATS_TLS_CA)"},
        {NULL, "--tls-cert", CLI_STRING, &nats->tls_cert_file, "FILE",
         "client certificate (default: $ROJ_NATS_TLS_CERT)"},
        {NULL, "--tls-key", CLI_STRING, &nats->tls_key_file, "FILE",
         "client certificate's key (default: $ROJ_NATS_TLS_KEY)"},
    };
    memcpy(out, auth, sizeof auth);
}
