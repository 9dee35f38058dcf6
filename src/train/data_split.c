/*
 * Deterministic training/validation split.
 *
 * The unit of the split is the input record (for classify and generate one
 * example, for extract all slots of one text). Records are grouped by label
 * for classify and form one group otherwise. Each group is shuffled with
 * splitmix64 seeded by the caller, so the split depends only on the data,
 * the fraction and the seed. The validation total is round(records *
 * fraction). Each group first gets floor(its size * fraction). The rest
 * goes to the groups with the largest remainders, lowest label first on
 * ties. A group never gives away its last record, so every label keeps at
 * least one training example.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "train/data_internal.h"

static uint64_t splitmix64_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* Returns a uniform integer in [0, n) without modulo bias. */
static uint64_t random_below(uint64_t *state, uint64_t n)
{
    uint64_t threshold = (0 - n) % n; /* 2^64 mod n */
    for (;;) {
        uint64_t r = splitmix64_next(state);
        if (r >= threshold)
            return r % n;
    }
}

/* Records of one split, each a range of example indexes. */
typedef struct split_units {
    size_t *first;   /* (n) first example of each record */
    size_t *count;   /* (n) examples of each record */
    size_t *group;   /* (n) label for classify, else 0 */
    size_t n;
    size_t n_groups;
} split_units;

static roj_status units_build(const train_dataset *d, split_units *u)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += i == 0 || d->ex[i].record != d->ex[i - 1].record;
    u->first = malloc(n * sizeof *u->first);
    u->count = malloc(n * sizeof *u->count);
    u->group = malloc(n * sizeof *u->group);
    if (!u->first || !u->count || !u->group)
        return roj_error(ROJ_ERR_NOMEM, "%s: out of memory", d->path);
    u->n = 0;
    u->n_groups = d->task == TRAIN_CLASSIFY ? d->n_labels : 1;
    for (size_t i = 0; i < d->n; i++) {
        if (i == 0 || d->ex[i].record != d->ex[i - 1].record) {
            u->first[u->n] = i;
            u->count[u->n] = 0;
            u->group[u->n] = d->task == TRAIN_CLASSIFY
                                 ? (size_t)d->ex[i].label : 0;
            u->n++;
        }
        u->count[u->n - 1]++;
    }
    return ROJ_OK;
}

typedef struct group_share {
    size_t group;
    size_t take;      /* records of the group that go to validation */
    size_t size;
    double remainder; /* size * fraction - take before the rest is shared */
} group_share;

static int compare_remainders(const void *a, const void *b)
{
    const group_share *x = a, *y = b;
    if (x->remainder != y->remainder)
        return x->remainder > y->remainder ? -1 : 1;
    return x->group < y->group ? -1 : x->group > y->group;
}

/* Fills take[g]: how many records of each group go to validation. */
static roj_status shares_compute(const split_units *u, double fraction,
                                 size_t *take)
{
    group_share *s = calloc(u->n_groups, sizeof *s);
    if (!s)
        return ROJ_ERR_NOMEM;
    for (size_t g = 0; g < u->n_groups; g++)
        s[g].group = g;
    for (size_t i = 0; i < u->n; i++)
        s[u->group[i]].size++;

    size_t total = (size_t)llround((double)u->n * fraction), given = 0;
    for (size_t g = 0; g < u->n_groups; g++) {
        double exact = (double)s[g].size * fraction;
        s[g].take = (size_t)floor(exact);
        /* A fraction just below 1 can round size * fraction up to size. */
        if (s[g].size && s[g].take > s[g].size - 1)
            s[g].take = s[g].size - 1;
        s[g].remainder = exact - (double)s[g].take;
        given += s[g].take;
    }
    qsort(s, u->n_groups, sizeof *s, compare_remainders);
    for (size_t k = 0; k < u->n_groups && given < total; k++) {
        if (s[k].size && s[k].take + 1 < s[k].size) {
            s[k].take++;
            given++;
        }
    }
    for (size_t k = 0; k < u->n_groups; k++)
        take[s[k].group] = s[k].take;
    free(s);
    return ROJ_OK;
}

