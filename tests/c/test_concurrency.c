/*
 * C API under concurrency: 8 threads x 20 iterations. Each iteration a thread
 *  - encrypts its own plaintext in memory (mc_encrypt_memory), writes it to its own file, loads that
 *    file (mc_load) and decrypts the image (mc_decrypt_memory), comparing every plaintext byte;
 *  - encrypts its own plaintext file to its own output (mc_encrypt_file) and loads it back;
 *  - loads and decrypts the SAME shared file and image as every other thread;
 *  - checks that mc_last_error() is per thread: between two barriers, odd threads provoke errors that
 *    name themselves (a missing file and a bad key length carrying the thread and iteration) while
 *    even threads succeed; after the second barrier each odd thread still sees its own message and
 *    each even thread still sees "".
 * usage: test_concurrency [WORKDIR]   (default: a fresh directory under $TMPDIR or /tmp, removed)
 * Prints failures and "N passed, M failed"; exits 1 on any failure.
 */
#define _POSIX_C_SOURCE 200809L
#include <modelcrypt/modelcrypt.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define THREADS 8
#define ITERATIONS 20
#define SHARED_SIZE 300000

static char dir[4096];
static int own_dir;
static uint8_t KEY[32];
static uint8_t* shared_plain;
static uint8_t* shared_image;
static size_t shared_image_size;
static pthread_barrier_t barrier;

struct worker {
  int id;
  int passed;
  int failed;
};

#define CHECK(w, cond)                                                                             \
  do {                                                                                             \
    if (cond) {                                                                                    \
      ++(w)->passed;                                                                               \
    } else {                                                                                       \
      ++(w)->failed;                                                                               \
      printf("FAILED thread %d line %d: %s (last error: %s)\n", (w)->id, __LINE__, #cond, mc_last_error()); \
    }                                                                                              \
  } while (0)

static void path_in(char* out, size_t size, const char* name) { snprintf(out, size, "%s/%s", dir, name); }

static int write_file(const char* path, const void* data, size_t size) {
  FILE* f = fopen(path, "wb");
  if (!f) return 0;
  int ok = fwrite(data, 1, size, f) == size;
  return fclose(f) == 0 && ok;
}

static void fill(uint8_t* p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; ++i) p[i] = (uint8_t)((i * 2654435761u + seed * 40503u) >> 7);
}

static int same(const mc_buffer* b, const uint8_t* expected, size_t size) {
  return b != NULL && mc_buffer_size(b) == size && memcmp(mc_buffer_data(b), expected, size) == 0;
}

/* Own data, own files. */
static void own_round_trip(struct worker* w, int iter, const uint8_t* plain, size_t size, const char* src) {
  char enc_path[4300], file_path[4300], name[64];
  snprintf(name, sizeof name, "own-%d.mcx", w->id);
  path_in(enc_path, sizeof enc_path, name);
  snprintf(name, sizeof name, "own-%d.bin.mcx", w->id);
  path_in(file_path, sizeof file_path, name);

  mc_buffer* enc = NULL;
  mc_buffer* out = NULL;
  CHECK(w, mc_encrypt_memory(plain, size, KEY, 32, NULL, &enc) == MC_OK);
  CHECK(w, write_file(enc_path, mc_buffer_data(enc), mc_buffer_size(enc)));
  CHECK(w, mc_load(enc_path, KEY, 32, "AES-GCM", &out) == MC_OK && same(out, plain, size));
  mc_buffer_free(out);
  out = NULL;
  CHECK(w, mc_decrypt_memory(mc_buffer_data(enc), mc_buffer_size(enc), KEY, 32, NULL, &out) == MC_OK &&
               same(out, plain, size));
  mc_buffer_free(out);
  mc_buffer_free(enc);
  if (iter % 4 == 0) { /* the streaming writer, less often: it fsyncs */
    out = NULL;
    CHECK(w, mc_encrypt_file(src, file_path, KEY, 32, NULL) == MC_OK);
    CHECK(w, mc_load(file_path, KEY, 32, NULL, &out) == MC_OK && same(out, plain, size));
    mc_buffer_free(out);
  }
}

/* Everyone on the same file and the same image. */
static void shared_reads(struct worker* w) {
  char path[4300];
  path_in(path, sizeof path, "shared.mcx");
  mc_buffer* out = NULL;
  CHECK(w, mc_load(path, KEY, 32, NULL, &out) == MC_OK && same(out, shared_plain, SHARED_SIZE));
  mc_buffer_free(out);
  out = NULL;
  CHECK(w, mc_decrypt_memory(shared_image, shared_image_size, KEY, 32, NULL, &out) == MC_OK &&
               same(out, shared_plain, SHARED_SIZE));
  mc_buffer_free(out);
}

