/*
 * Connecting to NATS: options, credentials, the JetStream check, error
 * messages that name the server without its credentials, and the
 * helpers the other files of src/nats/ share.
 *
 * Connection options follow what was measured on nats-server 2.9.10
 * with nats.c 3.4.1 on loopback: without SendAsap nats.c buffers each
 * publish, pull request and reply up to 1 ms in its flusher thread, so
 * every hop costs about 1 ms more. A dead link is noticed after
 * ping_interval x max_pings_out, because a powered-off machine sends no
 * TCP reset.
 */
#define _GNU_SOURCE
#include "nats/natsx_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DEFAULT_PING_INTERVAL_MS 1000
#define DEFAULT_MAX_PINGS_OUT 2
#define DEFAULT_RECONNECT_WAIT_MS 250
/* Random extra wait per reconnect round, so that many clients of a
 * restarted server do not all come back in the same millisecond. */
#define RECONNECT_JITTER_MS 50
/* Publishes kept while reconnecting (bytes). */
#define RECONNECT_BUFFER_BYTES (8 << 20)
/* Pause between JetStream checks while a cluster elects its leader. */
#define JETSTREAM_CHECK_PAUSE_MS 100
#define MAX_SERVERS 64

int64_t natsx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void natsx_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

const char *natsx_url_redact(const char *url, char *buf, size_t size)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *end = host + strcspn(host, "/,; ");
    const char *at = NULL;

    /* The user information ends at the last '@' before the path. */
    for (const char *p = host; p < end; p++)
        if (*p == '@')
            at = p;
    if (!at) {
        snprintf(buf, size, "%s", url);
        return buf;
    }
    snprintf(buf, size, "%.*s%s", (int)(host - url), url, at + 1);
    return buf;
}

/* Rewrites every "scheme://user@host" in text in place without its user
 * information, so nats.c messages that quote a URL leak nothing. */
static void redact_text(char *text)
{
    char *p = text;
    while ((p = strstr(p, "://")) != NULL) {
        char *host = p + 3;
        char *end = host + strcspn(host, "/,; \"'");
        char *at = NULL;
        for (char *q = host; q < end; q++)
            if (*q == '@')
                at = q;
        if (at)
            memmove(host, at + 1, strlen(at + 1) + 1);
        p = host;
    }
}

const char *natsx_last_text(natsStatus s, char *buf, size_t size)
{
    natsStatus last = NATS_OK;
    const char *text = nats_GetLastError(&last);

    if (!text || !*text)
        text = natsStatus_GetText(s);
    /* Drop the "(jsm.c:1033): " source location that nats.c puts first. */
    const char *close = text[0] == '(' ? strstr(text, "): ") : NULL;
    if (close && close - text < 40)
        text = close + 3;
    snprintf(buf, size, "%s", text);
    redact_text(buf);
    return buf;
}

bool natsx_last_text_has(const char *needle)
{
    natsStatus last = NATS_OK;
    const char *text = nats_GetLastError(&last);
    return text && strcasestr(text, needle) != NULL;
}

roj_status natsx_fail(roj_status status, natsStatus s, jsErrCode jerr,
                      const char *fmt, ...)
{
    char what[512], text[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    natsx_last_text(s, text, sizeof text);
    if (jerr)
        return roj_error(status, "%s: %s (JetStream error %d)", what, text,
                         (int)jerr);
    return roj_error(status, "%s: %s", what, text);
}

bool natsx_is_transient(natsStatus s, jsErrCode jerr)
{
    if (s == NATS_OK)
        return false;
    /* During a leader election nats-server 2.9.10 replies "JetStream not
     * enabled" (10076) or "cluster not available" (10008), or nothing. */
    if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS)
        return true;
    if (jerr == JSNotEnabledErr || jerr == JSClusterNotAvailErr)
        return true;
    return natsx_last_text_has("leadership change");
}

/* ---- Options ---- */

