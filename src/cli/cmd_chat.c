/*
 * roj chat: an interactive conversation on stdin and stdout.
 *
 * Every turn renders the whole conversation with the model's chat template
 * and tokenizes it. The KV cache keeps the tokens of the previous turns:
 * only the tokens after the longest common prefix with the cache are
 * evaluated, so a turn costs its own new tokens (plus any tokens of the
 * last answer that tokenize differently when re-read as text).
 *
 * When the conversation no longer fits (the context minus room for an
 * answer), the oldest user/assistant turns are dropped, keeping the system
 * message, and the shortened conversation is evaluated again from the
 * first position that changed.
 *
 * Message contents are tokenized as plain text by default: text such as
 * "<|im_end|>" typed by the user stays text, while the template's own
 * markup becomes control tokens (--parse-special tokenizes both with
 * control-token parsing, as llama-cli does).
 *
 * Ctrl-D (end of input) exits. Ctrl-C while a message is evaluated or an
 * answer is written stops it and returns to the prompt (an aborted decode
 * leaves the cache as it was); a second Ctrl-C, or one at the prompt,
 * exits.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "core/error.h"
#include "roj/chat.h"
#include "roj/context.h"
#include "roj/model.h"
#include "roj/sampler.h"
#include "roj/tokenizer.h"

#define CHAT_MAX_OPTIONS 24

struct chat_opts {
    const char *model;
    const char *system;
    const char *chat_template;
    int32_t n_predict;
    int32_t n_ctx;
    int32_t n_threads;
    bool parse_special;
    bool verbose;
    cli_sampling sampling;
};

/* The conversation and the mirror of what sequence 0 of the cache holds. */
struct chat {
    roj_model *model;
    roj_context *ctx;
    const roj_vocab *vocab;
    roj_chat_params render;
    roj_sampler *sampler;
    roj_streamer *streamer;
    roj_chat_message *msgs; /* (n_msgs) contents owned, roles static */
    size_t n_msgs;
    size_t n_fixed;         /* 1 with a system message, else 0 */
    roj_token *cached;      /* (n_ctx) token ids held by the cache */
    int32_t n_cached;
    int32_t n_ctx;
    int32_t n_predict;
    uint64_t seed;
    bool parse_special;     /* message contents may spell control tokens */
    bool verbose;
};

/* busy: a message is evaluated or an answer written, so Ctrl-C sets
 * stop_answer instead of exiting. */
static volatile sig_atomic_t busy, stop_answer;

static void on_sigint(int sig)
{
    static const char bye[] = "\n";

    (void)sig;
    if (!busy || stop_answer) {
        if (write(STDOUT_FILENO, bye, sizeof bye - 1) < 0)
            _exit(130);
        _exit(130);
    }
    stop_answer = 1;
}

static bool abort_requested(void *user_data)
{
    (void)user_data;
    return stop_answer != 0;
}

static bool write_text(const char *text, size_t len, void *user_data)
{
    (void)user_data;
    return cli_write_stdout(text, len) && !stop_answer;
}

static bool chat_add(struct chat *c, const char *role, const char *text)
{
    roj_chat_message *grown =
        realloc(c->msgs, (c->n_msgs + 1) * sizeof *grown);
    char *copy = strdup(text);

    if (!grown || !copy) {
        free(copy);
        if (grown)
            c->msgs = grown;
        return false;
    }
    c->msgs = grown;
    c->msgs[c->n_msgs++] = (roj_chat_message){role, copy};
    return true;
}

/* Removes n messages starting at index first. */
static void chat_remove(struct chat *c, size_t first, size_t n)
{
    if (n == 0)
        return;
    for (size_t i = first; i < first + n; i++)
        free((char *)c->msgs[i].content);
    memmove(c->msgs + first, c->msgs + first + n,
            (c->n_msgs - first - n) * sizeof *c->msgs);
    c->n_msgs -= n;
}

/* Token ids under construction. */
struct token_buf {
    roj_token *ids;
    size_t n, cap;
};

static roj_status token_buf_push(struct token_buf *t, const roj_token *ids,
                                 size_t n)
{
    if (t->n + n > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        roj_token *grown;
        while (cap < t->n + n)
            cap *= 2;
        grown = realloc(t->ids, cap * sizeof *grown);
        if (!grown)
            return roj_error(ROJ_ERR_NOMEM, "chat: out of memory");
        t->ids = grown;
        t->cap = cap;
    }
    memcpy(t->ids + t->n, ids, n * sizeof *ids);
    t->n += n;
    return ROJ_OK;
}

