/*
 * SHA-256 (FIPS 180-4), for checking model files and fixtures.
 *
 * Usage: sha256_init, any number of sha256_update calls, sha256_final.
 * A context belongs to one thread at a time; it owns no memory.
 */
#ifndef ROJ_CORE_SHA256_H
#define ROJ_CORE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "roj/roj.h"

#define SHA256_DIGEST_SIZE 32
#define SHA256_HEX_SIZE 65 /* 64 hex digits and the NUL */

typedef struct {
    uint32_t state[8];
    uint64_t n_bytes;   /* total bytes hashed so far */
    uint8_t block[64];  /* pending input, n_bytes % 64 bytes of it used */
} sha256_ctx;

void sha256_init(sha256_ctx *ctx);
void sha256_update(sha256_ctx *ctx, const void *data, size_t size);
/* Writes the digest and leaves ctx unusable until sha256_init. */
void sha256_final(sha256_ctx *ctx, uint8_t digest[SHA256_DIGEST_SIZE]);

/* Hashes size bytes in one call. */
void sha256(const void *data, size_t size,
            uint8_t digest[SHA256_DIGEST_SIZE]);

/* Formats a digest as 64 lowercase hex digits. */
void sha256_hex(const uint8_t digest[SHA256_DIGEST_SIZE],
                char hex[SHA256_HEX_SIZE]);

/* Hashes the file at path into hex. Returns ROJ_ERR_IO with the path and
 * the reason when it cannot be read. */
roj_status sha256_file(const char *path, char hex[SHA256_HEX_SIZE]);

#endif
