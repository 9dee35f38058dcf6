/*
 * roj models: copies a swarm's model and adapter files into its models
 * bucket on NATS JetStream (push) and lists what the bucket stores
 * (list). Agents fetch missing files from there (src/run/nats_models.h).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "run/nats_models.h"
#include "swarm/swarm.h"

/* Files smaller than this transfer without a progress bar, in bytes. */
#define PROGRESS_MIN_BYTES (1u << 20)

void cli_models_progress(void *ctx, const char *path, uint64_t done,
                         uint64_t total)
{
    /* The bar's label, "NAME SIZE"; one transfer runs at a time. */
    static char label[96];
    cli_progress *p = ctx;
    if (total < PROGRESS_MIN_BYTES)
        return;
    if (done == 0) {
        const char *slash = strrchr(path, '/');
        char size[32];
        cli_format_size(total, size, sizeof size);
        snprintf(label, sizeof label, "%.60s %s", slash ? slash + 1 : path,
                 size);
        cli_progress_start(p, label, total, true);
    } else if (done < total) {
        cli_progress_update(p, done);
    } else {
        cli_progress_finish(p);
    }
}

/* Loads the swarm file with full validation, printing its problems. */
static bool swarm_check(const char *path)
{
    swarm_file *swarm = NULL;
    char *problems = NULL;
    roj_status st = swarm_load(path, &swarm, &problems);
    if (st != ROJ_OK) {
        const char *text = problems ? problems : roj_last_error();
        fprintf(stderr, "%s", text);
        if (text[0] && text[strlen(text) - 1] != '\n')
            fputc('\n', stderr);
        fprintf(stderr, "roj models push: %s has problems; fix them and "
                "push again\n", path);
    }
    free(problems);
    swarm_free(swarm);
    return st == ROJ_OK;
}

/* Pushes every file of list; prints one line per file on stdout. */
static int files_push(const swarm_file_list *list, const nmodels_bucket *b)
{
    cli_progress progress = {0};
    for (size_t i = 0; i < list->n_files; i++) {
        const swarm_named_file *f = &list->files[i];
        nmodels_pushed p;
        if (nmodels_push(b, f->path, cli_models_progress, &progress, &p) !=
            ROJ_OK)
            return cli_runtime_error("models push", f->field);
        char size[32], reused[64] = "";
        cli_format_size(p.size, size, sizeof size);
        if (p.reused > 0)
            snprintf(reused, sizeof reused, ", %llu kept from an earlier "
                     "push", (unsigned long long)p.reused);
        printf("%s  %s  %s  %s (%s, %llu chunks%s)\n", p.sha256, f->field,
               f->path, p.skipped ? "already stored" : "pushed", size,
               (unsigned long long)p.chunks, reused);
        if (f->sha256 == NULL)
            fprintf(stderr, "roj models push: %s has no sha256 in the "
                    "swarm file; add sha256: %s so that agents can fetch "
                    "it\n", f->field, p.sha256);
    }
    return CLI_EXIT_OK;
}

/* Prints on SIGINT or SIGTERM that the chunks stored so far are kept, so
 * the same command continues from them, then exits. Each chunk key
 * contains a whole chunk or nothing. Only async-signal-safe calls. */
static void on_push_interrupt(int sig)
{
    static const char msg[] =
        "\nroj models push: interrupted; the chunks stored so far are kept "
        "and the same command sends the rest\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    _exit(128 + sig);
}

static int models_push(int argc, char **argv)
{
    const char *urls = NULL;
    int32_t replicas = 1;
    cli_strings positional = {0};
    natsx_options nats = {0};
    cli_option options[2 + CLI_NATS_AUTH_OPTIONS] = {
        {NULL, "--nats", CLI_STRING, &urls, "URL[,URL...]",
         "NATS servers to connect to (required)"},
        {NULL, "--replicas", CLI_INT, &replicas, "N",
         "copies of the models bucket when this command creates it "
         "(default: 1)"},
    };
    cli_nats_auth_options(&nats, options + 2);
    const cli_command cmd = {
        "models push", "SWARM.yaml --nats URL[,URL...] [options]",
        "Stores every model and LoRA adapter file that the swarm file names\n"
        "in the swarm's models bucket on NATS JetStream, in 256 KiB chunks,\n"
        "so that agents on other machines can fetch them.",
        options, sizeof options / sizeof options[0],
        "Prints one line per file: its sha256, field, path and whether it\n"
        "was pushed or already stored (same sha256 and size). Put the\n"
        "sha256 in the swarm file ({path: FILE, sha256: DIGEST}) so that\n"
        "roj agent fetches the file where it is missing. Exit status: 0 on\n"
        "success, 1 on errors, 2 on bad usage.",
        &positional};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0)
        return rc;
    if (positional.n != 1)
        rc = cli_usage_error("models push", "expected one swarm file, got "
                             "%zu arguments", positional.n);
    else if (!urls)
        rc = cli_usage_error("models push", "--nats URL is required");
    else if (replicas < 1 || replicas > 5)
        rc = cli_usage_error("models push", "--replicas %d: use 1 to 5",
                             replicas);
    if (rc >= 0) {
        cli_free_lists(&cmd);
        return rc;
    }
    roj_log_set(NULL, NULL, ROJ_LOG_WARN);
    struct sigaction sa = {.sa_handler = on_push_interrupt};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    const char *path = positional.items[0];
    swarm_file_list *list = NULL;
    if (!swarm_check(path)) {
        rc = CLI_EXIT_RUNTIME;
    } else if (swarm_files_read(path, &list) != ROJ_OK) {
        rc = cli_runtime_error("models push", path);
    }
    nproto_names names;
    swarm_file stub = {.path = path, .name = list ? list->name : NULL};
    if (rc < 0 && nproto_names_init(&stub, &names) != ROJ_OK)
        rc = cli_runtime_error("models push", path);

    natsx_conn *conn = NULL;
    nmodels_bucket bucket = {0};
    nats.urls = urls;
    if (rc < 0 && natsx_connect(&nats, &conn) != ROJ_OK)
        rc = cli_runtime_error("models push", "cannot connect");
    if (rc < 0 && nmodels_open(conn, &names, replicas, &bucket) != ROJ_OK)
        rc = cli_runtime_error("models push", names.models);
    if (rc < 0)
        rc = files_push(list, &bucket);
    nmodels_close(&bucket);
    natsx_close(conn);
    natsx_library_close(2000);
    swarm_file_list_free(list);
    cli_free_lists(&cmd);
    return rc == CLI_EXIT_OK ? cli_finish_stdout("models push", rc) : rc;
}

