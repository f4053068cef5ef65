/*
 * Exercises every entry point of the C API (modelcrypt.h), including NULL arguments and every
 * mc_status a caller can provoke. Built by tests/test_native_api.py with
 *   cc -std=c99 -Wall -Werror $(pkg-config --cflags --libs modelcrypt) -pthread
 * usage: test_c_api WORKDIR [--no-rlimit]
 * Prints one line per failed check and a final "N passed, M failed" line; exits 1 on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <modelcrypt/modelcrypt.h>

#include <stdint.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <sys/resource.h>
#endif

#include "test_support.h"

static const uint8_t KEY16[16] = "0123456789ABCDEF";
static uint8_t KEY32[32];
static uint8_t OTHER32[32];

static uint8_t* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t* data = malloc(n > 0 ? (size_t)n : 1);
  *size = fread(data, 1, (size_t)n, f);
  fclose(f);
  return data;
}

static void test_strings(void) {
  CHECK(strcmp(mc_status_string(MC_OK), "OK") == 0);
  CHECK(strcmp(mc_status_string(MC_KEY_MISMATCH), "KEY_MISMATCH") == 0);
  CHECK(strcmp(mc_status_string(MC_AUTH_FAILED), "AUTH_FAILED") == 0);
  CHECK(strcmp(mc_status_string(MC_FORMAT), "FORMAT") == 0);
  CHECK(strcmp(mc_status_string(MC_UNSUPPORTED), "UNSUPPORTED") == 0);
  CHECK(strcmp(mc_status_string(MC_IO), "IO") == 0);
  CHECK(strcmp(mc_status_string(MC_INVALID_ARGUMENT), "INVALID_ARGUMENT") == 0);
  CHECK(strcmp(mc_status_string(MC_NO_MEMORY), "NO_MEMORY") == 0);
  /* MC_INTERNAL cannot be provoked from outside (it reports broken invariants); its name can. */
  CHECK(strcmp(mc_status_string(MC_INTERNAL), "INTERNAL") == 0);
  CHECK(strcmp(mc_status_string((mc_status)99), "UNKNOWN") == 0);
  CHECK(strcmp(mc_status_string((mc_status)-1), "UNKNOWN") == 0);
  CHECK(mc_version() != NULL && strlen(mc_version()) >= 5);
  CHECK(mc_openssl_version() != NULL && strncmp(mc_openssl_version(), "OpenSSL 3.", 10) == 0);
}

static void test_buffers_and_wipe(void) {
  CHECK(mc_buffer_data(NULL) == NULL);
  CHECK(mc_buffer_size(NULL) == 0);
  mc_buffer_free(NULL); /* accepted */
  uint8_t secret[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  mc_wipe(secret, sizeof secret);
  int zero = 1;
  for (size_t i = 0; i < sizeof secret; ++i) zero &= secret[i] == 0;
  CHECK(zero);
  mc_wipe(NULL, 0);
}

static void test_memory_round_trip(void) {
  static uint8_t data[300000];
  for (size_t i = 0; i < sizeof data; ++i) data[i] = (uint8_t)(i * 7 + 3);
  mc_buffer* enc = NULL;
  CHECK(mc_encrypt_memory(data, sizeof data, KEY32, 32, "AES-GCM", &enc) == MC_OK);
  CHECK(mc_last_error()[0] == '\0');
  CHECK(enc != NULL && mc_buffer_size(enc) > sizeof data);
  mc_buffer* dec = NULL;
  CHECK(mc_decrypt_memory(mc_buffer_data(enc), mc_buffer_size(enc), KEY32, 32, NULL, &dec) == MC_OK);
  CHECK(dec != NULL && mc_buffer_size(dec) == sizeof data && memcmp(mc_buffer_data(dec), data, sizeof data) == 0);
  mc_buffer_free(dec);

  /* wrong key, then a tampered byte */
  dec = (mc_buffer*)1;
  CHECK(mc_decrypt_memory(mc_buffer_data(enc), mc_buffer_size(enc), OTHER32, 32, "AES-GCM", &dec) == MC_KEY_MISMATCH);
  CHECK(dec == NULL);
  CHECK(strstr(mc_last_error(), "wrong key") != NULL);
  uint8_t* copy = malloc(mc_buffer_size(enc));
  memcpy(copy, mc_buffer_data(enc), mc_buffer_size(enc));
  copy[mc_buffer_size(enc) - 100] ^= 1;
  CHECK(mc_decrypt_memory(copy, mc_buffer_size(enc), KEY32, 32, "AES-GCM", &dec) == MC_AUTH_FAILED);
  CHECK(dec == NULL);
  /* version 4 header: unsupported (this build reads versions 1, 2 and 3) */
  memcpy(copy, mc_buffer_data(enc), mc_buffer_size(enc));
  copy[8] = 4;
  CHECK(mc_decrypt_memory(copy, mc_buffer_size(enc), KEY32, 32, "AES-GCM", &dec) == MC_UNSUPPORTED);
  /* not a modelcrypt file */
  CHECK(mc_decrypt_memory(data, sizeof data, KEY32, 32, "AES-GCM", &dec) == MC_FORMAT);
  CHECK(mc_decrypt_memory(data, 0, KEY32, 32, "AES-GCM", &dec) == MC_FORMAT);
  free(copy);

  /* empty input round trip, NULL data allowed with size 0 */
  mc_buffer* enc0 = NULL;
  CHECK(mc_encrypt_memory(NULL, 0, KEY16, 16, "aes-gcm", &enc0) == MC_OK);
  CHECK(mc_decrypt_memory(mc_buffer_data(enc0), mc_buffer_size(enc0), KEY16, 16, "AES-GCM", &dec) == MC_OK);
  CHECK(dec != NULL && mc_buffer_size(dec) == 0 && mc_buffer_data(dec) != NULL);
  mc_buffer_free(dec);
  mc_buffer_free(enc0);
  mc_buffer_free(enc);
}

static void test_invalid_arguments(void) {
  mc_buffer* out = (mc_buffer*)1;
  const char* f = path_in("plain.bin");
  CHECK(mc_load(NULL, KEY32, 32, "AES-GCM", &out) == MC_INVALID_ARGUMENT && out == NULL);
  CHECK(mc_load(f, NULL, 32, "AES-GCM", &out) == MC_INVALID_ARGUMENT);
  CHECK(mc_load(f, KEY32, 32, "AES-GCM", NULL) == MC_INVALID_ARGUMENT);
  CHECK(mc_load(f, KEY32, 20, "AES-GCM", &out) == MC_INVALID_ARGUMENT);
  CHECK(strstr(mc_last_error(), "16, 24 or 32") != NULL);
  CHECK(mc_load(f, KEY32, 32, "ROT13", &out) == MC_INVALID_ARGUMENT);
  CHECK(strstr(mc_last_error(), "AES-GCM") != NULL); /* the message lists the supported modes */
  /* a legacy read mode that disagrees with a modelcrypt file: the message names the right one */
  CHECK(mc_load(path_in("plain.bin.mcx"), KEY32, 32, "AES-CBC", &out) == MC_INVALID_ARGUMENT);
  CHECK(strstr(mc_last_error(), "AES-GCM") != NULL);
  CHECK(mc_load(f, KEY32, 32, "AES-CBC", &out) == MC_FORMAT); /* plain bytes are no format at all */
  CHECK(mc_decrypt_memory(NULL, 10, KEY32, 32, NULL, &out) == MC_INVALID_ARGUMENT);
  CHECK(mc_decrypt_memory("x", 1, KEY32, 32, NULL, NULL) == MC_INVALID_ARGUMENT);
  CHECK(mc_encrypt_memory(NULL, 10, KEY32, 32, NULL, &out) == MC_INVALID_ARGUMENT);
  CHECK(mc_encrypt_memory("x", 1, NULL, 32, NULL, &out) == MC_INVALID_ARGUMENT);
  CHECK(mc_encrypt_memory("x", 1, KEY32, 32, NULL, NULL) == MC_INVALID_ARGUMENT);
  CHECK(mc_encrypt_memory("x", 1, KEY32, 32, "ROT13", &out) == MC_INVALID_ARGUMENT);
  CHECK(mc_encrypt_file(NULL, f, KEY32, 32, NULL) == MC_INVALID_ARGUMENT);
  CHECK(mc_encrypt_file(f, NULL, KEY32, 32, NULL) == MC_INVALID_ARGUMENT);
  CHECK(mc_encrypt_file(f, path_in("x.mcx"), NULL, 32, NULL) == MC_INVALID_ARGUMENT);
  CHECK(mc_decrypt_file(NULL, f, KEY32, 32, NULL) == MC_INVALID_ARGUMENT);
  CHECK(mc_decrypt_file(f, NULL, KEY32, 32, NULL) == MC_INVALID_ARGUMENT);
  CHECK(mc_decrypt_file(f, path_in("y.bin"), KEY32, 0, NULL) == MC_INVALID_ARGUMENT);
  CHECK(mc_encrypt_file(f, f, KEY32, 32, NULL) == MC_INVALID_ARGUMENT); /* dst == src */
}

/* Whether the file named by UTF-8 `path` exists, found the platform's own way (Windows: UTF-16). */
static int utf8_file_exists(const char* path) {
#ifdef _WIN32
  wchar_t wide[4300];
  if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, wide, 4300) == 0) return 0;
  FILE* f = _wfopen(wide, L"rb");
