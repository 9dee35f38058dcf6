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
    char *end;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v) || v < 0)
        return -1;
    if (!strcmp(end, "") || !strcmp(end, "s"))
        return v;
    if (!strcmp(end, "m"))
        return v * 60;
    if (!strcmp(end, "h"))
        return v * 3600;
    return -1;
}
