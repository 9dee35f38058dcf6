/*
 * Writes the input files of llm.c's CPU trainer (train_gpt2.c) for a
 * GPT-2 shape with random weights, so its speed can be measured without
 * the Python scripts that download GPT-2 and tokenize a corpus.
 *
 *   llmc_inputs [options] DIR
 *
 * writes DIR/model.bin (a checkpoint), DIR/train.bin and DIR/val.bin
 * (token files of random ids). The layouts follow train_gpt2.c and
 * llmc/dataloader.h of llm.c (commit f1e2ace, read 2026-12-04):
 *
 *   checkpoint: 256 int32 header {20240326, 3, max_seq_len, vocab_size,
 *     num_layers, num_heads, channels, padded_vocab_size, 0...}, then the
 *     float32 parameters of 16 tensors in this order, with Vp the padded
 *     vocabulary, T max_seq_len, L layers and C channels:
 *     wte (Vp, C), wpe (T, C), ln1w (L, C), ln1b (L, C),
 *     qkvw (L, 3C, C), qkvb (L, 3C), attprojw (L, C, C), attprojb (L, C),
 *     ln2w (L, C), ln2b (L, C), fcw (L, 4C, C), fcb (L, 4C),
 *     fcprojw (L, C, 4C), fcprojb (L, C), lnfw (C), lnfb (C).
 *   tokens: 256 int32 header {20240520, 1, n_tokens, 0...}, then n_tokens
 *     uint16 ids. The file size must match the header exactly.
 *
 * Matrices and embeddings get uniform values of standard deviation 0.02,
 * layer-norm gains 1 and biases 0; the padded rows of wte are 0 as in
 * llm.c's own export. Only the speed of training on these files is
 * meaningful, not the loss.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_INTS 256
#define MODEL_MAGIC 20240326
#define MODEL_VERSION 3 /* float32 parameters, padded vocabulary */
#define TOKENS_MAGIC 20240520
#define TOKENS_VERSION 1

typedef struct gpt2_shape {
    long max_seq_len, vocab, n_layer, n_head, n_embd, vocab_pad;
} gpt2_shape;

static uint64_t rng_state = 0x853c49e6748fea9bull;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Uniform on [-a, a) with a = 0.02 * sqrt(3), so the standard deviation
 * is 0.02. */
static float rng_weight(void)
{
    const double u = (double)(rng_next() >> 11) * 0x1.0p-53;
    return (float)((2.0 * u - 1.0) * 0.0346410161513775);
}

enum fill { FILL_RANDOM, FILL_ONE, FILL_ZERO };

/* Writes n floats of one kind to f; returns 0 or -1 on a write error. */
static int write_floats(FILE *f, size_t n, enum fill kind)
{
    float buf[4096];
    while (n > 0) {
        const size_t k = n < 4096 ? n : 4096;
        for (size_t i = 0; i < k; i++)
            buf[i] = kind == FILL_RANDOM ? rng_weight()
                     : kind == FILL_ONE  ? 1.0f
                                         : 0.0f;
        if (fwrite(buf, sizeof(float), k, f) != k)
            return -1;
        n -= k;
    }
    return 0;
}

static int write_header(FILE *f, const int32_t *first, int n_first)
{
    int32_t header[HEADER_INTS] = {0};
    memcpy(header, first, (size_t)n_first * sizeof(int32_t));
    return fwrite(header, sizeof header, 1, f) == 1 ? 0 : -1;
}

/* Writes the checkpoint; returns 0, or -1 after printing the error. */
static int write_model(const char *path, const gpt2_shape *s)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "llmc_inputs: failed to create %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    const int32_t first[8] = {MODEL_MAGIC,      MODEL_VERSION,
                              (int32_t)s->max_seq_len, (int32_t)s->vocab,
                              (int32_t)s->n_layer,     (int32_t)s->n_head,
                              (int32_t)s->n_embd,      (int32_t)s->vocab_pad};
    const size_t C = (size_t)s->n_embd, L = (size_t)s->n_layer;
    const size_t V = (size_t)s->vocab, Vp = (size_t)s->vocab_pad;
    const size_t T = (size_t)s->max_seq_len;

    /* The tensors in checkpoint order, each as (count, fill). */
    const struct {
        size_t n;
        enum fill kind;
    } parts[] = {
        {V * C, FILL_RANDOM},         {(Vp - V) * C, FILL_ZERO}, /* wte */
        {T * C, FILL_RANDOM},                                    /* wpe */
        {L * C, FILL_ONE},            {L * C, FILL_ZERO},        /* ln1 */
        {L * 3 * C * C, FILL_RANDOM}, {L * 3 * C, FILL_ZERO},    /* qkv */
        {L * C * C, FILL_RANDOM},     {L * C, FILL_ZERO},        /* attproj */
        {L * C, FILL_ONE},            {L * C, FILL_ZERO},        /* ln2 */
        {L * 4 * C * C, FILL_RANDOM}, {L * 4 * C, FILL_ZERO},    /* fc */
        {L * 4 * C * C, FILL_RANDOM}, {L * C, FILL_ZERO},        /* fcproj */
        {C, FILL_ONE},                {C, FILL_ZERO},            /* lnf */
    };
    int rc = write_header(f, first, 8);
    for (size_t i = 0; rc == 0 && i < sizeof parts / sizeof parts[0]; i++)
        rc = write_floats(f, parts[i].n, parts[i].kind);
    if (fclose(f) != 0)
        rc = -1;
    if (rc != 0)
        fprintf(stderr, "llmc_inputs: write to %s failed: %s\n", path,
                strerror(errno));
    return rc;
}

