/* Entry points of the roj subcommands. Each returns the process exit
 * status: 0 on success, 1 on a runtime failure, 2 on a usage error. */
#ifndef ROJ_CLI_COMMANDS_H
#define ROJ_CLI_COMMANDS_H

#include <stdbool.h>

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

/* Splits a LoRA argument "FILE[:SCALE]" into a new string *path (the
 * caller frees it) and *scale (1 without a SCALE). The text after the
 * last colon is a SCALE only when it is a whole finite number. Returns
 * false for an empty FILE or when out of memory. */
bool cli_split_lora_arg(const char *arg, char **path, float *scale);

#endif
