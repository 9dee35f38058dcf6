/* Sampler internals shared with the tests: the candidate list the filters
 * work on. */
#ifndef ROJ_SAMPLE_SAMPLER_INTERNAL_H
#define ROJ_SAMPLE_SAMPLER_INTERNAL_H

#include "roj/sampler.h"

/* A token still in the running, with its current logit. */
typedef struct sample_candidate {
    roj_token id;
    float logit;
} sample_candidate;

/*
 * Runs the stages before the draw (validation, penalties, top-k, top-p,
 * min-p, temperature) on logits and points *cands at the survivors, which
 * the sampler owns until its next call; *n is their count. With
 * temperature <= 0 the single greedy choice survives. Top-k and top-p
 * leave the list sorted by logit (descending, ties by id); otherwise it is
 * in id order.
 */
roj_status sampler_filter(roj_sampler *sampler, const float *logits,
                          const sample_candidate **cands, int32_t *n);

#endif
