/*
 * roj bench: prompt-processing and generation speed, llama-bench style.
 *
 * The tests are those of llama.cpp's llama-bench:
 *   ppN      evaluate N tokens from an empty cache in batches of -b tokens
 *   tgN      evaluate N tokens one at a time from an empty cache
 *   ppN+tgM  both, one after the other (-pg N,M)
 * Tokens are random ids (BOS first when the vocab has one); nothing is
 * sampled. Each test runs once as a warmup (pp: one batch, tg: one token),
 * then -r times; a sample is (n_prompt + n_gen) tokens / wall time. The
 * JSON fields use llama-bench's names and meanings.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "gguf/gguf.h"
#include "kernels/kernels.h"
#include "roj/context.h"
#include "roj/model.h"

enum bench_format { FORMAT_MD, FORMAT_JSON, FORMAT_CSV };

struct bench_opts {
    cli_strings models;
    cli_ints n_prompt;
    cli_ints n_gen;
    cli_strings pg;
    cli_ints threads;
    int32_t reps;
    int32_t n_batch;
    int32_t n_ubatch;
    const char *output;
    enum bench_format format;
    bool no_warmup;
    bool verbose;
};

/* Model facts printed with every result. */
struct model_info {
    const char *filename;
    char type[96];         /* "llama 4M all F32", llama-bench's model_type */
    uint64_t size;         /* bytes of tensor data */
    uint64_t n_params;
    uint64_t kv_bytes_per_pos; /* K and V cache bytes per position */
};

/* One test and its timings. */
struct test_result {
    int32_t n_prompt;
    int32_t n_gen;
    int32_t n_threads;
    int32_t n_reps;
    int32_t n_ubatch;   /* as the context chose it */
    double *samples_ns; /* (n_reps) wall time of each run in ns */
    char time[32];      /* start, ISO 8601 UTC */
};

/* Names of llama.cpp's general.file_type values (llama_model_ftype_name). */
static const char *ftype_name(int64_t ftype)
{
    switch (ftype) {
    case 0: return "all F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K - Medium";
    case 11: return "Q3_K - Small";
    case 12: return "Q3_K - Medium";
    case 13: return "Q3_K - Large";
    case 14: return "Q4_K - Small";
    case 15: return "Q4_K - Medium";
    case 16: return "Q5_K - Small";
    case 17: return "Q5_K - Medium";
    case 18: return "Q6_K";
    case 32: return "BF16";
    default: return "unknown type";
    }
}

static void describe_model(const roj_model *m, const char *path,
                           struct model_info *info)
{
    gguf_file *file = NULL;
    uint32_t ftype = UINT32_MAX;
    uint64_t n = roj_model_n_params(m);
    int32_t head_dim = roj_model_n_embd(m) / roj_model_n_head(m);
    char size_label[16];

    /* The library has no getter for general.file_type; read it here. */
    if (gguf_open(path, &file) == ROJ_OK) {
        if (gguf_get_u32(file, "general.file_type", &ftype) != ROJ_OK)
            ftype = UINT32_MAX;
        gguf_close(file);
    }
    /* NOTE: llama.cpp names the size from a per-architecture table of
     * known shapes ("7B", or "?B"); roj rounds the parameter count. */
    if (n >= 1000000000ull)
        snprintf(size_label, sizeof size_label, "%.1fB", (double)n / 1e9);
    else
        snprintf(size_label, sizeof size_label, "%.0fM", (double)n / 1e6);
    info->filename = path;
    snprintf(info->type, sizeof info->type, "%s %s %s", roj_model_arch(m),
             size_label, ftype_name(ftype == UINT32_MAX ? -1 : (int64_t)ftype));
    info->size = roj_model_size(m);
    info->n_params = n;
    info->kv_bytes_per_pos = 2ull * sizeof(uint16_t) * roj_model_n_layer(m) *
                             roj_model_n_head_kv(m) * head_dim;
}

/* ------------------------------------------------------------------ */
/* Running tests */

