/* train_run: data, tokenizer, model, encoding, the loop and the output
 * file (see trainer.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "model/lora.h"
#include "model/model_internal.h"
#include "roj/tokenizer.h"
#include "train/bpe_train.h"
#include "train/plot.h"
#include "train/train_loop.h"
#include "train/trainer.h"

#define SHAPE(v, d, l, h, kv, ff)                                           \
    {.n_vocab = 0, .n_embd = d, .n_layer = l, .n_head = h, .n_head_kv = kv, \
     .head_dim = (d) / (h), .n_ff = ff, .n_ctx = 256,                       \
     .rope_base = 10000.0f, .rope_freq_scale = 1.0f, .rms_eps = 1e-5f,      \
     .tied = true}

static const train_preset presets[] = {
    {"tiny", SHAPE(0, 128, 4, 4, 4, 352), 2048},    /* ~1 M */
    {"small", SHAPE(0, 256, 6, 8, 4, 704), 4096},   /* ~5 M */
    {"medium", SHAPE(0, 384, 8, 6, 6, 1024), 6144}, /* ~15 M */
    {"large", SHAPE(0, 512, 8, 8, 8, 1408), 8192},  /* ~30 M */
};

const train_preset *train_preset_at(int i)
{
    if (i < 0 || i >= (int)(sizeof presets / sizeof presets[0]))
        return NULL;
    return &presets[i];
}

const train_preset *train_preset_find(const char *name)
{
    for (int i = 0; train_preset_at(i); i++)
        if (!strcmp(presets[i].name, name))
            return &presets[i];
    return NULL;
}

void train_opts_default(train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->task = TRAIN_CLASSIFY;
    o->valid_fraction = -1.0; /* TRAIN_VALID_FRACTION, capped */
    o->preset = "tiny";
    o->epochs = 0;        /* task default, see train_task_defaults */
    o->lm_weight = -1.0f;
    o->label_smoothing = -1.0f;
    o->token_dropout = -1.0f;
    o->dropout = -1.0f;
    o->ema = -1.0f;
    o->keep_best = -1;
    o->augment = -1;
    o->batch_tokens = 2048;
    o->accum = 1;
    o->lr = 3e-3f;
    o->min_lr_frac = 0.1f;
    o->weight_decay = 0.1f;
    o->clip = 1.0f;
    o->warmup = -1;
    o->seed = 1;
    o->n_threads = 0;
    o->out_type = ROJ_TYPE_F32;
    o->lora_alpha = 0.0f;
    o->lora_targets = TLORA_Q | TLORA_V;
}

double train_valid_fraction(const train_opts *o, size_t n_records)
{
    if (o->valid_fraction >= 0.0)
        return o->valid_fraction;
    double f = TRAIN_VALID_FRACTION;
    if (o->task == TRAIN_CLASSIFY && n_records > 0 &&
        f * (double)n_records > TRAIN_VALID_MAX)
        f = TRAIN_VALID_MAX / (double)n_records;
    return f;
}

void train_task_defaults(train_opts *o)
{
    /* Measured on banking77 and restaurant8k (docs/BENCHMARKS.md): the
     * auxiliary language-model loss and, for extract, span augmentation
     * matter most for small models trained from scratch. */
    /* Per task: classify, extract, generate. */
    static const struct {
        int epochs;
        float lm_weight, dropout;
        int augment;
        float ema;
        int keep_best;
        float smoothing, token_dropout;
    } d[] = {{30, 0.5f, 0.1f, 0, 0.998f, 1, 0.0f, 0.2f},
             {4, 0.3f, 0.05f, 4, 0.0f, 0, 0.0f, 0.0f},
             {10, 0.0f, 0.0f, 0, 0.0f, 0, 0.0f, 0.0f}};
    const int t = (int)o->task;
    if (o->epochs <= 0)
        o->epochs = d[t].epochs;
    if (o->lm_weight < 0)
        o->lm_weight = d[t].lm_weight;
    if (o->dropout < 0)
        o->dropout = d[t].dropout;
    if (o->augment < 0)
        o->augment = o->base_path ? 0 : d[t].augment;
    if (o->ema < 0)
        o->ema = d[t].ema;
    if (o->keep_best < 0)
        o->keep_best = d[t].keep_best;
    if (o->label_smoothing < 0)
        o->label_smoothing = d[t].smoothing;
    if (o->token_dropout < 0)
        o->token_dropout = d[t].token_dropout;
}