/* Returns value, or the environment variable name when value is NULL
 * and the environment may be read. Empty strings count as unset. */
static const char *option_or_env(const char *value, const char *name,
                                 bool no_env)
{
    if (value && *value)
        return value;
    if (no_env)
        return NULL;
    const char *env = getenv(name);
    return env && *env ? env : NULL;
}

/* Finds the NKey public key (a 56-character line starting with 'U')
 * in the seed file, which `nk -gen user -pubout` writes after the
 * seed. nats.c needs it, and deriving it from the seed would take an
 * Ed25519 implementation. */
static roj_status nkey_public(const char *path, char *pub, size_t size)
{
    FILE *f = fopen(path, "r");
    char line[256];
    bool found = false;

    if (!f)
        return roj_error(ROJ_ERR_IO, "nats: cannot open the NKey seed file "
                         "%s: %s", path, strerror(errno));
    while (!found && fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\r\n \t");
        if (n == 56 && line[0] == 'U' && n < size) {
            memcpy(pub, line, n);
            pub[n] = '\0';
            found = true;
        }
    }
    fclose(f);
    if (!found)
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: the NKey seed file %s "
                         "holds no user public key line (56 characters "
                         "starting with U); write it with `nk -gen user "
                         "-pubout` or add the public key after the seed",
                         path);
    return ROJ_OK;
}

/* Sets the credentials and TLS files from opt or the environment. */
static roj_status options_set_auth(natsOptions *o, const natsx_options *opt)
{
    bool no_env = opt->no_env;
    const char *user = option_or_env(opt->user, "ROJ_NATS_USER", no_env);
    const char *password =
        option_or_env(opt->password, "ROJ_NATS_PASSWORD", no_env);
    const char *token = option_or_env(opt->token, "ROJ_NATS_TOKEN", no_env);
    const char *creds =
        option_or_env(opt->creds_file, "ROJ_NATS_CREDS", no_env);
    const char *nkey = option_or_env(opt->nkey_file, "ROJ_NATS_NKEY", no_env);
    const char *ca = option_or_env(opt->tls_ca_file, "ROJ_NATS_TLS_CA",
                                   no_env);
    const char *cert = option_or_env(opt->tls_cert_file, "ROJ_NATS_TLS_CERT",
                                     no_env);
    const char *key = option_or_env(opt->tls_key_file, "ROJ_NATS_TLS_KEY",
                                    no_env);
    natsStatus s = NATS_OK;

    if (user || password) {
        if (!user || !password)
            return roj_error(ROJ_ERR_INVALID_ARG, "nats: a user needs a "
                             "password and a password needs a user: set "
                             "both ROJ_NATS_USER and ROJ_NATS_PASSWORD");
        s = natsOptions_SetUserInfo(o, user, password);
    }
    if (s == NATS_OK && token)
        s = natsOptions_SetToken(o, token);
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_INVALID_ARG, s, 0,
                          "nats: cannot set the user or token");
    if (creds && nkey)
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: set either a "
                         "credentials file (ROJ_NATS_CREDS) or an NKey seed "
                         "file (ROJ_NATS_NKEY), not both");
    if (creds) {
        s = natsOptions_SetUserCredentialsFromFiles(o, creds, NULL);
        if (s != NATS_OK)
            return natsx_fail(ROJ_ERR_INVALID_ARG, s, 0, "nats: cannot use "
                              "the credentials file %s", creds);
    }
    if (nkey) {
        char pub[64];
        roj_status st = nkey_public(nkey, pub, sizeof pub);
        if (st != ROJ_OK)
            return st;
        s = natsOptions_SetNKeyFromSeed(o, pub, nkey);
        if (s != NATS_OK)
            return natsx_fail(ROJ_ERR_INVALID_ARG, s, 0, "nats: cannot use "
                              "the NKey seed file %s", nkey);
    }

    /* TLS: a CA file alone verifies the server; a certificate and its
     * key also identify this client. */
    if (!ca && !cert && !key)
        return ROJ_OK;
    if (!cert != !key)
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: a TLS certificate "
                         "(ROJ_NATS_TLS_CERT) needs its key "
                         "(ROJ_NATS_TLS_KEY) and the other way round");
    s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK && ca)
        s = natsOptions_LoadCATrustedCertificates(o, ca);
    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_INVALID_ARG, s, 0, "nats: cannot load the "
                          "TLS CA file %s", ca ? ca : "(none)");
    if (cert) {
        s = natsOptions_LoadCertificatesChain(o, cert, key);
        if (s != NATS_OK)
            return natsx_fail(ROJ_ERR_INVALID_ARG, s, 0, "nats: cannot load "
                              "the TLS certificate %s with key %s", cert,
                              key);
    }
    return ROJ_OK;
}

