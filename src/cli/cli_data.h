/* Options shared by `roj train` and `roj eval` that name the text, label
 * and span columns of a data file, so both commands take the same
 * flags. CLI_DATA_OPTIONS(d) expands to cli_option entries that fill the
 * train_data_opts d. */
#ifndef ROJ_CLI_CLI_DATA_H
#define ROJ_CLI_CLI_DATA_H

#include "cli/cli_util.h"
#include "train/data.h"

#define CLI_DATA_OPTIONS(d)                                                 \
    {NULL, "--text-column", CLI_STRING, &(d).text_column, "NAME",           \
     "column (CSV) or dotted field (JSON) of the input (text; generate: " \
     "prompt)"},                                                            \
    {NULL, "--label-column", CLI_STRING, &(d).label_column, "NAME",         \
     "classify: column of the label (label)"},                              \
    {NULL, "--target-column", CLI_STRING, &(d).target_column, "NAME",       \
     "generate: column of the completion (completion)"},                    \
    {NULL, "--spans-field", CLI_STRING, &(d).spans_field, "PATH",           \
     "extract, JSON: list of labeled spans (labels)"},                      \
    {NULL, "--span-slot-key", CLI_STRING, &(d).span_slot_key, "PATH",       \
     "extract, JSON: slot name inside a span (slot)"},                      \
    {NULL, "--span-start-key", CLI_STRING, &(d).span_start_key, "PATH",     \
     "extract, JSON: start offset (valueSpan.startIndex)"},                 \
    {NULL, "--span-end-key", CLI_STRING, &(d).span_end_key, "PATH",         \
     "extract, JSON: end offset (valueSpan.endIndex)"},                     \
    {NULL, "--span-start-column", CLI_STRING, &(d).span_start_column,       \
     "NAME", "extract, CSV: column of the start offset (start)"},           \
    {NULL, "--span-end-column", CLI_STRING, &(d).span_end_column, "NAME",   \
     "extract, CSV: column of the end offset (end)"},                       \
    {NULL, "--slot-column", CLI_STRING, &(d).slot_column, "NAME",           \
     "extract, CSV: column of the slot name (none: one slot)"},             \
    {NULL, "--context-column", CLI_STRING, &(d).context_column, "NAME",     \
     "extra prompt context, e.g. context.requestedSlots (none)"}

/* Parses "classify", "extract" or "generate"; false for anything else. */
bool cli_parse_task(const char *s, train_task *out);

/* Parses a duration: "90", "90s", "10m", "1.5h", "9m30s", "250ms".
 * Returns seconds, or a negative value when s is not a duration. */
double cli_parse_duration(const char *s);

#endif
