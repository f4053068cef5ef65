/*
 * modelcrypt — C API (C99). The only public C header of libmodelcrypt.
 *
 * Encrypts model files in the modelcrypt container format v1 (docs/FORMAT.md: AES-256-GCM chunks
 * under per-file HKDF-SHA256 subkeys, authenticated header, key commitment) and decrypts them
 * straight into memory owned by the library, never through a temporary file.
 *
 * Conventions
 *  - Every function returning mc_status reports failure through it; on failure `*out` is set to NULL
 *    and mc_last_error() gives a detail message for the calling thread.
 *  - No C++ exception ever crosses this interface.
 *  - Thread safety: every entry point may be called from many threads at once, on the same or on
 *    different files. An mc_buffer is owned by one caller; reading it from several threads is fine,
 *    freeing it while another thread reads it is not.
 *  - Keys are 16, 24 or 32 random bytes. `mode` is "AES-GCM" (case-insensitive); NULL means "AES-GCM".
 *  - Legacy formats only when asked for (docs/LEGACY.md): mc_load, mc_decrypt_memory and
 *    mc_decrypt_file read modelcrypt format v1 files only (and legacy files whose mode exists only in
 *    a legacy format: MindSpore "AES-CBC"/"SM4-CBC", Paddle cipher "paddle:<cipher_name>[:iv=<bits>]
 *    [:tag=<bits>]"). The *_with_format variants take the caller's explicit choice `format`:
 *    "modelcrypt" (NULL means the same), "mindspore", "paddlex", "paddle-cipher" or "auto" (any
 *    detected format). A legacy file the caller did not ask for is MC_FORMAT. mc_buffer_format()
 *    tells which format was decrypted; mc_buffer_insecure_reason() why that format is weak.
 *  - Decrypted bytes live in page-aligned memory kept out of core dumps, and are overwritten with
 *    zeros (OPENSSL_cleanse) by mc_buffer_free.
 */
#ifndef MODELCRYPT_H
#define MODELCRYPT_H

#include <stddef.h>
#include <stdint.h>

/* MC_API marks the exported functions. Windows: dllexport while the DLL itself is built
 * (MODELCRYPT_BUILDING_DLL), nothing where the C API is compiled into a program (MODELCRYPT_STATIC),
 * dllimport for everyone else. ELF and Mach-O: default visibility (the linker's symbol list decides). */
#if defined(_WIN32)
#  if defined(MODELCRYPT_BUILDING_DLL)
#    define MC_API __declspec(dllexport)
#  elif defined(MODELCRYPT_STATIC)
#    define MC_API
#  else
#    define MC_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__)
#  define MC_API __attribute__((visibility("default")))
#else
#  define MC_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mc_status {
  MC_OK = 0,
  MC_KEY_MISMATCH = 1,    /* the key is not the one the file was encrypted with */
  MC_AUTH_FAILED = 2,     /* data modified, truncated, reordered or extended; nothing was released */
  MC_FORMAT = 3,          /* not a modelcrypt file, or a malformed header */
  MC_UNSUPPORTED = 4,     /* a format version or algorithm this build does not support */
  MC_IO = 5,              /* operating-system I/O error (missing file, permission, disk full) */
  MC_INVALID_ARGUMENT = 6,/* NULL where not allowed, bad key length, unknown mode, dst == src */
  MC_NO_MEMORY = 7,
  MC_INTERNAL = 8,
  MC_SIGNATURE = 9        /* a publisher signature was required and the file is unsigned, signed by an
                             untrusted key, or changed since it was signed; nothing was released */
} mc_status;

/* Decrypted (or encrypted) bytes owned by the library. Opaque. */
typedef struct mc_buffer mc_buffer;

/* Static name of a status, e.g. "KEY_MISMATCH"; "UNKNOWN" for values outside the enum. */
MC_API const char* mc_status_string(mc_status status);

/* Detail text of the last failure on the calling thread ("" if none). Valid until the next call
 * into the library from this thread. */
MC_API const char* mc_last_error(void);

/* Library version, e.g. "0.1.0". */
MC_API const char* mc_version(void);

