#define _GNU_SOURCE
#include "nats_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* How long a server may take to report healthy (milliseconds). A
 * cluster's meta leader election took up to about 1 s on a 2-vCPU
 * machine; the margin covers slow CI runners. */
#define HEALTHY_TIMEOUT_MS 15000
#define POLL_MS 20

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

const char *nts_binary(void)
{
    static char found[4096];
    const char *env = getenv("ROJ_NATS_SERVER");
    if (env && *env)
        return access(env, X_OK) == 0 ? env : NULL;

    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
    char *copy = strdup(path);
    char *save = NULL;
    const char *result = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir && !result;
         dir = strtok_r(NULL, ":", &save)) {
        snprintf(found, sizeof found, "%s/nats-server", dir);
        if (access(found, X_OK) == 0)
            result = found;
    }
    free(copy);
    /* Debian puts it in /usr/sbin, which a user's PATH may lack. */
    if (!result && access("/usr/sbin/nats-server", X_OK) == 0)
        result = "/usr/sbin/nats-server";
    return result;
}

void nts_require(void)
{
    if (nts_binary())
        return;
    printf("SKIPPED: nats-server not found (install the Debian package "
           "nats-server or set ROJ_NATS_SERVER)\n");
    fflush(stdout);
    exit(TEST_SKIP_EXIT);
}

int nts_free_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    if (fd < 0)
        return -1;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Fills n distinct free ports. Two calls to nts_free_port may return
 * the same port once it is closed, so duplicates are drawn again. */
static int free_ports(int *ports, int n)
{
    for (int i = 0; i < n; i++) {
        bool again;
        int tries = 0;
        do {
            ports[i] = nts_free_port();
            again = ports[i] <= 0;
            for (int j = 0; j < i && !again; j++)
                again = ports[j] == ports[i];
        } while (again && ++tries < 100);
        if (again)
            return -1;
    }
    return 0;
}

/* Creates the server's folder and names its files. */
static int server_init(nts_server *s, const char *name)
{
    const char *base = getenv("TMPDIR");
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s/roj-nats-%s-XXXXXX",
             base && *base ? base : "/tmp", name);
    if (!mkdtemp(s->dir)) {
        fprintf(stderr, "nats test server: mkdtemp %s: %s\n", s->dir,
                strerror(errno));
        s->dir[0] = '\0';
        return -1;
    }
    snprintf(s->conf, sizeof s->conf, "%s/server.conf", s->dir);
    snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);
    return 0;
}

/* Writes the config: name, loopback listeners, the optional
 * JetStream, auth and cluster blocks, then extra (config text or NULL).
 * routes[] lists the other nodes' route ports (n_routes of them). */
static int write_conf(nts_server *s, const char *name, nts_kind kind,
                      const char *user, const char *password,
                      const int *routes, int n_routes, const char *extra)
{
    FILE *f = fopen(s->conf, "w");
    if (!f) {
        fprintf(stderr, "nats test server: cannot write %s: %s\n", s->conf,
                strerror(errno));
        return -1;
    }
    fprintf(f, "server_name: %s\nlisten: 127.0.0.1:%d\n"
               "http: 127.0.0.1:%d\n", name, s->port, s->http_port);
    if (kind != NTS_PLAIN)
        fprintf(f, "jetstream {\n  store_dir: \"%s/store\"\n"
                   "  max_memory_store: 64MB\n  max_file_store: 1GB\n}\n",
                s->dir);
    if (kind == NTS_AUTH)
        fprintf(f, "authorization {\n  user: \"%s\"\n  password: \"%s\"\n"
                   "}\n", user, password);
    if (s->cluster_port) {
        fprintf(f, "cluster {\n  name: roj-test\n"
                   "  listen: 127.0.0.1:%d\n  routes: [\n",
                s->cluster_port);
        for (int i = 0; i < n_routes; i++)
            fprintf(f, "    nats-route://127.0.0.1:%d\n", routes[i]);
        fprintf(f, "  ]\n}\n");
    }
    if (extra)
        fprintf(f, "%s\n", extra);
    fclose(f);
    snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", s->port);
    return 0;
}

/* Prints the tail of the server's log, to explain a failed start. */
static void print_log(const nts_server *s)
{
    FILE *f = fopen(s->log, "r");
    char line[512];
    if (!f)
        return;
    fprintf(stderr, "---- %s ----\n", s->log);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > 4000 ? size - 4000 : 0, SEEK_SET);
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

/* Forks nats-server -c conf with stdout and stderr in the log file. */
static int spawn(nts_server *s)
{
    const char *bin = nts_binary();
    if (!bin) {
        fprintf(stderr, "nats test server: nats-server not found\n");
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "nats test server: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* The server dies with the test, even when the test crashes. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execl(bin, bin, "-c", s->conf, (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    return 0;
}

/* Sends GET path to the monitoring port; returns the HTTP status, or -1
 * when nothing answers. */
static int http_status(int port, const char *path)
{
    struct sockaddr_in a = {0};
    struct timeval tv = {1, 0};
    char reply[256];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int status = -1;

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        char req[256];
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n"
                         "Host: 127.0.0.1\r\n\r\n", path);
        ssize_t got = 0;
        if (write(fd, req, (size_t)n) == n)
            got = read(fd, reply, sizeof reply - 1);
        if (got > 0) {
            reply[got] = '\0';
            if (sscanf(reply, "HTTP/%*s %d", &status) != 1)
                status = -1;
        }
    }
    close(fd);
    return status;
}