#else
  FILE* f = fopen(path, "rb");
#endif
  if (f) fclose(f);
  return f != NULL;
}

static void test_files(void) {
  static uint8_t data[2500000];
  for (size_t i = 0; i < sizeof data; ++i) data[i] = (uint8_t)(i ^ (i >> 9));
  const char* plain = path_in("plain.bin");
  const char* enc = path_in("plain.bin.mcx");
  const char* back = path_in("back.bin");
  CHECK(write_file(plain, data, sizeof data));
  CHECK(mc_encrypt_file(plain, enc, KEY32, 32, "AES-GCM") == MC_OK);
  mc_buffer* out = NULL;
  CHECK(mc_load(enc, KEY32, 32, "AES-GCM", &out) == MC_OK);
  CHECK(out && mc_buffer_size(out) == sizeof data && memcmp(mc_buffer_data(out), data, sizeof data) == 0);
  mc_buffer_free(out);
  CHECK(mc_decrypt_file(enc, back, KEY32, 32, NULL) == MC_OK);
  size_t n = 0;
  uint8_t* got = read_file(back, &n);
  CHECK(got && n == sizeof data && memcmp(got, data, n) == 0);
  free(got);
  /* Paths are UTF-8 on every platform: model-\u00fc-\u6a21\u578b.mcx */
  const char* utf8 = path_in("model-\xc3\xbc-\xe6\xa8\xa1\xe5\x9e\x8b.mcx");
  CHECK(mc_encrypt_file(plain, utf8, KEY32, 32, NULL) == MC_OK && utf8_file_exists(utf8));
  out = NULL;
  CHECK(mc_load(utf8, KEY32, 32, NULL, &out) == MC_OK && out && mc_buffer_size(out) == sizeof data &&
        memcmp(mc_buffer_data(out), data, sizeof data) == 0);
  mc_buffer_free(out);
  CHECK(mc_decrypt_file(utf8, back, KEY32, 32, NULL) == MC_OK); /* replaces the existing back.bin */
  got = read_file(back, &n);
  CHECK(got && n == sizeof data && memcmp(got, data, n) == 0);
  free(got);

  out = (mc_buffer*)1;
  CHECK(mc_load(enc, OTHER32, 32, "AES-GCM", &out) == MC_KEY_MISMATCH && out == NULL);
  CHECK(mc_load(path_in("missing.mcx"), KEY32, 32, "AES-GCM", &out) == MC_IO);
  CHECK(strstr(mc_last_error(), "No such file") != NULL);
  CHECK(mc_load(dir, KEY32, 32, "AES-GCM", &out) == MC_IO); /* a directory */
  CHECK(mc_load(plain, KEY32, 32, "AES-GCM", &out) == MC_FORMAT);
  CHECK(mc_decrypt_file(enc, back, OTHER32, 32, NULL) == MC_KEY_MISMATCH);
  CHECK(mc_encrypt_file(path_in("missing.bin"), path_in("m.mcx"), KEY32, 32, NULL) == MC_IO);

  /* truncated file: authenticated header says more */
  uint8_t* whole = read_file(enc, &n);
  const char* cut = path_in("cut.mcx");
  CHECK(write_file(cut, whole, n - 1));
  CHECK(mc_load(cut, KEY32, 32, "AES-GCM", &out) == MC_AUTH_FAILED);
  CHECK(strstr(mc_last_error(), "truncated") != NULL);
  /* a failed decrypt_file leaves the existing destination untouched */
  CHECK(mc_decrypt_file(cut, back, KEY32, 32, NULL) == MC_AUTH_FAILED);
  got = read_file(back, &n);
  CHECK(got && n == sizeof data && memcmp(got, data, n) == 0);
  free(got);
  free(whole);
  /* success clears the thread's last error */
  CHECK(mc_load(enc, KEY32, 32, NULL, &out) == MC_OK && mc_last_error()[0] == '\0');
  mc_buffer_free(out);
}

