/* The demo's ticket generator. The same seed gives the same bytes and a
 * smaller set is a prefix of a larger one. Spans point at an order
 * number or a product, labels are close to uniform, and the JSON Lines
 * files are written whole and parse. */
#include "testutil.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "demo/tickets.h"
#include "demo/tickets_words.h"

static void generate(uint64_t seed, size_t n, ticket_set *set)
{
    roj_status st = tickets_generate(seed, n, set);
    if (st != ROJ_OK)
        fail_msg("tickets_generate(%llu, %zu): %s",
                 (unsigned long long)seed, n, roj_last_error());
    assert_int_equal(set->n, n);
}

static void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", test_tmpdir(), name);
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void tickets_same_seed_same_bytes(void **state)
{
    char a[512], b[512], c[512];
    ticket_set s1, s2, s3;
    size_t na, nb, nc;
    (void)state;

    tmp_path(a, sizeof a, "same-a.jsonl");
    tmp_path(b, sizeof b, "same-b.jsonl");
    tmp_path(c, sizeof c, "same-c.jsonl");
    generate(7, 300, &s1);
    generate(7, 300, &s2);
    generate(8, 300, &s3);
    assert_int_equal(tickets_write_labeled(&s1, a), ROJ_OK);
    assert_int_equal(tickets_write_labeled(&s2, b), ROJ_OK);
    assert_int_equal(tickets_write_labeled(&s3, c), ROJ_OK);
    char *da = test_read_file(a, &na);
    char *db = test_read_file(b, &nb);
    char *dc = test_read_file(c, &nc);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
    /* Another seed gives other tickets. */
    assert_true(na != nc || memcmp(da, dc, na) != 0);
    free(da);
    free(db);
    free(dc);
    tickets_free(&s1);
    tickets_free(&s2);
    tickets_free(&s3);
}

static void tickets_prefix_property(void **state)
{
    ticket_set small, large;
    (void)state;

    generate(42, 40, &small);
    generate(42, 400, &large);
    for (size_t i = 0; i < small.n; i++) {
        const ticket *x = &small.tickets[i], *y = &large.tickets[i];
        assert_string_equal(x->id, y->id);
        assert_string_equal(x->text, y->text);
        assert_int_equal(x->text_len, y->text_len);
        assert_int_equal(x->category, y->category);
        assert_int_equal(x->urgency, y->urgency);
        assert_int_equal(x->order_start, y->order_start);
        assert_int_equal(x->order_end, y->order_end);
        assert_int_equal(x->product_start, y->product_start);
        assert_int_equal(x->product_end, y->product_end);
    }
    tickets_free(&small);
    tickets_free(&large);
}

static void tickets_ids_count_from_one(void **state)
{
    ticket_set s;
    (void)state;

    generate(3, 12, &s);
    assert_string_equal(s.tickets[0].id, "t00001");
    assert_string_equal(s.tickets[11].id, "t00012");
    tickets_free(&s);
}

/* Whether s[0..n) are digits, the first not 0. */
static bool leading_nonzero_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return n > 0 && s[0] != '0';
}

static bool is_order_letter(char c)
{
    return c != '\0' && strchr("ABKRTabkrt", c) != NULL;
}

/* Whether s[0..n) has the shape of an order number: A-482913, K482913,
 * ORD-4829137 or 48291374, in either case (a few tickets are written in
 * lower case as a whole). */
static bool is_order_code(const char *s, size_t n)
{
    if (n == 11 && !strncasecmp(s, "ORD-", 4))
        return leading_nonzero_digits(s + 4, 7);
    if (n == 8 && s[1] == '-')
        return is_order_letter(s[0]) && leading_nonzero_digits(s + 2, 6);
    if (n == 7)
        return is_order_letter(s[0]) && leading_nonzero_digits(s + 1, 6);
    if (n == 8)
        return leading_nonzero_digits(s, 8);
    return false;
}

static void order_code_shapes(void **state)
{
    (void)state;
    assert_true(is_order_code("A-482913", 8));
    assert_true(is_order_code("k482913", 7));
    assert_true(is_order_code("ORD-4829137", 11));
    assert_true(is_order_code("48291374", 8));
    assert_false(is_order_code("Z-482913", 8));
    assert_false(is_order_code("A-48291", 7));
    assert_false(is_order_code("1Z48291374", 10));
    assert_false(is_order_code("$49.99", 6));
}

