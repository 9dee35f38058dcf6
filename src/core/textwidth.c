/* Terminal columns of UTF-8 text, by utf8proc's character widths. */
#include "core/textwidth.h"

#include <string.h>
#include <sys/types.h>

#include <utf8proc.h>

/* Returns the length in bytes of the character at s (len bytes left) and
 * sets *cols to its columns. An invalid byte is one character of one
 * column. */
static size_t next_char(const char *s, size_t len, size_t *cols)
{
    utf8proc_int32_t cp;
    utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)s,
                                          (utf8proc_ssize_t)len, &cp);
    if (n <= 0) {
        *cols = 1;
        return 1;
    }
    int w = utf8proc_charwidth(cp);
    *cols = w > 0 ? (size_t)w : 0;
    return (size_t)n;
}

size_t text_columns(const char *s)
{
    size_t cols = 0, left = strlen(s);
    while (left) {
        size_t w, n = next_char(s, left, &w);
        cols += w;
        s += n;
        left -= n;
    }
    return cols;
}

void text_put_cell(FILE *f, const char *s, int width)
{
    size_t cols = 0, limit = width > 0 ? (size_t)width : 0;
    size_t left = s ? strlen(s) : 0;
    while (left) {
        size_t w, n = next_char(s, left, &w);
        if (cols + w > limit)
            break;
        fwrite(s, 1, n, f);
        cols += w;
        s += n;
        left -= n;
    }
    for (; cols < limit; cols++)
        fputc(' ', f);
}
