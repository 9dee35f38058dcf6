/* The runner <-> agent frames over a socketpair: round trips, frames cut
 * across reads and packed into one, malformed headers, EOF, timeouts and
 * a peer that is gone. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "run/wire.h"

static void make_pair(int sv[2], bool nonblocking_reader)
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    if (nonblocking_reader)
        assert_int_equal(fcntl(sv[0], F_SETFL,
                               fcntl(sv[0], F_GETFL) | O_NONBLOCK), 0);
}

static void close_pair(int sv[2])
{
    if (sv[0] >= 0)
        close(sv[0]);
    if (sv[1] >= 0)
        close(sv[1]);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes a header by hand: magic, type, reserved byte and length. */
static void raw_header(unsigned char h[WIRE_HEADER], char m0, char m1,
                       unsigned type, unsigned reserved, uint32_t len)
{
    h[0] = (unsigned char)m0;
    h[1] = (unsigned char)m1;
    h[2] = (unsigned char)type;
    h[3] = (unsigned char)reserved;
    for (int i = 0; i < 4; i++)
        h[4 + i] = (unsigned char)(len >> (8 * i));
}

static void write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        assert_true(w > 0);
        p += w;
        len -= (size_t)w;
    }
}

static void wire_roundtrip_types(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv, false);
    const char *payloads[] = {"{\"pid\":42}", "{\"tasks\":[]}",
                              "{\"results\":[1,2]}", NULL, NULL,
                              "{\"fault\":\"hang\"}", "{\"error\":\"x\"}"};
    for (int t = WIRE_READY; t <= WIRE_FAILED; t++) {
        const char *p = payloads[t - 1];
        assert_int_equal(wire_send(sv[1], (wire_type)t, p,
                                   p ? strlen(p) : 0), ROJ_OK);
    }

    wire_reader rd = {0};
    for (int t = WIRE_READY; t <= WIRE_FAILED; t++) {
        wire_type type = 0;
        char *payload = NULL;
        size_t len = 99;
        assert_int_equal(wire_recv(&rd, sv[0], 1000, &type, &payload, &len),
                         ROJ_OK);
        const char *want = payloads[t - 1] ? payloads[t - 1] : "";
        assert_int_equal(type, t);
        assert_int_equal(len, strlen(want));
        assert_string_equal(payload, want);
    }
    wire_reader_free(&rd);
    assert_null(rd.buf);
    close_pair(sv);
}

/* A payload that is not text keeps every byte, NULs included, and
 * gets a NUL after its end. */
static void wire_binary_payload(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv, false);
    char bytes[300];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (char)(i * 7);
    assert_int_equal(wire_send(sv[1], WIRE_RESULT, bytes, sizeof bytes),
                     ROJ_OK);
    wire_reader rd = {0};
    wire_type type;
    char *payload;
    size_t len;
    assert_int_equal(wire_recv(&rd, sv[0], 1000, &type, &payload, &len),
                     ROJ_OK);
    assert_int_equal(len, sizeof bytes);
    assert_memory_equal(payload, bytes, sizeof bytes);
    assert_int_equal(payload[len], '\0');
    wire_reader_free(&rd);
    close_pair(sv);
}

/* A frame written a few bytes at a time completes only at its last
 * byte. */
static void wire_split_reads(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv, true);
    const char *text = "{\"results\":[{\"key\":\"intent\"}]}";
    size_t n = strlen(text);
    unsigned char frame[WIRE_HEADER + 64];
    raw_header(frame, 'R', 'J', WIRE_RESULT, 0, (uint32_t)n);
    memcpy(frame + WIRE_HEADER, text, n);

    wire_reader rd = {0};
    wire_type type;
    char *payload;
    size_t len;
    bool bad = true, eof = true;
    size_t cuts[] = {3, WIRE_HEADER, WIRE_HEADER + 5, WIRE_HEADER + n - 1};
    size_t sent = 0;
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        write_all(sv[1], frame + sent, cuts[c] - sent);
        sent = cuts[c];
        assert_int_equal(wire_fill(&rd, sv[0], &eof), ROJ_OK);
        assert_false(eof);
        assert_false(wire_next(&rd, &type, &payload, &len, &bad));
        assert_false(bad);
    }
    write_all(sv[1], frame + sent, WIRE_HEADER + n - sent);
    assert_int_equal(wire_fill(&rd, sv[0], &eof), ROJ_OK);
    assert_true(wire_next(&rd, &type, &payload, &len, &bad));
    assert_int_equal(type, WIRE_RESULT);
    assert_int_equal(len, n);
    assert_string_equal(payload, text);
    assert_false(wire_next(&rd, &type, &payload, &len, &bad));
    assert_false(bad);

    /* Nothing to read: wire_fill returns at once. */
    assert_int_equal(wire_fill(&rd, sv[0], &eof), ROJ_OK);
    assert_false(eof);
    wire_reader_free(&rd);
    close_pair(sv);
}

