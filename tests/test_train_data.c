/* Training data reader: CSV quoting, JSON formats, error messages with
 * their line numbers, extract offsets and slot expansion, the split and
 * the report, and the shared banking77 and restaurant8k files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sha256.h"
#include "train/data.h"
#include "testutil.h"

/* Writes content to a new file in the temporary folder and returns its
 * path, which stays valid for the next 63 calls. */
static const char *write_data(const char *name, const char *content)
{
    static char paths[64][512];
    static unsigned next;
    char *path = paths[next++ % 64];
    snprintf(path, sizeof paths[0], "%s/%s", test_tmpdir(), name);
    test_write_file(path, content, strlen(content));
    return path;
}

static train_data_opts classify_opts(void)
{
    train_data_opts o = {0};
    o.task = TRAIN_CLASSIFY;
    return o;
}

static void load_ok(const char *path, const train_data_opts *o,
                    train_dataset *d)
{
    roj_status st = train_data_load(path, o, d);
    if (st != ROJ_OK)
        fail_msg("load %s: %s", path, roj_last_error());
}

/* Loads a file that must fail and checks the message contains each of up
 * to three needles (NULL ends the list). */
static void load_fails(const char *path, const train_data_opts *o,
                       roj_status expected, const char *needle1,
                       const char *needle2, const char *needle3)
{
    train_dataset d;
    roj_status st = train_data_load(path, o, &d);
    const char *msg = roj_last_error();
    if (st != expected)
        fail_msg("load %s: status %s, expected %s (message: %s)", path,
                 roj_status_name(st), roj_status_name(expected), msg);
    const char *needles[] = {needle1, needle2, needle3};
    for (int i = 0; i < 3 && needles[i]; i++)
        if (!strstr(msg, needles[i]))
            fail_msg("message \"%s\" lacks \"%s\"", msg, needles[i]);
    assert_null(d.ex);
    assert_int_equal(d.n, 0);
}

static void expect_text(const train_example *e, const char *text)
{
    assert_int_equal(e->text_len, strlen(text));
    assert_memory_equal(e->text, text, strlen(text));
}

static void csv_quoting_cases(void **state)
{
    (void)state;
    const char *path = write_data(
        "quoting.csv",
        "text,label\n"
        "\"a, b\",x\n"
        "\"say \"\"hi\"\"\",y\n"
        "\"two\nlines\",x\n"
        "plain,y\n"
        "\"\"\"\",x\n"
        "it's 5\" tall,y\n");
    train_data_opts o = classify_opts();
    train_dataset d;
    load_ok(path, &o, &d);
    assert_int_equal(d.n, 6);
    expect_text(&d.ex[0], "a, b");
    expect_text(&d.ex[1], "say \"hi\"");
    expect_text(&d.ex[2], "two\nlines");
    expect_text(&d.ex[3], "plain");
    expect_text(&d.ex[4], "\"");
    expect_text(&d.ex[5], "it's 5\" tall");
    assert_int_equal(d.ex[0].line, 2);
    assert_int_equal(d.ex[2].line, 4);
    assert_int_equal(d.ex[3].line, 6);
    assert_int_equal(d.ex[5].line, 8);
    assert_int_equal(d.n_labels, 2);
    assert_string_equal(d.labels[0], "x");
    assert_string_equal(d.labels[1], "y");
    assert_int_equal(d.ex[1].label, 1);
    assert_int_equal(d.ex[1].target_len, 1);
    assert_memory_equal(d.ex[1].target, "y", 1);
    assert_string_equal(d.format, "csv");
    train_data_free(&d);
}

static void csv_crlf_and_bom(void **state)
{
    (void)state;
    const char *content = "\xEF\xBB\xBFtext,label\r\n"
                          "hello,greet\r\n"
                          "\"multi\r\nline\",other\r\n"
                          "last,greet";
    const char *path = write_data("crlf.csv", content);
    train_data_opts o = classify_opts();
    train_dataset d;
    load_ok(path, &o, &d);
    assert_int_equal(d.n, 3);
    expect_text(&d.ex[0], "hello");
    expect_text(&d.ex[1], "multi\r\nline");
    expect_text(&d.ex[2], "last");
    assert_int_equal(d.ex[2].line, 5);
    assert_string_equal(d.labels[0], "greet");
    assert_string_equal(d.labels[1], "other");

    /* The digest covers the file bytes, BOM included. */
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256(content, strlen(content), digest);
    assert_memory_equal(d.digest, digest, sizeof digest);
    train_data_free(&d);
}

