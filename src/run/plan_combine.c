/* Answers of a job plan: checking one subtask's result, combining the
 * voters of a vote and the items of a map step, and the fields of a
 * step that was skipped. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/plan_internal.h"

static const cJSON *get(const cJSON *object, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(object, name);
}

static long label_index(const swarm_output *o, const char *label)
{
    for (size_t i = 0; i < o->n_labels; i++)
        if (!strcmp(o->labels[i], label))
            return (long)i;
    return -1;
}

/* ---- checking a result ---- */

static bool check_type(plan_job *job, const plan_subtask *task,
                       const cJSON *result, const char *name,
                       swarm_field_type type)
{
    const cJSON *v = get(result, name);
    bool ok;
    const char *what;
    switch (type) {
    case SWARM_FIELD_STRING:
        ok = cJSON_IsString(v);
        what = "a string";
        break;
    case SWARM_FIELD_INTEGER:
        ok = cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble);
        what = "an integer";
        break;
    case SWARM_FIELD_NUMBER:
        ok = cJSON_IsNumber(v);
        what = "a number";
        break;
    default:
        ok = cJSON_IsBool(v);
        what = "a boolean";
        break;
    }
    if (!ok)
        job_fail(job, "subtask \"%s\": the result of skill \"%s\" %s "
                 "\"%s\", expected %s", task->key,
                 job->swarm->skills[task->skill].name,
                 v ? "has a wrong type for" : "lacks the field", name, what);
    return ok;
}

static bool check_choice(plan_job *job, const plan_subtask *task,
                         const cJSON *result, bool need_probs)
{
    const swarm_skill *sk = &job->swarm->skills[task->skill];
    if (!check_type(job, task, result, "label", SWARM_FIELD_STRING) ||
        !check_type(job, task, result, "confidence", SWARM_FIELD_NUMBER))
        return false;
    const char *label = get(result, "label")->valuestring;
    if (label_index(&sk->output, label) < 0) {
        job_fail(job, "subtask \"%s\": label \"%.60s\" is not one of the "
                 "labels of skill \"%s\"", task->key, label, sk->name);
        return false;
    }
    if (!need_probs)
        return true;
    const cJSON *probs = get(result, "probs");
    bool ok = cJSON_IsArray(probs) &&
              (size_t)cJSON_GetArraySize(probs) == sk->output.n_labels;
    for (const cJSON *p = probs ? probs->child : NULL; ok && p; p = p->next)
        ok = cJSON_IsNumber(p);
    if (!ok)
        job_fail(job, "subtask \"%s\": a vote needs \"probs\", an array of "
                 "%zu numbers (one per label of skill \"%s\")", task->key,
                 sk->output.n_labels, sk->name);
    return ok;
}

bool plan_check_result(plan_job *job, const plan_subtask *task,
                       const cJSON *result, bool need_probs)
{
    const swarm_output *o = &job->swarm->skills[task->skill].output;
    switch (o->kind) {
    case SWARM_OUTPUT_CHOICE:
        return check_choice(job, task, result, need_probs);
    case SWARM_OUTPUT_SPAN:
        return check_type(job, task, result, "text", SWARM_FIELD_STRING) &&
               check_type(job, task, result, "found", SWARM_FIELD_BOOLEAN);
    case SWARM_OUTPUT_JSON:
        if (!check_type(job, task, result, "text", SWARM_FIELD_STRING))
            return false;
        for (size_t i = 0; i < o->n_fields; i++)
            if (!check_type(job, task, result, o->fields[i].name,
                            o->fields[i].type))
                return false;
        return true;
    default:
        return check_type(job, task, result, "text", SWARM_FIELD_STRING);
    }
}

/* ---- one answer ---- */

static bool copy_field(cJSON *to, const cJSON *from, const char *name)
{
    if (get(to, name))
        return true;
    cJSON *v = cJSON_Duplicate(get(from, name), true);
    if (v && cJSON_AddItemToObject(to, name, v))
        return true;
    cJSON_Delete(v);
    return false;
}

cJSON *plan_answer_fields(const swarm_skill *skill, const cJSON *result)
{
    const swarm_output *o = &skill->output;
    cJSON *f = cJSON_CreateObject();
    bool ok = f != NULL;
    if (o->kind == SWARM_OUTPUT_CHOICE) {
        ok = ok && copy_field(f, result, "label") &&
             copy_field(f, result, "confidence");
    } else if (o->kind == SWARM_OUTPUT_SPAN) {
        ok = ok && copy_field(f, result, "text") &&
             copy_field(f, result, "found");
    } else {
        ok = ok && copy_field(f, result, "text");
        for (size_t i = 0; ok && o->kind == SWARM_OUTPUT_JSON &&
                           i < o->n_fields; i++)
            ok = copy_field(f, result, o->fields[i].name);
    }
    if (!ok) {
        cJSON_Delete(f);
        return NULL;
    }
    return f;
}

/* ---- vote ---- */

