#include "core/sha256.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* First 32 bits of the fractional parts of the cube roots of the first 64
 * primes (FIPS 180-4, section 4.2.2). */
static const uint32_t round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

/* Processes one 64-byte block (section 6.2.2). */
static void sha256_compress(uint32_t state[8], const uint8_t *block)
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)block[4 * t] << 24 | (uint32_t)block[4 * t + 1] << 16 |
               (uint32_t)block[4 * t + 2] << 8 | (uint32_t)block[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }

    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int t = 0; t < 64; t++) {
        uint32_t big_s1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        uint32_t choose = (e & f) ^ (~e & g);
        uint32_t t1 = h + big_s1 + choose + round_constants[t] + w[t];
        uint32_t big_s0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = big_s0 + majority;
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
}

void sha256_init(sha256_ctx *ctx)
{
    /* Section 5.3.3: fractional parts of the square roots of the first
     * eight primes. */
    static const uint32_t initial[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    };
    memcpy(ctx->state, initial, sizeof initial);
    ctx->n_bytes = 0;
}

void sha256_update(sha256_ctx *ctx, const void *data, size_t size)
{
    const uint8_t *p = data;
    size_t used = (size_t)(ctx->n_bytes % 64);
    ctx->n_bytes += size;

    if (used) {
        size_t take = 64 - used < size ? 64 - used : size;
        memcpy(ctx->block + used, p, take);
        p += take;
        size -= take;
        if (used + take < 64)
            return;
        sha256_compress(ctx->state, ctx->block);
    }
    for (; size >= 64; p += 64, size -= 64)
        sha256_compress(ctx->state, p);
    memcpy(ctx->block, p, size);
}

void sha256_final(sha256_ctx *ctx, uint8_t digest[SHA256_DIGEST_SIZE])
{
    /* Padding (section 5.1.1): 0x80, zeros to 56 mod 64, then the
     * message length in bits, big-endian. */
    uint64_t bits = ctx->n_bytes * 8;
    uint8_t pad[72] = {0x80};
    size_t used = (size_t)(ctx->n_bytes % 64);
    size_t pad_len = used < 56 ? 56 - used : 120 - used;
    uint8_t length[8];
    for (int i = 0; i < 8; i++)
        length[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(ctx, pad, pad_len);
    sha256_update(ctx, length, 8);

    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(ctx->state[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(ctx->state[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(ctx->state[i] >> 8);
        digest[4 * i + 3] = (uint8_t)ctx->state[i];
    }
}

void sha256(const void *data, size_t size, uint8_t digest[SHA256_DIGEST_SIZE])
{
    sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, data, size);
    sha256_final(&ctx, digest);
}

void sha256_hex(const uint8_t digest[SHA256_DIGEST_SIZE],
                char hex[SHA256_HEX_SIZE])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 0x0f];
    }
    hex[2 * SHA256_DIGEST_SIZE] = '\0';
}

roj_status sha256_file(const char *path, char hex[SHA256_HEX_SIZE])
{
    static const size_t chunk = 1 << 20;
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256_ctx ctx;
    roj_status status = ROJ_OK;
    uint8_t *buffer = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return roj_error(ROJ_ERR_IO, "%s: cannot open: %s", path,
                         strerror(errno));
    buffer = malloc(chunk);
    if (!buffer) {
        status = roj_error(ROJ_ERR_NOMEM, "%s: out of memory", path);
        goto cleanup;
    }

    sha256_init(&ctx);
    size_t got;
    while ((got = fread(buffer, 1, chunk, f)) > 0)
        sha256_update(&ctx, buffer, got);
    if (ferror(f)) {
        status = roj_error(ROJ_ERR_IO, "%s: read failed: %s", path,
                           strerror(errno));
        goto cleanup;
    }
    sha256_final(&ctx, digest);
    sha256_hex(digest, hex);

cleanup:
    free(buffer);
    fclose(f);
    return status;
}