static roj_status token_buf_text(struct token_buf *t, const roj_vocab *v,
                                 const char *text, size_t len,
                                 unsigned flags)
{
    roj_token *ids = NULL;
    size_t n = 0;
    roj_status st;

    if (len == 0)
        return ROJ_OK;
    st = roj_tokenize(v, text, len, flags, &ids, &n);
    if (st == ROJ_OK)
        st = token_buf_push(t, ids, n);
    free(ids);
    return st;
}

/* Marker that stands for message i while the template is rendered; the
 * control bytes keep it from meeting template text. */
#define CONTENT_MARK "\x01roj-content-"

/* Returns the part of msgs[i].content that the renderer copied into text
 * at pos: the whole content, or the content with the white space at both
 * ends removed (llama2, llama3 and gemma trim). follow is the markup
 * rendered after it. Sets *len; returns NULL when neither matches. */
static const char *content_at(const char *text, const char *content,
                              const char *follow, size_t follow_len,
                              size_t *len)
{
    const char *start = content, *end = content + strlen(content);

    for (int trimmed = 0; trimmed < 2; trimmed++) {
        if (trimmed) {
            while (start < end && strchr(" \t\n\r\f\v", *start))
                start++;
            while (end > start && strchr(" \t\n\r\f\v", end[-1]))
                end--;
        }
        *len = (size_t)(end - start);
        if (!strncmp(text, start, *len) &&
            !strncmp(text + *len, follow, follow_len))
            return start;
    }
    return NULL;
}

/*
 * Tokenizes the conversation rendered with the template, ending with the
 * assistant's header. The markup is tokenized with control-token parsing
 * and, unless c->parse_special is set, each message content without it,
 * so a message cannot spell a control token. The template is rendered
 * twice: with the contents and with a marker in place of each content,
 * and the text between markers is the markup. The caller frees *tokens.
 */
static roj_status chat_tokenize(const struct chat *c,
                                const roj_chat_message *msgs, size_t n_msgs,
                                roj_token **tokens, size_t *n)
{
    roj_chat_message *marked = NULL;
    char (*marks)[48] = NULL;
    char *text = NULL, *layout = NULL;
    const char *pos, *at;
    struct token_buf t = {0};
    roj_token bos = roj_vocab_bos(c->vocab), eos = roj_vocab_eos(c->vocab);
    roj_status st;

    *tokens = NULL;
    *n = 0;
    st = roj_chat_render(&c->render, msgs, n_msgs, &text, NULL);
    if (st != ROJ_OK)
        return st;
    if (c->parse_special) {
        st = roj_tokenize(c->vocab, text, strlen(text),
                          ROJ_TOKENIZE_ADD_SPECIAL |
                              ROJ_TOKENIZE_PARSE_SPECIAL, tokens, n);
        free(text);
        return st;
    }

    /* Render with markers. */
    marked = calloc(n_msgs ? n_msgs : 1, sizeof *marked);
    marks = calloc(n_msgs ? n_msgs : 1, sizeof *marks);
    st = roj_error(ROJ_ERR_NOMEM, "chat: out of memory");
    if (!marked || !marks)
        goto cleanup;
    for (size_t i = 0; i < n_msgs; i++) {
        snprintf(marks[i], sizeof marks[i], CONTENT_MARK "%zu\x01", i);
        marked[i] = (roj_chat_message){msgs[i].role, marks[i]};
    }
    st = roj_chat_render(&c->render, marked, n_msgs, &layout, NULL);
    if (st != ROJ_OK)
        goto cleanup;

    /* Walk both renderings: markup with parsing, contents without. */
    if (roj_vocab_add_bos(c->vocab) && bos != ROJ_TOKEN_NULL)
        st = token_buf_push(&t, &bos, 1);
    pos = text;
    at = layout;
    while (st == ROJ_OK) {
        const char *mark = strstr(at, CONTENT_MARK), *next, *content;
        size_t markup_len = mark ? (size_t)(mark - at) : strlen(at);
        size_t index = 0, follow_len, len = 0;
        char *end = NULL;

        st = token_buf_text(&t, c->vocab, pos, markup_len,
                            ROJ_TOKENIZE_PARSE_SPECIAL);
        pos += markup_len;
        if (!mark || st != ROJ_OK)
            break;
        index = strtoul(mark + strlen(CONTENT_MARK), &end, 10);
        at = end + 1;
        next = strstr(at, CONTENT_MARK);
        follow_len = next ? (size_t)(next - at) : strlen(at);
        content = index < n_msgs ? content_at(pos, msgs[index].content, at,
                                              follow_len, &len)
                                 : NULL;
        if (!content) {
            st = roj_error(ROJ_ERR_UNSUPPORTED, "chat: cannot find message "
                           "%zu in the rendered template; run with "
                           "--parse-special", index);
            break;
        }
        st = token_buf_text(&t, c->vocab, content, len, 0);
        pos += len;
    }
    if (st == ROJ_OK && roj_vocab_add_eos(c->vocab) && eos != ROJ_TOKEN_NULL)
        st = token_buf_push(&t, &eos, 1);
    if (st == ROJ_OK) {
        *tokens = t.ids;
        *n = t.n;
        t.ids = NULL;
    }

cleanup:
    free(t.ids);
    free(layout);
    free(marks);
    free(marked);
    free(text);
    return st;
}

