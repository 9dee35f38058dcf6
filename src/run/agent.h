/*
 * An agent: a worker process that serves the skills of a swarm. The
 * runner forks it with one end of a socket pair; the agent loads its
 * models once, says READY, then answers batches of subtasks (WIRE_TASKS)
 * with their results (WIRE_RESULT) until WIRE_STOP or until the runner
 * goes away. A second thread sends a heartbeat every heartbeat_ms, so
 * the runner can tell a hung agent from a busy one.
 *
 * Faults for tests and demos (WIRE_FAULT): "hang" stops the process
 * (SIGSTOP on itself: no heartbeats, no answers), "crash" raises SIGSEGV,
 * "abort" calls abort(), "garbage" writes random bytes on the socket,
 * "slow" makes each later batch take `factor` times as long.
 */
#ifndef ROJ_RUN_AGENT_H
#define ROJ_RUN_AGENT_H

#include <stdint.h>

#include "run/exec.h"
#include "swarm/swarm.h"

/* The work an agent does: exec_run on an exec_engine by default; the
 * benchmark of scheduling overhead plugs in a no-op here. */
typedef struct agent_executor {
    roj_status (*open)(void *cfg, const swarm_file *swarm, int32_t threads,
                       void **state);
    roj_status (*run)(void *state, const exec_task *tasks, size_t n,
                      exec_result *results);
    void (*close)(void *state);
    void *cfg;
} agent_executor;

typedef struct agent_config {
    int fd;                /* the agent's end of the socket pair */
    int index;             /* the agent's slot number, for messages */
    const swarm_file *swarm;
    int32_t n_threads;     /* inference threads */
    uint32_t heartbeat_ms;
    const agent_executor *executor; /* NULL: the model executor */
} agent_config;

/* Runs the agent until it is told to stop or the runner goes away and
 * returns the process exit status (0 after WIRE_STOP). Called in the
 * child right after fork; the caller _exit()s with the result. */
int agent_main(const agent_config *cfg);

/* The default executor (exec.h). */
extern const agent_executor agent_model_executor;

#endif
