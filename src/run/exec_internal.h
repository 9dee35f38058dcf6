/*
 * Internals of the skill executor (exec.h), shared by exec.c (engine,
 * models, contexts, batching), exec_prompt.c (fields and prompt tokens)
 * and exec_kinds.c (one runner per output kind).
 */
#ifndef ROJ_RUN_EXEC_INTERNAL_H
#define ROJ_RUN_EXEC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/constrain.h"
#include "roj/context.h"
#include "roj/model.h"
#include "run/exec.h"
#include "train/specialist.h"

/* Sequences of each context: the most tasks one forward pass takes. */
#define EXEC_N_SEQ 16
/* Tokens per roj_decode call, at least; raised to n_ctx when larger, so
 * any prompt that fits the context fits one call. */
#define EXEC_MIN_BATCH 2048

/* A model of the swarm file, opened on first use. */
typedef struct exec_model {
    roj_model *model;     /* NULL until opened */
    roj_pieces *pieces;   /* piece table of its vocab */
    spec_info info;       /* its roj.* metadata, or the defaults */
} exec_model;

/* One inference context per distinct (model, adapter) pair. */
typedef struct exec_slot {
    size_t model;           /* index into swarm_file.models */
    const char *lora_path;  /* borrowed from the swarm file; NULL: none */
    roj_lora *lora;
    spec_info lora_info;    /* the adapter's roj.* metadata */
    bool has_lora_info;
    roj_context *ctx;       /* NULL until first use */
    spec_cache cache;       /* what sequence 0 holds, for spec_extract */
} exec_slot;

struct exec_engine {
    const swarm_file *swarm;
    int32_t n_threads;
    exec_model *models;     /* (n_models) */
    exec_slot *slots;       /* (n_slots) */
    size_t n_slots;
    size_t *skill_slot;     /* (n_skills) slot index of each skill */
};

/* One task of a batch on its way through exec_run. */
typedef struct exec_item {
    const exec_task *task;
    exec_result *result;
    uint64_t seed;          /* the skill's seed mixed with the task's */
    char **owned;           /* (n_owned) repaired copies of values */
    size_t n_owned;
    const char *text;       /* the text field, or the first field */
    size_t text_len;
    const char *context;    /* the context field of specialists, or NULL */
    roj_token *ids;         /* (n_ids) the prompt */
    size_t n_ids;
    bool done;              /* result holds its outcome already */
} exec_item;

/* What a skill's run needs besides its items. */
typedef struct exec_call {
    exec_engine *engine;
    const swarm_skill *skill;
    exec_model *model;
    exec_slot *slot;
    const spec_info *info;  /* the specialist metadata the skill follows */
    int32_t n_ctx;
    int32_t reserve;        /* positions the output needs after the prompt */
} exec_call;

/* Whether choice skills of call run spec_classify and span skills
 * spec_extract: a prompt taken from a roj-trained model. */
bool exec_uses_specialist(const exec_call *call);

/* Returns the slot a span skill extracts: its output's slot, else the
 * first slot of the specialist, else NULL. */
const char *exec_span_slot(const exec_call *call);

/* Fills item from task: the skill's field values (invalid UTF-8 replaced
 * by U+FFFD), the prompt tokens and the length check against the
 * context. A bad task gets its error in item->result and item->done. */
roj_status exec_item_prepare(const exec_call *call, const exec_task *task,
                             exec_result *result, exec_item *item);
void exec_item_free(exec_item *item);

/* Sets *out to a copy of s with each invalid UTF-8 sequence replaced by
 * U+FFFD, or to NULL when s is valid already. The caller frees *out. */
roj_status exec_utf8_repair(const char *s, char **out);

/* Records a failure of item: the message (prefixed with the skill) and
 * whether retrying can help, from st. Returns st when the engine cannot
 * go on (out of memory, I/O), else ROJ_OK. */
roj_status exec_item_fail(const exec_call *call, exec_item *item,
                          roj_status st, const char *message);

/* Stores json (malloc'd, taken over) as item's result. */
void exec_item_succeed(exec_item *item, char *json);

/* The runners of the output kinds, over the items that are not done.
 * Each returns ROJ_OK unless the engine cannot go on. */
roj_status exec_run_classify(const exec_call *call, exec_item *items,
                             size_t n);
roj_status exec_run_choice(const exec_call *call, exec_item *item);
roj_status exec_run_span(const exec_call *call, exec_item *item);
roj_status exec_run_json(const exec_call *call, exec_item *item);
roj_status exec_run_text(const exec_call *call, exec_item *item);

/* Result JSON of a choice among the skill's labels, probs in their
 * order; NULL when out of memory. */
char *exec_choice_json(const swarm_output *out, size_t best,
                       const float *probs);

/* Picks a label: argmax (first of equals) at temperature 0, else a draw
 * from probs^(1 / temperature) seeded by seed. */
size_t exec_pick_label(const float *probs, size_t n, float temperature,
                       uint64_t seed);

/* Mixes two seeds into one (splitmix64). */
uint64_t exec_mix_seed(uint64_t a, uint64_t b);

#endif