#ifdef _WIN32
/* The CRT has setenv's effect under another name; _putenv_s with "" removes the variable. */
static void setenv_for_test(const char* name, const char* value) { _putenv_s(name, value); }
static void unsetenv_for_test(const char* name) { _putenv_s(name, ""); }

static void test_no_memory(void) {
  printf("skipped test_no_memory: it caps the address space with setrlimit(RLIMIT_AS), which Windows has not\n");
}
#else
static void setenv_for_test(const char* name, const char* value) { setenv(name, value, 1); }
static void unsetenv_for_test(const char* name) { unsetenv(name); }

static void test_no_memory(void) {
  /* A 64 MiB model cannot be loaded when the address space is capped below that. */
  const size_t size = 64u << 20;
  uint8_t* data = calloc(size, 1);
  mc_buffer* enc = NULL;
  CHECK(mc_encrypt_memory(data, size, KEY32, 32, NULL, &enc) == MC_OK);
  const char* big = path_in("big.mcx");
  CHECK(write_file(big, mc_buffer_data(enc), mc_buffer_size(enc)));
  mc_buffer_free(enc);
  free(data);
  struct rlimit old, cap;
  getrlimit(RLIMIT_AS, &old);
  FILE* st = fopen("/proc/self/statm", "r");
  unsigned long pages = 0;
  if (st) {
    if (fscanf(st, "%lu", &pages) != 1) pages = 0;
    fclose(st);
  }
  cap = old;
  cap.rlim_cur = (rlim_t)pages * 4096 + (16u << 20);
  CHECK(setrlimit(RLIMIT_AS, &cap) == 0);
  mc_buffer* out = (mc_buffer*)1;
  const mc_status s = mc_load(big, KEY32, 32, NULL, &out);
  setrlimit(RLIMIT_AS, &old);
  CHECK(s == MC_NO_MEMORY && out == NULL);
}
#endif

struct job {
  const char* path;
  int ok;
};

static void* load_many(void* arg) {
  struct job* j = arg;
  j->ok = 1;
  for (int i = 0; i < 5; ++i) {
    mc_buffer* out = NULL;
    mc_status s = mc_load(j->path, KEY32, 32, NULL, &out);
    if (s != MC_OK || mc_buffer_size(out) != 2500000) j->ok = 0;
    mc_buffer_free(out);
    s = mc_load(j->path, OTHER32, 32, NULL, &out);
    /* the detail text is per thread: this thread's failure, not another's success */
    if (s != MC_KEY_MISMATCH || strstr(mc_last_error(), "wrong key") == NULL) j->ok = 0;
  }
  return NULL;
}

static void test_threads(void) {
  pthread_t t[8];
  struct job jobs[8];
  for (int i = 0; i < 8; ++i) {
    jobs[i].path = path_in("plain.bin.mcx");
    pthread_create(&t[i], NULL, load_many, &jobs[i]);
  }
  int all = 1;
  for (int i = 0; i < 8; ++i) {
    pthread_join(t[i], NULL);
    all &= jobs[i].ok;
  }
  CHECK(all);
}

