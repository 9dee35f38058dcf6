/*
 * Tokenizer behaviour: BOS/EOS defaults per vocab, special-token parsing,
 * the end-of-generation set, invalid UTF-8, pieces, errors on bad files,
 * BPE merge order on a small synthetic vocab, and concurrent use.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf/gguf.h"
#include "roj/tokenizer.h"
#include "testutil.h"

static roj_vocab *open_fixture(const char *name)
{
    char rel[256];
    roj_vocab *v = NULL;

    snprintf(rel, sizeof rel, "fixtures/tokenizer/ggml-vocab-%s.gguf", name);
    roj_status s = roj_vocab_open(test_shared_path(rel), &v);
    if (s != ROJ_OK)
        fail_msg("open %s: %s: %s", name, roj_status_name(s),
                 roj_last_error());
    return v;
}

/* Tokenizes text (NUL-terminated) and returns the ids; *n gets the count. */
static roj_token *tokenize(const roj_vocab *v, const char *text, size_t len,
                           unsigned flags, size_t *n)
{
    roj_token *ids = NULL;
    roj_status s = roj_tokenize(v, text, len, flags, &ids, n);
    if (s != ROJ_OK)
        fail_msg("roj_tokenize: %s: %s", roj_status_name(s),
                 roj_last_error());
    return ids;
}

static bool contains(const roj_token *ids, size_t n, roj_token id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* ---- BOS / EOS --------------------------------------------------------- */

static const struct {
    const char *vocab;
    roj_vocab_kind kind;
    roj_token bos;     /* added first with ADD_SPECIAL, or -1 */
    roj_token eos;     /* added last with ADD_SPECIAL, or -1 */
} special_cases[] = {
    {"llama-bpe", ROJ_VOCAB_BPE, 128000, -1},
    {"llama-spm", ROJ_VOCAB_SPM, 1, -1},
    {"phi-3", ROJ_VOCAB_SPM, 1, -1},
    {"baichuan", ROJ_VOCAB_SPM, 1, -1},
    {"deepseek-coder", ROJ_VOCAB_BPE, 32013, -1},
    {"deepseek-llm", ROJ_VOCAB_BPE, 100000, -1},
    {"bert-bge", ROJ_VOCAB_WPM, 101, 102},
    {"gpt-2", ROJ_VOCAB_BPE, -1, -1},
    {"qwen2", ROJ_VOCAB_BPE, -1, -1},
    {"falcon", ROJ_VOCAB_BPE, -1, -1},
    {"mpt", ROJ_VOCAB_BPE, -1, -1},
    {"refact", ROJ_VOCAB_BPE, -1, -1},
    {"starcoder", ROJ_VOCAB_BPE, -1, -1},
    {"gpt-neox", ROJ_VOCAB_BPE, -1, -1},
};

static void bos_eos_defaults(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof special_cases / sizeof special_cases[0];
         c++) {
        roj_vocab *v = open_fixture(special_cases[c].vocab);
        size_t n_plain = 0, n_special = 0;
        roj_token *plain = tokenize(v, "Hello world", 11, 0, &n_plain);
        roj_token *with = tokenize(v, "Hello world", 11,
                                   ROJ_TOKENIZE_ADD_SPECIAL, &n_special);
        roj_token bos = special_cases[c].bos;
        roj_token eos = special_cases[c].eos;
        size_t extra = (bos >= 0) + (eos >= 0);

        printf("%s: bos %d add_bos %d, eos %d add_eos %d\n",
               special_cases[c].vocab, roj_vocab_bos(v), roj_vocab_add_bos(v),
               roj_vocab_eos(v), roj_vocab_add_eos(v));
        assert_int_equal(roj_vocab_kind_of(v), special_cases[c].kind);
        assert_int_equal(roj_vocab_add_bos(v), bos >= 0);
        assert_int_equal(n_special, n_plain + extra);
        if (bos >= 0) {
            assert_int_equal(roj_vocab_bos(v), bos);
            assert_int_equal(with[0], bos);
            assert_false(contains(plain, n_plain, bos));
        }
        if (eos >= 0)
            assert_int_equal(with[n_special - 1], eos);
        free(plain);
        free(with);
        roj_vocab_free(v);
    }
}

