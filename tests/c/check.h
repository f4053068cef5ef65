/*
 * The check counter of the C API tests (test_c_api.c, test_load_into.c): CHECK(cond) counts a passed
 * or failed check and prints each failure with its line and mc_last_error(). Include it once, after
 * <modelcrypt/modelcrypt.h>; report with printf("%d passed, %d failed\n", passed, failed).
 */
#ifndef MODELCRYPT_TESTS_C_CHECK_H
#define MODELCRYPT_TESTS_C_CHECK_H

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

#endif