/* Issue 13: the C API's parity with Python (threads, verify, ranges, metadata, inspect, key parsing). */
static void test_parity(void) {
  const char* enc = path_in("plain.bin.mcx"); /* from test_files: 2500000 bytes under KEY32, no metadata */
  mc_buffer* out = (mc_buffer*)1;
  uint8_t expect[4096];
  for (size_t i = 0; i < sizeof expect; ++i) {
    size_t at = 1234567 + i;
    expect[i] = (uint8_t)(at ^ (at >> 9));
  }
  /* threads */
  CHECK(mc_load_ex(enc, KEY32, 32, NULL, NULL, 1, &out) == MC_OK && mc_buffer_size(out) == 2500000);
  CHECK(strcmp(mc_buffer_metadata(out), "{}") == 0);
  mc_buffer_free(out);
  CHECK(mc_decrypt_file_ex(enc, path_in("back1.bin"), KEY32, 32, NULL, NULL, 2) == MC_OK);
  /* verify */
  CHECK(mc_verify_file(enc, KEY32, 32, NULL, NULL, 0) == MC_OK);
  CHECK(mc_verify_file(enc, OTHER32, 32, NULL, NULL, 0) == MC_KEY_MISMATCH);
  CHECK(mc_verify_file(path_in("plain.bin"), KEY32, 32, NULL, NULL, 0) == MC_FORMAT);
  CHECK(mc_verify_file(path_in("missing.mcx"), KEY32, 32, NULL, NULL, 0) == MC_IO);
  CHECK(mc_verify_file(NULL, KEY32, 32, NULL, NULL, 0) == MC_INVALID_ARGUMENT);
  size_t n = 0;
  uint8_t* image = read_file(enc, &n);
  CHECK(image != NULL && n > 2000000);
  image[n - 1000] ^= 1; /* a byte of the last chunk */
  CHECK(write_file(path_in("tampered.mcx"), image, n));
  CHECK(mc_verify_file(path_in("tampered.mcx"), KEY32, 32, NULL, NULL, 0) == MC_AUTH_FAILED);
  CHECK(write_file(path_in("truncated.mcx"), image, n - 5000));
  CHECK(mc_verify_file(path_in("truncated.mcx"), KEY32, 32, NULL, NULL, 0) == MC_AUTH_FAILED);
  /* random access */
  CHECK(mc_load_range(enc, KEY32, 32, NULL, 1234567, sizeof expect, 0, &out) == MC_OK);
  CHECK(out && mc_buffer_size(out) == sizeof expect && memcmp(mc_buffer_data(out), expect, sizeof expect) == 0);
  mc_buffer_free(out);
  CHECK(mc_load_range(enc, KEY32, 32, NULL, 2499999, 2, 0, &out) == MC_INVALID_ARGUMENT && out == NULL);
  CHECK(mc_load_range(enc, KEY32, 32, NULL, UINT64_MAX, 2, 0, &out) == MC_INVALID_ARGUMENT);
  CHECK(mc_load_range(enc, OTHER32, 32, NULL, 0, 10, 0, &out) == MC_KEY_MISMATCH);
  CHECK(mc_load_range(path_in("tampered.mcx"), KEY32, 32, NULL, 0, 10, 0, &out) == MC_OK); /* chunk 0 is intact */
  mc_buffer_free(out);
  CHECK(mc_load_range(path_in("tampered.mcx"), KEY32, 32, NULL, 2490000, 100, 0, &out) == MC_AUTH_FAILED);
  CHECK(mc_load_range(enc, KEY32, 32, NULL, 0, 10, 0, NULL) == MC_INVALID_ARGUMENT);
  /* keyless inspect */
  CHECK(mc_inspect(enc, &out) == MC_OK);
  {
    char json[2048] = {0};
    size_t len = mc_buffer_size(out);
    CHECK(len > 0 && len < sizeof json);
    if (len < sizeof json) memcpy(json, mc_buffer_data(out), len);
    CHECK(strstr(json, "\"format\":\"modelcrypt\"") != NULL);
    CHECK(strstr(json, "\"plaintext_length\":2500000") != NULL);
    CHECK(strstr(json, "\"chunk_size\":1048576") != NULL);
  }
  mc_buffer_free(out);
  CHECK(mc_inspect(path_in("plain.bin"), &out) == MC_FORMAT && out == NULL);
  CHECK(mc_inspect(NULL, &out) == MC_INVALID_ARGUMENT);
  /* key parsing: hex (0x, whitespace), base64, files (raw too), environment; never echoed */
  const char* hex = "0x0104070a0d101316191c1f2225282b2e3134373a3d404346494c4f5255585b5e\n";
  CHECK(mc_key_from_text(hex, strlen(hex), &out) == MC_OK && mc_buffer_size(out) == 32 &&
        memcmp(mc_buffer_data(out), KEY32, 32) == 0);
  mc_buffer_free(out);
  const char* b64 = " AQQHCg0QExYZHB8iJSgrLjE0Nzo9QENGSUxPUlVYW14= ";
  CHECK(mc_key_from_text(b64, strlen(b64), &out) == MC_OK && memcmp(mc_buffer_data(out), KEY32, 32) == 0);
  mc_buffer_free(out);
  CHECK(mc_key_from_text("0x1234", 6, &out) == MC_INVALID_ARGUMENT && out == NULL);
  CHECK(strstr(mc_last_error(), "1234") == NULL && strstr(mc_last_error(), "4 digits") != NULL);
  CHECK(mc_key_from_text("not a key!", 10, &out) == MC_INVALID_ARGUMENT);
  CHECK(mc_key_from_text("QUJD", 4, &out) == MC_INVALID_ARGUMENT); /* base64 of 3 bytes */
  CHECK(mc_key_from_text(NULL, 0, &out) == MC_INVALID_ARGUMENT);
  CHECK(write_file(path_in("k.hex"), hex + 2, strlen(hex) - 2));
  CHECK(mc_key_from_file(path_in("k.hex"), &out) == MC_OK && memcmp(mc_buffer_data(out), KEY32, 32) == 0);
  mc_buffer_free(out);
  CHECK(write_file(path_in("k.raw"), KEY32, 32));
  CHECK(mc_key_from_file(path_in("k.raw"), &out) == MC_OK && memcmp(mc_buffer_data(out), KEY32, 32) == 0);
  mc_buffer_free(out);
  CHECK(write_file(path_in("k.ms"), KEY16, 16)); /* MindSpore's ASCII key: 16 hex-digit bytes, raw */
  CHECK(mc_key_from_file(path_in("k.ms"), &out) == MC_OK && mc_buffer_size(out) == 16 &&
        memcmp(mc_buffer_data(out), KEY16, 16) == 0);
  mc_buffer_free(out);
  CHECK(mc_key_from_file(path_in("no-such.key"), &out) == MC_IO);
  CHECK(mc_key_from_file("0104070a0d101316191c1f2225282b2e", &out) == MC_IO);
  CHECK(strstr(mc_last_error(), "0104070a0d1013") == NULL); /* a key given as a path is not echoed */
  setenv_for_test("MC_TEST_KEY", b64);
  CHECK(mc_key_from_env("MC_TEST_KEY", &out) == MC_OK && memcmp(mc_buffer_data(out), KEY32, 32) == 0);
  mc_buffer_free(out);
  unsetenv_for_test("MC_TEST_KEY");
  CHECK(mc_key_from_env("MC_TEST_KEY", &out) == MC_INVALID_ARGUMENT && strstr(mc_last_error(), "not set") != NULL);
  CHECK(mc_key_from_env("AQQHCg0QExYZHB8iJSgrLjE0Nzo9QENGSUxPUlVYW14", &out) == MC_INVALID_ARGUMENT);
  CHECK(strstr(mc_last_error(), "AQQHCg0QExYZ") == NULL);
  CHECK(mc_key_from_env(NULL, &out) == MC_INVALID_ARGUMENT);
  free(image);
}

