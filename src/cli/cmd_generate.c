/*
 * roj generate: complete a prompt and stream the new text to stdout.
 *
 * Only generated text goes to stdout, flushed after every piece, so the
 * output can be piped. Load time, token counts and speeds go to stderr.
 * The prompt is tokenized as llama.cpp's llama-cli does: BOS is added when
 * the vocab's add_bos flag is set, and text that spells a control token such as
 * "<|im_start|>" becomes that token (--no-parse-special turns this off).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "roj/chat.h"
#include "roj/constrain.h"
#include "roj/context.h"
#include "roj/model.h"
#include "roj/sampler.h"
#include "roj/tokenizer.h"

#define GENERATE_MAX_OPTIONS 40

struct generate_opts {
    const char *model;
    const char *prompt;
    const char *prompt_file;
    const char *system;
    const char *chat_template;
    const char *choice;
    const char *json_schema;
    const char *json_schema_file;
    int32_t n_predict;
    int32_t n_ctx;
    int32_t n_threads;
    bool no_bos;
    bool parse_special;
    bool special_out;
    bool chat;
    bool verbose;
    cli_sampling sampling;
    cli_strings stop;
    cli_strings lora;
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    if (interrupted)
        _exit(130);
    interrupted = 1;
}

/* Abort callback of the context: stops a decode between layers. */
static bool abort_requested(void *user_data)
{
    (void)user_data;
    return interrupted != 0;
}

/* Writes and flushes one piece; a failed write (EPIPE with SIGPIPE
 * ignored, ENOSPC) stops the generation. */
static bool write_text(const char *text, size_t len, void *user_data)
{
    (void)user_data;
    return cli_write_stdout(text, len) && !interrupted;
}

static size_t build_options(struct generate_opts *o, cli_option *opts)
{
    size_t n = 0;

    opts[n++] = (cli_option){"-m", "--model", CLI_STRING, &o->model, "FILE",
                             "GGUF model file to run (required)"};
    opts[n++] = (cli_option){"-p", "--prompt", CLI_STRING, &o->prompt,
                             "TEXT", "prompt to complete"};
    opts[n++] = (cli_option){"-f", "--file", CLI_STRING, &o->prompt_file,
                             "FILE", "read the prompt from FILE"};
    opts[n++] = (cli_option){"-n", "--n-predict", CLI_INT, &o->n_predict,
                             "N", "max tokens to generate; -1 = until end "
                             "of generation or a full context; ignored with "
                             "--choice and -j (default 128)"};
    opts[n++] = (cli_option){"-c", "--ctx-size", CLI_INT, &o->n_ctx, "N",
                             "context size in tokens; 0 = the model's, at "
                             "most 4096 (default 0)"};
    opts[n++] = (cli_option){"-t", "--threads", CLI_INT, &o->n_threads, "N",
                             "worker threads; 0 = one per core, up to 8 "
                             "(default 0)"};
    opts[n++] = (cli_option){NULL, "--lora", CLI_STRINGS, &o->lora,
                             "FILE[:SCALE]", "apply the LoRA adapter FILE "
                             "with SCALE (default 1); repeatable"};
    n += cli_sampling_options(&o->sampling, opts + n);
    opts[n++] = (cli_option){NULL, "--stop", CLI_STRINGS, &o->stop, "TEXT",
                             "stop before TEXT appears; repeatable"};
    opts[n++] = (cli_option){NULL, "--no-bos", CLI_FLAG, &o->no_bos, NULL,
                             "do not add the BOS/EOS tokens that the vocab "
                             "requests"};
    opts[n++] = (cli_option){NULL, "--no-parse-special", CLI_FLAG_OFF,
                             &o->parse_special, NULL,
                             "tokenize control-token text in the prompt "
                             "as plain text"};
    opts[n++] = (cli_option){"-sp", "--special", CLI_FLAG, &o->special_out,
                             NULL, "print control tokens in the output"};
    opts[n++] = (cli_option){NULL, "--chat", CLI_FLAG, &o->chat, NULL,
                             "wrap the prompt in the model's chat template "
                             "as a user message"};
    opts[n++] = (cli_option){"-s", "--system", CLI_STRING, &o->system,
                             "TEXT", "system message; needs --chat"};
    opts[n++] = (cli_option){NULL, "--chat-template", CLI_STRING,
                             &o->chat_template, "NAME",
                             "template family instead of the file's "
                             "tokenizer.chat_template; needs --chat: "
                             "chatml, llama3, llama2, zephyr, phi3, gemma, "
                             "none"};
    opts[n++] = (cli_option){NULL, "--choice", CLI_STRING, &o->choice,
                             "A,B,...", "print the most likely of these "
                             "comma-separated answers instead of free text"};
    opts[n++] = (cli_option){"-j", "--json-schema", CLI_STRING,
                             &o->json_schema, "SCHEMA",
                             "print a JSON object that follows SCHEMA (flat "
                             "properties of type string, integer, number, "
                             "boolean or enum)"};
    opts[n++] = (cli_option){"-jf", "--json-schema-file", CLI_STRING,
                             &o->json_schema_file, "FILE",
                             "same as -j with the schema read from FILE"};
    opts[n++] = (cli_option){"-v", "--verbose", CLI_FLAG, &o->verbose, NULL,
                             "print debug logs of the library on stderr"};
    return n;
}