/* Version text of the OpenSSL linked into the library, e.g. "OpenSSL 3.0.17 1 Jul 2025" (its
 * OpenSSL_version(OPENSSL_VERSION)). Static string; never NULL. */
MC_API const char* mc_openssl_version(void);

/* File -> memory. Reads the ciphertext straight into the buffer it returns and decrypts it there;
 * no plaintext is released unless every chunk authenticates. */
MC_API mc_status mc_load(const char* path, const uint8_t* key, size_t key_len, const char* mode, mc_buffer** out);

/* Memory -> memory decryption of a complete encrypted file image. */
MC_API mc_status mc_decrypt_memory(const void* data, size_t size, const uint8_t* key, size_t key_len,
                                   const char* mode, mc_buffer** out);

/* File -> file encryption (streaming, bounded memory). dst appears atomically when complete; on
 * failure an existing dst is left untouched. */
MC_API mc_status mc_encrypt_file(const char* src, const char* dst, const uint8_t* key, size_t key_len,
                                 const char* mode);

/* File -> file decryption (the converter: writes plaintext on purpose, mode 0600, atomically). */
MC_API mc_status mc_decrypt_file(const char* src, const char* dst, const uint8_t* key, size_t key_len,
                                 const char* mode);

/* The same three readers with the caller's choice of accepted formats (see Conventions). */
MC_API mc_status mc_load_with_format(const char* path, const uint8_t* key, size_t key_len, const char* mode,
                                     const char* format, mc_buffer** out);
MC_API mc_status mc_decrypt_memory_with_format(const void* data, size_t size, const uint8_t* key, size_t key_len,
                                               const char* mode, const char* format, mc_buffer** out);
MC_API mc_status mc_decrypt_file_with_format(const char* src, const char* dst, const uint8_t* key, size_t key_len,
                                             const char* mode, const char* format);

/* Memory -> memory encryption. `data` may be NULL when size is 0. */
MC_API mc_status mc_encrypt_memory(const void* data, size_t size, const uint8_t* key, size_t key_len,
                                   const char* mode, mc_buffer** out);

/* Contents of a buffer. NULL buffer: data NULL, size 0. */
MC_API const void* mc_buffer_data(const mc_buffer* buffer);
MC_API size_t mc_buffer_size(const mc_buffer* buffer);

/* The format a decrypted buffer was read from: "modelcrypt", "mindspore", "paddlex" or
 * "paddle-cipher" ("" for a buffer of mc_encrypt_memory and for NULL). Static storage. */
MC_API const char* mc_buffer_format(const mc_buffer* buffer);

/* Why the format it was read from is weak (e.g. MindSpore frames can be dropped undetected), ""
 * when it is not (modelcrypt files) and for NULL. Valid while the buffer lives. Callers should log it. */
MC_API const char* mc_buffer_insecure_reason(const mc_buffer* buffer);

/* The authenticated metadata of a decrypted buffer (mc_load*, mc_decrypt_memory*, mc_load_range):
 * UTF-8 JSON text of an object of strings, "{}" when the file has none (and for legacy formats,
 * encrypted images and NULL). NUL-terminated; valid while the buffer lives. */
MC_API const char* mc_buffer_metadata(const mc_buffer* buffer);

/* ---- Parity with the Python API: threads, verification, random access, inspection, key parsing ---- */

/* mc_load_with_format / mc_decrypt_file_with_format with a thread count (0: all cores). */
MC_API mc_status mc_load_ex(const char* path, const uint8_t* key, size_t key_len, const char* mode,
                            const char* format, unsigned threads, mc_buffer** out);
MC_API mc_status mc_decrypt_file_ex(const char* src, const char* dst, const uint8_t* key, size_t key_len,
                                    const char* mode, const char* format, unsigned threads);

/* Authenticates a whole file in bounded memory (three 16 MiB batches); writes and releases nothing.
 * MC_OK only when every byte authenticates. `format` as for the readers (NULL: "modelcrypt"). */
MC_API mc_status mc_verify_file(const char* path, const uint8_t* key, size_t key_len, const char* mode,
                                const char* format, unsigned threads);