static bool is_product(const char *s, size_t n)
{
    for (size_t i = 0; i < tickets_products.n; i++) {
        const char *p = tickets_products.items[i];
        if (strlen(p) == n && !strncasecmp(p, s, n))
            return true;
    }
    return false;
}

static void tickets_spans_point_at_text(void **state)
{
    ticket_set s;
    size_t n_order = 0, n_product = 0;
    (void)state;

    generate(11, 3000, &s);
    for (size_t i = 0; i < s.n; i++) {
        const ticket *t = &s.tickets[i];
        assert_int_equal(strlen(t->text), t->text_len);
        for (size_t k = 0; k < t->text_len; k++) {
            const unsigned char c = (unsigned char)t->text[k];
            if (!(c == '\n' || (c >= 0x20 && c < 0x7f)))
                fail_msg("ticket %s: byte 0x%02x at %zu", t->id, c, k);
        }
        if (strchr(t->text, '{') || strchr(t->text, '}'))
            fail_msg("ticket %s has an unfilled placeholder: %s", t->id,
                     t->text);
        /* Both ends of a span are set or neither. */
        assert_int_equal(t->order_start < 0, t->order_end < 0);
        assert_int_equal(t->product_start < 0, t->product_end < 0);
        if (t->order_start >= 0) {
            assert_true(t->order_start < t->order_end);
            assert_true((size_t)t->order_end <= t->text_len);
            if (!is_order_code(t->text + t->order_start,
                               (size_t)(t->order_end - t->order_start)))
                fail_msg("ticket %s: order span [%d, %d) is not an order "
                         "number: %s", t->id, t->order_start, t->order_end,
                         t->text);
            n_order++;
        }
        if (t->product_start >= 0) {
            assert_true(t->product_start < t->product_end);
            assert_true((size_t)t->product_end <= t->text_len);
            if (!is_product(t->text + t->product_start,
                            (size_t)(t->product_end - t->product_start)))
                fail_msg("ticket %s: product span [%d, %d) is not a "
                         "product: %s", t->id, t->product_start,
                         t->product_end, t->text);
            n_product++;
        }
        /* The two spans never overlap. */
        if (t->order_start >= 0 && t->product_start >= 0)
            assert_true(t->order_end <= t->product_start ||
                        t->product_end <= t->order_start);
        /* Categories that have no such field never get a span. */
        if (t->category == TICKET_TECHNICAL_ISSUE ||
            t->category == TICKET_ACCOUNT_ACCESS)
            assert_int_equal(t->order_start, -1);
        if (t->category == TICKET_ACCOUNT_ACCESS ||
            t->category == TICKET_BILLING_QUESTION)
            assert_int_equal(t->product_start, -1);
    }
    /* Both fields are common, neither is everywhere. */
    assert_true(n_order > s.n / 3);
    assert_true(n_order < s.n * 3 / 4);
    assert_true(n_product > s.n / 3);
    assert_true(n_product < s.n * 3 / 4);
    tickets_free(&s);
}

static void tickets_labels_near_uniform(void **state)
{
    ticket_set s;
    size_t cat[TICKET_N_CATEGORIES] = {0}, urg[TICKET_N_URGENCIES] = {0};
    (void)state;

    generate(5, 6000, &s);
    for (size_t i = 0; i < s.n; i++) {
        assert_true((unsigned)s.tickets[i].category < TICKET_N_CATEGORIES);
        assert_true((unsigned)s.tickets[i].urgency < TICKET_N_URGENCIES);
        cat[s.tickets[i].category]++;
        urg[s.tickets[i].urgency]++;
    }
    /* 1000 expected per category, a standard deviation of about 29. */
    for (int k = 0; k < TICKET_N_CATEGORIES; k++) {
        if (cat[k] < 900 || cat[k] > 1100)
            fail_msg("category %s: %zu of 6000 tickets",
                     ticket_category_name((ticket_category)k), cat[k]);
    }
    /* The urgency priors are 0.2 .. 0.45 per category. */
    for (int k = 0; k < TICKET_N_URGENCIES; k++) {
        if (urg[k] < 1500 || urg[k] > 2500)
            fail_msg("urgency %s: %zu of 6000 tickets",
                     ticket_urgency_name((ticket_urgency)k), urg[k]);
    }
    tickets_free(&s);
}

