/*
 * roj eval MODEL.gguf --data FILE [column options] [-o json]: measures a
 * specialist on labeled data through the inference engine, using the task,
 * labels and prompt template stored in the model. Classify reports
 * accuracy, macro-F1, per-label precision/recall and a confusion matrix;
 * extract reports exact match and F1 per slot; generate, perplexity.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_data.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "core/error.h"
#include "gguf/gguf.h"
#include "roj/constrain.h"
#include "roj/context.h"
#include "roj/model.h"
#include "train/metrics.h"
#include "train/specialist.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Draws "eval 1200/3080 [#####.....] 812/s ETA 0m02s" on stderr. */
static void eval_progress(size_t done, size_t total, double t0, bool quiet)
{
    static double last;
    const double t = (cli_now_ms() / 1000.0);
    const bool tty = isatty(2);
    if (quiet || (done < total && t - last < (tty ? 0.25 : 10.0)))
        return;
    last = t;
    const double rate = done / (t - t0 + 1e-9);
    const double eta = rate > 0 ? (double)(total - done) / rate : 0;
    char bar[21];
    for (int i = 0; i < 20; i++)
        bar[i] = i < (int)(20.0 * done / total) ? '#' : '.';
    bar[20] = '\0';
    fprintf(stderr, "%seval %zu/%zu [%s] %.0f/s ETA %dm%02ds%s",
            tty ? "\r" : "", done, total, bar, rate, (int)(eta / 60),
            (int)eta % 60, done == total || !tty ? "\n" : "");
}

static roj_status eval_classify(roj_context *ctx, const spec_info *info,
                                const train_dataset *d, cls_metrics *m,
                                bool quiet)
{
    int32_t *map = malloc((d->n_labels + 1) * sizeof *map);
    if (!map)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    roj_status st = train_data_map_labels(d, (const char *const *)info->labels,
                                          info->n_labels, map);
    if (!st)
        st = cls_metrics_init(m, info->n_labels,
                              (const char *const *)info->labels);
    enum { GROUP = 16 };
    const double t0 = (cli_now_ms() / 1000.0);
    for (size_t i = 0; !st && i < d->n; i += GROUP) {
        if (interrupted) {
            st = roj_error(ROJ_ERR_ABORTED, "interrupted after %zu examples",
                           i);
            break;
        }
        const char *texts[GROUP], *ctxs[GROUP];
        size_t lens[GROUP];
        int32_t best[GROUP];
        const size_t n = d->n - i < GROUP ? d->n - i : GROUP;
        for (size_t k = 0; k < n; k++) {
            texts[k] = d->ex[i + k].text;
            lens[k] = d->ex[i + k].text_len;
            ctxs[k] = d->ex[i + k].context;
        }
        if ((st = spec_classify(ctx, info, texts, lens, ctxs, n, best,
                                NULL)))
            break;
        for (size_t k = 0; k < n; k++)
            cls_metrics_add(m, map[d->ex[i + k].label], best[k]);
        eval_progress(i + n, d->n, t0, quiet);
    }
    free(map);
    if (!st)
        cls_metrics_finish(m);
    return st;
}

/* Trims ASCII white space, as the span decoder drops leading spaces. */
static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t' || **s == '\n')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' ||
                  (*s)[*n - 1] == '\n'))
        (*n)--;
}

static roj_status eval_extract(roj_context *ctx, const spec_info *info,
                               const train_dataset *d, span_metrics *m,
                               bool quiet)
{
    const roj_model *model = roj_context_model(ctx);
    roj_pieces *pieces = NULL;
    int32_t *map = malloc((d->n_labels + 1) * sizeof *map);
    roj_status st = map ? ROJ_OK : roj_error(ROJ_ERR_NOMEM, "out of memory");
    if (!st)
        st = train_data_map_labels(d, (const char *const *)info->labels,
                                   info->n_labels, map);
    if (!st)
        st = roj_pieces_create(roj_model_vocab(model), &pieces);
    if (!st)
        st = span_metrics_init(m, info->n_labels,
                               (const char *const *)info->labels);
    const double t0 = (cli_now_ms() / 1000.0);
    spec_cache cache = {0};
    for (size_t i = 0; !st && i < d->n; i++) {
        if (interrupted) {
            st = roj_error(ROJ_ERR_ABORTED, "interrupted after %zu examples",
                           i);
            break;
        }
        const train_example *x = &d->ex[i];
        const int32_t slot = map[x->label];
        roj_span_result r = {0};
        if ((st = spec_extract(ctx, info, pieces, x->text, x->text_len,
                               info->labels[slot], x->context, &cache,
                               &r)))
            break;
        const char *g = x->target, *p = r.is_none ? NULL : r.text;
        size_t gn = x->target_len, pn = p ? strlen(p) : 0;
        if (g)
            trim(&g, &gn);
        if (p)
            trim(&p, &pn);
        span_metrics_add(m, slot, g, gn, p, pn);
        free(r.text);
        eval_progress(i + 1, d->n, t0, quiet);
    }
    spec_cache_free(&cache);
    roj_pieces_free(pieces);
    free(map);
    if (!st)
        span_metrics_finish(m);
    return st;
}