/* Odd threads fail in ways that name them; even threads succeed. Checked again after everyone acted. */
static void error_isolation(struct worker* w, int iter) {
  char missing[4300], name[64], expect[64];
  mc_buffer* out = (mc_buffer*)&out;
  const int odd = w->id % 2;
  pthread_barrier_wait(&barrier);
  if (odd && iter % 2 == 0) {
    snprintf(name, sizeof name, "missing-%d-%d.mcx", w->id, iter);
    path_in(missing, sizeof missing, name);
    snprintf(expect, sizeof expect, "%s", name);
    CHECK(w, mc_load(missing, KEY, 32, NULL, &out) == MC_IO && out == NULL);
  } else if (odd) {
    snprintf(expect, sizeof expect, "got %d bytes", w->id); /* key lengths 1, 3, 5, 7: all invalid */
    CHECK(w, mc_decrypt_memory(shared_image, shared_image_size, KEY, (size_t)w->id, NULL, &out) == MC_INVALID_ARGUMENT &&
                 out == NULL);
  } else {
    expect[0] = '\0';
    CHECK(w, mc_decrypt_memory(shared_image, shared_image_size, KEY, 32, NULL, &out) == MC_OK);
    mc_buffer_free(out);
  }
  const char* first = mc_last_error();
  CHECK(w, odd ? strstr(first, expect) != NULL : first[0] == '\0');
  pthread_barrier_wait(&barrier); /* every other thread has now failed or succeeded too */
  const char* later = mc_last_error();
  CHECK(w, later == first);
  CHECK(w, odd ? strstr(later, expect) != NULL : later[0] == '\0');
}

static void* run(void* arg) {
  struct worker* w = arg;
  const size_t size = 50000 + (size_t)w->id * 12345;
  uint8_t* plain = malloc(size);
  char src[4300], name[64];
  fill(plain, size, (unsigned)w->id + 1);
  snprintf(name, sizeof name, "own-%d.bin", w->id);
  path_in(src, sizeof src, name);
  CHECK(w, write_file(src, plain, size));
  for (int iter = 0; iter < ITERATIONS; ++iter) {
    own_round_trip(w, iter, plain, size, src);
    shared_reads(w);
    error_isolation(w, iter);
  }
  free(plain);
  return NULL;
}

static void cleanup(void) {
  if (!own_dir) return;
  char path[4300], name[64];
  const char* fixed[] = {"shared.bin", "shared.mcx"};
  for (int i = 0; i < 2; ++i) {
    path_in(path, sizeof path, fixed[i]);
    unlink(path);
  }
  for (int t = 0; t < THREADS; ++t) {
    const char* fmt[] = {"own-%d.bin", "own-%d.mcx", "own-%d.bin.mcx"};
    for (int i = 0; i < 3; ++i) {
      snprintf(name, sizeof name, fmt[i], t);
      path_in(path, sizeof path, name);
      unlink(path);
    }
  }
  rmdir(dir);
}

int main(int argc, char** argv) {
  if (argc >= 2) {
    snprintf(dir, sizeof dir, "%s", argv[1]);
  } else {
#ifdef _WIN32
    fprintf(stderr, "usage: %s WORKDIR (required on Windows, which has no mkdtemp)\n", argv[0]);
    return 2;
#else
    const char* tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/modelcrypt-conc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
      perror("mkdtemp");
      return 2;
    }
    own_dir = 1;
#endif
  }
  for (int i = 0; i < 32; ++i) KEY[i] = (uint8_t)(i * 7 + 11);
  struct worker main_w = {-1, 0, 0};

  /* The shared file, written once by mc_encrypt_file, and its image in memory. */
  char src[4300], path[4300];
  path_in(src, sizeof src, "shared.bin");
  path_in(path, sizeof path, "shared.mcx");
  shared_plain = malloc(SHARED_SIZE);
  fill(shared_plain, SHARED_SIZE, 99);
  CHECK(&main_w, write_file(src, shared_plain, SHARED_SIZE));
  CHECK(&main_w, mc_encrypt_file(src, path, KEY, 32, NULL) == MC_OK);
  FILE* f = fopen(path, "rb");
  CHECK(&main_w, f != NULL);
  if (f) {
    fseek(f, 0, SEEK_END);
    shared_image_size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    shared_image = malloc(shared_image_size);
    CHECK(&main_w, fread(shared_image, 1, shared_image_size, f) == shared_image_size);
    fclose(f);
  }
  if (main_w.failed) {
    cleanup();
    printf("%d passed, %d failed\n", main_w.passed, main_w.failed);
    return 1;
  }

  pthread_barrier_init(&barrier, NULL, THREADS);
  pthread_t threads[THREADS];
  struct worker workers[THREADS];
  for (int i = 0; i < THREADS; ++i) {
    workers[i] = (struct worker){i, 0, 0};
    if (pthread_create(&threads[i], NULL, run, &workers[i]) != 0) {
      perror("pthread_create");
      return 2;
    }
  }
  int passed = main_w.passed, failed = main_w.failed;
  for (int i = 0; i < THREADS; ++i) {
    pthread_join(threads[i], NULL);
    passed += workers[i].passed;
    failed += workers[i].failed;
  }
  pthread_barrier_destroy(&barrier);
  /* The main thread never failed: its own last error is still empty. */
  if (mc_last_error()[0] != '\0') {
    ++failed;
    printf("FAILED: main thread sees another thread's error: %s\n", mc_last_error());
  }
  free(shared_plain);
  free(shared_image);
  cleanup();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
