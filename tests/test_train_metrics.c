/* Evaluation metrics against values worked out by hand on small cases,
 * with their text reports and JSON objects. Also the progress line and
 * the JSONL metrics log. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "train/metrics.h"
#include "train/progress.h"
#include "testutil.h"

#define EPS 1e-12

static const char *const abc[] = {"a", "b", "c"};

/* Truth rows, predicted columns:
 *   a: 5 1 0
 *   b: 2 3 1
 *   c: 0 2 6
 * n = 20, correct = 14. Precision 5/7, 1/2, 6/7; recall 5/6, 1/2, 3/4;
 * F1 10/13, 1/2, 4/5; macro-F1 = (10/13 + 1/2 + 4/5) / 3 = 269/390. */
static const int abc_counts[3][3] = {{5, 1, 0}, {2, 3, 1}, {0, 2, 6}};

static void fill_abc(cls_metrics *m)
{
    assert_int_equal(cls_metrics_init(m, 3, abc), ROJ_OK);
    for (int t = 0; t < 3; t++)
        for (int p = 0; p < 3; p++)
            for (int i = 0; i < abc_counts[t][p]; i++)
                cls_metrics_add(m, t, p);
    cls_metrics_finish(m);
}

/* Prints into a string; the caller frees it. The text is copied to a
 * fresh heap block because GCC's -Wdangling-pointer at -O3 otherwise
 * mistakes pointers into it for pointers to the local that open_memstream
 * fills in. */
static char *cls_report(const cls_metrics *m)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_non_null(f);
    cls_metrics_print(m, f);
    assert_int_equal(fclose(f), 0);
    char *copy = strdup(text);
    assert_non_null(copy);
    free(text);
    return copy;
}

static void cls_three_by_three(void **state)
{
    (void)state;
    cls_metrics m;
    fill_abc(&m);

    assert_int_equal(m.n, 20);
    assert_int_equal(m.n_correct, 14);
    assert_float_equal(m.accuracy, 0.7, EPS);
    assert_float_equal(m.precision[0], 5.0 / 7.0, EPS);
    assert_float_equal(m.precision[1], 0.5, EPS);
    assert_float_equal(m.precision[2], 6.0 / 7.0, EPS);
    assert_float_equal(m.recall[0], 5.0 / 6.0, EPS);
    assert_float_equal(m.recall[1], 0.5, EPS);
    assert_float_equal(m.recall[2], 0.75, EPS);
    assert_float_equal(m.f1[0], 10.0 / 13.0, EPS);
    assert_float_equal(m.f1[1], 0.5, EPS);
    assert_float_equal(m.f1[2], 0.8, EPS);
    assert_float_equal(m.macro_f1, 269.0 / 390.0, EPS);
    assert_int_equal(m.support[0], 6);
    assert_int_equal(m.support[1], 6);
    assert_int_equal(m.support[2], 8);
    assert_int_equal(m.confusion[1 * 3 + 0], 2);
    assert_int_equal(m.confusion[2 * 3 + 1], 2);
    cls_metrics_free(&m);
}

/* Label d is predicted once but never true: precision, recall and F1 are
 * 0 and it enters the mean. Label e never occurs and is left out. */
static void cls_zero_support(void **state)
{
    (void)state;
    static const char *const labels[] = {"a", "b", "c", "d", "e"};
    cls_metrics m;
    assert_int_equal(cls_metrics_init(&m, 5, labels), ROJ_OK);
    cls_metrics_add(&m, 0, 0);
    cls_metrics_add(&m, 0, 3);
    cls_metrics_add(&m, 1, 1);
    cls_metrics_add(&m, 2, 2);
    cls_metrics_finish(&m);

    assert_float_equal(m.accuracy, 0.75, EPS);
    assert_int_equal(m.support[3], 0);
    assert_float_equal(m.precision[3], 0.0, EPS);
    assert_float_equal(m.recall[3], 0.0, EPS);
    assert_float_equal(m.f1[3], 0.0, EPS);
    assert_float_equal(m.f1[4], 0.0, EPS);
    /* a: P 1, R 1/2, F1 2/3; b and c: 1; d: 0. */
    assert_float_equal(m.f1[0], 2.0 / 3.0, EPS);
    assert_float_equal(m.macro_f1, (2.0 / 3.0 + 1.0 + 1.0 + 0.0) / 4.0,
                       EPS);
    cls_metrics_free(&m);
}