static void accessors_report_metadata(void **state)
{
    (void)state;
    roj_vocab *v = open_fixture("llama-bpe");

    assert_string_equal(roj_vocab_pre(v), "llama-bpe");
    assert_int_equal(roj_vocab_n_tokens(v), 128256);
    assert_int_equal(roj_vocab_eos(v), 128001);
    assert_int_equal(roj_vocab_eot(v), 128009);
    assert_string_equal(roj_vocab_token_text(v, 128009), "<|eot_id|>");
    assert_null(roj_vocab_token_text(v, 128256));
    assert_null(roj_vocab_token_text(v, -1));
    assert_int_equal(roj_vocab_find(v, "<|eot_id|>", 10), 128009);
    assert_int_equal(roj_vocab_find(v, "Hello", 5), 9906);
    assert_int_equal(roj_vocab_find(v, "no-such-token-text", 18),
                     ROJ_TOKEN_NULL);
    assert_int_equal(roj_vocab_token_type(v, 9906), ROJ_TOKEN_TYPE_NORMAL);
    assert_int_equal(roj_vocab_token_type(v, 128000), ROJ_TOKEN_TYPE_CONTROL);
    assert_true(roj_vocab_is_control(v, 128000));
    assert_false(roj_vocab_is_control(v, 9906));
    roj_vocab_free(v);

    /* A BPE vocab without tokenizer.ggml.pre uses the default splitter. */
    v = open_fixture("gpt-neox");
    assert_string_equal(roj_vocab_pre(v), "default");
    roj_vocab_free(v);
}

/* ---- special tokens ---------------------------------------------------- */

static void qwen2_parse_special(void **state)
{
    (void)state;
    roj_vocab *v = open_fixture("qwen2");
    const char *text = "<|im_end|>";
    size_t n = 0;

    roj_token *ids = tokenize(v, text, strlen(text),
                              ROJ_TOKENIZE_PARSE_SPECIAL, &n);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 151645);
    free(ids);

    ids = tokenize(v, text, strlen(text), 0, &n);
    assert_true(n > 1);
    assert_false(contains(ids, n, 151645));
    char *back = NULL;
    assert_int_equal(roj_detokenize(v, ids, n, 0, &back, NULL), ROJ_OK);
    assert_string_equal(back, text);
    free(back);
    free(ids);

    /* User-defined added tokens match whether or not special parsing is
     * on, as in Hugging Face and llama.cpp. */
    text = "a<think>b";
    for (unsigned flags = 0; flags <= ROJ_TOKENIZE_PARSE_SPECIAL;
         flags += ROJ_TOKENIZE_PARSE_SPECIAL) {
        ids = tokenize(v, text, strlen(text), flags, &n);
        assert_int_equal(n, 3);
        assert_int_equal(ids[1], 151667);
        free(ids);
    }

    /* Text around a special token keeps its own tokens. */
    text = "Hi<|im_start|>user\n";
    ids = tokenize(v, text, strlen(text), ROJ_TOKENIZE_PARSE_SPECIAL, &n);
    assert_true(n >= 3);
    assert_int_equal(ids[1], 151644);
    free(ids);
    roj_vocab_free(v);
}

static void eog_sets(void **state)
{
    (void)state;
    roj_vocab *v = open_fixture("qwen2");
    assert_true(roj_vocab_is_eog(v, 151645));  /* <|im_end|> */
    assert_true(roj_vocab_is_eog(v, 151643));  /* <|endoftext|> */
    assert_true(roj_vocab_is_eog(v, roj_vocab_find(v, "<|fim_pad|>", 11)));
    assert_false(roj_vocab_is_eog(v, 151644)); /* <|im_start|> */
    assert_false(roj_vocab_is_eog(v, 100));
    assert_false(roj_vocab_is_eog(v, -1));
    roj_vocab_free(v);

    v = open_fixture("llama-bpe");
    assert_true(roj_vocab_is_eog(v, 128001));
    assert_true(roj_vocab_is_eog(v, 128009));
    assert_false(roj_vocab_is_eog(v, 128000));
    roj_vocab_free(v);

    v = open_fixture("gpt-2");
    assert_true(roj_vocab_is_eog(v, 50256));
    assert_int_equal(roj_vocab_eot(v), 50256);
    roj_vocab_free(v);

    v = open_fixture("llama-spm");
    assert_true(roj_vocab_is_eog(v, 2));
    assert_false(roj_vocab_is_eog(v, 1));
    assert_int_equal(roj_vocab_unk(v), 0);
    roj_vocab_free(v);
}

/* ---- invalid UTF-8 ----------------------------------------------------- */