/* Deterministic token ids (64-bit LCG); the ids do not change the speed. */
static roj_token next_token(uint64_t *state, int32_t n_vocab)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (roj_token)((*state >> 33) % (uint64_t)n_vocab);
}

static roj_status run_prompt(roj_context *ctx, int32_t n_prompt,
                             int32_t n_batch, uint64_t *rng)
{
    const roj_model *model = roj_context_model(ctx);
    int32_t n_vocab = roj_model_n_vocab(model);
    roj_token bos = roj_vocab_bos(roj_model_vocab(model));
    roj_token *tokens = malloc((size_t)n_batch * sizeof *tokens);
    roj_status st = ROJ_OK;

    if (!tokens)
        return ROJ_ERR_NOMEM;
    for (int32_t done = 0; done < n_prompt && st == ROJ_OK;) {
        int32_t n = n_prompt - done < n_batch ? n_prompt - done : n_batch;
        roj_batch batch = {.n_tokens = n, .tokens = tokens};
        for (int32_t i = 0; i < n; i++)
            tokens[i] = next_token(rng, n_vocab);
        if (done == 0 && bos != ROJ_TOKEN_NULL)
            tokens[0] = bos;
        st = roj_decode(ctx, &batch);
        done += n;
    }
    free(tokens);
    return st;
}

static roj_status run_gen(roj_context *ctx, int32_t n_gen, uint64_t *rng)
{
    const roj_model *model = roj_context_model(ctx);
    int32_t n_vocab = roj_model_n_vocab(model);
    roj_token token = roj_vocab_bos(roj_model_vocab(model));
    roj_status st = ROJ_OK;

    if (token == ROJ_TOKEN_NULL)
        token = next_token(rng, n_vocab);
    for (int32_t i = 0; i < n_gen && st == ROJ_OK; i++) {
        roj_batch batch = {.n_tokens = 1, .tokens = &token};
        st = roj_decode(ctx, &batch);
        token = next_token(rng, n_vocab);
    }
    return st;
}

/* Runs one test (warmup, then n_reps timed runs) on a new context sized
 * n_prompt + n_gen, as llama-bench does, and fills r->samples_ns. */
static int run_test(const struct bench_opts *o, roj_model *model,
                    struct test_result *r)
{
    roj_context_params cp = roj_context_default_params();
    roj_context *ctx = NULL;
    uint64_t rng = 0x5EEDull;
    roj_status st = ROJ_OK;

    cp.n_ctx = r->n_prompt + r->n_gen;
    cp.n_batch = o->n_batch;
    cp.n_ubatch = o->n_ubatch;
    cp.n_threads = r->n_threads;
    if (roj_context_create(model, &cp, &ctx) != ROJ_OK)
        return cli_runtime_error("bench", "cannot create a context");
    r->n_ubatch = roj_context_n_ubatch(ctx);

    if (!o->no_warmup && r->n_prompt > 0)
        st = run_prompt(ctx, r->n_prompt < o->n_batch ? r->n_prompt
                                                      : o->n_batch,
                        o->n_batch, &rng);
    if (!o->no_warmup && st == ROJ_OK && r->n_gen > 0) {
        roj_seq_truncate(ctx, 0, 0);
        st = run_gen(ctx, 1, &rng);
    }
    for (int32_t rep = 0; rep < r->n_reps && st == ROJ_OK; rep++) {
        double t0;
        roj_seq_truncate(ctx, 0, 0);
        t0 = cli_now_ms();
        if (r->n_prompt > 0)
            st = run_prompt(ctx, r->n_prompt, o->n_batch, &rng);
        if (st == ROJ_OK && r->n_gen > 0)
            st = run_gen(ctx, r->n_gen, &rng);
        r->samples_ns[rep] = (cli_now_ms() - t0) * 1e6;
    }
    roj_context_free(ctx);
    if (st != ROJ_OK)
        return cli_runtime_error("bench", "decode failed");
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* Output */

/* Mean and sample standard deviation (n - 1), as llama-bench computes. */
static void mean_stddev(const double *x, int n, double *mean, double *sd)
{
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++)
        sum += x[i];
    *mean = n ? sum / n : 0;
    for (int i = 0; i < n; i++)
        sq += (x[i] - *mean) * (x[i] - *mean);
    *sd = n > 1 ? sqrt(sq / (n - 1)) : 0;
}

