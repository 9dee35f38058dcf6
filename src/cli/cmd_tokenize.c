/*
 * roj tokenize -m FILE (-p TEXT | -f TEXTFILE): prints the token ids of a
 * text as a JSON array on one line, like llama-tokenize --ids. Only the
 * tokenizer of the GGUF file is loaded, so vocab-only files work.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "roj/tokenizer.h"

#define EXIT_OK 0
#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

typedef struct tokenize_options {
    const char *model;
    const char *prompt;
    const char *file;
    bool add_special;
    bool parse_special;
    bool show_pieces;
} tokenize_options;

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: roj tokenize -m FILE (-p TEXT | -f TEXTFILE) [options]\n"
            "\n"
            "Prints the token ids of the text as a JSON array on one line.\n"
            "By default BOS/EOS are added as the vocab says and the text of\n"
            "special tokens such as <|im_end|> becomes those tokens, as in\n"
            "llama-tokenize.\n"
            "\n"
            "options:\n"
            "  -m, --model FILE      GGUF file to take the tokenizer from\n"
            "                        (a vocab-only file is enough)\n"
            "  -p, --prompt TEXT     text to tokenize\n"
            "  -f, --file TEXTFILE   file whose bytes are the text (exactly,\n"
            "                        with no newline added or removed)\n"
            "  --no-bos              add no BOS/EOS (CLS/SEP for BERT)\n"
            "  --no-parse-special    treat special-token text as plain text\n"
            "                        (user-defined added tokens still match)\n"
            "  --show-pieces         print one 'id -> piece' line per token\n"
            "                        instead of the JSON array\n"
            "  -h, --help            print this help\n");
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "roj tokenize: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nRun 'roj tokenize --help' for the options.\n");
    return EXIT_USAGE;
}

/* Returns -1 to run, or the exit status after --help or a usage error. */
static int parse_args(int argc, char **argv, tokenize_options *o)
{
    o->add_special = true;
    o->parse_special = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dest = NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            print_help(stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            dest = &o->model;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            dest = &o->prompt;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            dest = &o->file;
        } else if (!strcmp(a, "--no-bos")) {
            o->add_special = false;
        } else if (!strcmp(a, "--no-parse-special")) {
            o->parse_special = false;
        } else if (!strcmp(a, "--show-pieces")) {
            o->show_pieces = true;
        } else {
            return usage_error("unknown option '%s'", a);
        }
        if (dest) {
            if (i + 1 >= argc)
                return usage_error("option %s needs a value", a);
            *dest = argv[++i];
        }
    }
    if (!o->model)
        return usage_error("%s", "no model given; pass -m FILE.gguf");
    if (!o->prompt == !o->file)
        return usage_error("%s", "give the text with exactly one of -p TEXT "
                           "and -f TEXTFILE");
    return -1;
}

static char *read_text_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;

    if (!f)
        return NULL;
    for (;;) {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 65536;
            char *p = realloc(buf, cap + 1);
            if (!p) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Prints a piece between quotes with control bytes, quotes and bytes that
 * are not complete UTF-8 escaped, so partial characters stay visible. */
static void print_piece(const char *s, size_t n)
{
    putchar('\'');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t len = 0; /* of the UTF-8 sequence c starts; 0: invalid */
        if (c < 0x80)
            len = 1;
        else if (c >= 0xF0)
            len = 4;
        else if (c >= 0xE0)
            len = 3;
        else if (c >= 0xC0)
            len = 2;
        bool whole = len > 0 && i + len <= n;
        for (size_t k = 1; whole && k < len; k++)
            whole = ((unsigned char)s[i + k] & 0xC0) == 0x80;
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\\' || c == '\'')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7F || !whole)
            printf("\\x%02x", c);
        else {
            fwrite(s + i, 1, len, stdout);
            i += len - 1;
        }
    }
    putchar('\'');
}

static int print_tokens(const roj_vocab *v, const roj_token *ids, size_t n,
                        bool show_pieces)
{
    if (!show_pieces) {
        putchar('[');
        for (size_t i = 0; i < n; i++)
            printf(i ? ", %d" : "%d", ids[i]);
        printf("]\n");
        return EXIT_OK;
    }
    for (size_t i = 0; i < n; i++) {
        char buf[256];
        size_t len = 0;
        char *piece = buf;
        if (roj_token_to_piece(v, ids[i], ROJ_DETOK_RENDER_SPECIAL, buf,
                               sizeof buf, &len) != ROJ_OK)
            return EXIT_RUNTIME;
        if (len > sizeof buf) {
            piece = malloc(len);
            if (!piece || roj_token_to_piece(v, ids[i],
                                             ROJ_DETOK_RENDER_SPECIAL, piece,
                                             len, &len) != ROJ_OK) {
                free(piece);
                return EXIT_RUNTIME;
            }
        }
        printf("%6d -> ", ids[i]);
        print_piece(piece, len);
        putchar('\n');
        if (piece != buf)
            free(piece);
    }
    return EXIT_OK;
}

int cmd_tokenize(int argc, char **argv)
{
    tokenize_options o = {0};
    roj_vocab *v = NULL;
    roj_token *ids = NULL;
    size_t n_ids = 0;
    char *file_text = NULL;
    const char *text = NULL;
    size_t len = 0;
    int rc = parse_args(argc, argv, &o);

    if (rc >= 0)
        return rc;

    if (o.file) {
        file_text = read_text_file(o.file, &len);
        if (!file_text) {
            fprintf(stderr, "roj tokenize: cannot read text file %s: %s\n",
                    o.file, strerror(errno));
            return EXIT_RUNTIME;
        }
        text = file_text;
    } else {
        text = o.prompt;
        len = strlen(o.prompt);
    }

    roj_status s = roj_vocab_open(o.model, &v);
    if (s != ROJ_OK) {
        const char *hint =
            s == ROJ_ERR_IO ? "Check that the file exists and is readable."
            : s == ROJ_ERR_FORMAT
                ? "-m needs a GGUF model or vocab file."
                : "-m needs a GGUF file with tokenizer.ggml.* metadata.";
        fprintf(stderr, "roj tokenize: cannot load the tokenizer of %s: %s\n"
                "%s\n", o.model, roj_last_error(), hint);
        rc = EXIT_RUNTIME;
        goto cleanup;
    }

    unsigned flags = (o.add_special ? ROJ_TOKENIZE_ADD_SPECIAL : 0) |
                     (o.parse_special ? ROJ_TOKENIZE_PARSE_SPECIAL : 0);
    s = roj_tokenize(v, text, len, flags, &ids, &n_ids);
    if (s != ROJ_OK) {
        fprintf(stderr, "roj tokenize: tokenizing failed: %s\n",
                roj_last_error());
        rc = EXIT_RUNTIME;
        goto cleanup;
    }
    rc = print_tokens(v, ids, n_ids, o.show_pieces);
    if (rc != EXIT_OK)
        fprintf(stderr, "roj tokenize: %s\n", roj_last_error());

cleanup:
    free(ids);
    roj_vocab_free(v);
    free(file_text);
    return rc;
}