/* Builds the prompt text: the -p text (or the -f file's contents), wrapped
 * in the chat template with --chat. Returns a new string or NULL after
 * printing the error. */
static char *prompt_text(const struct generate_opts *o,
                         const roj_model *model)
{
    char *text = NULL, *rendered = NULL;
    roj_chat_params cp = {0};
    roj_chat_message msgs[2];
    size_t n = 0;

    text = strdup(o->prompt);
    if (!o->chat || !text)
        return text;

    if (roj_chat_family_for_model(model, o->chat_template, &cp.family)) {
        cli_runtime_error("generate", "cannot choose a chat template");
        free(text);
        return NULL;
    }
    if (cp.family == ROJ_CHAT_NONE && !o->chat_template)
        fprintf(stderr, "roj generate: warning: %s has no "
                "tokenizer.chat_template; --chat uses the prompt as plain "
                "text (pick a template with --chat-template NAME)\n",
                o->model);
    cp.add_generation_prompt = true;
    cp.vocab = roj_model_vocab(model);
    if (o->system)
        msgs[n++] = (roj_chat_message){"system", o->system};
    msgs[n++] = (roj_chat_message){"user", text};
    if (roj_chat_render(&cp, msgs, n, &rendered, NULL) != ROJ_OK)
        cli_runtime_error("generate", "cannot render the chat template");
    free(text);
    return rendered;
}

/* ------------------------------------------------------------------ */
/* Constrained output (--choice, --json-schema) */

/* Converts one property of a JSON schema into a field. */
static bool schema_field(const cJSON *prop, roj_json_field *f,
                         const char ***values)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(prop, "type");
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(prop, "enum");
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(prop, "maxLength");
    const cJSON *item;
    size_t n = 0;

    f->key = prop->string;
    if (cJSON_IsNumber(max))
        f->max_length = (int32_t)max->valuedouble;
    if (cJSON_IsArray(choices)) {
        *values = calloc((size_t)cJSON_GetArraySize(choices) + 1,
                         sizeof **values);
        if (!*values)
            return false;
        cJSON_ArrayForEach(item, choices) {
            if (!cJSON_IsString(item))
                return false;
            (*values)[n++] = item->valuestring;
        }
        f->type = ROJ_JSON_ENUM;
        f->values = *values;
        f->n_values = n;
        return n > 0;
    }
    if (!cJSON_IsString(type))
        return false;
    if (!strcmp(type->valuestring, "string"))
        f->type = ROJ_JSON_STRING;
    else if (!strcmp(type->valuestring, "integer"))
        f->type = ROJ_JSON_INTEGER;
    else if (!strcmp(type->valuestring, "number"))
        f->type = ROJ_JSON_NUMBER;
    else if (!strcmp(type->valuestring, "boolean"))
        f->type = ROJ_JSON_BOOLEAN;
    else
        return false;
    return true;
}

/* Generates the JSON object of the schema after the prompt in the cache
 * and prints it. */