static void test_name(const struct test_result *r, char *buf, size_t cap)
{
    if (r->n_prompt > 0 && r->n_gen > 0)
        snprintf(buf, cap, "pp%d+tg%d", r->n_prompt, r->n_gen);
    else if (r->n_prompt > 0)
        snprintf(buf, cap, "pp%d", r->n_prompt);
    else
        snprintf(buf, cap, "tg%d", r->n_gen);
}

static const char *backend_name(void)
{
    static char name[32];
    snprintf(name, sizeof name, "CPU %s", kern_isa());
    return name;
}

static void print_md_header(void)
{
    printf("| %-30s | %10s | %10s | %-12s | %7s | %13s | %20s |\n", "model",
           "size", "params", "backend", "threads", "test", "t/s");
    printf("| %.30s | %.9s: | %.9s: | %.12s | %.6s: | %.12s: | %.19s: |\n",
           "------------------------------", "----------", "----------",
           "------------", "-------", "-------------",
           "--------------------");
}

static void print_md_row(const struct model_info *m,
                         const struct test_result *r, const double *ts)
{
    char size[32], params[32], test[32], speed[48];
    double mean, sd;

    mean_stddev(ts, r->n_reps, &mean, &sd);
    test_name(r, test, sizeof test);
    snprintf(speed, sizeof speed, "%.2f ± %.2f", mean, sd);
    /* "±" is two bytes in UTF-8, so pad the column by one more. */
    printf("| %-30s | %10s | %10s | %-12s | %7d | %13s | %21s |\n", m->type,
           cli_format_size(m->size, size, sizeof size),
           cli_format_params(m->n_params, params, sizeof params),
           backend_name(), r->n_threads, test, speed);
}

static cJSON *number_array(const double *x, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(round(x[i])));
    return a;
}

/* Builds one llama-bench style record; the caller deletes it. */
static cJSON *result_json(const struct bench_opts *o,
                          const struct model_info *m,
                          const struct test_result *r, const double *ts)
{
    cJSON *j = cJSON_CreateObject();
    char cpu[256];
    double avg_ns, sd_ns, avg_ts, sd_ts;

    mean_stddev(r->samples_ns, r->n_reps, &avg_ns, &sd_ns);
    mean_stddev(ts, r->n_reps, &avg_ts, &sd_ts);
    cJSON_AddStringToObject(j, "build_commit", "roj-" ROJ_VERSION_STRING);
    cJSON_AddStringToObject(j, "cpu_info", cli_cpu_name(cpu, sizeof cpu));
    cJSON_AddStringToObject(j, "gpu_info", "");
    cJSON_AddStringToObject(j, "backends", "CPU");
    cJSON_AddStringToObject(j, "isa", kern_isa());
    cJSON_AddStringToObject(j, "model_filename", m->filename);
    cJSON_AddStringToObject(j, "model_type", m->type);
    cJSON_AddNumberToObject(j, "model_size", (double)m->size);
    cJSON_AddNumberToObject(j, "model_n_params", (double)m->n_params);
    cJSON_AddNumberToObject(j, "n_batch", o->n_batch);
    cJSON_AddNumberToObject(j, "n_ubatch", r->n_ubatch);
    cJSON_AddNumberToObject(j, "n_threads", r->n_threads);
    cJSON_AddStringToObject(j, "type_k", "f16");
    cJSON_AddStringToObject(j, "type_v", "f16");
    cJSON_AddNumberToObject(j, "n_gpu_layers", 0);
    cJSON_AddBoolToObject(j, "flash_attn", 0);
    cJSON_AddBoolToObject(j, "use_mmap", 1);
    cJSON_AddBoolToObject(j, "embeddings", 0);
    cJSON_AddNumberToObject(j, "n_prompt", r->n_prompt);
    cJSON_AddNumberToObject(j, "n_gen", r->n_gen);
    cJSON_AddStringToObject(j, "test_time", r->time);
    cJSON_AddNumberToObject(j, "avg_ns", round(avg_ns));
    cJSON_AddNumberToObject(j, "stddev_ns", round(sd_ns));
    cJSON_AddNumberToObject(j, "avg_ts", avg_ts);
    cJSON_AddNumberToObject(j, "stddev_ts", sd_ts);
    cJSON_AddItemToObject(j, "samples_ns", number_array(r->samples_ns,
                                                        r->n_reps));
    cJSON_AddItemToObject(j, "samples_ts", cJSON_CreateDoubleArray(
                                               ts, r->n_reps));
    return j;
}

