/*
 * Jobs from an input file: JSON Lines (one object per line) or CSV (a
 * header row, then one job per row; every value is a string). A path
 * ending in .csv or .CSV is read as CSV, any other as JSON Lines. Blank
 * lines are skipped, and a UTF-8 byte order mark at the start is
 * ignored. The whole file is checked when it opens, so a broken line
 * stops the run before any agent starts, with the file and line of
 * every problem.
 *
 * A job's id is its "id" field (a string or a number, the number's text
 * kept as written) when it has one, else the number of the line where
 * the job starts.
 *
 * Ownership: run_input_open returns a handle freed by run_input_close.
 * Threading: one thread at a time uses a run_input, because cJSON's
 * parser writes a global error position.
 */
#ifndef ROJ_RUN_RUN_INPUT_H
#define ROJ_RUN_RUN_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/roj.h"

typedef struct run_input run_input;

/* Opens and checks path. fields are the pipeline's input fields, which
 * every job must have. On success *out is the opened input and digest_hex
 * the hex SHA-256 digest of the file's bytes. On failure *out is NULL;
 * a file with problems gives ROJ_ERR_FORMAT with a message that lists
 * the first ones as "FILE:LINE: ..." and then counts them all, and a
 * file that cannot be read gives ROJ_ERR_IO. */
roj_status run_input_open(const char *path, const char *const *fields,
                          size_t n_fields, run_input **out,
                          char digest_hex[65]);

uint64_t run_input_count(const run_input *in);

/* Job i (0-based): its id and its fields as a JSON object text, both
 * new strings the caller frees with free(). Both are NULL on failure;
 * an i past the last job is ROJ_ERR_RANGE. */
roj_status run_input_get(const run_input *in, uint64_t i, char **id,
                         char **fields);

void run_input_close(run_input *in);

#endif
