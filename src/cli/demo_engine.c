/*
 * roj demo --engine: build a model, quantize it and run it, with no
 * download.
 *
 * The demo writes a synthetic llama model with the seeded generator
 * (model/synth.h: random weights, so the text it generates is nonsense),
 * quantizes it to Q8_0 and Q4_K_M with the library, and runs a short
 * greedy generation from each file. It prints a table of file size, load
 * time and prompt and generation speed. The files are cached under
 * ${XDG_CACHE_HOME:-~/.cache}/roj/demo/ and reused by later runs.
 *
 * The generator copies its tokenizer from a vocabulary GGUF: --vocab FILE,
 * else llama.cpp's ggml-vocab-gpt-2.gguf from the shared fixtures
 * ($ROJ_SHARED_DIR, or a "shared" folder next to the source tree of this
 * build), else roj's built-in byte-level vocabulary (files then get a
 * "-builtin" suffix).
 */
#include <errno.h>
#include <math.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/demo.h"
#include "model/synth.h"
#include "quant/quantize_file.h"
#include "roj/context.h"
#include "roj/model.h"
#include "roj/sampler.h"
#include "tokenizer/vocab_builtin.h"

#define VOCAB_RELATIVE "fixtures/tokenizer/ggml-vocab-gpt-2.gguf"

struct demo_opts {
    const char *cache_dir;
    const char *vocab;
    const char *shape;
    const char *prompt;
    const char *write_f32;
    int32_t n_predict;
    int32_t n_threads;
    bool fresh;
    bool verbose;
};

/* The default demo shape: 4 layers of width 256 (rows fit the 256-value
 * K-quant blocks, so Q4_K_M really uses Q4_K and Q6_K) and a tied output:
 * about 16 M parameters (64 MB as F32) with the GPT-2 vocabulary, 3 M with
 * the built-in one. */
static const synth_shape demo_shape = {
    "demo", 4, 256, 4, 2, 768, 2048, 0, 10000.0f, 1e-5f, true,
    SYNTH_DEFAULT_SEED, NULL};

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

bool demo_make_dirs(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return false;
        *p = '/';
    }
    return mkdir(buf, 0755) == 0 || errno == EEXIST;
}

/* Formats "<dir>/<relative>" into out and returns whether it fits and
 * names an existing file. */
static bool try_path(char *out, size_t cap, const char *dir,
                     const char *relative)
{
    int len = snprintf(out, cap, "%s/%s", dir, relative);
    return len > 0 && (size_t)len < cap && file_exists(out);
}

/* Finds the GPT-2 vocabulary file; returns false when there is none. */
static bool find_vocab(const struct demo_opts *o, char *out, size_t cap)
{
    const char *env = getenv("ROJ_SHARED_DIR");
    char exe[PATH_MAX];
    ssize_t n;

    if (o->vocab) {
        snprintf(out, cap, "%s", o->vocab);
        return file_exists(out);
    }
    if (env && *env && try_path(out, cap, env, VOCAB_RELATIVE))
        return true;
    /* build/roj in the source tree: the shared folder is ../../shared. */
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        char *slash;
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        if (try_path(out, cap, exe, "../../shared/" VOCAB_RELATIVE))
            return true;
    }
    return try_path(out, cap, "..", "shared/" VOCAB_RELATIVE);
}

static bool choose_shape(const struct demo_opts *o, synth_shape *shape)
{
    if (!strcmp(o->shape, demo_shape.name)) {
        *shape = demo_shape;
        return true;
    }
    if (synth_preset(o->shape, shape) != ROJ_OK)
        return false;
    shape->n_vocab = 0; /* the vocabulary file decides */
    return true;
}

/* ------------------------------------------------------------------ */
/* Writing and quantizing, with a progress bar */

struct write_job {
    const char *path;
    const synth_shape *shape;
    roj_status status;
    char message[512]; /* the worker thread's roj_last_error() */
    volatile int done;
};