/* Tokenizes the whole conversation; see chat_tokenize(). */
static roj_status chat_tokens(struct chat *c, roj_token **tokens, size_t *n)
{
    return chat_tokenize(c, c->msgs, c->n_msgs, tokens, n);
}

/* Positions kept free for the answer. */
static int32_t chat_reserve(const struct chat *c)
{
    return c->n_predict > 0 && c->n_predict < c->n_ctx / 2 ? c->n_predict
                                                           : c->n_ctx / 4;
}

/* Tokens of the fixed messages followed by the newest one alone: the
 * shortest prompt that still contains the newest message. Returns the
 * count, or -1 after printing an error. */
static int64_t chat_min_tokens(struct chat *c)
{
    roj_chat_message msgs[2];
    size_t n_msgs = 0, n = 0;
    roj_token *tokens = NULL;

    if (c->n_fixed)
        msgs[n_msgs++] = c->msgs[0];
    if (c->n_msgs > c->n_fixed)
        msgs[n_msgs++] = c->msgs[c->n_msgs - 1];
    if (chat_tokenize(c, msgs, n_msgs, &tokens, &n) != ROJ_OK) {
        cli_runtime_error("chat", "cannot render the conversation");
        return -1;
    }
    free(tokens);
    return (int64_t)n;
}

/* Tokenizes the conversation, dropping the oldest turns until it leaves
 * `reserve` positions for the answer. Returns 0 on success, 1 when even
 * the newest message alone does not fit (it is removed and no turn is
 * dropped) and -1 on an error; both print a message. */
static int chat_fit(struct chat *c, int32_t reserve, roj_token **tokens,
                     size_t *n)
{
    int64_t min_tokens = chat_min_tokens(c);

    if (min_tokens < 0)
        return -1;
    if (min_tokens + reserve > c->n_ctx) {
        fprintf(stderr, "roj chat: the message is %lld tokens with the "
                "template%s, but the context holds %d with %d kept for "
                "the answer; send a shorter message or raise -c\n",
                (long long)min_tokens,
                c->n_fixed ? " and the system message" : "", c->n_ctx,
                reserve);
        chat_remove(c, c->n_msgs - 1, 1);
        return 1;
    }
    for (;;) {
        if (chat_tokens(c, tokens, n) != ROJ_OK) {
            cli_runtime_error("chat", "cannot render the conversation");
            return -1;
        }
        if (*n + (size_t)reserve <= (size_t)c->n_ctx)
            return 0;
        free(*tokens);
        *tokens = NULL;
        if (c->n_msgs - c->n_fixed <= 1) {
            /* chat_min_tokens() reported that it fits: only a template that
             * renders differently with more turns gets here. */
            fprintf(stderr, "roj chat: the message does not fit in the "
                    "context of %d tokens; send a shorter message or raise "
                    "-c\n", c->n_ctx);
            chat_remove(c, c->n_msgs - 1, 1);
            return 1;
        }
        /* Drop the oldest user turn and the answer after it. */
        chat_remove(c, c->n_fixed,
                    c->n_msgs - c->n_fixed >= 3 ? 2 : 1);
        fprintf(stderr, "[context full: dropped the oldest turn]\n");
    }
}