/* The callbacks run on nats.c's threads, possibly after natsx_close
 * has freed the handle, so they take no closure. */
static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)closure;
    if (natsConnection_IsClosed(nc))
        return;
    log_warn("nats: disconnected from the server, reconnecting");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    char url[256], clean[256];
    (void)closure;
    if (natsConnection_GetConnectedUrl(nc, url, sizeof url) != NATS_OK)
        url[0] = '\0';
    /* A warning, like the disconnect, so that a log filtered to warnings
     * shows both. */
    log_warn("nats: reconnected to %s",
             natsx_url_redact(url, clean, sizeof clean));
}

static void on_async_error(natsConnection *nc, natsSubscription *sub,
                           natsStatus err, void *closure)
{
    (void)nc;
    (void)sub;
    (void)closure;
    log_warn("nats: asynchronous error: %s", natsStatus_GetText(err));
}

/* Splits the comma-separated URL list into urls (pointers into copy)
 * and writes the redacted list into shown. Returns the count, 0 when
 * the list is empty, -1 when it is too long. */
static int split_urls(char *copy, const char **urls, char *shown,
                      size_t shown_size)
{
    int n = 0;
    size_t used = 0;
    char *save = NULL;

    shown[0] = '\0';
    for (char *t = strtok_r(copy, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        char clean[512];
        while (*t == ' ' || *t == '\t')
            t++;
        size_t len = strlen(t);
        while (len > 0 && (t[len - 1] == ' ' || t[len - 1] == '\t'))
            t[--len] = '\0';
        if (!*t)
            continue;
        if (n == MAX_SERVERS)
            return -1;
        urls[n++] = t;
        natsx_url_redact(t, clean, sizeof clean);
        int w = snprintf(shown + used, shown_size - used, "%s%s",
                         used ? "," : "", clean);
        if (w > 0 && (size_t)w < shown_size - used)
            used += (size_t)w;
    }
    return n;
}

/* Builds the nats.c options: servers, timing, callbacks, credentials. */
static roj_status options_build(const natsx_options *opt, const char **urls,
                                int n_urls, char *shown, natsOptions **out)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    uint32_t timeout = opt->connect_timeout_ms ? opt->connect_timeout_ms
                                               : DEFAULT_CONNECT_TIMEOUT_MS;
    uint32_t ping = opt->ping_interval_ms ? opt->ping_interval_ms
                                          : DEFAULT_PING_INTERVAL_MS;
    int pings = opt->max_pings_out > 0 ? opt->max_pings_out
                                       : DEFAULT_MAX_PINGS_OUT;
    uint32_t wait = opt->reconnect_wait_ms ? opt->reconnect_wait_ms
                                           : DEFAULT_RECONNECT_WAIT_MS;

    if (s != NATS_OK)
        return natsx_fail(ROJ_ERR_NOMEM, s, 0, "nats: cannot create options");
    s = natsOptions_SetServers(o, urls, n_urls);
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return natsx_fail(ROJ_ERR_INVALID_ARG, s, 0, "nats: invalid server "
                          "URL list %s (expected nats://host:port, comma-"
                          "separated)", shown);
    }
    if (s == NATS_OK)
        s = natsOptions_SetName(o, opt->name ? opt->name : "roj");
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, timeout);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(o, ping);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(o, pings);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, wait);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(o, RECONNECT_JITTER_MS,
                                           RECONNECT_JITTER_MS);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(o, RECONNECT_BUFFER_BYTES);
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, true);
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return natsx_fail(ROJ_ERR_INVALID_ARG, s, 0, "nats: cannot set the "
                          "connection options");
    }
    roj_status st = options_set_auth(o, opt);
    if (st != ROJ_OK) {
        natsOptions_Destroy(o);
        return st;
    }
    *out = o;
    return ROJ_OK;
}