/* Writes n_tokens random ids below vocab; returns 0, or -1 after printing
 * the error. */
static int write_tokens(const char *path, long n_tokens, long vocab)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "llmc_inputs: failed to create %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    const int32_t first[3] = {TOKENS_MAGIC, TOKENS_VERSION,
                              (int32_t)n_tokens};
    int rc = write_header(f, first, 3);
    for (long i = 0; rc == 0 && i < n_tokens; i++) {
        const uint16_t id = (uint16_t)(rng_next() % (uint64_t)vocab);
        if (fwrite(&id, sizeof id, 1, f) != 1)
            rc = -1;
    }
    if (fclose(f) != 0)
        rc = -1;
    if (rc != 0)
        fprintf(stderr, "llmc_inputs: write to %s failed: %s\n", path,
                strerror(errno));
    return rc;
}

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: llmc_inputs [options] DIR\n"
            "Writes DIR/model.bin (llm.c GPT-2 checkpoint, random float32\n"
            "weights), DIR/train.bin and DIR/val.bin (llm.c token files of\n"
            "random ids). DIR must exist.\n"
            "  --layers N       transformer blocks (default 6)\n"
            "  --embd N         channels (default 384)\n"
            "  --heads N        attention heads (default 6)\n"
            "  --vocab N        vocabulary size, at most 65536 (default "
            "50257)\n"
            "  --max-seq N      max_seq_len, rows of wpe (default 256)\n"
            "  --train-tokens N tokens in train.bin (default 262145)\n"
            "  --val-tokens N   tokens in val.bin (default 65537)\n"
            "  --seed N         random seed (default 1)\n");
}

/* Parses a positive integer option value at most max; returns 0 or -1
 * after printing the error. */
static int parse_count(const char *name, const char *text, long max,
                       long *out)
{
    char *end = NULL;
    errno = 0;
    const long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1 || v > max) {
        fprintf(stderr,
                "llmc_inputs: invalid value '%s' for %s: expected an "
                "integer from 1 to %ld\n",
                text, name, max);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    gpt2_shape s = {.max_seq_len = 256, .vocab = 50257, .n_layer = 6,
                    .n_head = 6, .n_embd = 384};
    long n_train = 262145, n_val = 65537, seed = 1;
    const char *dir = NULL;

    /* Options: every one but --help takes a value. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            print_usage(stdout);
            return 0;
        }
        if (a[0] != '-') {
            if (dir) {
                fprintf(stderr, "llmc_inputs: unexpected argument '%s'\n",
                        a);
                return 2;
            }
            dir = a;
            continue;
        }
        long *dst = !strcmp(a, "--layers")         ? &s.n_layer
                    : !strcmp(a, "--embd")         ? &s.n_embd
                    : !strcmp(a, "--heads")        ? &s.n_head
                    : !strcmp(a, "--vocab")        ? &s.vocab
                    : !strcmp(a, "--max-seq")      ? &s.max_seq_len
                    : !strcmp(a, "--train-tokens") ? &n_train
                    : !strcmp(a, "--val-tokens")   ? &n_val
                    : !strcmp(a, "--seed")         ? &seed
                                                   : NULL;
        if (!dst) {
            fprintf(stderr, "llmc_inputs: unknown option '%s' (see "
                            "--help)\n", a);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "llmc_inputs: missing value for %s\n", a);
            return 2;
        }
        /* Token ids are stored as uint16; counts go into int32 fields. */
        const long max = dst == &s.vocab ? 65536 : 0x7fffffffL;
        if (parse_count(a, argv[++i], max, dst) != 0)
            return 2;
    }
    if (!dir) {
        print_usage(stderr);
        return 2;
    }
    if (s.n_embd % s.n_head != 0) {
        fprintf(stderr, "llmc_inputs: --embd %ld is not a multiple of "
                        "--heads %ld\n", s.n_embd, s.n_head);
        return 2;
    }

    /* llm.c's export pads the vocabulary to a multiple of 128. */
    s.vocab_pad = (s.vocab + 127) / 128 * 128;
    rng_state ^= (uint64_t)seed * 0x9E3779B97F4A7C15ull;

    char path[4096];
    snprintf(path, sizeof path, "%s/model.bin", dir);
    if (write_model(path, &s) != 0)
        return 1;
    snprintf(path, sizeof path, "%s/train.bin", dir);
    if (write_tokens(path, n_train, s.vocab) != 0)
        return 1;
    snprintf(path, sizeof path, "%s/val.bin", dir);
    if (write_tokens(path, n_val, s.vocab) != 0)
        return 1;
    return 0;
}