static void tsv_and_sniffing(void **state)
{
    (void)state;
    train_data_opts o = classify_opts();
    train_dataset d;

    load_ok(write_data("tabs.tsv", "label\ttext\ng\thello, world\n"), &o, &d);
    assert_string_equal(d.format, "tsv");
    expect_text(&d.ex[0], "hello, world");
    train_data_free(&d);

    load_ok(write_data("lines.txt", "{\"text\": \"a\", \"label\": \"b\"}\n"),
            &o, &d);
    assert_string_equal(d.format, "jsonl");
    train_data_free(&d);

    load_ok(write_data("array.data", " [{\"text\": \"a\", \"label\": 3}]"),
            &o, &d);
    assert_string_equal(d.format, "json");
    assert_string_equal(d.labels[0], "3");
    train_data_free(&d);

    load_ok(write_data("table.data", "text\tlabel\nhi\tg\n"), &o, &d);
    assert_string_equal(d.format, "tsv");
    train_data_free(&d);

    load_ok(write_data("upper.CSV", "text,label\nhi,g\n"), &o, &d);
    assert_string_equal(d.format, "csv");
    train_data_free(&d);
}

static void jsonl_dotted_paths(void **state)
{
    (void)state;
    const char *path = write_data(
        "nested.jsonl",
        "{\"in\": {\"text\": \"first\"}, \"out\": {\"label\": \"b\"}}\n"
        "\n"
        "{\"in\": {\"text\": \"second\"}, \"out\": {\"label\": \"a\"}}\n");
    train_data_opts o = classify_opts();
    o.text_column = "in.text";
    o.label_column = "out.label";
    train_dataset d;
    load_ok(path, &o, &d);
    assert_int_equal(d.n, 2);
    expect_text(&d.ex[1], "second");
    assert_int_equal(d.ex[0].line, 1);
    assert_int_equal(d.ex[1].line, 3);
    assert_int_equal(d.ex[0].label, 1);
    assert_int_equal(d.ex[1].label, 0);
    assert_int_equal(d.n_blank_lines, 1);
    train_data_free(&d);
}

static void json_array_lines(void **state)
{
    (void)state;
    const char *path = write_data(
        "array.json",
        "[\n"
        "  {\"text\": \"one [,{\\\"\", \"label\": \"a\"},\n"
        "  {\n"
        "    \"text\": \"two\",\n"
        "    \"label\": \"b\"\n"
        "  }, {\"text\": \"three\", \"label\": \"a\"}\n"
        "]\n");
    train_data_opts o = classify_opts();
    train_dataset d;
    load_ok(path, &o, &d);
    assert_int_equal(d.n, 3);
    expect_text(&d.ex[0], "one [,{\"");
    assert_int_equal(d.ex[0].line, 2);
    assert_int_equal(d.ex[1].line, 3);
    assert_int_equal(d.ex[2].line, 6);
    train_data_free(&d);
}

static void generate_columns(void **state)
{
    (void)state;
    const char *path = write_data("gen.csv",
                                  "prompt,completion\n"
                                  "2+2=,4\n"
                                  "capital of France?,Paris\n"
                                  "2+2=,four\n");
    train_data_opts o = {0};
    o.task = TRAIN_GENERATE;
    train_dataset d;
    load_ok(path, &o, &d);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.n_labels, 0);
    assert_int_equal(d.ex[1].label, -1);
    assert_int_equal(d.ex[1].target_len, 5);
    assert_memory_equal(d.ex[1].target, "Paris", 5);
    assert_int_equal(d.n_duplicate_texts, 1);
    assert_int_equal(d.n_conflicting, 1);
    train_data_free(&d);
}

