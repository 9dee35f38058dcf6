/* What a run shows: its log, the progress bar, latency samples and the
 * final summary table. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "run/run_internal.h"

/* Interval between progress redraws on a terminal and between progress
 * lines elsewhere, in milliseconds. */
#define PROGRESS_TTY_MS 100.0
#define PROGRESS_LINE_MS 10000.0
#define BAR_WIDTH 24

void run_samples_add(sample_list *l, double v)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        double *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv)
            return; /* a lost sample only blurs a statistic */
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank quantile; sorts the samples in place. 0 when empty. */
double run_samples_quantile(sample_list *l, double q)
{
    if (l->n == 0)
        return 0.0;
    qsort(l->v, l->n, sizeof *l->v, cmp_double);
    double rank = ceil(q * (double)l->n);
    size_t i = rank < 1.0 ? 0 : (size_t)rank - 1;
    return l->v[i < l->n ? i : l->n - 1];
}

static void erase_line(runner *r)
{
    if (r->line_drawn) {
        fputs("\r\033[K", r->log);
        r->line_drawn = false;
    }
}

void run_log(runner *r, const char *fmt, ...)
{
    erase_line(r);
    va_list ap;
    va_start(ap, fmt);
    fputs("roj run: ", r->log);
    vfprintf(r->log, fmt, ap);
    fputc('\n', r->log);
    va_end(ap);
    fflush(r->log);
}

static void format_eta(double s, char *buf, size_t size)
{
    if (!isfinite(s) || s < 0)
        snprintf(buf, size, "?");
    else if (s < 60)
        snprintf(buf, size, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, size, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, size, "%dh%02dm", (int)(s / 3600),
                 (int)(s / 60) % 60);
}

