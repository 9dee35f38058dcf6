/* Names, keys and setup of a swarm on NATS JetStream: see nats_proto.h. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "run/nats_proto.h"

roj_status nproto_names_init(const swarm_file *swarm, nproto_names *names)
{
    memset(names, 0, sizeof *names);
    const char *src = swarm->name ? swarm->name : "swarm";
    size_t n = 0;
    bool alnum = false;
    for (const char *p = src; *p && n + 1 < 64; p++) {
        unsigned char ch = (unsigned char)*p;
        if (isalnum(ch) || ch == '_' || ch == '-') {
            names->swarm[n++] = (char)ch;
            alnum = alnum || isalnum(ch);
        } else {
            names->swarm[n++] = '_';
        }
    }
    if (!alnum)
        return roj_error(ROJ_ERR_INVALID_ARG, "swarm file %s: its name "
                         "\"%s\" has no letter or digit to name its NATS "
                         "stream and buckets after; set name: to one",
                         swarm->path ? swarm->path : "?", src);
    snprintf(names->stream, sizeof names->stream, "ROJ_%s", names->swarm);
    snprintf(names->subjects, sizeof names->subjects, "roj.%s.task.>",
             names->swarm);
    snprintf(names->results, sizeof names->results, "roj_%s_results",
             names->swarm);
    snprintf(names->agents, sizeof names->agents, "roj_%s_agents",
             names->swarm);
    snprintf(names->meta, sizeof names->meta, "roj_%s_meta", names->swarm);
    snprintf(names->models, sizeof names->models, "roj_%s_models",
             names->swarm);
    return ROJ_OK;
}

uint32_t nproto_ack_wait_ms(void)
{
    const char *text = getenv(NPROTO_ACK_WAIT_ENV);
    if (!text || !*text)
        return NPROTO_ACK_WAIT_MS;
    char *end = NULL;
    unsigned long ms = strtoul(text, &end, 10);
    if (*end || ms < 100 || ms > NPROTO_ACK_WAIT_MS)
        return NPROTO_ACK_WAIT_MS;
    return (uint32_t)ms;
}

void nproto_task_subject(const nproto_names *names, const char *skill,
                         char *buf, size_t size)
{
    snprintf(buf, size, "roj.%s.task.%s", names->swarm, skill);
}

static roj_status setup_once(natsx_conn *c, const swarm_file *swarm,
                             const nproto_names *names, int replicas,
                             natsx_kv **results, natsx_kv **agents,
                             natsx_kv **meta)
{
    const char *subjects[1] = {names->subjects};
    natsx_stream_config sc = {names->stream, subjects, 1, replicas, 0};
    roj_status st = natsx_stream_ensure(c, &sc);
    for (size_t i = 0; st == ROJ_OK && i < swarm->n_skills; i++) {
        char subject[NPROTO_NAME_MAX];
        nproto_task_subject(names, swarm->skills[i].name, subject,
                            sizeof subject);
        natsx_consumer_config cc = {names->stream, swarm->skills[i].name,
                                    subject, nproto_ack_wait_ms(),
                                    NPROTO_MAX_DELIVER};
        st = natsx_consumer_ensure(c, &cc);
    }
    natsx_kv **outs[3] = {results, agents, meta};
    const char *buckets[3] = {names->results, names->agents, names->meta};
    const uint32_t ttl[3] = {0, NPROTO_AGENT_TTL_MS, 0};
    for (int i = 0; st == ROJ_OK && i < 3; i++) {
        natsx_kv_config kc = {buckets[i], 1, replicas, ttl[i]};
        natsx_kv *kv = NULL;
        st = natsx_kv_open(c, &kc, &kv);
        if (st == ROJ_OK && outs[i])
            *outs[i] = kv;
        else
            natsx_kv_close(kv);
    }
    return st;
}

/* How long setup keeps retrying while the servers time out or elect
 * leaders (4 to 8 s after a node crashed, longer on a loaded machine). */
#define SETUP_RETRY_MS 60000.0

static double monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

