/*
 * Tests of NATS credentials and TLS in src/nats/nconn.c and the CLI,
 * against real nats-server processes on 127.0.0.1: tokens, TLS with
 * client certificates, NKeys, credentials files in operator mode, and
 * that no secret reaches an error message or roj's output.
 *
 * Key material is made at test time. The TLS tests run the openssl
 * program. The NKey and credentials tests use libcrypto's Ed25519 and
 * encode keys and JWTs here, in the formats that the NATS Go libraries
 * define (github.com/nats-io/nkeys strkey.go and crc16.go,
 * github.com/nats-io/jwt v2/claims.go).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#ifdef ROJ_TEST_LIBCRYPTO
#include <openssl/evp.h>
#include <openssl/rand.h>
#endif

#include "nats/natsx.h"
#include "nats_server.h"
#include "testutil.h"

extern char **environ;

/* The server of the current test, freed by the teardown even when an
 * assert fails in the middle of the test. */
static nts_server own_server;

/* Exit status of a roj command that failed at run time (CLI_EXIT_RUNTIME
 * in src/cli/cli_util.h). */
#define EXIT_RUNTIME 1

/* ---- Helpers ---- */

static int free_own_server(void **state)
{
    (void)state;
    nts_free(&own_server);
    return 0;
}

/* Builds "<test tmpdir>/name" into buf. */
static const char *tmp_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", test_tmpdir(), name);
    return buf;
}

static void write_text(const char *path, const char *text)
{
    test_write_file(path, text, strlen(text));
}

/* Connects with opt and, on success, checks that JetStream stores and
 * returns a value (a KV put and get in bucket AUTH). Returns the status
 * of natsx_connect; the JetStream steps fail the test. */
static roj_status connect_and_use(const natsx_options *opt)
{
    natsx_conn *c = NULL;
    roj_status st = natsx_connect(opt, &c);
    if (st != ROJ_OK) {
        assert_null(c);
        return st;
    }

    natsx_kv_config kc = {.bucket = "AUTH"};
    natsx_kv *kv = NULL;
    char *value = NULL;
    size_t len = 0;
    bool found = false;
    uint64_t rev = 0;
    if (natsx_kv_open(c, &kc, &kv) != ROJ_OK)
        fail_msg("KV open over %s: %s", opt->urls, roj_last_error());
    assert_int_equal(natsx_kv_put(kv, "probe", "stored", 6, &rev), ROJ_OK);
    assert_true(rev > 0);
    assert_int_equal(natsx_kv_get(kv, "probe", &found, &value, &len, NULL),
                     ROJ_OK);
    assert_true(found);
    assert_int_equal(len, 6);
    assert_string_equal(value, "stored");
    free(value);
    natsx_kv_close(kv);
    natsx_close(c);
    return ROJ_OK;
}

/* Asserts that the last error reports that the server rejected the
 * credentials and contains url. */
static void assert_rejected(const char *url)
{
    const char *msg = roj_last_error();
    if (!strstr(msg, "rejected the credentials"))
        fail_msg("expected a rejected-credentials error, got: %s", msg);
    assert_non_null(strstr(msg, url));
}

/* Runs `roj status --nats url --swarm auth-test` with the extra
 * arguments (NULL-terminated) and returns its exit status. stdout and
 * stderr go to out_path and err_path. */
static int roj_status_run(const char *url, const char *const *extra,
                          const char *out_path, const char *err_path)
{
    const char *args[32];
    size_t n = 0;
    args[n++] = "status";
    args[n++] = "--nats";
    args[n++] = url;
    args[n++] = "--swarm";
    args[n++] = "auth-test";
    while (*extra && n < 31)
        args[n++] = *extra++;
    args[n] = NULL;
    int pid = test_roj_start(args, out_path, err_path, 0);
    return test_roj_wait(pid, 20000);
}

/* Runs argv (argv[0] searched in PATH) with stdin from /dev/null and
 * stdout and stderr appended to log. Returns the exit status, or -1
 * when the program could not be started (as when it is not installed). */
