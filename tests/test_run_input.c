/* Jobs from JSON Lines and CSV files: ids, fields, quoting and line ends,
 * the file's digest, and every kind of bad line reported as FILE:LINE,
 * many at once. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "run/run_input.h"

static const char *const TEXT_FIELD[] = {"text"};

/* Writes content to name in the test folder and returns the path. */
static const char *write_input(const char *name, const char *content,
                               size_t size)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    test_write_file(path, content, size);
    return path;
}

static run_input *open_ok(const char *name, const char *content,
                          const char *const *fields, size_t n_fields,
                          char digest[65])
{
    const char *path = write_input(name, content, strlen(content));
    run_input *in = NULL;
    char scratch[65];
    roj_status st = run_input_open(path, fields, n_fields, &in,
                                   digest ? digest : scratch);
    if (st != ROJ_OK)
        fail_msg("run_input_open %s: %s", name, roj_last_error());
    assert_non_null(in);
    return in;
}

/* Job i has this id and fields text. */
static void expect_job(const run_input *in, uint64_t i, const char *id,
                       const char *fields)
{
    char *got_id = NULL, *got_fields = NULL;
    roj_status st = run_input_get(in, i, &got_id, &got_fields);
    if (st != ROJ_OK)
        fail_msg("run_input_get %llu: %s", (unsigned long long)i,
                 roj_last_error());
    assert_string_equal(got_id, id);
    assert_string_equal(got_fields, fields);
    free(got_id);
    free(got_fields);
}

/* Opening content as name fails with ROJ_ERR_FORMAT, and the message has
 * a line starting "<path>:<line>: " that contains each of words. */
static void expect_problem_bytes(const char *name, const char *content,
                                 size_t size, const char *line,
                                 const char *const *words, size_t n_words)
{
    const char *path = write_input(name, content, size);
    run_input *in = (run_input *)1;
    char digest[65];
    assert_int_equal(run_input_open(path, TEXT_FIELD, 1, &in, digest),
                     ROJ_ERR_FORMAT);
    assert_null(in);

    const char *msg = roj_last_error();
    char prefix[4300];
    snprintf(prefix, sizeof prefix, "%s:%s: ", path, line);
    const char *at = strstr(msg, prefix);
    if (!at)
        fail_msg("no \"%s\" in: %s", prefix, msg);
    const char *end = strchr(at, '\n');
    size_t len = end ? (size_t)(end - at) : strlen(at);
    char text[1024];
    snprintf(text, sizeof text, "%.*s", (int)len, at);
    for (size_t i = 0; i < n_words; i++)
        if (!strstr(text, words[i]))
            fail_msg("\"%s\" not in: %s", words[i], text);
}

static void expect_problem(const char *name, const char *content,
                           const char *line, const char *const *words,
                           size_t n_words)
{
    expect_problem_bytes(name, content, strlen(content), line, words,
                         n_words);
}

static void input_jsonl_jobs(void **state)
{
    (void)state;
    const char *content = "{\"id\":\"t-1\",\"text\":\"hello\"}\n"
                          "\n"
                          "{\"text\":\"no id\",\"lang\":\"en\"}\r\n"
                          "   \n"
                          "{\"id\":42,\"text\":\"num\"}\n";
    char digest[65];
    run_input *in = open_ok("jobs.jsonl", content, TEXT_FIELD, 1, digest);
    assert_int_equal(run_input_count(in), 3);
    expect_job(in, 0, "t-1", "{\"id\":\"t-1\",\"text\":\"hello\"}");
    expect_job(in, 1, "3", "{\"text\":\"no id\",\"lang\":\"en\"}");
    expect_job(in, 2, "42", "{\"id\":42,\"text\":\"num\"}");
    /* From sha256sum on the same bytes. */
    assert_string_equal(digest, "862b992f562019ad191ce750128c7b79"
                                "e59e0a54a0aa785ec49d9251c166ba5c");

    char *id = (char *)1, *fields = (char *)1;
    assert_int_equal(run_input_get(in, 3, &id, &fields), ROJ_ERR_RANGE);
    assert_null(id);
    assert_null(fields);
    run_input_close(in);
}

