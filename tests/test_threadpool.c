/* Thread pool: every index runs exactly once per pool_run, runs do not
 * overlap, and pool_split covers a range without gaps or overlap. */
#include "testutil.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "core/threadpool.h"

typedef struct count_task {
    atomic_int calls[8];
    atomic_int total;
    int n_expected;
} count_task;

static void count_worker(void *arg, int thread, int n_threads)
{
    count_task *t = arg;
    if (n_threads != t->n_expected)
        atomic_fetch_add(&t->total, 1000000);
    atomic_fetch_add(&t->calls[thread], 1);
    atomic_fetch_add(&t->total, 1);
}

static void pool_runs_every_index_once(void **state)
{
    (void)state;
    for (int n = 1; n <= 4; n++) {
        roj_pool *pool = NULL;
        assert_int_equal(pool_create(n, &pool), ROJ_OK);
        assert_int_equal(pool_size(pool), n);
        count_task t = {.n_expected = n};
        for (int run = 0; run < 2000; run++)
            pool_run(pool, count_worker, &t);
        for (int i = 0; i < n; i++)
            assert_int_equal(atomic_load(&t.calls[i]), 2000);
        assert_int_equal(atomic_load(&t.total), 2000 * n);
        pool_destroy(pool);
    }
}

typedef struct sum_task {
    const int *data;
    int64_t n;
    int64_t partial[8];
} sum_task;

static void sum_worker(void *arg, int thread, int n_threads)
{
    sum_task *t = arg;
    int64_t begin, end, s = 0;
    pool_split(t->n, n_threads, thread, 16, &begin, &end);
    for (int64_t i = begin; i < end; i++)
        s += t->data[i];
    t->partial[thread] = s;
}

/* Results written by workers are visible when pool_run returns. */
static void pool_results_visible_after_run(void **state)
{
    (void)state;
    roj_pool *pool = NULL;
    assert_int_equal(pool_create(2, &pool), ROJ_OK);
    int *data = malloc(10007 * sizeof *data);
    int64_t expected = 0;
    for (int i = 0; i < 10007; i++) {
        data[i] = i % 97;
        expected += data[i];
    }
    for (int run = 0; run < 500; run++) {
        sum_task t = {data, 10007 - run, {0}};
        int64_t want = expected;
        for (int i = 10007 - run; i < 10007; i++)
            want -= data[i];
        pool_run(pool, sum_worker, &t);
        assert_int_equal(t.partial[0] + t.partial[1], want);
    }
    free(data);
    pool_destroy(pool);
}

static void pool_split_covers_range(void **state)
{
    (void)state;
    const int64_t sizes[] = {0, 1, 15, 16, 17, 100, 576, 49152, 1000003};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int parts = 1; parts <= 7; parts++) {
            int64_t next = 0;
            for (int p = 0; p < parts; p++) {
                int64_t b, e;
                pool_split(sizes[s], parts, p, 16, &b, &e);
                assert_int_equal(b, next);
                assert_true(e >= b);
                if (e < sizes[s])
                    assert_int_equal(e % 16, 0);
                next = e;
            }
            assert_int_equal(next, sizes[s]);
        }
}

static void pool_rejects_bad_size(void **state)
{
    (void)state;
    roj_pool *pool = NULL;
    assert_int_equal(pool_create(0, &pool), ROJ_ERR_INVALID_ARG);
    assert_int_equal(pool_create(257, &pool), ROJ_ERR_INVALID_ARG);
    assert_null(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_runs_every_index_once),
        cmocka_unit_test(pool_results_visible_after_run),
        cmocka_unit_test(pool_split_covers_range),
        cmocka_unit_test(pool_rejects_bad_size),
    };
    return test_run_group(tests, NULL, NULL);
}
