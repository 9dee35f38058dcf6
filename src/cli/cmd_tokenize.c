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
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "roj/tokenizer.h"

#define EXIT_OK CLI_EXIT_OK
#define EXIT_RUNTIME CLI_EXIT_RUNTIME

typedef struct tokenize_options {
    const char *model;
    const char *prompt;
    const char *file;
    bool add_special;
    bool parse_special;
    bool show_pieces;
} tokenize_options;

/* Returns -1 to run, or the exit status after --help or a usage error. */
static int parse_args(int argc, char **argv, tokenize_options *o)
{
    const cli_option opts[] = {
        {"-m", "--model", CLI_STRING, &o->model, "FILE",
         "GGUF file to take the tokenizer from; a vocab-only file is "
         "enough (required)"},
        {"-p", "--prompt", CLI_STRING, &o->prompt, "TEXT",
         "text to tokenize"},
        {"-f", "--file", CLI_STRING, &o->file, "TEXTFILE",
         "file whose bytes are the text, exactly, with no newline added or "
         "removed"},
        {NULL, "--no-bos", CLI_FLAG_OFF, &o->add_special, NULL,
         "add no BOS/EOS (CLS/SEP for BERT) (default: as the vocab says)"},
        {NULL, "--no-parse-special", CLI_FLAG_OFF, &o->parse_special, NULL,
         "treat control-token text as plain text; user-defined added "
         "tokens still match (default: parse it)"},
        {NULL, "--show-pieces", CLI_FLAG, &o->show_pieces, NULL,
         "print one 'id -> piece' line per token instead of the JSON "
         "array"},
    };
    const cli_command cmd = {
        .name = "tokenize",
        .usage = "-m FILE (-p TEXT | -f TEXTFILE) [options]",
        .summary = "Print the token ids of the text as a JSON array on one "
                   "line. By default BOS/EOS\nare added as the vocab says "
                   "and the text of control tokens such as <|im_end|>\n"
                   "becomes those tokens, as in llama-tokenize.",
        .options = opts,
        .n_options = sizeof opts / sizeof opts[0],
    };
    int rc;

    o->add_special = true;
    o->parse_special = true;
    rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0)
        return rc;
    if (!o->model)
        return cli_usage_error("tokenize", "missing -m FILE");
    if (!o->prompt == !o->file)
        return cli_usage_error("tokenize", "give the text with exactly one "
                               "of -p TEXT and -f TEXTFILE");
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
        /* The hint matches what went wrong: a missing or unreadable path,
         * a file that is not GGUF, or a GGUF file without a tokenizer. */
        struct stat sb;
        const char *hint =
            stat(o.model, &sb) != 0 || access(o.model, R_OK) != 0
                ? "Check that the file exists and is readable."
            : S_ISDIR(sb.st_mode) ? "-m needs a file, not a directory."
            : s == ROJ_ERR_IO || s == ROJ_ERR_FORMAT
                ? "-m needs a GGUF model or vocab file."
                : "-m needs a GGUF file with tokenizer.ggml.* metadata.";
        cli_path_error("tokenize", "cannot load the tokenizer of", o.model,
                       roj_last_error());
        fprintf(stderr, "%s\n", hint);
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
    rc = cli_finish_stdout("tokenize", rc);

cleanup:
    free(ids);
    roj_vocab_free(v);
    free(file_text);
    return rc;
}