/* Evaluates what the cache lacks of tokens[0..n), keeping the common
 * prefix, so that the cache ends with the last prompt token's logits. */
static roj_status chat_sync_cache(struct chat *c, const roj_token *tokens,
                                  int32_t n)
{
    int32_t keep = 0;
    roj_status st;

    if (n <= 0)
        return roj_error(ROJ_ERR_INVALID_ARG, "the rendered prompt is empty");
    while (keep < n && keep < c->n_cached && c->cached[keep] == tokens[keep])
        keep++;
    if (keep == n)
        keep = n - 1; /* re-evaluate one token to get fresh logits */
    st = roj_seq_truncate(c->ctx, 0, keep);
    if (st == ROJ_OK)
        st = roj_decode_tokens(c->ctx, 0, tokens + keep, (size_t)(n - keep));
    if (st != ROJ_OK) {
        c->n_cached = roj_seq_len(c->ctx, 0);
        return st;
    }
    memcpy(c->cached + keep, tokens + keep, (size_t)(n - keep) * sizeof *tokens);
    c->n_cached = n;
    for (int32_t i = keep; i < n; i++)
        roj_sampler_accept(c->sampler, tokens[i]);
    if (c->verbose)
        fprintf(stderr, "[%d tokens reused from the cache, %d evaluated]\n",
                keep, n - keep);
    return ROJ_OK;
}

/* Samples and streams the answer after the prompt in the cache. Every
 * token but the one that ended the answer is evaluated and mirrored. */
static roj_status chat_answer(struct chat *c, roj_stop_reason *reason)
{
    roj_status st = ROJ_OK;

    *reason = ROJ_STOP_NONE;
    roj_streamer_reset(c->streamer);
    for (;;) {
        const float *logits = roj_get_logits(c->ctx, -1);
        roj_token token = ROJ_TOKEN_NULL;

        st = roj_sampler_sample(c->sampler, logits, &token, NULL);
        if (st != ROJ_OK)
            break;
        roj_sampler_accept(c->sampler, token);
        st = roj_streamer_push(c->streamer, token, reason);
        if (st != ROJ_OK || *reason != ROJ_STOP_NONE)
            break;
        if (c->n_cached >= c->n_ctx) {
            *reason = ROJ_STOP_CONTEXT_FULL;
            break;
        }
        st = roj_decode_tokens(c->ctx, 0, &token, 1);
        if (st == ROJ_ERR_ABORTED) {
            /* Ctrl-C: the token was shown but is not in the cache. */
            *reason = ROJ_STOP_CALLBACK;
            st = ROJ_OK;
            break;
        }
        if (st != ROJ_OK)
            break;
        c->cached[c->n_cached++] = token;
    }
    if (st == ROJ_OK)
        st = roj_streamer_finish(c->streamer);
    return st;
}

/* Runs one turn for the user's line. Returns false on a runtime error. */
static bool chat_turn(struct chat *c, const char *line)
{
    int32_t reserve = chat_reserve(c);
    roj_token *tokens = NULL;
    size_t n = 0;
    roj_stop_reason reason = ROJ_STOP_NONE;
    roj_status st;
    double t0, ms;
    int32_t n_gen;
    bool ok = false;
    int fit;

    if (!chat_add(c, "user", line))
        return false;
    fit = chat_fit(c, reserve, &tokens, &n);
    if (fit != 0)
        return fit > 0;
    stop_answer = 0;
    busy = 1;
    st = chat_sync_cache(c, tokens, (int32_t)n);
    if (st == ROJ_ERR_ABORTED) {
        /* The cache keeps the tokens it held before the call. */
        busy = 0;
        fprintf(stderr, "[interrupted: the message was not sent]\n");
        chat_remove(c, c->n_msgs - 1, 1);
        ok = true;
        goto cleanup;
    }
    if (st != ROJ_OK) {
        busy = 0;
        cli_runtime_error("chat", "prompt evaluation failed");
        goto cleanup;
    }

    t0 = cli_now_ms();
    if (chat_answer(c, &reason) != ROJ_OK) {
        busy = 0;
        cli_runtime_error("chat", "generation failed");
        goto cleanup;
    }
    busy = 0;
    ms = cli_now_ms() - t0;
    n_gen = roj_streamer_n_tokens(c->streamer);
    if (!cli_write_stdout("\n", 1)) {
        cli_report_stdout_error("chat");
        goto cleanup;
    }
    if (stop_answer || reason == ROJ_STOP_CALLBACK)
        fprintf(stderr, "[answer stopped]\n");
    else if (reason == ROJ_STOP_CONTEXT_FULL)
        fprintf(stderr, "[context full: the answer was cut; the oldest "
                "turns are dropped from the next prompt]\n");
    if (c->verbose)
        fprintf(stderr, "[%d tokens in %.1f ms, %.2f t/s, stopped by %s]\n",
                n_gen, ms, ms > 0 ? n_gen * 1e3 / ms : 0.0,
                stop_answer ? "interrupt" : roj_stop_reason_name(reason));
    ok = chat_add(c, "assistant", roj_streamer_text(c->streamer, NULL));

cleanup:
    free(tokens);
    return ok;
}