static void errors_name_column_and_line(void **state)
{
    (void)state;
    train_data_opts o = classify_opts();
    const char *p;

    p = write_data("nolabel.csv", "text,category\nhi,a\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "nolabel.csv:1: missing column \"label\"",
               "\"text\", \"category\"", NULL);

    p = write_data("emptytext.csv", "text,label\nhi,a\n,b\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "emptytext.csv:3: empty text", NULL,
               NULL);

    p = write_data("blanktext.csv", "text,label\nhi,a\n\" \t \",b\n");
    load_fails(p, &o, ROJ_ERR_FORMAT,
               "blanktext.csv:3: text in column \"text\" is only whitespace",
               NULL, NULL);

    p = write_data("blanklabel.csv", "text,label\nhi,a\nyo,  \n");
    load_fails(p, &o, ROJ_ERR_FORMAT,
               "blanklabel.csv:3: label in column \"label\" is only "
               "whitespace", NULL, NULL);

    p = write_data("emptylabel.csv", "text,label\nhi,a\n\"x\ny\",a\nz,\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "emptylabel.csv:5: empty label", NULL,
               NULL);

    p = write_data("fields.csv", "text,label\nhi,a\nhello, world,b\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "fields.csv:3: row has 3 fields",
               "header has 2", NULL);

    p = write_data("quote.csv", "text,label\nhi,a\n\"open,b\nc,d\ne,f\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "quote.csv:3: unterminated quoted",
               NULL, NULL);

    p = write_data("after.csv", "text,label\n\"hi\"x,a\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "after.csv:2: text after the closing",
               NULL, NULL);

    /* Byte 20 is the 0xC3 whose next byte is not a continuation. */
    p = write_data("utf8.csv", "text,label\nok,a\nbad \xC3( here,b\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "utf8.csv:3: invalid UTF-8",
               "byte offset 20", NULL);

    p = write_data("surrogate.csv", "text,label\n\xED\xA0\x80,a\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "surrogate.csv:2: invalid UTF-8",
               "byte offset 11", NULL);

    p = write_data("header.csv", "text,label\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "header.csv: the file has a header",
               NULL, NULL);

    p = write_data("empty.csv", "");
    load_fails(p, &o, ROJ_ERR_FORMAT, "empty.csv: the file is empty", NULL,
               NULL);

    p = write_data("twice.csv", "text,label,text\nhi,a,b\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "twice.csv:1: column \"text\"",
               "appears twice", NULL);

    load_fails("/nonexistent/data.csv", &o, ROJ_ERR_IO, "/nonexistent/data.csv",
               NULL, NULL);
}

static void errors_fixed_label_set(void **state)
{
    (void)state;
    const char *set[] = {"b", "a"};
    train_data_opts o = classify_opts();
    o.label_set = set;
    o.n_label_set = 2;
    train_dataset d;

    /* A fixed set keeps its order. */
    load_ok(write_data("set.csv", "text,label\nx,a\ny,b\n"), &o, &d);
    assert_string_equal(d.labels[0], "b");
    assert_int_equal(d.ex[0].label, 1);
    assert_int_equal(d.ex[1].label, 0);
    train_data_free(&d);

    const char *p = write_data("notset.csv", "text,label\nx,a\ny,c\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "notset.csv:3: label \"c\"",
               "not in the given set of 2", NULL);

    const char *dup[] = {"a", "a"};
    o.label_set = dup;
    load_fails(p, &o, ROJ_ERR_INVALID_ARG, "twice", NULL, NULL);
}