/* Format v2: a key object that is a symmetric key or an X25519 identity, recipients, re-wrapping. */
static void test_recipients(void) {
  uint8_t plain[10000];
  for (size_t i = 0; i < sizeof plain; ++i) plain[i] = (uint8_t)(i * 7);
  CHECK(write_file(path_in("r.bin"), plain, sizeof plain));
  mc_key *a = NULL, *b = NULL, *team = NULL, *c = NULL;
  CHECK(mc_key_generate_identity(&a) == MC_OK && mc_key_is_identity(a) == 1);
  CHECK(mc_key_generate_identity(&b) == MC_OK);
  CHECK(mc_key_generate_identity(&c) == MC_OK);
  CHECK(mc_key_new(KEY32, 32, &team) == MC_OK && mc_key_is_identity(team) == 0);
  mc_buffer *ra = NULL, *rb = NULL, *rc = NULL;
  CHECK(mc_key_recipient(a, &ra) == MC_OK && mc_key_recipient(b, &rb) == MC_OK && mc_key_recipient(c, &rc) == MC_OK);
  char ta[128] = {0}, tb[128] = {0}, tc[128] = {0};
  memcpy(ta, mc_buffer_data(ra), mc_buffer_size(ra));
  memcpy(tb, mc_buffer_data(rb), mc_buffer_size(rb));
  memcpy(tc, mc_buffer_data(rc), mc_buffer_size(rc));
  CHECK(strncmp(ta, "modelcrypt1", 11) == 0);
  const char* two[2] = {ta, tb};
  CHECK(mc_encrypt_file_to_recipients(path_in("r.bin"), path_in("r.mcx"), two, 2, team, NULL) == MC_OK);
  mc_key* keys[3] = {a, b, team};
  for (int k = 0; k < 3; ++k) {
    mc_buffer* out = NULL;
    CHECK(mc_load_with_key(path_in("r.mcx"), keys[k], NULL, NULL, 0, &out) == MC_OK);
    CHECK(out && mc_buffer_size(out) == sizeof plain && memcmp(mc_buffer_data(out), plain, sizeof plain) == 0);
    mc_buffer_free(out);
    CHECK(mc_verify_file_with_key(path_in("r.mcx"), keys[k], NULL, NULL, 1) == MC_OK);
  }
  mc_buffer* out = NULL;
  CHECK(mc_load_with_key(path_in("r.mcx"), c, NULL, NULL, 0, &out) == MC_KEY_MISMATCH && out == NULL);
  CHECK(strstr(mc_last_error(), "no stanza") != NULL);
  const char* add[1] = {tc};
  const char* rem[1] = {ta};
  CHECK(mc_recipients_edit(path_in("r.mcx"), b, add, 1, rem, 1) == MC_OK);
  CHECK(mc_load_range_with_key(path_in("r.mcx"), c, NULL, 100, 50, 0, &out) == MC_OK);
  CHECK(out && mc_buffer_size(out) == 50 && memcmp(mc_buffer_data(out), plain + 100, 50) == 0);
  mc_buffer_free(out);
  out = NULL;
  CHECK(mc_load_with_key(path_in("r.mcx"), a, NULL, NULL, 0, &out) == MC_KEY_MISMATCH && out == NULL);
  size_t n = 0;
  uint8_t* image = read_file(path_in("r.mcx"), &n);
  CHECK(mc_decrypt_memory_with_key(image, n, team, NULL, NULL, &out) == MC_OK);
  mc_buffer_free(out);
  out = NULL;
  image[n - 1] ^= 1;
  CHECK(mc_decrypt_memory_with_key(image, n, c, NULL, NULL, &out) == MC_AUTH_FAILED && out == NULL);
  free(image);
  mc_key* parsed = NULL;
  CHECK(mc_key_parse("MODELCRYPT-SECRET-KEY-1QQQQ", 27, &parsed) == MC_INVALID_ARGUMENT && parsed == NULL);
  CHECK(strstr(mc_last_error(), "QQQQ") == NULL);
  const char* bad[1] = {"modelcrypt1qqqq"};
  CHECK(mc_encrypt_file_to_recipients(path_in("r.bin"), path_in("r2.mcx"), bad, 1, NULL, NULL) == MC_INVALID_ARGUMENT);
  CHECK(mc_load_with_key(path_in("r.mcx"), NULL, NULL, NULL, 0, &out) == MC_INVALID_ARGUMENT);
  mc_buffer_free(ra);
  mc_buffer_free(rb);
  mc_buffer_free(rc);
  mc_key_free(a);
  mc_key_free(b);
  mc_key_free(c);
  mc_key_free(team);
  mc_key_free(NULL);
}

/* Format v3: a publisher signs; a key object that requires the signer loads only signed, unchanged
 * files (MC_SIGNATURE otherwise); keyless verification needs no key. */