static int run_program(const char *const *argv, const char *log)
{
    posix_spawn_file_actions_t actions;
    pid_t pid = 0;
    int status = 0;

    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                     O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log,
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO,
                                     STDERR_FILENO);
    int rc = posix_spawnp(&pid, argv[0], &actions, NULL,
                          (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        return -1;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- Tokens ---- */

#define TOKEN_RIGHT "tok-right-5831"
#define TOKEN_WRONG "tok-wrong-2764"

static void start_token_server(nts_server *s)
{
    assert_int_equal(nts_start_conf(s, "authorization {\n  token: \""
                                    TOKEN_RIGHT "\"\n}"), 0);
}

static void token_option_connects(void **state)
{
    (void)state;
    start_token_server(&own_server);
    natsx_options opt = {.urls = own_server.url, .no_env = true,
                         .connect_timeout_ms = 2000, .token = TOKEN_RIGHT};
    roj_status st = connect_and_use(&opt);
    if (st != ROJ_OK)
        fail_msg("connect with the right token: %s", roj_last_error());
}

static void token_env_connects(void **state)
{
    (void)state;
    start_token_server(&own_server);
    natsx_options opt = {.urls = own_server.url, .connect_timeout_ms = 2000};

    setenv("ROJ_NATS_TOKEN", TOKEN_RIGHT, 1);
    roj_status st = connect_and_use(&opt);
    unsetenv("ROJ_NATS_TOKEN");
    if (st != ROJ_OK)
        fail_msg("connect with ROJ_NATS_TOKEN: %s", roj_last_error());
}

static void token_wrong_rejected(void **state)
{
    (void)state;
    start_token_server(&own_server);
    natsx_options opt = {.urls = own_server.url, .no_env = true,
                         .connect_timeout_ms = 2000, .token = TOKEN_WRONG};

    roj_status st = connect_and_use(&opt);
    assert_int_equal(st, ROJ_ERR_INVALID_ARG);
    assert_rejected(own_server.url);
    assert_null(strstr(roj_last_error(), TOKEN_WRONG));
    assert_null(strstr(roj_last_error(), TOKEN_RIGHT));

    /* Without any token the server rejects the connection too. */
    opt.token = NULL;
    st = connect_and_use(&opt);
    assert_int_equal(st, ROJ_ERR_INVALID_ARG);
    assert_rejected(own_server.url);
}

/* ---- Secrets in the CLI's output ---- */

static void cli_wrong_token_hidden(void **state)
{
    (void)state;
    start_token_server(&own_server);
    char out[512], err[512];
    tmp_path(out, sizeof out, "token.out");
    tmp_path(err, sizeof err, "token.err");

    /* Wrong token as an option. */
    const char *wrong[] = {"--token", TOKEN_WRONG, NULL};
    int rc = roj_status_run(own_server.url, wrong, out, err);
    char *text = test_read_file(err, NULL);
    assert_int_equal(rc, EXIT_RUNTIME);
    assert_non_null(strstr(text, "rejected the credentials"));
    assert_null(strstr(text, TOKEN_WRONG));
    free(text);
    text = test_read_file(out, NULL);
    assert_string_equal(text, "");
    free(text);

    /* Wrong token from the environment. */
    const char *none[] = {NULL};
    setenv("ROJ_NATS_TOKEN", TOKEN_WRONG, 1);
    rc = roj_status_run(own_server.url, none, out, err);
    unsetenv("ROJ_NATS_TOKEN");
    text = test_read_file(err, NULL);
    assert_int_equal(rc, EXIT_RUNTIME);
    assert_non_null(strstr(text, "rejected the credentials"));
    assert_null(strstr(text, TOKEN_WRONG));
    free(text);

    /* The right token: the command works and prints no secret. */
    const char *right[] = {"--token", TOKEN_RIGHT, NULL};
    rc = roj_status_run(own_server.url, right, out, err);
    assert_int_equal(rc, 0);
    text = test_read_file(out, NULL);
    assert_non_null(strstr(text, "agents of swarm auth-test: 0"));
    assert_null(strstr(text, TOKEN_RIGHT));
    free(text);
    text = test_read_file(err, NULL);
    assert_null(strstr(text, TOKEN_RIGHT));
    free(text);
}

static void cli_wrong_password_hidden(void **state)
{
    (void)state;
    assert_int_equal(nts_start(&own_server, NTS_AUTH, "roj",
                               "pw-right-4410"), 0);
    char out[512], err[512], url[128];
    tmp_path(out, sizeof out, "password.out");
    tmp_path(err, sizeof err, "password.err");

    const char *wrong[] = {"--user", "roj", "--password", "pw-wrong-9035",
                           NULL};
    int rc = roj_status_run(own_server.url, wrong, out, err);
    char *text = test_read_file(err, NULL);
    assert_int_equal(rc, EXIT_RUNTIME);
    assert_non_null(strstr(text, "rejected the credentials"));
    assert_non_null(strstr(text, own_server.url));
    assert_null(strstr(text, "pw-wrong-9035"));
    free(text);

    /* A password inside the URL is removed from the message too. */
    snprintf(url, sizeof url, "nats://roj:pw-inurl-7712@127.0.0.1:%d",
             own_server.port);
    const char *none[] = {NULL};
    rc = roj_status_run(url, none, out, err);
    text = test_read_file(err, NULL);
    assert_int_equal(rc, EXIT_RUNTIME);
    assert_non_null(strstr(text, "rejected the credentials"));
    assert_non_null(strstr(text, own_server.url));
    assert_null(strstr(text, "pw-inurl-7712"));
    free(text);
}

/* ---- TLS ---- */

/* Certificates made once by tls_require, in the test's tmpdir. */
static struct tls_files {
    bool generated;
    char ca[512];          /* CA that signed the server and client */
    char server_cert[512];
    char server_key[512];
    char client_cert[512];
    char client_key[512];
    char other_ca[512];    /* a CA that the server does not trust */
    char other_cert[512];  /* client certificate signed by other_ca */
    char other_key[512];
    char log[512];         /* output of the openssl runs */
} tls;

/* Makes a self-signed CA certificate and key. Returns the exit status of
 * openssl. */
static int ca_make(const char *cert, const char *key, const char *name)
{
    char subject[128];
    snprintf(subject, sizeof subject, "/CN=%s", name);
    const char *argv[] = {"openssl", "req", "-x509", "-newkey", "ec",
                          "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                          "-keyout", key, "-out", cert, "-days", "2",
                          "-subj", subject, NULL};
    return run_program(argv, tls.log);
}

/* Makes a key and a certificate signed by ca (whose key is ca.key) with
 * the extensions in the text ext. Returns 0, or the first failed exit
 * status. */
static int leaf_make(const char *ca, const char *cert, const char *key,
                     const char *name, const char *ext, int serial)
{
    char subject[128], csr[600], ext_path[600], serial_text[16];
    snprintf(subject, sizeof subject, "/CN=%s", name);
    snprintf(csr, sizeof csr, "%s.csr", cert);
    snprintf(ext_path, sizeof ext_path, "%s.ext", cert);
    snprintf(serial_text, sizeof serial_text, "%d", serial);
    write_text(ext_path, ext);

    const char *request[] = {"openssl", "req", "-newkey", "ec", "-pkeyopt",
                             "ec_paramgen_curve:P-256", "-nodes",
                             "-keyout", key, "-out", csr, "-subj", subject,
                             NULL};
    int rc = run_program(request, tls.log);
    if (rc != 0)
        return rc;
    char ca_key[600];
    snprintf(ca_key, sizeof ca_key, "%s.key", ca);
    const char *sign[] = {"openssl", "x509", "-req", "-in", csr, "-CA",
                          ca, "-CAkey", ca_key, "-set_serial",
                          serial_text, "-days", "2", "-extfile", ext_path,
                          "-out", cert, NULL};
    return run_program(sign, tls.log);
}

/* Makes the CA, server and client certificates once. Skips the test
 * (printing a SKIPPED line) when openssl is missing; fails it, with
 * openssl's output, when a step fails. */
static void tls_require(void)
{
    if (tls.generated)
        return;
    const char *version[] = {"openssl", "version", NULL};
    char ca_key[600], other_key[600];

    tmp_path(tls.log, sizeof tls.log, "openssl.log");
    if (run_program(version, tls.log) != 0) {
        printf("SKIPPED: the openssl program was not found (install the "
               "Debian package openssl); TLS tests not run\n");
        fflush(stdout);
        skip();
    }
    tmp_path(tls.ca, sizeof tls.ca, "ca.pem");
    tmp_path(tls.server_cert, sizeof tls.server_cert, "server.pem");
    tmp_path(tls.server_key, sizeof tls.server_key, "server.key");
    tmp_path(tls.client_cert, sizeof tls.client_cert, "client.pem");
    tmp_path(tls.client_key, sizeof tls.client_key, "client.key");
    tmp_path(tls.other_ca, sizeof tls.other_ca, "other-ca.pem");
    tmp_path(tls.other_cert, sizeof tls.other_cert, "other-client.pem");
    tmp_path(tls.other_key, sizeof tls.other_key, "other-client.key");
    snprintf(ca_key, sizeof ca_key, "%s.key", tls.ca);
    snprintf(other_key, sizeof other_key, "%s.key", tls.other_ca);

    /* The server certificate is for the IP address the tests dial,
     * because the client checks the server's name against the URL. */
    int rc = ca_make(tls.ca, ca_key, "roj test CA");
    if (rc == 0)
        rc = leaf_make(tls.ca, tls.server_cert, tls.server_key, "127.0.0.1",
                       "subjectAltName=IP:127.0.0.1\n"
                       "extendedKeyUsage=serverAuth\n", 2);
    if (rc == 0)
        rc = leaf_make(tls.ca, tls.client_cert, tls.client_key,
                       "roj test client", "extendedKeyUsage=clientAuth\n",
                       3);
    if (rc == 0)
        rc = ca_make(tls.other_ca, other_key, "roj other CA");
    if (rc == 0)
        rc = leaf_make(tls.other_ca, tls.other_cert, tls.other_key,
                       "roj stranger", "extendedKeyUsage=clientAuth\n", 4);
    if (rc != 0) {
        char *log = test_read_file(tls.log, NULL);
        fail_msg("openssl failed (status %d):\n%s", rc, log);
    }
    tls.generated = true;
}

/* Starts a server that requires TLS and a client certificate signed by
 * tls.ca. */
static void start_tls_server(nts_server *s)
{
    char conf[4096];
    tls_require();
    snprintf(conf, sizeof conf, "tls {\n  cert_file: \"%s\"\n"
             "  key_file: \"%s\"\n  ca_file: \"%s\"\n  verify: true\n"
             "  timeout: 2\n}", tls.server_cert, tls.server_key, tls.ca);
    assert_int_equal(nts_start_conf(s, conf), 0);
}

static natsx_options tls_options(const char *urls)
{
    natsx_options opt = {.urls = urls, .no_env = true,
                         .connect_timeout_ms = 2000,
                         .tls_ca_file = tls.ca,
                         .tls_cert_file = tls.client_cert,
                         .tls_key_file = tls.client_key};
    return opt;
}

static void tls_client_cert_connects(void **state)
{
    (void)state;
    start_tls_server(&own_server);
    char tls_url[128];
    snprintf(tls_url, sizeof tls_url, "tls://127.0.0.1:%d", own_server.port);

    /* nats:// with TLS options set and tls:// both work. */
    const char *urls[] = {own_server.url, tls_url};
    for (size_t i = 0; i < 2; i++) {
        natsx_options opt = tls_options(urls[i]);
        roj_status st = connect_and_use(&opt);
        if (st != ROJ_OK)
            fail_msg("connect to %s with TLS: %s", urls[i],
                     roj_last_error());
    }
}

static void tls_env_connects(void **state)
{
    (void)state;
    start_tls_server(&own_server);
    natsx_options opt = {.urls = own_server.url, .connect_timeout_ms = 2000};

    setenv("ROJ_NATS_TLS_CA", tls.ca, 1);
    setenv("ROJ_NATS_TLS_CERT", tls.client_cert, 1);
    setenv("ROJ_NATS_TLS_KEY", tls.client_key, 1);
    roj_status st = connect_and_use(&opt);
    unsetenv("ROJ_NATS_TLS_CA");
    unsetenv("ROJ_NATS_TLS_CERT");
    unsetenv("ROJ_NATS_TLS_KEY");
    if (st != ROJ_OK)
        fail_msg("connect with ROJ_NATS_TLS_*: %s", roj_last_error());
}

/* Connects with opt and expects ROJ_ERR_IO with a message that contains
 * both words and the server's URL. */
static void expect_tls_error(const natsx_options *opt, const char *word1,
                             const char *word2)
{
    roj_status st = connect_and_use(opt);
    assert_int_equal(st, ROJ_ERR_IO);
    const char *msg = roj_last_error();
    if (!strstr(msg, word1) || !strstr(msg, word2))
        fail_msg("expected an error with '%s' and '%s', got: %s", word1,
                 word2, msg);
    assert_non_null(strstr(msg, own_server.url));
}

static void tls_without_ca_fails(void **state)
{
    (void)state;
    start_tls_server(&own_server);
    natsx_options opt = tls_options(own_server.url);
    opt.tls_ca_file = NULL;
    expect_tls_error(&opt, "TLS", "certificate");
}

static void tls_wrong_ca_fails(void **state)
{
    (void)state;
    start_tls_server(&own_server);
    natsx_options opt = tls_options(own_server.url);
    opt.tls_ca_file = tls.other_ca;
    expect_tls_error(&opt, "TLS", "certificate");
}

static void tls_client_cert_rejected(void **state)
{
    (void)state;
    start_tls_server(&own_server);
    natsx_options opt = tls_options(own_server.url);

    /* No client certificate: the server requires one (verify: true). */
    opt.tls_cert_file = NULL;
    opt.tls_key_file = NULL;
    expect_tls_error(&opt, "TLS", "rejects the client certificate");

    /* A client certificate from a CA the server does not trust. */
    opt.tls_cert_file = tls.other_cert;
    opt.tls_key_file = tls.other_key;
    expect_tls_error(&opt, "TLS", "rejects the client certificate");
}

static void tls_cli_status(void **state)
{
    (void)state;
    start_tls_server(&own_server);
    char out[512], err[512];
    tmp_path(out, sizeof out, "tls.out");
    tmp_path(err, sizeof err, "tls.err");

    const char *args[] = {"--tls-ca", tls.ca, "--tls-cert", tls.client_cert,
                          "--tls-key", tls.client_key, NULL};
    int rc = roj_status_run(own_server.url, args, out, err);
    char *text = test_read_file(err, NULL);
    if (rc != 0)
        fail_msg("roj status over TLS exited with %d: %s", rc, text);
    free(text);
    text = test_read_file(out, NULL);
    assert_non_null(strstr(text, "agents of swarm auth-test: 0"));
    assert_non_null(strstr(text, "runs: 0"));
    free(text);
}

#ifdef ROJ_TEST_LIBCRYPTO

/* ---- NKeys: Ed25519 keys in the NATS text form ---- */

/* Prefix bytes of the NKeys text form: the first base32 letter of the
 * encoded key names its type (U user, A account, O operator, S seed). */
#define NKEY_PREFIX_USER (20 << 3)
#define NKEY_PREFIX_ACCOUNT 0
#define NKEY_PREFIX_OPERATOR (14 << 3)
#define NKEY_PREFIX_SEED (18 << 3)

/* An Ed25519 key pair with its NKey seed and public key texts. */
typedef struct nkey_pair {
    uint8_t seed[32];       /* the Ed25519 private key (RFC 8032 seed) */
    char seed_text[64];     /* "SU...", "SA..." or "SO...", 58 chars */
    char public_text[64];   /* "U...", "A..." or "O...", 56 chars */
} nkey_pair;

/* Encodes data as RFC 4648 base32 without padding into out. */
static void base32_encode(const uint8_t *data, size_t len, char *out)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    uint32_t bits = 0;
    int n_bits = 0;
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        bits = (bits << 8) | data[i];
        n_bits += 8;
        while (n_bits >= 5) {
            out[n++] = alphabet[(bits >> (n_bits - 5)) & 31];
            n_bits -= 5;
        }
    }
    if (n_bits > 0)
        out[n++] = alphabet[(bits << (5 - n_bits)) & 31];
    out[n] = '\0';
}