static void cls_out_of_range(void **state)
{
    (void)state;
    cls_metrics m;
    assert_int_equal(cls_metrics_init(&m, 3, abc), ROJ_OK);
    cls_metrics_add(&m, 0, 0);
    cls_metrics_add(&m, 1, -1); /* output matched no label */
    cls_metrics_add(&m, 1, 7);
    cls_metrics_add(&m, 5, 0);  /* bad truth: dropped */
    cls_metrics_add(&m, -2, 1);
    cls_metrics_finish(&m);

    assert_int_equal(m.n, 3);
    assert_int_equal(m.n_no_pred, 2);
    assert_int_equal(m.n_bad_truth, 2);
    assert_int_equal(m.support[1], 2);
    assert_float_equal(m.accuracy, 1.0 / 3.0, EPS);
    assert_float_equal(m.recall[1], 0.0, EPS);
    assert_float_equal(m.precision[0], 1.0, EPS);
    /* a: F1 1; b: 0; c never occurs. */
    assert_float_equal(m.macro_f1, 0.5, EPS);

    char *text = cls_report(&m);
    assert_non_null(strstr(text, "rows with no valid prediction: 2"));
    assert_non_null(strstr(text, "truth label out of range: 2"));
    free(text);
    cls_metrics_free(&m);
}

static void cls_empty(void **state)
{
    (void)state;
    cls_metrics m;
    assert_int_equal(cls_metrics_init(&m, 3, abc), ROJ_OK);
    cls_metrics_finish(&m);
    assert_float_equal(m.accuracy, 0.0, EPS);
    assert_float_equal(m.macro_f1, 0.0, EPS);
    cls_metrics_free(&m);

    assert_int_equal(cls_metrics_init(&m, 0, abc), ROJ_ERR_INVALID_ARG);
    assert_non_null(strstr(roj_last_error(), "at least one label"));
    cls_metrics_free(&m);
}

static void cls_print_full_matrix(void **state)
{
    (void)state;
    cls_metrics m;
    fill_abc(&m);
    char *text = cls_report(&m);

    assert_non_null(strstr(text, "accuracy  0.7000\n"));
    assert_non_null(strstr(text, "macro-F1  0.6897\n"));
    assert_non_null(strstr(text, "label  precision  recall      F1  "
                                 "support\n"));
    assert_non_null(strstr(text, "a         0.7143  0.8333  0.7692        "
                                 "6\n"));
    assert_non_null(strstr(text, "c         0.8571  0.7500  0.8000        "
                                 "8\n"));
    assert_non_null(strstr(text, "          0 1 2\n"));
    assert_non_null(strstr(text, " 0 a      5 1 0\n"));
    assert_non_null(strstr(text, " 1 b      2 3 1\n"));
    assert_non_null(strstr(text, " 2 c      0 2 6\n"));
    free(text);
    cls_metrics_free(&m);
}

/* 13 labels: the report lists confusions by count instead of the
 * matrix. */
