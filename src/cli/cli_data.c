/* Parsers shared by `roj train` and `roj eval` (see cli_data.h). */
#include "cli/cli_data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool cli_parse_task(const char *s, train_task *out)
{
    static const char *const names[] = {"classify", "extract", "generate"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i])) {
            *out = (train_task)i;
            return true;
        }
    return false;
}

double cli_parse_duration(const char *s)
{
    /* A sequence of number-unit parts ("1h30m", "9m30s"); a bare number
     * is seconds. Units must come in the order h, m, s, ms. */
    static const struct { const char *unit; double scale; } units[] = {
        {"h", 3600}, {"m", 60}, {"s", 1}, {"ms", 0.001}};
    double total = 0;
    int last = -1;
    const char *p = s;
    if (!*p)
        return -1;
    while (*p) {
        char *end;
        const double v = strtod(p, &end);
        if (end == p || !isfinite(v) || v < 0)
            return -1;
        p = end;
        if (!*p && last < 0)
            return v;   /* plain seconds */
        int u = -1;
        for (int i = 3; i >= 0 && u < 0; i--)
            if (!strncmp(p, units[i].unit, strlen(units[i].unit)) &&
                !(i == 1 && p[1] == 's'))
                u = i;
        if (u < 0 || u <= last)
            return -1;
        total += v * units[u].scale;
        p += strlen(units[u].unit);
        last = u;
    }
    return total;
}
