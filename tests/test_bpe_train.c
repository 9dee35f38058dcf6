/* Byte-level BPE trainer: vocab size, special and added ids, determinism
 * across runs and thread counts, round trips through the trained vocab,
 * the GGUF keys, hand-checked merges and option errors. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "roj/tokenizer.h"
#include "train/bpe_train.h"
#include "train/bpe_train_internal.h"

#define N_DOCS 1200
#define VOCAB 700

static const char *const specials[] = {"<|endoftext|>", "<|pad|>"};
static const char *const labels[] = {"<label:refund>", "<label:card>",
                                     "<label:other>"};

/* A generated corpus: documents of sentences made of seeded pseudo-words,
 * with accents, CJK, emoji, digits and punctuation. */
typedef struct corpus {
    char **texts;
    size_t *lens;
    size_t n;
} corpus;

static const char *const syllables[] = {
    "ka", "ro", "mi", "tan", "se", "lo", "vu", "ne", "dra", "po", "li",
    "qu", "ess", "th", "ing", "er", "an", "ou", "é", "ü", "ña", "日", "本",
    "語", "🙂", "ok", "zz", "ba"};
#define N_SYLLABLES (sizeof syllables / sizeof syllables[0])

static const char *const punct[] = {".", ",", "!", "?", ";", " -", "'s",
                                    ":", " (x)", "..."};
#define N_PUNCT (sizeof punct / sizeof punct[0])

/* Appends a pseudo-word: common words are short and frequent. */
static void append_word(char *buf, size_t *len, uint64_t *rng)
{
    uint64_t r = test_rand_u64(rng);
    /* Skew towards a small set of words so that merges have support. */
    uint64_t word = (r % 100) < 70 ? r % 40 : r % 600;
    uint64_t seed = word * 0x9e3779b97f4a7c15ull + 1;
    int n_syll = 1 + (int)(word % 3);

    for (int i = 0; i < n_syll; i++) {
        const char *s = syllables[test_rand_u64(&seed) % N_SYLLABLES];
        memcpy(buf + *len, s, strlen(s));
        *len += strlen(s);
    }
}

static char *make_document(uint64_t *rng, size_t *out_len)
{
    char *buf = malloc(4096);
    size_t len = 0;
    int n_words = 5 + (int)(test_rand_u64(rng) % 25);

    assert_non_null(buf);
    for (int w = 0; w < n_words; w++) {
        uint64_t r = test_rand_u64(rng);
        if (w > 0)
            buf[len++] = r % 17 == 0 ? '\n' : ' ';
        if (r % 23 == 0)
            len += (size_t)sprintf(buf + len, "%u",
                                   (unsigned)(test_rand_u64(rng) % 5000));
        else
            append_word(buf, &len, rng);
        if (r % 7 == 0) {
            const char *p = punct[(r >> 8) % N_PUNCT];
            memcpy(buf + len, p, strlen(p));
            len += strlen(p);
        }
        if (r % 97 == 0)
            len += (size_t)sprintf(buf + len, " %s",
                                   labels[(r >> 16) % 3]);
    }
    len += (size_t)sprintf(buf + len, "<|endoftext|>");
    buf[len] = '\0';
    *out_len = len;
    return buf;
}

static corpus make_corpus(uint64_t seed, size_t n)
{
    corpus c = {calloc(n, sizeof(char *)), calloc(n, sizeof(size_t)), n};
    assert_non_null(c.texts);
    assert_non_null(c.lens);
    for (size_t i = 0; i < n; i++)
        c.texts[i] = make_document(&seed, &c.lens[i]);
    return c;
}

static void corpus_free(corpus *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->texts[i]);
    free(c->texts);
    free(c->lens);
}

static bpe_train_opts default_opts(int n_threads)
{
    bpe_train_opts o;
    memset(&o, 0, sizeof o);
    o.vocab_size = VOCAB;
    o.special = specials;
    o.n_special = 2;
    o.added = labels;
    o.n_added = 3;
    o.n_threads = n_threads;
    return o;
}

static bpe_trained *train_or_fail(const corpus *c, const bpe_train_opts *o)
{
    bpe_trained *t = NULL;
    roj_status st = bpe_train((const char *const *)c->texts, c->lens, c->n,
                              o, &t);
    if (st != ROJ_OK)
        fail_msg("bpe_train: %s", roj_last_error());
    return t;
}