static int run_json(const struct generate_opts *o, roj_context *ctx,
                    roj_sampler *sampler, const float *logits)
{
    const roj_vocab *vocab = roj_model_vocab(roj_context_model(ctx));
    char *file_text = NULL, *json = NULL;
    cJSON *schema = NULL;
    const cJSON *props, *prop;
    roj_json_field *fields = NULL;
    const char ***values = NULL;
    roj_pieces *pieces = NULL;
    size_t n = 0;
    int rc = CLI_EXIT_USAGE;

    if (o->json_schema_file) {
        file_text = cli_read_file(o->json_schema_file, NULL);
        if (!file_text) {
            fprintf(stderr, "roj generate: cannot read schema file %s: %s\n",
                    o->json_schema_file, strerror(errno));
            return CLI_EXIT_RUNTIME;
        }
    }
    schema = cJSON_Parse(file_text ? file_text : o->json_schema);
    props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    if (!cJSON_IsObject(props) || !props->child) {
        cli_usage_error("generate", "the JSON schema must be an object with "
                        "a non-empty \"properties\" object");
        goto cleanup;
    }
    n = (size_t)cJSON_GetArraySize(props);
    fields = calloc(n, sizeof *fields);
    values = calloc(n, sizeof *values);
    if (!fields || !values)
        goto cleanup;
    n = 0;
    cJSON_ArrayForEach(prop, props) {
        if (!schema_field(prop, &fields[n], &values[n])) {
            cli_usage_error("generate", "schema property '%s' is not "
                            "supported: use \"type\" string, integer, "
                            "number or boolean, or an \"enum\" of strings",
                            prop->string);
            n++;
            goto cleanup;
        }
        n++;
    }
    rc = CLI_EXIT_RUNTIME;
    if (roj_pieces_create(vocab, &pieces) != ROJ_OK ||
        roj_generate_json(ctx, 0, logits, pieces, fields, n, sampler, &json,
                          NULL) != ROJ_OK) {
        rc = interrupted ? CLI_EXIT_INTERRUPTED
                         : cli_runtime_error("generate",
                                             "JSON generation failed");
        goto cleanup;
    }
    fputs(json, stdout);
    cli_flush_stdout();
    rc = CLI_EXIT_OK;

cleanup:
    for (size_t i = 0; values && i < n; i++)
        free(values[i]);
    free(values);
    free(fields);
    free(json);
    roj_pieces_free(pieces);
    cJSON_Delete(schema);
    free(file_text);
    return rc;
}

/* Scores the --choice labels after the prompt in the cache and prints the
 * best one. */
static int run_choice(const struct generate_opts *o, roj_context *ctx,
                      const float *logits)
{
    char *list = strdup(o->choice), *save = NULL;
    const char **labels = calloc(strlen(o->choice) + 1, sizeof *labels);
    roj_choice_params cp = {.score_eog = true, .normalize = true};
    roj_choice_result res = {0};
    size_t n = 0;
    double *probs = NULL;
    int rc = CLI_EXIT_RUNTIME;

    if (!list || !labels)
        goto cleanup;
    for (char *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save))
        labels[n++] = tok;
    if (n == 0) {
        rc = cli_usage_error("generate", "--choice needs at least one label");
        goto cleanup;
    }
    probs = calloc(n, sizeof *probs);
    res.probs = probs;
    if (!probs ||
        roj_choose(ctx, 0, logits, labels, n, &cp, &res) != ROJ_OK) {
        rc = interrupted ? CLI_EXIT_INTERRUPTED
                         : cli_runtime_error("generate",
                                             "scoring the choices failed");
        goto cleanup;
    }
    fputs(labels[res.best], stdout);
    cli_flush_stdout();
    for (size_t i = 0; o->verbose && i < n; i++)
        fprintf(stderr, "roj generate: choice '%s': p = %.4f\n", labels[i],
                probs[i]);
    rc = CLI_EXIT_OK;

cleanup:
    free(probs);
    free(labels);
    free(list);
    return rc;
}

