/*
 * roj train --task classify|extract|generate --data FILE --out MODEL.gguf:
 * trains a specialist from labeled data (from scratch, or from --base) and
 * writes a GGUF that roj and llama.cpp load.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_data.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "core/error.h"
#include "train/trainer.h"

static volatile int stop_flag;
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
    stop_flag = 1;
}

static bool parse_targets(const char *s, unsigned *out)
{
    static const struct { const char *name; unsigned bit; } t[] = {
        {"q", TLORA_Q}, {"k", TLORA_K}, {"v", TLORA_V}, {"o", TLORA_O},
        {"gate", TLORA_GATE}, {"up", TLORA_UP}, {"down", TLORA_DOWN},
        {"all", 0x7f}};
    unsigned bits = 0;
    char *copy = strdup(s);
    if (!copy)
        return false;
    for (char *save, *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        bool found = false;
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
            if (!strcmp(tok, t[i].name)) {
                bits |= t[i].bit;
                found = true;
            }
        if (!found) {
            free(copy);
            return false;
        }
    }
    free(copy);
    *out = bits;
    return bits != 0;
}

/* Turns the escapes \n, \t and \\ of a template typed in a shell into
 * their characters; returns a new string. */
static char *unescape(const char *s)
{
    char *out = malloc(strlen(s) + 1), *d = out;
    if (!out)
        return NULL;
    for (; *s; s++) {
        if (*s == '\\' && s[1] == 'n') {
            *d++ = '\n';
            s++;
        } else if (*s == '\\' && s[1] == 't') {
            *d++ = '\t';
            s++;
        } else if (*s == '\\' && s[1] == '\\') {
            *d++ = '\\';
            s++;
        } else {
            *d++ = *s;
        }
    }
    *d = '\0';
    return out;
}

/* Returns what is wrong with a template, or NULL: it needs {text},
 * {slot} only makes sense for extract, and other {names} are typos. */
static const char *check_template(const char *t, train_task task)
{
    if (!strstr(t, "{text}"))
        return "it has no {text}, so the model would never see the input";
    if (task != TRAIN_EXTRACT && strstr(t, "{slot}"))
        return "{slot} is only filled for --task extract";
    for (const char *p = t; (p = strchr(p, '{')); p++)
        if (strncmp(p, "{text}", 6) && strncmp(p, "{slot}", 6) &&
            strncmp(p, "{context}", 9))
            return "unknown placeholder; use {text}, {slot} or {context}";
    return NULL;
}