/* Random access: plaintext bytes [offset, offset + length) of a format v1 file. The header is
 * authenticated as by mc_load, then only the chunks covering the range are read and decrypted.
 * A range beyond the plaintext (or overflowing) is MC_INVALID_ARGUMENT. mc_buffer_metadata works. */
MC_API mc_status mc_load_range(const char* path, const uint8_t* key, size_t key_len, const char* mode,
                               uint64_t offset, uint64_t length, unsigned threads, mc_buffer** out);

/* Header fields without the key (nothing in them is authenticated), as UTF-8 JSON text in `*out`
 * (not NUL-terminated: use mc_buffer_size): for a format v1 file {"format": "modelcrypt", "version",
 * "algorithm", "chunk_size", "plaintext_length", "chunk_count", "header_length", "file_length",
 * "expected_file_length", "salt" (hex), "key_commitment" (hex), "metadata" (object)}; for a
 * MindSpore or PaddleX file {"format", "cipher", "frames", "plaintext_length" (null when unknown),
 * "file_length"}. Anything else: MC_FORMAT. */
MC_API mc_status mc_inspect(const char* path, mc_buffer** out);

/* Keys from text, files and the environment, by the rules of the Python package and the CLI
 * (docs/KEYS_AND_CLI.md): hex (optional 0x, 32/48/64 digits) or base64 with padding (as PaddleX
 * prints keys), surrounding whitespace ignored. A key file may also hold the raw 16/24/32 bytes
 * (and a file of exactly 16 or 24 hex digits is a raw MindSpore-style ASCII key). The key is
 * returned in `*out` (wiped by mc_buffer_free); key text never appears in mc_last_error().
 * Bad text: MC_INVALID_ARGUMENT; an unreadable file: MC_IO; an unset or empty variable:
 * MC_INVALID_ARGUMENT. */
MC_API mc_status mc_key_from_text(const char* text, size_t text_len, mc_buffer** out);
MC_API mc_status mc_key_from_file(const char* path, mc_buffer** out);
MC_API mc_status mc_key_from_env(const char* name, mc_buffer** out);

/* ---- Keys as objects: a symmetric key or an X25519 identity (format v2 recipients) ---- */

/* Opaque: a symmetric key (16, 24 or 32 bytes) or an X25519 identity (a device's private key),
 * held in wiping memory. Accepted by every *_with_key function; free with mc_key_free. */
typedef struct mc_key mc_key;

MC_API mc_status mc_key_new(const uint8_t* key, size_t key_len, mc_key** out);  /* symmetric */
MC_API mc_status mc_key_generate_identity(mc_key** out);                           /* new X25519 identity */
/* Text, a file or an environment variable holding either a key (as mc_key_from_text/_file/_env) or
 * an identity (MODELCRYPT-SECRET-KEY-1... or AGE-SECRET-KEY-1..., '#' comment lines ignored, as
 * modelcrypt keygen --x25519 and age-keygen write them). Errors never contain the secret. */
MC_API mc_status mc_key_parse(const char* text, size_t text_len, mc_key** out);
MC_API mc_status mc_key_read_file(const char* path, mc_key** out);
MC_API mc_status mc_key_read_env(const char* name, mc_key** out);
/* 1 for an X25519 identity, 0 for a symmetric key (and NULL). */
MC_API int mc_key_is_identity(const mc_key* key);
/* An identity's public recipient text ("modelcrypt1..."), not NUL-terminated (mc_buffer_size). */
MC_API mc_status mc_key_recipient(const mc_key* key, mc_buffer** out);
/* Wipes and frees a key. NULL is accepted and ignored. */
MC_API void mc_key_free(mc_key* key);

/* The readers with a key object (an identity opens format v2 files encrypted to its recipient;
 * no stanza for it: MC_KEY_MISMATCH, before any bulk work). */
MC_API mc_status mc_load_with_key(const char* path, const mc_key* key, const char* mode, const char* format,
                                  unsigned threads, mc_buffer** out);
MC_API mc_status mc_decrypt_memory_with_key(const void* data, size_t size, const mc_key* key, const char* mode,
                                            const char* format, mc_buffer** out);