/* CRC-16/XMODEM (polynomial 0x1021, initial value 0), the NKey checksum. */
static uint16_t crc16_xmodem(const uint8_t *data, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(data[i] << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021)
                               : (uint16_t)(crc << 1);
    }
    return crc;
}

/* Writes the NKey text of key: base32 of the prefix bytes, the 32 key
 * bytes and their CRC-16 in little-endian order. */
static void nkey_encode(const uint8_t *prefix, size_t n_prefix,
                        const uint8_t key[32], char *out)
{
    uint8_t raw[2 + 32 + 2];
    size_t n = 0;

    memcpy(raw, prefix, n_prefix);
    n += n_prefix;
    memcpy(raw + n, key, 32);
    n += 32;
    uint16_t crc = crc16_xmodem(raw, n);
    raw[n++] = (uint8_t)(crc & 0xff);
    raw[n++] = (uint8_t)(crc >> 8);
    base32_encode(raw, n, out);
}

/* Makes a new key pair of the given type (NKEY_PREFIX_USER, ...). A
 * seed carries two prefix bytes: the seed prefix with the top 3 bits
 * of the type, then the type's low 5 bits, so that both letters
 * ("SU") show in the text. */
static void nkey_pair_make(nkey_pair *kp, uint8_t type)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    EVP_PKEY *pkey = NULL;
    uint8_t public_key[32];
    size_t seed_len = sizeof kp->seed, public_len = sizeof public_key;

    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    assert_int_equal(EVP_PKEY_keygen(ctx, &pkey), 1);
    assert_int_equal(EVP_PKEY_get_raw_private_key(pkey, kp->seed, &seed_len),
                     1);
    assert_int_equal(EVP_PKEY_get_raw_public_key(pkey, public_key,
                                                 &public_len), 1);
    assert_int_equal(seed_len, 32);
    assert_int_equal(public_len, 32);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);

    const uint8_t seed_prefix[2] = {
        (uint8_t)(NKEY_PREFIX_SEED | (type >> 5)),
        (uint8_t)((type & 31) << 3)};
    nkey_encode(seed_prefix, 2, kp->seed, kp->seed_text);
    nkey_encode(&type, 1, public_key, kp->public_text);
}

