// Example native "inference app": loads an encrypted model into memory with modelcrypt::Load and
// hands the bytes to a consumer. Here the consumer reports the size, SHA-256 (OpenSSL) and
// authenticated metadata of the model and, for
// safetensors files, the tensors it holds; a real app would pass data()/size() to its runtime
// (e.g. Ort::Session(env, model.data(), model.size(), options)). No plaintext touches the disk.
//
// usage: inference_app ENCRYPTED_MODEL [KEY_FILE]
//   The key (a key file as `modelcrypt keygen` writes it: hex, base64 or raw) is read from KEY_FILE,
//   or else from the MODELCRYPT_KEY environment variable (hex or base64); never from the command
//   line. MODELCRYPT_THREADS caps the decryption threads (default: every core).
#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>

#include <modelcrypt/modelcrypt.hpp>

namespace {

// The key from KEY_FILE or MODELCRYPT_KEY, parsed by the library with the rules of the Python
// package and the CLI (hex with optional 0x, base64, raw bytes in a file), held in wiped memory.
modelcrypt::Key read_key(int argc, char** argv) {
  if (argc >= 3) return modelcrypt::Key::FromFile(argv[2]);
  return modelcrypt::Key::FromEnv("MODELCRYPT_KEY");
}

// SHA-256 with OpenSSL (no hand-written cryptography).
std::string sha256_hex(const std::uint8_t* data, std::size_t size) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(data, size, digest, &n, EVP_sha256(), nullptr) != 1) throw std::runtime_error("SHA-256 failed");
  std::string out;
  char byte[3];
  for (unsigned int i = 0; i < n; ++i) {
    std::snprintf(byte, sizeof byte, "%02x", digest[i]);
    out += byte;
  }
  return out;
}

// Names the format of the model bytes; for safetensors also counts the tensors in its JSON header.
std::string describe(const modelcrypt::Buffer& model) {
  if (model.size() >= 8) {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | model.data()[i];
    if (n > 1 && n <= model.size() - 8 && model.data()[8] == '{') {
      const std::string header(reinterpret_cast<const char*>(model.data()) + 8, n);
      std::size_t tensors = 0;
      for (std::size_t p = header.find("\"dtype\""); p != std::string::npos; p = header.find("\"dtype\"", p + 1)) ++tensors;
      return "safetensors, " + std::to_string(tensors) + " tensors";
    }
  }
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: " << argv[0] << " ENCRYPTED_MODEL [KEY_FILE]   (or key in MODELCRYPT_KEY)\n";
    return 2;
  }
  try {
    const modelcrypt::Key key = read_key(argc, argv);
    const char* threads_env = std::getenv("MODELCRYPT_THREADS");  // 0 or unset: every core
    const unsigned threads = threads_env ? static_cast<unsigned>(std::strtoul(threads_env, nullptr, 10)) : 0;
    const modelcrypt::Buffer model = modelcrypt::Load(argv[1], key, "AES-GCM", "modelcrypt", threads);
    std::cout << "modelcrypt " << modelcrypt::Version() << "\n"
              << "size: " << model.size() << "\n"
              << "sha256: " << sha256_hex(model.data(), model.size()) << "\n"
              << "format: " << describe(model) << "\n"
              << "metadata: " << model.metadata() << "\n";
    return 0;
  } catch (const modelcrypt::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return e.status() == MC_KEY_MISMATCH || e.status() == MC_AUTH_FAILED ? 1 : 3;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 3;
  }
}