static void errors_json(void **state)
{
    (void)state;
    train_data_opts o = classify_opts();
    const char *p;

    p = write_data("syntax.jsonl",
                   "{\"text\": \"a\", \"label\": \"x\"}\n"
                   "{\"text\": \"b\" \"label\": \"y\"}\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "syntax.jsonl:2: JSON syntax error",
               NULL, NULL);

    p = write_data("syntax.json",
                   "[\n"
                   "  {\"text\": \"a\", \"label\": \"x\"},\n"
                   "  {\"text\": \"b\",\n"
                   "   \"label\" \"y\"}\n"
                   "]\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "syntax.json:4: JSON syntax error",
               NULL, NULL);

    p = write_data("field.jsonl",
                   "{\"text\": \"a\", \"label\": \"x\"}\n"
                   "{\"txt\": \"b\", \"label\": \"y\"}\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "field.jsonl:2: missing field \"text\"",
               "\"txt\", \"label\"", NULL);

    p = write_data("nested.jsonl",
                   "{\"in\": {\"body\": \"b\"}, \"label\": 1}\n");
    o.text_column = "in.text";
    load_fails(p, &o, ROJ_ERR_FORMAT, "nested.jsonl:1: missing field",
               "\"in\" has: \"body\"", NULL);
    o.text_column = NULL;

    p = write_data("type.json", "[{\"text\": \"a\", \"label\": [1]}]");
    load_fails(p, &o, ROJ_ERR_FORMAT, "type.json:1: field \"label\"",
               "not a string", NULL);

    p = write_data("notobj.jsonl", "{\"text\": \"a\", \"label\": 1}\n[2]\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "notobj.jsonl:2: the record is not",
               NULL, NULL);

    p = write_data("tail.jsonl", "{\"text\": \"a\", \"label\": 1} 5\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "tail.jsonl:1: text after", NULL, NULL);

    p = write_data("none.json", "[ ]\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "none.json: no records", NULL, NULL);

    p = write_data("emptylabel.json",
                   "[{\"text\": \"a\", \"label\": \"x\"},\n"
                   " {\"text\": \"b\", \"label\": \"\"}]");
    load_fails(p, &o, ROJ_ERR_FORMAT, "emptylabel.json:2: empty label", NULL,
               NULL);
}

static train_data_opts extract_opts(void)
{
    train_data_opts o = {0};
    o.task = TRAIN_EXTRACT;
    return o;
}

/* Returns the example of record r and slot name, failing when missing. */
static const train_example *slot_example(const train_dataset *d, uint32_t r,
                                         const char *slot)
{
    for (size_t i = 0; i < d->n; i++) {
        const train_example *e = &d->ex[i];
        if (e->record == r && strcmp(d->labels[e->label], slot) == 0)
            return e;
    }
    fail_msg("no example for record %u and slot %s", r, slot);
    return NULL;
}

static void extract_code_points_to_bytes(void **state)
{
    (void)state;
    /* "Café für 2 😀 at 7pm": é and ü take 2 bytes, the emoji 4. Code
     * points: "2" is at 9, "😀" at 11, "7pm" at 16..19. */
    const char *path = write_data(
        "unicode.json",
        "[{\"userInput\": {\"text\": "
        "\"Caf\\u00e9 f\\u00fcr 2 \xF0\x9F\x98\x80 at 7pm\"},\n"
        "  \"labels\": [\n"
        "    {\"slot\": \"people\", \"valueSpan\": {\"startIndex\": 9, "
        "\"endIndex\": 10}},\n"
        "    {\"slot\": \"time\", \"valueSpan\": {\"startIndex\": 16, "
        "\"endIndex\": 19}},\n"
        "    {\"slot\": \"emoji\", \"valueSpan\": {\"startIndex\": 11, "
        "\"endIndex\": 12}},\n"
        "    {\"slot\": \"start\", \"valueSpan\": {\"endIndex\": 4}}]}]\n");
    train_data_opts o = extract_opts();
    o.text_column = "userInput.text";
    train_dataset d;
    load_ok(path, &o, &d);
    assert_int_equal(d.n, 4);

    const train_example *e = slot_example(&d, 0, "people");
    assert_int_equal(e->span_start, 11);
    assert_int_equal(e->span_end, 12);
    assert_memory_equal(e->target, "2", 1);
    e = slot_example(&d, 0, "emoji");
    assert_int_equal(e->span_start, 13);
    assert_int_equal(e->span_end, 17);
    assert_int_equal(e->target_len, 4);
    assert_memory_equal(e->target, "\xF0\x9F\x98\x80", 4);
    e = slot_example(&d, 0, "time");
    assert_int_equal(e->span_start, 21);
    assert_int_equal(e->span_end, 24);
    assert_memory_equal(e->target, "7pm", 3);
    assert_int_equal(e->span_end, (int64_t)e->text_len);
    e = slot_example(&d, 0, "start"); /* a missing start means 0 */
    assert_int_equal(e->span_start, 0);
    assert_int_equal(e->span_end, 5);
    assert_memory_equal(e->target, "Caf\xC3\xA9", 5);
    train_data_free(&d);
}

static void extract_slot_expansion(void **state)
{
    (void)state;
    const char *path = write_data(
        "slots.jsonl",
        "{\"text\": \"at 7\", \"labels\": [{\"slot\": \"time\", "
        "\"valueSpan\": {\"startIndex\": 3, \"endIndex\": 4}}]}\n"
        "{\"text\": \"monday for 2\", \"labels\": ["
        "{\"slot\": \"date\", \"valueSpan\": {\"startIndex\": 0, "
        "\"endIndex\": 6}}, "
        "{\"slot\": \"people\", \"valueSpan\": {\"startIndex\": 11, "
        "\"endIndex\": 12}}, "
        "{\"slot\": \"date\", \"valueSpan\": {\"startIndex\": 7, "
        "\"endIndex\": 10}}]}\n"
        "{\"text\": \"hello\"}\n");
    train_data_opts o = extract_opts();
    train_dataset d;
    load_ok(path, &o, &d);

    /* Three records times three slots, slots in byte order. */
    assert_int_equal(d.n_records, 3);
    assert_int_equal(d.n_labels, 3);
    assert_string_equal(d.labels[0], "date");
    assert_string_equal(d.labels[1], "people");
    assert_string_equal(d.labels[2], "time");
    assert_int_equal(d.n, 9);
    for (size_t i = 0; i < d.n; i++) {
        assert_int_equal(d.ex[i].record, i / 3);
        assert_int_equal(d.ex[i].label, i % 3);
    }
    assert_int_equal(d.ex[0].span_start, -1); /* record 0 has no date */
    assert_null(d.ex[0].target);
    assert_int_equal(d.ex[2].span_start, 3);
    assert_int_equal(d.ex[3].span_start, 0); /* the first date is kept */
    assert_int_equal(d.ex[3].span_end, 6);
    assert_int_equal(d.ex[3].line, 2);
    assert_int_equal(d.ex[4].span_start, 11);
    assert_int_equal(d.ex[5].span_start, -1);
    for (size_t i = 6; i < 9; i++)
        assert_int_equal(d.ex[i].span_end, -1);
    assert_int_equal(d.n_duplicate_slots, 1);
    train_data_free(&d);

    /* A fixed slot set adds slots no record labels. */
    const char *set[] = {"time", "date", "people", "name"};
    o.label_set = set;
    o.n_label_set = 4;
    load_ok(path, &o, &d);
    assert_int_equal(d.n, 12);
    assert_string_equal(d.labels[3], "name");
    assert_int_equal(d.ex[0].span_start, 3);
    train_data_free(&d);
}

static void extract_csv_rows(void **state)
{
    (void)state;
    train_data_opts o = extract_opts();
    o.slot_column = "slot";
    train_dataset d;
    const char *path = write_data("spans.csv",
                                  "text,slot,start,end\n"
                                  "book for 4 at 8,people,9,10\n"
                                  "hi there,,,\n"
                                  "book for 4 at 8,time,14,15\n");
    load_ok(path, &o, &d);
    assert_int_equal(d.n_rows, 3);
    assert_int_equal(d.n_records, 2); /* rows 2 and 4 share a text */
    assert_int_equal(d.n, 4);
    assert_int_equal(slot_example(&d, 0, "people")->span_start, 9);
    assert_int_equal(slot_example(&d, 0, "time")->span_start, 14);
    assert_int_equal(slot_example(&d, 1, "time")->span_start, -1);
    train_data_free(&d);

    /* Without a slot column every row labels one slot. */
    o.slot_column = NULL;
    load_ok(write_data("one.csv", "text,start,end\nabc,1,2\nxyz,,\n"), &o, &d);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.labels[0], TRAIN_DATA_DEFAULT_SLOT);
    assert_int_equal(d.ex[0].span_start, 1);
    assert_int_equal(d.ex[1].span_start, -1);
    train_data_free(&d);
}

static void errors_extract_spans(void **state)
{
    (void)state;
    train_data_opts o = extract_opts();
    const char *p;

    p = write_data("past.csv", "text,start,end\nabc,0,1\n\"h\xC3\xA9\",1,3\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "past.csv:3: span of slot \"span\"",
               "past the end of the text (2 characters)", NULL);

    p = write_data("reversed.csv", "text,start,end\nabcdef,4,2\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "reversed.csv:2: span", "before", NULL);

    p = write_data("emptyspan.csv", "text,start,end\nabcdef,2,2\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "emptyspan.csv:2: span", "is empty",
               NULL);

    p = write_data("notnum.csv", "text,start,end\nabcdef,one,2\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "notnum.csv:2: column \"start\"",
               "not a character offset", NULL);

    p = write_data("past.jsonl",
                   "{\"text\": \"ok\"}\n"
                   "{\"text\": \"ab\", \"labels\": [{\"slot\": \"x\", "
                   "\"valueSpan\": {\"startIndex\": 0, \"endIndex\": 3}}]}\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "past.jsonl:2: span of slot \"x\"",
               "past the end", NULL);

    p = write_data("noend.jsonl",
                   "{\"text\": \"ab\", \"labels\": [{\"slot\": \"x\", "
                   "\"valueSpan\": {\"startIndex\": 0}}]}\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "noend.jsonl:1: missing field",
               "valueSpan.endIndex", NULL);

    p = write_data("fraction.jsonl",
                   "{\"text\": \"ab\", \"labels\": [{\"slot\": \"x\", "
                   "\"valueSpan\": {\"startIndex\": 0.5, "
                   "\"endIndex\": 1}}]}\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "fraction.jsonl:1: span offset",
               "whole number", NULL);

    p = write_data("noslots.jsonl", "{\"text\": \"ab\"}\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "noslots.jsonl: no record labels",
               NULL, NULL);

    const char *set[] = {"date"};
    o.label_set = set;
    o.n_label_set = 1;
    p = write_data("slotset.jsonl",
                   "{\"text\": \"ab\", \"labels\": [{\"slot\": \"time\", "
                   "\"valueSpan\": {\"startIndex\": 0, \"endIndex\": 1}}]}\n");
    load_fails(p, &o, ROJ_ERR_FORMAT, "slotset.jsonl:1: slot \"time\"",
               "not in the given set", NULL);
}

static void max_rows_limit(void **state)
{
    (void)state;
    train_data_opts o = classify_opts();
    o.max_rows = 2;
    train_dataset d;
    load_ok(write_data("many.csv", "text,label\na,x\nb,y\nc,z\n"), &o, &d);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.n_labels, 2);
    train_data_free(&d);
}

/* Writes a classify CSV with the given number of rows per label. */
static const char *write_labeled(const char *name, const size_t *per_label,
                                 size_t n_labels)
{
    size_t cap = 64 * 1024, used = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    used += (size_t)snprintf(buf, cap, "text,label\n");
    for (size_t l = 0; l < n_labels; l++)
        for (size_t i = 0; i < per_label[l]; i++)
            used += (size_t)snprintf(buf + used, cap - used,
                                     "text %zu of label %zu,L%02zu\n", i, l, l);
    assert_true(used < cap);
    const char *path = write_data(name, buf);
    free(buf);
    return path;
}

static void split_stratified_two_per_label(void **state)
{
    (void)state;
    size_t per_label[10];
    for (size_t i = 0; i < 10; i++)
        per_label[i] = 2;
    train_data_opts o = classify_opts();
    train_dataset d;
    load_ok(write_labeled("pairs.csv", per_label, 10), &o, &d);

    const double fractions[] = {0.1, 0.5, 0.9};
    for (size_t f = 0; f < 3; f++) {
        size_t *tr, *va, n_tr, n_va;
        assert_int_equal(train_data_split(&d, fractions[f], 7, &tr, &n_tr,
                                          &va, &n_va), ROJ_OK);
        assert_int_equal(n_tr + n_va, 20);
        size_t in_train[10] = {0};
        for (size_t i = 0; i < n_tr; i++)
            in_train[d.ex[tr[i]].label]++;
        for (size_t l = 0; l < 10; l++)
            assert_true(in_train[l] >= 1);
        for (size_t i = 1; i < n_tr; i++)
            assert_true(tr[i - 1] < tr[i]);
        if (fractions[f] == 0.1)
            assert_int_equal(n_va, 2);
        else
            assert_int_equal(n_va, 10); /* one per label at most */
        free(tr);
        free(va);
    }
    train_data_free(&d);
}

static void split_deterministic_by_seed(void **state)
{
    (void)state;
    const size_t per_label[] = {30, 10, 1};
    train_data_opts o = classify_opts();
    train_dataset d;
    load_ok(write_labeled("skewed.csv", per_label, 3), &o, &d);

    size_t *tr1, *va1, *tr2, *va2, *tr3, *va3, n_tr, n_va, n2, n3, m2, m3;
    assert_int_equal(train_data_split(&d, 0.2, 42, &tr1, &n_tr, &va1, &n_va),
                     ROJ_OK);
    assert_int_equal(train_data_split(&d, 0.2, 42, &tr2, &n2, &va2, &m2),
                     ROJ_OK);
    assert_int_equal(train_data_split(&d, 0.2, 43, &tr3, &n3, &va3, &m3),
                     ROJ_OK);

    /* round(41 * 0.2) = 8: label 0 gives 6, label 1 gives 2. */
    assert_int_equal(n_va, 8);
    assert_int_equal(n_tr, 33);
    size_t valid_per_label[3] = {0};
    for (size_t i = 0; i < n_va; i++)
        valid_per_label[d.ex[va1[i]].label]++;
    assert_int_equal(valid_per_label[0], 6);
    assert_int_equal(valid_per_label[1], 2);
    assert_int_equal(valid_per_label[2], 0);

    assert_int_equal(m2, n_va);
    assert_memory_equal(va1, va2, n_va * sizeof *va1);
    assert_memory_equal(tr1, tr2, n_tr * sizeof *tr1);
    assert_int_equal(m3, n_va);
    assert_true(memcmp(va1, va3, n_va * sizeof *va1) != 0);

    /* Seed 42 must pick these records on every machine. The indexes were
     * computed outside roj by a separate model of splitmix64, the bounded
     * draw and the per-label Fisher-Yates shuffle. */
    const size_t expected[8] = {1, 6, 9, 16, 18, 26, 35, 38};
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(va1[i], expected[i]);
    free(tr1);
    free(va1);
    free(tr2);
    free(va2);
    free(tr3);
    free(va3);

    size_t *tr, *va;
    assert_int_equal(train_data_split(&d, 1.0, 1, &tr, &n_tr, &va, &n_va),
                     ROJ_ERR_INVALID_ARG);
    assert_int_equal(train_data_split(&d, -0.1, 1, &tr, &n_tr, &va, &n_va),
                     ROJ_ERR_INVALID_ARG);
    assert_int_equal(train_data_split(&d, 0.0, 1, &tr, &n_tr, &va, &n_va),
                     ROJ_OK);
    assert_int_equal(n_tr, 41);
    assert_int_equal(n_va, 0);
    free(tr);
    free(va);
    train_data_free(&d);
}

static void split_extract_keeps_records(void **state)
{
    (void)state;
    char content[8192];
    size_t used = (size_t)snprintf(content, sizeof content,
                                   "text,slot,start,end\n");
    for (int i = 0; i < 40; i++)
        used += (size_t)snprintf(content + used, sizeof content - used,
                                 "row %02d,%s,0,3\n", i,
                                 i % 2 ? "a" : "b");
    train_data_opts o = extract_opts();
    o.slot_column = "slot";
    train_dataset d;
    load_ok(write_data("records.csv", content), &o, &d);
    assert_int_equal(d.n, 80);

    size_t *tr, *va, n_tr, n_va;
    assert_int_equal(train_data_split(&d, 0.25, 5, &tr, &n_tr, &va, &n_va),
                     ROJ_OK);
    assert_int_equal(n_va, 20); /* 10 records, 2 slots each */
    assert_int_equal(n_tr, 60);
    for (size_t i = 0; i < n_va; i += 2)
        assert_int_equal(d.ex[va[i]].record, d.ex[va[i + 1]].record);
    free(tr);
    free(va);
    train_data_free(&d);
}

/* Returns the report of d as a malloc'd string. */
static char *report_text(const train_dataset *d)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_non_null(f);
    train_data_report(d, f);
    fclose(f);
    return text;
}

