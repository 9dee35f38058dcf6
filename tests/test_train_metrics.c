/* Evaluation metrics against values worked out by hand on small cases,
 * their text reports and their JSON objects. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "train/metrics.h"
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

/* Prints into a string; the caller frees it. The copy keeps GCC's
 * -Wdangling-pointer from taking pointers into the text for pointers to
 * the local that open_memstream filled in. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cls_three_by_three),
        cmocka_unit_test(cls_zero_support),
        cmocka_unit_test(cls_out_of_range),
        cmocka_unit_test(cls_empty),
        cmocka_unit_test(cls_print_full_matrix),
        cmocka_unit_test(cls_print_top_pairs),
        cmocka_unit_test(cls_json_fields),
        cmocka_unit_test(span_exact_counts),
        cmocka_unit_test(span_all_none),
        cmocka_unit_test(span_two_slots_mean),
        cmocka_unit_test(span_token_f1_cases),
        cmocka_unit_test(span_print_and_json),
        cmocka_unit_test(ppl_from_nll),
    };
    return test_run_group(tests, NULL, NULL);
}