bool nproto_retry(roj_status st, double start_ms, unsigned *delay_ms)
{
    if (st != ROJ_ERR_IO || monotonic_ms() - start_ms > SETUP_RETRY_MS)
        return false;
    if (*delay_ms == 0) {
        *delay_ms = 100;
        roj_log(ROJ_LOG_WARN, "%s; retrying for up to %.0f s",
                roj_last_error(), SETUP_RETRY_MS / 1e3);
    }
    struct timespec ts = {(time_t)(*delay_ms / 1000),
                          (long)(*delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    if (*delay_ms < 1000)
        *delay_ms *= 2;
    return true;
}

double nproto_now_ms(void)
{
    return monotonic_ms();
}

roj_status nproto_setup(natsx_conn *c, const swarm_file *swarm,
                        const nproto_names *names, int replicas,
                        natsx_kv **results, natsx_kv **agents,
                        natsx_kv **meta)
{
    natsx_kv **outs[3] = {results, agents, meta};
    const double start = monotonic_ms();
    unsigned delay_ms = 100;
    for (int attempt = 1;; attempt++) {
        for (int i = 0; i < 3; i++)
            if (outs[i])
                *outs[i] = NULL;
        roj_status st = setup_once(c, swarm, names, replicas, results,
                                   agents, meta);
        /* Only I/O errors (time-outs, no responders) can pass; a
         * mismatched stream or consumer will not. */
        if (st != ROJ_ERR_IO || monotonic_ms() - start > SETUP_RETRY_MS)
            return st;
        for (int i = 0; i < 3; i++)
            if (outs[i]) {
                natsx_kv_close(*outs[i]);
                *outs[i] = NULL;
            }
        if (attempt == 1)
            roj_log(ROJ_LOG_WARN, "%s; retrying for up to %.0f s",
                    roj_last_error(), SETUP_RETRY_MS / 1e3);
        struct timespec ts = {0, (long)delay_ms * 1000000L};
        nanosleep(&ts, NULL);
        if (delay_ms < 1000)
            delay_ms *= 2;
    }
}

void nproto_run_id(const char *swarm_sha256, const char *input_sha256,
                   const char *pipeline, char run[17])
{
    sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, swarm_sha256, strlen(swarm_sha256));
    sha256_update(&ctx, "\n", 1);
    sha256_update(&ctx, input_sha256, strlen(input_sha256));
    sha256_update(&ctx, "\n", 1);
    sha256_update(&ctx, pipeline, strlen(pipeline));
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_final(&ctx, digest);
    char hex[SHA256_HEX_SIZE];
    sha256_hex(digest, hex);
    memcpy(run, hex, 16);
    run[16] = '\0';
}

bool nproto_key_encode(const char *key, char *buf, size_t size)
{
    size_t n = 0;
    for (const char *p = key; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        const char *esc = NULL;
        switch (ch) {
        case '#': esc = "=v"; break;
        case '~': esc = "=l"; break;
        case '[': esc = "=i"; break;
        case ']': esc = "=e"; break;
        default:
            if (!isalnum(ch) && ch != '_' && ch != '-')
                return false;
        }
        size_t len = esc ? 2 : 1;
        if (n + len + 1 > size)
            return false;
        if (esc) {
            memcpy(buf + n, esc, 2);
        } else {
            buf[n] = (char)ch;
        }
        n += len;
    }
    if (n + 1 > size)
        return false;
    buf[n] = '\0';
    return n > 0;
}

bool nproto_key_decode(const char *encoded, char *buf, size_t size)
{
    size_t n = 0;
    for (const char *p = encoded; *p; p++) {
        char ch = *p;
        if (ch == '=') {
            switch (p[1]) {
            case 'v': ch = '#'; break;
            case 'l': ch = '~'; break;
            case 'i': ch = '['; break;
            case 'e': ch = ']'; break;
            default: return false;
            }
            p++;
        }
        if (n + 2 > size)
            return false;
        buf[n++] = ch;
    }
    if (n == 0 || n + 1 > size)
        return false;
    buf[n] = '\0';
    return true;
}

bool nproto_result_key(const char *run, uint64_t job, const char *key,
                       char *buf, size_t size)
{
    char enc[NPROTO_NAME_MAX];
    if (!nproto_key_encode(key, enc, sizeof enc))
        return false;
    int n = snprintf(buf, size, "%s.%" PRIu64 ".%s", run, job, enc);
    return n > 0 && (size_t)n < size;
}

bool nproto_result_key_parse(const char *kv_key, char run[17],
                             uint64_t *job, char *key, size_t key_size)
{
    const char *dot = strchr(kv_key, '.');
    if (!dot || dot - kv_key != 16)
        return false;
    memcpy(run, kv_key, 16);
    run[16] = '\0';
    char *end = NULL;
    unsigned long long v = strtoull(dot + 1, &end, 10);
    if (end == dot + 1 || *end != '.')
        return false;
    *job = (uint64_t)v;
    return nproto_key_decode(end + 1, key, key_size);
}

roj_status nproto_check_swarm(natsx_kv *meta, const char *swarm_path,
                              const char *sha256, bool authoritative)
{
    bool found = false;
    char *value = NULL;
    size_t len = 0;
    uint64_t rev = 0;
    roj_status st = natsx_kv_get(meta, "swarm", &found, &value, &len, &rev);
    if (st)
        return st;
    bool same = found && len == strlen(sha256) &&
                memcmp(value, sha256, len) == 0;
    if (same) {
        free(value);
        return ROJ_OK;
    }
    if (authoritative) {
        free(value);
        return natsx_kv_put(meta, "swarm", sha256, strlen(sha256), NULL);
    }
    if (!found) {
        natsx_kv_outcome out;
        st = natsx_kv_create(meta, "swarm", sha256, strlen(sha256), &out,
                             NULL);
        if (st || out == NATSX_KV_CREATED)
            return st;
        return nproto_check_swarm(meta, swarm_path, sha256, false);
    }
    st = roj_error(ROJ_ERR_INVALID_ARG, "swarm file %s (sha256 %.16s...) "
                   "is not the version the cluster runs (sha256 %.16s...): "
                   "start the agent with the swarm file that roj run uses",
                   swarm_path, sha256, value);
    free(value);
    return st;
}