static roj_status eval_generate(roj_context *ctx, const spec_info *info,
                                const train_dataset *d, ppl_metrics *m,
                                bool quiet)
{
    const roj_model *model = roj_context_model(ctx);
    const roj_vocab *vocab = roj_model_vocab(model);
    ppl_metrics_init(m);
    roj_status st = ROJ_OK;
    const double t0 = (cli_now_ms() / 1000.0);
    for (size_t i = 0; !st && i < d->n; i++) {
        const train_example *x = &d->ex[i];
        roj_token *p = NULL, *c = NULL;
        size_t np = 0, nc = 0;
        if ((st = spec_prompt(model, info, x->text, x->text_len, NULL,
                              x->context, &p, &np)) ||
            (st = roj_tokenize(vocab, x->target ? x->target : "",
                               x->target ? x->target_len : 0, 0, &c, &nc))) {
            free(p);
            break;
        }
        const size_t n = np + nc;
        roj_token *all = malloc((n + 1) * sizeof *all);
        bool *want = malloc((n + 1) * sizeof *want);
        if (!all || !want) {
            st = roj_error(ROJ_ERR_NOMEM, "out of memory");
        } else {
            memcpy(all, p, np * sizeof *all);
            memcpy(all + np, c, nc * sizeof *all);
            all[n] = roj_vocab_eos(vocab);
            for (size_t k = 0; k <= n; k++)
                want[k] = k + 1 >= np && k < n;
            roj_seq_truncate(ctx, 0, 0);
            roj_batch b = {.n_tokens = (int32_t)n, .tokens = all,
                           .logits = want};
            st = roj_decode(ctx, &b);
            double nll = 0;
            for (size_t k = np - 1; !st && k < n; k++) {
                const float *z = roj_get_logits(ctx, (int32_t)k);
                const int32_t nv = roj_model_n_vocab(model);
                float mx = z[0];
                for (int32_t v = 1; v < nv; v++)
                    mx = z[v] > mx ? z[v] : mx;
                double s = 0;
                for (int32_t v = 0; v < nv; v++)
                    s += exp((double)z[v] - mx);
                nll += log(s) + mx - z[all[k + 1]];
            }
            if (!st)
                ppl_metrics_add(m, nll, nc + 1);
        }
        free(all);
        free(want);
        free(p);
        free(c);
        eval_progress(i + 1, d->n, t0, quiet);
    }
    if (!st)
        ppl_metrics_finish(m);
    return st;
}

/* Whether path is a GGUF whose general.type is "adapter". */
static bool is_adapter(const char *path)
{
    gguf_file *f;
    if (gguf_open(path, &f))
        return false;
    const char *t = NULL;
    size_t n = 0;
    const bool yes = !gguf_get_str(f, "general.type", &t, &n) && n == 7 &&
                     !memcmp(t, "adapter", 7);
    gguf_close(f);
    return yes;
}

/* Returns the share of extract examples without a gold span. */
static double none_share(const train_dataset *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += d->ex[i].target == NULL;
    return d->n ? (double)n / (double)d->n : 0.0;
}

/* Copies the data's label or slot set into info, for models that carry
 * none (labels are then scored as text by roj_choose). */