/* Signs text with the key pair (Ed25519, 64-byte signature). */
static void nkey_sign(const nkey_pair *kp, const char *text, uint8_t sig[64])
{
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
                                                  kp->seed, 32);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t len = 64;

    assert_non_null(pkey);
    assert_non_null(md);
    assert_int_equal(EVP_DigestSignInit(md, NULL, NULL, NULL, pkey), 1);
    assert_int_equal(EVP_DigestSign(md, sig, &len,
                                    (const unsigned char *)text,
                                    strlen(text)), 1);
    assert_int_equal(len, 64);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
}

/* Writes the seed file that ROJ_NATS_NKEY reads: the seed line, then
 * the public key line when public_text is not NULL. */
static void nkey_file_write(const char *path, const char *seed_text,
                            const char *public_text)
{
    char text[256];
    snprintf(text, sizeof text, "%s\n%s%s", seed_text,
             public_text ? public_text : "", public_text ? "\n" : "");
    write_text(path, text);
}

static void start_nkey_server(nts_server *s, const nkey_pair *user)
{
    char conf[512];
    snprintf(conf, sizeof conf, "authorization {\n  users = [\n"
             "    { nkey: \"%s\" }\n  ]\n}", user->public_text);
    assert_int_equal(nts_start_conf(s, conf), 0);
}