static void tickets_names_in_range(void **state)
{
    (void)state;
    assert_string_equal(ticket_category_name(TICKET_REFUND_REQUEST),
                        "refund_request");
    assert_string_equal(ticket_urgency_name(TICKET_HIGH), "high");
    assert_null(ticket_category_name(TICKET_N_CATEGORIES));
    assert_null(ticket_urgency_name(TICKET_N_URGENCIES));
    assert_string_equal(ticket_category_names()[TICKET_BILLING_QUESTION],
                        "billing_question");
    assert_string_equal(ticket_urgency_names()[TICKET_LOW], "low");
}

/* Returns the string member name of j, or NULL for a JSON null. Any
 * other value fails the test. */
static const char *string_or_null(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    if (cJSON_IsNull(v))
        return NULL;
    if (!cJSON_IsString(v))
        fail_msg("member %s is neither a string nor null", name);
    return v->valuestring;
}

/* Checks the text of one span field against the ticket. */
static void check_span_field(const cJSON *j, const char *name,
                             const ticket *t, int32_t start, int32_t end)
{
    const char *value = string_or_null(j, name);
    if (start < 0) {
        assert_null(value);
        return;
    }
    assert_non_null(value);
    assert_int_equal(strlen(value), (size_t)(end - start));
    assert_memory_equal(value, t->text + start, (size_t)(end - start));
}

/* Checks the spans array of one labeled line against the ticket. */
static void check_spans(const cJSON *j, const ticket *t)
{
    const cJSON *spans = cJSON_GetObjectItemCaseSensitive(j, "spans");
    const cJSON *span;
    int n_expected = (t->order_start >= 0) + (t->product_start >= 0);

    assert_true(cJSON_IsArray(spans));
    assert_int_equal(cJSON_GetArraySize(spans), n_expected);
    cJSON_ArrayForEach(span, spans) {
        const cJSON *slot = cJSON_GetObjectItemCaseSensitive(span, "slot");
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(span, "start");
        const cJSON *end = cJSON_GetObjectItemCaseSensitive(span, "end");
        assert_true(cJSON_IsString(slot));
        assert_true(cJSON_IsNumber(start));
        assert_true(cJSON_IsNumber(end));
        const bool order = !strcmp(slot->valuestring, "order_number");
        if (!order)
            assert_string_equal(slot->valuestring, "product");
        assert_int_equal(start->valueint,
                         order ? t->order_start : t->product_start);
        assert_int_equal(end->valueint,
                         order ? t->order_end : t->product_end);
    }
}