/* Evaluates the prompt, then runs --choice or --json-schema. */
static int run_constrained(const struct generate_opts *o, roj_context *ctx,
                           roj_sampler *sampler, const roj_token *tokens,
                           size_t n_tokens, roj_generate_result *r)
{
    double t0 = cli_now_ms();
    const float *logits;
    int rc;

    r->n_generated = -1; /* print_stats: not a token-by-token generation */
    if (roj_decode_tokens(ctx, 0, tokens, n_tokens) != ROJ_OK) {
        r->prompt_ms = cli_now_ms() - t0;
        if (interrupted)
            return CLI_EXIT_INTERRUPTED;
        return cli_runtime_error("generate", "prompt evaluation failed");
    }
    r->n_prompt = (int32_t)n_tokens;
    r->prompt_ms = cli_now_ms() - t0;
    logits = roj_get_logits(ctx, -1);
    t0 = cli_now_ms();
    if (o->choice)
        rc = run_choice(o, ctx, logits);
    else
        rc = run_json(o, ctx, sampler, logits);
    r->generate_ms = cli_now_ms() - t0;
    return rc;
}

static void print_stats(const struct generate_opts *o, const roj_model *m,
                        double load_ms, const roj_generate_result *r)
{
    char size[32], params[32];
    double pp_ts = r->prompt_ms > 0 ? r->n_prompt * 1e3 / r->prompt_ms : 0;
    double tg_ts =
        r->generate_ms > 0 ? r->n_generated * 1e3 / r->generate_ms : 0;

    if (isatty(STDOUT_FILENO))
        fputc('\n', stderr);
    fprintf(stderr, "roj generate: model %s (%s, %s params, %s) loaded "
            "in %.1f ms\n", o->model, roj_model_arch(m),
            cli_format_params(roj_model_n_params(m), params, sizeof params),
            cli_format_size(roj_model_size(m), size, sizeof size), load_ms);
    if (r->n_prompt == 0 && interrupted) {
        /* An aborted decode evaluates nothing, so no speed exists. */
        fprintf(stderr, "roj generate: prompt: interrupted after %.1f ms\n",
                r->prompt_ms);
        return;
    }
    fprintf(stderr, "roj generate: prompt: %d tokens in %.1f ms "
            "(%.2f t/s)\n", r->n_prompt, r->prompt_ms, pp_ts);
    if (r->n_generated < 0) {
        fprintf(stderr, "roj generate: constrained answer %s %.1f ms\n",
                interrupted ? "interrupted after" : "in", r->generate_ms);
        return;
    }
    fprintf(stderr, "roj generate: generation: %d tokens in %.1f ms "
            "(%.2f t/s), stopped by %s\n", r->n_generated, r->generate_ms,
            tg_ts, interrupted ? "interrupt"
                   : cli_stdout_errno() ? "write error"
                                 : roj_stop_reason_name(r->reason));
}

/* Opens the --lora adapters on model and sets them on ctx. Returns
 * CLI_EXIT_OK with the adapters in *out (freed by the caller after ctx),
 * or prints the error and returns CLI_EXIT_USAGE or CLI_EXIT_RUNTIME. */
static int load_adapters(const struct generate_opts *o, roj_model *model,
                         roj_context *ctx, roj_lora ***out)
{
    const size_t n = o->lora.n;
    roj_lora **adapters = calloc(n + 1, sizeof *adapters);
    float *scales = calloc(n + 1, sizeof *scales);
    char *path = NULL;
    int rc = CLI_EXIT_RUNTIME;

    *out = adapters;
    if (!adapters || !scales)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        if (!cli_split_lora_arg(o->lora.items[i], &path, &scales[i])) {
            rc = cli_usage_error("generate", "invalid --lora '%s'; give "
                                 "FILE or FILE:SCALE", o->lora.items[i]);
            goto cleanup;
        }
        if (roj_lora_open(model, path, &adapters[i]) != ROJ_OK) {
            cli_path_error("generate", "cannot load LoRA adapter", path,
                           roj_last_error());
            goto cleanup;
        }
        if (o->verbose)
            fprintf(stderr, "roj generate: LoRA adapter %s: %zu tensors, "
                    "alpha %g, scale %g\n", path,
                    roj_lora_n_tensors(adapters[i]),
                    (double)roj_lora_alpha(adapters[i]), (double)scales[i]);
        free(path);
        path = NULL;
    }
    if (roj_context_set_lora(ctx, (const roj_lora *const *)adapters, scales,
                             n) != ROJ_OK) {
        cli_runtime_error("generate", "cannot set the LoRA adapters");
        goto cleanup;
    }
    rc = CLI_EXIT_OK;