/* A number id keeps the digits as written, even past 2^53, where a
 * double loses digits. */
static void input_number_ids(void **state)
{
    (void)state;
    const char *content = "{\"id\": 9007199254740993, \"text\":\"a\"}\n"
                          "{\"text\":\"b\", \"id\":-1.50}\n"
                          "{\"text\":{\"id\":7}, \"id\":1e3}\n"
                          "{\"text\":\"c\",\"\\u0069d\":12}\n"
                          "{\"id\":\"s\\\"q\",\"text\":\"d\"}\n";
    run_input *in = open_ok("ids.jsonl", content, TEXT_FIELD, 1, NULL);
    assert_int_equal(run_input_count(in), 5);
    char *id = NULL, *fields = NULL;
    const char *want[] = {"9007199254740993", "-1.50", "1e3", "12",
                          "s\"q"};
    for (uint64_t i = 0; i < 5; i++) {
        assert_int_equal(run_input_get(in, i, &id, &fields), ROJ_OK);
        assert_string_equal(id, want[i]);
        free(id);
        free(fields);
    }
    run_input_close(in);
}

static void input_csv_jobs(void **state)
{
    (void)state;
    const char *content = "id,text,lang\r\n"
                          "a1,\"hello, world\",en\r\n"
                          "a2,\"two\r\nlines\",de\r\n"
                          "\r\n"
                          "a3,\"say \"\"hi\"\"\",\r\n"
                          "a4,plain,fr";
    run_input *in = open_ok("jobs.csv", content, TEXT_FIELD, 1, NULL);
    assert_int_equal(run_input_count(in), 4);
    expect_job(in, 0, "a1",
               "{\"id\":\"a1\",\"text\":\"hello, world\",\"lang\":\"en\"}");
    expect_job(in, 1, "a2",
               "{\"id\":\"a2\",\"text\":\"two\\r\\nlines\",\"lang\":\"de\"}");
    expect_job(in, 2, "a3",
               "{\"id\":\"a3\",\"text\":\"say \\\"hi\\\"\",\"lang\":\"\"}");
    expect_job(in, 3, "a4",
               "{\"id\":\"a4\",\"text\":\"plain\",\"lang\":\"fr\"}");
    run_input_close(in);
}

/* Without an id column, a row's id is the line it starts on, counted
 * past values that span lines. */
static void input_csv_line_ids(void **state)
{
    (void)state;
    const char *content = "text\n"
                          "\"one\n"
                          "two\n"
                          "three\"\n"
                          "\n"
                          "next\n"
                          "\"\"\n"
                          "a\"\"b\n";
    run_input *in = open_ok("lines.csv", content, TEXT_FIELD, 1, NULL);
    assert_int_equal(run_input_count(in), 4);
    expect_job(in, 0, "2", "{\"text\":\"one\\ntwo\\nthree\"}");
    expect_job(in, 1, "6", "{\"text\":\"next\"}");
    /* A quoted empty value is a job, not a blank line. */
    expect_job(in, 2, "7", "{\"text\":\"\"}");
    /* Doubled quotes are kept as written outside quoted values. */
    expect_job(in, 3, "8", "{\"text\":\"a\\\"\\\"b\"}");
    run_input_close(in);
}