void run_progress(runner *r, bool final)
{
    if (r->progress == 0)
        return;
    double now = run_now_ms();
    double every = r->tty ? PROGRESS_TTY_MS : PROGRESS_LINE_MS;
    if (!final && now - r->last_progress_ms < every)
        return;
    r->last_progress_ms = now;
    uint64_t done = r->next_emit, total = r->n_jobs;
    uint64_t fresh = done - r->sum->jobs_resumed;
    double elapsed = (now - r->t0_ms) / 1e3;
    double rate = elapsed > 0 ? (double)fresh / elapsed : 0.0;
    char eta[32];
    format_eta(rate > 0 ? (double)(total - done) / rate : NAN, eta,
               sizeof eta);
    char bar[BAR_WIDTH + 1];
    size_t fill = total ? (size_t)((double)done / (double)total * BAR_WIDTH)
                        : 0;
    for (size_t i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[BAR_WIDTH] = '\0';
    if (r->tty)
        fputs("\r\033[K", r->log);
    fprintf(r->log, "jobs %llu/%llu [%s] %5.1f%% %.1f jobs/s ETA %s "
            "agents %u/%u failed %llu recovered %llu",
            (unsigned long long)done, (unsigned long long)total, bar,
            total ? 100.0 * (double)done / (double)total : 100.0, rate, eta,
            r->o->nats ? run_nats_agents(r) : run_agents_alive(r),
            r->o->nats ? run_nats_agents(r) : r->n_agents,
            (unsigned long long)r->sum->jobs_failed,
            (unsigned long long)r->sum->reassigned);
    if (r->tty && !final) {
        r->line_drawn = true;
    } else {
        fputc('\n', r->log);
        r->line_drawn = false;
    }
    fflush(r->log);
}

void run_summary_free(run_summary *s)
{
    if (!s)
        return;
    free(s->skills);
    s->skills = NULL;
    s->n_skills = 0;
}

void run_summary_print(const run_summary *s, const swarm_file *swarm,
                       FILE *f)
{
    uint64_t jobs = s->jobs_ok + s->jobs_failed - s->jobs_resumed;
    double per_job = jobs ? 1.0 / (double)jobs : 0.0;
    fprintf(f, "%-12s %llu ok, %llu failed, %llu in total",
            "jobs", (unsigned long long)s->jobs_ok,
            (unsigned long long)s->jobs_failed,
            (unsigned long long)s->jobs_total);
    if (s->jobs_resumed)
        fprintf(f, " (%llu written by an earlier run)",
                (unsigned long long)s->jobs_resumed);
    fprintf(f, "%s\n", s->interrupted ? "; interrupted" : "");
    fprintf(f, "%-12s %llu computed, %llu from the journal, %llu batches\n",
            "subtasks", (unsigned long long)s->subtasks,
            (unsigned long long)s->subtasks_cached,
            (unsigned long long)s->batches);
    fprintf(f, "%-12s %.2f s, %.1f jobs/s\n", "wall time", s->wall_s,
            s->wall_s > 0 ? (double)jobs / s->wall_s : 0.0);
    fprintf(f, "%-12s %.2f s (%s), %.4f s per job\n", "CPU time",
            s->cpu_s, s->remote ? "this process; agents run elsewhere"
                                : "runner and agents",
            s->cpu_s * per_job);
    if (s->energy_measured)
        fprintf(f, "%-12s %.1f J measured by RAPL (whole package), "
                "%.3f J per job\n", "energy", s->energy_j,
                s->energy_j * per_job);
    else
        fprintf(f, "%-12s %.1f J estimated as CPU time x %.1f W per core, "
                "%.3f J per job\n", "energy", s->energy_j,
                s->watts_per_core, s->energy_j * per_job);
    if (s->remote) {
        fprintf(f, "%-12s run %s, %llu agents registered at the end\n",
                "NATS", s->run_id, (unsigned long long)s->agents_seen);
        fprintf(f, "%-12s %.1f ms to publish a subtask (p50)\n",
                "publishing", s->sched_us_p50 / 1e3);
        goto skills;
    }
    fprintf(f, "%-12s %llu started, %llu lost (%llu faults injected, "
            "%llu missed heartbeats, %llu protocol errors, %llu timeouts)\n",
            "agents", (unsigned long long)s->agents_started,
            (unsigned long long)s->deaths,
            (unsigned long long)s->faults_injected,
            (unsigned long long)s->hangs, (unsigned long long)s->garbage,
            (unsigned long long)s->timeouts);
    fprintf(f, "%-12s %llu subtasks reassigned, %llu failed attempts "
            "counted", "recovery", (unsigned long long)s->reassigned,
            (unsigned long long)s->retries);
    if (s->recover_ms_max > 0)
        fprintf(f, ", from an agent's loss to its subtasks running again p50 %.1f ms, max %.1f ms",
                s->recover_ms_p50, s->recover_ms_max);
    fputc('\n', f);
    if (s->hedged)
        fprintf(f, "%-12s %llu subtasks hedged, %llu won by the copy\n",
                "hedging", (unsigned long long)s->hedged,
                (unsigned long long)s->hedge_wins);
    fprintf(f, "%-12s %.1f us of runner time per subtask (p50)\n",
            "scheduling", s->sched_us_p50);
skills:
    fprintf(f, "\n%-20s %8s %9s %9s %9s %12s\n", "skill", "subtasks",
            "p50 ms", "p95 ms", "p99 ms", "compute ms");
    for (size_t i = 0; i < s->n_skills && swarm && i < swarm->n_skills; i++) {
        const run_skill_stats *k = &s->skills[i];
        if (k->n == 0)
            continue;
        fprintf(f, "%-20s %8llu %9.2f %9.2f %9.2f %12.3f\n",
                swarm->skills[i].name, (unsigned long long)k->n, k->p50,
                k->p95, k->p99, k->exec_ms / (double)k->n);
    }
    fprintf(f, "(latency: from sending a batch to its answer; compute: "
            "agent time per subtask)\n");
}