/* Waits until GET path returns 200; returns 0 or -1. */
static int wait_http(nts_server *s, const char *path, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    int last = -1;
    while (now_ms() < deadline) {
        int status;
        if (s->pid && waitpid(s->pid, &status, WNOHANG) == s->pid) {
            fprintf(stderr, "nats test server %s exited during start "
                    "(status %d)\n", s->url, status);
            s->pid = 0;
            print_log(s);
            return -1;
        }
        last = http_status(s->http_port, path);
        if (last == 200)
            return 0;
        sleep_ms(POLL_MS);
    }
    fprintf(stderr, "nats test server %s: no 200 from %s after %d ms "
            "(last status %d)\n", s->url, path, timeout_ms, last);
    print_log(s);
    return -1;
}

int nts_wait_healthy(nts_server *s, int timeout_ms)
{
    return wait_http(s, "/healthz", timeout_ms);
}

/* Starts one server from kind, user, password and extra config text. */
static int start_single(nts_server *s, nts_kind kind, const char *user,
                        const char *password, const char *extra)
{
    int ports[2];
    if (server_init(s, "single") != 0)
        return -1;
    if (free_ports(ports, 2) != 0) {
        fprintf(stderr, "nats test server: no free port on 127.0.0.1\n");
        return -1;
    }
    s->port = ports[0];
    s->http_port = ports[1];
    if (write_conf(s, "single", kind, user, password, NULL, 0,
                   extra) != 0 ||
        spawn(s) != 0)
        return -1;
    return nts_wait_healthy(s, HEALTHY_TIMEOUT_MS);
}

int nts_start(nts_server *s, nts_kind kind, const char *user,
              const char *password)
{
    return start_single(s, kind, user, password, NULL);
}

int nts_start_conf(nts_server *s, const char *extra)
{
    return start_single(s, NTS_JETSTREAM, NULL, NULL, extra);
}

int nts_cluster_start(nts_cluster *c)
{
    int ports[3 * NTS_CLUSTER_SIZE];
    size_t used = 0;

    memset(c, 0, sizeof *c);
    if (free_ports(ports, 3 * NTS_CLUSTER_SIZE) != 0) {
        fprintf(stderr, "nats test cluster: no free ports on 127.0.0.1\n");
        return -1;
    }

    /* Write every config first: each node routes to the other two. */
    for (int i = 0; i < NTS_CLUSTER_SIZE; i++) {
        nts_server *s = &c->nodes[i];
        char name[16];
        int routes[NTS_CLUSTER_SIZE - 1], n_routes = 0;
        snprintf(name, sizeof name, "n%d", i + 1);
        if (server_init(s, name) != 0)
            return -1;
        s->port = ports[3 * i];
        s->http_port = ports[3 * i + 1];
        s->cluster_port = ports[3 * i + 2];
        for (int j = 0; j < NTS_CLUSTER_SIZE; j++)
            if (j != i)
                routes[n_routes++] = ports[3 * j + 2];
        if (write_conf(s, name, NTS_JETSTREAM, NULL, NULL, routes,
                       n_routes, NULL) != 0)
            return -1;
        used += (size_t)snprintf(c->urls + used, sizeof c->urls - used,
                                 "%s%s", i ? "," : "", s->url);
    }
    for (int i = 0; i < NTS_CLUSTER_SIZE; i++)
        if (spawn(&c->nodes[i]) != 0)
            return -1;
    for (int i = 0; i < NTS_CLUSTER_SIZE; i++)
        if (nts_wait_healthy(&c->nodes[i], HEALTHY_TIMEOUT_MS) != 0)
            return -1;
    return 0;
}

int nts_restart(nts_server *s)
{
    if (s->pid)
        nts_stop(s, 5000);
    if (spawn(s) != 0)
        return -1;
    /* /healthz of nats-server 2.9.10 also requires every replicated
     * consumer on the node to be current, which a restarted node may
     * not be until the consumer has traffic; /varz only shows that the
     * server is up. */
    return wait_http(s, "/varz", HEALTHY_TIMEOUT_MS);
}

/* Waits up to timeout_ms for the process to exit; true when reaped. */
static bool reap(pid_t pid, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    int status;
    do {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return true;
        sleep_ms(POLL_MS);
    } while (now_ms() < deadline);
    return false;
}

void nts_stop(nts_server *s, int timeout_ms)
{
    if (!s->pid)
        return;
    kill(s->pid, SIGTERM);
    if (!reap(s->pid, timeout_ms)) {
        fprintf(stderr, "nats test server %s ignored SIGTERM for %d ms, "
                "sending SIGKILL\n", s->url, timeout_ms);
        kill(s->pid, SIGKILL);
        reap(s->pid, 5000);
    }
    s->pid = 0;
}

void nts_kill(nts_server *s)
{
    if (!s->pid)
        return;
    kill(s->pid, SIGKILL);
    reap(s->pid, 5000);
    s->pid = 0;
}

void nts_free(nts_server *s)
{
    char command[700];
    nts_stop(s, 5000);
    if (!s->dir[0])
        return;
    snprintf(command, sizeof command, "rm -rf '%s'", s->dir);
    if (system(command) != 0)
        fprintf(stderr, "warning: could not remove %s\n", s->dir);
    s->dir[0] = '\0';
}

void nts_cluster_free(nts_cluster *c)
{
    /* Stop all first, so no node logs route errors into a folder that
     * is being removed. */
    for (int i = 0; i < NTS_CLUSTER_SIZE; i++)
        nts_stop(&c->nodes[i], 5000);
    for (int i = 0; i < NTS_CLUSTER_SIZE; i++)
        nts_free(&c->nodes[i]);
}