/* Many frames arrive in one write and come out of one fill in order. */
static void wire_many_in_one_read(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv, true);
    enum { N_FRAMES = 200 };
    char *all = malloc(N_FRAMES * (WIRE_HEADER + 16));
    assert_non_null(all);
    size_t total = 0;
    for (int i = 0; i < N_FRAMES; i++) {
        char text[16] = "";
        int n = 0;
        if (i % 5 != 0)
            n = snprintf(text, sizeof text, "{\"i\":%d}", i);
        raw_header((unsigned char *)all + total, 'R', 'J',
                   n ? WIRE_RESULT : WIRE_HEARTBEAT, 0, (uint32_t)n);
        memcpy(all + total + WIRE_HEADER, text, (size_t)n);
        total += WIRE_HEADER + (size_t)n;
    }
    write_all(sv[1], all, total);
    free(all);

    wire_reader rd = {0};
    bool eof, bad;
    assert_int_equal(wire_fill(&rd, sv[0], &eof), ROJ_OK);
    for (int i = 0; i < N_FRAMES; i++) {
        wire_type type;
        char *payload;
        size_t len;
        assert_true(wire_next(&rd, &type, &payload, &len, &bad));
        char want[16] = "";
        if (i % 5 != 0)
            snprintf(want, sizeof want, "{\"i\":%d}", i);
        assert_int_equal(type, i % 5 == 0 ? WIRE_HEARTBEAT : WIRE_RESULT);
        assert_string_equal(payload, want);
    }
    wire_type type;
    char *payload;
    size_t len;
    assert_false(wire_next(&rd, &type, &payload, &len, &bad));
    assert_false(bad);
    wire_reader_free(&rd);
    close_pair(sv);
}

typedef struct sender {
    int fd;
    size_t len;
    char *payload;
    int delay_ms;   /* sleep before sending */
    roj_status st;
} sender;

static void *send_thread(void *arg)
{
    sender *s = arg;
    if (s->delay_ms > 0) {
        struct timespec ts = {s->delay_ms / 1000,
                              (long)(s->delay_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    s->st = wire_send(s->fd, WIRE_TASKS, s->payload, s->len);
    return NULL;
}

/* A frame larger than the socket buffer and the read chunk arrives
 * whole, on a blocking fd, and wire_recv returns as soon as it is in:
 * it must not block in a second read while the peer stays quiet. */
static void wire_large_frame(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv, false);
    struct timeval limit = {3, 0};
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &limit,
                                sizeof limit), 0);
    sender s = {sv[1], 3u << 20, NULL, 0, ROJ_ERR_INTERNAL};
    s.payload = malloc(s.len);
    assert_non_null(s.payload);
    for (size_t i = 0; i < s.len; i++)
        s.payload[i] = (char)('a' + i % 26);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, send_thread, &s), 0);

    wire_reader rd = {0};
    wire_type type;
    char *payload;
    size_t len;
    int64_t start = now_ms();
    roj_status st = wire_recv(&rd, sv[0], 10000, &type, &payload, &len);
    int64_t elapsed = now_ms() - start;
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(s.st, ROJ_OK);
    assert_int_equal(st, ROJ_OK);
    assert_int_equal(type, WIRE_TASKS);
    assert_int_equal(len, s.len);
    assert_memory_equal(payload, s.payload, s.len);
    assert_true(elapsed < 2000);

    /* 64 KiB frames, each one read in full before the next is sent. */
    free(s.payload);
    s.len = 65536 - WIRE_HEADER;
    s.payload = calloc(1, s.len);
    assert_non_null(s.payload);
    for (int i = 0; i < 3; i++) {
        s.payload[0] = (char)('0' + i);
        assert_int_equal(wire_send(sv[1], WIRE_TASKS, s.payload, s.len),
                         ROJ_OK);
        start = now_ms();
        st = wire_recv(&rd, sv[0], 10000, &type, &payload, &len);
        elapsed = now_ms() - start;
        assert_int_equal(st, ROJ_OK);
        assert_int_equal(len, s.len);
        assert_int_equal(payload[0], '0' + i);
        assert_true(elapsed < 2000);
    }
    free(s.payload);
    wire_reader_free(&rd);
    close_pair(sv);
}

/* Sends a header built by raw_header and expects a malformed frame from
 * wire_next and ROJ_ERR_IO from wire_recv. */