static void print_csv_header(void)
{
    printf("model_filename,model_type,model_size,model_n_params,isa,"
           "n_batch,n_threads,n_prompt,n_gen,test_time,avg_ns,stddev_ns,"
           "avg_ts,stddev_ts\n");
}

static void print_csv_row(const struct bench_opts *o,
                          const struct model_info *m,
                          const struct test_result *r, const double *ts)
{
    double avg_ns, sd_ns, avg_ts, sd_ts;

    mean_stddev(r->samples_ns, r->n_reps, &avg_ns, &sd_ns);
    mean_stddev(ts, r->n_reps, &avg_ts, &sd_ts);
    printf("\"%s\",\"%s\",%llu,%llu,%s,%d,%d,%d,%d,%s,%.0f,%.0f,%.6f,%.6f\n",
           m->filename, m->type, (unsigned long long)m->size,
           (unsigned long long)m->n_params, kern_isa(), o->n_batch,
           r->n_threads, r->n_prompt, r->n_gen, r->time, avg_ns, sd_ns,
           avg_ts, sd_ts);
}

static void print_result(const struct bench_opts *o,
                         const struct model_info *m,
                         const struct test_result *r)
{
    static bool header_done;
    double ts[r->n_reps > 0 ? r->n_reps : 1];
    cJSON *j;
    char *line;

    /* The header comes with the first result, so a failure before any
     * test leaves stdout empty. */
    if (!header_done && o->format == FORMAT_MD)
        print_md_header();
    else if (!header_done && o->format == FORMAT_CSV)
        print_csv_header();
    header_done = true;

    for (int i = 0; i < r->n_reps; i++)
        ts[i] = (r->n_prompt + r->n_gen) * 1e9 / r->samples_ns[i];
    switch (o->format) {
    case FORMAT_MD:
        print_md_row(m, r, ts);
        break;
    case FORMAT_CSV:
        print_csv_row(o, m, r, ts);
        break;
    case FORMAT_JSON:
        j = result_json(o, m, r, ts);
        line = j ? cJSON_PrintUnformatted(j) : NULL;
        if (line)
            printf("%s\n", line);
        free(line);
        cJSON_Delete(j);
        break;
    }
}

/* ------------------------------------------------------------------ */
/* Command */

