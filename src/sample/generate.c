/* Generation loop: prompt evaluation, then sample, stream and decode one
 * token at a time. */
#include "roj/sampler.h"

#include <stdlib.h>
#include <time.h>

#include "core/error.h"

/* Largest chunk tried first; roj_context_params.n_batch defaults to it. */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Rejects what roj_decode would reject in a later chunk, so a failing
 * call leaves the sequence as it was. */
static roj_status check_tokens(roj_context *ctx, int32_t seq,
                               const roj_token *tokens, size_t n)
{
    int32_t n_vocab = roj_model_n_vocab(roj_context_model(ctx));
    int32_t len = roj_seq_len(ctx, seq);

    if (seq < 0 || seq >= roj_context_n_seq(ctx))
        return roj_error(ROJ_ERR_INVALID_ARG,
                         "decode: sequence %d is outside 0 to %d", seq,
                         roj_context_n_seq(ctx) - 1);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return roj_error(ROJ_ERR_INVALID_ARG,
                             "decode: token %d at index %zu is outside the "
                             "vocabulary (0 to %d)", tokens[i], i,
                             n_vocab - 1);
    if ((size_t)len + n > (size_t)roj_context_n_ctx(ctx))
        return roj_error(ROJ_ERR_CONTEXT_FULL,
                         "decode: %zu tokens do not fit: sequence %d holds "
                         "%d of %d positions", n, seq, len,
                         roj_context_n_ctx(ctx));
    return ROJ_OK;
}

roj_status roj_decode_tokens(roj_context *ctx, int32_t seq,
                             const roj_token *tokens, size_t n)
{
    int32_t *seqs = NULL;
    size_t chunk = (size_t)roj_context_n_batch(ctx);
    size_t done = 0;
    roj_status st;

    if (n == 0)
        return ROJ_OK;
    if (chunk > n)
        chunk = n;
    st = check_tokens(ctx, seq, tokens, n);
    if (st != ROJ_OK)
        return st;
    seqs = malloc(chunk * sizeof *seqs);
    if (!seqs)
        return roj_error(ROJ_ERR_NOMEM, "decode: out of memory");
    for (size_t i = 0; i < chunk; i++)
        seqs[i] = seq;

    while (done < n) {
        size_t count = n - done < chunk ? n - done : chunk;
        roj_batch batch = {
            .n_tokens = (int32_t)count,
            .tokens = tokens + done,
            .seq = seqs,
            .logits = NULL,
        };
        st = roj_decode(ctx, &batch);
        if (st != ROJ_OK)
            break;
        done += count;
    }
    free(seqs);
    return st;
}

roj_status roj_generate(roj_context *ctx, int32_t seq,
                        const roj_token *prompt, size_t n_prompt,
                        roj_sampler *sampler, roj_streamer *streamer,
                        roj_generate_result *result)
{
    roj_generate_result r = {.last_token = ROJ_TOKEN_NULL};
    int32_t n_ctx = roj_context_n_ctx(ctx);
    double t0 = now_ms(), t1;
    roj_status st = ROJ_OK;

    /* Prompt: evaluate it and let its tokens count for the penalties, as
     * llama.cpp's command-line program does. */
    st = roj_decode_tokens(ctx, seq, prompt, n_prompt);
    if (st != ROJ_OK)
        goto done;
    for (size_t i = 0; i < n_prompt; i++)
        roj_sampler_accept(sampler, prompt[i]);
    r.n_prompt = (int32_t)n_prompt;
    t1 = now_ms();
    r.prompt_ms = t1 - t0;

    for (;;) {
        const float *logits = roj_get_logits(ctx, -1);
        roj_token token = ROJ_TOKEN_NULL;
        roj_stop_reason reason = ROJ_STOP_NONE;

        if (!logits) {
            st = roj_error(ROJ_ERR_INVALID_ARG,
                           "generate: no logits; evaluate a prompt first");
            goto done;
        }
        st = roj_sampler_sample(sampler, logits, &token, NULL);
        if (st != ROJ_OK)
            goto done;
        roj_sampler_accept(sampler, token);
        r.n_generated++;
        r.last_token = token;
        r.last_evaluated = false;

        st = roj_streamer_push(streamer, token, &reason);
        if (st != ROJ_OK)
            goto done;
        if (reason != ROJ_STOP_NONE) {
            r.reason = reason;
            break;
        }
        if (roj_seq_len(ctx, seq) >= n_ctx) {
            r.reason = ROJ_STOP_CONTEXT_FULL;
            break;
        }
        st = roj_decode_tokens(ctx, seq, &token, 1);
        if (st != ROJ_OK)
            goto done;
        r.last_evaluated = true;
    }
    st = roj_streamer_finish(streamer);
    r.generate_ms = now_ms() - t1;

done:
    if (result)
        *result = r;
    return st;
}
