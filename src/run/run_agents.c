/* Agent processes seen from the runner: start, frames, heartbeats,
 * death and restart, and injected faults. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/error.h"
#include "run/run_internal.h"

roj_status run_agent_spawn(runner *r, agent_slot *a)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return roj_error(ROJ_ERR_IO, "socketpair: %s", strerror(errno));
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return roj_error(ROJ_ERR_IO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(sv[0]);
        for (uint32_t i = 0; i < r->n_agents; i++)
            if (r->agents[i].fd >= 0)
                close(r->agents[i].fd);
        agent_config cfg = {sv[1], a->index, r->swarm,
                            r->o->threads > 0 ? r->o->threads : 1,
                            r->heartbeat_ms, r->o->executor};
        _exit(agent_main(&cfg));
    }
    close(sv[1]);
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    a->pid = pid;
    a->fd = sv[0];
    a->gen = ++r->next_gen;
    a->state = AG_STARTING;
    a->spawned_ms = a->last_beat_ms = run_now_ms();
    a->faulted = a->slow = false;
    a->ewma_ms = 10.0;
    a->ewma_fail = 0.0;
    r->sum->agents_started++;
    return ROJ_OK;
}

static void describe_status(int status, char *buf, size_t size)
{
    if (WIFEXITED(status))
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "stopped");
}

/* Kills the process (if still there) and collects its exit status. */
static void reap(agent_slot *a, char *why, size_t size)
{
    int status = 0;
    if (a->pid <= 0)
        return;
    pid_t w = waitpid(a->pid, &status, WNOHANG);
    if (w == 0) {
        kill(a->pid, SIGKILL);
        w = waitpid(a->pid, &status, 0);
    }
    if (w == a->pid && why && why[0] == '\0')
        describe_status(status, why, size);
    a->pid = -1;
}

/* Agents that die before they are ready, again and again, cannot load
 * or start: the run stops instead of restarting them forever. */
#define MAX_START_FAILURES 3

static void check_start_failures(runner *r, agent_slot *a)
{
    if (a->state == AG_STARTING)
        a->start_failures++;
    else
        a->start_failures = 0;
    for (uint32_t i = 0; i < r->n_agents; i++)
        if (r->agents[i].start_failures < MAX_START_FAILURES)
            return;
    r->fatal = true;
    snprintf(r->fatal_msg, sizeof r->fatal_msg, "every agent died %d times "
             "before it was ready; the last one %.300s", MAX_START_FAILURES,
             a->last_error);
}

void run_agent_lost(runner *r, agent_slot *a, const char *why,
                    bool input_blamed)
{
    char reason[256] = "";
    char msg[400];
    double now = run_now_ms();
    if (why)
        snprintf(reason, sizeof reason, "%s", why);
    reap(a, reason, sizeof reason);
    snprintf(msg, sizeof msg, "agent %d (generation %" PRIu64 ") %s%s",
             a->index, a->gen, reason,
             a->faulted ? " after an injected fault" : "");
    r->sum->deaths++;
    run_log(r, "%s; %zu subtasks in flight go to other agents", msg,
            a->n_tasks);
    if (a->faulted)
        input_blamed = false;
    for (size_t b = 0; b < a->n_batches; b++) {
        run_batch *bt = &a->batches[b];
        for (size_t i = 0; i < bt->n; i++) {
            run_attempt *at = &bt->at[i];
            if (at->answered)
                continue;
            sub *s = at->s;
            s->running--;
            if (s->state == SUB_DONE || s->state == SUB_FAILED ||
                !s->job || s->job->finished) {
                run_sub_release(s);
                continue;
            }
            if (s->running > 0 || s->queued)
                continue; /* a hedged copy is still out or waiting */
            /* Only an attempt that ran alone can blame its input, and
             * only in the batch the agent was working on: it runs its
             * batches in the order they were sent. */
            bool counts = input_blamed && b == 0 && bt->n == 1;
            s->state = SUB_QUEUED;
            s->failed_at = now;
            r->sum->reassigned++;
            if (counts) {
                if (run_sub_count_failure(r, s, a->gen, msg))
                    continue;
            } else if (bt->n > 1) {
                s->solo = true;
            }
            run_queue_push(r, s, true);
        }
        free(bt->at);
        bt->at = NULL;
    }
    a->n_batches = a->n_tasks = 0;
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    wire_reader_free(&a->rd);
    snprintf(a->last_error, sizeof a->last_error, "%s", reason);
    check_start_failures(r, a);
    /* A lost agent is replaced at once; one that dies again soon after
     * starting waits 50 ms, doubling to 5 s, and an agent that lived
     * 10 s starts the count again. */
    if (a->faulted)
        a->quick_deaths = 0; /* injected: no sign of a crash loop */
    else if (now - a->spawned_ms < 10000.0)
        a->quick_deaths++;
    else
        a->quick_deaths = 0;
    double delay = a->quick_deaths <= 1 ? 0.0 : 50.0;
    for (uint32_t i = 2; i < a->quick_deaths && delay < 5000.0; i++)
        delay *= 2;
    a->state = r->o->stop && *r->o->stop ? AG_STOPPING : AG_OFF;
    a->restart_ms = now + (delay > 5000.0 ? 5000.0 : delay);
}