static const char *const all_vocabs[] = {
    "baichuan", "bert-bge",  "deepseek-coder", "deepseek-llm", "falcon",
    "gpt-2",    "gpt-neox",  "llama-bpe",      "llama-spm",    "mpt",
    "phi-3",    "qwen2",     "refact",         "starcoder",
};

/* GPT-2's byte-to-unicode character of byte b, as UTF-8; returns its
 * length. Printable ASCII and Latin-1 bytes map to themselves, the other
 * 68 bytes to U+0100 onwards in byte order. */
static size_t byte_char(unsigned b, char *out)
{
    unsigned cp = b;
    if (b <= 32)
        cp = 256 + b;
    else if (b >= 127 && b <= 160)
        cp = 256 + 33 + (b - 127);
    else if (b == 173)
        cp = 256 + 67;
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* Whether every byte of text has a token that reads back as that byte. In
 * byte-level BPE that is a normal token for the byte's character. Some
 * vocabs lack the characters of bytes that never occur in UTF-8 (Falcon has
 * no token for 0xFF). DeepSeek's add them as user-defined tokens, which
 * read back as their text. SentencePiece vocabs need <0xXX> tokens. */
static bool bytes_representable(const roj_vocab *v, const char *text,
                                size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned b = (unsigned char)text[i];
        char buf[8];
        roj_token id;
        if (roj_vocab_kind_of(v) == ROJ_VOCAB_BPE) {
            id = roj_vocab_find(v, buf, byte_char(b, buf));
            if (roj_vocab_token_type(v, id) != ROJ_TOKEN_TYPE_NORMAL)
                return false;
        } else if (roj_vocab_kind_of(v) == ROJ_VOCAB_SPM) {
            snprintf(buf, sizeof buf, "<0x%02X>", b);
            if (b >= 0x80 && roj_vocab_find(v, buf, 6) == ROJ_TOKEN_NULL)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

static void invalid_utf8_is_tokenized(void **state)
{
    (void)state;
    static const char text[] = "\xff\xfe abc \xc3";
    static const char mixed[] = "ok \xe4\xb8 \xed\xa0\x80 \xf4\x90\x80\x80 "
                                "\xc0\xaf end\x80";
    /* Only bytes that every byte-level vocab here has a token for. */
    static const char soft[] = "\xe4\xb8 x \x80\xbf\xe2\x82 \xc3";
    size_t n_checked = 0;
    static const char *const must_round_trip[] = {"gpt-2", "llama-bpe",
                                                  "qwen2", "llama-spm"};

    for (size_t i = 0; i < 4; i++) {
        roj_vocab *v = open_fixture(must_round_trip[i]);
        assert_true(bytes_representable(v, text, sizeof text - 1));
        assert_true(bytes_representable(v, mixed, sizeof mixed - 1));
        roj_vocab_free(v);
    }

    for (size_t i = 0; i < sizeof all_vocabs / sizeof all_vocabs[0]; i++) {
        roj_vocab *v = open_fixture(all_vocabs[i]);
        const char *inputs[3] = {text, mixed, soft};
        size_t lens[3] = {sizeof text - 1, sizeof mixed - 1, sizeof soft - 1};
        for (int k = 0; k < 3; k++) {
            size_t n = 0;
            char *back = NULL;
            size_t back_len = 0;
            roj_token *ids = tokenize(v, inputs[k], lens[k], 0, &n);
            assert_true(n > 0);
            assert_int_equal(roj_detokenize(v, ids, n, 0, &back, &back_len),
                             ROJ_OK);
            /* Byte-level BPE and SentencePiece byte fallback keep every
             * byte; WordPiece drops invalid bytes. */
            bool exact = bytes_representable(v, inputs[k], lens[k]);
            if (!exact)
                printf("%s: input %d has a byte without a token\n",
                       all_vocabs[i], k);
            if (exact) {
                if (back_len != lens[k] ||
                    memcmp(back, inputs[k], lens[k]) != 0)
                    fail_msg("%s: invalid UTF-8 input %d did not round-trip",
                             all_vocabs[i], k);
            }
            n_checked += exact;
            free(back);
            free(ids);
        }
        roj_vocab_free(v);
    }
    printf("%zu of %zu inputs round-tripped byte for byte\n", n_checked,
           3 * sizeof all_vocabs / sizeof all_vocabs[0]);
    /* The soft input for all but bert-bge; the two others for gpt-2,
     * llama-bpe, qwen2 and the three SPM vocabs. */
    assert_int_equal(n_checked, 13 + 2 * 6);
}

static void spm_invalid_bytes_use_byte_tokens(void **state)
{
    (void)state;
    roj_vocab *v = open_fixture("llama-spm");
    size_t n = 0;
    roj_token *ids = tokenize(v, "\xff", 1, 0, &n);

    /* " \xff": the space prefix, then byte fallback <0xFF> = 3 + 0xFF. */
    assert_int_equal(n, 2);
    assert_int_equal(ids[1], 3 + 0xFF);
    assert_int_equal(roj_vocab_token_type(v, ids[1]), ROJ_TOKEN_TYPE_BYTE);
    free(ids);
    roj_vocab_free(v);
}

/* ---- pieces and detokenizing ------------------------------------------- */

static void token_to_piece_reports_length(void **state)
{
    (void)state;
    roj_vocab *v = open_fixture("gpt-2");
    char buf[16];
    size_t len = 0;

    /* 18435 is " Hello" ("\xc4\xa0Hello" stored). */
    assert_int_equal(roj_token_to_piece(v, 18435, 0, buf, sizeof buf, &len),
                     ROJ_OK);
    assert_int_equal(len, 6);
    assert_memory_equal(buf, " Hello", 6);
    memset(buf, '#', sizeof buf);
    assert_int_equal(roj_token_to_piece(v, 18435, 0, buf, 3, &len), ROJ_OK);
    assert_int_equal(len, 6);
    assert_memory_equal(buf, " He###", 6);
    assert_int_equal(roj_token_to_piece(v, 18435, 0, NULL, 0, &len), ROJ_OK);
    assert_int_equal(len, 6);

    /* Control tokens are empty unless rendered. */
    assert_int_equal(roj_token_to_piece(v, 50256, 0, buf, sizeof buf, &len),
                     ROJ_OK);
    assert_int_equal(len, 0);
    assert_int_equal(roj_token_to_piece(v, 50256, ROJ_DETOK_RENDER_SPECIAL,
                                        buf, sizeof buf, &len),
                     ROJ_OK);
    assert_int_equal(len, 13);
    assert_memory_equal(buf, "<|endoftext|>", 13);
    assert_int_equal(roj_token_to_piece(v, 50257, 0, buf, sizeof buf, &len),
                     ROJ_ERR_RANGE);
    roj_vocab_free(v);
}

static void detokenize_handles_special(void **state)
{
    (void)state;
    roj_vocab *v = open_fixture("llama-spm");
    size_t n = 0;
    char *text = NULL;
    roj_token *ids = tokenize(v, "Hello world", 11,
                              ROJ_TOKENIZE_ADD_SPECIAL, &n);

    assert_int_equal(ids[0], 1);
    assert_int_equal(roj_detokenize(v, ids, n, 0, &text, NULL), ROJ_OK);
    assert_string_equal(text, "Hello world");
    free(text);
    assert_int_equal(roj_detokenize(v, ids, n, ROJ_DETOK_RENDER_SPECIAL,
                                    &text, NULL), ROJ_OK);
    assert_string_equal(text, "<s>Hello world");
    free(text);
    assert_int_equal(roj_detokenize(v, ids, n, ROJ_DETOK_RENDER_SPECIAL |
                                    ROJ_DETOK_REMOVE_SPECIAL, &text, NULL),
                     ROJ_OK);
    assert_string_equal(text, "Hello world");
    free(text);
    free(ids);

    /* After a special token SentencePiece text gets a space again, and
     * detokenizing removes it again. */
    const char *chat = "<s>Hi</s>there";
    ids = tokenize(v, chat, strlen(chat), ROJ_TOKENIZE_PARSE_SPECIAL, &n);
    assert_int_equal(ids[0], 1);
    assert_true(contains(ids, n, 2));
    assert_int_equal(roj_detokenize(v, ids, n, ROJ_DETOK_RENDER_SPECIAL,
                                    &text, NULL), ROJ_OK);
    assert_string_equal(text, chat);
    free(text);
    free(ids);

    /* An empty list gives an empty string. */
    assert_int_equal(roj_detokenize(v, NULL, 0, 0, &text, NULL), ROJ_OK);
    assert_string_equal(text, "");
    free(text);
    roj_vocab_free(v);
}

static void wordpiece_detokenizes_words(void **state)
{
    (void)state;
    roj_vocab *v = open_fixture("bert-bge");
    size_t n = 0;
    char *text = NULL;
    const char *in = "Hello World, tokenizers!";
    roj_token *ids = tokenize(v, in, strlen(in), ROJ_TOKENIZE_ADD_SPECIAL, &n);

    assert_int_equal(ids[0], 101);
    assert_int_equal(ids[n - 1], 102);
    assert_int_equal(roj_detokenize(v, ids, n, 0, &text, NULL), ROJ_OK);
    /* WordPiece lower-cases and splits off punctuation. */
    assert_string_equal(text, "hello world , tokenizers !");
    free(text);
    free(ids);

    /* A word with no cover becomes [UNK]. */
    ids = tokenize(v, "\xe5\xa5\xbd", 3, 0, &n);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 100);
    free(ids);
    roj_vocab_free(v);
}

/* ---- errors ------------------------------------------------------------ */

static char *write_vocab(const char *file, const char *model, const char *pre,
                         const char *const *tokens, size_t n_tokens,
                         const char *const *merges, size_t n_merges)
{
    char path[4096];
    gguf_writer *w = NULL;

    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), file);
    assert_int_equal(gguf_writer_create(&w), ROJ_OK);
    assert_int_equal(gguf_writer_set_str(w, "general.architecture", "llama"),
                     ROJ_OK);
    if (model)
        assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.model",
                                             model), ROJ_OK);
    if (pre)
        assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.pre", pre),
                         ROJ_OK);
    if (tokens)
        assert_int_equal(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens",
                                                 tokens, n_tokens), ROJ_OK);
    if (merges)
        assert_int_equal(gguf_writer_set_arr_str(w, "tokenizer.ggml.merges",
                                                 merges, n_merges), ROJ_OK);
    roj_status s = gguf_writer_write(w, path);
    if (s != ROJ_OK)
        fail_msg("write %s: %s", path, roj_last_error());
    gguf_writer_free(w);
    return strdup(path);
}

