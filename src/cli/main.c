/* roj command-line program: dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "roj/roj.h"

/* Commands are linked in from their own files; a command whose file is not
 * part of this build is reported instead of failing the link. */
#pragma weak cmd_inspect
#pragma weak cmd_tokenize
#pragma weak cmd_generate
#pragma weak cmd_chat
#pragma weak cmd_bench
#pragma weak cmd_quantize
#pragma weak cmd_demo
#pragma weak cmd_merge
#pragma weak cmd_train
#pragma weak cmd_eval
#pragma weak cmd_run
#pragma weak cmd_agent
#pragma weak cmd_status
#pragma weak cmd_models

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"demo", cmd_demo, "run the built-in demonstration"},
    {"run", cmd_run, "run a swarm's pipeline over a file of jobs"},
    {"agent", cmd_agent, "serve a swarm's skills on NATS JetStream"},
    {"status", cmd_status, "show a swarm's agents and runs on NATS"},
    {"models", cmd_models, "push a swarm's model files to NATS, list them"},
    {"generate", cmd_generate, "generate text from a prompt"},
    {"chat", cmd_chat, "chat with a model interactively"},
    {"tokenize", cmd_tokenize, "print the token ids of a text"},
    {"inspect", cmd_inspect, "show a GGUF file's metadata and tensors"},
    {"quantize", cmd_quantize, "convert a model to another tensor type"},
    {"merge", cmd_merge, "merge LoRA adapters into a model"},
    {"train", cmd_train, "train a specialist model on labeled data"},
    {"eval", cmd_eval, "measure a specialist on labeled data"},
    {"bench", cmd_bench, "measure prompt and generation speed"},
};

static void print_usage(FILE *out)
{
    fprintf(out, "usage: roj COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'roj COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        print_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("roj %s\n", ROJ_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        if (!commands[i].run) {
            fprintf(stderr, "roj: command '%s' is not part of this build\n",
                    argv[1]);
            return 1;
        }
        return commands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "roj: unknown command '%s'\n\n", argv[1]);
    print_usage(stderr);
    return 2;
}