/* A UTF-8 byte order mark (some spreadsheet programs write one) is not part of the header. */
static void input_csv_bom(void **state)
{
    (void)state;
    const char *content = "\xef\xbb\xbftext,id\nhi,x\n";
    run_input *in = open_ok("bom.csv", content, TEXT_FIELD, 1, NULL);
    assert_int_equal(run_input_count(in), 1);
    expect_job(in, 0, "x", "{\"text\":\"hi\",\"id\":\"x\"}");
    run_input_close(in);

    in = open_ok("bom.jsonl", "\xef\xbb\xbf{\"text\":\"hi\",\"id\":5}\n",
                 TEXT_FIELD, 1, NULL);
    expect_job(in, 0, "5", "{\"text\":\"hi\",\"id\":5}");
    run_input_close(in);
}

static void input_jsonl_problems(void **state)
{
    (void)state;
    const char *missing[] = {"no field \"text\""};
    expect_problem("missing.jsonl", "{\"text\":\"a\"}\n{\"txt\":\"b\"}\n",
                   "2", missing, 1);
    const char *null_field[] = {"\"text\" is null"};
    expect_problem("null.jsonl", "\n\n{\"text\":null}\n", "3",
                   null_field, 1);
    const char *not_json[] = {"invalid JSON", "column 9"};
    expect_problem("notjson.jsonl", "{\"text\":}\n", "1", not_json, 2);
    const char *truncated[] = {"invalid JSON"};
    expect_problem("trunc.jsonl", "{\"text\":\"a\"}\n{\"text\":\"b\"",
                   "2", truncated, 1);
    const char *array[] = {"an array", "not a JSON object"};
    expect_problem("array.jsonl", "[1, 2]\n", "1", array, 2);
    const char *string[] = {"a string", "not a JSON object"};
    expect_problem("string.jsonl", "\"text\"\n", "1", string, 2);
    const char *garbage[] = {"text after the JSON value", "column 14"};
    expect_problem("garbage.jsonl", "{\"text\":\"a\"} x\n", "1",
                   garbage, 2);
    const char *two[] = {"text after the JSON value"};
    expect_problem("two.jsonl", "{\"text\":\"a\"}{\"text\":\"b\"}\n",
                   "1", two, 1);
    const char *bad_id[] = {"\"id\" is a boolean", "string or a number"};
    expect_problem("boolid.jsonl", "{\"id\":true,\"text\":\"a\"}\n",
                   "1", bad_id, 2);
}

static void input_encoding_problems(void **state)
{
    (void)state;
    const char *utf8[] = {"invalid UTF-8", "0xff", "column 10"};
    expect_problem("latin.jsonl",
                   "{\"text\":\"a\"}\n{\"text\":\"\xff\"}\n", "2", utf8, 3);
    const char *overlong[] = {"invalid UTF-8", "0xc0"};
    expect_problem("overlong.jsonl", "{\"text\":\"\xc0\xaf\"}\n", "1",
                   overlong, 2);
    const char *surrogate[] = {"invalid UTF-8", "0xed"};
    expect_problem("surrogate.csv", "text\nok\n\xed\xa0\x80x\n", "3",
                   surrogate, 2);
    const char nul[] = "{\"text\":\"a\"}\n{\"text\":\"a\0b\"}\n";
    const char *nul_words[] = {"NUL byte", "column 11"};
    expect_problem_bytes("nul.jsonl", nul, sizeof nul - 1, "2", nul_words, 2);
    const char *cut[] = {"invalid UTF-8", "0xc3"};
    expect_problem("cut.csv", "text\nab\xc3", "2", cut, 2);
}

static void input_csv_problems(void **state)
{
    (void)state;
    const char *unclosed[] = {"never closed"};
    expect_problem("unclosed.csv", "text\nok\n\"open\nmore\n", "3",
                   unclosed, 1);
    const char *after[] = {"text after a closing quote"};
    expect_problem("after.csv", "text\n\"a\"b\n", "2", after, 1);
    const char *columns[] = {"3 values", "expected 2"};
    expect_problem("columns.csv", "id,text\nx,y\nx,y,z\n", "3", columns,
                   2);
    const char *fewer[] = {"1 values", "expected 2"};
    expect_problem("fewer.csv", "id,text\r\nx,y\r\n\r\nx\r\n", "4",
                   fewer, 2);
    const char *header[] = {"no column \"text\""};
    expect_problem("header.csv", "id,body\nx,y\n", "1", header, 1);
    const char *twice[] = {"column \"text\" twice", "columns 1 and 3"};
    expect_problem("twice.csv", "text,id,text\na,b,c\n", "1", twice,
                   2);
    const char *unnamed[] = {"column 2 has no name"};
    expect_problem("unnamed.csv", "text,\na,b\n", "1", unnamed, 1);
}