MC_API mc_status mc_verify_file_with_key(const char* path, const mc_key* key, const char* mode, const char* format,
                                         unsigned threads);
MC_API mc_status mc_load_range_with_key(const char* path, const mc_key* key, const char* mode, uint64_t offset,
                                        uint64_t length, unsigned threads, mc_buffer** out);
/* Decrypting into memory the caller owns (e.g. the tensors of a model already instantiated), so
 * that no second copy of the plaintext exists: modelcrypt files only (`mode` NULL or "AES-GCM").
 * The header is read and authenticated first (wrong key: MC_KEY_MISMATCH); a `capacity` below the
 * bytes to write is MC_INVALID_ARGUMENT (the message names both sizes) before any chunk is read.
 * The ciphertext is read in bounded batches (a few MiB) into library memory; each chunk is
 * decrypted in a chunk-sized scratch buffer and authenticated there before its bytes are copied to
 * `dst`, so `dst` only ever receives authenticated plaintext. On any failure every byte of the
 * destination range already written is overwritten with zeros before the status is returned.
 * `dst` must not be read or written by anyone else during the call.
 * mc_load_into writes the whole plaintext to dst[0, n) and stores n in `*written` (may be NULL;
 * 0 on failure). mc_load_range_into writes plaintext bytes [offset, offset + length) to
 * dst[0, length); a range beyond the plaintext is MC_INVALID_ARGUMENT. */
MC_API mc_status mc_load_into(const char* path, const mc_key* key, const char* mode, unsigned threads, void* dst,
                              size_t capacity, size_t* written);
MC_API mc_status mc_load_range_into(const char* path, const mc_key* key, const char* mode, uint64_t offset,
                                    uint64_t length, unsigned threads, void* dst, size_t capacity);
/* Loading from the caller's own I/O (Android assets, a flash partition, a download library, object
 * storage): the library reads the encrypted bytes through `read_at` instead of a path. Zero-initialize,
 * then set struct_size = sizeof(mc_reader) (later versions may add fields at the end). */
typedef struct mc_reader {
  size_t struct_size;  /* sizeof(mc_reader) */
  void* ctx;           /* passed to read_at as is */
  uint64_t size;       /* the encrypted file's length in bytes */
  /* Reads up to `len` bytes at `offset` into `buf` and stores the count in `*got` (less than `len`
   * only at the end of the data). Returns 0 on success, nonzero on failure (then MC_IO). Every
   * byte the library uses is read once, into memory it owns, and authenticated there. */
  int (*read_at)(void* ctx, uint64_t offset, void* buf, size_t len, size_t* got);
  /* Nonzero: read_at may be called from several threads at once (chunks are then read and decrypted
   * in parallel). Zero: the library serializes the calls (decryption stays parallel). */
  int concurrent_reads;
} mc_reader;

/* mc_load_with_key over `reader` (modelcrypt files only; `mode` NULL or "AES-GCM"): the header
 * read and authenticated once, every chunk read straight into the output buffer and decrypted
 * there. A source shorter than its size, a failing read_at: MC_IO; otherwise as mc_load. */
MC_API mc_status mc_load_from_reader(const mc_reader* reader, const mc_key* key, const char* mode, unsigned threads,
                                     mc_buffer** out);

/* File -> file encryption to `count` X25519 recipients (text: modelcrypt1... or age1...), format v2,
 * and to `key` too when not NULL (a symmetric key gets its own stanza; an identity adds its recipient). */
MC_API mc_status mc_encrypt_file_to_recipients(const char* src, const char* dst, const char* const* recipients,
                                               size_t count, const mc_key* key, const char* mode);
/* Adds and removes recipients of a format v2 file without touching its payload; `key` must open it. */
MC_API mc_status mc_recipients_edit(const char* path, const mc_key* key, const char* const* add, size_t add_count,
                                    const char* const* remove, size_t remove_count);

/* The decrypting converter with a key object (as mc_decrypt_file_ex). */
MC_API mc_status mc_decrypt_file_with_key(const char* src, const char* dst, const mc_key* key, const char* mode,
                                          const char* format, unsigned threads);