static void expect_in(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("report lacks \"%s\":\n%s", needle, text);
}

static void report_classify_content(void **state)
{
    (void)state;
    train_data_opts o = classify_opts();
    train_dataset d;
    load_ok(write_data("report.csv",
                       "text,label\n"
                       "short,b\n"
                       "\xC3\xA9t\xC3\xA9,a\n"
                       "a longer text,b\n"
                       "short,a\n"
                       "\n"),
            &o, &d);
    char *text = report_text(&d);
    expect_in(text, "task: classify; rows: 4; records: 4; examples: 4");
    expect_in(text, "labels: 2");
    expect_in(text, "         2  a\n");
    expect_in(text, "         2  b\n");
    /* Bytes 5, 5, 5, 13; code points 3, 5, 5, 13. */
    expect_in(text, "bytes min 5, median 5, max 13");
    expect_in(text, "characters min 3, median 5, max 13");
    expect_in(text, "duplicate texts: 1 (1 with another label than the "
                    "first)");
    expect_in(text, "blank lines: 1");
    free(text);
    train_data_free(&d);
}

static void report_extract_content(void **state)
{
    (void)state;
    train_data_opts o = extract_opts();
    o.slot_column = "slot";
    train_dataset d;
    load_ok(write_data("report_spans.csv",
                       "text,slot,start,end\n"
                       "at 7 on monday,time,3,4\n"
                       "at 7 on monday,time,0,2\n"
                       "at 7 on monday,date,8,14\n"
                       "hello,,,\n"),
            &o, &d);
    char *text = report_text(&d);
    expect_in(text, "task: extract; rows: 4; records: 2; examples: 4");
    expect_in(text, "slots: 2");
    expect_in(text, "       1         1  date\n");
    expect_in(text, "       1         1  time\n");
    expect_in(text, "dropped spans: 1 (their record labeled the same slot");
    expect_in(text, "merged rows: 2 (");
    expect_in(text, "duplicate texts: 0\n");
    free(text);
    train_data_free(&d);
}