/* The swarm's name from --swarm: a readable file's name:, else the
 * argument itself. Returns false after printing an error. */
static bool swarm_name_get(const char *arg, char *buf, size_t size)
{
    snprintf(buf, size, "%s", arg);
    if (access(arg, R_OK) != 0)
        return true;
    swarm_file_list *list = NULL;
    if (swarm_files_read(arg, &list) != ROJ_OK) {
        cli_runtime_error("models list", "--swarm");
        return false;
    }
    bool named = list->name != NULL;
    if (named)
        snprintf(buf, size, "%s", list->name);
    else
        fprintf(stderr, "roj models list: %s has no name:; give the "
                "swarm's name with --swarm NAME\n", arg);
    swarm_file_list_free(list);
    return named;
}

static int models_list(int argc, char **argv)
{
    const char *urls = NULL, *swarm_arg = NULL;
    natsx_options nats = {0};
    cli_option options[2 + CLI_NATS_AUTH_OPTIONS] = {
        {NULL, "--nats", CLI_STRING, &urls, "URL[,URL...]",
         "NATS servers to connect to (required)"},
        {NULL, "--swarm", CLI_STRING, &swarm_arg, "NAME|FILE",
         "the swarm's name, or its swarm file to read the name from "
         "(required)"},
    };
    cli_nats_auth_options(&nats, options + 2);
    const cli_command cmd = {
        "models list", "--nats URL[,URL...] --swarm NAME|FILE [options]",
        "Lists the files stored in the swarm's models bucket: sha256, size,\n"
        "chunks and the file name they were pushed from.",
        options, sizeof options / sizeof options[0], NULL, NULL};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0)
        return rc;
    if (!urls)
        return cli_usage_error("models list", "--nats URL is required");
    if (!swarm_arg)
        return cli_usage_error("models list", "--swarm NAME or FILE is "
                               "required");
    char name[256];
    if (!swarm_name_get(swarm_arg, name, sizeof name))
        return CLI_EXIT_RUNTIME;
    swarm_file stub = {.path = swarm_arg, .name = name};
    nproto_names names;
    if (nproto_names_init(&stub, &names) != ROJ_OK)
        return cli_runtime_error("models list", "--swarm");

    roj_log_set(NULL, NULL, ROJ_LOG_WARN);
    nats.urls = urls;
    natsx_conn *conn = NULL;
    nmodels_bucket bucket = {0};
    nmodels_manifest *list = NULL;
    size_t n = 0;
    if (natsx_connect(&nats, &conn) != ROJ_OK)
        rc = cli_runtime_error("models list", "cannot connect");
    else if (nmodels_bind(conn, &names, &bucket) != ROJ_OK ||
             nmodels_list(&bucket, &list, &n) != ROJ_OK)
        rc = cli_runtime_error("models list", names.models);
    if (rc < 0) {
        printf("models of swarm %s: %zu\n", names.swarm, n);
        for (size_t i = 0; i < n; i++) {
            char size[32];
            cli_format_size(list[i].size, size, sizeof size);
            printf("  %s  %10s  %6llu chunks  %s\n", list[i].sha256, size,
                   (unsigned long long)list[i].chunks, list[i].name);
        }
        rc = cli_finish_stdout("models list", CLI_EXIT_OK);
    }
    free(list);
    nmodels_close(&bucket);
    natsx_close(conn);
    natsx_library_close(2000);
    return rc;
}

int cmd_models(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "push"))
        return models_push(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "list"))
        return models_list(argc - 1, argv + 1);
    bool help = argc >= 2 && (!strcmp(argv[1], "--help") ||
                              !strcmp(argv[1], "-h"));
    fprintf(help ? stdout : stderr,
            "usage: roj models push SWARM.yaml --nats URL [options]\n"
            "       roj models list --nats URL --swarm NAME|FILE "
            "[options]\n\n"
            "  push  store the swarm's model and adapter files on NATS\n"
            "  list  list the files stored for a swarm\n\n"
            "Run 'roj models push --help' for the options.\n");
    if (help)
        return CLI_EXIT_OK;
    if (argc >= 2)
        fprintf(stderr, "roj models: unknown subcommand '%s'\n", argv[1]);
    return CLI_EXIT_USAGE;
}