static void expect_open_error(const char *path, roj_status expected,
                              const char *needle)
{
    roj_vocab *v = (roj_vocab *)&v;
    roj_status s = roj_vocab_open(path, &v);

    printf("%s -> %s: %s\n", path, roj_status_name(s), roj_last_error());
    assert_int_equal(s, expected);
    assert_null(v);
    assert_non_null(strstr(roj_last_error(), needle));
}

static void bad_files_give_errors(void **state)
{
    (void)state;
    static const char *const tokens[] = {"a", "b", "ab"};
    static const char *const dup[] = {"a", "b", "a"};
    char path[4096];

    snprintf(path, sizeof path, "%s/missing.gguf", test_tmpdir());
    expect_open_error(path, ROJ_ERR_IO, "missing.gguf");

    snprintf(path, sizeof path, "%s/text.gguf", test_tmpdir());
    test_write_file(path, "not a gguf file at all", 22);
    expect_open_error(path, ROJ_ERR_FORMAT, "text.gguf");

    char *p = write_vocab("notok.gguf", NULL, NULL, NULL, 0, NULL, 0);
    expect_open_error(p, ROJ_ERR_NOT_FOUND, "tokenizer.ggml.model");
    free(p);

    p = write_vocab("t5.gguf", "t5", NULL, tokens, 3, NULL, 0);
    expect_open_error(p, ROJ_ERR_UNSUPPORTED, "'t5'");
    free(p);

    p = write_vocab("pre.gguf", "gpt2", "no-such-pre", tokens, 3, NULL, 0);
    expect_open_error(p, ROJ_ERR_UNSUPPORTED, "no-such-pre");
    free(p);

    p = write_vocab("nomerges.gguf", "gpt2", "gpt-2", tokens, 3, NULL, 0);
    expect_open_error(p, ROJ_ERR_NOT_FOUND, "tokenizer.ggml.merges");
    free(p);

    p = write_vocab("dup.gguf", "llama", NULL, dup, 3, NULL, 0);
    expect_open_error(p, ROJ_ERR_FORMAT, "twice");
    free(p);

    p = write_vocab("notokens.gguf", "llama", NULL, NULL, 0, NULL, 0);
    expect_open_error(p, ROJ_ERR_NOT_FOUND, "tokenizer.ggml.tokens");
    free(p);
}

