/*
 * Terminal columns of UTF-8 text, for aligned tables. printf's "%-*s"
 * pads by bytes, so a label such as "café" ends up one column short,
 * and "%.*s" can cut a character in half.
 */
#ifndef ROJ_CORE_TEXTWIDTH_H
#define ROJ_CORE_TEXTWIDTH_H

#include <stddef.h>
#include <stdio.h>

/* Columns s takes on a terminal, by utf8proc's character widths: 2 for
 * East Asian wide characters, 0 for combining marks. A byte that is not
 * valid UTF-8 counts as one column. */
size_t text_columns(const char *s);

/* Writes s to f cut to at most width columns, never inside a character,
 * then spaces up to width columns. */
void text_put_cell(FILE *f, const char *s, int width);

#endif
