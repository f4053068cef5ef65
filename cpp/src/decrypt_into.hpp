// Decrypting into memory the caller already owns (issue 18): a whole payload, a range of it, or
// several ranges at once (the tensors of a checkpoint, each into its own array), with no buffer of
// the plaintext's size in between. The ciphertext is read in bounded batches into memory of ours;
// each chunk is decrypted into a chunk-sized scratch buffer of its thread, authenticated there, and
// only then its wanted bytes are copied into the caller's memory. So the caller's memory only ever
// holds authenticated plaintext, and peak extra memory is two batches plus one chunk per thread.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "byte_source.hpp"
#include "container.hpp"
#include "format.hpp"
#include "signature.hpp"

namespace modelcrypt_core {

// One destination: plaintext bytes [offset, offset + length) go to dst[0, length).
struct PlaintextSpan {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint8_t* dst = nullptr;
};

// The whole plaintext of the modelcrypt file at `path` decrypted into dst[0, plaintext length).
// `mode` must be "AES-GCM". The header is authenticated first (wrong key: Error(key_mismatch));
// a capacity below the plaintext length is Error(invalid_argument) naming both sizes, before any
// chunk is read. On any later error every byte of dst[0, plaintext length) is zeroed before the
// error propagates. Returns the plaintext length (the bytes written).
uint64_t load_file_into(const std::string& path, const Credential& key, const std::string& mode, uint8_t* dst,
                        uint64_t capacity, unsigned threads = 0);
// The same for plaintext bytes [offset, offset + length) into dst[0, length) (capacity >= length).
void load_range_into(const std::string& path, const Credential& key, const std::string& mode, uint64_t offset,
                     uint64_t length, uint8_t* dst, uint64_t capacity, unsigned threads = 0);

namespace detail {

// Error(invalid_argument) unless every span lies inside the plaintext of `h` and no two overlap;
// returns them sorted by offset, empty ones dropped.
std::vector<PlaintextSpan> checked_spans(const format::Header& h, std::vector<PlaintextSpan> spans);
// Zeroes every span's destination.
void wipe_spans(const std::vector<PlaintextSpan>& spans) noexcept;
// Decrypts the chunks covering `spans` (as returned by checked_spans) of `in` into the spans'
// destinations, batch by batch (reading the next batch while this one is decrypted). Every chunk
// read is authenticated (and checked against `trailer` when given) before any byte of it is
// copied out. On any error the destinations are wiped (wipe_spans) before the error propagates.
void decrypt_spans_into(const ByteSource& in, const format::Header& h, const format::FileKeys& keys,
                        const std::vector<PlaintextSpan>& spans, unsigned threads,
                        const signature::VerifiedTrailer* trailer);

}  // namespace detail
}  // namespace modelcrypt_core