/* ---- BPE merge order on a synthetic vocab ------------------------------ */

static roj_vocab *synthetic_bpe(const char *file, const char *const *merges,
                                size_t n_merges)
{
    static const char *const tokens[] = {"a", "b", "c", "ab", "bc",
                                         "aa", "aaaa", "\xc4\xa0"};
    roj_vocab *v = NULL;
    char *p = write_vocab(file, "gpt2", "gpt-2", tokens,
                          sizeof tokens / sizeof tokens[0], merges, n_merges);
    roj_status s = roj_vocab_open(p, &v);
    if (s != ROJ_OK)
        fail_msg("open %s: %s", p, roj_last_error());
    free(p);
    return v;
}

static void bpe_merges_follow_rank(void **state)
{
    (void)state;
    static const char *const bc_first[] = {"b c", "a b", "a a", "aa aa"};
    static const char *const ab_first[] = {"a b", "b c", "a a", "aa aa"};
    size_t n = 0;

    roj_vocab *v = synthetic_bpe("bc.gguf", bc_first, 4);
    roj_token *ids = tokenize(v, "abc", 3, 0, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 0); /* a */
    assert_int_equal(ids[1], 4); /* bc */
    free(ids);
    roj_vocab_free(v);

    v = synthetic_bpe("ab.gguf", ab_first, 4);
    ids = tokenize(v, "abc", 3, 0, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 3); /* ab */
    assert_int_equal(ids[1], 2); /* c */
    free(ids);

    /* "aaaaa": a+a merges leftmost first, then aa+aa: aaaa, a. */
    ids = tokenize(v, "aaaaa", 5, 0, &n);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 6);
    assert_int_equal(ids[1], 0);
    free(ids);

    /* A long word costs O(n log n): 256 KiB of one letter stays fast. */
    size_t big = 1 << 18;
    char *text = malloc(big);
    memset(text, 'a', big);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ids = tokenize(v, text, big, 0, &n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("256 KiB single-letter word: %zu tokens in %.1f ms\n", n, ms);
    assert_int_equal(n, big / 4);
    assert_true(ms < 5000.0);
    free(ids);
    free(text);
    roj_vocab_free(v);
}

