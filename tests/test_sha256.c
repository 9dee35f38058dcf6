/* SHA-256 against the FIPS 180-2 example vectors, streaming in odd
 * chunks, and file hashing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "testutil.h"

static void expect_hex(const void *data, size_t size, const char *expected)
{
    uint8_t digest[SHA256_DIGEST_SIZE];
    char hex[SHA256_HEX_SIZE];
    sha256(data, size, digest);
    sha256_hex(digest, hex);
    assert_string_equal(hex, expected);
}

static void sha256_empty_message(void **state)
{
    (void)state;
    expect_hex("", 0,
               "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void sha256_abc(void **state)
{
    (void)state;
    expect_hex("abc", 3,
               "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void sha256_two_blocks(void **state)
{
    (void)state;
    const char *msg = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    expect_hex(msg, strlen(msg),
               "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* 55, 56 and 64 bytes put the length field at the block edges. */
static void sha256_padding_edges(void **state)
{
    (void)state;
    char buf[64];
    memset(buf, 'a', sizeof buf);
    expect_hex(buf, 55,
               "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    expect_hex(buf, 56,
               "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    expect_hex(buf, 64,
               "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
}

static void sha256_million_a_streamed(void **state)
{
    (void)state;
    const size_t total = 1000000;
    char *buf = malloc(total);
    assert_non_null(buf);
    memset(buf, 'a', total);

    /* Chunks of 1, 2, 3 ... bytes cross every block boundary offset. */
    sha256_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    char hex[SHA256_HEX_SIZE];
    sha256_init(&ctx);
    size_t done = 0;
    for (size_t step = 1; done < total; step = step % 131 + 1) {
        size_t take = total - done < step ? total - done : step;
        sha256_update(&ctx, buf + done, take);
        done += take;
    }
    sha256_final(&ctx, digest);
    sha256_hex(digest, hex);
    assert_string_equal(
        hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(buf);
}

static void sha256_file_matches_memory(void **state)
{
    (void)state;
    char path[4200];
    uint8_t data[3000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    snprintf(path, sizeof path, "%s/data.bin", test_tmpdir());
    test_write_file(path, data, sizeof data);

    uint8_t digest[SHA256_DIGEST_SIZE];
    char expected[SHA256_HEX_SIZE], hex[SHA256_HEX_SIZE];
    sha256(data, sizeof data, digest);
    sha256_hex(digest, expected);
    assert_int_equal(sha256_file(path, hex), ROJ_OK);
    assert_string_equal(hex, expected);
}

static void sha256_file_missing(void **state)
{
    (void)state;
    char hex[SHA256_HEX_SIZE];
    assert_int_equal(sha256_file("/nonexistent/roj-file", hex), ROJ_ERR_IO);
    assert_non_null(strstr(roj_last_error(), "/nonexistent/roj-file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_empty_message),
        cmocka_unit_test(sha256_abc),
        cmocka_unit_test(sha256_two_blocks),
        cmocka_unit_test(sha256_padding_edges),
        cmocka_unit_test(sha256_million_a_streamed),
        cmocka_unit_test(sha256_file_matches_memory),
        cmocka_unit_test(sha256_file_missing),
    };
    return test_run_group(tests, NULL, NULL);
}
