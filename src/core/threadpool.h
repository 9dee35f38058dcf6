/*
 * A fixed pool of worker threads for data-parallel loops.
 *
 * pool_run() calls fn(ctx, part, n) once for every part in [0, n), where
 * n is the pool size, and returns when all calls are done. A part is not
 * tied to a thread: the caller runs parts itself until none is left, so a
 * worker that is not scheduled in time does not hold up the run. Two
 * calls with the same part never overlap, so per-part scratch indexed by
 * part is safe. Workers spin briefly between runs, then sleep.
 * A pool is driven by one thread at a time.
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