/* Every tokenizer.ggml.pre value roj supports, with its regexes compiled and
 * run on text with letters, digits, punctuation, CJK and spaces. */
static void every_pre_tokenizer_compiles(void **state)
{
    (void)state;
    static const char *const pres[] = {
        "default", "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral",
        "deepseek-llm", "deepseek-coder", "deepseek-v3", "falcon", "mpt",
        "olmo", "jais", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat",
        "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code",
        "roberta-bpe", "starcoder", "refact", "command-r", "smollm",
        "codeshell", "exaone", "minerva-7b", "qwen2", "deepseek-r1-qwen",
        "megrez", "stablelm2", "dbrx", "smaug-bpe", "chatglm-bpe", "glm4",
        "poro-chat", "bloom", "gpt3-finnish", "viking", "tekken", "gpt-4o",
        "llama4", "chameleon"};
    static const char *const tokens[] = {"a", "b", "ab", "\xc4\xa0"};
    static const char *const merges[] = {"a b"};
    static const char text[] = "Hello, World! It's 2025-02-20 at 14:30.\n\n"
                               "  \xe4\xbd\xa0\xe5\xa5\xbd  ab\tba "
                               "<sentinel:12> IMGIMGABZ \xf0\x9f\x9a\x80";

    for (size_t i = 0; i < sizeof pres / sizeof pres[0]; i++) {
        char file[128];
        roj_vocab *v = NULL;
        size_t n = 0;
        snprintf(file, sizeof file, "pre-%zu.gguf", i);
        char *p = write_vocab(file, "gpt2", pres[i], tokens, 4, merges, 1);
        roj_status s = roj_vocab_open(p, &v);
        if (s != ROJ_OK)
            fail_msg("pre-tokenizer %s: %s", pres[i], roj_last_error());
        assert_string_equal(roj_vocab_pre(v), pres[i]);
        roj_token *ids = tokenize(v, text, sizeof text - 1, 0, &n);
        /* Only a, b, ab and the space have tokens: "ab" and "ba" remain. */
        assert_true(n >= 3);
        free(ids);
        roj_vocab_free(v);
        free(p);
    }
}

/* SentencePiece with tokenizer.ggml.add_space_prefix = false adds no space
 * in front of the text. */
