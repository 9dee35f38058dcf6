/*
 * Evaluation metrics for the three task kinds, with their reports.
 *
 * classify: accuracy, macro-F1, per-label precision, recall, F1 and
 * support, and the confusion matrix.
 * extract: span exact-match F1 per slot. A prediction equal to the gold
 * span is a true positive, a wrong prediction or one where the gold is none
 * is a false positive, and a gold span that was not predicted exactly is a
 * false negative, so a wrong span counts as both. Token F1 is the
 * SQuAD-style token overlap.
 * generate: perplexity from summed negative log-likelihoods.
 *
 * Each accumulator is filled with *_add calls and finished once with
 * *_finish, which computes the derived fields; *_print and *_json read
 * finished values. None of the objects is thread-safe: use one per thread
 * and merge the counts by hand if needed.
 */
#ifndef ROJ_TRAIN_METRICS_H
#define ROJ_TRAIN_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "roj/roj.h"

/* Classification counts and the scores derived from them.
 *
 * Labels with zero support get recall 0, labels never predicted get
 * precision 0, and F1 is 0 whenever precision + recall is 0. Macro-F1 is
 * the mean F1 over labels that occur as truth or as prediction at least
 * once, so a label absent from both does not pull the mean down. This is
 * what scikit-learn's f1_score(average="macro") does when it is given no
 * label list (documented in scikit-learn 1.0). */
typedef struct cls_metrics {
    size_t n_labels;
    const char *const *labels; /* (n_labels), borrowed from the caller */
    uint64_t *confusion;       /* (n_labels, n_labels): [truth][pred] */
    double accuracy;           /* correct / n; 0 when n is 0 */
    double macro_f1;           /* 0 when no label occurs */
    double *precision;         /* (n_labels) */
    double *recall;            /* (n_labels) */
    double *f1;                /* (n_labels) */
    uint64_t *support;         /* (n_labels): rows whose truth is the label */
    uint64_t n;                /* rows counted */
    uint64_t n_correct;
    uint64_t n_no_pred;        /* rows whose prediction was out of range */
    uint64_t n_bad_truth;      /* rows dropped: truth out of range */
} cls_metrics;

/* Allocates the counters for n_labels labels (at least 1). labels must
 * outlive m. Returns ROJ_ERR_INVALID_ARG, ROJ_ERR_RANGE or ROJ_ERR_NOMEM
 * on failure. Free with cls_metrics_free in every case. */
roj_status cls_metrics_init(cls_metrics *m, size_t n_labels,
                            const char *const *labels);

/* Counts one row. A pred outside [0, n_labels), such as -1 for an output
 * that matched no label, counts as wrong and lowers only the recall of the
 * truth label. A truth outside the range is a caller bug, so the row is
 * dropped and counted in n_bad_truth, which the report shows. */
void cls_metrics_add(cls_metrics *m, int32_t truth, int32_t pred);

/* Computes accuracy, precision, recall, F1, support and macro-F1. */
void cls_metrics_finish(cls_metrics *m);

/* Frees the arrays, after which m can be initialized again. */
void cls_metrics_free(cls_metrics *m);

/* Prints accuracy, macro-F1, a per-label table in label-set order and the
 * confusion matrix: in full up to 12 labels, else the most frequent
 * confusions. */
void cls_metrics_print(const cls_metrics *m, FILE *f);

/* Builds {"task":"classify", "n", "accuracy", "macro_f1", "labels":[...],
 * "per_label":{label:{"precision","recall","f1","support"}},
 * "confusion":[[...]]} with rows by truth. Returns NULL when out of
 * memory; the caller frees it with cJSON_Delete. */
cJSON *cls_metrics_json(const cls_metrics *m);