static void cls_print_top_pairs(void **state)
{
    (void)state;
    static const char *const labels[] = {"l0", "l1", "l2", "l3", "l4",
                                         "l5", "l6", "l7", "l8", "l9",
                                         "l10", "l11", "l12"};
    cls_metrics m;
    assert_int_equal(cls_metrics_init(&m, 13, labels), ROJ_OK);
    for (int i = 0; i < 13; i++)
        cls_metrics_add(&m, i, i);
    for (int i = 0; i < 4; i++)
        cls_metrics_add(&m, 12, 3);
    for (int i = 0; i < 2; i++)
        cls_metrics_add(&m, 5, 6);
    for (int i = 0; i < 2; i++)
        cls_metrics_add(&m, 1, 2);
    /* Eleven pairs of count 1, so one of them falls off the list. */
    for (int t = 0; t < 11; t++)
        cls_metrics_add(&m, t, t + 2);
    cls_metrics_finish(&m);

    char *text = cls_report(&m);
    assert_null(strstr(text, "confusion matrix"));
    const char *top = strstr(text, "most frequent confusions (13 labels");
    assert_non_null(top);
    const char *first = strstr(top, "       4  l12    l3\n");
    const char *second = strstr(top, "       2  l1     l2\n");
    const char *third = strstr(top, "       2  l5     l6\n");
    assert_non_null(first);
    assert_non_null(second);
    assert_non_null(third);
    assert_true(first < second);
    assert_true(second < third);
    /* Ten rows in all: the three above and seven of the count-1 pairs, in
     * label-set order, so l6 -> l8 is the last one listed. */
    assert_non_null(strstr(top, "       1  l6     l8\n"));
    assert_null(strstr(top, "       1  l7     l9\n"));
    free(text);
    cls_metrics_free(&m);
}

/* Labels outside ASCII line up by columns, not bytes: "café" is 4
 * columns in 5 bytes, each CJK character 2 columns in 3 bytes, and a
 * name past 32 columns is cut between characters, never inside one. */
static void cls_print_unicode_labels(void **state)
{
    (void)state;
    static const char *const labels[] = {
        "café", "\xe6\x94\xaf\xe4\xbb\x98", /* 支付: 4 columns */
        "ééééééééééééééééééééééééééééééééé" /* 33 columns */};
    cls_metrics m;
    assert_int_equal(cls_metrics_init(&m, 3, labels), ROJ_OK);
    cls_metrics_add(&m, 0, 0);
    cls_metrics_add(&m, 1, 1);
    cls_metrics_add(&m, 2, 0);
    cls_metrics_finish(&m);
    char *text = cls_report(&m);

    /* Label column: 32 columns (the cap), then two spaces. */
    assert_non_null(strstr(text, "\nlabel                             "
                                 "precision"));
    assert_non_null(strstr(text, "\ncafé                              "
                                 "   0.5000"));
    assert_non_null(strstr(text, "\n\xe6\x94\xaf\xe4\xbb\x98      "
                                 "                        "
                                 "   1.0000"));
    /* 32 of the 33 "é" (64 bytes), then the next column. */
    assert_non_null(strstr(text, "\néééééééééééééééééééééééééééééééé  "
                                 "   0.0000"));
    assert_non_null(strstr(text, " 0 café                              "
                                 "1 0 0\n"));
    free(text);
    cls_metrics_free(&m);
}

static void cls_json_fields(void **state)
{
    (void)state;
    cls_metrics m;
    fill_abc(&m);
    cJSON *o = cls_metrics_json(&m);
    assert_non_null(o);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    assert_non_null(text);

    /* Parse the printed text back, as a reader of `-o json` would. */
    cJSON *back = cJSON_Parse(text);
    free(text);
    assert_non_null(back);
    assert_string_equal(
        cJSON_GetObjectItem(back, "task")->valuestring, "classify");
    assert_float_equal(cJSON_GetObjectItem(back, "accuracy")->valuedouble,
                       0.7, 1e-9);
    assert_float_equal(cJSON_GetObjectItem(back, "macro_f1")->valuedouble,
                       269.0 / 390.0, 1e-9);
    cJSON *b = cJSON_GetObjectItem(cJSON_GetObjectItem(back, "per_label"),
                                   "b");
    assert_non_null(b);
    assert_float_equal(cJSON_GetObjectItem(b, "precision")->valuedouble, 0.5,
                       1e-9);
    assert_int_equal(cJSON_GetObjectItem(b, "support")->valueint, 6);
    cJSON *confusion = cJSON_GetObjectItem(back, "confusion");
    assert_int_equal(cJSON_GetArraySize(confusion), 3);
    for (int t = 0; t < 3; t++) {
        cJSON *row = cJSON_GetArrayItem(confusion, t);
        assert_int_equal(cJSON_GetArraySize(row), 3);
        for (int p = 0; p < 3; p++)
            assert_int_equal(cJSON_GetArrayItem(row, p)->valueint,
                             abc_counts[t][p]);
    }
    cJSON *labels = cJSON_GetObjectItem(back, "labels");
    assert_string_equal(cJSON_GetArrayItem(labels, 2)->valuestring, "c");
    cJSON_Delete(back);
    cls_metrics_free(&m);
}

