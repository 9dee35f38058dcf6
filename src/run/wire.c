/* Frame encoding and decoding for the runner <-> agent socket. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "run/wire.h"

/* Free space the reader ensures before each read, in bytes. */
#define WIRE_READ_CHUNK 65536

static void put_header(unsigned char *h, wire_type type, uint32_t len)
{
    h[0] = 'R';
    h[1] = 'J';
    h[2] = (unsigned char)type;
    h[3] = 0;
    for (int i = 0; i < 4; i++)
        h[4 + i] = (unsigned char)(len >> (8 * i));
}

/* Writes all n bytes. On a non-blocking fd that is full, waits for room
 * in steps of up to 1 s. */
static roj_status send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                /* NOTE: a peer that stops reading keeps this loop
                 * waiting, with no time limit. */
                struct pollfd pfd = {fd, POLLOUT, 0};
                (void)poll(&pfd, 1, 1000);
                continue;
            }
            return roj_error(ROJ_ERR_IO, "socket write failed: %s",
                             strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return ROJ_OK;
}

static bool type_known(unsigned type)
{
    return type >= WIRE_READY && type <= WIRE_FAILED;
}

roj_status wire_send(int fd, wire_type type, const char *payload, size_t len)
{
    unsigned char h[WIRE_HEADER];
    if (!type_known((unsigned)type))
        return roj_error(ROJ_ERR_INVALID_ARG, "frame type %d is unknown, "
                         "expected %d to %d", (int)type, WIRE_READY,
                         WIRE_FAILED);
    if (len > WIRE_MAX_PAYLOAD)
        return roj_error(ROJ_ERR_RANGE, "frame of %zu bytes is over the "
                         "%u-byte limit", len, WIRE_MAX_PAYLOAD);
    if (len > 0 && !payload)
        return roj_error(ROJ_ERR_INVALID_ARG, "frame of %zu bytes has a "
                         "NULL payload", len);
    put_header(h, type, (uint32_t)len);
    /* One buffer for small frames, so a frame is one write. */
    if (len <= 4096) {
        char buf[WIRE_HEADER + 4096];
        memcpy(buf, h, WIRE_HEADER);
        if (len)
            memcpy(buf + WIRE_HEADER, payload, len);
        return send_all(fd, buf, WIRE_HEADER + len);
    }
    roj_status st = send_all(fd, (const char *)h, WIRE_HEADER);
    return st ? st : send_all(fd, payload, len);
}

static roj_status reserve(wire_reader *r, size_t extra)
{
    if (r->consumed > 0 && r->consumed == r->len) {
        r->len = r->consumed = 0;
    } else if (r->consumed > r->cap / 2) {
        memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
        r->len -= r->consumed;
        r->consumed = 0;
    }
    if (r->len + extra + 1 <= r->cap)
        return ROJ_OK;
    size_t cap = r->cap ? r->cap : 65536;
    while (cap < r->len + extra + 1)
        cap *= 2;
    char *nb = realloc(r->buf, cap);
    if (!nb)
        return roj_error(ROJ_ERR_NOMEM, "frame buffer of %zu bytes", cap);
    r->buf = nb;
    r->cap = cap;
    return ROJ_OK;
}

/* Reads once into the free space of r: *got bytes out of the *space
 * offered (*got is 0 for EAGAIN). Sets *eof when the peer closed the
 * stream or the read failed. */