int cmd_train(int argc, char **argv)
{
    train_opts o;
    train_opts_default(&o);
    const char *task = "classify", *budget = NULL, *targets = NULL;
    const char *type = "f32", *labels = NULL;
    int32_t vocab = -1;       /* -1: not given */
    o.max_steps = -1;
    o.epochs = -1;
    o.shape = (tshape){.n_embd = -1, .n_layer = -1, .n_head = -1,
                       .n_head_kv = -1, .n_ff = -1, .n_ctx = -1};
    float valid_fraction = (float)o.valid_fraction;
    bool no_plot = false;
    bool keep_best = false, keep_last = false;
    cli_option opts[] = {
        {NULL, "--task", CLI_STRING, &task, "KIND",
         "classify, extract or generate (classify)"},
        {"-d", "--data", CLI_STRING, &o.data_path, "FILE",
         "training data: .csv, .tsv, .jsonl or .json (required)"},
        {"-o", "--out", CLI_STRING, &o.out_path, "FILE",
         "output model, GGUF (required)"},
        {NULL, "--valid", CLI_STRING, &o.valid_path, "FILE",
         "validation data (default: split off --valid-fraction)"},
        {NULL, "--valid-fraction", CLI_FLOAT, &valid_fraction, "F",
         "share of the data held out for validation (0.1; classify: at "
         "most 500 examples)"},
        CLI_DATA_OPTIONS(o.data),
        {NULL, "--labels", CLI_STRING, &labels, "A,B,...",
         "fixed label (or slot) set; other labels are errors"},
        {NULL, "--preset", CLI_STRING, &o.preset, "NAME",
         "model size: tiny (~1M), small (~5M), medium (~15M), large "
         "(~30M) (tiny)"},
        {NULL, "--n-embd", CLI_INT, &o.shape.n_embd, "N", "width"},
        {NULL, "--n-layer", CLI_INT, &o.shape.n_layer, "N", "layers"},
        {NULL, "--n-head", CLI_INT, &o.shape.n_head, "N", "attention heads"},
        {NULL, "--n-head-kv", CLI_INT, &o.shape.n_head_kv, "N",
         "key/value heads (grouped-query attention)"},
        {NULL, "--n-ff", CLI_INT, &o.shape.n_ff, "N", "feed-forward width"},
        {NULL, "--n-ctx", CLI_INT, &o.shape.n_ctx, "N",
         "context length in tokens (256)"},
        {NULL, "--vocab-size", CLI_INT, &vocab, "N",
         "tokenizer vocabulary trained on the data (preset's)"},
        {NULL, "--template", CLI_STRING, &o.template_text, "TEXT",
         "prompt template with {text}, {slot}, {context}; \\n is a "
         "newline (default per task)"},
        {NULL, "--base", CLI_STRING, &o.base_path, "FILE",
         "fine-tune this GGUF instead of training from scratch"},
        {NULL, "--lora-rank", CLI_INT, &o.lora_rank, "N",
         "with --base: train a LoRA adapter of this rank (0: full)"},
        {NULL, "--lora-alpha", CLI_FLOAT, &o.lora_alpha, "F",
         "LoRA alpha; scale = alpha / rank (rank)"},
        {NULL, "--lora-targets", CLI_STRING, &targets, "LIST",
         "matrices: q,k,v,o,gate,up,down or all (q,v)"},
        {NULL, "--epochs", CLI_INT, &o.epochs, "N",
         "passes over the data (classify 30, extract 4, generate 10)"},
        {NULL, "--steps", CLI_I64, &o.max_steps, "N",
         "optimizer steps (overrides --epochs)"},
        {NULL, "--time-budget", CLI_STRING, &budget, "TIME",
         "stop planning past this wall time: 90s, 10m, 1h"},
        {NULL, "--batch-tokens", CLI_INT, &o.batch_tokens, "N",
         "tokens per micro-batch (2048)"},
        {NULL, "--accum", CLI_INT, &o.accum, "N",
         "micro-batches per optimizer step (1)"},
        {NULL, "--lr", CLI_FLOAT, &o.lr, "F", "peak learning rate (3e-3)"},
        {NULL, "--min-lr", CLI_FLOAT, &o.min_lr_frac, "F",
         "final learning rate as a share of the peak (0.1)"},
        {NULL, "--weight-decay", CLI_FLOAT, &o.weight_decay, "F",
         "AdamW weight decay (0.1)"},
        {NULL, "--keep-best", CLI_FLAG, &keep_best, NULL,
         "write the weights that scored best at a validation pass (classify "
         "default)"},
        {NULL, "--best-by-loss", CLI_FLAG, &o.best_by_loss, NULL,
         "--keep-best picks the pass with the lowest validation loss "
         "instead of the highest accuracy"},
        {NULL, "--keep-last", CLI_FLAG, &keep_last, NULL,
         "write the weights of the last step (extract and generate "
         "default)"},
        {NULL, "--ema", CLI_FLOAT, &o.ema, "D",
         "validate and write a moving average of the weights with this "
         "decay per step, 0 .. 0.9999; 0: the weights themselves (classify "
         "0.998, else 0)"},
        {NULL, "--dropout", CLI_FLOAT, &o.dropout, "P",
         "residual dropout probability, 0 .. 0.9 (classify 0.1, extract "
         "0.05, generate 0)"},
        {NULL, "--augment", CLI_INT, &o.augment, "N",
         "extract: N copies of each labeled text with made-up span words "
         "(4; 0 with --base)"},
        {NULL, "--lm-weight", CLI_FLOAT, &o.lm_weight, "F",
         "also predict the input's own tokens, at this loss weight "
         "(classify 0.5, extract 0.3, generate 0)"},
        {NULL, "--token-dropout", CLI_FLOAT, &o.token_dropout, "P",
         "classify: delete each token of a training text with this "
         "probability, 0 .. 0.5, new draws every epoch (classify 0.2)"},
        {NULL, "--label-smoothing", CLI_FLOAT, &o.label_smoothing, "F",
         "classify: spread this share of each target over all labels, "
         "0 .. 0.5 (0)"},
        {NULL, "--clip", CLI_FLOAT, &o.clip, "F",
         "gradient norm clipping, 0 = off (1.0)"},
        {NULL, "--warmup", CLI_I64, &o.warmup, "N",
         "warm-up steps (5% of the run)"},
        {"-s", "--seed", CLI_I64, &o.seed, "N", "random seed (1)"},
        {"-t", "--threads", CLI_INT, &o.n_threads, "N",
         "threads (one per core, up to 8)"},
        {NULL, "--type", CLI_STRING, &type, "TYPE",
         "tensor type of the output: f32 or f16 (f32)"},
        {NULL, "--checkpoint", CLI_STRING, &o.checkpoint_path, "FILE",
         "checkpoint file (OUT.ckpt)"},
        {NULL, "--checkpoint-every", CLI_I64, &o.checkpoint_every, "N",
         "steps between checkpoints (0: every minute)"},
        {NULL, "--resume", CLI_FLAG, &o.resume, NULL,
         "continue from the checkpoint"},
        {NULL, "--eval-every", CLI_I64, &o.eval_every, "N",
         "steps between validation passes (10 per run)"},
        {NULL, "--metrics", CLI_STRING, &o.metrics_path, "FILE",
         "write metrics as JSON lines"},
        {NULL, "--plot", CLI_STRING, &o.plot_path, "FILE",
         "write the loss curve as a PNG (default: terminal chart)"},
        {NULL, "--no-plot", CLI_FLAG, &no_plot, NULL, "no loss chart"},
        {"-q", "--quiet", CLI_FLAG, &o.quiet, NULL, "no progress output"},
    };
    const cli_command cmd = {
        .name = "train",
        .usage = "--task KIND --data FILE --out MODEL.gguf [options]",
        .summary = "Trains a specialist model on labeled data and writes a "
                   "GGUF with its task,\nlabels and prompt template.",
        .options = opts,
        .n_options = sizeof opts / sizeof opts[0],
        .epilog = "Example:\n  roj train --task classify --data train.csv "
                  "--text-column text \\\n      --label-column category "
                  "--out intent.gguf\n",
    };
    int rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0)
        return rc;
    const bool steps_given = o.max_steps != -1;
    const bool vocab_given = vocab != -1;
    char **label_list = NULL;
    size_t n_labels = 0;
    if (!cli_parse_task(task, &o.task))
        return cli_usage_error("train", "--task %s: use classify, extract "
                               "or generate", task);
    if (!o.data_path || !o.out_path)
        return cli_usage_error("train", "--data and --out are required");
    o.valid_fraction = valid_fraction;
    if (valid_fraction != -1.0f &&
        !(valid_fraction >= 0 && valid_fraction < 1))
        return cli_usage_error("train", "--valid-fraction %g: use 0 .. 0.99",
                               (double)valid_fraction);
    if (budget && (o.time_budget = cli_parse_duration(budget)) <= 0)
        return cli_usage_error("train", "--time-budget %s: use 90s, 10m, "
                               "9m30s or 1h", budget);
    if (targets && !parse_targets(targets, &o.lora_targets))
        return cli_usage_error("train", "--lora-targets %s: use a list of "
                               "q,k,v,o,gate,up,down or all", targets);
    if (o.lora_rank < 0 || (o.lora_rank && !o.base_path))
        return cli_usage_error("train", "--lora-rank needs --base and a "
                               "rank >= 1");
    if (o.lora_rank && o.lora_alpha == 0.0f)
        o.lora_alpha = (float)o.lora_rank;
    if (!strcmp(type, "f32"))
        o.out_type = ROJ_TYPE_F32;
    else if (!strcmp(type, "f16"))
        o.out_type = ROJ_TYPE_F16;
    else
        return cli_usage_error("train", "--type %s: use f32 or f16 (then "
                               "roj quantize)", type);
    /* Each range check names its own option. */
    const struct { bool bad; const char *msg; } checks[] = {
        {o.epochs != -1 && o.epochs < 1, "--epochs must be at least 1"},
        {steps_given && o.max_steps < 1, "--steps must be at least 1"},
        {o.batch_tokens < 16, "--batch-tokens must be at least 16"},
        {o.accum < 1, "--accum must be at least 1"},
        {o.augment < -1 || o.augment > 100, "--augment must be 0 .. 100"},
        {o.n_threads < 0 || o.n_threads > 256, "--threads must be 0 .. 256"},
        {!(o.lr > 0), "--lr must be positive"},
        {!(o.min_lr_frac >= 0 && o.min_lr_frac <= 1), "--min-lr must be 0 .. 1"},
        {!(o.weight_decay >= 0), "--weight-decay must be >= 0"},
        {!(o.clip >= 0), "--clip must be >= 0 (0 turns it off)"},
        {vocab_given && vocab < 320,
         "--vocab-size must be at least 320"},
        {!(o.dropout == -1.0f || (o.dropout >= 0.0f && o.dropout <= 0.9f)),
         "--dropout must be 0 .. 0.9"},
        {o.task != TRAIN_CLASSIFY && o.token_dropout > 0.0f,
         "--token-dropout applies to --task classify only"},
        {o.task != TRAIN_CLASSIFY && o.label_smoothing > 0.0f,
         "--label-smoothing applies to --task classify only"},
        {o.base_path && o.label_smoothing > 0.0f,
         "--label-smoothing needs a classifier trained from scratch: with "
         "--base, labels are scored as text, not as label tokens"},
        {!(o.ema == -1.0f || (o.ema >= 0.0f && o.ema <= 0.9999f)),
         "--ema must be 0 .. 0.9999"},
        {keep_best && keep_last, "--keep-best and --keep-last exclude each "
         "other"},
        {!(o.lm_weight == -1.0f || o.lm_weight >= 0.0f),
         "--lm-weight must be >= 0"},
        {o.checkpoint_every < 0, "--checkpoint-every must be >= 0"},
        {o.eval_every < 0, "--eval-every must be >= 0"},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
        if (checks[i].bad)
            return cli_usage_error("train", "%s", checks[i].msg);
    /* Shares of 0 .. 0.5; -1 means the task's default. */
    const struct { float v; const char *name; } shares[] = {
        {o.label_smoothing, "--label-smoothing"},
        {o.token_dropout, "--token-dropout"}};
    for (size_t i = 0; i < sizeof shares / sizeof shares[0]; i++)
        if (shares[i].v != -1.0f && !(shares[i].v >= 0.0f &&
                                      shares[i].v <= 0.5f))
            return cli_usage_error("train", "%s %g: use 0 .. 0.5",
                                   shares[i].name, (double)shares[i].v);
    /* Shape options given as 0 or less are mistakes, not "unset". */
    const struct { int32_t v; const char *name; } dims[] = {
        {o.shape.n_embd, "--n-embd"}, {o.shape.n_layer, "--n-layer"},
        {o.shape.n_head, "--n-head"}, {o.shape.n_head_kv, "--n-head-kv"},
        {o.shape.n_ff, "--n-ff"}, {o.shape.n_ctx, "--n-ctx"}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v != -1 && dims[i].v < 1)
            return cli_usage_error("train", "%s must be at least 1",
                                   dims[i].name);
    int32_t *fields[] = {&o.shape.n_embd, &o.shape.n_layer, &o.shape.n_head,
                         &o.shape.n_head_kv, &o.shape.n_ff, &o.shape.n_ctx};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (*fields[i] == -1)
            *fields[i] = 0;   /* the preset's */
    if (!steps_given)
        o.max_steps = 0;
    if (o.epochs == -1)
        o.epochs = 0;   /* the task's default */
    if (!vocab_given)
        vocab = 0;
    if (o.preset && !train_preset_find(o.preset))
        return cli_usage_error("train", "--preset %s: use tiny, small, "
                               "medium or large", o.preset);
    o.vocab_size = (uint32_t)vocab;
    char *tmpl = NULL;
    if (o.template_text) {
        tmpl = unescape(o.template_text);
        if (!tmpl)
            return cli_usage_error("train", "out of memory");
        const char *bad = check_template(tmpl, o.task);
        if (bad) {
            free(tmpl);
            return cli_usage_error("train", "--template: %s", bad);
        }
        o.template_text = tmpl;
    }
    if (labels) {
        char *copy = strdup(labels);
        for (char *save, *t = copy ? strtok_r(copy, ",", &save) : NULL; t;
             t = strtok_r(NULL, ",", &save)) {
            char **nl = realloc(label_list, (n_labels + 1) * sizeof *nl);
            if (!nl)
                break;
            label_list = nl;
            label_list[n_labels++] = strdup(t);
        }
        free(copy);
        o.data.label_set = (const char *const *)label_list;
        o.data.n_label_set = n_labels;
    }
    o.no_plot = no_plot;
    o.keep_best = -1; /* the task's default */
    if (keep_best)
        o.keep_best = 1;
    if (keep_last)
        o.keep_best = 0;
    o.stop = &stop_flag;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    roj_status st = train_run(&o);
    for (size_t i = 0; i < n_labels; i++)
        free(label_list[i]);
    free(label_list);
    free(tmpl);
    if (st == ROJ_ERR_ABORTED) {
        fprintf(stderr, "\nroj train: %s\n", roj_last_error());
        return 128 + (stop_signal ? stop_signal : SIGINT);
    }
    if (st)
        return cli_runtime_error("train", "training failed");
    return CLI_EXIT_OK;
}