/* Everything train_run owns, freed in one place. */
typedef struct tsetup {
    const train_opts *o;
    train_dataset data, vdata;
    size_t *tr_idx, *va_idx;
    size_t n_tr, n_va;
    bpe_trained *bpe;
    roj_vocab *vocab;          /* from bpe, or borrowed from base */
    roj_model *base;
    tmodel *m;
    int32_t *label_tokens;
    char **label_token_text;
    tenc enc_tr, enc_va;
    train_example *aug;        /* augmented training examples, or NULL */
    char **aug_text;
    size_t n_aug, n_aug_text;
    roj_pool *pool;
    tloop L;
    char *ckpt_path;
} tsetup;

static roj_status load_data(tsetup *s)
{
    const train_opts *o = s->o;
    train_data_opts dopt = o->data;
    dopt.task = o->task;
    roj_status st = train_data_load(o->data_path, &dopt, &s->data);
    if (st)
        return st;
    if (!o->quiet)
        train_data_report(&s->data, stderr);
    /* With one label there is nothing to choose: the model would output
     * that label for every text. */
    if (o->task == TRAIN_CLASSIFY && s->data.n_labels < 2)
        return roj_error(ROJ_ERR_FORMAT,
                         "%s: classify needs at least 2 labels, and every "
                         "record has the label \"%s\"; add records of the "
                         "other labels, or list them all with --labels",
                         o->data_path,
                         s->data.n_labels ? s->data.labels[0] : "");
    if (o->valid_path) {
        /* The validation file is read against the training label set. */
        dopt.label_set = (const char *const *)s->data.labels;
        dopt.n_label_set = s->data.n_labels;
        if ((st = train_data_load(o->valid_path, &dopt, &s->vdata)))
            return st;
        s->n_tr = s->data.n;
        s->n_va = s->vdata.n;
        s->tr_idx = malloc((s->n_tr + 1) * sizeof *s->tr_idx);
        s->va_idx = malloc((s->n_va + 1) * sizeof *s->va_idx);
        if (!s->tr_idx || !s->va_idx)
            return roj_error(ROJ_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < s->n_tr; i++)
            s->tr_idx[i] = i;
        for (size_t i = 0; i < s->n_va; i++)
            s->va_idx[i] = i;
        return ROJ_OK;
    }
    return train_data_split(&s->data, train_valid_fraction(o, s->data.n),
                            o->seed, &s->tr_idx, &s->n_tr, &s->va_idx,
                            &s->n_va);
}

/* Texts the tokenizer learns from: every input, target and the template
 * with the slot names, so "label:" and "none" are cheap tokens. */
static roj_status train_tokenizer(tsetup *s, uint32_t vocab_size)
{
    const train_dataset *d = &s->data;
    const size_t n_txt = 2 * s->n_tr + d->n_labels + 2;
    const char **texts = calloc(n_txt, sizeof *texts);
    size_t *lens = calloc(n_txt, sizeof *lens);
    char **owned = calloc(d->n_labels + 2, sizeof *owned);
    roj_status st = ROJ_OK;
    size_t k = 0, n_owned = 0;
    if (!texts || !lens || !owned) {
        st = roj_error(ROJ_ERR_NOMEM, "out of memory");
        goto done;
    }
    const char *tmpl = train_template_of(s->o);
    for (size_t i = 0; i < s->n_tr; i++) {
        const train_example *x = &d->ex[s->tr_idx[i]];
        texts[k] = x->text;
        lens[k++] = x->text_len;
        if (x->target && s->o->task != TRAIN_CLASSIFY) {
            texts[k] = x->target;
            lens[k++] = x->target_len;
        }
    }
    for (size_t i = 0; i <= d->n_labels; i++) {
        const char *slot = i < d->n_labels ? d->labels[i] : "";
        char *t = train_fill_template(tmpl, " " TRAIN_NONE_WORD, 5, slot);
        if (!t) {
            st = roj_error(ROJ_ERR_NOMEM, "out of memory");
            goto done;
        }
        owned[n_owned++] = t;
        texts[k] = t;
        lens[k++] = strlen(t);
    }
    bpe_train_opts bo = {.vocab_size = vocab_size, .pre = "gpt-2",
                         .n_threads = s->o->n_threads};
    const char *special[2] = {"<|endoftext|>", "<|pad|>"};
    /* Labels are control tokens: text typed by a user never becomes one,
     * and choosing a label is a single step. */
    const size_t n_sp = 2 + (s->o->task == TRAIN_CLASSIFY ? d->n_labels : 0);
    const char **sp = calloc(n_sp, sizeof *sp);
    s->label_token_text = calloc(d->n_labels + 1, sizeof(char *));
    if (!sp || !s->label_token_text) {
        free(sp);
        st = roj_error(ROJ_ERR_NOMEM, "out of memory");
        goto done;
    }
    sp[0] = special[0];
    sp[1] = special[1];
    for (size_t i = 2; i < n_sp; i++) {
        const char *lab = d->labels[i - 2];
        const size_t n = strlen(lab) + 4;
        char *t = malloc(n + 1);
        if (!t) {
            free(sp);
            st = roj_error(ROJ_ERR_NOMEM, "out of memory");
            goto done;
        }
        snprintf(t, n + 1, "<|%s|>", lab);
        s->label_token_text[i - 2] = t;
        sp[i] = t;
    }
    bo.special = sp;
    bo.n_special = n_sp;
    if (bo.vocab_size < 256 + n_sp + 64)
        bo.vocab_size = (uint32_t)(256 + n_sp + 64);
    st = bpe_train(texts, lens, k, &bo, &s->bpe);
    free(sp);
    if (!st)
        st = bpe_trained_vocab(s->bpe, &s->vocab);
done:
    for (size_t i = 0; i < n_owned; i++)
        free(owned[i]);
    free(owned);
    free(texts);
    free(lens);
    return st;
}