static void expect_bad_header(char m0, char m1, unsigned type,
                              unsigned reserved, uint32_t len)
{
    int sv[2];
    make_pair(sv, true);
    unsigned char h[WIRE_HEADER];
    raw_header(h, m0, m1, type, reserved, len);
    write_all(sv[1], h, sizeof h);

    wire_reader rd = {0};
    bool eof, bad = false;
    wire_type t;
    char *payload;
    size_t n;
    assert_int_equal(wire_fill(&rd, sv[0], &eof), ROJ_OK);
    assert_false(wire_next(&rd, &t, &payload, &n, &bad));
    assert_true(bad);
    assert_int_equal(wire_recv(&rd, sv[0], 100, &t, &payload, &n),
                     ROJ_ERR_IO);
    if (!strstr(roj_last_error(), "malformed"))
        fail_msg("message: %s", roj_last_error());
    wire_reader_free(&rd);
    close_pair(sv);
}

static void wire_bad_headers(void **state)
{
    (void)state;
    expect_bad_header('X', 'J', WIRE_READY, 0, 2);
    expect_bad_header('R', 'j', WIRE_READY, 0, 2);
    expect_bad_header('R', 'J', 0, 0, 0);
    expect_bad_header('R', 'J', WIRE_FAILED + 1, 0, 0);
    expect_bad_header('R', 'J', 255, 0, 0);
    expect_bad_header('R', 'J', WIRE_RESULT, 1, 0);
    expect_bad_header('R', 'J', WIRE_RESULT, 0, WIRE_MAX_PAYLOAD + 1);
    expect_bad_header('R', 'J', WIRE_RESULT, 0, UINT32_MAX);
}

/* A header claiming exactly the maximum is valid: it waits for bytes. */
static void wire_max_length_header(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv, true);
    unsigned char h[WIRE_HEADER];
    raw_header(h, 'R', 'J', WIRE_TASKS, 0, WIRE_MAX_PAYLOAD);
    write_all(sv[1], h, sizeof h);
    wire_reader rd = {0};
    bool eof, bad = true;
    wire_type t;
    char *payload;
    size_t n;
    assert_int_equal(wire_fill(&rd, sv[0], &eof), ROJ_OK);
    assert_false(wire_next(&rd, &t, &payload, &n, &bad));
    assert_false(bad);
    wire_reader_free(&rd);
    close_pair(sv);
}

static void wire_eof_mid_frame(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv, false);
    unsigned char frame[WIRE_HEADER + 4];
    raw_header(frame, 'R', 'J', WIRE_RESULT, 0, 10);
    memcpy(frame + WIRE_HEADER, "{\"a\"", 4);
    write_all(sv[1], frame, sizeof frame);
    close(sv[1]);
    sv[1] = -1;

    wire_reader rd = {0};
    wire_type t;
    char *payload;
    size_t n;
    assert_int_equal(wire_recv(&rd, sv[0], 1000, &t, &payload, &n),
                     ROJ_ERR_IO);
    if (!strstr(roj_last_error(), "middle of a frame"))
        fail_msg("message: %s", roj_last_error());
    wire_reader_free(&rd);
    close_pair(sv);
}

/* Frames read before the end stay buffered after wire_fill reports the
 * EOF; then wire_recv reports it. */
static void wire_eof_after_frames(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv, true);
    assert_int_equal(wire_send(sv[1], WIRE_HEARTBEAT, NULL, 0), ROJ_OK);
    assert_int_equal(wire_send(sv[1], WIRE_RESULT, "{}", 2), ROJ_OK);
    close(sv[1]);
    sv[1] = -1;

    wire_reader rd = {0};
    bool eof = false, bad;
    wire_type t;
    char *payload;
    size_t n;
    assert_int_equal(wire_fill(&rd, sv[0], &eof), ROJ_OK);
    assert_false(eof);
    assert_int_equal(wire_fill(&rd, sv[0], &eof), ROJ_ERR_IO);
    assert_true(eof);
    assert_true(wire_next(&rd, &t, &payload, &n, &bad));
    assert_int_equal(t, WIRE_HEARTBEAT);
    assert_true(wire_next(&rd, &t, &payload, &n, &bad));
    assert_int_equal(t, WIRE_RESULT);
    assert_string_equal(payload, "{}");
    assert_false(wire_next(&rd, &t, &payload, &n, &bad));
    assert_false(bad);
    assert_int_equal(wire_recv(&rd, sv[0], 1000, &t, &payload, &n),
                     ROJ_ERR_IO);
    if (!strstr(roj_last_error(), "closed"))
        fail_msg("message: %s", roj_last_error());
    wire_reader_free(&rd);
    close_pair(sv);
}