/* Counts and scores of one slot in span extraction. */
typedef struct span_slot_metrics {
    uint64_t n;           /* examples of this slot */
    uint64_t n_gold;      /* examples with a gold span */
    uint64_t n_pred;      /* examples with a predicted span */
    uint64_t tp, fp, fn;  /* exact-match counts, defined at the top */
    uint64_t n_exact;     /* prediction equals gold, both-none included */
    double token_f1_sum;  /* sum of per-example token F1 */
    double precision, recall, f1; /* exact-match, 0 when undefined */
    double exact_match;   /* n_exact / n, 0 when n is 0 */
    double token_f1;      /* token_f1_sum / n, 0 when n is 0 */
} span_slot_metrics;

/* Span extraction scores over all slots. One example is one (text, slot)
 * pair as passed to span_metrics_add.
 *
 * f1 and token_f1 are means over the slots that have at least one gold or
 * predicted span. A slot without any span, in gold or prediction, has
 * nothing to score and is left out. Both are 0 when no slot is
 * scored. exact_match is over all examples. */
typedef struct span_metrics {
    size_t n_slots;
    const char *const *slots;  /* (n_slots), borrowed from the caller */
    span_slot_metrics *per_slot; /* (n_slots) */
    uint64_t n;                /* examples counted */
    uint64_t n_bad_slot;       /* examples dropped: slot out of range */
    size_t n_slots_scored;     /* slots that enter the f1 mean */
    double exact_match;
    double f1;
    double token_f1;
} span_metrics;

/* Allocates the counters for n_slots slots (at least 1). slots must
 * outlive m. Free with span_metrics_free in every case. */
roj_status span_metrics_init(span_metrics *m, size_t n_slots,
                             const char *const *slots);

/* Counts one example of a slot. gold and pred are byte strings of the
 * given lengths, compared byte for byte, and NULL or length 0 means none.
 * A slot outside [0, n_slots) is a caller bug, so the example is dropped
 * and counted in n_bad_slot. */
void span_metrics_add(span_metrics *m, int32_t slot, const char *gold,
                      size_t gold_len, const char *pred, size_t pred_len);

/* Computes the per-slot scores and the means. */
void span_metrics_finish(span_metrics *m);

/* Frees the arrays, after which m can be initialized again. */
void span_metrics_free(span_metrics *m);

/* Prints exact match, F1 and token F1, then one row per slot. */
void span_metrics_print(const span_metrics *m, FILE *f);

/* Builds {"task":"extract", "n", "exact_match", "f1", "token_f1",
 * "per_slot":{slot:{"precision","recall","f1","exact_match","token_f1",
 * "tp","fp","fn","n","n_gold","n_pred"}}}. Returns NULL when out of
 * memory; the caller frees it with cJSON_Delete. */
cJSON *span_metrics_json(const span_metrics *m);

/* SQuAD-style token F1 of two strings: both are split on whitespace and
 * Unicode punctuation and symbols, case-folded, and compared as multisets
 * of tokens. Returns 1 when both have no tokens and 0 when only one has
 * none. Articles (a, an, the) are kept as tokens. */
double span_token_f1(const char *gold, size_t gold_len, const char *pred,
                     size_t pred_len);

/* Perplexity of generated targets. */
typedef struct ppl_metrics {
    double nll_sum;     /* summed negative log-likelihood, in nats */
    uint64_t n_tokens;  /* target tokens scored */
    double perplexity;  /* exp(nll_sum / n_tokens), NaN when no tokens */
} ppl_metrics;

/* Zeroes the sums. */
void ppl_metrics_init(ppl_metrics *m);

/* Adds the summed negative log-likelihood (nats) of n_tokens tokens. */
void ppl_metrics_add(ppl_metrics *m, double nll_sum, uint64_t n_tokens);

/* Computes the perplexity. */
void ppl_metrics_finish(ppl_metrics *m);

/* Prints tokens, mean NLL and perplexity. */
void ppl_metrics_print(const ppl_metrics *m, FILE *f);

/* Builds {"task":"generate", "n_tokens", "nll_mean", "perplexity"}, with
 * null for undefined values. Returns NULL when out of memory; the caller
 * frees it with cJSON_Delete. */
cJSON *ppl_metrics_json(const ppl_metrics *m);

#endif