/* The from-scratch shape: the preset with the explicit dimensions over
 * it, checked (n_vocab stays 0 until the tokenizer exists). */
static roj_status resolve_shape(const train_opts *o, tshape *out,
                                uint32_t *vocab_size)
{
    const train_preset *p = train_preset_find(o->preset ? o->preset
                                                        : "small");
    if (!p)
        return roj_error(ROJ_ERR_NOT_FOUND,
                         "unknown --preset %s: use tiny, small, medium or "
                         "large", o->preset);
    tshape hp = p->shape;
    const tshape *x = &o->shape;
    if (x->n_embd > 0)
        hp.n_embd = x->n_embd;
    if (x->n_layer > 0)
        hp.n_layer = x->n_layer;
    if (x->n_head > 0)
        hp.n_head = x->n_head;
    hp.n_head_kv = x->n_head_kv > 0 ? x->n_head_kv
                   : x->n_head > 0  ? x->n_head
                                    : hp.n_head_kv;
    if (x->n_ff > 0)
        hp.n_ff = x->n_ff;
    if (x->n_ctx > 0)
        hp.n_ctx = x->n_ctx;
    if (hp.n_embd % hp.n_head)
        return roj_error(ROJ_ERR_RANGE,
                         "--n-embd %d is not a multiple of --n-head %d",
                         (int)hp.n_embd, (int)hp.n_head);
    if (hp.n_head % hp.n_head_kv)
        return roj_error(ROJ_ERR_RANGE,
                         "--n-head %d is not a multiple of --n-head-kv %d",
                         (int)hp.n_head, (int)hp.n_head_kv);
    hp.head_dim = hp.n_embd / hp.n_head;
    if (hp.head_dim % 2)
        return roj_error(ROJ_ERR_RANGE,
                         "--n-embd / --n-head = %d must be even (RoPE "
                         "rotates pairs)", (int)hp.head_dim);
    tshape probe = hp;
    probe.n_vocab = 256;
    roj_status st = tshape_check(&probe);
    if (st)
        return st;
    *out = hp;
    *vocab_size = o->vocab_size ? o->vocab_size : p->vocab_size;
    return ROJ_OK;
}

static roj_status build_model(tsetup *s)
{
    const train_opts *o = s->o;
    roj_status st;
    if (o->base_path) {
        if ((st = roj_model_open(o->base_path, &s->base)))
            return st;
        s->vocab = (roj_vocab *)roj_model_vocab(s->base);
        return tmodel_from_model(s->base, o->lora_rank, o->lora_alpha,
                                 o->lora_targets, o->seed, &s->m);
    }
    tshape hp;
    uint32_t vocab_size;
    if ((st = resolve_shape(o, &hp, &vocab_size)) ||
        (st = train_tokenizer(s, vocab_size)))
        return st;
    hp.n_vocab = roj_vocab_n_tokens(s->vocab);
    return tmodel_init(&hp, o->seed, &s->m);
}

static roj_status find_label_tokens(tsetup *s)
{
    const train_dataset *d = &s->data;
    if (s->o->task != TRAIN_CLASSIFY || !s->bpe)
        return ROJ_OK;
    s->label_tokens = calloc(d->n_labels + 1, sizeof *s->label_tokens);
    if (!s->label_tokens)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < d->n_labels; i++) {
        s->label_tokens[i] = bpe_trained_token(s->bpe,
                                               s->label_token_text[i]);
        if (s->label_tokens[i] < 0)
            return roj_error(ROJ_ERR_INTERNAL, "label %s has no token",
                             d->labels[i]);
    }
    return ROJ_OK;
}

