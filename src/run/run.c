/* run_swarm: the runner's setup, its poll loop and its teardown. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "run/run_internal.h"

/* Busy-core power used for the energy estimate where RAPL is absent: a
 * round figure between a laptop core (about 4 W) and a server core
 * (about 10 W at full load); ROJ_WATTS_PER_CORE overrides it. */
#define DEFAULT_WATTS_PER_CORE 7.5
/* The journal is committed at least this often, in milliseconds; a
 * crash loses at most the results of the last interval. */
#define POLL_MAX_MS 50

double run_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- energy: RAPL package counters, else an estimate ---- */

typedef struct rapl {
    int n;
    char paths[8][128];
    double start_uj[8];
    double range_uj[8];
} rapl;

static bool read_double(const char *path, double *v)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fscanf(f, "%lf", v) == 1;
    fclose(f);
    return ok;
}

/* Finds the package domains intel-rapl:N (not their sub-zones) that
 * this process may read. */
static void rapl_start(rapl *p)
{
    memset(p, 0, sizeof *p);
    DIR *d = opendir("/sys/class/powercap");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && p->n < 8) {
        unsigned pkg;
        char tail;
        if (sscanf(e->d_name, "intel-rapl:%u%c", &pkg, &tail) != 1)
            continue;
        char path[128], range[160];
        snprintf(path, sizeof path, "/sys/class/powercap/%.60s/energy_uj",
                 e->d_name);
        snprintf(range, sizeof range,
                 "/sys/class/powercap/%.60s/max_energy_range_uj", e->d_name);
        double v, r;
        if (!read_double(path, &v))
            continue;
        if (!read_double(range, &r))
            r = 0;
        snprintf(p->paths[p->n], sizeof p->paths[0], "%s", path);
        p->start_uj[p->n] = v;
        p->range_uj[p->n] = r;
        p->n++;
    }
    closedir(d);
}

/* Joules used since rapl_start, or -1 without counters. */
static double rapl_joules(const rapl *p)
{
    if (p->n == 0)
        return -1.0;
    double total = 0;
    for (int i = 0; i < p->n; i++) {
        double v;
        if (!read_double(p->paths[i], &v))
            return -1.0;
        double d = v - p->start_uj[i];
        if (d < 0 && p->range_uj[i] > 0)
            d += p->range_uj[i]; /* the counter wrapped */
        total += d;
    }
    return total / 1e6;
}

static double cpu_seconds(void)
{
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    double s = 0;
    const struct rusage *u[2] = {&self, &kids};
    for (int i = 0; i < 2; i++)
        s += (double)u[i]->ru_utime.tv_sec + u[i]->ru_utime.tv_usec / 1e6 +
             (double)u[i]->ru_stime.tv_sec + u[i]->ru_stime.tv_usec / 1e6;
    return s;
}

/* ---- setup and teardown ---- */

static roj_status runner_init(runner *r, const run_options *o,
                              run_summary *sum)
{
    memset(r, 0, sizeof *r);
    r->o = o;
    r->swarm = o->swarm;
    if (!o->swarm || o->pipeline >= o->swarm->n_pipelines)
        return roj_error(ROJ_ERR_INVALID_ARG, "no such pipeline");
    r->pipe = &o->swarm->pipelines[o->pipeline];
    r->sum = sum;
    r->log = o->log ? o->log : stderr;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    r->n_agents = o->n_agents ? o->n_agents : (uint32_t)(cores > 0 ? cores : 1);
    if (o->nats)
        r->n_agents = 0; /* `roj agent` processes serve the subtasks */
    if (r->n_agents > RUN_MAX_AGENTS)
        return roj_error(ROJ_ERR_RANGE, "%u agents requested; at most %d",
                         r->n_agents, RUN_MAX_AGENTS);
    r->max_batch = o->max_batch ? o->max_batch : 16;
    r->heartbeat_ms = o->heartbeat_ms ? o->heartbeat_ms : 100;
    r->dead_after_ms = o->dead_after_ms ? o->dead_after_ms
                                        : r->heartbeat_ms * 3;
    if (r->dead_after_ms < r->heartbeat_ms * 2)
        r->dead_after_ms = r->heartbeat_ms * 2;
    r->max_attempts = o->max_attempts ? o->max_attempts : 3;
    r->window = o->window ? o->window : 64 * (r->n_agents ? r->n_agents : 16);
    r->progress = o->progress;
    r->tty = o->progress == 1 && isatty(fileno(r->log));
    r->chaos_rng = o->chaos.seed;
    size_t ns = r->swarm->n_skills;
    r->queues = calloc(ns ? ns : 1, sizeof *r->queues);
    r->lat = calloc(ns ? ns : 1, sizeof *r->lat);
    r->exec_ms = calloc(ns ? ns : 1, sizeof *r->exec_ms);
    r->agents = calloc(r->n_agents ? r->n_agents : 1, sizeof *r->agents);
    sum->skills = calloc(ns ? ns : 1, sizeof *sum->skills);
    sum->n_skills = ns;
    if (!r->queues || !r->lat || !r->exec_ms || !r->agents || !sum->skills)
        return roj_error(ROJ_ERR_NOMEM, "runner state");
    for (uint32_t i = 0; i < r->n_agents; i++) {
        r->agents[i].index = (int)i;
        r->agents[i].fd = -1;
        r->agents[i].pid = -1;
        r->agents[i].state = AG_OFF;
    }
    return ROJ_OK;
}