static void *write_thread(void *arg)
{
    struct write_job *job = arg;
    job->status = synth_write_model(job->path, job->shape);
    snprintf(job->message, sizeof job->message, "%s", roj_last_error());
    __atomic_store_n(&job->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Writes the F32 model, drawing the growth of path.tmp as progress. */
static int write_model(const char *path, const synth_shape *shape)
{
    struct write_job job = {path, shape, ROJ_OK, "", 0};
    /* The size is only for the progress bar: the vocabulary file's token
     * count is not read here, so GPT-2's 50257 is used instead. */
    uint32_t n_vocab = shape->vocab_path ? 50257 : vocab_builtin_n_tokens();
    uint64_t expected = 4 * synth_param_count(shape, n_vocab) +
                        (shape->vocab_path ? file_size(shape->vocab_path)
                                           : 0);
    char tmp[PATH_MAX + 8];
    cli_progress bar;
    pthread_t thread;

    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    cli_progress_start(&bar, "writing F32", expected, true);
    if (pthread_create(&thread, NULL, write_thread, &job) != 0) {
        fprintf(stderr, "roj demo: cannot start a thread\n");
        return CLI_EXIT_RUNTIME;
    }
    while (!__atomic_load_n(&job.done, __ATOMIC_ACQUIRE)) {
        cli_progress_update(&bar, file_size(tmp));
        usleep(50 * 1000);
    }
    pthread_join(thread, NULL);
    if (job.status != ROJ_OK) {
        fprintf(stderr, "\nroj demo: cannot write the synthetic model: %s\n",
                job.message);
        return CLI_EXIT_RUNTIME;
    }
    cli_progress_finish(&bar);
    return CLI_EXIT_OK;
}

struct quant_state {
    cli_progress bar;
    uint64_t done;
};

static void on_quant_progress(const quant_progress *p, void *user)
{
    struct quant_state *s = user;
    s->done += p->in_bytes;
    cli_progress_update(&s->bar, s->done);
}

static int quantize_model(const char *in, const char *out,
                          enum quant_ftype ftype, int n_threads)
{
    struct quant_state s = {0};
    quant_file_options qo = {0};
    char label[32];

    snprintf(label, sizeof label, "quantizing %s", quant_ftype_name(ftype));
    cli_progress_start(&s.bar, label, file_size(in), true);
    qo.n_threads = n_threads;
    qo.progress = on_quant_progress;
    qo.user = &s;
    if (quant_quantize_file_ex(in, out, ftype, &qo) != ROJ_OK)
        return cli_runtime_error("demo", "quantization failed");
    cli_progress_finish(&s.bar);
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------ */
/* Running each file */

struct demo_row {
    const char *type;
    uint64_t size;
    double load_ms;
    double prompt_ts;
    double gen_ts;
    char *text;
};

/* Bans every token whose text is not printable ASCII, so that the random
 * model's output is readable; most byte tokens of a byte-level vocabulary
 * would otherwise decode to U+FFFD. */
static roj_status ban_unprintable(const roj_model *model, roj_sampler *s)
{
    const roj_vocab *vocab = roj_model_vocab(model);
    const int32_t n = roj_model_n_vocab(model);
    float *bias = calloc((size_t)n, sizeof *bias);
    int32_t allowed = 0;
    if (!bias)
        return ROJ_ERR_NOMEM;
    for (int32_t id = 0; id < n; id++) {
        char piece[64];
        size_t len = 0;
        bool ok = id < roj_vocab_n_tokens(vocab) &&
                  roj_token_to_piece(vocab, id, 0, piece, sizeof piece,
                                     &len) == ROJ_OK &&
                  len > 0 && len <= sizeof piece;
        for (size_t i = 0; ok && i < len; i++)
            ok = piece[i] >= 0x20 && piece[i] < 0x7f;
        bias[id] = ok ? 0.0f : -INFINITY;
        allowed += ok;
    }
    roj_status st = allowed > 0 ? roj_sampler_set_logit_bias(s, bias, n)
                                : ROJ_OK;
    free(bias);
    return st;
}

static int run_file(const struct demo_opts *o, const char *path,
                    struct demo_row *row)
{
    roj_model *model = NULL;
    roj_context *ctx = NULL;
    roj_sampler *sampler = NULL;
    roj_streamer *streamer = NULL;
    roj_sampler_params sp = roj_sampler_default_params();
    roj_streamer_params stp = {.max_tokens = o->n_predict};
    roj_generate_result r = {0};

    /* Greedy decoding of a random model repeats one token; sampling with
     * a fixed seed shows varied but reproducible text. */
    sp.seed = 42;
    roj_token *tokens = NULL;
    size_t n_tokens = 0;
    int rc;

    rc = cli_model_load("demo", path, 512, o->n_threads, 0, &model, &ctx,
                        &row->load_ms);
    if (rc != CLI_EXIT_OK)
        return rc;
    rc = CLI_EXIT_RUNTIME;
    if (roj_tokenize(roj_model_vocab(model), o->prompt, strlen(o->prompt),
                     ROJ_TOKENIZE_ADD_SPECIAL, &tokens, &n_tokens) ||
        roj_sampler_create(&sp, roj_model_n_vocab(model), &sampler) ||
        ban_unprintable(model, sampler) ||
        roj_streamer_create(roj_model_vocab(model), &stp, &streamer) ||
        /* Untimed pass: it pages the memory-mapped weights in. */
        roj_decode_tokens(ctx, 0, tokens, n_tokens) ||
        roj_seq_truncate(ctx, 0, 0) ||
        roj_generate(ctx, 0, tokens, n_tokens, sampler, streamer, &r)) {
        rc = cli_runtime_error("demo", path);
        goto cleanup;
    }
    row->size = file_size(path);
    row->prompt_ts = r.prompt_ms > 0 ? r.n_prompt * 1e3 / r.prompt_ms : 0;
    row->gen_ts = r.generate_ms > 0 ? r.n_generated * 1e3 / r.generate_ms
                                    : 0;
    row->text = strdup(roj_streamer_text(streamer, NULL));
    rc = CLI_EXIT_OK;

cleanup:
    free(tokens);
    roj_streamer_free(streamer);
    roj_sampler_free(sampler);
    roj_context_free(ctx);
    roj_model_free(model);
    return rc;
}

static void print_table(const struct demo_row *rows, size_t n,
                        const struct demo_opts *o)
{
    printf("\nPrompt: \"%s\"\n%d tokens from each file, sampled "
           "(temperature 0.8, seed 42) from\nprintable ASCII tokens only "
           "(random weights, so the text is nonsense).\nLoad time is the "
           "mmap and checks; speeds are measured after one untimed\npass "
           "over the prompt.\n\n", o->prompt, o->n_predict);
    for (size_t i = 0; i < n; i++)
        printf("%-7s %s\n", rows[i].type, rows[i].text ? rows[i].text : "");
    printf("\n| %-7s | %10s | %9s | %11s | %15s |\n", "type", "size",
           "load ms", "prompt t/s", "generation t/s");
    printf("| %.7s | %.9s: | %.8s: | %.10s: | %.14s: |\n", "----------",
           "----------", "----------", "-----------", "---------------");
    for (size_t i = 0; i < n; i++) {
        char size[32];
        printf("| %-7s | %10s | %9.1f | %11.1f | %15.1f |\n", rows[i].type,
               cli_format_size(rows[i].size, size, sizeof size),
               rows[i].load_ms, rows[i].prompt_ts, rows[i].gen_ts);
    }
}

/* Writes the F32 model if needed, then the quantized files, then runs
 * each and prints the table. */
static int demo_run(const struct demo_opts *o, synth_shape *shape,
                    const char *stem)
{
    static const struct {
        const char *label;
        const char *suffix;
        enum quant_ftype ftype;
    } types[] = {
        {"F32", "f32", QUANT_FTYPE_ALL_F32},
        {"Q8_0", "q8_0", QUANT_FTYPE_Q8_0},
        {"Q4_K_M", "q4_k_m", QUANT_FTYPE_Q4_K_M},
    };
    enum { N_TYPES = sizeof types / sizeof types[0] };
    struct demo_row rows[N_TYPES] = {{0}};
    char paths[N_TYPES][PATH_MAX];
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int quant_threads = o->n_threads;
    int rc = CLI_EXIT_OK;

    if (quant_threads <= 0)
        quant_threads = cores < 1 ? 1 : (int)(cores > 8 ? 8 : cores);

    if (!demo_make_dirs(o->cache_dir)) {
        fprintf(stderr, "roj demo: cannot create the cache folder %s: %s\n",
                o->cache_dir, strerror(errno));
        return CLI_EXIT_RUNTIME;
    }
    for (size_t i = 0; i < N_TYPES; i++)
        snprintf(paths[i], sizeof paths[i], "%s/%s-%s.gguf", o->cache_dir,
                 stem, types[i].suffix);

    for (size_t i = 0; i < N_TYPES && rc == CLI_EXIT_OK; i++) {
        if (file_exists(paths[i]) && !o->fresh) {
            fprintf(stderr, "roj demo: using cached %s\n", paths[i]);
            continue;
        }
        if (i == 0)
            rc = write_model(paths[0], shape);
        else
            rc = quantize_model(paths[0], paths[i], types[i].ftype,
                                quant_threads);
    }
    for (size_t i = 0; i < N_TYPES && rc == CLI_EXIT_OK; i++) {
        rows[i].type = types[i].label;
        rc = run_file(o, paths[i], &rows[i]);
    }
    if (rc == CLI_EXIT_OK)
        print_table(rows, N_TYPES, o);
    for (size_t i = 0; i < N_TYPES; i++)
        free(rows[i].text);
    return rc;
}

int demo_engine_main(int argc, char **argv)
{
    struct demo_opts o = {
        .shape = demo_shape.name,
        .prompt = "Once upon a time, in a small village by the sea, there "
                  "lived an old fisherman who",
        .n_predict = 32,
    };
    const cli_option opts[] = {
        {NULL, "--cache-dir", CLI_STRING, &o.cache_dir, "DIR",
         "folder of the model files (default "
         "${XDG_CACHE_HOME:-~/.cache}/roj/demo)"},
        {NULL, "--vocab", CLI_STRING, &o.vocab, "FILE",
         "GGUF whose tokenizer the model gets, or 'builtin' for roj's own "
         "byte-level vocabulary (default: ggml-vocab-gpt-2.gguf of the "
         "shared fixtures when found, else builtin)"},
        {NULL, "--shape", CLI_STRING, &o.shape, "NAME",
         "model shape: demo, tiny, smollm2-135m-shape or "
         "qwen-0.5b-shape; the vocabulary size is the --vocab file's "
         "(default demo)"},
        {"-p", "--prompt", CLI_STRING, &o.prompt, "TEXT",
         "prompt of each generation"},
        {"-n", "--n-predict", CLI_INT, &o.n_predict, "N",
         "tokens generated from each file (default 32)"},
        {"-t", "--threads", CLI_INT, &o.n_threads, "N",
         "worker threads; 0 = one per core, up to 8 (default 0)"},
        {NULL, "--fresh", CLI_FLAG, &o.fresh, NULL,
         "write and quantize the files again even if cached"},
        {NULL, "--write-f32", CLI_STRING, &o.write_f32, "FILE",
         "only write the F32 model of --shape to FILE and exit"},
        {"-v", "--verbose", CLI_FLAG, &o.verbose, NULL,
         "print library logs on stderr"},
    };
    const cli_command cmd = {
        .name = "demo",
        .usage = "--engine [options]",
        .summary = "Write a synthetic model (seeded random weights), "
                   "quantize it to Q8_0 and\nQ4_K_M, generate a few tokens "
                   "with each file and compare size and speed.",
        .options = opts,
        .n_options = sizeof opts / sizeof opts[0],
        .epilog = "Progress goes to stderr, the table to stdout. Nothing "
                  "is downloaded.",
    };
    char vocab[PATH_MAX], cache[PATH_MAX], stem[96];
    synth_shape shape;
    bool builtin;
    int rc = cli_parse(&cmd, argc, argv);

    if (rc >= 0)
        return rc;
    if (o.n_predict < 1)
        return cli_usage_error("demo", "-n must be >= 1, not %d",
                               o.n_predict);
    if (cli_check_ctx_threads("demo", 0, o.n_threads) >= 0)
        return CLI_EXIT_USAGE;
    if (!choose_shape(&o, &shape))
        return cli_usage_error("demo", "unknown --shape '%s'", o.shape);
    cli_log_setup(o.verbose);
    builtin = o.vocab && !strcmp(o.vocab, "builtin");
    if (!builtin && !find_vocab(&o, vocab, sizeof vocab)) {
        if (o.vocab) {
            fprintf(stderr, "roj demo: vocabulary file %s not found\n",
                    o.vocab);
            return CLI_EXIT_RUNTIME;
        }
        builtin = true;
    }
    if (builtin)
        fprintf(stderr, "roj demo: using the built-in byte-level "
                "vocabulary\n");
    shape.vocab_path = builtin ? NULL : vocab;
    snprintf(stem, sizeof stem, "%s%s", shape.name,
             builtin ? "-builtin" : "");

    if (o.write_f32) {
        rc = write_model(o.write_f32, &shape);
    } else {
        if (!o.cache_dir)
            o.cache_dir = demo_default_cache_dir(cache, sizeof cache);
        rc = demo_run(&o, &shape, stem);
    }
    return rc;
}