static roj_status encode(tsetup *s)
{
    const train_opts *o = s->o;
    tenc_spec spec = {.vocab = s->vocab, .task = o->task,
                      .template_text = train_template_of(o),
                      .label_tokens = s->label_tokens,
                      .labels = (const char *const *)s->data.labels,
                      .n_ctx = s->m->hp.n_ctx};
    roj_status st;
    if (o->task == TRAIN_EXTRACT && o->augment > 0) {
        if ((st = train_augment_spans(&s->data, s->tr_idx, s->n_tr,
                                      o->augment, o->seed, &s->aug,
                                      &s->n_aug, &s->aug_text,
                                      &s->n_aug_text)))
            return st;
        train_dataset view = s->data;
        view.ex = s->aug;
        view.n = s->n_aug;
        st = tenc_build(&spec, &view, NULL, s->n_aug, &s->enc_tr);
        if (!st && !o->quiet)
            fprintf(stderr, "augmentation: %zu training examples with "
                    "%zu made-up copies of labeled texts\n", s->n_aug,
                    s->n_aug_text);
    } else {
        st = tenc_build(&spec, &s->data, s->tr_idx, s->n_tr, &s->enc_tr);
    }
    if (st)
        return st;
    const train_dataset *vd = o->valid_path ? &s->vdata : &s->data;
    if ((st = tenc_build(&spec, vd, s->va_idx, s->n_va, &s->enc_va)))
        return st;
    if (s->enc_tr.n_truncated + s->enc_va.n_truncated)
        roj_log(ROJ_LOG_WARN, "%zu prompts longer than the context of %d "
                "tokens were cut at the front; raise --n-ctx to keep them",
                s->enc_tr.n_truncated + s->enc_va.n_truncated,
                (int)s->m->hp.n_ctx);
    if (s->enc_tr.max_len > o->batch_tokens)
        return roj_error(ROJ_ERR_RANGE,
                         "an example has %d tokens, more than --batch-tokens "
                         "%d; raise --batch-tokens", (int)s->enc_tr.max_len,
                         (int)o->batch_tokens);
    return ROJ_OK;
}

static void hex(char *out, const uint8_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Identity of a run: what a checkpoint must agree with to be resumed, as
 * key=value fields separated by the byte 037 (so a template may hold
 * spaces), and its hash. */
static void run_digest(tsetup *s, char out[65], char *opts, size_t cap)
{
    const train_opts *o = s->o;
    const tshape *h = &s->m->hp;
    char data_hex[65], buf[2048];
    hex(data_hex, s->data.digest, 32);
    int n = snprintf(buf, sizeof buf,
                     "v1\037data=%s\037task=%d\037"
                     "shape=%d,%d,%d,%d,%d,%d,%d,%d\037lm=%.9g\037"
                     "do=%.9g\037aug=%d\037lr=%.9g\037wd=%.9g\037"
                     "clip=%.9g\037"
                     "minlr=%.9g\037warm=%lld\037ep=%d\037steps=%lld\037"
                     "bt=%d\037acc=%d\037seed=%llu\037"
                     "lora=%d,%.9g,%u\037base=%s\037valid=%s,%.9g\037"
                     "tmpl=%s\037ctx=%s\037ntr=%zu\037ema=%.9g\037best=%d",
                     data_hex, (int)o->task, h->n_vocab, h->n_embd,
                     h->n_layer, h->n_head, h->n_head_kv, h->n_ff, h->n_ctx,
                     (int)h->tied, (double)o->lm_weight,
                     (double)o->dropout, o->augment, (double)o->lr,
                     (double)o->weight_decay,
                     (double)o->clip, (double)o->min_lr_frac,
                     (long long)o->warmup, o->epochs,
                     (long long)o->max_steps, (int)o->batch_tokens, o->accum,
                     (unsigned long long)o->seed,
                     o->lora_rank, (double)o->lora_alpha, o->lora_targets,
                     o->base_path ? o->base_path : "-",
                     o->valid_path ? o->valid_path : "-",
                     train_valid_fraction(o, s->data.n),
                     train_template_of(o),
                     o->data.context_column ? o->data.context_column : "-",
                     s->n_tr, (double)o->ema, o->keep_best);
    /* Appended only when on, so that older checkpoints still match. */
    if (o->label_smoothing > 0.0f && n > 0 && (size_t)n < sizeof buf)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "\037ls=%.9g",
                      (double)o->label_smoothing);
    if (o->best_by_loss && n > 0 && (size_t)n < sizeof buf)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "\037bestby=loss");
    if (o->token_dropout > 0.0f && n > 0 && (size_t)n < sizeof buf)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "\037td=%.9g",
                      (double)o->token_dropout);
    if (n < 0 || (size_t)n >= sizeof buf)
        n = n < 0 ? 0 : (int)sizeof buf - 1;
    uint8_t d[32];
    sha256(buf, (size_t)n, d);
    hex(out, d, 32);
    snprintf(opts, cap, "%s", buf);
}