static void nkey_text_form(void **state)
{
    (void)state;
    nkey_pair user, account, operator;
    nkey_pair_make(&user, NKEY_PREFIX_USER);
    nkey_pair_make(&account, NKEY_PREFIX_ACCOUNT);
    nkey_pair_make(&operator, NKEY_PREFIX_OPERATOR);

    assert_int_equal(strlen(user.public_text), 56);
    assert_int_equal(strlen(user.seed_text), 58);
    assert_int_equal(user.public_text[0], 'U');
    assert_memory_equal(user.seed_text, "SU", 2);
    assert_int_equal(account.public_text[0], 'A');
    assert_memory_equal(account.seed_text, "SA", 2);
    assert_int_equal(operator.public_text[0], 'O');
    assert_memory_equal(operator.seed_text, "SO", 2);

    /* CRC-16/XMODEM of "123456789" is 0x31C3 (its check value). */
    assert_int_equal(crc16_xmodem((const uint8_t *)"123456789", 9), 0x31c3);
    char b32[16];
    base32_encode((const uint8_t *)"foobar", 6, b32);
    assert_string_equal(b32, "MZXW6YTBOI");
}

static void nkey_option_connects(void **state)
{
    (void)state;
    nkey_pair user;
    char path[512];
    nkey_pair_make(&user, NKEY_PREFIX_USER);
    start_nkey_server(&own_server, &user);
    nkey_file_write(tmp_path(path, sizeof path, "user.nk"), user.seed_text,
                    user.public_text);

    natsx_options opt = {.urls = own_server.url, .no_env = true,
                         .connect_timeout_ms = 2000, .nkey_file = path};
    roj_status st = connect_and_use(&opt);
    if (st != ROJ_OK)
        fail_msg("connect with the NKey seed file: %s", roj_last_error());
}

