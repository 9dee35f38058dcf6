/*
 * Running a roj-trained specialist: read the roj.* metadata of its GGUF
 * (task, labels or slots, prompt template, label tokens) and run one
 * input through the inference engine, in the prompt format `roj train`
 * used.
 * Used by `roj eval` and by the swarm's skills.
 *
 * Ownership: spec_info owns copies of its strings (spec_info_free) and
 * may outlive the model. Threading: a spec_info is read-only;
 * each thread needs its own roj_context.
 */
#ifndef ROJ_TRAIN_SPECIALIST_H
#define ROJ_TRAIN_SPECIALIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/constrain.h"
#include "roj/context.h"
#include "roj/model.h"
#include "train/data.h"

typedef struct spec_info {
    train_task task;
    bool has_meta;              /* the file carries roj.task */
    char *template_text;        /* roj.prompt_template or the default */
    char **labels;              /* roj.labels / roj.slots (copies) */
    size_t n_labels;
    int32_t *label_tokens;      /* roj.label_tokens or NULL (malloc'd) */
    char *none_word;            /* roj.none_word or "none" */
    char *context_field;        /* roj.context_field or NULL */
} spec_info;

/* Reads the roj.* keys. A model without them gets the task's defaults
 * and no labels; task_hint (-1: none) sets the task then. */
roj_status spec_info_read(const roj_model *model, int task_hint,
                          spec_info *out);
void spec_info_free(spec_info *info);

/* Reads the same keys from the JSON object a LoRA adapter made by roj
 * train carries (roj.adapter.extra_json in the adapter file at path).
 * The adapter's labels are scored as text: it has no label tokens. */
roj_status spec_info_read_adapter(const char *path, spec_info *out);

/* Token ids of the filled prompt (BOS first when the vocab adds one);
 * the caller frees *ids. slot is used by extract templates, context
 * (may be NULL) by templates with {context}. */
roj_status spec_prompt(const roj_model *model, const spec_info *info,
                       const char *text, size_t len, const char *slot,
                       const char *context, roj_token **ids, size_t *n);

/* Classifies several texts at once on sequences 0 .. n-1 of ctx (which
 * needs n_seq >= n). For each text writes the chosen label index to
 * best[i] and, when probs is not NULL, the softmax over labels to
 * probs[i * n_labels ...]. A model with label tokens needs one forward pass;
 * otherwise each label's tokens are scored (roj_choose). */
roj_status spec_classify(roj_context *ctx, const spec_info *info,
                         const char *const *texts, const size_t *lens,
                         const char *const *contexts, size_t n,
                         int32_t *best, float *probs);

/* What sequence 0 of a context holds, so that consecutive prompts with a
 * common beginning (one text asked for several slots) evaluate only the
 * tokens after it. Zero-initialize; free with spec_cache_free. */
typedef struct spec_cache {
    roj_token *ids;
    size_t n, cap;
} spec_cache;

void spec_cache_free(spec_cache *c);

/* Extracts the span of slot from text (sequence 0 of ctx); result as
 * roj_extract_span gives it, the caller frees result->text. contexts
 * above and context here may be NULL. cache (may be NULL) must describe
 * sequence 0 of ctx, which nothing else changes between calls. */
roj_status spec_extract(roj_context *ctx, const spec_info *info,
                        const roj_pieces *pieces, const char *text,
                        size_t len, const char *slot, const char *context,
                        spec_cache *cache, roj_span_result *result);

#endif