/* Tokenizer keys: the trained BPE or the base model's own. */
static roj_status write_tokenizer(tsetup *s, gguf_writer *w)
{
    if (s->bpe)
        return bpe_trained_write_kv(s->bpe, w);
    const gguf_file *f = s->base->file;
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        const char *key = gguf_kv_key(f, i);
        if (!strncmp(key, "tokenizer.", 10)) {
            roj_status st = gguf_writer_copy_kv(w, f, i);
            if (st)
                return st;
        }
    }
    return ROJ_OK;
}

static roj_status ckpt_meta(void *ctx, gguf_writer *w)
{
    return write_tokenizer(ctx, w);
}

static roj_status write_roj_meta(tsetup *s, gguf_writer *w)
{
    const train_opts *o = s->o;
    const train_dataset *d = &s->data;
    static const char *const task_names[] = {"classify", "extract",
                                             "generate"};
    char data_hex[65];
    hex(data_hex, d->digest, 32);
    const char *tmpl = train_template_of(o);
    roj_status st;
    if ((st = gguf_writer_set_str(w, "roj.task", task_names[o->task])) ||
        (st = gguf_writer_set_str(w, "roj.prompt_template", tmpl)) ||
        (st = gguf_writer_set_str(w, "roj.data.sha256", data_hex)) ||
        (st = gguf_writer_set_str(w, "roj.data.path", d->path)) ||
        (st = gguf_writer_set_u64(w, "roj.data.rows", d->n_rows)) ||
        (st = gguf_writer_set_u64(w, "roj.train.steps",
                                  (uint64_t)s->L.pos.step)) ||
        (st = gguf_writer_set_f32(w, "roj.train.seconds",
                                  (float)s->L.pos.seconds)) ||
        (st = gguf_writer_set_u64(w, "roj.train.seed", o->seed)) ||
        (st = gguf_writer_set_u64(w, "roj.valid.examples", s->n_va)))
        return st;
    /* Without a validation set there is no score to record. */
    if (s->n_va &&
        ((st = gguf_writer_set_f32(w, "roj.valid.accuracy",
                                   (float)s->L.last_valid_acc)) ||
         (st = gguf_writer_set_f32(w, "roj.valid.loss",
                                   (float)s->L.last_valid_loss))))
        return st;
    if (d->n_labels &&
        (st = gguf_writer_set_arr_str(w, o->task == TRAIN_EXTRACT
                                             ? "roj.slots"
                                             : "roj.labels",
                                      (const char *const *)d->labels,
                                      d->n_labels)))
        return st;
    if (o->task == TRAIN_EXTRACT &&
        (st = gguf_writer_set_str(w, "roj.none_word", TRAIN_NONE_WORD)))
        return st;
    if (o->data.context_column &&
        (st = gguf_writer_set_str(w, "roj.context_field",
                                  o->data.context_column)))
        return st;
    if (s->label_tokens &&
        (st = gguf_writer_set_arr(w, "roj.label_tokens", GGUF_TYPE_INT32,
                                  s->label_tokens, d->n_labels)))
        return st;
    return ROJ_OK;
}

/* roj.* keys as one JSON object, for adapters (lora_write stores it). */
static char *roj_meta_json(tsetup *s)
{
    gguf_writer *w;
    if (gguf_writer_create(&w))
        return NULL;
    char *out = NULL;
    void *mem = NULL;
    size_t size = 0;
    gguf_file *f = NULL;
    if (write_roj_meta(s, w) || gguf_writer_write_memory(w, &mem, &size) ||
        gguf_open_memory(mem, size, "adapter metadata", &f))
        goto done;
    cJSON *o = cJSON_CreateObject();
    for (int64_t i = 0; o && i < gguf_n_kv(f); i++) {
        const char *key = gguf_kv_key(f, i);
        const char *str;
        size_t n;
        float v;
        uint64_t u;
        if (!gguf_get_str(f, key, &str, &n)) {
            char *c = strndup(str, n);
            cJSON_AddStringToObject(o, key, c ? c : "");
            free(c);
        } else if (!gguf_get_f32(f, key, &v)) {
            cJSON_AddNumberToObject(o, key, v);
        } else if (!gguf_get_u64(f, key, &u)) {
            cJSON_AddNumberToObject(o, key, (double)u);
        } else if (gguf_kv_type(f, i) == GGUF_TYPE_ARRAY) {
            cJSON *arr = cJSON_AddArrayToObject(o, key);
            for (uint64_t j = 0; arr && j < gguf_kv_array_len(f, i); j++) {
                const char *p;
                uint64_t len;
                if (!gguf_get_arr_str(f, key, j, &p, &len)) {
                    char *c = strndup(p, len);
                    cJSON_AddItemToArray(arr, cJSON_CreateString(c ? c : ""));
                    free(c);
                }
            }
        }
    }
    out = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
done:
    gguf_close(f);
    free(mem);
    gguf_writer_free(w);
    return out;
}