static void runner_free(runner *r)
{
    if (r->queues) {
        for (size_t k = 0; k < r->swarm->n_skills; k++) {
            for (sub *s = r->queues[k].head; s;) {
                sub *next = s->qnext;
                s->queued = false;
                run_sub_release(s);
                s = next;
            }
        }
    }
    run_jobs_close(r);
    if (r->lat)
        for (size_t k = 0; k < r->swarm->n_skills; k++)
            free(r->lat[k].v);
    free(r->lat);
    free(r->queues);
    free(r->exec_ms);
    free(r->agents);
    free(r->sched_us.v);
    free(r->recover.v);
}

static void fill_summary(runner *r, double cpu0, const rapl *energy)
{
    run_summary *s = r->sum;
    s->wall_s = (run_now_ms() - r->t0_ms) / 1e3;
    s->cpu_s = cpu_seconds() - cpu0;
    double j = rapl_joules(energy);
    const char *w = getenv("ROJ_WATTS_PER_CORE");
    double watts = w ? strtod(w, NULL) : 0.0;
    s->watts_per_core = watts > 0 ? watts : DEFAULT_WATTS_PER_CORE;
    s->energy_measured = j >= 0;
    s->energy_j = j >= 0 ? j : s->cpu_s * s->watts_per_core;
    for (size_t k = 0; k < s->n_skills; k++) {
        run_skill_stats *st = &s->skills[k];
        st->n = r->lat[k].n;
        st->p50 = run_samples_quantile(&r->lat[k], 0.50);
        st->p95 = run_samples_quantile(&r->lat[k], 0.95);
        st->p99 = run_samples_quantile(&r->lat[k], 0.99);
        st->exec_ms = r->exec_ms[k];
    }
    s->sched_us_p50 = run_samples_quantile(&r->sched_us, 0.5);
    s->recover_ms_p50 = run_samples_quantile(&r->recover, 0.5);
    s->recover_ms_max = run_samples_quantile(&r->recover, 1.0);
}

/* ---- the loop ---- */

static bool stop_requested(const runner *r)
{
    return r->o->stop && *r->o->stop;
}

/* Waits for frames from the agents for at most timeout_ms and reads
 * them. */
static roj_status poll_agents(runner *r, int timeout_ms)
{
    struct pollfd fds[RUN_MAX_AGENTS];
    int idx[RUN_MAX_AGENTS];
    nfds_t n = 0;
    for (uint32_t i = 0; i < r->n_agents; i++) {
        if (r->agents[i].fd < 0)
            continue;
        fds[n].fd = r->agents[i].fd;
        fds[n].events = POLLIN;
        fds[n].revents = 0;
        idx[n] = (int)i;
        n++;
    }
    int ready = poll(fds, n, timeout_ms);
    if (ready < 0) {
        if (errno == EINTR)
            return ROJ_OK;
        return roj_error(ROJ_ERR_IO, "poll: %s", strerror(errno));
    }
    for (nfds_t k = 0; k < n && ready > 0; k++) {
        if (!fds[k].revents)
            continue;
        agent_slot *a = &r->agents[idx[k]];
        if (a->fd != fds[k].fd)
            continue; /* lost and replaced while handling another */
        roj_status st = run_agent_read(r, a);
        if (st)
            return st;
    }
    return ROJ_OK;
}

static roj_status loop(runner *r)
{
    roj_status st = ROJ_OK;
    while (!run_jobs_all_done(r)) {
        if (stop_requested(r)) {
            r->sum->interrupted = true;
            return ROJ_ERR_ABORTED;
        }
        if (r->fatal)
            return roj_error(ROJ_ERR_IO, "%s", r->fatal_msg);
        if ((st = run_jobs_admit(r)) != ROJ_OK)
            return st;
        run_dispatch(r);
        if ((st = run_jobs_emit(r)) != ROJ_OK)
            return st;
        if (run_jobs_all_done(r))
            break;
        if ((st = poll_agents(r, POLL_MAX_MS)) != ROJ_OK)
            return st;
        double now = run_now_ms();
        run_agents_check(r, now);
        run_chaos_tick(r, now);
        run_hedge(r, now);
        run_jobs_deadlines(r, now);
        if (r->fatal)
            return roj_error(ROJ_ERR_IO, "%s", r->fatal_msg);
        if ((st = run_jobs_emit(r)) != ROJ_OK ||
            (st = run_jobs_commit(r, false)) != ROJ_OK)
            return st;
        run_progress(r, false);
    }
    return ROJ_OK;
}

roj_status run_swarm(const run_options *opt, run_summary *summary)
{
    memset(summary, 0, sizeof *summary);
    runner r;
    roj_status st = runner_init(&r, opt, summary);
    if (st == ROJ_OK)
        st = run_jobs_open(&r);
    if (st != ROJ_OK) {
        runner_free(&r);
        return st;
    }
    /* A dead agent's socket must not kill the runner on write. */
    struct sigaction ign = {0}, old_pipe;
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old_pipe);
    double cpu0 = cpu_seconds();
    rapl energy;
    rapl_start(&energy);
    r.t0_ms = run_now_ms();
    if (opt->nats) {
        st = run_nats(&r);
    } else {
        for (uint32_t i = 0; i < r.n_agents && st == ROJ_OK; i++)
            st = run_agent_spawn(&r, &r.agents[i]);
        if (st == ROJ_OK)
            st = loop(&r);
    }
    roj_status st_commit = run_jobs_commit(&r, true);
    if (st == ROJ_OK)
        st = st_commit;
    run_agents_stop(&r);
    run_progress(&r, true);
    fill_summary(&r, cpu0, &energy);
    if (st == ROJ_ERR_ABORTED)
        run_log(&r, "stopped: %" PRIu64 " of %" PRIu64 " jobs written%s",
                r.next_emit, r.n_jobs,
                opt->journal_path ? "; run again with the same --journal "
                                    "to continue" : "");
    runner_free(&r);
    sigaction(SIGPIPE, &old_pipe, NULL);
    return st;
}