static roj_status fill_once(wire_reader *r, int fd, size_t *got,
                            size_t *space, bool *eof)
{
    *got = 0;
    *space = 0;
    *eof = false;
    roj_status st = reserve(r, WIRE_READ_CHUNK);
    if (st != ROJ_OK)
        return st;
    *space = r->cap - r->len - 1;
    for (;;) {
        ssize_t n = read(fd, r->buf + r->len, *space);
        if (n > 0) {
            r->len += (size_t)n;
            *got = (size_t)n;
            return ROJ_OK;
        }
        if (n == 0) {
            *eof = true;
            return roj_error(ROJ_ERR_IO, "the peer closed the socket");
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return ROJ_OK;
        *eof = true;
        return roj_error(ROJ_ERR_IO, "socket read failed: %s",
                         strerror(errno));
    }
}

roj_status wire_fill(wire_reader *r, int fd, bool *eof)
{
    /* Read until the socket is drained (EAGAIN or a short read), or a
     * frame of the maximum size is buffered. */
    for (;;) {
        size_t got, space;
        roj_status st = fill_once(r, fd, &got, &space, eof);
        if (st != ROJ_OK || got < space)
            return st;
        if (r->len - r->consumed >= WIRE_HEADER + WIRE_MAX_PAYLOAD)
            return ROJ_OK;
    }
}

bool wire_next(wire_reader *r, wire_type *type, char **payload, size_t *len,
               bool *bad)
{
    *bad = false;
    size_t avail = r->len - r->consumed;
    if (avail < WIRE_HEADER)
        return false;
    const unsigned char *h = (const unsigned char *)r->buf + r->consumed;
    uint32_t n = 0;
    for (int i = 0; i < 4; i++)
        n |= (uint32_t)h[4 + i] << (8 * i);
    if (h[0] != 'R' || h[1] != 'J' || h[3] != 0 || !type_known(h[2]) ||
        n > WIRE_MAX_PAYLOAD) {
        *bad = true;
        return false;
    }
    if (avail < WIRE_HEADER + (size_t)n)
        return false;
    *type = (wire_type)h[2];
    /* A NUL-terminated copy: terminating in place would overwrite the
     * first byte of the next frame. */
    if (n + 1 > r->frame_cap) {
        size_t cap = r->frame_cap ? r->frame_cap : 4096;
        while (cap < (size_t)n + 1)
            cap *= 2;
        char *nf = realloc(r->frame, cap);
        if (!nf) {
            *bad = true;
            return false;
        }
        r->frame = nf;
        r->frame_cap = cap;
    }
    memcpy(r->frame, r->buf + r->consumed + WIRE_HEADER, n);
    r->frame[n] = '\0';
    *payload = r->frame;
    *len = n;
    r->consumed += WIRE_HEADER + n;
    return true;
}

/* Milliseconds on the monotonic clock. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

roj_status wire_recv(wire_reader *r, int fd, int timeout_ms, wire_type *type,
                     char **payload, size_t *len)
{
    int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : 0;
    for (;;) {
        bool bad, eof;
        if (wire_next(r, type, payload, len, &bad))
            return ROJ_OK;
        if (bad)
            return roj_error(ROJ_ERR_IO, "malformed frame header: wrong "
                             "magic, unknown type or a payload over %u "
                             "bytes", WIRE_MAX_PAYLOAD);

        /* Wait for bytes until the deadline, then read once: a second
         * read could block on a blocking fd. */
        int wait_ms = -1;
        if (timeout_ms >= 0) {
            int64_t left = deadline - now_ms();
            wait_ms = left > 0 ? (int)left : 0;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, wait_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            return roj_error(ROJ_ERR_IO, "poll on the socket failed: %s",
                             strerror(errno));
        if (pr == 0)
            return roj_error(ROJ_ERR_ABORTED, "no frame within %d ms",
                             timeout_ms);
        size_t got, space;
        roj_status st = fill_once(r, fd, &got, &space, &eof);
        if (st != ROJ_OK && eof && r->len > r->consumed)
            return roj_error(ROJ_ERR_IO, "the peer closed the socket in "
                             "the middle of a frame (%zu bytes of it "
                             "received)", r->len - r->consumed);
        if (st != ROJ_OK)
            return st;
    }
}

void wire_reader_free(wire_reader *r)
{
    free(r->buf);
    free(r->frame);
    memset(r, 0, sizeof *r);
}