static roj_status write_adapter(tsetup *s)
{
    tmodel *m = s->m;
    lora_tensor *t = calloc((size_t)m->hp.n_layer * 7 + 1, sizeof *t);
    if (!t)
        return roj_error(ROJ_ERR_NOMEM, "out of memory");
    size_t n = 0;
    for (int l = 0; l < m->hp.n_layer; l++) {
        tlayer *y = &m->layers[l];
        tlinear *lins[7] = {&y->wq, &y->wk, &y->wv, &y->wo, &y->gate, &y->up,
                            &y->down};
        for (int k = 0; k < 7; k++)
            if (lins[k]->a)
                t[n++] = (lora_tensor){.name = lins[k]->name,
                                       .rank = m->lora_rank,
                                       .n_in = lins[k]->n_in,
                                       .n_out = lins[k]->n_out,
                                       .a = lins[k]->a, .b = lins[k]->b};
    }
    char *extra = roj_meta_json(s);
    roj_status st = lora_write(s->o->out_path, s->base, m->lora_alpha, t, n,
                               extra);
    free(extra);
    free(t);
    return st;
}

static roj_status write_output(tsetup *s)
{
    const train_opts *o = s->o;
    if (s->m->lora_rank)
        return write_adapter(s);
    gguf_writer *w;
    roj_status st = gguf_writer_create(&w);
    if (st)
        return st;
    void *scratch = NULL;
    char name[256];
    const char *base = strrchr(o->out_path, '/');
    snprintf(name, sizeof name, "%s", base ? base + 1 : o->out_path);
    char *dot = strrchr(name, '.');
    if (dot)
        *dot = '\0';
    if (!(st = tmodel_write_tensors(s->m, w, o->out_type, &scratch)) &&
        !(st = gguf_writer_set_str(w, "general.name", name)) &&
        !(st = write_tokenizer(s, w)) && !(st = write_roj_meta(s, w)))
        st = gguf_writer_write(w, o->out_path);
    free(scratch);
    gguf_writer_free(w);
    return st;
}

static void plot_curves(tsetup *s)
{
    const tloop *L = &s->L;
    const int64_t n = L->pos.step;
    /* -q silences the chart, not a PNG the user asked for. */
    if (n < 2 || s->o->no_plot || (s->o->quiet && !s->o->plot_path))
        return;
    double *x = malloc((size_t)n * sizeof *x);
    double *y = malloc((size_t)n * sizeof *y);
    double *vx = malloc((size_t)(L->n_ev + 1) * sizeof *vx);
    double *vy = malloc((size_t)(L->n_ev + 1) * sizeof *vy);
    if (x && y && vx && vy) {
        for (int64_t i = 0; i < n; i++) {
            x[i] = (double)(i + 1);
            y[i] = L->hist_loss[i];
        }
        for (int64_t i = 0; i < L->n_ev; i++) {
            vx[i] = L->ev_step[i];
            vy[i] = L->ev_loss[i];
        }
        plot_series ser[2] = {{"train loss", x, y, (size_t)n},
                              {"valid loss", vx, vy, (size_t)L->n_ev}};
        const size_t ns = L->n_ev ? 2 : 1;
        if (s->o->plot_path) {
            roj_status st = plot_png(s->o->plot_path, "roj train: loss",
                                     "step", "loss (nats)", ser, ns);
            if (st)
                roj_log(ROJ_LOG_WARN, "%s", roj_last_error());
            else if (!s->o->quiet)
                fprintf(stderr, "loss curve: %s\n", s->o->plot_path);
        } else {
            plot_terminal(stderr, "loss", ser, ns, 60, 12);
        }
    }
    free(x);
    free(y);
    free(vx);
    free(vy);
}

static void setup_free(tsetup *s)
{
    if (s->label_token_text)
        for (size_t i = 0; i < s->data.n_labels; i++)
            free(s->label_token_text[i]);
    tenc_free(&s->enc_tr);
    tenc_free(&s->enc_va);
    for (size_t i = 0; i < s->n_aug_text; i++)
        free(s->aug_text[i]);
    free(s->aug_text);
    free(s->aug);
    train_data_free(&s->data);
    train_data_free(&s->vdata);
    free(s->tr_idx);
    free(s->va_idx);
    if (s->bpe) {
        roj_vocab_free(s->vocab);
        bpe_trained_free(s->bpe);
    }
    free(s->label_token_text);
    free(s->label_tokens);
    tmodel_free(s->m);
    roj_model_free(s->base);
    pool_destroy(s->pool);
    free(s->L.mom);
    free(s->L.vel);
    free(s->L.ema);
    free(s->L.best);
    free(s->L.hist_loss);
    free(s->L.ev_step);
    free(s->L.ev_loss);
    free(s->L.ev_acc);
    metrics_log_close(s->L.metrics);
    progress_destroy(s->L.prog);
    tloop_free_scratch(&s->L);
    free(s->ckpt_path);
}

