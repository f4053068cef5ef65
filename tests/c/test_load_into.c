/*
 * mc_load_into / mc_load_range_into: decrypting into the caller's memory (modelcrypt.h).
 * Built by tests/test_load_into_native.py with
 *   cc -std=c99 -Wall -Werror $(pkg-config --cflags --libs modelcrypt)
 * and run natively and under valgrind. usage: test_load_into WORKDIR
 * Prints one line per failed check and a final "N passed, M failed" line; exits 1 on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <modelcrypt/modelcrypt.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#define PLAIN_SIZE 300001 /* 74 chunks of 4096 bytes and a short one */
#define CHUNK 4096

static uint8_t plain[PLAIN_SIZE];

static int all_equal(const uint8_t* p, size_t n, uint8_t v) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != v) return 0;
  }
  return 1;
}

/* Flips one byte of the file at `offset`. */
static int flip_byte(const char* path, long offset) {
  FILE* f = fopen(path, "r+b");
  if (!f) return 0;
  int ok = fseek(f, offset, SEEK_SET) == 0;
  int c = ok ? fgetc(f) : EOF;
  ok = ok && c != EOF && fseek(f, offset, SEEK_SET) == 0 && fputc(c ^ 0x40, f) != EOF;
  return fclose(f) == 0 && ok;
}

/* Encrypt src to dst in CHUNK-byte chunks (AES-GCM, no fsync: a test file). */
static mc_status encrypt_test_file(const mc_key* key, const char* src, const char* dst) {
  mc_encrypt_options o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.chunk_size = CHUNK;
  o.no_fsync = 1;
  return mc_encrypt_file_ex(src, dst, key, NULL, 0, NULL, NULL, &o);
}

static void test_round_trips(mc_key* key) {
  uint8_t* dst = malloc(PLAIN_SIZE + 100);
  size_t written = 7;
  memset(dst, 0xAA, PLAIN_SIZE + 100);
  CHECK(mc_load_into(path_in("m.mcx"), key, NULL, 0, dst, PLAIN_SIZE + 100, &written) == MC_OK);
  CHECK(written == PLAIN_SIZE && memcmp(dst, plain, PLAIN_SIZE) == 0);
  CHECK(all_equal(dst + PLAIN_SIZE, 100, 0xAA)); /* nothing written past the plaintext */
  memset(dst, 0, PLAIN_SIZE);
  CHECK(mc_load_into(path_in("m.mcx"), key, "aes-gcm", 1, dst, PLAIN_SIZE, NULL) == MC_OK);
  CHECK(memcmp(dst, plain, PLAIN_SIZE) == 0);
  /* ranges: inside one chunk, across chunk boundaries, the short last chunk, empty */
  const uint64_t ranges[][2] = {{10, 100}, {CHUNK - 3, 7}, {CHUNK, 3 * CHUNK}, {5, PLAIN_SIZE - 10},
                                {PLAIN_SIZE - 50, 50}, {1000, 0}, {0, PLAIN_SIZE}};
  for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; ++r) {
    memset(dst, 0xAA, PLAIN_SIZE + 100);
    const size_t n = (size_t)ranges[r][1];
    CHECK(mc_load_range_into(path_in("m.mcx"), key, NULL, ranges[r][0], ranges[r][1], 2, dst, n + 1) == MC_OK);
    CHECK(memcmp(dst, plain + ranges[r][0], n) == 0 && dst[n] == 0xAA);
  }
  free(dst);
}