static size_t length_or_zero(const char *s)
{
    return s ? strlen(s) : 0;
}

/* Adds an example from C strings, NULL meaning none. */
static void span_add(span_metrics *m, int32_t slot, const char *gold,
                     const char *pred)
{
    span_metrics_add(m, slot, gold, length_or_zero(gold), pred,
                     length_or_zero(pred));
}

static const char *const time_people[] = {"time", "people"};

/* time: one hit, one wrong span, one miss, one spurious span and one
 * correct none: tp 1, fp 2, fn 2, so P = R = F1 = 1/3 and exact 2/5.
 * people is none everywhere and leaves the mean. */
static void span_exact_counts(void **state)
{
    (void)state;
    span_metrics m;
    assert_int_equal(span_metrics_init(&m, 2, time_people), ROJ_OK);
    span_add(&m, 0, "7pm", "7pm");
    span_add(&m, 0, "7pm", "8pm");
    span_add(&m, 0, "7pm", NULL);
    span_add(&m, 0, NULL, "7pm");
    span_add(&m, 0, NULL, NULL);
    for (int i = 0; i < 5; i++)
        span_add(&m, 1, NULL, "");
    span_metrics_finish(&m);

    const span_slot_metrics *t = &m.per_slot[0];
    assert_int_equal(t->tp, 1);
    assert_int_equal(t->fp, 2);
    assert_int_equal(t->fn, 2);
    assert_int_equal(t->n_gold, 3);
    assert_int_equal(t->n_pred, 3);
    assert_float_equal(t->precision, 1.0 / 3.0, EPS);
    assert_float_equal(t->recall, 1.0 / 3.0, EPS);
    assert_float_equal(t->f1, 1.0 / 3.0, EPS);
    assert_float_equal(t->exact_match, 0.4, EPS);
    /* Token F1: 1, 0 ("7pm" and "8pm" share no token), 0, 0, 1. */
    assert_float_equal(t->token_f1, 0.4, EPS);

    assert_int_equal(m.per_slot[1].n_exact, 5);
    assert_int_equal(m.n_slots_scored, 1);
    assert_float_equal(m.f1, 1.0 / 3.0, EPS);
    assert_float_equal(m.token_f1, 0.4, EPS);
    assert_float_equal(m.exact_match, 7.0 / 10.0, EPS);
    span_metrics_free(&m);
}

static void span_all_none(void **state)
{
    (void)state;
    span_metrics m;
    assert_int_equal(span_metrics_init(&m, 2, time_people), ROJ_OK);
    for (int i = 0; i < 4; i++) {
        span_add(&m, 0, NULL, NULL);
        span_add(&m, 1, "", NULL);
    }
    span_metrics_finish(&m);
    assert_int_equal(m.n, 8);
    assert_float_equal(m.exact_match, 1.0, EPS);
    assert_int_equal(m.n_slots_scored, 0);
    assert_float_equal(m.f1, 0.0, EPS);
    assert_int_equal(m.per_slot[0].tp + m.per_slot[0].fp + m.per_slot[0].fn,
                     0);
    assert_float_equal(m.per_slot[1].token_f1, 1.0, EPS);
    span_metrics_free(&m);
}

