/*
 * A fixed pool of worker threads for data-parallel loops.
 *
 * pool_run() calls fn(ctx, i, n) once for every thread index i in [0, n),
 * where index 0 runs on the calling thread, and returns when all calls are
 * done. Workers spin briefly between runs, then sleep on a condition
 * variable, so back-to-back runs (one per matrix product) cost a few
 * microseconds. A pool is driven by one thread at a time.
 */
#ifndef ROJ_CORE_THREADPOOL_H
#define ROJ_CORE_THREADPOOL_H

#include "roj/roj.h"

typedef struct roj_pool roj_pool;

typedef void (*pool_task_fn)(void *ctx, int thread_index, int n_threads);

/* Creates a pool of n_threads (1 .. 256) including the caller. */
roj_status pool_create(int n_threads, roj_pool **out);
void pool_destroy(roj_pool *pool);
int pool_size(const roj_pool *pool);
void pool_run(roj_pool *pool, pool_task_fn fn, void *ctx);

/* Splits [0, n) into n_parts nearly equal ranges aligned to `align`
 * (except at the end) and returns range part as [*begin, *end). */
void pool_split(int64_t n, int n_parts, int part, int64_t align,
                int64_t *begin, int64_t *end);

#endif