static const char *answer_of(const swarm_output *o, const cJSON *result)
{
    const cJSON *v = get(result, o->kind == SWARM_OUTPUT_CHOICE ? "label"
                                                                : "text");
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The probability voter gave label (0 when its skill lacks it). */
static double voter_prob(const swarm_file *swarm, const plan_subtask *voter,
                         const char *label)
{
    const swarm_output *o = &swarm->skills[voter->skill].output;
    long j = label_index(o, label);
    const cJSON *p = j < 0 ? NULL
                           : cJSON_GetArrayItem(get(voter->result, "probs"),
                                                (int)j);
    return cJSON_IsNumber(p) ? p->valuedouble : 0.0;
}

/* Majority: the most frequent answer, ties to the higher summed
 * confidence, then to the earlier voter. Returns the winner's first
 * voter. */
static size_t vote_majority(const swarm_output *o, const plan_subtask *v,
                            size_t k)
{
    size_t best = 0, best_count = 0;
    double best_sum = 0.0;
    for (size_t u = 0; u < k; u++) {
        const char *answer = answer_of(o, v[u].result);
        bool seen = false;
        for (size_t w = 0; w < u && !seen; w++)
            seen = !strcmp(answer_of(o, v[w].result), answer);
        if (seen)
            continue;
        size_t count = 0;
        double sum = 0.0;
        for (size_t w = u; w < k; w++) {
            if (strcmp(answer_of(o, v[w].result), answer))
                continue;
            count++;
            const cJSON *c = get(v[w].result, "confidence");
            sum += cJSON_IsNumber(c) ? c->valuedouble : 0.0;
        }
        if (count > best_count || (count == best_count && sum > best_sum)) {
            best = u;
            best_count = count;
            best_sum = sum;
        }
    }
    return best;
}

/* Confidence: the label of the first skill with the highest summed
 * probability over voters, ties to the earlier label. */
static const char *vote_confidence(const swarm_file *swarm,
                                   const swarm_output *o,
                                   const plan_subtask *v, size_t k)
{
    const char *best = o->labels[0];
    double best_sum = -1.0;
    for (size_t j = 0; j < o->n_labels; j++) {
        double sum = 0.0;
        for (size_t u = 0; u < k; u++)
            sum += voter_prob(swarm, &v[u], o->labels[j]);
        if (sum > best_sum) {
            best = o->labels[j];
            best_sum = sum;
        }
    }
    return best;
}

cJSON *plan_vote(const swarm_file *swarm, const swarm_step *step,
                 const plan_subtask *voters, size_t k)
{
    const swarm_output *o = &swarm->skills[step->skills[0]].output;
    bool choice = o->kind == SWARM_OUTPUT_CHOICE;
    const char *winner;
    cJSON *f = NULL;
    if (choice && step->vote_rule == SWARM_VOTE_CONFIDENCE) {
        winner = vote_confidence(swarm, o, voters, k);
    } else {
        size_t u = vote_majority(o, voters, k);
        winner = answer_of(o, voters[u].result);
        if (!choice)
            f = plan_answer_fields(&swarm->skills[voters[u].skill],
                                   voters[u].result);
    }

    size_t count = 0;
    double prob = 0.0;
    for (size_t u = 0; u < k; u++) {
        count += !strcmp(answer_of(o, voters[u].result), winner);
        if (choice)
            prob += voter_prob(swarm, &voters[u], winner);
    }
    if (choice) {
        f = cJSON_CreateObject();
        if (f && (!cJSON_AddStringToObject(f, "label", winner) ||
                  !cJSON_AddNumberToObject(f, "confidence", prob / k))) {
            cJSON_Delete(f);
            return NULL;
        }
    }
    if (f && !cJSON_AddNumberToObject(f, "agreement", (double)count / k)) {
        cJSON_Delete(f);
        return NULL;
    }
    return f;
}

/* ---- reduce ---- */

static const char *item_string(const cJSON *result, const char *name)
{
    const cJSON *v = get(result, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* concat: the items' text (label for choice) joined by "\n". */
static bool reduce_concat(cJSON *f, const plan_item *items, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++) {
        const char *s = item_string(items[i].result, "text");
        if (!s)
            s = item_string(items[i].result, "label");
        len += (s ? strlen(s) : 0) + 1;
    }
    char *text = malloc(len), *at = text;
    if (!text)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *s = item_string(items[i].result, "text");
        if (!s)
            s = item_string(items[i].result, "label");
        if (i)
            *at++ = '\n';
        size_t l = s ? strlen(s) : 0;
        memcpy(at, s ? s : "", l);
        at += l;
    }
    *at = '\0';
    bool ok = cJSON_AddStringToObject(f, "text", text) != NULL;
    free(text);
    return ok;
}

/* count: items with a found span, a non-empty text or a label. */
static size_t reduce_count(const plan_item *items, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        const cJSON *found = get(items[i].result, "found");
        const char *label = item_string(items[i].result, "label");
        const char *text = item_string(items[i].result, "text");
        if (found)
            count += cJSON_IsTrue(found);
        else if (label)
            count += label[0] != '\0';
        else
            count += text && text[0];
    }
    return count;
}