static void span_two_slots_mean(void **state)
{
    (void)state;
    span_metrics m;
    assert_int_equal(span_metrics_init(&m, 2, time_people), ROJ_OK);
    span_add(&m, 0, "noon", "noon");          /* time F1 1 */
    span_add(&m, 1, "4 people", "4");         /* people F1 0 */
    span_add(&m, 1, "two", "two");            /* now people P = R = 1/2 */
    span_add(&m, 9, "x", "x");                /* bad slot: dropped */
    span_metrics_finish(&m);
    assert_int_equal(m.n, 3);
    assert_int_equal(m.n_bad_slot, 1);
    assert_float_equal(m.per_slot[1].f1, 0.5, EPS);
    assert_float_equal(m.f1, 0.75, EPS);
    /* people token F1: "4 people" vs "4" is P 1, R 1/2, F1 2/3; then 1. */
    assert_float_equal(m.per_slot[1].token_f1, (2.0 / 3.0 + 1.0) / 2.0,
                       EPS);
    span_metrics_free(&m);
}

static double token_f1(const char *gold, const char *pred)
{
    return span_token_f1(gold, length_or_zero(gold), pred,
                         length_or_zero(pred));
}

static void span_token_f1_cases(void **state)
{
    (void)state;
    /* [the 7 30 pm] against [7 30 pm]: P 1, R 3/4. */
    assert_float_equal(token_f1("The 7:30 PM", "7:30 pm"), 6.0 / 7.0, EPS);
    /* Multisets: [a a b] and [a b b] share one a and one b. */
    assert_float_equal(token_f1("a a b", "a b b"), 2.0 / 3.0, EPS);
    assert_float_equal(token_f1(NULL, NULL), 1.0, EPS);
    assert_float_equal(token_f1("...", ""), 1.0, EPS);
    assert_float_equal(token_f1("7pm", NULL), 0.0, EPS);
    assert_float_equal(token_f1(NULL, "7pm"), 0.0, EPS);
    assert_float_equal(token_f1("x", "y"), 0.0, EPS);
    /* Full case folding maps the sharp s to "ss". */
    assert_float_equal(token_f1("STRASSE", "stra\xc3\x9f" "e"), 1.0, EPS);
    /* Unicode punctuation (an en dash) splits tokens too. */
    assert_float_equal(token_f1("5\xe2\x80\x93" "7", "5 7"), 1.0, EPS);
    /* Invalid UTF-8 is compared as replacement characters. */
    assert_float_equal(token_f1("\xff", "\xfe"), 1.0, EPS);
    assert_float_equal(token_f1("a\xff", "a"), 0.0, EPS);
}

static void span_print_and_json(void **state)
{
    (void)state;
    span_metrics m;
    assert_int_equal(span_metrics_init(&m, 2, time_people), ROJ_OK);
    span_add(&m, 0, "7pm", "7pm");
    span_add(&m, 0, "7pm", "8pm");
    span_add(&m, 1, "2", NULL);
    span_metrics_finish(&m);

    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_non_null(f);
    span_metrics_print(&m, f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(text, "exact match  0.3333\n"));
    assert_non_null(strstr(text, "F1           0.2500  (mean over 2 "
                                 "slots)\n"));
    assert_non_null(strstr(text, "time       0.5000  0.5000  0.5000  "
                                 "0.500    0.5000       2       2\n"));
    free(text);

    cJSON *o = span_metrics_json(&m);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "task")->valuestring,
                        "extract");
    assert_float_equal(cJSON_GetObjectItem(o, "exact_match")->valuedouble,
                       1.0 / 3.0, EPS);
    assert_float_equal(cJSON_GetObjectItem(o, "f1")->valuedouble,
                       (0.5 + 0.0) / 2.0, EPS);
    cJSON *people = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "per_slot"),
                                        "people");
    assert_non_null(people);
    assert_int_equal(cJSON_GetObjectItem(people, "fn")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(people, "tp")->valueint, 0);
    cJSON_Delete(o);
    span_metrics_free(&m);
}