/* Benchmarks one model over every thread count and test. */
static int bench_model(const struct bench_opts *o, const char *path)
{
    roj_model *model = NULL;
    struct model_info info = {0};
    struct test_result r = {.n_reps = o->reps};
    size_t n_tests = o->n_prompt.n + o->n_gen.n + o->pg.n;
    int32_t max_ctx = 0;
    int rc = CLI_EXIT_OK;

    if (roj_model_open(path, &model) != ROJ_OK) {
        cli_path_error("bench", "cannot load model", path, roj_last_error());
        return CLI_EXIT_RUNTIME;
    }
    describe_model(model, path, &info);
    r.samples_ns = calloc((size_t)o->reps, sizeof *r.samples_ns);
    if (!r.samples_ns) {
        roj_model_free(model);
        return CLI_EXIT_RUNTIME;
    }

    for (size_t t = 0; t < o->threads.n && rc == CLI_EXIT_OK; t++) {
        for (size_t i = 0; i < n_tests && rc == CLI_EXIT_OK; i++) {
            size_t first_pg = o->n_prompt.n + o->n_gen.n;
            time_t now = time(NULL);

            r.n_threads = o->threads.items[t];
            r.n_prompt = i < o->n_prompt.n ? o->n_prompt.items[i] : 0;
            r.n_gen = i >= o->n_prompt.n && i < first_pg
                          ? o->n_gen.items[i - o->n_prompt.n] : 0;
            if (i >= first_pg)
                sscanf(o->pg.items[i - first_pg], "%d,%d", &r.n_prompt,
                       &r.n_gen);
            if (r.n_prompt <= 0 && r.n_gen <= 0)
                continue;
            if (r.n_prompt + r.n_gen > max_ctx)
                max_ctx = r.n_prompt + r.n_gen;
            strftime(r.time, sizeof r.time, "%Y-%m-%dT%H:%M:%SZ",
                     gmtime(&now));
            rc = run_test(o, model, &r);
            if (rc == CLI_EXIT_OK)
                print_result(o, &info, &r);
            /* Stop at a write error; cli_finish_stdout() reports it. */
            if (rc == CLI_EXIT_OK && !cli_flush_stdout())
                rc = CLI_EXIT_RUNTIME;
        }
    }
    if (o->verbose) {
        char rss[32], data[32], kv[32];
        fprintf(stderr, "roj bench: %s: peak RSS %s, tensor data %s, "
                "largest KV cache %s (%d positions)\n", path,
                cli_format_size(cli_peak_rss(), rss, sizeof rss),
                cli_format_size(info.size, data, sizeof data),
                cli_format_size(info.kv_bytes_per_pos * (uint64_t)max_ctx,
                                kv, sizeof kv), max_ctx);
    }
    free(r.samples_ns);
    roj_model_free(model);
    return rc;
}

/* Checks the option values; prints a hint and returns false when one is
 * invalid. */
static bool check_opts(struct bench_opts *o)
{
    bool any_test = false;

    if (!o->models.n) {
        cli_usage_error("bench", "missing -m FILE");
        return false;
    }
    if (!strcmp(o->output, "md")) {
        o->format = FORMAT_MD;
    } else if (!strcmp(o->output, "json") || !strcmp(o->output, "jsonl")) {
        o->format = FORMAT_JSON;
    } else if (!strcmp(o->output, "csv")) {
        o->format = FORMAT_CSV;
    } else {
        cli_usage_error("bench", "-o must be md, json, jsonl or csv, not "
                        "'%s'", o->output);
        return false;
    }
    if (o->reps < 1 || o->reps > 1000 || o->n_batch < 1 ||
        o->n_batch > 65536 || o->n_ubatch < 0 || o->n_ubatch > 65536) {
        cli_usage_error("bench", "-r must be in 1..1000, -b in 1..65536 "
                        "and -ub in 0..65536");
        return false;
    }
    for (size_t i = 0; i < o->threads.n; i++) {
        if (o->threads.items[i] < 1 || o->threads.items[i] > 256) {
            cli_usage_error("bench", "-t values must be in 1..256");
            return false;
        }
    }
    for (size_t i = 0; i < o->n_prompt.n + o->n_gen.n; i++) {
        int32_t v = i < o->n_prompt.n ? o->n_prompt.items[i]
                                      : o->n_gen.items[i - o->n_prompt.n];
        if (v < 0 || v > 1 << 20) {
            cli_usage_error("bench", "-p and -n values must be in "
                            "0..1048576");
            return false;
        }
    }
    for (size_t i = 0; i < o->pg.n; i++) {
        int pp, tg;
        char end;
        if (sscanf(o->pg.items[i], "%d,%d%c", &pp, &tg, &end) != 2 ||
            pp < 0 || tg < 0 || pp > 1 << 20 || tg > 1 << 20) {
            cli_usage_error("bench", "-pg takes PP,TG, not '%s'",
                            o->pg.items[i]);
            return false;
        }
        if (pp > 0 || tg > 0)
            any_test = true;
    }
    for (size_t i = 0; i < o->n_prompt.n + o->n_gen.n; i++)
        if ((i < o->n_prompt.n ? o->n_prompt.items[i]
                               : o->n_gen.items[i - o->n_prompt.n]) > 0)
            any_test = true;
    if (!any_test) {
        cli_usage_error("bench", "no test to run: every -p, -n and -pg "
                        "value is 0");
        return false;
    }
    return true;
}