static roj_status handle_frame(runner *r, agent_slot *a, wire_type type,
                               const char *payload)
{
    a->last_beat_ms = run_now_ms();
    switch (type) {
    case WIRE_HEARTBEAT:
        return ROJ_OK;
    case WIRE_READY:
        if (a->state == AG_STARTING) {
            a->state = AG_READY;
            a->ready_ms = a->last_beat_ms;
        }
        return ROJ_OK;
    case WIRE_RESULT:
        return run_handle_result(r, a, payload);
    case WIRE_FAILED: {
        cJSON *root = cJSON_Parse(payload);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
        char msg[600];
        snprintf(msg, sizeof msg, "%s",
                 cJSON_IsString(e) ? e->valuestring : "agent failed");
        cJSON_Delete(root);
        if (a->state == AG_STARTING) {
            /* Models that do not load will not load on a restart. */
            r->fatal = true;
            snprintf(r->fatal_msg, sizeof r->fatal_msg, "%.500s", msg);
        }
        run_agent_lost(r, a, msg, false);
        return ROJ_OK;
    }
    default:
        return roj_error(ROJ_ERR_FORMAT, "unexpected frame type %d", type);
    }
}

roj_status run_agent_read(runner *r, agent_slot *a)
{
    bool eof = false;
    roj_status st = wire_fill(&a->rd, a->fd, &eof);
    for (;;) {
        wire_type type;
        char *payload;
        size_t len;
        bool bad;
        if (!wire_next(&a->rd, &type, &payload, &len, &bad)) {
            if (bad) {
                r->sum->garbage++;
                run_agent_lost(r, a, "sent a malformed frame", !a->faulted);
                return ROJ_OK;
            }
            break;
        }
        if (handle_frame(r, a, type, payload) != ROJ_OK) {
            r->sum->garbage++;
            char why[300];
            snprintf(why, sizeof why, "sent a bad message: %s",
                     roj_last_error());
            run_agent_lost(r, a, why, !a->faulted);
            return ROJ_OK;
        }
        if (a->fd < 0)
            return ROJ_OK; /* lost while handling */
    }
    if (st != ROJ_OK && eof)
        run_agent_lost(r, a, NULL, true);
    return ROJ_OK;
}

void run_agents_check(runner *r, double now)
{
    for (uint32_t i = 0; i < r->n_agents; i++) {
        agent_slot *a = &r->agents[i];
        if (a->state == AG_OFF && now >= a->restart_ms && !r->fatal &&
            !(r->o->stop && *r->o->stop)) {
            if (run_agent_spawn(r, a) != ROJ_OK)
                a->restart_ms = now + 1000.0;
            continue;
        }
        if (a->state != AG_READY && a->state != AG_STARTING)
            continue;
        /* Loading models can take a while; heartbeats run meanwhile. */
        if (now - a->last_beat_ms > r->dead_after_ms) {
            char why[128];
            snprintf(why, sizeof why, "missed its heartbeats for %.0f ms",
                     now - a->last_beat_ms);
            r->sum->hangs++;
            /* Heartbeats come from their own thread, so an input that
             * makes the model run long does not stop them: silence
             * means the process stalled, which is not the input's
             * fault. */
            run_agent_lost(r, a, why, false);
            continue;
        }
        for (size_t b = 0; b < a->n_batches; b++) {
            if (now <= a->batches[b].deadline_ms)
                continue;
            char why[200];
            snprintf(why, sizeof why, "took over %.0f ms for a batch of %zu "
                     "(skill %s, timeout %u ms per call)",
                     now - a->batches[b].sent_ms, a->batches[b].n,
                     r->swarm->skills[a->batches[b].skill].name,
                     r->swarm->skills[a->batches[b].skill].timeout_ms);
            r->sum->timeouts++;
            run_agent_lost(r, a, why, true);
            break;
        }
    }
}