static void ppl_from_nll(void **state)
{
    (void)state;
    ppl_metrics m;
    ppl_metrics_init(&m);
    ppl_metrics_finish(&m);
    assert_true(isnan(m.perplexity));
    cJSON *o = ppl_metrics_json(&m);
    assert_non_null(o);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "perplexity")));
    cJSON_Delete(o);

    /* Three tokens at probability 1/4 and one at 1/16: mean NLL is
     * 5/4 ln 4, so perplexity is 4^(5/4). */
    ppl_metrics_add(&m, 3.0 * log(4.0), 3);
    ppl_metrics_add(&m, log(16.0), 1);
    ppl_metrics_finish(&m);
    assert_int_equal(m.n_tokens, 4);
    assert_float_equal(m.perplexity, pow(4.0, 1.25), 1e-9);
    o = ppl_metrics_json(&m);
    assert_non_null(o);
    assert_float_equal(cJSON_GetObjectItem(o, "perplexity")->valuedouble,
                       pow(4.0, 1.25), 1e-9);
    assert_string_equal(cJSON_GetObjectItem(o, "task")->valuestring,
                        "generate");
    cJSON_Delete(o);
}

/* A progress object writing into a memory stream. */
typedef struct progress_capture {
    char *text;
    size_t size;
    FILE *f;
    progress *p;
} progress_capture;

static void capture_open(progress_capture *c, uint64_t total,
                         progress_mode mode, double interval_s)
{
    c->text = NULL;
    c->size = 0;
    c->f = open_memstream(&c->text, &c->size);
    assert_non_null(c->f);
    assert_int_equal(progress_create(c->f, total, mode, interval_s, &c->p),
                     ROJ_OK);
}

/* Closes the stream and returns a copy of the text; the caller frees
 * it. */
static char *capture_close(progress_capture *c)
{
    progress_destroy(c->p);
    assert_int_equal(fclose(c->f), 0);
    char *copy = strdup(c->text);
    assert_non_null(copy);
    free(c->text);
    return copy;
}