int cmd_bench(int argc, char **argv)
{
    static int32_t def_prompt[] = {512}, def_gen[] = {128};
    int32_t def_threads[1];
    struct bench_opts o = {
        .n_prompt = {def_prompt, 1, false},
        .n_gen = {def_gen, 1, false},
        .threads = {def_threads, 1, false},
        .reps = 5,
        .n_batch = 512,
        .n_ubatch = 0,
        .output = "md",
    };
    const cli_option opts[] = {
        {"-m", "--model", CLI_STRINGS, &o.models, "FILE",
         "GGUF model to measure; repeatable"},
        {"-p", "--n-prompt", CLI_INTS, &o.n_prompt, "N[,N...]",
         "prompt lengths of the pp tests in tokens; 0 = none (default 512)"},
        {"-n", "--n-gen", CLI_INTS, &o.n_gen, "N[,N...]",
         "generated tokens of the tg tests; 0 = none (default 128)"},
        {"-pg", NULL, CLI_STRINGS, &o.pg, "PP,TG",
         "a test of PP prompt tokens then TG generated ones; repeatable"},
        {"-t", "--threads", CLI_INTS, &o.threads, "N[,N...]",
         "worker thread counts to test (default: the number of cores)"},
        {"-r", "--repetitions", CLI_INT, &o.reps, "N",
         "timed runs of each test (default 5)"},
        {"-b", "--batch-size", CLI_INT, &o.n_batch, "N",
         "tokens per decode call in pp tests (default 512)"},
        {"-ub", "--ubatch-size", CLI_INT, &o.n_ubatch, "N",
         "tokens computed at once inside a decode call; 0 = as small as "
         "keeps the scratch under 1% of the model (default 0)"},
        {"-o", "--output", CLI_STRING, &o.output, "FORMAT",
         "md (a table), csv, or json and jsonl, which are the same: one "
         "JSON object per line per test, not a JSON array (default md)"},
        {NULL, "--no-warmup", CLI_FLAG, &o.no_warmup, NULL,
         "skip the untimed warmup run of each test"},
        {"-v", "--verbose", CLI_FLAG, &o.verbose, NULL,
         "print library logs and the peak resident memory on stderr"},
    };
    const cli_command cmd = {
        .name = "bench",
        .usage = "-m FILE [options]",
        .summary = "Measure prompt processing (pp) and generation (tg) "
                   "speed in tokens per\nsecond, as llama.cpp's llama-bench "
                   "does, on random token ids.",
        .options = opts,
        .n_options = sizeof opts / sizeof opts[0],
        .epilog = "Each test runs on a new context of n_prompt + n_gen "
                  "positions with an F16\nKV cache. t/s is the mean over "
                  "the runs, ± the sample standard deviation.",
    };
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int rc;

    def_threads[0] = cores < 1 ? 1 : (int32_t)cores;
    if (def_threads[0] > 8)
        def_threads[0] = 8;
    rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0)
        goto done;
    rc = CLI_EXIT_USAGE;
    if (!check_opts(&o))
        goto done;
    cli_log_setup(o.verbose);

    rc = CLI_EXIT_OK;
    for (size_t i = 0; i < o.models.n && rc == CLI_EXIT_OK; i++)
        rc = bench_model(&o, o.models.items[i]);
    rc = cli_finish_stdout("bench", rc);

done:
    cli_free_lists(&cmd);
    return rc;
}