/* Tokens of the template after its last placeholder ("\nlabel:" in
 * "{text}\nlabel:"): token dropout leaves them alone, so the question
 * stays whole. 0 when they cannot be counted. */
static int32_t template_tail_tokens(const roj_vocab *v, const char *tmpl)
{
    const char *tail = tmpl;
    for (const char *p = tmpl; (p = strchr(p, '{')); p++) {
        if (!strncmp(p, "{text}", 6) || !strncmp(p, "{slot}", 6))
            tail = p + 6;
        else if (!strncmp(p, "{context}", 9))
            tail = p + 9;
    }
    roj_token *ids = NULL;
    size_t n = 0;
    if (!*tail || roj_tokenize(v, tail, strlen(tail), 0, &ids, &n) != ROJ_OK)
        return 0;
    free(ids);
    return (int32_t)n;
}

static roj_status prepare_loop(tsetup *s)
{
    const train_opts *o = s->o;
    tloop *L = &s->L;
    L->o = o;
    L->m = s->m;
    L->pool = s->pool;
    L->train = &s->enc_tr;
    L->valid = &s->enc_va;
    L->label_tokens = s->label_tokens;
    L->n_labels = (int32_t)s->data.n_labels;
    if (o->task == TRAIN_CLASSIFY && o->token_dropout > 0.0f)
        L->keep_tail = template_tail_tokens(s->vocab, train_template_of(o));
    L->write_meta = ckpt_meta;
    L->meta_ctx = s;
    L->mom = calloc((size_t)s->m->n_params, sizeof(float));
    L->vel = calloc((size_t)s->m->n_params, sizeof(float));
    if (!L->mom || !L->vel)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for AdamW moments");
    if (o->ema > 0) {
        L->ema = malloc((size_t)s->m->n_params * sizeof(float));
        if (!L->ema)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for the moving "
                             "average of the weights");
        memcpy(L->ema, s->m->params, (size_t)s->m->n_params * sizeof(float));
    }
    if (o->keep_best && s->n_va) {
        L->best = malloc((size_t)s->m->n_params * sizeof(float));
        if (!L->best)
            return roj_error(ROJ_ERR_NOMEM, "out of memory for the best "
                             "validated weights");
    }
    const int64_t per_epoch = tloop_steps_per_epoch(L);
    L->pos.total_steps = o->max_steps > 0 ? o->max_steps
                                          : per_epoch * (int64_t)o->epochs;
    L->opt = (optim_cfg){.lr = o->lr, .min_lr_frac = o->min_lr_frac,
                         .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f,
                         .weight_decay = o->weight_decay, .clip = o->clip,
                         .warmup = o->warmup >= 0
                                       ? o->warmup
                                       : L->pos.total_steps / 20 + 1,
                         .total = L->pos.total_steps};
    run_digest(s, L->digest, L->options, sizeof L->options);
    L->n_threads = pool_size(s->pool);
    return ROJ_OK;
}

/* Whether two paths name the same file: by device and inode when both
 * exist, else by spelling. */
static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!a || !b)
        return false;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    return strcmp(a, b) == 0;
}

/* The folder of path must exist and be writable, so a long run does not
 * end in "cannot create". */
static roj_status check_writable(const char *path, const char *what)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return roj_error(ROJ_ERR_IO, "%s %s: folder %s does not exist; "
                         "create it first", what, path, dir);
    if (access(dir, W_OK) != 0)
        return roj_error(ROJ_ERR_IO, "%s %s: folder %s is not writable",
                         what, path, dir);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return roj_error(ROJ_ERR_IO, "%s %s is a folder; give a file name",
                         what, path);
    return ROJ_OK;
}

/* Outputs must not overwrite inputs or each other, and their folders must
 * be writable; an old checkpoint is only taken with --resume. */