static size_t count_char(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

/* 120 steps and 12340 tokens in 10 s: 1234 tok/s and 1/12 s per step, so
 * 2880 steps to go take 240 s. */
static void progress_line_fields(void **state)
{
    (void)state;
    progress_capture c;
    capture_open(&c, 3000, PROGRESS_LINES, 60.0);
    progress_info info = progress_info_empty(0);
    progress_update_at(c.p, &info, 100.0);

    info = progress_info_empty(120);
    info.epoch = 1.2;
    info.loss = 2.314;
    info.metrics[0].name = "val_acc";
    info.metrics[0].value = 0.812;
    info.tokens = 12340;
    progress_update_at(c.p, &info, 110.0);

    char line[256];
    int len = progress_format(c.p, &info, line, sizeof line);
    const char *expected = "step 120/3000 [....................] 4.0% "
                           "epoch 1.20 loss 2.314 val_acc 0.812 "
                           "1234 tok/s ETA 4m00s";
    assert_string_equal(line, expected);
    assert_int_equal(len, (int)strlen(expected));

    /* A short buffer truncates but still reports the full length. */
    char small[16];
    assert_int_equal(progress_format(c.p, &info, small, sizeof small), len);
    assert_string_equal(small, "step 120/3000 [");

    /* Unknown total: no bar, percentage or ETA; NaN hides the loss. */
    progress *open_ended;
    assert_int_equal(progress_create(c.f, 0, PROGRESS_LINES, 0, &open_ended),
                     ROJ_OK);
    info = progress_info_empty(7);
    progress_format(open_ended, &info, line, sizeof line);
    assert_string_equal(line, "step 7");
    progress_destroy(open_ended);

    free(capture_close(&c));
}

/* The ETA follows the recent step time: a slow start drops out of the
 * PROGRESS_WINDOW updates that the average covers. */
static void progress_eta_moving_average(void **state)
{
    (void)state;
    progress_capture c;
    capture_open(&c, 1000, PROGRESS_LINES, 1e9);
    progress_info info = progress_info_empty(0);
    double t = 0.0;
    progress_update_at(c.p, &info, t);
    for (uint64_t step = 1; step <= 100; step++) {
        t += step <= 10 ? 10.0 : 0.5; /* 10 slow steps, then 0.5 s each */
        info.step = step;
        progress_update_at(c.p, &info, t);
    }
    char line[256];
    progress_format(c.p, &info, line, sizeof line);
    /* 900 steps at 0.5 s = 450 s. */
    assert_non_null(strstr(line, "[##..................] 10.0% ETA 7m30s"));
    free(capture_close(&c));
}

static void progress_lines_interval(void **state)
{
    (void)state;
    progress_capture c;
    capture_open(&c, 10, PROGRESS_LINES, 10.0);
    progress_info info = progress_info_empty(1);
    progress_update_at(c.p, &info, 0.0);  /* first: printed */
    info.step = 2;
    progress_update_at(c.p, &info, 5.0);  /* too soon */
    info.step = 3;
    progress_update_at(c.p, &info, 10.0); /* printed */
    info.step = 4;
    progress_update_at(c.p, &info, 12.0); /* too soon */
    info.step = 10;
    progress_finish_at(c.p, &info, 13.0); /* always printed */
    char *text = capture_close(&c);
    assert_int_equal(count_char(text, '\n'), 3);
    assert_int_equal(count_char(text, '\r'), 0);
    assert_non_null(strstr(text, "step 1/10 "));
    assert_null(strstr(text, "step 2/10 "));
    assert_non_null(strstr(text, "step 3/10 "));
    assert_non_null(strstr(text, "step 10/10 [####################] "
                                 "100.0%"));
    free(text);
}

static void progress_terminal_redraw(void **state)
{
    (void)state;
    progress_capture c;
    capture_open(&c, 0, PROGRESS_TERMINAL, 0);
    progress_info info = progress_info_empty(5);
    info.loss = 12.5;
    progress_update_at(c.p, &info, 0.0);
    info = progress_info_empty(6);
    progress_update_at(c.p, &info, 0.05); /* throttled */
    progress_update_at(c.p, &info, 0.5);
    progress_clear(c.p);
    progress_finish_at(c.p, &info, 1.0);
    char *text = capture_close(&c);
    /* The shorter second line pads over the old one and redraws. */
    const char *expected = "\rstep 5 loss 12.5"
                           "\rstep 6          \rstep 6"
                           "\r      \r"
                           "\rstep 6\n";
    assert_string_equal(text, expected);
    free(text);
}

static void progress_duration_format(void **state)
{
    (void)state;
    char buf[32];
    progress_format_duration(45.0, buf, sizeof buf);
    assert_string_equal(buf, "45s");
    progress_format_duration(250.0, buf, sizeof buf);
    assert_string_equal(buf, "4m10s");
    progress_format_duration(3725.0, buf, sizeof buf);
    assert_string_equal(buf, "1h02m");
    progress_format_duration(200000.0, buf, sizeof buf);
    assert_string_equal(buf, "2d07h");
    progress_format_duration(1e12, buf, sizeof buf);
    assert_string_equal(buf, ">99d");
    progress_format_duration(-1.0, buf, sizeof buf);
    assert_string_equal(buf, "?");
    progress_format_duration(NAN, buf, sizeof buf);
    assert_string_equal(buf, "?");
}

static const char *log_path(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    return path;
}

static void write_record(metrics_log *log, const char *key, double value)
{
    cJSON *o = cJSON_CreateObject();
    assert_non_null(o);
    assert_non_null(cJSON_AddNumberToObject(o, key, value));
    assert_int_equal(metrics_log_write(log, o), ROJ_OK);
    cJSON_Delete(o);
}

static void metrics_log_lines(void **state)
{
    (void)state;
    const char *path = log_path("metrics.jsonl");
    metrics_log *log;
    assert_int_equal(metrics_log_open(path, 0, &log), ROJ_OK);
    write_record(log, "step", 1);
    write_record(log, "step", 2);
    /* Flushed: the lines are in the file before the close. */
    size_t size;
    char *text = test_read_file(path, &size);
    assert_string_equal(text, "{\"step\":1}\n{\"step\":2}\n");
    free(text);
    assert_int_equal(metrics_log_close(log), ROJ_OK);

    /* Truncate mode starts over. */
    assert_int_equal(metrics_log_open(path, 0, &log), ROJ_OK);
    write_record(log, "loss", 0.5);
    assert_int_equal(metrics_log_close(log), ROJ_OK);
    text = test_read_file(path, &size);
    assert_string_equal(text, "{\"loss\":0.5}\n");
    free(text);
}

/* A resumed run appends after the complete lines and drops the half
 * line a killed run left. */
static void metrics_log_append_repairs(void **state)
{
    (void)state;
    const char *path = log_path("resume.jsonl");
    const char *partial = "{\"step\":1}\n{\"step\":2}\n{\"st";
    test_write_file(path, partial, strlen(partial));
    metrics_log *log;
    assert_int_equal(metrics_log_open(path, 1, &log), ROJ_OK);
    write_record(log, "step", 3);
    assert_int_equal(metrics_log_close(log), ROJ_OK);
    size_t size;
    char *text = test_read_file(path, &size);
    assert_string_equal(text, "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n");
    free(text);

    /* A file that is only a partial line is emptied. */
    test_write_file(path, "{\"a\"", 4);
    assert_int_equal(metrics_log_open(path, 1, &log), ROJ_OK);
    assert_int_equal(metrics_log_close(log), ROJ_OK);
    text = test_read_file(path, &size);
    assert_int_equal(size, 0);
    free(text);

    assert_int_equal(metrics_log_open("/nonexistent-dir/m.jsonl", 1, &log),
                     ROJ_ERR_IO);
    assert_non_null(strstr(roj_last_error(), "/nonexistent-dir/m.jsonl"));
}

/* SIGKILL right after the writes: every written line is in the file,
 * because each write is flushed. */
static void metrics_log_survives_kill(void **state)
{
    (void)state;
    const char *path = log_path("killed.jsonl");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        metrics_log *log;
        if (metrics_log_open(path, 0, &log) != ROJ_OK)
            _exit(2);
        for (int i = 0; i < 5; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "step", i);
            if (metrics_log_write(log, o) != ROJ_OK)
                _exit(3);
            cJSON_Delete(o);
        }
        raise(SIGKILL);
        _exit(4);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    size_t size;
    char *text = test_read_file(path, &size);
    assert_int_equal(count_char(text, '\n'), 5);
    assert_non_null(strstr(text, "{\"step\":4}\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cls_three_by_three),
        cmocka_unit_test(cls_zero_support),
        cmocka_unit_test(cls_out_of_range),
        cmocka_unit_test(cls_empty),
        cmocka_unit_test(cls_print_full_matrix),
        cmocka_unit_test(cls_print_top_pairs),
        cmocka_unit_test(cls_print_unicode_labels),
        cmocka_unit_test(cls_json_fields),
        cmocka_unit_test(span_exact_counts),
        cmocka_unit_test(span_all_none),
        cmocka_unit_test(span_two_slots_mean),
        cmocka_unit_test(span_token_f1_cases),
        cmocka_unit_test(span_print_and_json),
        cmocka_unit_test(ppl_from_nll),
        cmocka_unit_test(progress_line_fields),
        cmocka_unit_test(progress_eta_moving_average),
        cmocka_unit_test(progress_lines_interval),
        cmocka_unit_test(progress_terminal_redraw),
        cmocka_unit_test(progress_duration_format),
        cmocka_unit_test(metrics_log_lines),
        cmocka_unit_test(metrics_log_append_repairs),
        cmocka_unit_test(metrics_log_survives_kill),
    };
    return test_run_group(tests, NULL, NULL);
}