uint32_t run_agents_alive(const runner *r)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n_agents; i++)
        n += r->agents[i].state == AG_READY;
    return n;
}

void run_agents_stop(runner *r)
{
    for (uint32_t i = 0; i < r->n_agents; i++) {
        agent_slot *a = &r->agents[i];
        if (a->fd >= 0)
            (void)wire_send(a->fd, WIRE_STOP, NULL, 0);
    }
    double until = run_now_ms() + 2000.0;
    for (uint32_t i = 0; i < r->n_agents; i++) {
        agent_slot *a = &r->agents[i];
        while (a->pid > 0) {
            int status;
            pid_t w = waitpid(a->pid, &status, WNOHANG);
            if (w == a->pid || (w < 0 && errno != EINTR)) {
                a->pid = -1;
                break;
            }
            if (run_now_ms() > until) {
                kill(a->pid, SIGKILL);
                waitpid(a->pid, &status, 0);
                a->pid = -1;
                break;
            }
            usleep(2000);
        }
        for (size_t b = 0; b < a->n_batches; b++) {
            for (size_t k = 0; k < a->batches[b].n; k++) {
                run_attempt *at = &a->batches[b].at[k];
                if (!at->answered) {
                    at->s->running--;
                    run_sub_release(at->s);
                }
            }
            free(a->batches[b].at);
        }
        a->n_batches = a->n_tasks = 0;
        if (a->fd >= 0)
            close(a->fd);
        a->fd = -1;
        wire_reader_free(&a->rd);
        a->state = AG_STOPPING;
    }
}

/* ---- fault injection ---- */

static const char *const chaos_kinds[5] = {"kill", "crash", "hang",
                                           "garbage", "slow"};

static uint32_t chaos_interval(const run_chaos *c, int k)
{
    const uint32_t v[5] = {c->kill_ms, c->crash_ms, c->hang_ms,
                           c->garbage_ms, c->slow_ms};
    return v[k];
}

static uint64_t chaos_next_rand(runner *r)
{
    uint64_t z = (r->chaos_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void run_chaos_tick(runner *r, double now)
{
    const run_chaos *c = &r->o->chaos;
    for (int k = 0; k < 5; k++) {
        uint32_t every = chaos_interval(c, k);
        if (!every)
            continue;
        if (r->chaos_next[k] == 0.0)
            r->chaos_next[k] = now + every;
        if (now < r->chaos_next[k])
            continue;
        r->chaos_next[k] = now + every;
        if (c->max_events && r->chaos_events >= c->max_events)
            continue;
        /* An agent already faulted is dying: the loop may not have seen
         * its end yet on a loaded machine, and hitting it again would
         * count one death as two faults. */
        uint32_t alive = 0;
        for (uint32_t i = 0; i < r->n_agents; i++)
            alive += r->agents[i].state == AG_READY && !r->agents[i].faulted;
        if (alive == 0)
            continue;
        uint32_t pick = (uint32_t)(chaos_next_rand(r) % alive);
        agent_slot *a = NULL;
        for (uint32_t i = 0; i < r->n_agents; i++)
            if (r->agents[i].state == AG_READY && !r->agents[i].faulted &&
                pick-- == 0)
                a = &r->agents[i];
        if (!a || (k == 4 && a->slow))
            continue;
        r->chaos_events++;
        r->sum->faults_injected++;
        run_log(r, "fault injection: %s agent %d (pid %ld)", chaos_kinds[k],
                a->index, (long)a->pid);
        if (k == 4) {
            a->slow = true;
            (void)wire_send(a->fd, WIRE_FAULT,
                            "{\"kind\":\"slow\",\"factor\":5}", 27);
            continue;
        }
        a->faulted = true;
        if (k == 0) {
            kill(a->pid, SIGKILL);
            continue;
        }
        char msg[64];
        int n = snprintf(msg, sizeof msg, "{\"kind\":\"%s\"}", chaos_kinds[k]);
        (void)wire_send(a->fd, WIRE_FAULT, msg, (size_t)n);
    }
}
