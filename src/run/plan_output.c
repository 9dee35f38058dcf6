/* Placeholders and output lines of a job plan: the values that {job.F},
 * {STEP.F} and {item} stand for, and the JSON line of a done job. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "run/plan_internal.h"

/* ---- values ---- */

/* Writes the shortest "%.*g" text of d that strtod reads back as d, or
 * "null" for NaN and infinity, which JSON cannot write. Whole numbers
 * below 1e17 are written without an exponent ("100", not "1e+02"). */
static void number_text(double d, char *buf, size_t cap)
{
    if (!isfinite(d)) {
        snprintf(buf, cap, "null");
        return;
    }
    if (d == floor(d) && fabs(d) < 1e17) {
        snprintf(buf, cap, "%.0f", d);
        return;
    }
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(buf, cap, "%.*g", precision, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* A deep copy of v whose numbers are raw nodes with their shortest text,
 * so that printing keeps them short; NULL when memory runs out. */
static cJSON *json_copy(const cJSON *v)
{
    if (cJSON_IsNumber(v)) {
        char buf[40];
        number_text(v->valuedouble, buf, sizeof buf);
        return cJSON_CreateRaw(buf);
    }
    if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
        return cJSON_Duplicate(v, false);

    bool array = cJSON_IsArray(v);
    cJSON *copy = array ? cJSON_CreateArray() : cJSON_CreateObject();
    for (const cJSON *e = v->child; copy && e; e = e->next) {
        cJSON *c = json_copy(e);
        bool ok = c && (array ? cJSON_AddItemToArray(copy, c)
                              : cJSON_AddItemToObject(copy, e->string, c));
        if (!ok) {
            cJSON_Delete(c);
            cJSON_Delete(copy);
            return NULL;
        }
    }
    return copy;
}

char *plan_value_text(const cJSON *value)
{
    if (cJSON_IsString(value))
        return strdup(value->valuestring);
    if (!value)
        return strdup("null");
    cJSON *copy = json_copy(value);
    char *text = copy ? cJSON_PrintUnformatted(copy) : NULL;
    cJSON_Delete(copy);
    return text;
}

/* The JSON value that placeholder name ("job.F" or "STEP.F") stands for,
 * or NULL when it has none (an unknown name or a step not done yet). */
static const cJSON *lookup_json(const plan_job *job, const char *name)
{
    const char *dot = strchr(name, '.');
    if (!dot)
        return NULL;
    size_t len = (size_t)(dot - name);
    if (len == 3 && !memcmp(name, "job", 3))
        return cJSON_GetObjectItemCaseSensitive(job->fields, dot + 1);

    const swarm_pipeline *p = job->pipeline;
    for (size_t i = 0; i < p->n_steps; i++) {
        const char *id = p->steps[i].id;
        if (strlen(id) != len || memcmp(id, name, len))
            continue;
        if (job->steps[i].status != STEP_DONE)
            return NULL;
        return cJSON_GetObjectItemCaseSensitive(job->steps[i].result,
                                                dot + 1);
    }
    return NULL;
}

/* ---- rendering ---- */

static bool scratch_push(plan_lookup *lookup, char *text)
{
    if (lookup->n_scratch == lookup->cap_scratch) {
        size_t cap = lookup->cap_scratch ? lookup->cap_scratch * 2 : 8;
        char **grown = realloc(lookup->scratch, cap * sizeof *grown);
        if (!grown)
            return false;
        lookup->scratch = grown;
        lookup->cap_scratch = cap;
    }
    lookup->scratch[lookup->n_scratch++] = text;
    return true;
}

roj_status plan_lookup_value(void *ctx, const char *name,
                             const char **value, size_t *len)
{
    plan_lookup *lookup = ctx;
    if (!strcmp(name, "item")) {
        if (!lookup->item)
            return ROJ_ERR_NOT_FOUND;
        *value = lookup->item;
        *len = strlen(lookup->item);
        return ROJ_OK;
    }

    const cJSON *v = lookup_json(lookup->job, name);
    if (!v)
        return ROJ_ERR_NOT_FOUND;
    if (cJSON_IsString(v)) {
        *value = v->valuestring;
        *len = strlen(v->valuestring);
        return ROJ_OK;
    }

    /* Other values need their text to live until the rendering ends. */
    char *text = plan_value_text(v);
    if (!text || !scratch_push(lookup, text)) {
        free(text);
        return roj_error(ROJ_ERR_NOMEM, "placeholder {%s}: out of memory",
                         name);
    }
    *value = text;
    *len = strlen(text);
    return ROJ_OK;
}

void plan_lookup_clear(plan_lookup *lookup)
{
    for (size_t i = 0; i < lookup->n_scratch; i++)
        free(lookup->scratch[i]);
    free(lookup->scratch);
    lookup->scratch = NULL;
    lookup->n_scratch = 0;
    lookup->cap_scratch = 0;
}

roj_status plan_render(plan_job *job, const char *tmpl, const char *item,
                       const char *where, char **out)
{
    plan_lookup lookup = {.job = job, .item = item};
    roj_status st = swarm_render(tmpl, plan_lookup_value, &lookup, 0, out);
    plan_lookup_clear(&lookup);
    if (st == ROJ_ERR_NOMEM)
        return job_nomem(job);
    if (st)
        job_fail(job, "%s: %s", where, roj_last_error());
    return ROJ_OK;
}

/* ---- output lines ---- */

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

/* Copies the placeholder name to name when tmpl is exactly one "{name}"
 * and nothing else; returns false otherwise. */
static bool lone_placeholder(const char *tmpl, char *name, size_t cap)
{
    size_t len = strlen(tmpl);
    if (len < 3 || len - 2 >= cap || tmpl[0] != '{' || tmpl[len - 1] != '}')
        return false;
    for (size_t i = 1; i + 1 < len; i++)
        if (!is_name_char(tmpl[i]))
            return false;
    memcpy(name, tmpl + 1, len - 2);
    name[len - 2] = '\0';
    return true;
}

/* The value of one output field: the placeholder's own JSON value when
 * the template is a lone placeholder of a value that is not a string,
 * a string otherwise. *out is NULL when the job failed. */
static roj_status output_value(plan_job *job, const swarm_binding *b,
                               cJSON **out)
{
    char name[256];
    *out = NULL;
    if (lone_placeholder(b->tmpl, name, sizeof name)) {
        const cJSON *v = lookup_json(job, name);
        if (v && !cJSON_IsString(v)) {
            *out = json_copy(v);
            return *out ? ROJ_OK : job_nomem(job);
        }
    }

    char where[300], *text = NULL;
    snprintf(where, sizeof where, "pipeline \"%s\" output \"%s\"",
             job->pipeline->name, b->name);
    roj_status st = plan_render(job, b->tmpl, NULL, where, &text);
    if (st || !text)
        return st;
    *out = cJSON_CreateString(text);
    free(text);
    return *out ? ROJ_OK : job_nomem(job);
}

roj_status plan_build_output(plan_job *job)
{
    const swarm_pipeline *p = job->pipeline;
    cJSON *line = cJSON_CreateObject();
    cJSON *result = NULL;
    if (!line || !cJSON_AddStringToObject(line, "id", job->id) ||
        !cJSON_AddTrueToObject(line, "ok") ||
        !(result = cJSON_AddObjectToObject(line, "result")))
        goto nomem;

    for (size_t i = 0; i < p->n_output; i++) {
        cJSON *v = NULL;
        roj_status st = output_value(job, &p->output[i], &v);
        if (st || !v) {
            cJSON_Delete(line);
            return st;
        }
        if (!cJSON_AddItemToObject(result, p->output[i].name, v)) {
            cJSON_Delete(v);
            goto nomem;
        }
    }

    char *text = cJSON_PrintUnformatted(line);
    if (!text)
        goto nomem;
    cJSON_Delete(line);
    job->output = text;
    job->done = true;
    return ROJ_OK;

nomem:
    cJSON_Delete(line);
    return job_nomem(job);
}

char *plan_error_line(const plan_job *job)
{
    cJSON *line = cJSON_CreateObject();
    char *text = NULL;
    if (line && cJSON_AddStringToObject(line, "id", job->id) &&
        cJSON_AddFalseToObject(line, "ok") &&
        cJSON_AddStringToObject(line, "error",
                                job->error ? job->error : "out of memory"))
        text = cJSON_PrintUnformatted(line);
    cJSON_Delete(line);
    return text;
}
