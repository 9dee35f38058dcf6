/*
 * Helpers shared by the sampling, streaming and constrained-decoding code:
 * a portable PRNG, a portable exponential and a UTF-8 decoder step.
 */
#ifndef ROJ_SAMPLE_SAMPLE_UTIL_H
#define ROJ_SAMPLE_SAMPLE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* xoshiro256** state (Blackman and Vigna, 2018). */
typedef struct sample_rng {
    uint64_t s[4];
} sample_rng;

/* Seeds the four state words from seed through splitmix64, which never
 * yields the all-zero state xoshiro cannot leave. */
void sample_rng_seed(sample_rng *rng, uint64_t seed);
uint64_t sample_rng_next(sample_rng *rng);
/* Uniform double in [0, 1) from the top 53 bits of the next output. */
double sample_rng_uniform(sample_rng *rng);

/*
 * Computes e^x with Cody-Waite range reduction and a degree-13 Taylor
 * polynomial, using only IEEE additions, multiplications, floor and
 * ldexp, so every IEEE-754 platform gets the same bits (libm's exp may
 * differ in the last place between C libraries). The relative error is
 * below 1e-15 where the result is a normal double (x from -708 to 709).
 * Subnormal results lose precision. Below -745.2 the result is 0, and
 * above 709.7 it is +inf.
 */
double sample_exp(double x);

/* Result of utf8_step. */
enum utf8_step_result {
    UTF8_INVALID = -1,    /* *used bytes form an invalid sequence (>= 1) */
    UTF8_INCOMPLETE = 0,  /* the n bytes are a valid start of a character */
    UTF8_CHAR = 1         /* *used bytes form one valid character */
};

/*
 * Decodes the character at s (n >= 1 bytes available) by the rules of
 * Unicode 15 table 3-7 (no overlong forms, no surrogates, at most
 * U+10FFFF). For an invalid sequence *used is the length of its maximal
 * valid prefix, at least 1, which is what one U+FFFD replaces.
 */
enum utf8_step_result utf8_step(const unsigned char *s, size_t n,
                                size_t *used);

/* Number of code points in len bytes of valid UTF-8 (continuation bytes
 * are not counted). */
size_t utf8_count(const char *s, size_t len);

#endif