/* ---- Publisher signatures (format v3, docs/FORMAT.md "Format version 3") ---- */

/* From now on every reader given `key` requires the file to carry a valid publisher signature by
 * one of the signers added (call once per trusted signer): unsigned files, other signers and
 * changed files give MC_SIGNATURE and no plaintext. `signer` is a public key as text
 * ("modelcrypt-signer1...", as keygen --signing prints) or a PEM Ed25519 public key. */
MC_API mc_status mc_key_require_signer(mc_key* key, const char* signer, size_t signer_len);

/* Opaque: an Ed25519 signing key (a publisher's private key) in wiping memory. */
typedef struct mc_signing_key mc_signing_key;
MC_API mc_status mc_signing_key_generate(mc_signing_key** out);
/* MODELCRYPT-SIGNING-KEY-1... text ('#' comment lines ignored) or a PEM PKCS#8 Ed25519 private key. */
MC_API mc_status mc_signing_key_parse(const char* text, size_t text_len, mc_signing_key** out);
MC_API mc_status mc_signing_key_read_file(const char* path, mc_signing_key** out);
/* Its public key text ("modelcrypt-signer1..."), not NUL-terminated (mc_buffer_size). */
MC_API mc_status mc_signing_key_public(const mc_signing_key* key, mc_buffer** out);
/* Wipes and frees a signing key. NULL is accepted and ignored. */
MC_API void mc_signing_key_free(mc_signing_key* key);

/* File -> file encryption, signed by `signer` (format v3): to `count` X25519 recipients and/or
 * `key` (a symmetric key gets a stanza; an identity adds its recipient); at least one of them. */
MC_API mc_status mc_encrypt_file_signed(const char* src, const char* dst, const mc_key* key,
                                        const char* const* recipients, size_t count, const mc_signing_key* signer,
                                        const char* mode);
/* Writer options for mc_encrypt_file_ex. Zero-initialize, then set struct_size =
 * sizeof(mc_encrypt_options) (so that later versions can add fields at the end). */
typedef struct mc_encrypt_options {
  size_t struct_size;       /* sizeof(mc_encrypt_options) */
  uint32_t chunk_size;      /* plaintext bytes per chunk (4 KiB .. 64 MiB); 0: the default, 1 MiB */
  unsigned threads;         /* 0: every available core */
  const uint8_t* metadata;  /* public, authenticated metadata (<= 64 KiB; a JSON object of strings, as
                             * Python's metadata= writes it), or NULL */
  size_t metadata_len;
  int no_fsync;             /* nonzero: skip the flush to the device before dst appears (faster; a
                             * power loss may then lose the new file, never the old one) */
} mc_encrypt_options;

/* File -> file encryption with every writer choice: to `key` (a symmetric key gets a stanza, or
 * format v1 when there are no recipients; an identity adds its recipient; may be NULL with
 * recipients) and to `count` X25519 recipients, signed by `signer` when not NULL (format v3), with
 * `options` (NULL: the defaults). */
MC_API mc_status mc_encrypt_file_ex(const char* src, const char* dst, const mc_key* key, const char* const* recipients,
                                    size_t count, const mc_signing_key* signer, const char* mode,
                                    const mc_encrypt_options* options);

/* Keyless: the file is byte for byte what one of the `count` trusted signers (texts as for
 * mc_key_require_signer) signed, checked without any key and without decrypting. On success
 * `*signer_out` (may be NULL) receives the signer's public key text. Otherwise MC_SIGNATURE. */
MC_API mc_status mc_verify_signature(const char* path, const char* const* trusted, size_t count, unsigned threads,
                                     mc_buffer** signer_out);

/* Wipes and frees a buffer. NULL is accepted and ignored. */
MC_API void mc_buffer_free(mc_buffer* buffer);

/* Overwrites `size` bytes at `data` with zeros in a way the compiler cannot elide (for callers'
 * own copies of keys). NULL is accepted when size is 0. */
MC_API void mc_wipe(void* data, size_t size);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MODELCRYPT_H */
