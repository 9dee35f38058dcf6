/*
 * `roj train`: from labeled data to a specialist GGUF.
 *
 * Pipeline: read and report the data (train/data.h), split off a
 * validation set, build or load the tokenizer (a byte-level BPE trained on
 * the data, or the base model's), encode every example as prompt tokens
 * plus target tokens, train with AdamW on packed batches, checkpoint, and
 * write a GGUF that carries the task, label set, prompt template, data
 * digest and validation metrics under roj.* keys.
 *
 * Prompt formats (the template is stored as roj.prompt_template; with a
 * context column the default starts with "{context}\n"):
 *   classify: BOS "{text}\nlabel:" then one label token, then EOS; every
 *             label is an added token, so choosing a label is one step;
 *   extract:  BOS "{text}\n{slot}:" then " " span or " none", then EOS;
 *   generate: BOS "{text}" then the completion, then EOS.
 * Loss is taken on the target tokens only.
 */
#ifndef ROJ_TRAIN_TRAINER_H
#define ROJ_TRAIN_TRAINER_H

#include <stdbool.h>
#include <stdint.h>

#include "roj/roj.h"
#include "train/data.h"
#include "train/tmodel.h"

#define TRAIN_NONE_WORD "none"

typedef struct train_opts {
    train_task task;
    const char *data_path;
    const char *valid_path;        /* NULL: split valid_fraction off */
    double valid_fraction;         /* -1: TRAIN_VALID_FRACTION, at most
                                      TRAIN_VALID_MAX examples */
    train_data_opts data;          /* column options, shared with eval */

    /* model */
    const char *preset;            /* NULL = "small" */
    tshape shape;                  /* fields > 0 override the preset */
    uint32_t vocab_size;           /* 0 = preset's */
    const char *base_path;         /* fine-tune this GGUF instead */
    int lora_rank;                 /* with base_path; 0 = full fine-tune */
    float lora_alpha;
    unsigned lora_targets;
    const char *template_text;     /* NULL = the task's default */

    /* optimisation */
    int epochs;                    /* 0 = default 10 */
    int64_t max_steps;             /* 0 = from epochs */
    double time_budget;            /* seconds, 0 = none */
    int32_t batch_tokens;          /* tokens per micro-batch */
    int accum;                     /* micro-batches per step */
    float lr, min_lr_frac, weight_decay, clip;
    float dropout;                 /* residual dropout probability */
    int keep_best;                 /* 1: write the weights that scored best
                                      on the validation set, not the last;
                                      0: the last; -1: the task's default */
    bool best_by_loss;             /* --keep-best picks the pass with the
                                      lowest validation loss, not the
                                      highest accuracy */
    float ema;                     /* decay per step of the moving average
                                      of the weights that is validated and
                                      written; 0 = off (the last weights) */
    int augment;                   /* extract: made-up copies per text */
    float lm_weight;               /* weight of the prompt tokens as extra
                                      language-model targets; 0 = off */
    float token_dropout;           /* classify: probability of deleting
                                      each input token of a training
                                      example; 0 = off, -1 = default */
    float label_smoothing;         /* classify: share of each label target
                                      spread evenly over all labels; 0 =
                                      off, -1 = the task's default */
    int64_t warmup;
    uint64_t seed;
    int n_threads;

    /* output */
    const char *out_path;
    enum roj_type out_type;        /* F32 or F16 */
    const char *checkpoint_path;   /* NULL = out_path + ".ckpt" */
    int64_t checkpoint_every;      /* steps; 0 = every ~60 s */
    bool resume;
    const char *metrics_path;      /* JSONL; NULL = none */
    const char *plot_path;         /* PNG; NULL = terminal chart */
    bool no_plot;                  /* neither */
    bool quiet;
    int64_t eval_every;            /* steps; 0 = 10 times per run */
    /* Set to nonzero (e.g. from a signal handler) to stop: the loop writes
     * a checkpoint and train_run returns ROJ_ERR_ABORTED. May be NULL. */
    volatile int *stop;
} train_opts;

/* Fills o with the defaults (task classify, preset tiny, lr 3e-3, ...).
 * Epochs, lm_weight, dropout and augment stay unset (0 or -1), because
 * they depend on the task: train_run fills them with train_task_defaults. */
void train_opts_default(train_opts *o);

/* Sets the per-task defaults of the fields still unset. For classify,
 * extract and generate: 30 / 4 / 10 epochs, LM weight 0.5 / 0.3 / 0 and
 * dropout 0.1 / 0.05 / 0. Classify also gets token dropout 0.2, a moving
 * average (0.998) and the best validation pass, and extract from scratch
 * 4 augmented copies of each labeled text. Label smoothing stays off. */
void train_task_defaults(train_opts *o);

/* The default validation split: 10% of the records, for classify at most
 * 500. A larger split barely sharpens the choice of --keep-best, and each
 * example held out is one the model does not learn from. On banking77,
 * 500 instead of 1,000 added 0.5 to 0.7 points of test accuracy. */
#define TRAIN_VALID_FRACTION 0.1
#define TRAIN_VALID_MAX 500.0

/* The share of n_records that validation takes under o. */
double train_valid_fraction(const train_opts *o, size_t n_records);

/* Runs the whole pipeline; progress and reports go to stderr. */
roj_status train_run(const train_opts *o);

/* The preset table: name, shape and vocabulary size; NULL past the end. */
typedef struct train_preset {
    const char *name;
    tshape shape;
    uint32_t vocab_size;
} train_preset;
const train_preset *train_preset_at(int i);
const train_preset *train_preset_find(const char *name);

/* ---- internals shared by the trainer's files ----------------------- */

/* Examples as token ids: example i is tok[off[i] .. off[i] + len[i]); its
 * targets are the tokens from n_prompt[i] on. */
typedef struct tenc {
    int32_t *tok;
    int64_t *off;
    int32_t *len, *n_prompt, *label;
    size_t n;
    int32_t max_len;
    size_t n_truncated;   /* prompts cut at the front to fit n_ctx */
} tenc;

/* What the encoder needs to know about the vocabulary. */
typedef struct tenc_spec {
    const roj_vocab *vocab;
    train_task task;
    const char *template_text;
    const int32_t *label_tokens;   /* classify: per label */
    const char *const *labels;     /* extract: slot names */
    int32_t n_ctx;
} tenc_spec;

roj_status tenc_build(const tenc_spec *spec, const train_dataset *d,
                      const size_t *idx, size_t n, tenc *out);
void tenc_free(tenc *e);

/* Extract augmentation (train_augment.c): returns the examples of idx
 * followed, after each record that labels a span, by `copies` copies of
 * it whose span words are replaced by made-up words of the same shape.
 * *out and the strings in *owned are new; the caller frees them. */
roj_status train_augment_spans(const train_dataset *d, const size_t *idx,
                               size_t n, int copies, uint64_t seed,
                               train_example **out, size_t *n_out,
                               char ***owned, size_t *n_owned);

/* Fills a template: {text}, {slot} and {context} are replaced (context
 * empty here); returns a new string the caller frees. */
char *train_fill_template(const char *tmpl, const char *text,
                          size_t text_len, const char *slot);
char *train_fill_template_ctx(const char *tmpl, const char *text,
                              size_t text_len, const char *slot,
                              const char *context, size_t context_len);

/* The default template of a task, and the one used with a context
 * column ("{context}\n" in front). */
const char *train_default_template(train_task task);
const char *train_context_template(train_task task);
/* The template a run uses: --template, else one of the two above. */
const char *train_template_of(const train_opts *o);

#endif