static void nkey_env_connects(void **state)
{
    (void)state;
    nkey_pair user;
    char path[512];
    nkey_pair_make(&user, NKEY_PREFIX_USER);
    start_nkey_server(&own_server, &user);
    nkey_file_write(tmp_path(path, sizeof path, "env.nk"), user.seed_text,
                    user.public_text);
    natsx_options opt = {.urls = own_server.url, .connect_timeout_ms = 2000};

    setenv("ROJ_NATS_NKEY", path, 1);
    roj_status st = connect_and_use(&opt);
    unsetenv("ROJ_NATS_NKEY");
    if (st != ROJ_OK)
        fail_msg("connect with ROJ_NATS_NKEY: %s", roj_last_error());
}

static void nkey_other_seed_rejected(void **state)
{
    (void)state;
    nkey_pair user, other;
    char path[512];
    nkey_pair_make(&user, NKEY_PREFIX_USER);
    nkey_pair_make(&other, NKEY_PREFIX_USER);
    start_nkey_server(&own_server, &user);
    tmp_path(path, sizeof path, "other.nk");
    natsx_options opt = {.urls = own_server.url, .no_env = true,
                         .connect_timeout_ms = 2000, .nkey_file = path};

    /* A key pair the server does not know. */
    nkey_file_write(path, other.seed_text, other.public_text);
    roj_status st = connect_and_use(&opt);
    assert_int_equal(st, ROJ_ERR_INVALID_ARG);
    assert_rejected(own_server.url);
    assert_null(strstr(roj_last_error(), other.seed_text));

    /* The known public key with another key's seed: the signature of
     * the server's nonce does not verify. */
    nkey_file_write(path, other.seed_text, user.public_text);
    st = connect_and_use(&opt);
    assert_int_equal(st, ROJ_ERR_INVALID_ARG);
    assert_rejected(own_server.url);
    assert_null(strstr(roj_last_error(), other.seed_text));
}

static void nkey_file_without_public(void **state)
{
    (void)state;
    nkey_pair user;
    char path[512];
    nkey_pair_make(&user, NKEY_PREFIX_USER);
    start_nkey_server(&own_server, &user);
    nkey_file_write(tmp_path(path, sizeof path, "seed-only.nk"),
                    user.seed_text, NULL);
    natsx_options opt = {.urls = own_server.url, .no_env = true,
                         .connect_timeout_ms = 2000, .nkey_file = path};

    roj_status st = connect_and_use(&opt);
    assert_int_equal(st, ROJ_ERR_INVALID_ARG);
    const char *msg = roj_last_error();
    assert_non_null(strstr(msg, path));
    assert_non_null(strstr(msg, "no user public key line"));
    assert_null(strstr(msg, user.seed_text));
}

/* ---- Credentials files: JWTs in operator mode ---- */

/* Encodes data as base64url without padding (RFC 4648 section 5). */
static void base64url_encode(const uint8_t *data, size_t len, char *out)
{
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (char *p = out; *p; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
    }
}

/* Writes into out (size bytes) a JWT for subject signed by issuer:
 * header and claims in base64url, then the Ed25519 signature of
 * "header.claims". nats is the claims' "nats" object. The server does
 * not recompute "jti", so a random one replaces the hash of the claims
 * that the Go jwt library writes. */
static void jwt_make(const nkey_pair *issuer, const char *subject,
                     const char *name, const char *nats, char *out,
                     size_t size)
{
    static const char header[] = "{\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}";
    uint8_t random[32], sig[64];
    char jti[64], claims[2048], header_b64[128], claims_b64[2800];
    char sig_b64[96];

    assert_int_equal(RAND_bytes(random, sizeof random), 1);
    base32_encode(random, sizeof random, jti);
    snprintf(claims, sizeof claims, "{\"jti\":\"%s\",\"iat\":%lld,"
             "\"iss\":\"%s\",\"name\":\"%s\",\"sub\":\"%s\",\"nats\":%s}",
             jti, (long long)time(NULL), issuer->public_text, name, subject,
             nats);
    base64url_encode((const uint8_t *)header, strlen(header), header_b64);
    base64url_encode((const uint8_t *)claims, strlen(claims), claims_b64);
    int n = snprintf(out, size, "%s.%s", header_b64, claims_b64);
    assert_true(n > 0 && (size_t)n < size);
    nkey_sign(issuer, out, sig);
    base64url_encode(sig, sizeof sig, sig_b64);
    n = snprintf(out + n, size - (size_t)n, ".%s", sig_b64);
    assert_true(n > 0);
}