/* vote: the most frequent item label, ties to the first seen. */
static bool reduce_vote(cJSON *f, const plan_item *items, size_t n)
{
    const char *best = "";
    size_t best_count = 0;
    for (size_t i = 0; i < n; i++) {
        const char *label = item_string(items[i].result, "label");
        if (!label)
            continue;
        size_t count = 0;
        for (size_t j = 0; j < n; j++) {
            const char *other = item_string(items[j].result, "label");
            count += other && !strcmp(other, label);
        }
        if (count > best_count) {
            best = label;
            best_count = count;
        }
    }
    return cJSON_AddStringToObject(f, "label", best) &&
           cJSON_AddNumberToObject(f, "agreement",
                                   n ? (double)best_count / n : 0.0);
}

/* The fields a vote or cascade adds to a map step: agreement, the mean
 * over items (unless reduce: vote set it); skill, the latest cascade
 * level that answered any item. */
static bool reduce_extras(cJSON *f, const swarm_file *swarm,
                          const swarm_step *step, const plan_item *items,
                          size_t n)
{
    if (step->vote > 1 && !get(f, "agreement")) {
        double sum = 0.0;
        for (size_t i = 0; i < n; i++) {
            const cJSON *a = get(items[i].result, "agreement");
            sum += cJSON_IsNumber(a) ? a->valuedouble : 0.0;
        }
        if (!cJSON_AddNumberToObject(f, "agreement", n ? sum / n : 0.0))
            return false;
    }
    if (step->cascade) {
        const char *skill = "";
        uint32_t level = 0;
        for (size_t i = 0; i < n; i++) {
            if (!skill[0] || items[i].level > level) {
                level = items[i].level;
                skill = swarm->skills[step->skills[level]].name;
            }
        }
        if (!cJSON_AddStringToObject(f, "skill", skill))
            return false;
    }
    return true;
}

cJSON *plan_reduce(const swarm_file *swarm, const swarm_step *step,
                   const plan_item *items, size_t n_items)
{
    cJSON *f = cJSON_CreateObject();
    bool ok = f && cJSON_AddNumberToObject(f, "n_items", (double)n_items);
    switch (step->reduce) {
    case SWARM_REDUCE_COLLECT: {
        cJSON *array = ok ? cJSON_AddArrayToObject(f, "items") : NULL;
        ok = array != NULL;
        for (size_t i = 0; ok && i < n_items; i++) {
            cJSON *copy = cJSON_Duplicate(items[i].result, true);
            ok = copy && cJSON_AddItemToArray(array, copy);
        }
        break;
    }
    case SWARM_REDUCE_CONCAT:
        ok = ok && reduce_concat(f, items, n_items);
        break;
    case SWARM_REDUCE_COUNT:
        ok = ok && cJSON_AddNumberToObject(
                       f, "count", (double)reduce_count(items, n_items));
        break;
    case SWARM_REDUCE_VOTE:
        ok = ok && reduce_vote(f, items, n_items);
        break;
    default:
        break;
    }
    ok = ok && reduce_extras(f, swarm, step, items, n_items);
    if (!ok) {
        cJSON_Delete(f);
        return NULL;
    }
    return f;
}

/* ---- skipped steps ---- */

static cJSON *empty_value(const swarm_file *swarm, const swarm_step *step,
                          const char *name)
{
    const swarm_output *o = &swarm->skills[step->skills[0]].output;
    for (size_t i = 0; !step->map && o->kind == SWARM_OUTPUT_JSON &&
                       i < o->n_fields; i++) {
        if (strcmp(o->fields[i].name, name))
            continue;
        if (o->fields[i].type == SWARM_FIELD_STRING)
            return cJSON_CreateString("");
        if (o->fields[i].type == SWARM_FIELD_BOOLEAN)
            return cJSON_CreateFalse();
        return cJSON_CreateNumber(0);
    }
    static const char *const numbers[] = {"confidence", "agreement",
                                          "count", "n_items"};
    for (size_t i = 0; i < sizeof numbers / sizeof *numbers; i++)
        if (!strcmp(name, numbers[i]))
            return cJSON_CreateNumber(0);
    if (!strcmp(name, "found"))
        return cJSON_CreateFalse();
    if (!strcmp(name, "items"))
        return cJSON_CreateArray();
    return cJSON_CreateString("");
}

cJSON *plan_empty_fields(const swarm_file *swarm, const swarm_step *step)
{
    cJSON *f = cJSON_CreateObject();
    for (size_t i = 0; f && i < step->n_fields; i++) {
        if (get(f, step->fields[i]))
            continue;
        cJSON *v = empty_value(swarm, step, step->fields[i]);
        if (!v || !cJSON_AddItemToObject(f, step->fields[i], v)) {
            cJSON_Delete(v);
            cJSON_Delete(f);
            return NULL;
        }
    }
    return f;
}
