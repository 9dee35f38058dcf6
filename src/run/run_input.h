/*
 * Jobs from an input file: JSON Lines (one object per line) or CSV (a
 * header row, then one job per row; every value is a string). The whole
 * file is checked when it opens, so a broken line stops the run before
 * any agent starts, with the file and line of every problem.
 *
 * A job's id is its "id" field (a string or a number) when it has one,
 * else its line number in the file.
 */
#ifndef ROJ_RUN_RUN_INPUT_H
#define ROJ_RUN_RUN_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/roj.h"

typedef struct run_input run_input;

/* Opens and checks path. fields are the pipeline's input fields, which
 * every job must have. On success *out holds the jobs and sha256 (65
 * bytes) the hex digest of the file. On failure the message lists the
 * first problems as "FILE:LINE: ...". */
roj_status run_input_open(const char *path, const char *const *fields,
                          size_t n_fields, run_input **out,
                          char digest_hex[65]);

uint64_t run_input_count(const run_input *in);

/* Job i (0-based): its id and its fields as a JSON object text, both
 * new strings the caller frees. */
roj_status run_input_get(const run_input *in, uint64_t i, char **id,
                         char **fields);

void run_input_close(run_input *in);

#endif
