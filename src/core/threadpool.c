#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/error.h"

/* Spins this many times waiting for work before sleeping. */
#define POOL_SPIN_LIMIT 20000

struct roj_pool {
    int n_threads;
    pthread_t *threads;
    pool_task_fn fn;
    void *ctx;
    atomic_uint generation; /* bumped once per pool_run */
    atomic_int pending;     /* workers still running the current task */
    atomic_int stop;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int sleepers;
};

struct worker_arg {
    roj_pool *pool;
    int index;
};

static void *worker_main(void *arg_ptr)
{
    struct worker_arg *arg = arg_ptr;
    roj_pool *pool = arg->pool;
    const int index = arg->index;
    unsigned seen = 0;

    free(arg);
    for (;;) {
        /* Wait for a new generation: spin first, then sleep. */
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&pool->generation,
                                           memory_order_acquire)) == seen &&
               !atomic_load(&pool->stop)) {
            if (++spins < POOL_SPIN_LIMIT) {
                sched_yield();
                continue;
            }
            pthread_mutex_lock(&pool->lock);
            pool->sleepers++;
            while (atomic_load(&pool->generation) == seen &&
                   !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->wake, &pool->lock);
            pool->sleepers--;
            pthread_mutex_unlock(&pool->lock);
            spins = 0;
        }
        if (atomic_load(&pool->stop))
            return NULL;
        seen = gen;
        pool->fn(pool->ctx, index, pool->n_threads);
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_release);
    }
}

roj_status pool_create(int n_threads, roj_pool **out)
{
    if (n_threads < 1 || n_threads > 256)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "thread count %d is out of range (1 to 256)",
                         n_threads);
    roj_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for thread pool");
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->threads = calloc((size_t)n_threads, sizeof *pool->threads);
    if (!pool->threads) {
        pool_destroy(pool);
        return roj_error(ROJ_ERR_NOMEM, "out of memory for thread pool");
    }
    for (int i = 1; i < n_threads; i++) {
        struct worker_arg *arg = malloc(sizeof *arg);
        if (arg) {
            arg->pool = pool;
            arg->index = i;
        }
        if (!arg || pthread_create(&pool->threads[i], NULL, worker_main,
                                   arg) != 0) {
            free(arg);
            pool->n_threads = i;
            pool_destroy(pool);
            return roj_error(ROJ_ERR_NOMEM, "cannot start worker thread %d",
                             i);
        }
    }
    *out = pool;
    return ROJ_OK;
}

void pool_destroy(roj_pool *pool)
{
    if (!pool)
        return;
    atomic_store(&pool->stop, 1);
    pthread_mutex_lock(&pool->lock);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 1; i < pool->n_threads; i++)
        if (pool->threads)
            pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->wake);
    free(pool->threads);
    free(pool);
}

int pool_size(const roj_pool *pool)
{
    return pool->n_threads;
}

void pool_run(roj_pool *pool, pool_task_fn fn, void *ctx)
{
    if (pool->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store_explicit(&pool->pending, pool->n_threads - 1,
                          memory_order_relaxed);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_mutex_lock(&pool->lock);
    if (pool->sleepers > 0)
        pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);

    fn(ctx, 0, pool->n_threads);

    /* Wait for the workers; yield so that a worker sharing this core
     * (more threads than cores) can finish its part. */
    for (int spins = 0;
         atomic_load_explicit(&pool->pending, memory_order_acquire) > 0;
         spins++)
        if (spins > 64)
            sched_yield();
}

void pool_split(int64_t n, int n_parts, int part, int64_t align,
                int64_t *begin, int64_t *end)
{
    if (align < 1)
        align = 1;
    int64_t units = (n + align - 1) / align;
    int64_t per = units / n_parts;
    int64_t extra = units % n_parts;
    int64_t first = part * per + (part < extra ? part : extra);
    int64_t count = per + (part < extra ? 1 : 0);
    int64_t b = first * align;
    int64_t e = (first + count) * align;
    *begin = b < n ? b : n;
    *end = e < n ? e : n;
}
