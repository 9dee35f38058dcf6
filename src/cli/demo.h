/*
 * The steps of `roj demo` (cmd_demo.c): a helpdesk swarm built from
 * tickets that the demo generates itself (demo/tickets.h).
 *
 *   demo_data.c   the ticket files: training set, test set, swarm input
 *   demo_train.c  three specialists trained with the library of roj train
 *   demo_swarm.c  the swarm file over them, written and loaded
 *   demo_score.c  the run's output scored against the test labels
 *
 * Every file lives in the cache folder and is reused by later runs
 * unless --fresh is given. The older engine demo (synthetic model,
 * quantize, generate) is demo_engine.c, reached as `roj demo --engine`.
 * Everything here is for the command-line program only: not
 * thread-safe, messages on stderr.
 */
#ifndef ROJ_CLI_DEMO_H
#define ROJ_CLI_DEMO_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/roj.h"
#include "swarm/swarm.h"

/* What the user chose on the command line. */
typedef struct demo_config {
    const char *cache_dir;
    uint64_t seed;          /* ticket generator seed of the training set;
                               the test set uses seed + 1 */
    int32_t n_train, n_test; /* tickets */
    int64_t steps;          /* optimizer steps of each specialist; 0: the
                               demo's per-specialist defaults */
    int32_t n_threads;      /* training threads; 0: one per core, up to 8 */
    bool fresh;             /* regenerate and retrain even when cached */
    volatile int *stop;     /* set by SIGINT and SIGTERM */
} demo_config;

/* Paths of the files one demo run uses, all inside the cache folder. */
typedef struct demo_paths {
    char train[PATH_MAX];   /* labeled training tickets, JSONL */
    char test[PATH_MAX];    /* labeled test tickets: the gold file */
    char input[PATH_MAX];   /* the test texts without labels */
    char models[PATH_MAX];  /* folder of the trained GGUF files */
    char category[PATH_MAX], urgency[PATH_MAX], fields[PATH_MAX];
    char swarm[PATH_MAX];   /* the swarm file, YAML */
    char output[PATH_MAX];  /* one result line per input ticket */
    char journal[PATH_MAX]; /* the run's journal, SQLite */
} demo_paths;

/* Name of the demo's pipeline in the swarm file. */
#define DEMO_PIPELINE "triage"

/* Creates path and its parents (mode 0755); false with errno set on
 * failure. */
bool demo_make_dirs(const char *path);

/* Writes ${XDG_CACHE_HOME:-$HOME/.cache}/roj/demo into buf (cap bytes)
 * and returns buf. */
const char *demo_default_cache_dir(char *buf, size_t cap);

/* Runs the engine demo with the arguments after `roj demo`, --engine
 * already removed; returns the exit status. */
int demo_engine_main(int argc, char **argv);

/* Fills the data paths of p and writes the three ticket files unless
 * they exist (or cfg->fresh). Returns ROJ_ERR_IO naming the file on
 * failure. */
roj_status demo_data_prepare(const demo_config *cfg, demo_paths *p);

/* Trains the category and urgency classifiers and the order number and
 * product extractor from p->train, unless a model trained on the same
 * data with the same options is cached; fills p->category, p->urgency
 * and p->fields. Progress goes to stderr. ROJ_ERR_ABORTED when
 * cfg->stop was set (a checkpoint is kept and the next run resumes). */
roj_status demo_train_all(const demo_config *cfg, demo_paths *p);

/* Writes the swarm file over the three models to p->swarm (replacing
 * any earlier one) and loads it into *out, a new swarm_file the caller
 * frees with swarm_free. On failure the message lists the loader's
 * problems. */
roj_status demo_swarm_write(const demo_config *cfg, demo_paths *p,
                            swarm_file **out);

/* Per-field results of a run against the gold labels. */
typedef struct demo_score {
    size_t n_gold;          /* tickets in the gold file */
    size_t n_output;        /* output lines read */
    size_t n_failed;        /* output lines with "ok": false */
    size_t n_missing;       /* gold tickets without an output line */
    size_t category, urgency, order, product; /* correct results */
    size_t n_with_order, order_found;     /* gold has an order number */
    size_t n_with_product, product_found; /* gold names a product */
} demo_score;

/* Reads the run's output (JSONL: {"id", "ok", "result": {category,
 * urgency, order_number, product}}) and the labeled gold file, and
 * counts exact matches per field. An order number or product that the
 * gold file lacks counts as right when the output has "", null or the
 * none word. ROJ_ERR_IO or ROJ_ERR_FORMAT naming the file and line. */
roj_status demo_score_run(const char *output_path, const char *gold_path,
                          demo_score *score);

/* Prints the score as a table on stdout. */
void demo_score_print(const demo_score *score);

#endif