/* Marks the validation records: a seeded shuffle per group, then the
 * first take[g] of each group. order has room for u->n entries and
 * start for u->n_groups + 1. */
static void choose_valid(const split_units *u, const size_t *take,
                         uint64_t seed, size_t *order, size_t *start,
                         bool *valid)
{
    /* Counting sort: order lists the records group by group. */
    memset(start, 0, (u->n_groups + 1) * sizeof *start);
    for (size_t i = 0; i < u->n; i++)
        start[u->group[i] + 1]++;
    for (size_t g = 0; g < u->n_groups; g++)
        start[g + 1] += start[g];
    for (size_t i = 0; i < u->n; i++)
        order[start[u->group[i]]++] = i;
    for (size_t g = u->n_groups; g > 0; g--)
        start[g] = start[g - 1];
    start[0] = 0;

    uint64_t state = seed;
    for (size_t g = 0; g < u->n_groups; g++) {
        size_t *bucket = order + start[g];
        size_t n = start[g + 1] - start[g];
        for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
            size_t j = (size_t)random_below(&state, i);
            size_t t = bucket[i - 1];
            bucket[i - 1] = bucket[j];
            bucket[j] = t;
        }
        for (size_t i = 0; i < take[g]; i++)
            valid[bucket[i]] = true;
    }
}

/* Writes the example indexes of the records with valid[i] == side. */
static size_t *collect_side(const split_units *u, const bool *valid,
                            bool side, size_t n_examples, size_t *n_out)
{
    size_t *idx = malloc((n_examples ? n_examples : 1) * sizeof *idx);
    size_t n = 0;
    if (!idx)
        return NULL;
    for (size_t i = 0; i < u->n; i++)
        if (valid[i] == side)
            for (size_t k = 0; k < u->count[i]; k++)
                idx[n++] = u->first[i] + k;
    *n_out = n;
    return idx;
}

roj_status train_data_split(const train_dataset *d, double valid_fraction,
                            uint64_t seed, size_t **train_idx,
                            size_t *n_train, size_t **valid_idx,
                            size_t *n_valid)
{
    *train_idx = *valid_idx = NULL;
    *n_train = *n_valid = 0;
    if (!(valid_fraction >= 0.0 && valid_fraction < 1.0))
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "validation fraction %g for %s is outside [0, 1); "
                         "use for example 0.1",
                         valid_fraction, d->path);
    if (d->n == 0)
        return roj_error(ROJ_ERR_INVALID_ARG, "%s: no examples to split",
                         d->path);

    split_units u = {0};
    size_t *take = NULL, *order = NULL, *start = NULL;
    bool *valid = NULL;
    roj_status st = units_build(d, &u);
    if (st != ROJ_OK)
        goto cleanup;
    take = calloc(u.n_groups, sizeof *take);
    order = malloc(u.n * sizeof *order);
    start = malloc((u.n_groups + 1) * sizeof *start);
    valid = calloc(u.n, sizeof *valid);
    if (!take || !order || !start || !valid ||
        shares_compute(&u, valid_fraction, take) != ROJ_OK) {
        st = roj_error(ROJ_ERR_NOMEM, "%s: out of memory", d->path);
        goto cleanup;
    }
    choose_valid(&u, take, seed, order, start, valid);

    /* Record order is example order, so both lists come out sorted. */
    *train_idx = collect_side(&u, valid, false, d->n, n_train);
    *valid_idx = collect_side(&u, valid, true, d->n, n_valid);
    if (!*train_idx || !*valid_idx) {
        free(*train_idx);
        free(*valid_idx);
        *train_idx = *valid_idx = NULL;
        *n_train = *n_valid = 0;
        st = roj_error(ROJ_ERR_NOMEM, "%s: out of memory", d->path);
    }

cleanup:
    free(u.first);
    free(u.count);
    free(u.group);
    free(take);
    free(order);
    free(start);
    free(valid);
    return st;
}