static void spm_space_prefix_is_optional(void **state)
{
    (void)state;
    static const char *const tokens[] = {
        "<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", ("\xe2\x96\x81" "a"), "b"};
    static const float scores[] = {0, 0, 0, -1, -2, -1.5f, -3};
    char path[4096];
    gguf_writer *w = NULL;
    roj_vocab *v = NULL;
    size_t n = 0;

    for (int prefix = 0; prefix <= 1; prefix++) {
        snprintf(path, sizeof path, "%s/spm-%d.gguf", test_tmpdir(), prefix);
        assert_int_equal(gguf_writer_create(&w), ROJ_OK);
        assert_int_equal(gguf_writer_set_str(w, "tokenizer.ggml.model",
                                             "llama"), ROJ_OK);
        assert_int_equal(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens",
                                                 tokens, 7), ROJ_OK);
        assert_int_equal(gguf_writer_set_arr(w, "tokenizer.ggml.scores",
                                             GGUF_TYPE_FLOAT32, scores, 7),
                         ROJ_OK);
        assert_int_equal(gguf_writer_set_bool(
                             w, "tokenizer.ggml.add_space_prefix", prefix),
                         ROJ_OK);
        assert_int_equal(gguf_writer_write(w, path), ROJ_OK);
        gguf_writer_free(w);

        assert_int_equal(roj_vocab_open(path, &v), ROJ_OK);
        roj_token *ids = tokenize(v, "ab a", 4, 0, &n);
        char *back = NULL;
        assert_int_equal(roj_detokenize(v, ids, n, 0, &back, NULL), ROJ_OK);
        assert_string_equal(back, "ab a");
        if (prefix) {
            /* "\u2581ab\u2581a": \u2581a, b, \u2581a */
            assert_int_equal(n, 3);
            assert_int_equal(ids[0], 5);
            assert_int_equal(ids[1], 6);
            assert_int_equal(ids[2], 5);
        } else {
            /* "ab\u2581a": a, b, \u2581a */
            assert_int_equal(n, 3);
            assert_int_equal(ids[0], 4);
            assert_int_equal(ids[1], 6);
            assert_int_equal(ids[2], 5);
        }
        free(back);
        free(ids);
        roj_vocab_free(v);
    }
}

/* ---- threads ----------------------------------------------------------- */

typedef struct thread_job {
    const roj_vocab *v;
    const char *text;
    size_t len;
    roj_token *ids;
    size_t n;
} thread_job;

static void *thread_tokenize(void *arg)
{
    thread_job *job = arg;
    for (int round = 0; round < 4; round++) {
        free(job->ids);
        job->ids = NULL;
        if (roj_tokenize(job->v, job->text, job->len, 0, &job->ids,
                         &job->n) != ROJ_OK)
            job->n = 0;
    }
    return NULL;
}

static void threads_share_a_vocab(void **state)
{
    (void)state;
    roj_vocab *v = open_fixture("llama-bpe");
    size_t size = 0;
    char *text = test_read_file(test_shared_path("fixtures/tokenizer/"
                                                 "README.md"), &size);
    size_t n_ref = 0;
    roj_token *ref = tokenize(v, text, size, 0, &n_ref);
    thread_job jobs[4];
    pthread_t threads[4];

    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){v, text, size, NULL, 0};
        assert_int_equal(pthread_create(&threads[i], NULL, thread_tokenize,
                                        &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(jobs[i].n, n_ref);
        assert_memory_equal(jobs[i].ids, ref, n_ref * sizeof *ref);
        free(jobs[i].ids);
    }
    free(ref);
    free(text);
    roj_vocab_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bos_eos_defaults),
        cmocka_unit_test(accessors_report_metadata),
        cmocka_unit_test(qwen2_parse_special),
        cmocka_unit_test(eog_sets),
        cmocka_unit_test(invalid_utf8_is_tokenized),
        cmocka_unit_test(spm_invalid_bytes_use_byte_tokens),
        cmocka_unit_test(token_to_piece_reports_length),
        cmocka_unit_test(detokenize_handles_special),
        cmocka_unit_test(wordpiece_detokenizes_words),
        cmocka_unit_test(bad_files_give_errors),
        cmocka_unit_test(bpe_merges_follow_rank),
        cmocka_unit_test(every_pre_tokenizer_compiles),
        cmocka_unit_test(spm_space_prefix_is_optional),
        cmocka_unit_test(threads_share_a_vocab),
    };
    return test_run_group(tests, NULL, NULL);
}