static void test_signatures(void) {
  uint8_t plain[20000];
  for (size_t i = 0; i < sizeof plain; ++i) plain[i] = (uint8_t)(i * 13 + 5);
  CHECK(write_file(path_in("s.bin"), plain, sizeof plain));
  mc_signing_key *publisher = NULL, *intruder = NULL, *parsed = NULL;
  CHECK(mc_signing_key_generate(&publisher) == MC_OK && publisher != NULL);
  CHECK(mc_signing_key_generate(&intruder) == MC_OK);
  mc_buffer *pub = NULL, *ipub = NULL;
  CHECK(mc_signing_key_public(publisher, &pub) == MC_OK && mc_signing_key_public(intruder, &ipub) == MC_OK);
  char tp[128] = {0}, ti[128] = {0};
  memcpy(tp, mc_buffer_data(pub), mc_buffer_size(pub));
  memcpy(ti, mc_buffer_data(ipub), mc_buffer_size(ipub));
  CHECK(strncmp(tp, "modelcrypt-signer1", 18) == 0);
  mc_key *team = NULL, *trusting = NULL, *distrusting = NULL, *device = NULL;
  CHECK(mc_key_new(KEY32, 32, &team) == MC_OK && mc_key_new(KEY32, 32, &trusting) == MC_OK);
  CHECK(mc_key_new(KEY32, 32, &distrusting) == MC_OK && mc_key_generate_identity(&device) == MC_OK);
  CHECK(mc_key_require_signer(trusting, tp, strlen(tp)) == MC_OK);
  CHECK(mc_key_require_signer(distrusting, ti, strlen(ti)) == MC_OK);
  CHECK(mc_key_require_signer(distrusting, "modelcrypt-signer1qqqq", 22) == MC_INVALID_ARGUMENT);
  CHECK(mc_encrypt_file_signed(path_in("s.bin"), path_in("s.mcx"), team, NULL, 0, publisher, NULL) == MC_OK);
  CHECK(mc_encrypt_file(path_in("s.bin"), path_in("u.mcx"), KEY32, 32, NULL) == MC_OK);
  mc_buffer* out = NULL;
  CHECK(mc_load_with_key(path_in("s.mcx"), trusting, NULL, NULL, 0, &out) == MC_OK);
  CHECK(out && mc_buffer_size(out) == sizeof plain && memcmp(mc_buffer_data(out), plain, sizeof plain) == 0);
  mc_buffer_free(out);
  out = NULL;
  CHECK(mc_load_with_key(path_in("s.mcx"), team, NULL, NULL, 0, &out) == MC_OK);  /* no signer required: loads */
  mc_buffer_free(out);
  out = NULL;
  CHECK(mc_load_with_key(path_in("s.mcx"), distrusting, NULL, NULL, 0, &out) == MC_SIGNATURE && out == NULL);
  CHECK(strstr(mc_last_error(), "untrusted") != NULL);
  CHECK(mc_load_with_key(path_in("u.mcx"), trusting, NULL, NULL, 0, &out) == MC_SIGNATURE && out == NULL);
  CHECK(strstr(mc_last_error(), "not signed") != NULL);
  CHECK(mc_load_range_with_key(path_in("s.mcx"), trusting, NULL, 5000, 100, 0, &out) == MC_OK);
  CHECK(out && mc_buffer_size(out) == 100 && memcmp(mc_buffer_data(out), plain + 5000, 100) == 0);
  mc_buffer_free(out);
  out = NULL;
  CHECK(mc_verify_file_with_key(path_in("s.mcx"), trusting, NULL, NULL, 0) == MC_OK);
  CHECK(mc_decrypt_file_with_key(path_in("s.mcx"), path_in("s.out"), trusting, NULL, NULL, 0) == MC_OK);
  const char* trusted[1] = {tp};
  const char* others[1] = {ti};
  mc_buffer* who = NULL;
  CHECK(mc_verify_signature(path_in("s.mcx"), trusted, 1, 0, &who) == MC_OK && who != NULL);
  CHECK(who && mc_buffer_size(who) == strlen(tp) && memcmp(mc_buffer_data(who), tp, strlen(tp)) == 0);
  mc_buffer_free(who);
  CHECK(mc_verify_signature(path_in("s.mcx"), others, 1, 0, NULL) == MC_SIGNATURE);
  CHECK(mc_verify_signature(path_in("u.mcx"), trusted, 1, 0, NULL) == MC_SIGNATURE);
  CHECK(mc_verify_signature(path_in("s.mcx"), NULL, 0, 0, NULL) == MC_INVALID_ARGUMENT);
  /* one flipped ciphertext byte: the signature catches it, with and without the key */
  size_t n = 0;
  uint8_t* image = read_file(path_in("s.mcx"), &n);
  CHECK(image != NULL);
  if (image) {
    image[n / 2] ^= 0x01;
    CHECK(write_file(path_in("t.mcx"), image, n));
    CHECK(mc_decrypt_memory_with_key(image, n, trusting, NULL, NULL, &out) == MC_SIGNATURE && out == NULL);
    CHECK(mc_decrypt_memory_with_key(image, n, team, NULL, NULL, &out) == MC_AUTH_FAILED && out == NULL);
    free(image);
  }
  CHECK(mc_load_with_key(path_in("t.mcx"), trusting, NULL, NULL, 0, &out) == MC_SIGNATURE && out == NULL);
  CHECK(mc_verify_signature(path_in("t.mcx"), trusted, 1, 0, NULL) == MC_SIGNATURE);
  /* recipients, signed: a device identity that requires the publisher */
  mc_buffer* rd = NULL;
  CHECK(mc_key_recipient(device, &rd) == MC_OK);
  char td[128] = {0};
  memcpy(td, mc_buffer_data(rd), mc_buffer_size(rd));
  const char* to[1] = {td};
  CHECK(mc_encrypt_file_signed(path_in("s.bin"), path_in("r3.mcx"), NULL, to, 1, publisher, NULL) == MC_OK);
  CHECK(mc_key_require_signer(device, tp, strlen(tp)) == MC_OK);
  CHECK(mc_load_with_key(path_in("r3.mcx"), device, NULL, NULL, 0, &out) == MC_OK && mc_buffer_size(out) == sizeof plain);
  mc_buffer_free(out);
  out = NULL;
  CHECK(mc_encrypt_file_signed(path_in("s.bin"), path_in("r4.mcx"), NULL, NULL, 0, publisher, NULL) == MC_INVALID_ARGUMENT);
  CHECK(mc_encrypt_file_signed(path_in("s.bin"), path_in("r4.mcx"), team, NULL, 0, NULL, NULL) == MC_INVALID_ARGUMENT);
  CHECK(mc_signing_key_parse("MODELCRYPT-SIGNING-KEY-1QQQQ", 28, &parsed) == MC_INVALID_ARGUMENT && parsed == NULL);
  CHECK(strstr(mc_last_error(), "QQQQ") == NULL);
  CHECK(mc_status_string(MC_SIGNATURE) != NULL && strcmp(mc_status_string(MC_SIGNATURE), "SIGNATURE") == 0);
  mc_buffer_free(pub);
  mc_buffer_free(ipub);
  mc_buffer_free(rd);
  mc_key_free(team);
  mc_key_free(trusting);
  mc_key_free(distrusting);
  mc_key_free(device);
  mc_signing_key_free(publisher);
  mc_signing_key_free(intruder);
  mc_signing_key_free(NULL);
}