cleanup:
    free(path);
    free(scales);
    return rc;
}

/* Tokenizes the prompt, checks it fits, generates and prints statistics. */
static int run(const struct generate_opts *o, roj_model *model,
               roj_context *ctx, double load_ms)
{
    const roj_vocab *vocab = roj_model_vocab(model);
    roj_sampler_params sp = cli_sampler_params(&o->sampling);
    roj_streamer_params stp = {0};
    roj_generate_result r = {0};
    roj_sampler *sampler = NULL;
    roj_streamer *streamer = NULL;
    roj_token *tokens = NULL;
    size_t n_tokens = 0;
    unsigned flags = 0;
    int32_t n_ctx = roj_context_n_ctx(ctx);
    char *text = prompt_text(o, model);
    roj_status st = ROJ_OK;
    double t0;
    int rc = CLI_EXIT_RUNTIME;

    if (!text)
        goto cleanup;
    if (!o->no_bos)
        flags |= ROJ_TOKENIZE_ADD_SPECIAL;
    if (o->parse_special || o->chat)
        flags |= ROJ_TOKENIZE_PARSE_SPECIAL;
    if (roj_tokenize(vocab, text, strlen(text), flags, &tokens, &n_tokens)) {
        rc = cli_runtime_error("generate", "cannot tokenize the prompt");
        goto cleanup;
    }
    if (n_tokens == 0) {
        fprintf(stderr, "roj generate: the prompt is empty and the vocab "
                "adds no BOS; give a prompt with -p or -f\n");
        goto cleanup;
    }
    if (n_tokens >= (size_t)n_ctx) {
        fprintf(stderr, "roj generate: the prompt is %zu tokens but the "
                "context holds %d, leaving no room to generate; raise -c "
                "or shorten the prompt\n", n_tokens, n_ctx);
        goto cleanup;
    }
    if (o->verbose)
        fprintf(stderr, "roj generate: %zu prompt tokens, seed %llu\n",
                n_tokens, (unsigned long long)sp.seed);

    stp.stop = o->stop.items;
    stp.n_stop = o->stop.n;
    stp.max_tokens = o->n_predict;
    stp.detok_flags = o->special_out ? ROJ_DETOK_RENDER_SPECIAL : 0;
    stp.on_text = write_text;
    if (roj_sampler_create(&sp, roj_model_n_vocab(model), &sampler) ||
        roj_streamer_create(vocab, &stp, &streamer)) {
        rc = cli_runtime_error("generate", "invalid sampling options");
        goto cleanup;
    }

    t0 = cli_now_ms();
    if (o->choice || o->json_schema || o->json_schema_file) {
        rc = run_constrained(o, ctx, sampler, tokens, n_tokens, &r);
        if (rc != CLI_EXIT_OK && rc != CLI_EXIT_INTERRUPTED)
            goto cleanup;
    } else if (o->n_predict == 0) {
        /* Evaluate the prompt only, for its timing. */
        st = roj_decode_tokens(ctx, 0, tokens, n_tokens);
        r.n_prompt = st == ROJ_OK ? (int32_t)n_tokens : 0;
        r.prompt_ms = cli_now_ms() - t0;
        r.reason = ROJ_STOP_MAX_TOKENS;
    } else {
        st = roj_generate(ctx, 0, tokens, n_tokens, sampler, streamer, &r);
        if (st == ROJ_ERR_ABORTED) {
            /* roj_generate skips the streamer's held-back text and the
             * timings when a decode is aborted. */
            double ms = cli_now_ms() - t0;
            roj_streamer_finish(streamer);
            if (r.n_prompt == 0)
                r.prompt_ms = ms;
            else
                r.generate_ms = ms - r.prompt_ms;
        }
    }
    if (st != ROJ_OK && !interrupted) {
        rc = cli_runtime_error("generate", o->n_predict == 0
                               ? "prompt evaluation failed"
                               : "generation failed");
        goto cleanup;
    }
    if (interrupted)
        fprintf(stderr, "\nroj generate: interrupted\n");
    print_stats(o, model, load_ms, &r);
    rc = interrupted ? CLI_EXIT_INTERRUPTED : CLI_EXIT_OK;
    if (cli_report_stdout_error("generate"))
        rc = CLI_EXIT_RUNTIME;

cleanup:
    roj_streamer_free(streamer);
    roj_sampler_free(sampler);
    free(tokens);
    free(text);
    return rc;
}

