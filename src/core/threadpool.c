/*
 * Thread pool with claimable parts.
 *
 * pool_run(fn, ctx) splits the work into n parts (n = pool size). Any
 * thread may run any part, each part runs exactly once, and the caller
 * runs parts itself until none is left, then waits only for the parts
 * other threads have already claimed. So a worker that the OS has not
 * scheduled (more busy threads than cores) delays nothing: its parts are
 * done by whoever gets there first.
 *
 * A part is claimed with a compare-and-swap on one 64-bit word holding
 * the run's generation (high 32 bits) and the next unclaimed part (low 32
 * bits). The task of a run lives in one of two slots (generation % 2); a
 * slot is rewritten two runs later, after its run completed, so a thread
 * whose claim succeeded always reads a consistent task.
 */
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/error.h"

/* Polls of the claim word, each followed by a pause instruction, before a
 * worker sleeps; tens to hundreds of microseconds, depending on the CPU's
 * pause latency (not measured). */
#define POOL_SPIN_LIMIT 4000

typedef struct pool_slot {
    _Atomic(pool_task_fn) fn;
    _Atomic(void *) ctx;
    atomic_int n_parts;
    atomic_int done; /* parts finished */
} pool_slot;

struct roj_pool {
    int n_threads;
    pthread_t *threads;
    pool_slot slots[2];
    _Atomic uint64_t claim; /* generation << 32 | next part */
    atomic_int stop;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int sleepers; /* guarded by lock */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Claims and runs parts of the current run until none is left. Returns
 * the generation it saw. */
static uint32_t run_parts(roj_pool *pool)
{
    uint64_t word = atomic_load_explicit(&pool->claim, memory_order_acquire);
    for (;;) {
        uint32_t gen = (uint32_t)(word >> 32);
        uint32_t next = (uint32_t)word;
        pool_slot *slot = &pool->slots[gen & 1];
        int n_parts = atomic_load_explicit(&slot->n_parts,
                                           memory_order_relaxed);
        if (next >= (uint32_t)n_parts)
            return gen;
        if (!atomic_compare_exchange_weak_explicit(
                &pool->claim, &word, word + 1, memory_order_acq_rel,
                memory_order_acquire))
            continue;
        pool_task_fn fn = atomic_load_explicit(&slot->fn,
                                               memory_order_relaxed);
        void *ctx = atomic_load_explicit(&slot->ctx, memory_order_relaxed);
        fn(ctx, (int)next, n_parts);
        atomic_fetch_add_explicit(&slot->done, 1, memory_order_release);
        word = atomic_load_explicit(&pool->claim, memory_order_acquire);
    }
}

static void *worker_main(void *arg)
{
    roj_pool *pool = arg;
    uint32_t seen = (uint32_t)(atomic_load(&pool->claim) >> 32);

    while (!atomic_load_explicit(&pool->stop, memory_order_relaxed)) {
        uint64_t word = atomic_load_explicit(&pool->claim,
                                             memory_order_acquire);
        if ((uint32_t)(word >> 32) != seen) {
            seen = run_parts(pool);
            continue;
        }
        /* Nothing new: spin a little, then sleep until pool_run wakes. */
        int spins = 0;
        while ((uint32_t)(atomic_load_explicit(&pool->claim,
                                               memory_order_acquire) >> 32) ==
                   seen &&
               !atomic_load_explicit(&pool->stop, memory_order_relaxed) &&
               ++spins < POOL_SPIN_LIMIT)
            cpu_relax();
        if (spins < POOL_SPIN_LIMIT)
            continue;
        pthread_mutex_lock(&pool->lock);
        pool->sleepers++;
        while ((uint32_t)(atomic_load(&pool->claim) >> 32) == seen &&
               !atomic_load(&pool->stop))
            pthread_cond_wait(&pool->wake, &pool->lock);
        pool->sleepers--;
        pthread_mutex_unlock(&pool->lock);
    }
    return NULL;
}

roj_status pool_create(int n_threads, roj_pool **out)
{
    *out = NULL;
    if (n_threads < 1 || n_threads > 256)
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "thread count %d is out of range (1 to 256)",
                         n_threads);
    roj_pool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return roj_error(ROJ_ERR_NOMEM, "out of memory for thread pool");
    pool->n_threads = 1;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->threads = calloc((size_t)n_threads, sizeof *pool->threads);
    if (!pool->threads) {
        pool_destroy(pool);
        return roj_error(ROJ_ERR_NOMEM, "out of memory for thread pool");
    }
    for (int i = 1; i < n_threads; i++) {
        if (pthread_create(&pool->threads[i], NULL, worker_main, pool) != 0) {
            pool_destroy(pool);
            return roj_error(ROJ_ERR_NOMEM, "cannot start worker thread %d",
                             i);
        }
        pool->n_threads = i + 1;
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
    const int n_parts = pool->n_threads;
    if (n_parts == 1) {
        fn(ctx, 0, 1);
        return;
    }

    /* Publish the task in the next generation's slot, then open it. */
    uint64_t word = atomic_load_explicit(&pool->claim, memory_order_relaxed);
    uint32_t gen = (uint32_t)(word >> 32) + 1;
    pool_slot *slot = &pool->slots[gen & 1];
    atomic_store_explicit(&slot->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&slot->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&slot->n_parts, n_parts, memory_order_relaxed);
    atomic_store_explicit(&slot->done, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->claim, (uint64_t)gen << 32,
                          memory_order_release);

    pthread_mutex_lock(&pool->lock);
    if (pool->sleepers > 0)
        pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);

    run_parts(pool);

    /* Wait for the parts other threads claimed. */
    for (int spins = 0;
         atomic_load_explicit(&slot->done, memory_order_acquire) < n_parts;
         spins++) {
        if (spins < 1000)
            cpu_relax();
        else
            sched_yield();
    }
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