/* Forgets every turn except the system message. */
static void chat_clear(struct chat *c)
{
    chat_remove(c, c->n_fixed, c->n_msgs - c->n_fixed);
    c->n_cached = 0;
    roj_seq_truncate(c->ctx, 0, 0);
    roj_sampler_reset(c->sampler, c->seed);
}

/* Reads lines until end of input. Returns the exit status. */
static int chat_loop(struct chat *c)
{
    bool interactive = isatty(STDIN_FILENO) == 1;
    char *line = NULL;
    size_t cap = 0;
    int rc = CLI_EXIT_OK;

    for (;;) {
        ssize_t len;

        if (interactive) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        errno = 0;
        len = getline(&line, &cap, stdin);
        if (len < 0) {
            if (interactive)
                fputc('\n', stdout);
            break;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (!strcmp(line, "/clear")) {
            chat_clear(c);
            fprintf(stderr, "[conversation cleared]\n");
            continue;
        }
        if (!chat_turn(c, line) || cli_stdout_errno()) {
            rc = CLI_EXIT_RUNTIME;
            break;
        }
    }
    free(line);
    return rc;
}

static size_t build_options(struct chat_opts *o, cli_option *opts)
{
    size_t n = 0;

    opts[n++] = (cli_option){"-m", "--model", CLI_STRING, &o->model, "FILE",
                             "GGUF model file to run (required)"};
    opts[n++] = (cli_option){"-s", "--system", CLI_STRING, &o->system,
                             "TEXT", "system message that starts the "
                             "conversation and is never dropped"};
    opts[n++] = (cli_option){"-n", "--n-predict", CLI_INT, &o->n_predict,
                             "N", "max tokens per answer; -1 = until end "
                             "of generation or a full context (default -1)"};
    opts[n++] = (cli_option){"-c", "--ctx-size", CLI_INT, &o->n_ctx, "N",
                             "context size in tokens; 0 = the model's, at "
                             "most 4096 (default 0)"};
    opts[n++] = (cli_option){"-t", "--threads", CLI_INT, &o->n_threads, "N",
                             "worker threads; 0 = one per core, up to 8 "
                             "(default 0)"};
    n += cli_sampling_options(&o->sampling, opts + n);
    opts[n++] = (cli_option){NULL, "--chat-template", CLI_STRING,
                             &o->chat_template, "NAME",
                             "template family instead of the file's: "
                             "chatml, llama3, llama2, zephyr, phi3, gemma, "
                             "none"};
    opts[n++] = (cli_option){NULL, "--parse-special", CLI_FLAG,
                             &o->parse_special, NULL,
                             "let message text such as <|im_end|> become "
                             "control tokens, as llama-cli does (default: "
                             "plain text)"};
    opts[n++] = (cli_option){NULL, "--no-parse-special", CLI_FLAG_OFF,
                             &o->parse_special, NULL,
                             "tokenize control-token text in messages as "
                             "plain text (the default)"};
    opts[n++] = (cli_option){"-v", "--verbose", CLI_FLAG, &o->verbose, NULL,
                             "print library logs and per-turn token counts "
                             "and speed on stderr"};
    return n;
}

/* Creates the sampler, streamer and cache mirror, then runs the loop. */
static int chat_run(const struct chat_opts *o, struct chat *c)
{
    roj_sampler_params sp = cli_sampler_params(&o->sampling);
    roj_streamer_params stp = {.max_tokens = o->n_predict,
                               .on_text = write_text};
    struct sigaction sa;

    c->vocab = roj_model_vocab(c->model);
    c->n_ctx = roj_context_n_ctx(c->ctx);
    c->n_predict = o->n_predict;
    c->seed = sp.seed;
    c->verbose = o->verbose;
    c->parse_special = o->parse_special;
    c->render.add_generation_prompt = true;
    c->render.vocab = c->vocab;
    if (roj_chat_family_for_model(c->model, o->chat_template,
                                  &c->render.family) != ROJ_OK)
        return cli_runtime_error("chat", "cannot choose a chat template");
    if (roj_sampler_create(&sp, roj_model_n_vocab(c->model), &c->sampler) ||
        roj_streamer_create(c->vocab, &stp, &c->streamer))
        return cli_runtime_error("chat", "invalid sampling options");
    c->cached = malloc((size_t)c->n_ctx * sizeof *c->cached);
    if (!c->cached)
        return cli_runtime_error("chat", "out of memory");
    if (o->system) {
        int64_t n_system;
        if (!chat_add(c, "system", o->system))
            return cli_runtime_error("chat", "out of memory");
        c->n_fixed = 1;
        n_system = chat_min_tokens(c);
        if (n_system < 0)
            return CLI_EXIT_RUNTIME;
        if (n_system + chat_reserve(c) > c->n_ctx) {
            fprintf(stderr, "roj chat: the system message is %lld tokens "
                    "with the template, but the context holds %d with %d "
                    "kept for the answer; shorten -s or raise -c\n",
                    (long long)n_system, c->n_ctx, chat_reserve(c));
            return CLI_EXIT_RUNTIME;
        }
    }

    fprintf(stderr, "roj chat: %s, template %s, context %d tokens. "
            "Ctrl-D exits, Ctrl-C stops a message or an answer, "
            "/clear starts over.\n",
            roj_model_name(c->model),
            roj_chat_family_name(c->render.family), c->n_ctx);
    if (c->render.family == ROJ_CHAT_NONE)
        fprintf(stderr, "roj chat: the model has no chat template; turns "
                "are plain lines of text\n");

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: Ctrl-C at the prompt ends getline */
    sigaction(SIGINT, &sa, NULL);
    roj_context_set_abort(c->ctx, abort_requested, NULL);
    return chat_loop(c);
}

int cmd_chat(int argc, char **argv)
{
    struct chat_opts o = {.n_predict = -1};
    struct chat c = {0};
    cli_option opts[CHAT_MAX_OPTIONS];
    cli_command cmd = {
        .name = "chat",
        .usage = "-m FILE [options]",
        .summary = "Chat with a model: each line on stdin is a user message; "
                   "the answer is\nstreamed to stdout. The KV cache is "
                   "kept between turns.",
        .options = opts,
        .epilog = "Ctrl-D exits. Ctrl-C stops the evaluation of a message "
                  "or the current answer\nand returns to the prompt; a "
                  "second Ctrl-C, or one at the prompt, exits. '/clear' "
                  "forgets "
                  "the conversation but the system message.\nWhen the "
                  "context is full, the oldest turns are dropped (the "
                  "system message\nstays) and the rest is evaluated again "
                  "from the first changed token.",
    };
    double load_ms = 0;
    int rc;

    cli_sampling_defaults(&o.sampling);
    cmd.n_options = build_options(&o, opts);
    rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0)
        return rc;
    if (!o.model)
        return cli_usage_error("chat", "missing -m FILE");
    if (cli_check_ctx_threads("chat", o.n_ctx, o.n_threads) >= 0 ||
        cli_sampling_check("chat", &o.sampling) >= 0)
        return CLI_EXIT_USAGE;
    if (o.n_predict < -1)
        return cli_usage_error("chat", "-n must be >= -1 (-1 = no limit), "
                               "not %d", o.n_predict);
    cli_log_setup(o.verbose);

    rc = cli_model_load("chat", o.model, o.n_ctx, o.n_threads, 0, &c.model,
                        &c.ctx, &load_ms);
    if (rc == CLI_EXIT_OK)
        rc = chat_run(&o, &c);
    rc = cli_finish_stdout("chat", rc);

    chat_remove(&c, 0, c.n_msgs);
    free(c.msgs);
    free(c.cached);
    roj_streamer_free(c.streamer);
    roj_sampler_free(c.sampler);
    roj_context_free(c.ctx);
    roj_model_free(c.model);
    return rc;
}