int cmd_generate(int argc, char **argv)
{
    struct generate_opts o = {.n_predict = 128, .parse_special = true};
    cli_option opts[GENERATE_MAX_OPTIONS];
    cli_command cmd = {
        .name = "generate",
        .usage = "-m FILE (-p TEXT | -f FILE) [options]",
        .summary = "Complete a prompt. Only the generated text is written "
                   "to stdout;\nload time, token counts and speeds go to "
                   "stderr.",
        .options = opts,
        .epilog = "The prompt gets BOS when the vocab adds it, and control-"
                  "token text in it\n(\"<|im_end|>\") becomes the control "
                  "token, as in llama-cli.\nCtrl-C stops the prompt "
                  "evaluation or the generation, prints the statistics\n"
                  "and exits with status 130; a second Ctrl-C exits at "
                  "once.",
    };
    roj_model *model = NULL;
    roj_context *ctx = NULL;
    roj_lora **adapters = NULL;
    char *file_prompt = NULL;
    double load_ms = 0;
    int rc;

    cli_sampling_defaults(&o.sampling);
    cmd.n_options = build_options(&o, opts);
    rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0)
        goto done;
    rc = CLI_EXIT_USAGE;
    if (!o.model) {
        cli_usage_error("generate", "missing -m FILE");
        goto done;
    }
    if (!o.prompt && !o.prompt_file) {
        cli_usage_error("generate", "missing -p TEXT or -f FILE");
        goto done;
    }
    if (o.prompt && o.prompt_file) {
        cli_usage_error("generate", "give either -p or -f, not both");
        goto done;
    }
    if (cli_check_ctx_threads("generate", o.n_ctx, o.n_threads) >= 0 ||
        cli_sampling_check("generate", &o.sampling) >= 0)
        goto done;
    if (o.n_predict < -1) {
        cli_usage_error("generate", "-n must be >= -1 (-1 = no limit), "
                        "not %d", o.n_predict);
        goto done;
    }
    if ((o.system || o.chat_template) && !o.chat) {
        cli_usage_error("generate", "%s needs --chat",
                        o.system ? "-s/--system" : "--chat-template");
        goto done;
    }
    if (!!o.choice + !!o.json_schema + !!o.json_schema_file > 1) {
        cli_usage_error("generate", "give only one of --choice, -j and -jf");
        goto done;
    }
    for (size_t i = 0; i < o.stop.n; i++) {
        if (!o.stop.items[i][0]) {
            cli_usage_error("generate", "--stop needs a non-empty TEXT");
            goto done;
        }
    }
    cli_log_setup(o.verbose);
    if (o.prompt_file) {
        /* Read the file before the model so a bad path fails at once. */
        file_prompt = cli_read_file(o.prompt_file, NULL);
        if (!file_prompt) {
            fprintf(stderr, "roj generate: cannot read prompt file %s: %s\n",
                    o.prompt_file, strerror(errno));
            rc = CLI_EXIT_RUNTIME;
            goto done;
        }
        o.prompt = file_prompt;
    }

    rc = cli_model_load("generate", o.model, o.n_ctx, o.n_threads, 0, &model,
                        &ctx, &load_ms);
    if (rc != CLI_EXIT_OK)
        goto done;
    if (o.lora.n > 0 &&
        (rc = load_adapters(&o, model, ctx, &adapters)) != CLI_EXIT_OK)
        goto done;
    signal(SIGINT, on_sigint);
    roj_context_set_abort(ctx, abort_requested, NULL);
    rc = run(&o, model, ctx, load_ms);
    signal(SIGINT, SIG_DFL);
    rc = cli_finish_stdout("generate", rc);

done:
    roj_context_free(ctx);
    for (size_t i = 0; adapters && i < o.lora.n; i++)
        roj_lora_free(adapters[i]);
    free(adapters);
    roj_model_free(model);
    free(file_prompt);
    cli_free_lists(&cmd);
    return rc;
}