/* Shared by the tests: one corpus, one tokenizer and its vocab. */
typedef struct fixture {
    corpus train;
    bpe_trained *trained;
    roj_vocab *vocab;
} fixture;

static int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->train = make_corpus(42, N_DOCS);
    bpe_train_opts o = default_opts(1);
    f->trained = train_or_fail(&f->train, &o);
    if (bpe_trained_vocab(f->trained, &f->vocab) != ROJ_OK) {
        fprintf(stderr, "bpe_trained_vocab: %s\n", roj_last_error());
        return -1;
    }
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture *f = *state;
    roj_vocab_free(f->vocab);
    bpe_trained_free(f->trained);
    corpus_free(&f->train);
    free(f);
    return 0;
}

static roj_token *encode(const roj_vocab *v, const char *text, size_t len,
                         size_t *n)
{
    roj_token *ids = NULL;
    if (roj_tokenize(v, text, len, 0, &ids, n) != ROJ_OK)
        fail_msg("roj_tokenize: %s", roj_last_error());
    return ids;
}

static void bpe_vocab_size_reached(void **state)
{
    fixture *f = *state;
    assert_int_equal(bpe_trained_n_vocab(f->trained), VOCAB);
    assert_int_equal(roj_vocab_n_tokens(f->vocab), VOCAB);
    /* Each token past the base has a merge; reused strings add merges. */
    assert_true(bpe_trained_n_merges(f->trained) >= VOCAB - 256 - 5);
    assert_int_equal(roj_vocab_kind_of(f->vocab), ROJ_VOCAB_BPE);
    assert_string_equal(roj_vocab_pre(f->vocab), "gpt-2");
}

static void bpe_special_ids(void **state)
{
    fixture *f = *state;
    const bpe_trained *t = f->trained;

    assert_int_equal(bpe_trained_token(t, "<|endoftext|>"), 0);
    assert_int_equal(bpe_trained_token(t, "<|pad|>"), 1);
    assert_int_equal(bpe_trained_token(t, "<label:refund>"), 2);
    assert_int_equal(bpe_trained_token(t, "<label:card>"), 3);
    assert_int_equal(bpe_trained_token(t, "<label:other>"), 4);
    /* A byte token is not special. */
    assert_int_equal(bpe_trained_token(t, "a"), -1);
    assert_int_equal(bpe_trained_token(t, "<label:none>"), -1);
    assert_string_equal(bpe_trained_token_text(t, 5 + 'a'), "a");
    assert_string_equal(bpe_trained_token_text(t, 5 + ' '), "\xc4\xa0");
    assert_null(bpe_trained_token_text(t, VOCAB));

    assert_int_equal(roj_vocab_bos(f->vocab), 0);
    assert_int_equal(roj_vocab_eos(f->vocab), 0);
    assert_int_equal(roj_vocab_pad(f->vocab), 1);
    assert_true(roj_vocab_add_bos(f->vocab));
    assert_false(roj_vocab_add_eos(f->vocab));
    assert_true(roj_vocab_is_eog(f->vocab, 0));
    assert_int_equal(roj_vocab_token_type(f->vocab, 0),
                     ROJ_TOKEN_TYPE_CONTROL);
    assert_int_equal(roj_vocab_token_type(f->vocab, 2),
                     ROJ_TOKEN_TYPE_USER_DEFINED);
    assert_int_equal(roj_vocab_token_type(f->vocab, 5 + 'a'),
                     ROJ_TOKEN_TYPE_NORMAL);
}

/* Two trainings, on 1 and 2 threads, give the same tokens and merges. */
static void bpe_deterministic(void **state)
{
    fixture *f = *state;
    bpe_train_opts o = default_opts(2);
    bpe_trained *t = train_or_fail(&f->train, &o);

    assert_int_equal(bpe_trained_n_vocab(t), bpe_trained_n_vocab(f->trained));
    assert_int_equal(bpe_trained_n_merges(t),
                     bpe_trained_n_merges(f->trained));
    for (int32_t id = 0; id < (int32_t)bpe_trained_n_vocab(t); id++)
        assert_string_equal(bpe_trained_token_text(t, id),
                            bpe_trained_token_text(f->trained, id));
    for (size_t r = 0; r < bpe_trained_n_merges(t); r++) {
        int32_t l1, r1, l2, r2;
        assert_int_equal(bpe_trained_merge(t, r, &l1, &r1), ROJ_OK);
        assert_int_equal(bpe_trained_merge(f->trained, r, &l2, &r2), ROJ_OK);
        assert_int_equal(l1, l2);
        assert_int_equal(r1, r2);
    }
    int32_t l, r;
    assert_int_equal(bpe_trained_merge(t, bpe_trained_n_merges(t), &l, &r),
                     ROJ_ERR_RANGE);
    bpe_trained_free(t);
}