static void wire_recv_timeout(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv, false);
    wire_reader rd = {0};
    wire_type t;
    char *payload;
    size_t n;
    int64_t start = now_ms();
    assert_int_equal(wire_recv(&rd, sv[0], 150, &t, &payload, &n),
                     ROJ_ERR_ABORTED);
    int64_t elapsed = now_ms() - start;
    assert_true(elapsed >= 140);
    assert_true(elapsed < 1000);
    assert_int_equal(wire_recv(&rd, sv[0], 0, &t, &payload, &n),
                     ROJ_ERR_ABORTED);
    wire_reader_free(&rd);
    close_pair(sv);
}

typedef struct trickle {
    int fd;
    int stop;
} trickle;

/* Writes one byte of a 40-byte frame every 20 ms. */
static void *trickle_thread(void *arg)
{
    trickle *tr = arg;
    unsigned char frame[WIRE_HEADER + 32];
    raw_header(frame, 'R', 'J', WIRE_RESULT, 0, 32);
    memset(frame + WIRE_HEADER, 'x', 32);
    for (size_t i = 0; i < sizeof frame; i++) {
        if (__atomic_load_n(&tr->stop, __ATOMIC_SEQ_CST))
            break;
        if (write(tr->fd, frame + i, 1) != 1)
            break;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* The timeout covers the whole frame: bytes that trickle in do not
 * restart it. */
static void wire_timeout_whole_frame(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv, false);
    trickle tr = {sv[1], 0};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, trickle_thread, &tr), 0);

    wire_reader rd = {0};
    wire_type t;
    char *payload;
    size_t n;
    int64_t start = now_ms();
    roj_status st = wire_recv(&rd, sv[0], 200, &t, &payload, &n);
    int64_t elapsed = now_ms() - start;
    __atomic_store_n(&tr.stop, 1, __ATOMIC_SEQ_CST);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(st, ROJ_ERR_ABORTED);
    assert_true(elapsed < 600);
    wire_reader_free(&rd);
    close_pair(sv);
}

static void wire_send_closed_peer(void **state)
{
    (void)state;
    /* SIGPIPE keeps its default action, which would end this test. */
    struct sigaction old;
    assert_int_equal(sigaction(SIGPIPE, NULL, &old), 0);
    assert_true(old.sa_handler == SIG_DFL);

    int sv[2];
    make_pair(sv, false);
    close(sv[0]);
    sv[0] = -1;
    assert_int_equal(wire_send(sv[1], WIRE_HEARTBEAT, NULL, 0), ROJ_ERR_IO);
    char big[10000];
    memset(big, 'b', sizeof big);
    assert_int_equal(wire_send(sv[1], WIRE_RESULT, big, sizeof big),
                     ROJ_ERR_IO);
    if (!strstr(roj_last_error(), "socket write failed"))
        fail_msg("message: %s", roj_last_error());
    close_pair(sv);
}

static void wire_send_bad_arguments(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv, true);
    assert_int_equal(wire_send(sv[1], (wire_type)0, NULL, 0),
                     ROJ_ERR_INVALID_ARG);
    assert_int_equal(wire_send(sv[1], (wire_type)(WIRE_FAILED + 1), NULL,
                               0), ROJ_ERR_INVALID_ARG);
    assert_int_equal(wire_send(sv[1], WIRE_RESULT, NULL, 5),
                     ROJ_ERR_INVALID_ARG);
    assert_int_equal(wire_send(sv[1], WIRE_RESULT, "x",
                               (size_t)WIRE_MAX_PAYLOAD + 1), ROJ_ERR_RANGE);

    /* The rejected sends wrote nothing. */
    wire_reader rd = {0};
    bool eof;
    assert_int_equal(wire_fill(&rd, sv[0], &eof), ROJ_OK);
    assert_int_equal(rd.len, 0);
    wire_reader_free(&rd);
    close_pair(sv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wire_roundtrip_types),
        cmocka_unit_test(wire_binary_payload),
        cmocka_unit_test(wire_split_reads),
        cmocka_unit_test(wire_many_in_one_read),
        cmocka_unit_test(wire_large_frame),
        cmocka_unit_test(wire_bad_headers),
        cmocka_unit_test(wire_max_length_header),
        cmocka_unit_test(wire_eof_mid_frame),
        cmocka_unit_test(wire_eof_after_frames),
        cmocka_unit_test(wire_recv_timeout),
        cmocka_unit_test(wire_timeout_whole_frame),
        cmocka_unit_test(wire_send_closed_peer),
        cmocka_unit_test(wire_send_bad_arguments),
    };
    return test_run_group(tests, NULL, NULL);
}