/* Returns true when a tls:// URL or any TLS file is set. */
static bool tls_configured(const natsx_options *opt)
{
    bool no_env = opt->no_env;
    return strstr(opt->urls, "tls://") != NULL ||
           option_or_env(opt->tls_ca_file, "ROJ_NATS_TLS_CA", no_env) ||
           option_or_env(opt->tls_cert_file, "ROJ_NATS_TLS_CERT", no_env) ||
           option_or_env(opt->tls_key_file, "ROJ_NATS_TLS_KEY", no_env);
}

/* Whether a TCP connection to host:port of url ("scheme://[user@]host:port")
 * opens within wait_ms. */
static bool tcp_reachable(const char *url, int wait_ms)
{
    char host[256], port[16] = "4222";
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *at = strchr(p, '@');
    if (at)
        p = at + 1;
    size_t len = strcspn(p, ":/");
    if (len == 0 || len >= sizeof host)
        return false;
    memcpy(host, p, len);
    host[len] = '\0';
    if (p[len] == ':') {
        size_t plen = strcspn(p + len + 1, "/");
        if (plen == 0 || plen >= sizeof port)
            return false;
        memcpy(port, p + len + 1, plen);
        port[plen] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return false;
    bool ok = false;
    for (struct addrinfo *ai = res; ai && !ok; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
                        SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            ok = true;
        } else if (errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int err = 0;
            socklen_t elen = sizeof err;
            ok = poll(&pfd, 1, wait_ms) == 1 &&
                 getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 &&
                 err == 0;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return ok;
}

/* Whether any server of the comma-separated list accepts a TCP
 * connection. */
static bool any_reachable(const char *urls)
{
    char one[512];
    for (const char *p = urls; *p;) {
        size_t len = strcspn(p, ",");
        if (len > 0 && len < sizeof one) {
            memcpy(one, p, len);
            one[len] = '\0';
            if (tcp_reachable(one, 1000))
                return true;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

/* Turns a failed natsConnection_Connect into a message for the user. */
static roj_status connect_error(natsStatus s, const char *shown,
                                uint32_t timeout_ms,
                                const natsx_options *opt)
{
    if (s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED ||
        natsx_last_text_has("authorization violation") ||
        natsx_last_text_has("authentication"))
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: %s rejected the "
                         "credentials (authorization violation): check the "
                         "user and password (ROJ_NATS_USER and "
                         "ROJ_NATS_PASSWORD, or in the URL), ROJ_NATS_TOKEN, "
                         "ROJ_NATS_CREDS or ROJ_NATS_NKEY against the "
                         "server's configuration", shown);
    if (s == NATS_SSL_ERROR || s == NATS_SECURE_CONNECTION_REQUIRED ||
        s == NATS_SECURE_CONNECTION_WANTED)
        return natsx_fail(ROJ_ERR_IO, s, 0, "nats: TLS with %s failed: "
                          "check ROJ_NATS_TLS_CA, ROJ_NATS_TLS_CERT and "
                          "ROJ_NATS_TLS_KEY and whether the server has TLS "
                          "enabled", shown);
    /* In TLS 1.3 the server checks the client certificate after the
     * client's side of the handshake is done, so a missing or untrusted
     * one shows in nats.c 3.4.1 as NATS_PROTOCOL_ERROR "Expected 'PONG',
     * got ''" when nats-server (2.9.10) closes the connection. */
    /* Depending on timing the same close can also show as an I/O error;
     * then a server that still accepts TCP connections is the sign. */
    if (tls_configured(opt) &&
        (s == NATS_PROTOCOL_ERROR ||
         ((s == NATS_NO_SERVER || s == NATS_IO_ERROR) &&
          any_reachable(opt->urls))))
        return natsx_fail(ROJ_ERR_IO, s, 0, "nats: %s closed the TLS "
                          "connection before the first PONG, as nats-server "
                          "does when it rejects the client certificate or "
                          "gets none: check ROJ_NATS_TLS_CERT and "
                          "ROJ_NATS_TLS_KEY against the CA the server "
                          "trusts", shown);
    /* nats.c reads the seed only now, to sign the server's nonce. At
     * most one of the two files is set (options_set_auth checks). */
    const char *seed_file =
        option_or_env(opt->creds_file, "ROJ_NATS_CREDS", opt->no_env);
    if (!seed_file)
        seed_file = option_or_env(opt->nkey_file, "ROJ_NATS_NKEY",
                                  opt->no_env);
    if (seed_file && natsx_last_text_has("checksum"))
        return natsx_fail(ROJ_ERR_INVALID_ARG, s, 0, "nats: cannot log "
                          "in to %s: the NKey seed in %s is invalid (its "
                          "checksum does not match): replace the file with "
                          "an intact copy", shown, seed_file);
    if (s == NATS_NO_SERVER || s == NATS_TIMEOUT || s == NATS_IO_ERROR ||
        s == NATS_SYS_ERROR)
        return roj_error(ROJ_ERR_IO, "nats: cannot reach %s (server "
                         "unreachable: connection refused or no answer "
                         "within %u ms): check that nats-server runs there "
                         "and that the host and port are right", shown,
                         timeout_ms);
    return natsx_fail(ROJ_ERR_IO, s, 0, "nats: cannot connect to %s", shown);
}

/* Asks for the JetStream account info until the server replies or the timeout
 * passes, because a cluster replies only once it has elected a leader. */
static roj_status jetstream_check(natsx_conn *c, uint32_t timeout_ms)
{
    int64_t deadline = natsx_now_ms() + timeout_ms;
    char url[512], clean[512];

    for (;;) {
        jsAccountInfo *ai = NULL;
        jsErrCode jerr = 0;
        jsOptions jo;
        int64_t left = deadline - natsx_now_ms();

        jsOptions_Init(&jo);
        jo.Wait = left > 0 ? left : 1;
        natsStatus s = js_GetAccountInfo(&ai, c->js, &jo, &jerr);
        if (s == NATS_OK) {
            jsAccountInfo_Destroy(ai);
            return ROJ_OK;
        }
        if (natsConnection_GetConnectedUrl(c->nc, url, sizeof url) !=
            NATS_OK)
            snprintf(url, sizeof url, "%s", c->urls);
        natsx_url_redact(url, clean, sizeof clean);
        if (jerr == JSNotEnabledForAccountErr)
            return roj_error(ROJ_ERR_UNSUPPORTED, "nats: JetStream is not "
                             "enabled for this account on %s: add "
                             "`jetstream: enabled` to the account in the "
                             "server's configuration", clean);
        if (!natsx_is_transient(s, jerr))
            return natsx_fail(ROJ_ERR_IO, s, jerr, "nats: the JetStream "
                              "account info request to %s failed", clean);
        if (natsx_now_ms() + JETSTREAM_CHECK_PAUSE_MS >= deadline)
            return roj_error(ROJ_ERR_UNSUPPORTED, "nats: JetStream is not "
                             "enabled on %s (no answer to the JetStream "
                             "account info request within %u ms): start "
                             "nats-server with -js or a jetstream block in "
                             "its configuration; in a cluster, check that "
                             "a majority of the servers is running",
                             clean, timeout_ms);
        natsx_sleep_ms(JETSTREAM_CHECK_PAUSE_MS);
    }
}

roj_status natsx_connect(const natsx_options *opt, natsx_conn **out)
{
    const char *urls[MAX_SERVERS];
    char shown[2048];
    char *copy = NULL;
    natsOptions *o = NULL;
    natsx_conn *c = NULL;
    roj_status st;
    uint32_t timeout = opt->connect_timeout_ms ? opt->connect_timeout_ms
                                               : DEFAULT_CONNECT_TIMEOUT_MS;

    *out = NULL;
    if (!opt->urls || !*opt->urls)
        return roj_error(ROJ_ERR_INVALID_ARG, "nats: no server URL given "
                         "(expected nats://host:port, comma-separated)");
    if ((st = natsdl_load()) != ROJ_OK)
        return st;
    copy = strdup(opt->urls);
    if (!copy)
        return roj_error(ROJ_ERR_NOMEM, "nats: out of memory");
    int n = split_urls(copy, urls, shown, sizeof shown);
    if (n <= 0) {
        st = roj_error(ROJ_ERR_INVALID_ARG, n == 0 ? "nats: no server URL "
                       "given" : "nats: more than %d server URLs",
                       MAX_SERVERS);
        goto fail_urls;
    }
    c = calloc(1, sizeof *c);
    if (!c || !(c->urls = strdup(shown))) {
        st = roj_error(ROJ_ERR_NOMEM, "nats: out of memory");
        goto fail_alloc;
    }
    st = options_build(opt, urls, n, shown, &o);
    if (st != ROJ_OK)
        goto fail_alloc;
    natsStatus s = natsOptions_SetDisconnectedCB(o, on_disconnected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_async_error, NULL);
    if (s != NATS_OK) {
        st = natsx_fail(ROJ_ERR_INTERNAL, s, 0, "nats: cannot set callbacks");
        goto fail_options;
    }

    /* Connect, then make sure JetStream replies there. */
    s = natsConnection_Connect(&c->nc, o);
    if (s != NATS_OK) {
        st = connect_error(s, shown, timeout, opt);
        goto fail_options;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = NATSX_API_WAIT_MS;
    s = natsConnection_JetStream(&c->js, c->nc, &jo);
    if (s != NATS_OK) {
        st = natsx_fail(ROJ_ERR_INTERNAL, s, 0, "nats: cannot create a "
                        "JetStream context for %s", shown);
        goto fail_connection;
    }
    st = jetstream_check(c, timeout);
    if (st != ROJ_OK)
        goto fail_connection;
    natsOptions_Destroy(o);
    free(copy);
    log_info("nats: connected to %s", shown);
    *out = c;
    return ROJ_OK;

fail_connection:
    jsCtx_Destroy(c->js);
    natsConnection_Close(c->nc);
    natsConnection_Destroy(c->nc);
fail_options:
    natsOptions_Destroy(o);
fail_alloc:
    if (c)
        free(c->urls);
    free(c);
fail_urls:
    free(copy);
    return st;
}

void natsx_close(natsx_conn *c)
{
    if (!c)
        return;
    jsCtx_Destroy(c->js);
    natsConnection_Close(c->nc);
    natsConnection_Destroy(c->nc);
    free(c->urls);
    free(c);
}

void natsx_library_close(uint32_t timeout_ms)
{
    if (natsdl_loaded())
        nats_CloseAndWait(timeout_ms);
}

natsConnection *natsx_connection(natsx_conn *c)
{
    return c->nc;
}

jsCtx *natsx_jetstream(natsx_conn *c)
{
    return c->js;
}

const char *natsx_connected_url(natsx_conn *c, char *buf, size_t size)
{
    char url[512];
    if (natsConnection_GetConnectedUrl(c->nc, url, sizeof url) != NATS_OK) {
        if (size)
            buf[0] = '\0';
        return buf;
    }
    return natsx_url_redact(url, buf, size);
}