/* Appends one random valid UTF-8 character from a mix of scripts. */
static size_t random_char(uint64_t *rng, char *out)
{
    static const uint32_t ranges[][2] = {
        {0x20, 0x7e},      {0x09, 0x0d},      {0xa0, 0x24f},
        {0x370, 0x3ff},    {0x400, 0x4ff},    {0x4e00, 0x9fff},
        {0xac00, 0xd7a3},  {0x1f300, 0x1f64f}, {0x1f900, 0x1f9ff},
        {0xe000, 0xf8ff},  {0x10000, 0x10ffff}};
    size_t n_ranges = sizeof ranges / sizeof ranges[0];
    const uint32_t *range = ranges[test_rand_u64(rng) % n_ranges];
    uint32_t cp = range[0] + (uint32_t)(test_rand_u64(rng) %
                                        (range[1] - range[0] + 1));
    if (cp >= 0xd800 && cp <= 0xdfff)
        cp = 0x41;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static void expect_round_trip(const roj_vocab *v, const char *text,
                              size_t len)
{
    size_t n = 0;
    size_t out_len = 0;
    char *out = NULL;
    roj_token *ids = encode(v, text, len, &n);

    assert_int_equal(roj_detokenize(v, ids, n, 0, &out, &out_len), ROJ_OK);
    assert_int_equal(out_len, len);
    assert_memory_equal(out, text, len);
    free(out);
    free(ids);
}

static void bpe_round_trip(void **state)
{
    fixture *f = *state;
    uint64_t rng = 7;
    char buf[1024];

    for (int iter = 0; iter < 300; iter++) {
        size_t len = 0;
        size_t n_chars = 1 + test_rand_u64(&rng) % 120;
        for (size_t i = 0; i < n_chars; i++)
            len += random_char(&rng, buf + len);
        expect_round_trip(f->vocab, buf, len);
    }
    /* Training text round-trips too, labels and specials included. */
    for (size_t i = 0; i < 50; i++)
        expect_round_trip(f->vocab, f->train.texts[i], f->train.lens[i]);
    const char *mixed = "Zoë's 🙂🙂 naïve 日本語 tanka 12345\n\t  end";
    expect_round_trip(f->vocab, mixed, strlen(mixed));
}

/* Held-out text in the style of the training text needs far fewer tokens
 * than bytes. */
static void bpe_compresses_held_out(void **state)
{
    fixture *f = *state;
    corpus held_out = make_corpus(9001, 20);
    size_t bytes = 0;
    size_t tokens = 0;

    for (size_t i = 0; i < held_out.n; i++) {
        size_t n = 0;
        roj_token *ids = encode(f->vocab, held_out.texts[i],
                                held_out.lens[i], &n);
        bytes += held_out.lens[i];
        tokens += n;
        free(ids);
    }
    print_message("held-out: %zu bytes, %zu tokens\n", bytes, tokens);
    assert_true(tokens > 0);
    assert_true(tokens * 2 < bytes);
    corpus_free(&held_out);
}

static void bpe_added_token_single_id(void **state)
{
    fixture *f = *state;
    const char *text = "kaseloro <label:card>lo and<label:refund>";
    size_t n = 0;
    roj_token *ids = encode(f->vocab, text, strlen(text), &n);
    int seen_card = 0;
    int seen_refund = 0;

    for (size_t i = 0; i < n; i++) {
        seen_card += ids[i] == 3;
        seen_refund += ids[i] == 2;
    }
    assert_int_equal(seen_card, 1);
    assert_int_equal(seen_refund, 1);
    assert_int_equal(ids[n - 1], 2);
    free(ids);

    /* The control token is plain text unless special parsing is on. */
    text = "x<|endoftext|>";
    ids = NULL;
    assert_int_equal(roj_tokenize(f->vocab, text, strlen(text),
                                  ROJ_TOKENIZE_PARSE_SPECIAL, &ids, &n),
                     ROJ_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[1], 0);
    free(ids);
}

/* Sets *inner_space when the bytes of token id contain whitespace after the
 * first byte, and *all_space when every byte is whitespace. */
static void scan_token(const roj_vocab *v, roj_token id, bool *inner_space,
                       bool *all_space)
{
    char piece[256];
    size_t len = 0;

    assert_int_equal(roj_token_to_piece(v, id, 0, piece, sizeof piece, &len),
                     ROJ_OK);
    assert_true(len <= sizeof piece);
    *inner_space = false;
    *all_space = true;
    for (size_t i = 0; i < len; i++) {
        bool space = piece[i] == ' ' || piece[i] == '\n' || piece[i] == '\t';
        if (space && i > 0)
            *inner_space = true;
        if (!space)
            *all_space = false;
    }
}

/* No merge crosses a pre-tokenizer boundary (with gpt-2 rules a space only
 * starts a piece, unless the piece is all whitespace), and the text of
 * control tokens was not learned. */
static void bpe_merges_stay_in_pieces(void **state)
{
    fixture *f = *state;

    for (int32_t id = 5 + 256; id < VOCAB; id++) {
        bool inner_space, all_space;
        scan_token(f->vocab, id, &inner_space, &all_space);
        if (inner_space)
            assert_true(all_space);
        const char *text = bpe_trained_token_text(f->trained, id);
        assert_null(strstr(text, "endoftext"));
        assert_null(strstr(text, "label"));
    }
}

/* The tokenizer.* keys written to a file load into the same vocab. */
static void bpe_write_kv_file(void **state)
{
    fixture *f = *state;
    gguf_writer *w = NULL;
    roj_vocab *v = NULL;
    char path[4200];
    void *image = NULL;
    size_t size = 0;

    snprintf(path, sizeof path, "%s/bpe.gguf", test_tmpdir());
    assert_int_equal(gguf_writer_create(&w), ROJ_OK);
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama"),
                     ROJ_OK);
    assert_int_equal(bpe_trained_write_kv(f->trained, w), ROJ_OK);
    assert_int_equal(gguf_writer_write(w, path), ROJ_OK);
    assert_int_equal(gguf_writer_write_memory(w, &image, &size), ROJ_OK);
    size_t file_size = 0;
    char *file = test_read_file(path, &file_size);
    assert_int_equal(file_size, size);
    assert_memory_equal(file, image, size);
    free(file);
    free(image);
    gguf_writer_free(w);

    if (roj_vocab_open(path, &v) != ROJ_OK)
        fail_msg("roj_vocab_open: %s", roj_last_error());
    assert_int_equal(roj_vocab_n_tokens(v), VOCAB);
    for (size_t i = 0; i < 20; i++) {
        size_t n1 = 0, n2 = 0;
        roj_token *a = encode(v, f->train.texts[i], f->train.lens[i], &n1);
        roj_token *b = encode(f->vocab, f->train.texts[i], f->train.lens[i],
                              &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(a, b, n1 * sizeof *a);
        free(a);
        free(b);
    }
    roj_vocab_free(v);
}

static roj_status train_texts(const char *const *texts, size_t n,
                              const bpe_train_opts *o, bpe_trained **t)
{
    size_t lens[16];
    for (size_t i = 0; i < n; i++)
        lens[i] = strlen(texts[i]);
    return bpe_train(texts, lens, n, o, t);
}

/* A corpus small enough to follow by hand: the pieces are "abab",
 * " abab" and " ab". (a, b) occurs 5 times and merges first. Then
 * (Ġ, ab) and (ab, ab) both occur twice, and (Ġ, ab) wins because its
 * left id (a byte token) is smaller. After that no pair occurs twice, so
 * training stops below the requested size. */
static void bpe_hand_checked_merges(void **state)
{
    (void)state;
    const char *texts[] = {"abab abab ab"};
    bpe_train_opts o;
    bpe_trained *t = NULL;
    int32_t l, r;

    memset(&o, 0, sizeof o);
    o.vocab_size = 1000;
    assert_int_equal(train_texts(texts, 1, &o, &t), ROJ_OK);
    int32_t base = 1; /* the default special token <|endoftext|> */
    assert_int_equal(bpe_trained_token(t, "<|endoftext|>"), 0);
    assert_int_equal(bpe_trained_n_merges(t), 2);
    assert_int_equal(bpe_trained_n_vocab(t), 1 + 256 + 2);
    assert_int_equal(bpe_trained_merge(t, 0, &l, &r), ROJ_OK);
    assert_int_equal(l, base + 'a');
    assert_int_equal(r, base + 'b');
    assert_int_equal(bpe_trained_merge(t, 1, &l, &r), ROJ_OK);
    assert_int_equal(l, base + ' ');
    assert_int_equal(r, base + 256);
    assert_string_equal(bpe_trained_token_text(t, base + 256), "ab");
    assert_string_equal(bpe_trained_token_text(t, base + 257),
                        "\xc4\xa0" "ab");
    bpe_trained_free(t);

    /* min_frequency 1 lets the single pairs merge as well. */
    o.min_frequency = 1;
    assert_int_equal(train_texts(texts, 1, &o, &t), ROJ_OK);
    assert_true(bpe_trained_n_merges(t) > 2);
    bpe_trained_free(t);
}

/* Every token text is unique, so the file loads, and "abc" is learned
 * from pieces where "bc" and "ab" both occur. */
static void bpe_token_texts_unique(void **state)
{
    (void)state;
    const char *texts[] = {"bc bc bc bc xabc xabc abd abd abd abd abc abc"};
    bpe_train_opts o;
    bpe_trained *t = NULL;
    roj_vocab *v = NULL;

    memset(&o, 0, sizeof o);
    o.vocab_size = 1000;
    assert_int_equal(train_texts(texts, 1, &o, &t), ROJ_OK);
    int32_t abc = -1;
    for (int32_t id = 257; id < (int32_t)bpe_trained_n_vocab(t); id++) {
        const char *s = bpe_trained_token_text(t, id);
        for (int32_t other = id + 1; other < (int32_t)bpe_trained_n_vocab(t);
             other++)
            assert_string_not_equal(s, bpe_trained_token_text(t, other));
        if (strcmp(s, "abc") == 0)
            abc = id;
    }
    assert_true(abc > 0);
    assert_int_equal(bpe_trained_vocab(t, &v), ROJ_OK);
    expect_round_trip(v, texts[0], strlen(texts[0]));
    roj_vocab_free(v);
    bpe_trained_free(t);
}

/* Runs the trainer's steps by hand to keep its final segmentation, then
 * checks that the loaded vocab encodes the training texts into exactly as
 * many tokens as the trainer's pieces hold symbols. */
static void bpe_encoder_matches_training(void **state)
{
    fixture *f = *state;
    bpe_train_opts o = default_opts(1);
    bpe_trained *t = NULL;
    roj_vocab *base = NULL;
    roj_vocab *v = NULL;
    bpe_corpus c;

    o.vocab_size = 5 + 256;
    t = train_or_fail(&f->train, &o);
    assert_int_equal(bpe_trained_vocab(t, &base), ROJ_OK);
    assert_int_equal(bpe_corpus_build(base, (const char *const *)
                                      f->train.texts, f->train.lens,
                                      f->train.n, 2, t->byte_base, &c),
                     ROJ_OK);
    assert_int_equal(bpe_merge_run(t, &c, VOCAB, 2), ROJ_OK);
    assert_int_equal(bpe_trained_n_vocab(t), VOCAB);

    uint64_t symbols = 0;
    for (size_t i = 0; i < c.n_slots; i++)
        if (c.sym[i] != BPE_SYMBOL_DEAD)
            symbols += c.freq[c.word_of[i]];
    assert_int_equal(bpe_trained_vocab(t, &v), ROJ_OK);
    uint64_t tokens = 0;
    for (size_t i = 0; i < f->train.n; i++) {
        roj_token *ids = NULL;
        size_t n = 0;
        assert_int_equal(roj_tokenize(v, f->train.texts[i], f->train.lens[i],
                                      ROJ_TOKENIZE_PARSE_SPECIAL, &ids, &n),
                         ROJ_OK);
        for (size_t k = 0; k < n; k++)
            tokens += ids[k] >= 5;
        free(ids);
    }
    assert_true(symbols > 0);
    assert_int_equal(tokens, symbols);

    roj_vocab_free(v);
    roj_vocab_free(base);
    bpe_corpus_free(&c);
    bpe_trained_free(t);
}

static int warnings;

static void count_warnings(roj_log_level level, const char *message,
                           void *user)
{
    (void)message;
    (void)user;
    if (level == ROJ_LOG_WARN)
        warnings++;
}

/* Too little text for the requested size: training stops and warns. */
static void bpe_small_corpus_stops(void **state)
{
    (void)state;
    corpus c = make_corpus(5, 3);
    bpe_train_opts o = default_opts(1);
    bpe_trained *t = NULL;

    o.vocab_size = 5000;
    warnings = 0;
    roj_log_set(count_warnings, NULL, ROJ_LOG_WARN);
    roj_status st = bpe_train((const char *const *)c.texts, c.lens, c.n, &o,
                              &t);
    roj_log_set(NULL, NULL, ROJ_LOG_WARN);
    assert_int_equal(st, ROJ_OK);
    assert_true(bpe_trained_n_vocab(t) < 5000);
    assert_true(bpe_trained_n_vocab(t) > 5 + 256);
    assert_int_equal(warnings, 1);
    bpe_trained_free(t);

    /* No text at all gives the base tokens only. */
    o.vocab_size = 300;
    assert_int_equal(bpe_train(NULL, NULL, 0, &o, &t), ROJ_OK);
    assert_int_equal(bpe_trained_n_vocab(t), 5 + 256);
    bpe_trained_free(t);
    corpus_free(&c);
}

static void bpe_invalid_options(void **state)
{
    (void)state;
    const char *texts[] = {"hello world"};
    bpe_train_opts o;
    bpe_trained *t = NULL;

    memset(&o, 0, sizeof o);
    o.vocab_size = 256;
    assert_int_equal(train_texts(texts, 1, &o, &t), ROJ_ERR_INVALID_ARG);
    assert_null(t);
    assert_non_null(strstr(roj_last_error(), "vocab_size"));

    o.vocab_size = 400;
    o.pre = "no-such-family";
    assert_int_equal(train_texts(texts, 1, &o, &t), ROJ_ERR_UNSUPPORTED);
    assert_non_null(strstr(roj_last_error(), "no-such-family"));

    /* The family name "gpt2" is stored as the value "gpt-2". */
    o.pre = "gpt2";
    assert_int_equal(train_texts(texts, 1, &o, &t), ROJ_OK);
    roj_vocab *v = NULL;
    assert_int_equal(bpe_trained_vocab(t, &v), ROJ_OK);
    assert_string_equal(roj_vocab_pre(v), "gpt-2");
    roj_vocab_free(v);
    bpe_trained_free(t);
    t = NULL;

    o.pre = "llama-bpe";
    const char *dup[] = {"<s>", "<s>"};
    o.special = dup;
    o.n_special = 2;
    assert_int_equal(train_texts(texts, 1, &o, &t), ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "<s>"));

    const char *byte_text[] = {"a"};
    o.n_special = 1;
    o.added = byte_text;
    o.n_added = 1;
    assert_int_equal(train_texts(texts, 1, &o, &t), ROJ_ERR_INVALID_ARG);

    const char *empty[] = {""};
    o.added = empty;
    assert_int_equal(train_texts(texts, 1, &o, &t), ROJ_ERR_INVALID_ARG);

    o.n_added = 0;
    assert_int_equal(train_texts(texts, 1, &o, &t), ROJ_OK);
    assert_int_equal(bpe_trained_token(t, "<s>"), 0);
    bpe_trained_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bpe_vocab_size_reached),
        cmocka_unit_test(bpe_special_ids),
        cmocka_unit_test(bpe_deterministic),
        cmocka_unit_test(bpe_round_trip),
        cmocka_unit_test(bpe_compresses_held_out),
        cmocka_unit_test(bpe_added_token_single_id),
        cmocka_unit_test(bpe_merges_stay_in_pieces),
        cmocka_unit_test(bpe_write_kv_file),
        cmocka_unit_test(bpe_hand_checked_merges),
        cmocka_unit_test(bpe_token_texts_unique),
        cmocka_unit_test(bpe_encoder_matches_training),
        cmocka_unit_test(bpe_small_corpus_stops),
        cmocka_unit_test(bpe_invalid_options),
    };
    return test_run_group(tests, fixture_setup, fixture_teardown);
}