static void labels_map_to_model(void **state)
{
    (void)state;
    train_data_opts o = classify_opts();
    train_dataset d;
    load_ok(write_data("eval.csv", "text,label\nx,b\ny,a\nz,c\n"), &o, &d);

    const char *same[] = {"a", "b", "c"};
    assert_true(train_data_labels_match(&d, same, 3));
    const char *other[] = {"c", "a", "b", "d"};
    assert_false(train_data_labels_match(&d, other, 4));
    int32_t map[3];
    assert_int_equal(train_data_map_labels(&d, other, 4, map), ROJ_OK);
    assert_int_equal(map[0], 1);
    assert_int_equal(map[1], 2);
    assert_int_equal(map[2], 0);

    const char *lacking[] = {"a", "b"};
    assert_int_equal(train_data_map_labels(&d, lacking, 2, map),
                     ROJ_ERR_FORMAT);
    const char *msg = roj_last_error();
    if (!strstr(msg, "eval.csv:4: label \"c\""))
        fail_msg("message: %s", msg);
    train_data_free(&d);
}

static double elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
           (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void shared_banking77_train(void **state)
{
    (void)state;
    const char *path = test_shared_path("data/banking77/train.csv");
    train_data_opts o = classify_opts();
    o.label_column = "category";
    train_dataset d;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    load_ok(path, &o, &d);
    double ms = elapsed_ms(&t0);
    printf("banking77 train.csv: %zu rows loaded in %.1f ms\n", d.n, ms);
    assert_int_equal(d.n, 10003);
    assert_int_equal(d.n_labels, 77);
    assert_string_equal(d.labels[0], "Refund_not_showing_up");
    expect_text(&d.ex[0], "I am still waiting on my card?");
    assert_string_equal(d.labels[d.ex[0].label], "card_arrival");
    /* A loose bound, so that the test also passes under sanitizers. A
     * release build took 11 to 25 ms on a shared 2-core machine. */
    assert_true(ms < 2000.0);

    /* round(10003 * 0.1) = 1000 validation rows, every label on both
     * sides because each has at least 35 rows. */
    size_t *tr, *va, n_tr, n_va;
    assert_int_equal(train_data_split(&d, 0.1, 1, &tr, &n_tr, &va, &n_va),
                     ROJ_OK);
    assert_int_equal(n_va, 1000);
    assert_int_equal(n_tr, 9003);
    size_t train_count[77] = {0}, valid_count[77] = {0};
    for (size_t i = 0; i < n_tr; i++)
        train_count[d.ex[tr[i]].label]++;
    for (size_t i = 0; i < n_va; i++)
        valid_count[d.ex[va[i]].label]++;
    for (size_t l = 0; l < 77; l++) {
        assert_true(train_count[l] > 0);
        assert_true(valid_count[l] > 0);
    }
    free(tr);
    free(va);

    /* The test file read against the training labels. */
    train_dataset t;
    o.label_set = (const char *const *)d.labels;
    o.n_label_set = d.n_labels;
    load_ok(test_shared_path("data/banking77/test.csv"), &o, &t);
    assert_int_equal(t.n, 3080);
    assert_true(train_data_labels_match(&t, o.label_set, o.n_label_set));
    train_data_free(&t);
    train_data_free(&d);
}

static void shared_restaurant8k_train(void **state)
{
    (void)state;
    const char *path = test_shared_path("data/restaurant8k/train.json");
    train_data_opts o = extract_opts();
    o.text_column = "userInput.text";
    train_dataset d;
    load_ok(path, &o, &d);
    assert_int_equal(d.n_records, 8198);
    assert_int_equal(d.n_labels, 5);
    assert_int_equal(d.n, 40990);
    assert_string_equal(d.labels[0], "date");
    assert_string_equal(d.labels[4], "time");

    /* The first record: "There will be 5 adults and 1 child." people 14..34. */
    const train_example *e = slot_example(&d, 0, "people");
    assert_int_equal(e->line, 2);
    assert_int_equal(e->span_start, 14);
    assert_int_equal(e->span_end, 34);
    assert_memory_equal(e->target, "5 adults and 1 child", 20);
    /* Line numbers of array elements hold up to the end of the file. */
    assert_int_equal(slot_example(&d, 1, "date")->line, 21);
    assert_int_equal(d.ex[d.n - 1].line, 114147);
    expect_text(&d.ex[d.n - 1], "I would like wheelchair access AND cuisine "
                                "to NOT be Hot Dogs.");

    size_t present = 0;
    for (size_t i = 0; i < d.n; i++)
        present += d.ex[i].span_start >= 0;
    assert_int_equal(present, 2164 + 1972 + 1721 + 891 + 887);
    assert_int_equal(d.n_duplicate_slots, 0);

    train_dataset t;
    o.label_set = (const char *const *)d.labels;
    o.n_label_set = d.n_labels;
    load_ok(test_shared_path("data/restaurant8k/test.json"), &o, &t);
    assert_int_equal(t.n_records, 3731);
    assert_int_equal(t.n, 3731 * 5);
    train_data_free(&t);
    train_data_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(csv_quoting_cases),
        cmocka_unit_test(csv_crlf_and_bom),
        cmocka_unit_test(tsv_and_sniffing),
        cmocka_unit_test(jsonl_dotted_paths),
        cmocka_unit_test(json_array_lines),
        cmocka_unit_test(generate_columns),
        cmocka_unit_test(errors_name_column_and_line),
        cmocka_unit_test(errors_fixed_label_set),
        cmocka_unit_test(errors_json),
        cmocka_unit_test(extract_code_points_to_bytes),
        cmocka_unit_test(extract_slot_expansion),
        cmocka_unit_test(extract_csv_rows),
        cmocka_unit_test(errors_extract_spans),
        cmocka_unit_test(max_rows_limit),
        cmocka_unit_test(split_stratified_two_per_label),
        cmocka_unit_test(split_deterministic_by_seed),
        cmocka_unit_test(split_extract_keeps_records),
        cmocka_unit_test(report_classify_content),
        cmocka_unit_test(report_extract_content),
        cmocka_unit_test(labels_map_to_model),
        cmocka_unit_test(shared_banking77_train),
        cmocka_unit_test(shared_restaurant8k_train),
    };
    return test_run_group(tests, NULL, NULL);
}
