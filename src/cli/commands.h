/* Entry points of the roj subcommands. Each returns the process exit
 * status: 0 on success, 1 on a runtime failure, 2 on a usage error. */
#ifndef ROJ_CLI_COMMANDS_H
#define ROJ_CLI_COMMANDS_H

#include <stdbool.h>
#include <stdint.h>

int cmd_inspect(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_models(int argc, char **argv);

/* Shows the progress of a model transfer on stderr for files of 1 MiB
 * or more: an nmodels_progress_fn (run/nats_models.h) whose ctx is a
 * cli_progress (cli/cli_util.h). */
void cli_models_progress(void *ctx, const char *path, uint64_t done,
                         uint64_t total);

/* Splits a LoRA argument "FILE[:SCALE]" into a new string *path (the
 * caller frees it) and *scale (1 without a SCALE). The text after the
 * last colon is a SCALE only when it is a whole finite number. Returns
 * false for an empty FILE or when out of memory. */
bool cli_split_lora_arg(const char *arg, char **path, float *scale);

#endif