static void test_encrypt_options(void) {
  uint8_t plain[300000];
  for (size_t i = 0; i < sizeof plain; ++i) plain[i] = (uint8_t)(i * 7 + 3);
  CHECK(write_file(path_in("o.bin"), plain, sizeof plain));
  mc_key* key = NULL;
  CHECK(mc_key_new(KEY32, 32, &key) == MC_OK);
  mc_buffer *out = NULL, *info = NULL;
  /* NULL options: the defaults (format v1 under the key, 1 MiB chunks) */
  CHECK(mc_encrypt_file_ex(path_in("o.bin"), path_in("o1.mcx"), key, NULL, 0, NULL, NULL, NULL) == MC_OK);
  CHECK(mc_load_with_key(path_in("o1.mcx"), key, NULL, NULL, 0, &out) == MC_OK);
  CHECK(out && mc_buffer_size(out) == sizeof plain && memcmp(mc_buffer_data(out), plain, sizeof plain) == 0);
  mc_buffer_free(out);
  CHECK(mc_inspect(path_in("o1.mcx"), &info) == MC_OK);
  CHECK(info && strstr((const char*)mc_buffer_data(info), "\"chunk_size\":1048576") != NULL);
  mc_buffer_free(info);
  /* every option */
  static const char meta[] = "{\"model\":\"resnet\"}";
  mc_encrypt_options o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.chunk_size = 4096;
  o.threads = 2;
  o.metadata = (const uint8_t*)meta;
  o.metadata_len = strlen(meta);
  o.no_fsync = 1;
  mc_signing_key* publisher = NULL;
  CHECK(mc_signing_key_generate(&publisher) == MC_OK);
  CHECK(mc_encrypt_file_ex(path_in("o.bin"), path_in("o2.mcx"), key, NULL, 0, publisher, NULL, &o) == MC_OK);
  out = NULL;
  CHECK(mc_load_with_key(path_in("o2.mcx"), key, NULL, NULL, 1, &out) == MC_OK);
  CHECK(out && mc_buffer_size(out) == sizeof plain && memcmp(mc_buffer_data(out), plain, sizeof plain) == 0);
  CHECK(out && strcmp(mc_buffer_metadata(out), meta) == 0);
  mc_buffer_free(out);
  info = NULL;
  CHECK(mc_inspect(path_in("o2.mcx"), &info) == MC_OK);
  CHECK(info && strstr((const char*)mc_buffer_data(info), "\"chunk_size\":4096") != NULL);
  mc_buffer_free(info);
  mc_buffer* pub = NULL;
  CHECK(mc_signing_key_public(publisher, &pub) == MC_OK);
  char tp[128] = {0};
  memcpy(tp, mc_buffer_data(pub), mc_buffer_size(pub));
  mc_buffer_free(pub);
  const char* trusted[1] = {tp};
  CHECK(mc_verify_signature(path_in("o2.mcx"), trusted, 1, 0, NULL) == MC_OK);
  /* bad options: nothing written */
  o.chunk_size = 100;
  CHECK(mc_encrypt_file_ex(path_in("o.bin"), path_in("o3.mcx"), key, NULL, 0, NULL, NULL, &o) == MC_INVALID_ARGUMENT);
  o.chunk_size = 0;
  o.struct_size = sizeof o - 1;
  CHECK(mc_encrypt_file_ex(path_in("o.bin"), path_in("o3.mcx"), key, NULL, 0, NULL, NULL, &o) == MC_INVALID_ARGUMENT);
  CHECK(strstr(mc_last_error(), "struct_size") != NULL);
  o.struct_size = sizeof o;
  o.metadata = NULL;
  CHECK(mc_encrypt_file_ex(path_in("o.bin"), path_in("o3.mcx"), key, NULL, 0, NULL, NULL, &o) == MC_INVALID_ARGUMENT);
  o.metadata_len = 0;
  CHECK(mc_encrypt_file_ex(path_in("o.bin"), path_in("o3.mcx"), NULL, NULL, 0, NULL, NULL, &o) == MC_INVALID_ARGUMENT);
  size_t n = 0;
  uint8_t* none = read_file(path_in("o3.mcx"), &n);
  CHECK(none == NULL);
  free(none);
  mc_signing_key_free(publisher);
  mc_key_free(key);
}

/* A reader over memory that counts calls and can fail, come up short or lie about its count. */
typedef struct memory_source {
  const uint8_t* data;
  size_t size;       /* the bytes really there (may be fewer than mc_reader.size) */
  int fail_at_call;  /* nonzero: that call (1-based) returns -1 */
  int overreport;    /* nonzero: report one byte more than asked */
  int calls;
  uint64_t bytes;
} memory_source;

static int memory_read_at(void* ctx, uint64_t offset, void* buf, size_t len, size_t* got) {
  memory_source* m = (memory_source*)ctx;
  m->calls++;
  if (m->fail_at_call && m->calls == m->fail_at_call) return -1;
  size_t n = 0;
  if (offset < m->size) n = (m->size - offset < len) ? (size_t)(m->size - offset) : len;
  if (n) memcpy(buf, m->data + offset, n);
  m->bytes += n;
  *got = m->overreport ? len + 1 : n;
  return 0;
}

