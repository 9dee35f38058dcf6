/* Frame encoding and decoding for the runner <-> agent socket. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/error.h"
#include "run/wire.h"

static void put_header(unsigned char *h, wire_type type, uint32_t len)
{
    h[0] = 'R';
    h[1] = 'J';
    h[2] = (unsigned char)type;
    h[3] = 0;
    for (int i = 0; i < 4; i++)
        h[4 + i] = (unsigned char)(len >> (8 * i));
}

static roj_status send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = {fd, POLLOUT, 0};
                (void)poll(&pfd, 1, 1000);
                continue;
            }
            return roj_error(ROJ_ERR_IO, "socket write: %s", strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return ROJ_OK;
}

roj_status wire_send(int fd, wire_type type, const char *payload, size_t len)
{
    unsigned char h[WIRE_HEADER];
    if (len > WIRE_MAX_PAYLOAD)
        return roj_error(ROJ_ERR_RANGE, "frame of %zu bytes is over the "
                         "%u-byte limit", len, WIRE_MAX_PAYLOAD);
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

roj_status wire_fill(wire_reader *r, int fd, bool *eof)
{
    *eof = false;
    for (;;) {
        roj_status st = reserve(r, 65536);
        if (st)
            return st;
        ssize_t n = read(fd, r->buf + r->len, r->cap - r->len - 1);
        if (n > 0) {
            r->len += (size_t)n;
            if ((size_t)n < 65536)
                return ROJ_OK;
            continue;
        }
        if (n == 0) {
            *eof = true;
            return roj_error(ROJ_ERR_IO, "the agent closed its socket");
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return ROJ_OK;
        *eof = true;
        return roj_error(ROJ_ERR_IO, "socket read: %s", strerror(errno));
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
    if (h[0] != 'R' || h[1] != 'J' || h[3] != 0 || h[2] < WIRE_READY ||
        h[2] > WIRE_FAILED || n > WIRE_MAX_PAYLOAD) {
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

roj_status wire_recv(wire_reader *r, int fd, int timeout_ms, wire_type *type,
                     char **payload, size_t *len)
{
    for (;;) {
        bool bad, eof;
        if (wire_next(r, type, payload, len, &bad))
            return ROJ_OK;
        if (bad)
            return roj_error(ROJ_ERR_IO, "malformed frame header");
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            return roj_error(ROJ_ERR_ABORTED, "no frame within %d ms",
                             timeout_ms);
        roj_status st = wire_fill(r, fd, &eof);
        if (st)
            return st;
    }
}

void wire_reader_free(wire_reader *r)
{
    free(r->buf);
    free(r->frame);
    memset(r, 0, sizeof *r);
}
