/*
 * roj status: shows the live agents of a swarm on NATS JetStream and the
 * status of its runs, read from the agents and meta buckets that
 * src/run/nats_proto.h describes. It only reads: a bucket that does not
 * exist is reported, never created.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "run/nats_proto.h"

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads the top-level "name:" of a swarm file into buf, without
 * loading its models, which need not exist where roj status runs.
 * NOTE: this is a line scan, not a YAML parse, so a name inside a flow
 * mapping or an indented one is not found. */
static bool swarm_name_read(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, "name:", 5) != 0)
            continue;
        char *v = line + 5;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t n = strcspn(v, "#\r\n");
        while (n > 0 && isspace((unsigned char)v[n - 1]))
            n--;
        if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
            v++;
            n -= 2;
        }
        if (n > 0 && n < size) {
            memcpy(buf, v, n);
            buf[n] = '\0';
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* Reads every key of bucket (prefix: keys starting with it) as JSON
 * into the array out, and sets *exists to whether the bucket exists.
 * Returns false after printing an error. */
static bool bucket_read(natsx_conn *c, const char *bucket,
                        const char *prefix, cJSON *out, bool *exists)
{
    kvStore *kv = NULL;
    natsStatus s = js_KeyValue(&kv, natsx_jetstream(c), bucket);
    *exists = s != NATS_NOT_FOUND;
    if (s == NATS_NOT_FOUND)
        return true;
    if (s != NATS_OK) {
        fprintf(stderr, "roj status: cannot open bucket %s: %s\n", bucket,
                natsStatus_GetText(s));
        return false;
    }
    kvKeysList keys = {0};
    kvWatchOptions wo;
    kvWatchOptions_Init(&wo);
    wo.Timeout = 5000;
    s = kvStore_Keys(&keys, kv, &wo);
    if (s != NATS_OK && s != NATS_NOT_FOUND) {
        fprintf(stderr, "roj status: cannot list bucket %s: %s\n", bucket,
                natsStatus_GetText(s));
        kvStore_Destroy(kv);
        return false;
    }
    for (int i = 0; i < keys.Count; i++) {
        if (prefix && strncmp(keys.Keys[i], prefix, strlen(prefix)) != 0)
            continue;
        kvEntry *e = NULL;
        if (kvStore_Get(&e, kv, keys.Keys[i]) != NATS_OK)
            continue; /* expired or deleted since the listing */
        cJSON *doc = cJSON_ParseWithLength(kvEntry_ValueString(e),
                                           (size_t)kvEntry_ValueLen(e));
        if (cJSON_IsObject(doc))
            cJSON_AddItemToArray(out, doc);
        else
            cJSON_Delete(doc);
        kvEntry_Destroy(e);
    }
    kvKeysList_Destroy(&keys);
    kvStore_Destroy(kv);
    return true;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

/* Adds to every record the field age_key: the seconds since the Unix
 * time in milliseconds of its field ms_key. */
static void records_add_age(cJSON *records, const char *ms_key,
                            const char *age_key)
{
    int64_t now = wall_ms();
    cJSON *r;
    cJSON_ArrayForEach(r, records) {
        double age = ((double)now - num(r, ms_key)) / 1e3;
        cJSON_AddNumberToObject(r, age_key, age < 0 ? 0 : age);
    }
}

static void agents_print(const char *swarm, const cJSON *agents)
{
    printf("agents of swarm %s: %d\n", swarm, cJSON_GetArraySize(agents));
    if (cJSON_GetArraySize(agents) > 0)
        printf("  %-24s %-16s %7s %5s %7s %7s %7s %5s %8s %-8s %s\n",
               "NAME", "HOST", "PID", "BUSY", "DONE", "FAILED", "REDELIV",
               "AGE_S", "VERSION", "SWARM", "SKILLS");
    const cJSON *a;
    cJSON_ArrayForEach(a, agents) {
        printf("  %-24s %-16s %7.0f %5.0f %7.0f %7.0f %7.0f %5.1f %8s "
               "%-8.8s", str(a, "name"), str(a, "host"), num(a, "pid"),
               num(a, "busy"), num(a, "done"), num(a, "failed"),
               num(a, "redelivered"), num(a, "heartbeat_age_s"),
               str(a, "version"), str(a, "swarm_sha256"));
        const cJSON *skills = cJSON_GetObjectItemCaseSensitive(a, "skills");
        const cJSON *s;
        int i = 0;
        cJSON_ArrayForEach(s, skills)
            if (cJSON_IsString(s))
                printf("%s%s", i++ ? "," : " ", s->valuestring);
        putchar('\n');
    }
}

/* A run whose record is older than this has lost its submitter, because
 * roj run rewrites it every second. */
#define RUN_STALE_S 15.0

static void runs_print(const cJSON *runs)
{
    printf("runs: %d\n", cJSON_GetArraySize(runs));
    const cJSON *r;
    cJSON_ArrayForEach(r, runs) {
        printf("  %s %s: %.0f/%.0f jobs done, %.0f failed",
               str(r, "run"), str(r, "pipeline"), num(r, "jobs_done"),
               num(r, "jobs_total"), num(r, "jobs_failed"));
        const cJSON *pending = cJSON_GetObjectItemCaseSensitive(r,
                                                                "pending");
        const cJSON *p;
        int i = 0;
        cJSON_ArrayForEach(p, pending)
            if (cJSON_IsNumber(p))
                printf("%s%s %.0f", i++ ? ", " : "; pending: ", p->string,
                       p->valuedouble);
        double age = num(r, "updated_age_s");
        if (num(r, "jobs_done") >= num(r, "jobs_total"))
            printf("; finished %.0f s ago", age);
        else if (age > RUN_STALE_S)
            printf("; no update for %.0f s: its roj run has stopped (run "
                   "it again with the same --input and --output to "
                   "resume)", age);
        else
            printf("; updated %.0f s ago", age);
        putchar('\n');
    }
}

int cmd_status(int argc, char **argv)
{
    const char *urls = NULL, *swarm_arg = NULL, *format = "text";
    natsx_options nats = {0};
    cli_option options[3 + CLI_NATS_AUTH_OPTIONS] = {
        {NULL, "--nats", CLI_STRING, &urls, "URL[,URL...]",
         "NATS servers to connect to (required)"},
        {NULL, "--swarm", CLI_STRING, &swarm_arg, "NAME|FILE",
         "the swarm's name, or its swarm file to read the name from "
         "(required)"},
        {"-o", "--output", CLI_STRING, &format, "FORMAT",
         "text, or json for one JSON object (default: text)"},
    };
    cli_nats_auth_options(&nats, options + 3);
    const cli_command cmd = {
        "status", "--nats URL[,URL...] --swarm NAME|FILE [options]",
        "Shows the live agents of a swarm on NATS JetStream and the status\n"
        "of its runs.",
        options, sizeof options / sizeof options[0], NULL, NULL};
    int rc = cli_parse(&cmd, argc, argv);
    if (rc >= 0)
        return rc;
    if (!urls)
        return cli_usage_error("status", "--nats URL is required");
    if (!swarm_arg)
        return cli_usage_error("status", "--swarm NAME or FILE is "
                               "required");
    bool json = !strcmp(format, "json");
    if (!json && strcmp(format, "text") != 0)
        return cli_usage_error("status", "--output %s: use text or json",
                               format);

    char name[256];
    snprintf(name, sizeof name, "%s", swarm_arg);
    if (access(swarm_arg, R_OK) == 0 &&
        !swarm_name_read(swarm_arg, name, sizeof name)) {
        fprintf(stderr, "roj status: %s has no top-level name: line; give "
                "the swarm's name with --swarm NAME\n", swarm_arg);
        return CLI_EXIT_RUNTIME;
    }
    swarm_file stub = {.path = swarm_arg, .name = name};
    nproto_names names;
    if (nproto_names_init(&stub, &names) != ROJ_OK)
        return cli_runtime_error("status", "--swarm");

    roj_log_set(NULL, NULL, ROJ_LOG_WARN);
    nats.urls = urls;
    natsx_conn *c = NULL;
    if (natsx_connect(&nats, &c) != ROJ_OK) {
        natsx_library_close(2000);
        return cli_runtime_error("status", "cannot connect");
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "swarm", names.swarm);
    cJSON *agents = cJSON_AddArrayToObject(doc, "agents");
    cJSON *runs = cJSON_AddArrayToObject(doc, "runs");
    bool agents_exist = false, meta_exists = false;
    bool ok = bucket_read(c, names.agents, NULL, agents, &agents_exist) &&
              bucket_read(c, names.meta, "run.", runs, &meta_exists);
    char url[256];
    if (ok && !agents_exist && !meta_exists)
        fprintf(stderr, "roj status: no swarm named %s on %s (no bucket %s "
                "or %s); check the name, which is the swarm file's name: "
                "line, or start roj agent or roj run --nats first\n",
                names.swarm, natsx_connected_url(c, url, sizeof url),
                names.agents, names.meta);
    natsx_close(c);
    natsx_library_close(2000);
    if (ok) {
        records_add_age(agents, "heartbeat_ms", "heartbeat_age_s");
        records_add_age(runs, "updated_ms", "updated_age_s");
        if (json) {
            char *text = cJSON_PrintUnformatted(doc);
            if (text)
                printf("%s\n", text);
            free(text);
        } else {
            agents_print(names.swarm, agents);
            runs_print(runs);
        }
    }
    cJSON_Delete(doc);
    return ok ? cli_finish_stdout("status", CLI_EXIT_OK) : CLI_EXIT_RUNTIME;
}