/* An mc_reader over the memory source m, reporting `size` bytes. */
static mc_reader reader_over(memory_source* m, uint64_t size, int concurrent) {
  mc_reader r;
  memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  r.ctx = m;
  r.size = size;
  r.read_at = memory_read_at;
  r.concurrent_reads = concurrent;
  return r;
}

static void test_reader(void) {
  enum { N = 3 * 4096 + 77 };
  static uint8_t plain[N];
  for (size_t i = 0; i < N; ++i) plain[i] = (uint8_t)(i * 7 + 3);
  CHECK(write_file(path_in("rd.bin"), plain, N));
  mc_key* key = NULL;
  mc_key* other = NULL;
  CHECK(mc_key_new(KEY32, 32, &key) == MC_OK && mc_key_new(OTHER32, 32, &other) == MC_OK);
  mc_encrypt_options o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.chunk_size = 4096;
  CHECK(mc_encrypt_file_ex(path_in("rd.bin"), path_in("rd.mcx"), key, NULL, 0, NULL, NULL, &o) == MC_OK);
  size_t enc_size = 0;
  uint8_t* enc = read_file(path_in("rd.mcx"), &enc_size);
  CHECK(enc != NULL);
  if (!enc) return;
  for (int concurrent = 0; concurrent < 2; ++concurrent) {
    memory_source m = {enc, enc_size, 0, 0, 0, 0};
    mc_reader r = reader_over(&m, enc_size, concurrent);
    mc_buffer* out = NULL;
    CHECK(mc_load_from_reader(&r, key, NULL, 2, &out) == MC_OK);
    CHECK(out && mc_buffer_size(out) == N && memcmp(mc_buffer_data(out), plain, N) == 0);
    CHECK(m.bytes == enc_size); /* every byte read once */
    mc_buffer_free(out);
    out = NULL;
    CHECK(mc_load_from_reader(&r, other, NULL, 0, &out) == MC_KEY_MISMATCH && out == NULL);
  }
  /* failures: a failing call, a short source, an over-reported count, a flipped byte, bad arguments */
  memory_source m = {enc, enc_size, 3, 0, 0, 0};
  mc_reader r = reader_over(&m, enc_size, 0);
  mc_buffer* out = NULL;
  CHECK(mc_load_from_reader(&r, key, NULL, 1, &out) == MC_IO && out == NULL);
  CHECK(strstr(mc_last_error(), "reader callback failed") != NULL);
  m.fail_at_call = 0;
  m.size = enc_size - 100;
  CHECK(mc_load_from_reader(&r, key, NULL, 1, &out) == MC_IO && out == NULL);
  CHECK(strstr(mc_last_error(), "short read") != NULL);
  m.size = enc_size;
  m.overreport = 1;
  CHECK(mc_load_from_reader(&r, key, NULL, 1, &out) == MC_IO && out == NULL);
  m.overreport = 0;
  r.size = enc_size - 1; /* a truncated file, as its size says */
  CHECK(mc_load_from_reader(&r, key, NULL, 1, &out) == MC_AUTH_FAILED && out == NULL);
  r.size = enc_size;
  enc[enc_size - 20] ^= 1;
  CHECK(mc_load_from_reader(&r, key, NULL, 1, &out) == MC_AUTH_FAILED && out == NULL);
  enc[enc_size - 20] ^= 1;
  CHECK(mc_load_from_reader(&r, key, "AES-CBC", 1, &out) == MC_INVALID_ARGUMENT);
  CHECK(mc_load_from_reader(NULL, key, NULL, 1, &out) == MC_INVALID_ARGUMENT);
  CHECK(mc_load_from_reader(&r, key, NULL, 1, NULL) == MC_INVALID_ARGUMENT);
  r.struct_size = 8;
  CHECK(mc_load_from_reader(&r, key, NULL, 1, &out) == MC_INVALID_ARGUMENT);
  CHECK(strstr(mc_last_error(), "struct_size") != NULL);
  r.struct_size = sizeof r;
  r.read_at = NULL;
  CHECK(mc_load_from_reader(&r, key, NULL, 1, &out) == MC_INVALID_ARGUMENT);
  /* an identity opens a v2 file through a reader too */
  mc_key* dev = NULL;
  CHECK(mc_key_generate_identity(&dev) == MC_OK);
  mc_buffer* rc = NULL;
  CHECK(mc_key_recipient(dev, &rc) == MC_OK);
  char rt[128] = {0};
  memcpy(rt, mc_buffer_data(rc), mc_buffer_size(rc));
  mc_buffer_free(rc);
  const char* one[1] = {rt};
  CHECK(mc_encrypt_file_to_recipients(path_in("rd.bin"), path_in("rd2.mcx"), one, 1, NULL, NULL) == MC_OK);
  size_t enc2_size = 0;
  uint8_t* enc2 = read_file(path_in("rd2.mcx"), &enc2_size);
  memory_source m2 = {enc2, enc2_size, 0, 0, 0, 0};
  r.read_at = memory_read_at;
  r.ctx = &m2;
  r.size = enc2_size;
  CHECK(mc_load_from_reader(&r, dev, NULL, 0, &out) == MC_OK);
  CHECK(out && mc_buffer_size(out) == N && memcmp(mc_buffer_data(out), plain, N) == 0);
  mc_buffer_free(out);
  free(enc2);
  free(enc);
  mc_key_free(dev);
  mc_key_free(other);
  mc_key_free(key);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s WORKDIR [--no-rlimit]\n", argv[0]);
    return 2;
  }
  snprintf(dir, sizeof dir, "%s", argv[1]);
  for (int i = 0; i < 32; ++i) {
    KEY32[i] = (uint8_t)(i * 3 + 1);
    OTHER32[i] = (uint8_t)(i * 5 + 2);
  }
  test_strings();
  test_buffers_and_wipe();
  test_memory_round_trip();
  test_files();
  test_invalid_arguments();
  test_threads();
  test_parity();
  test_recipients();
  test_signatures();
  test_encrypt_options();
  test_reader();
  if (argc < 3 || strcmp(argv[2], "--no-rlimit") != 0) test_no_memory();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
