// Example native "inference app": loads an encrypted model into memory with modelcrypt::Load and
// hands the bytes to a consumer. Here the consumer reports the size and SHA-256 of the model and, for
// safetensors files, the tensors it holds; a real app would pass data()/size() to its runtime
// (e.g. Ort::Session(env, model.data(), model.size(), options)). No plaintext touches the disk.
//
// usage: inference_app ENCRYPTED_MODEL [KEY_FILE]
//   The key (hex or base64 text) is read from KEY_FILE, or else from the MODELCRYPT_KEY environment
//   variable; it is never taken from the command line.
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

#include <modelcrypt/modelcrypt.hpp>

#include "sha256.hpp"

namespace {

modelcrypt::Key key_from_text(std::string text) {
  const bool hex = !text.empty() && text.find_first_not_of("0123456789abcdefABCDEF \t\r\n") == std::string::npos;
  modelcrypt::Key key = hex ? modelcrypt::Key::FromHex(text) : modelcrypt::Key::FromBase64(text);
  mc_wipe(&text[0], text.size());
  return key;
}

modelcrypt::Key read_key(int argc, char** argv) {
  if (argc >= 3) {
    std::ifstream f(argv[2], std::ios::binary);
    if (!f) throw std::runtime_error(std::string("cannot read key file ") + argv[2]);
    return key_from_text(std::string(std::istreambuf_iterator<char>(f), {}));
  }
  const char* env = std::getenv("MODELCRYPT_KEY");
  if (env == nullptr) throw std::runtime_error("no key: pass a key file or set MODELCRYPT_KEY");
  return key_from_text(env);
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
    const modelcrypt::Buffer model = modelcrypt::Load(argv[1], key, "AES-GCM");
    std::cout << "modelcrypt " << modelcrypt::Version() << "\n"
              << "size: " << model.size() << "\n"
              << "sha256: " << sha256_hex(model.data(), model.size()) << "\n"
              << "format: " << describe(model) << "\n";
    return 0;
  } catch (const modelcrypt::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return e.status() == MC_KEY_MISMATCH || e.status() == MC_AUTH_FAILED ? 1 : 3;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 3;
  }
}