static void test_failures(mc_key* key) {
  uint8_t* dst = malloc(PLAIN_SIZE);
  size_t written = 7;
  /* capacity too small: nothing touched, the sizes named */
  memset(dst, 0xAA, PLAIN_SIZE);
  CHECK(mc_load_into(path_in("m.mcx"), key, NULL, 0, dst, PLAIN_SIZE - 1, &written) == MC_INVALID_ARGUMENT);
  CHECK(written == 0 && all_equal(dst, PLAIN_SIZE, 0xAA));
  CHECK(strstr(mc_last_error(), "300000 bytes") != NULL && strstr(mc_last_error(), "300001") != NULL);
  CHECK(mc_load_range_into(path_in("m.mcx"), key, NULL, 0, 100, 0, dst, 99) == MC_INVALID_ARGUMENT);
  CHECK(all_equal(dst, PLAIN_SIZE, 0xAA));
  /* a range beyond the plaintext */
  CHECK(mc_load_range_into(path_in("m.mcx"), key, NULL, PLAIN_SIZE - 5, 10, 0, dst, PLAIN_SIZE) ==
        MC_INVALID_ARGUMENT);
  CHECK(mc_load_range_into(path_in("m.mcx"), key, NULL, UINT64_MAX, 2, 0, dst, PLAIN_SIZE) == MC_INVALID_ARGUMENT);
  /* wrong key: found from the header, before any chunk */
  mc_key* other = NULL;
  uint8_t other_bytes[32];
  for (int i = 0; i < 32; ++i) other_bytes[i] = (uint8_t)(i * 5 + 2);
  CHECK(mc_key_new(other_bytes, 32, &other) == MC_OK);
  CHECK(mc_load_into(path_in("m.mcx"), other, NULL, 0, dst, PLAIN_SIZE, &written) == MC_KEY_MISMATCH);
  CHECK(written == 0 && all_equal(dst, PLAIN_SIZE, 0xAA));
  mc_key_free(other);
  /* NULL arguments, a missing file, a legacy mode */
  CHECK(mc_load_into(NULL, key, NULL, 0, dst, PLAIN_SIZE, NULL) == MC_INVALID_ARGUMENT);
  CHECK(mc_load_into(path_in("m.mcx"), NULL, NULL, 0, dst, PLAIN_SIZE, NULL) == MC_INVALID_ARGUMENT);
  CHECK(mc_load_into(path_in("m.mcx"), key, NULL, 0, NULL, PLAIN_SIZE, NULL) == MC_INVALID_ARGUMENT);
  CHECK(mc_load_range_into(path_in("m.mcx"), key, NULL, 0, 1, 0, NULL, 1) == MC_INVALID_ARGUMENT);
  CHECK(mc_load_into(path_in("missing.mcx"), key, NULL, 0, dst, PLAIN_SIZE, NULL) == MC_IO);
  CHECK(mc_load_into(path_in("m.mcx"), key, "AES-CBC", 0, dst, PLAIN_SIZE, NULL) == MC_INVALID_ARGUMENT);
  /* a tampered chunk in the middle: MC_AUTH_FAILED and the whole destination zeroed, not partial */
  CHECK(write_file(path_in("t.bin"), plain, PLAIN_SIZE));
  CHECK(encrypt_test_file(key, path_in("t.bin"), path_in("t.mcx")) == MC_OK);
  CHECK(flip_byte(path_in("t.mcx"), -1 + (long)(40 * (CHUNK + 16)) + 600)); /* inside chunk 40 or so */
  memset(dst, 0xAA, PLAIN_SIZE);
  CHECK(mc_load_into(path_in("t.mcx"), key, NULL, 2, dst, PLAIN_SIZE, &written) == MC_AUTH_FAILED);
  CHECK(written == 0 && all_equal(dst, PLAIN_SIZE, 0));
  CHECK(strstr(mc_last_error(), "chunk") != NULL);
  memset(dst, 0xAA, PLAIN_SIZE);
  CHECK(mc_load_range_into(path_in("t.mcx"), key, NULL, 100, 60 * CHUNK, 0, dst, PLAIN_SIZE) == MC_AUTH_FAILED);
  CHECK(all_equal(dst, 60 * CHUNK, 0) && all_equal(dst + 60 * CHUNK, PLAIN_SIZE - 60 * CHUNK, 0xAA));
  /* the chunks before the tampered one are fine */
  CHECK(mc_load_range_into(path_in("t.mcx"), key, NULL, 0, 30 * CHUNK, 0, dst, PLAIN_SIZE) == MC_OK);
  CHECK(memcmp(dst, plain, 30 * CHUNK) == 0);
  free(dst);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
    return 2;
  }
  snprintf(dir, sizeof dir, "%s", argv[1]);
  for (size_t i = 0; i < PLAIN_SIZE; ++i) plain[i] = (uint8_t)(i * 31 + (i >> 11));
  uint8_t key_bytes[32];
  for (int i = 0; i < 32; ++i) key_bytes[i] = (uint8_t)(i * 3 + 1);
  mc_key* key = NULL;
  CHECK(mc_key_new(key_bytes, 32, &key) == MC_OK);
  CHECK(write_file(path_in("m.bin"), plain, PLAIN_SIZE));
  CHECK(encrypt_test_file(key, path_in("m.bin"), path_in("m.mcx")) == MC_OK);
  test_round_trips(key);
  test_failures(key);
  mc_key_free(key);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
