/* Entry points of the roj subcommands. Each returns the process exit
 * status: 0 on success, 1 on a runtime failure, 2 on a usage error. */
#ifndef ROJ_CLI_COMMANDS_H
#define ROJ_CLI_COMMANDS_H

int cmd_inspect(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_demo(int argc, char **argv);

#endif