static roj_status check_paths(const train_opts *o)
{
    const struct { const char *path, *what; } out[] = {
        {o->out_path, "--out"}, {o->checkpoint_path, "--checkpoint"},
        {o->metrics_path, "--metrics"}, {o->plot_path, "--plot"}};
    const struct { const char *path, *what; } in[] = {
        {o->data_path, "--data"}, {o->valid_path, "--valid"},
        {o->base_path, "--base"}};
    const size_t n_out = sizeof out / sizeof out[0];
    for (size_t i = 0; i < n_out; i++) {
        if (!out[i].path)
            continue;
        roj_status st = check_writable(out[i].path, out[i].what);
        if (st)
            return st;
        for (size_t j = 0; j < sizeof in / sizeof in[0]; j++)
            if (same_file(out[i].path, in[j].path))
                return roj_error(ROJ_ERR_INVALID_ARG,
                                 "%s %s is the %s file; writing it would "
                                 "destroy that input: choose another name",
                                 out[i].what, out[i].path, in[j].what);
        for (size_t j = i + 1; j < n_out; j++)
            if (same_file(out[i].path, out[j].path))
                return roj_error(ROJ_ERR_INVALID_ARG,
                                 "%s and %s are the same file %s: give "
                                 "each its own name", out[i].what,
                                 out[j].what, out[i].path);
    }
    struct stat st;
    const bool have_ckpt = stat(o->checkpoint_path, &st) == 0;
    if (o->resume && !have_ckpt)
        return roj_error(ROJ_ERR_NOT_FOUND,
                         "--resume: no checkpoint %s to continue; start "
                         "without --resume (or give --checkpoint FILE)",
                         o->checkpoint_path);
    if (!o->resume && have_ckpt)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "checkpoint %s exists from an interrupted run: add "
                         "--resume to continue it, or delete it to start "
                         "over", o->checkpoint_path);
    return ROJ_OK;
}

roj_status train_run(const train_opts *o)
{
    tsetup s = {.o = o};
    train_opts local = *o;
    train_task_defaults(&local);
    if (!local.checkpoint_path) {
        size_t n = strlen(o->out_path) + 6;
        s.ckpt_path = malloc(n);
        if (!s.ckpt_path)
            return roj_error(ROJ_ERR_NOMEM, "out of memory");
        snprintf(s.ckpt_path, n, "%s.ckpt", o->out_path);
        local.checkpoint_path = s.ckpt_path;
    }
    s.o = &local;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = o->n_threads > 0 ? o->n_threads
                  : cores < 1      ? 1
                  : cores > 8      ? 8
                                   : (int)cores;
    roj_status st = check_paths(&local);
    tshape probe;
    uint32_t vs;
    if (!st && !o->base_path)
        st = resolve_shape(o, &probe, &vs);
    if (!st)
        st = pool_create(threads, &s.pool);
    if (!st)
        st = load_data(&s);
    if (!st)
        st = build_model(&s);
    if (!st)
        st = find_label_tokens(&s);
    if (!st)
        st = encode(&s);
    if (!st)
        st = prepare_loop(&s);
    if (!st && o->resume) {
        st = tloop_load(&s.L, local.checkpoint_path);
        s.L.opt.total = s.L.pos.total_steps;
        if (!st && !o->quiet)
            fprintf(stderr, "resumed from %s at step %lld\n",
                    local.checkpoint_path, (long long)s.L.pos.step);
    }
    if (!st && o->metrics_path)
        st = metrics_log_open(o->metrics_path, o->resume, &s.L.metrics);
    if (!st && !o->quiet)
        st = progress_create(stderr, (uint64_t)s.L.pos.total_steps,
                             PROGRESS_AUTO, 10.0, &s.L.prog);
    if (!st && !o->quiet)
        fprintf(stderr, "model: %lld trainable parameters (%d layers, "
                "%d wide, vocab %d); %zu training and %zu validation "
                "examples; %lld steps\n", (long long)s.m->n_params,
                (int)s.m->hp.n_layer, (int)s.m->hp.n_embd,
                (int)s.m->hp.n_vocab, s.enc_tr.n, s.n_va,
                (long long)s.L.pos.total_steps);
    if (!st)
        st = tloop_run(&s.L);
    if (!st && s.L.ema)
        memcpy(s.m->params, s.L.ema, (size_t)s.m->n_params * sizeof(float));
    if (!st && s.L.best && s.L.have_best) {
        memcpy(s.m->params, s.L.best, (size_t)s.m->n_params * sizeof(float));
        s.L.last_valid_acc = s.L.best_valid_acc;
        s.L.last_valid_loss = s.L.best_valid_loss;
    }
    if (!st)
        st = write_output(&s);
    if (!st) {
        plot_curves(&s);
        if (!o->quiet && s.n_va)
            fprintf(stderr, "wrote %s: validation accuracy %.4f, loss "
                    "%.4f, %lld steps in %.1f s\n", o->out_path,
                    s.L.last_valid_acc, s.L.last_valid_loss,
                    (long long)s.L.pos.step, s.L.pos.seconds);
        else if (!o->quiet)
            fprintf(stderr, "wrote %s: no validation set, %lld steps in "
                    "%.1f s\n", o->out_path, (long long)s.L.pos.step,
                    s.L.pos.seconds);
        remove(local.checkpoint_path);
    }
    setup_free(&s);
    return st;
}
