// The smallest native consumer of an encrypted model, with no ML runtime: modelcrypt::Load decrypts
// the file into memory (no temporary file) and the program reports what it got as one JSON line:
//   {"size": 1234, "format": "modelcrypt", "metadata": {...}}
// A real app passes model.data() / model.size() to its runtime at the marked line, e.g.
// Ort::Session(env, model.data(), model.size(), options); torch_inference.cpp beside this file does it
// with libtorch and runs the model.
//
// usage: model_info ENCRYPTED_MODEL [KEY_FILE]
//   The key (a key file as `modelcrypt keygen` writes it: hex, base64 or raw) is read from KEY_FILE,
//   or else from the MODELCRYPT_KEY environment variable (hex or base64); never from the command
//   line. MODELCRYPT_THREADS caps the decryption threads (default: every core).
// Exit status: 0 success; 1 wrong key or modified file (KEY_MISMATCH / AUTH_FAILED); 2 bad usage;
// 3 any other error (missing file, not a modelcrypt file, ...), with one "error: ..." line on stderr.
#include <cstdlib>
#include <iostream>
#include <string>

#include <modelcrypt/modelcrypt.hpp>

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: " << argv[0] << " ENCRYPTED_MODEL [KEY_FILE]   (or the key in MODELCRYPT_KEY)\n";
    return 2;
  }
  try {
    // Parsed by the library with the rules of the Python package and the CLI; held in wiped memory.
    const modelcrypt::Key key = argc == 3 ? modelcrypt::Key::FromFile(argv[2]) : modelcrypt::Key::FromEnv("MODELCRYPT_KEY");
    const char* threads_env = std::getenv("MODELCRYPT_THREADS");  // 0 or unset: every core
    const unsigned threads = threads_env ? static_cast<unsigned>(std::strtoul(threads_env, nullptr, 10)) : 0;
    const modelcrypt::Buffer model = modelcrypt::Load(argv[1], key, "AES-GCM", "modelcrypt", threads);
    // <- hand model.data(), model.size() to the runtime here; the buffer is wiped when `model` goes away.
    std::cout << "{\"size\": " << model.size() << ", \"format\": \"" << model.format()
              << "\", \"metadata\": " << model.metadata() << "}" << std::endl;
    return 0;
  } catch (const modelcrypt::Error& e) {
    std::cerr << "error: " << argv[1] << ": " << e.what() << "\n";
    return e.status() == MC_KEY_MISMATCH || e.status() == MC_AUTH_FAILED ? 1 : 3;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 3;
  }
}
