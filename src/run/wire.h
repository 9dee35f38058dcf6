/*
 * Frames between the runner and its agents, over a stream socket.
 *
 * A frame is an 8-byte header, 'R' 'J' TYPE 0 and the payload length as a
 * little-endian uint32, then the payload (JSON text, or nothing). Frames
 * of more than WIRE_MAX_PAYLOAD bytes, a wrong magic or an unknown type
 * are protocol errors: the runner treats the agent as broken, so an agent
 * that writes garbage cannot confuse it.
 *
 * Threading: wire_send is safe from several threads when they hold the
 * same lock around it (the agent's heartbeat thread and its main thread
 * do); a wire_reader belongs to one thread.
 */
#ifndef ROJ_RUN_WIRE_H
#define ROJ_RUN_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roj/roj.h"

#define WIRE_MAX_PAYLOAD (64u << 20)
#define WIRE_HEADER 8

typedef enum wire_type {
    WIRE_READY = 1,     /* agent -> runner: {"pid": N} once its models load */
    WIRE_TASKS = 2,     /* runner -> agent: a batch of subtasks */
    WIRE_RESULT = 3,    /* agent -> runner: results of some subtasks */
    WIRE_HEARTBEAT = 4, /* agent -> runner: no payload */
    WIRE_STOP = 5,      /* runner -> agent: finish and exit */
    WIRE_FAULT = 6,     /* runner -> agent: inject a fault (tests, demos) */
    WIRE_FAILED = 7     /* agent -> runner: {"error": ...} it cannot start */
} wire_type;

/* Writes one frame, retrying short writes and EINTR, and waiting for
 * room on a non-blocking fd. Never raises SIGPIPE. ROJ_ERR_IO when the
 * peer is gone, ROJ_ERR_INVALID_ARG for an unknown type or a NULL
 * payload with len > 0, ROJ_ERR_RANGE past WIRE_MAX_PAYLOAD. */
roj_status wire_send(int fd, wire_type type, const char *payload,
                     size_t len);

/* Accumulates bytes read from a socket and cuts them into frames. */
typedef struct wire_reader {
    char *buf;
    size_t len, cap;
    size_t consumed; /* bytes of buf already returned as frames */
    char *frame;     /* the last frame's payload, NUL-terminated */
    size_t frame_cap;
} wire_reader;

/* Reads what the fd has now (non-blocking fd) into the reader, stopping
 * once a frame of the maximum size is buffered. Returns ROJ_OK
 * after reading something or nothing (EAGAIN), ROJ_ERR_IO with *eof set
 * when the peer closed the stream or the read failed. Frames read before
 * the end stay buffered for wire_next. */
roj_status wire_fill(wire_reader *r, int fd, bool *eof);

/* The next complete frame, if any: sets *type, *payload (NUL-terminated
 * copy inside the reader, valid until the next wire_fill or wire_next)
 * and *len and returns true. false when no complete frame is buffered.
 * A malformed header (or no memory for the copy) sets *bad and returns
 * false. */
bool wire_next(wire_reader *r, wire_type *type, char **payload, size_t *len,
               bool *bad);

/* Blocks until a whole frame arrives or timeout_ms passes in all (-1: no
 * limit); works on blocking and non-blocking fds. ROJ_ERR_IO on EOF
 * (with a message that notes a frame cut short) or a malformed frame,
 * ROJ_ERR_ABORTED on timeout. */
roj_status wire_recv(wire_reader *r, int fd, int timeout_ms, wire_type *type,
                     char **payload, size_t *len);

/* Frees the reader's buffers and zeroes it, ready for reuse. */
void wire_reader_free(wire_reader *r);

#endif