/* Two jobs with one id would give two output lines with the same id, so
 * the open fails and names both lines. */
static void input_duplicate_ids(void **state)
{
    (void)state;
    const char *words[] = {"job id \"a\"", "line 1"};
    expect_problem("dup.jsonl",
                   "{\"id\":\"a\",\"text\":\"x\"}\n"
                   "{\"id\":\"b\",\"text\":\"y\"}\n"
                   "{\"id\":\"a\",\"text\":\"z\"}\n",
                   "3", words, 2);
    /* A job without an id takes its line number, which another job's
     * id may repeat. */
    const char *line_words[] = {"job id \"1\"", "line 1"};
    expect_problem("dup_line.jsonl",
                   "{\"text\":\"x\"}\n{\"id\":1,\"text\":\"y\"}\n",
                   "2", line_words, 2);
    const char *csv_words[] = {"job id \"q\"", "line 2"};
    expect_problem("dup.csv", "id,text\nq,a\nr,b\nq,c\n", "4",
                   csv_words, 2);

    /* Ids that only look alike are different ids. */
    char digest[65];
    run_input *in = open_ok("near.jsonl",
                            "{\"id\":\"a\",\"text\":\"x\"}\n"
                            "{\"id\":\"A\",\"text\":\"y\"}\n"
                            "{\"id\":\"a \",\"text\":\"z\"}\n",
                            TEXT_FIELD, 1, digest);
    assert_int_equal(run_input_count(in), 3);
    run_input_close(in);
}

static void input_empty_files(void **state)
{
    (void)state;
    const char *empty[] = {"empty"};
    expect_problem("empty.jsonl", "", "1", empty, 1);
    expect_problem("empty.csv", "", "1", empty, 1);
    expect_problem("bom-only.csv", "\xef\xbb\xbf", "1", empty, 1);
    const char *blank[] = {"every line is blank"};
    expect_problem("blank.jsonl", "\n  \r\n\t\n", "1", blank, 1);
    const char *no_rows[] = {"no rows"};
    expect_problem("header-only.csv", "text,id\r\n", "1", no_rows, 1);
    expect_problem("header-blank.csv", "text,id\n\n\n", "1", no_rows,
                   1);
    const char *blank_header[] = {"first line is blank"};
    expect_problem("blank-header.csv", "\ntext\na\n", "1",
                   blank_header, 1);
}

/* Problems of several kinds in one CSV are all reported, even past a
 * quote error. */
static void input_csv_many_kinds(void **state)
{
    (void)state;
    const char *content = "id,body\n"      /* 1: no "text" column */
                          "w,\"a\"b\n"     /* 2: text after a quote */
                          "x,y,z\n"        /* 3: three values */
                          "\xff,y\n"       /* 4: invalid UTF-8 */
                          "z,y\n";
    const char *path = write_input("kinds.csv", content, strlen(content));
    run_input *in = NULL;
    char digest[65];
    assert_int_equal(run_input_open(path, TEXT_FIELD, 1, &in, digest),
                     ROJ_ERR_FORMAT);
    const char *msg = roj_last_error();
    const char *lines[] = {"1", "2", "3", "4"};
    for (size_t i = 0; i < 4; i++) {
        char prefix[4300];
        snprintf(prefix, sizeof prefix, "%s:%s: ", path, lines[i]);
        if (!strstr(msg, prefix))
            fail_msg("no \"%s\" in: %s", prefix, msg);
    }
    if (!strstr(msg, "4 problems"))
        fail_msg("no count in: %s", msg);
}

