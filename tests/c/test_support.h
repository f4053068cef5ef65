/*
 * What the C API tests (test_c_api.c, test_load_into.c) share: CHECK(cond) counts a passed or failed
 * check and prints each failure with its line and mc_last_error() (report with
 * printf("%d passed, %d failed\n", passed, failed)); `dir`, the work directory from argv, with
 * path_in(name) for a file in it; write_file(). Include it once, after <modelcrypt/modelcrypt.h>.
 */
#ifndef MODELCRYPT_TESTS_C_TEST_SUPPORT_H
#define MODELCRYPT_TESTS_C_TEST_SUPPORT_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond)                                                                      \
  do {                                                                                   \
    if (cond) {                                                                          \
      ++passed;                                                                          \
    } else {                                                                             \
      ++failed;                                                                          \
      printf("FAILED line %d: %s (last error: %s)\n", __LINE__, #cond, mc_last_error()); \
    }                                                                                    \
  } while (0)

static char dir[4096];

/* dir/name, in one of 8 rotating buffers (so a call can take several paths at once). */
static char* path_in(const char* name) {
  static char buf[8][4200];
  static int slot;
  slot = (slot + 1) % 8;
  snprintf(buf[slot], sizeof buf[slot], "%s/%s", dir, name);
  return buf[slot];
}

static int write_file(const char* path, const void* data, size_t size) {
  FILE* f = fopen(path, "wb");
  if (!f) return 0;
  int ok = fwrite(data, 1, size, f) == size;
  return fclose(f) == 0 && ok;
}

#endif