/* Writes a credentials file: the user JWT and the user seed, each
 * between BEGIN and END marker lines, the form nats.c 3.4.1 reads. */
static void creds_write(const char *path, const char *jwt,
                        const char *seed_text)
{
    char text[4096];
    snprintf(text, sizeof text, "-----BEGIN NATS USER JWT-----\n%s\n"
             "------END NATS USER JWT------\n\n"
             "-----BEGIN USER NKEY SEED-----\n%s\n"
             "------END USER NKEY SEED------\n", jwt, seed_text);
    write_text(path, text);
}

/* An operator, its system account, one account with unlimited
 * JetStream and a user of that account. nats-server 2.9.10 does not
 * start JetStream in operator mode without a system account. */
typedef struct trust_chain {
    nkey_pair operator;
    nkey_pair system;
    nkey_pair account;
    nkey_pair user;
    char operator_jwt[2048];
    char system_jwt[2048];
    char account_jwt[4096];
    char user_jwt[2048];
} trust_chain;

static const char account_claims[] =
    "{\"limits\":{\"subs\":-1,\"data\":-1,\"payload\":-1,\"imports\":-1,"
    "\"exports\":-1,\"wildcards\":true,\"conn\":-1,\"leaf\":-1,"
    "\"mem_storage\":-1,\"disk_storage\":-1,\"streams\":-1,"
    "\"consumer\":-1},\"type\":\"account\",\"version\":2}";
static const char user_claims[] =
    "{\"pub\":{},\"sub\":{},\"subs\":-1,\"data\":-1,\"payload\":-1,"
    "\"type\":\"user\",\"version\":2}";

static void trust_chain_make(trust_chain *t)
{
    char operator_claims[256];
    nkey_pair_make(&t->operator, NKEY_PREFIX_OPERATOR);
    nkey_pair_make(&t->system, NKEY_PREFIX_ACCOUNT);
    nkey_pair_make(&t->account, NKEY_PREFIX_ACCOUNT);
    nkey_pair_make(&t->user, NKEY_PREFIX_USER);
    snprintf(operator_claims, sizeof operator_claims,
             "{\"system_account\":\"%s\",\"type\":\"operator\","
             "\"version\":2}", t->system.public_text);
    jwt_make(&t->operator, t->operator.public_text, "roj-test-operator",
             operator_claims, t->operator_jwt, sizeof t->operator_jwt);
    jwt_make(&t->operator, t->system.public_text, "SYS",
             "{\"limits\":{\"subs\":-1,\"data\":-1,\"payload\":-1,"
             "\"imports\":-1,\"exports\":-1,\"wildcards\":true,"
             "\"conn\":-1,\"leaf\":-1},\"type\":\"account\","
             "\"version\":2}", t->system_jwt, sizeof t->system_jwt);
    jwt_make(&t->operator, t->account.public_text, "roj-test-account",
             account_claims, t->account_jwt, sizeof t->account_jwt);
    jwt_make(&t->account, t->user.public_text, "roj-test-user", user_claims,
             t->user_jwt, sizeof t->user_jwt);
}

/* Starts a server in operator mode that trusts t's operator and knows
 * its two accounts from the memory resolver. */
static void start_operator_server(nts_server *s, const trust_chain *t)
{
    char operator_path[512], conf[8192];
    tmp_path(operator_path, sizeof operator_path, "operator.jwt");
    write_text(operator_path, t->operator_jwt);
    snprintf(conf, sizeof conf, "operator: \"%s\"\n"
             "system_account: %s\nresolver: MEMORY\n"
             "resolver_preload: {\n  %s: \"%s\"\n  %s: \"%s\"\n}",
             operator_path, t->system.public_text, t->system.public_text,
             t->system_jwt, t->account.public_text, t->account_jwt);
    assert_int_equal(nts_start_conf(s, conf), 0);
}

static void creds_option_connects(void **state)
{
    (void)state;
    trust_chain t;
    char path[512];
    trust_chain_make(&t);
    start_operator_server(&own_server, &t);
    creds_write(tmp_path(path, sizeof path, "user.creds"), t.user_jwt,
                t.user.seed_text);

    natsx_options opt = {.urls = own_server.url, .no_env = true,
                         .connect_timeout_ms = 2000, .creds_file = path};
    roj_status st = connect_and_use(&opt);
    if (st != ROJ_OK)
        fail_msg("connect with the credentials file: %s", roj_last_error());

    natsx_options env_opt = {.urls = own_server.url,
                             .connect_timeout_ms = 2000};
    setenv("ROJ_NATS_CREDS", path, 1);
    st = connect_and_use(&env_opt);
    unsetenv("ROJ_NATS_CREDS");
    if (st != ROJ_OK)
        fail_msg("connect with ROJ_NATS_CREDS: %s", roj_last_error());
}