/* Builds n lines of which every one lacks the "text" field. */
static char *bad_lines(size_t n)
{
    char *content = malloc(n * 16 + 1);
    assert_non_null(content);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)sprintf(content + len, "{\"t\":%zu}\n", i);
    return content;
}

/* 25 problems: the first ones are listed in order, then the count. */
static void input_many_problems(void **state)
{
    (void)state;
    char *content = bad_lines(25);
    const char *path = write_input("many.jsonl", content, strlen(content));
    free(content);
    run_input *in = NULL;
    char digest[65];
    assert_int_equal(run_input_open(path, TEXT_FIELD, 1, &in, digest),
                     ROJ_ERR_FORMAT);
    const char *msg = roj_last_error();
    char prefix[4300];
    const char *last = msg;
    for (int line = 1; line <= 5; line++) {
        snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
        const char *at = strstr(msg, prefix);
        if (!at)
            fail_msg("no \"%s\" in: %s", prefix, msg);
        assert_true(at >= last);
        last = at;
    }
    snprintf(prefix, sizeof prefix, "%s:25: ", path);
    assert_null(strstr(msg, prefix));
    if (!strstr(msg, "25 problems in all"))
        fail_msg("no count in: %s", msg);
    if (!strstr(msg, "more"))
        fail_msg("no \"more\" in: %s", msg);
}

/* With a long path the list is shorter, but the count still fits in the
 * message. */
static void input_long_path(void **state)
{
    (void)state;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(dir);
        snprintf(dir + len, sizeof dir - len, "/%0200d", i);
        assert_int_equal(mkdir(dir, 0755), 0);
    }
    char path[4300];
    snprintf(path, sizeof path, "%s/many.jsonl", dir);
    char *content = bad_lines(12);
    test_write_file(path, content, strlen(content));
    free(content);

    run_input *in = NULL;
    char digest[65];
    assert_int_equal(run_input_open(path, TEXT_FIELD, 1, &in, digest),
                     ROJ_ERR_FORMAT);
    const char *msg = roj_last_error();
    char prefix[4400];
    snprintf(prefix, sizeof prefix, "%s:1: ", path);
    if (!strstr(msg, prefix))
        fail_msg("no \"%s\" in: %s", prefix, msg);
    if (!strstr(msg, "12 problems in all"))
        fail_msg("no count in: %s", msg);
}

static void input_missing_file(void **state)
{
    (void)state;
    char path[4200];
    snprintf(path, sizeof path, "%s/absent.jsonl", test_tmpdir());
    run_input *in = (run_input *)1;
    char digest[65];
    assert_int_equal(run_input_open(path, TEXT_FIELD, 1, &in, digest),
                     ROJ_ERR_IO);
    assert_null(in);
    if (!strstr(roj_last_error(), path))
        fail_msg("no path in: %s", roj_last_error());
    assert_int_equal(run_input_open(NULL, TEXT_FIELD, 1, &in, digest),
                     ROJ_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(input_jsonl_jobs),
        cmocka_unit_test(input_number_ids),
        cmocka_unit_test(input_csv_jobs),
        cmocka_unit_test(input_csv_line_ids),
        cmocka_unit_test(input_csv_bom),
        cmocka_unit_test(input_jsonl_problems),
        cmocka_unit_test(input_encoding_problems),
        cmocka_unit_test(input_csv_problems),
        cmocka_unit_test(input_duplicate_ids),
        cmocka_unit_test(input_empty_files),
        cmocka_unit_test(input_csv_many_kinds),
        cmocka_unit_test(input_many_problems),
        cmocka_unit_test(input_long_path),
        cmocka_unit_test(input_missing_file),
    };
    return test_run_group(tests, NULL, NULL);
}