static roj_status adopt_data_labels(spec_info *info, const train_dataset *d)
{
    if (d->n_labels == 0)
        return roj_error(ROJ_ERR_INVALID_ARG, "%s: no labels to score",
                         d->path);
    info->labels = calloc(d->n_labels + 1, sizeof *info->labels);
    if (!info->labels)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < d->n_labels; i++) {
        if (!(info->labels[i] = strdup(d->labels[i])))
            return roj_error(ROJ_ERR_NOMEM, "out of memory");
        info->n_labels = i + 1;
    }
    return ROJ_OK;
}

int cmd_eval(int argc, char **argv)
{
    train_data_opts dopt = {0};
    const char *task_name = NULL, *format = "text", *base_path = NULL;
    int32_t threads = 0, n_ctx = 0;
    int64_t max_rows = 0;
    bool quiet = false;
    cli_strings pos = {0};
    cli_option opts[] = {
        {"-d", "--data", CLI_STRING, &dopt.label_column, "FILE", NULL},
        CLI_DATA_OPTIONS(dopt),
        {NULL, "--base", CLI_STRING, &base_path, "FILE",
         "MODEL is a LoRA adapter from roj train; this is its base model"},
        {NULL, "--task", CLI_STRING, &task_name, "KIND",
         "for a model without roj metadata: classify, extract or generate"},
        {NULL, "--max-rows", CLI_I64, &max_rows, "N",
         "read at most N records (all)"},
        {"-c", "--ctx-size", CLI_INT, &n_ctx, "N",
         "context length (the model's, at most 4096)"},
        {"-t", "--threads", CLI_INT, &threads, "N", "threads (one per core)"},
        {"-o", "--output", CLI_STRING, &format, "FORMAT",
         "text (a table) or json (one object)"},
        {"-q", "--quiet", CLI_FLAG, &quiet, NULL, "no progress output"},
    };
    const char *data_path = NULL;
    opts[0].dest = &data_path;
    opts[0].help = "labeled data: .csv, .tsv, .jsonl or .json (required)";
    const cli_command cmd = {
        .name = "eval",
        .usage = "MODEL.gguf --data FILE [options]",
        .summary = "Measures a specialist on labeled data with the task, "
                   "labels and prompt\ntemplate stored in the model.",
        .options = opts,
        .n_options = sizeof opts / sizeof opts[0],
        .positional = &pos,
        .epilog = "Example:\n  roj eval intent.gguf --data test.csv "
                  "--text-column text --label-column category\n",
    };
    int rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0)
        return rc;
    if (pos.n != 1 || !data_path) {
        cli_free_lists(&cmd);
        return cli_usage_error("eval", "give one MODEL.gguf and --data FILE");
    }
    const char *model_path = pos.items[0];
    int task_hint = -1;
    if (task_name) {
        train_task t;
        if (!cli_parse_task(task_name, &t)) {
            cli_free_lists(&cmd);
            return cli_usage_error("eval", "--task %s: use classify, extract "
                                   "or generate", task_name);
        }
        task_hint = (int)t;
    }
    const bool json = !strcmp(format, "json");
    if (!json && strcmp(format, "text")) {
        cli_free_lists(&cmd);
        /* In roj train -o is the output file, so a file name here is a slip. */
        if (strchr(format, '.') || strchr(format, '/'))
            return cli_usage_error("eval", "-o %s: -o takes the format, "
                                   "text or json; to save the report, "
                                   "redirect it: -o json > %s",
                                   format, format);
        return cli_usage_error("eval", "-o %s: use text or json", format);
    }
    if (threads < 0 || threads > 256 || n_ctx < 0 || max_rows < 0) {
        cli_free_lists(&cmd);
        return cli_usage_error("eval", "--threads 0 .. 256, --ctx-size and "
                               "--max-rows >= 0");
    }
    roj_model *model = NULL;
    roj_context *ctx = NULL;
    spec_info info = {0};
    train_dataset d = {0};
    cls_metrics cm = {0};
    span_metrics sm = {0};
    ppl_metrics pm = {0};
    rc = CLI_EXIT_RUNTIME;
    roj_lora *lora = NULL;
    roj_status st = roj_model_open(base_path ? base_path : model_path,
                                   &model);
    if (st && !base_path && is_adapter(model_path))
        st = roj_error(ROJ_ERR_INVALID_ARG, "%s is a LoRA adapter: give "
                       "the model it was trained on with --base FILE",
                       model_path);
    if (!st && base_path)
        st = roj_lora_open(model, model_path, &lora);
    if (!st && base_path)
        st = spec_info_read_adapter(model_path, &info);
    else if (!st)
        st = spec_info_read(model, task_hint, &info);
    static const char *const task_names[] = {"classify", "extract",
                                             "generate"};
    if (!st && info.has_meta && task_hint >= 0 &&
        (int)info.task != task_hint)
        st = roj_error(ROJ_ERR_INVALID_ARG, "%s was trained for %s, not "
                       "%s: drop --task", model_path, task_names[info.task],
                       task_names[task_hint]);
    dopt.task = info.task;
    if (!dopt.context_column)
        dopt.context_column = info.context_field;
    dopt.max_rows = (size_t)max_rows;
    /* The model's slot set decides which slots are asked for. */
    if (!st && info.task == TRAIN_EXTRACT && info.n_labels) {
        dopt.label_set = (const char *const *)info.labels;
        dopt.n_label_set = info.n_labels;
    }
    if (!st)
        st = train_data_load(data_path, &dopt, &d);
    /* A model without roj metadata: the labels or slots come from the
     * data, scored as text. */
    if (!st && info.task != TRAIN_GENERATE && info.n_labels == 0)
        st = adopt_data_labels(&info, &d);
    roj_context_params cp = roj_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_seq = 16;
    cp.n_batch = 2048;
    cp.n_threads = threads;
    if (!st)
        st = roj_context_create(model, &cp, &ctx);
    if (!st && lora) {
        const roj_lora *const set[1] = {lora};
        st = roj_context_set_lora(ctx, set, NULL, 1);
    }
    signal(SIGINT, on_sigint);
    const double t0 = (cli_now_ms() / 1000.0);
    if (!st && info.task == TRAIN_CLASSIFY)
        st = eval_classify(ctx, &info, &d, &cm, quiet);
    else if (!st && info.task == TRAIN_EXTRACT)
        st = eval_extract(ctx, &info, &d, &sm, quiet);
    else if (!st)
        st = eval_generate(ctx, &info, &d, &pm, quiet);
    const double secs = (cli_now_ms() / 1000.0) - t0;
    if (st == ROJ_ERR_ABORTED) {
        fprintf(stderr, "\nroj eval: %s\n", roj_last_error());
        rc = CLI_EXIT_INTERRUPTED;
        goto done;
    }
    if (st) {
        fprintf(stderr, "roj eval: %s\n", roj_last_error());
        rc = CLI_EXIT_RUNTIME;
        goto done;
    }
    if (json) {
        cJSON *o = info.task == TRAIN_CLASSIFY  ? cls_metrics_json(&cm)
                   : info.task == TRAIN_EXTRACT ? span_metrics_json(&sm)
                                                : ppl_metrics_json(&pm);
        if (o && info.task == TRAIN_EXTRACT)
            cJSON_AddNumberToObject(o, "none_baseline", none_share(&d));
        if (o) {
            cJSON_AddStringToObject(o, "model", model_path);
            cJSON_AddStringToObject(o, "data", data_path);
            cJSON_AddNumberToObject(o, "examples", (double)d.n);
            cJSON_AddNumberToObject(o, "seconds", secs);
            char *s = cJSON_PrintUnformatted(o);
            if (s) {
                cli_write_stdout(s, strlen(s));
                cli_write_stdout("\n", 1);
            }
            free(s);
            cJSON_Delete(o);
        }
    } else {
        printf("model %s, data %s: %zu examples in %.1f s\n", model_path,
               data_path, d.n, secs);
        if (info.task == TRAIN_CLASSIFY) {
            cls_metrics_print(&cm, stdout);
        } else if (info.task == TRAIN_EXTRACT) {
            span_metrics_print(&sm, stdout);
            printf("\nA model that always answers none scores exact match "
                   "%.4f here; F1 counts spans only.\n", none_share(&d));
        } else {
            ppl_metrics_print(&pm, stdout);
        }
    }
    rc = cli_finish_stdout("eval", CLI_EXIT_OK);
done:
    cls_metrics_free(&cm);
    span_metrics_free(&sm);
    train_data_free(&d);
    spec_info_free(&info);
    roj_context_free(ctx);
    roj_lora_free(lora);
    roj_model_free(model);
    cli_free_lists(&cmd);
    return rc;
}