/* Splits a file into lines in place and returns their number. */
static size_t split_lines(char *data, char **lines, size_t cap)
{
    size_t n = 0;
    for (char *save = NULL, *l = strtok_r(data, "\n", &save); l && n < cap;
         l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    return n;
}

static void labeled_file_parses(void **state)
{
    char path[512], tmp[600];
    ticket_set s;
    size_t size;
    static char *lines[1000];
    (void)state;

    tmp_path(path, sizeof path, "labeled.jsonl");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    generate(9, 500, &s);
    assert_int_equal(tickets_write_labeled(&s, path), ROJ_OK);
    assert_false(file_exists(tmp));
    char *data = test_read_file(path, &size);
    assert_true(size > 0);
    assert_int_equal(data[size - 1], '\n');
    assert_int_equal(split_lines(data, lines, 1000), s.n);
    for (size_t i = 0; i < s.n; i++) {
        const ticket *t = &s.tickets[i];
        cJSON *j = cJSON_Parse(lines[i]);
        if (!j)
            fail_msg("line %zu is not JSON: %s", i + 1, lines[i]);
        assert_string_equal(string_or_null(j, "id"), t->id);
        assert_string_equal(string_or_null(j, "text"), t->text);
        assert_string_equal(string_or_null(j, "category"),
                            ticket_category_name(t->category));
        assert_string_equal(string_or_null(j, "urgency"),
                            ticket_urgency_name(t->urgency));
        check_span_field(j, "order_number", t, t->order_start, t->order_end);
        check_span_field(j, "product", t, t->product_start, t->product_end);
        check_spans(j, t);
        cJSON_Delete(j);
    }
    free(data);
    tickets_free(&s);
}

static void input_file_parses(void **state)
{
    char path[512];
    ticket_set s;
    size_t size;
    static char *lines[300];
    (void)state;

    tmp_path(path, sizeof path, "inputs.jsonl");
    generate(10, 200, &s);
    assert_int_equal(tickets_write_inputs(&s, path), ROJ_OK);
    char *data = test_read_file(path, &size);
    assert_int_equal(split_lines(data, lines, 300), s.n);
    for (size_t i = 0; i < s.n; i++) {
        cJSON *j = cJSON_Parse(lines[i]);
        if (!j)
            fail_msg("line %zu is not JSON: %s", i + 1, lines[i]);
        /* Only the id and the text: no label leaks into the input. */
        assert_int_equal(cJSON_GetArraySize(j), 2);
        assert_string_equal(string_or_null(j, "id"), s.tickets[i].id);
        assert_string_equal(string_or_null(j, "text"), s.tickets[i].text);
        cJSON_Delete(j);
    }
    free(data);
    tickets_free(&s);
}

static void write_replaces_whole_file(void **state)
{
    char path[512];
    ticket_set small, large;
    size_t size_small, size_large;
    (void)state;

    tmp_path(path, sizeof path, "replace.jsonl");
    generate(12, 5, &small);
    generate(12, 50, &large);
    assert_int_equal(tickets_write_labeled(&large, path), ROJ_OK);
    free(test_read_file(path, &size_large));
    /* A shorter set replaces the file instead of overwriting its start. */
    assert_int_equal(tickets_write_labeled(&small, path), ROJ_OK);
    char *data = test_read_file(path, &size_small);
    assert_true(size_small < size_large);
    size_t n_lines = 0;
    for (size_t i = 0; i < size_small; i++)
        n_lines += data[i] == '\n';
    assert_int_equal(n_lines, 5);
    free(data);
    tickets_free(&small);
    tickets_free(&large);
}

static void write_failure_keeps_old_file(void **state)
{
    char path[512], tmp[600], missing[600];
    ticket_set s;
    size_t before_size, after_size;
    (void)state;

    tmp_path(path, sizeof path, "keep.jsonl");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    generate(13, 20, &s);
    assert_int_equal(tickets_write_labeled(&s, path), ROJ_OK);
    char *before = test_read_file(path, &before_size);

    /* PATH.tmp cannot be created (a folder is in its place): the write
     * fails, names the file, and the old file stays as it was. */
    assert_int_equal(mkdir(tmp, 0755), 0);
    assert_int_equal(tickets_write_inputs(&s, path), ROJ_ERR_IO);
    assert_non_null(strstr(roj_last_error(), "keep.jsonl.tmp"));
    char *after = test_read_file(path, &after_size);
    assert_int_equal(after_size, before_size);
    assert_memory_equal(after, before, before_size);
    assert_int_equal(rmdir(tmp), 0);

    /* A missing folder is an error too, and leaves nothing behind. */
    snprintf(missing, sizeof missing, "%s/no-such-dir/x.jsonl",
             test_tmpdir());
    assert_int_equal(tickets_write_labeled(&s, missing), ROJ_ERR_IO);
    assert_false(file_exists(missing));
    free(before);
    free(after);
    tickets_free(&s);
}

static void generate_zero_tickets(void **state)
{
    char path[512];
    ticket_set s;
    size_t size;
    (void)state;

    generate(1, 0, &s);
    tmp_path(path, sizeof path, "empty.jsonl");
    assert_int_equal(tickets_write_labeled(&s, path), ROJ_OK);
    free(test_read_file(path, &size));
    assert_int_equal(size, 0);
    tickets_free(&s);
    assert_null(s.tickets);
    tickets_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tickets_same_seed_same_bytes),
        cmocka_unit_test(tickets_prefix_property),
        cmocka_unit_test(tickets_ids_count_from_one),
        cmocka_unit_test(order_code_shapes),
        cmocka_unit_test(tickets_spans_point_at_text),
        cmocka_unit_test(tickets_labels_near_uniform),
        cmocka_unit_test(tickets_names_in_range),
        cmocka_unit_test(labeled_file_parses),
        cmocka_unit_test(input_file_parses),
        cmocka_unit_test(write_replaces_whole_file),
        cmocka_unit_test(write_failure_keeps_old_file),
        cmocka_unit_test(generate_zero_tickets),
    };
    return test_run_group(tests, NULL, NULL);
}
