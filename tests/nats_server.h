/*
 * nats-server processes for tests, on 127.0.0.1 only. A single node
 * runs with or without JetStream, with user/password auth or with
 * config text of the caller's (token, NKey, TLS or operator mode). A
 * 3-node JetStream cluster has routes on loopback. Ports are chosen
 * free by binding port 0; each server gets its own temporary folder
 * (config, log, JetStream store), removed by nts_free.
 *
 * Servers run as child processes that die with the test process
 * (PR_SET_PDEATHSIG), so a crashed test leaves none behind. They are
 * stopped by PID only: SIGTERM, then SIGKILL after a timeout.
 *
 * When the nats-server binary is missing ($ROJ_NATS_SERVER, else
 * nats-server on PATH), nts_require prints a SKIPPED line and exits
 * with TEST_SKIP_EXIT.
 */
#ifndef ROJ_TESTS_NATS_SERVER_H
#define ROJ_TESTS_NATS_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

typedef enum nts_kind {
    NTS_JETSTREAM,   /* JetStream on, no auth */
    NTS_PLAIN,       /* JetStream off */
    NTS_AUTH         /* JetStream on, one user with a password */
} nts_kind;

typedef struct nts_server {
    pid_t pid;              /* 0 while stopped */
    int port;               /* client port */
    int http_port;          /* monitoring port (/healthz) */
    int cluster_port;       /* route port; 0 outside a cluster */
    char url[64];           /* nats://127.0.0.1:port */
    char dir[512];          /* the server's folder */
    char conf[600];         /* dir/server.conf */
    char log[600];          /* dir/server.log: stdout and stderr */
} nts_server;

#define NTS_CLUSTER_SIZE 3

typedef struct nts_cluster {
    nts_server nodes[NTS_CLUSTER_SIZE];
    char urls[256];         /* every node's URL, comma-separated */
} nts_cluster;

/* Returns the nats-server program to run, or NULL when it is missing. */
const char *nts_binary(void);

/* Exits the test program with TEST_SKIP_EXIT when nats-server is
 * missing, after printing a SKIPPED line. */
void nts_require(void);

/* Starts one server and waits until /healthz returns 200. For NTS_AUTH,
 * user and password are its only account. Returns 0, or -1 after
 * printing why (with the server's log). */
int nts_start(nts_server *s, nts_kind kind, const char *user,
              const char *password);

/* Starts one JetStream server without auth whose config ends with
 * extra, nats-server config text such as an authorization, tls or
 * operator block. Paths in extra must be absolute. Waits and returns
 * as nts_start does. s->url keeps the nats:// scheme even with TLS. */
int nts_start_conf(nts_server *s, const char *extra);

/* Starts three JetStream servers routed to each other and waits until
 * each reports a JetStream meta leader. Returns 0 or -1. */
int nts_cluster_start(nts_cluster *c);

/* Restarts a stopped or killed server with its config and store and
 * waits until its monitoring port responds (not until it has
 * caught up: check that through JetStream). */
int nts_restart(nts_server *s);

/* SIGTERM, then SIGKILL after timeout_ms; reaps the process. */
void nts_stop(nts_server *s, int timeout_ms);

/* SIGKILL at once (a crash); reaps the process. */
void nts_kill(nts_server *s);

/* Stops the server and removes its folder. Safe on a zeroed struct. */
void nts_free(nts_server *s);

void nts_cluster_free(nts_cluster *c);

/* Waits until the server's /healthz returns 200; returns 0 or -1. */
int nts_wait_healthy(nts_server *s, int timeout_ms);

/* Returns a port on 127.0.0.1 that nothing listens on right now. */
int nts_free_port(void);

#endif