static void creds_wrong_rejected(void **state)
{
    (void)state;
    trust_chain t;
    nkey_pair stranger, other_user;
    char path[512], jwt[2048];
    trust_chain_make(&t);
    start_operator_server(&own_server, &t);
    tmp_path(path, sizeof path, "wrong.creds");
    natsx_options opt = {.urls = own_server.url, .no_env = true,
                         .connect_timeout_ms = 2000, .creds_file = path};

    /* A user signed by an account the server does not know. */
    nkey_pair_make(&stranger, NKEY_PREFIX_ACCOUNT);
    jwt_make(&stranger, t.user.public_text, "roj-test-user", user_claims,
             jwt, sizeof jwt);
    creds_write(path, jwt, t.user.seed_text);
    roj_status st = connect_and_use(&opt);
    assert_int_equal(st, ROJ_ERR_INVALID_ARG);
    assert_rejected(own_server.url);
    assert_null(strstr(roj_last_error(), t.user.seed_text));

    /* The right JWT with the seed of another user. */
    nkey_pair_make(&other_user, NKEY_PREFIX_USER);
    creds_write(path, t.user_jwt, other_user.seed_text);
    st = connect_and_use(&opt);
    assert_int_equal(st, ROJ_ERR_INVALID_ARG);
    assert_rejected(own_server.url);
    assert_null(strstr(roj_last_error(), other_user.seed_text));
}

static void seed_corrupt_hidden(void **state)
{
    (void)state;
    trust_chain t;
    char creds[512], nkey[512], bad_seed[64];
    trust_chain_make(&t);
    start_operator_server(&own_server, &t);

    /* One changed letter breaks the seed's CRC-16. */
    snprintf(bad_seed, sizeof bad_seed, "%s", t.user.seed_text);
    bad_seed[20] = bad_seed[20] == 'A' ? 'B' : 'A';
    creds_write(tmp_path(creds, sizeof creds, "corrupt.creds"), t.user_jwt,
                bad_seed);
    nkey_file_write(tmp_path(nkey, sizeof nkey, "corrupt.nk"), bad_seed,
                    t.user.public_text);

    const char *paths[] = {creds, nkey};
    for (size_t i = 0; i < 2; i++) {
        natsx_options opt = {.urls = own_server.url, .no_env = true,
                             .connect_timeout_ms = 2000};
        if (i == 0)
            opt.creds_file = paths[i];
        else
            opt.nkey_file = paths[i];
        roj_status st = connect_and_use(&opt);
        assert_int_equal(st, ROJ_ERR_INVALID_ARG);
        const char *msg = roj_last_error();
        if (!strstr(msg, "seed") || !strstr(msg, "invalid"))
            fail_msg("expected an invalid seed error, got: %s", msg);
        assert_non_null(strstr(msg, paths[i]));
        assert_non_null(strstr(msg, own_server.url));
        assert_null(strstr(msg, bad_seed));
    }
}

#endif /* ROJ_TEST_LIBCRYPTO */

int main(void)
{
    nts_require();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(token_option_connects, free_own_server),
        cmocka_unit_test_teardown(token_env_connects, free_own_server),
        cmocka_unit_test_teardown(token_wrong_rejected, free_own_server),
        cmocka_unit_test_teardown(cli_wrong_token_hidden, free_own_server),
        cmocka_unit_test_teardown(cli_wrong_password_hidden,
                                  free_own_server),
        cmocka_unit_test_teardown(tls_client_cert_connects, free_own_server),
        cmocka_unit_test_teardown(tls_env_connects, free_own_server),
        cmocka_unit_test_teardown(tls_without_ca_fails, free_own_server),
        cmocka_unit_test_teardown(tls_wrong_ca_fails, free_own_server),
        cmocka_unit_test_teardown(tls_client_cert_rejected, free_own_server),
        cmocka_unit_test_teardown(tls_cli_status, free_own_server),
#ifdef ROJ_TEST_LIBCRYPTO
        cmocka_unit_test(nkey_text_form),
        cmocka_unit_test_teardown(nkey_option_connects, free_own_server),
        cmocka_unit_test_teardown(nkey_env_connects, free_own_server),
        cmocka_unit_test_teardown(nkey_other_seed_rejected,
                                  free_own_server),
        cmocka_unit_test_teardown(nkey_file_without_public, free_own_server),
        cmocka_unit_test_teardown(creds_option_connects, free_own_server),
        cmocka_unit_test_teardown(creds_wrong_rejected, free_own_server),
        cmocka_unit_test_teardown(seed_corrupt_hidden, free_own_server),
#endif
    };
#ifndef ROJ_TEST_LIBCRYPTO
    printf("SKIPPED: NKey and credentials-file tests (built without "
           "libcrypto; install libssl-dev)\n");
#endif
    int rc = test_run_group(tests, NULL, NULL);
    natsx_library_close(2000);
    return rc;
}
