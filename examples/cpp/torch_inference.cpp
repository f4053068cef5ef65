// Native inference from an encrypted TorchScript model: modelcrypt decrypts the file into memory,
// libtorch loads the module straight from that buffer (torch::jit::load over a ReadAdapterInterface:
// no temporary file, no std::istringstream copy of the model) and runs forward() on one input.
//
// usage: torch_inference [--key-file FILE] --shape D0,D1,... [--input FILE | --seed N] ENCRYPTED_MODEL
//   ENCRYPTED_MODEL  a TorchScript archive (torch.jit.script/trace(...).save) encrypted with modelcrypt
//   --key-file FILE  the key as `modelcrypt keygen` writes it (hex, base64 or raw bytes); without it the
//                    key is read from the MODELCRYPT_KEY environment variable (hex or base64). Never
//                    from the command line.
//   --shape          the input tensor's shape, e.g. 1,3,16,16 (float32)
//   --input FILE     the input: raw little-endian float32 values in row-major (C) order, exactly
//                    prod(shape) * 4 bytes (numpy: x.astype("<f4").tofile(FILE))
//   --seed N         instead of --input, a deterministic input (default seed 0):
//                    x[i] = float(((i * 7919 + N * 104729) mod 2001) - 1000) / 1000.0f
//                    (numpy: ((np.arange(n) * 7919 + N * 104729) % 2001 - 1000).astype("f4") / np.float32(1000))
//   MODELCRYPT_THREADS caps the decryption threads (default: every core).
//
// Output: one JSON line on stdout,
//   {"outputs": [{"dtype": "Float", "shape": [1, 10], "values": [0.123456791, ...]}]}
// with one entry per output tensor (a model returning a tuple or list of tensors has several);
// float32 values are printed with 9 significant digits (they round-trip exactly), float64 with 17.
//
// Exit status: 0 success; 1 wrong key or modified file (modelcrypt KEY_MISMATCH / AUTH_FAILED);
// 2 bad usage, key text or input; 3 any other modelcrypt error (missing file, not a modelcrypt file, ...);
// 4 libtorch refused the model or the input (not TorchScript, wrong input shape). Errors go to
// stderr as one "error: ..." line; nothing is printed on stdout unless inference succeeded.
#include <caffe2/serialize/read_adapter_interface.h>
#include <torch/script.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <modelcrypt/modelcrypt.hpp>

namespace {

// A bad command line or input file (exit status 2).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// libtorch's reader interface over the decrypted model: torch::jit::load reads the zip archive
// directly out of modelcrypt's buffer. The adapter owns the buffer, so the plaintext lives exactly as
// long as libtorch holds the reader and is wiped (modelcrypt::Buffer's destructor) once it is released.
class DecryptedModelReader final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit DecryptedModelReader(modelcrypt::Buffer model) : model_(std::move(model)) {}

  size_t size() const override { return model_.size(); }

  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
    if (pos >= model_.size()) return 0;  // offsets come from the archive: clamp, never read past the end
    n = static_cast<size_t>(std::min<uint64_t>(n, model_.size() - pos));
    std::memcpy(buf, model_.data() + pos, n);
    return n;
  }

 private:
  modelcrypt::Buffer model_;
};

struct Options {
  std::string model;
  std::string key_file;  // empty: MODELCRYPT_KEY
  std::vector<int64_t> shape;
  std::string input;  // empty: generated from seed
  int64_t seed = 0;
};

int64_t parse_int(const std::string& text, const char* what) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0) throw UsageError(std::string(what) + " is not an integer: " + text);
  return v;
}

std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> shape;
  std::stringstream in(text);
  for (std::string dim; std::getline(in, dim, ',');) {
    const int64_t d = parse_int(dim, "--shape dimension");
    if (d <= 0 || d > (int64_t{1} << 31)) throw UsageError("--shape dimensions must be between 1 and 2^31: " + text);
    shape.push_back(d);
  }
  if (shape.empty()) throw UsageError("--shape is empty");
  return shape;
}

Options parse_args(int argc, char** argv) {
  Options o;
  bool have_seed = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--key-file") o.key_file = value();
    else if (arg == "--shape") o.shape = parse_shape(value());
    else if (arg == "--input") o.input = value();
    else if (arg == "--seed") o.seed = parse_int(value(), "--seed"), have_seed = true;
    else if (arg == "--key") throw UsageError("keys are never taken on the command line: use --key-file or MODELCRYPT_KEY");
    else if (!arg.empty() && arg[0] == '-') throw UsageError("unknown option " + arg);
    else if (o.model.empty()) o.model = arg;
    else throw UsageError("more than one model given");
  }
  if (o.model.empty()) throw UsageError("no encrypted model given");
  if (o.shape.empty()) throw UsageError("--shape is required");
  if (have_seed && !o.input.empty()) throw UsageError("give --input or --seed, not both");
  return o;
}

// The input tensor: the raw float32 file, or the documented deterministic sequence.
torch::Tensor make_input(const Options& o) {
  int64_t n = 1;
  for (const int64_t d : o.shape) {
    if (n > (int64_t{1} << 32) / d) throw UsageError("--shape has more than 2^32 elements");
    n *= d;
  }
  torch::Tensor x = torch::empty(o.shape, torch::kFloat32);
  float* out = x.data_ptr<float>();
  if (o.input.empty()) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t v = (i * 7919 + o.seed * 104729) % 2001;
      out[i] = static_cast<float>((v < 0 ? v + 2001 : v) - 1000) / 1000.0f;
    }
    return x;
  }
  std::ifstream in(o.input, std::ios::binary | std::ios::ate);
  if (!in) throw UsageError("cannot open input " + o.input + ": " + std::strerror(errno));
  const std::streamoff bytes = in.tellg();
  if (bytes != static_cast<std::streamoff>(n * 4)) {
    throw UsageError("input " + o.input + " has " + std::to_string(bytes) + " bytes; --shape needs " +
                     std::to_string(n * 4) + " (float32)");
  }
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(out), n * 4)) throw UsageError("cannot read input " + o.input);
  static_assert(sizeof(float) == 4, "float32");
  return x;
}

// Every tensor in a forward() result (a tensor, or tuples/lists of them), in order.
void collect_tensors(const c10::IValue& v, std::vector<torch::Tensor>& out) {
  if (v.isTensor()) {
    out.push_back(v.toTensor());
  } else if (v.isTuple()) {
    for (const auto& e : v.toTupleRef().elements()) collect_tensors(e, out);
  } else if (v.isList()) {
    for (const c10::IValue& e : v.toListRef()) collect_tensors(e, out);
  } else if (v.isTensorList()) {
    const c10::List<torch::Tensor> list = v.toTensorList();
    for (size_t i = 0; i < list.size(); ++i) out.push_back(list.get(i));
  } else {
    throw UsageError("the model returned " + v.tagKind() + ", not tensors");
  }
}

std::string to_json(const std::vector<torch::Tensor>& outputs) {
  std::string json = "{\"outputs\": [";
  char number[40];
  for (size_t k = 0; k < outputs.size(); ++k) {
    const torch::Tensor& t = outputs[k];
    const bool f64 = t.scalar_type() == torch::kFloat64;
    const torch::Tensor values = t.detach().cpu().contiguous().to(f64 ? torch::kFloat64 : torch::kFloat32);
    json += k ? ", " : "";
    json += "{\"dtype\": \"" + std::string(c10::toString(t.scalar_type())) + "\", \"shape\": [";
    for (int64_t d = 0; d < t.dim(); ++d) json += (d ? ", " : "") + std::to_string(t.size(d));
    json += "], \"values\": [";
    for (int64_t i = 0; i < values.numel(); ++i) {
      const double v = f64 ? values.data_ptr<double>()[i] : static_cast<double>(values.data_ptr<float>()[i]);
      if (std::isfinite(v)) std::snprintf(number, sizeof number, f64 ? "%.17g" : "%.9g", v);
      else std::snprintf(number, sizeof number, "\"%s\"", std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");  // not JSON numbers
      json += i ? ", " : "";
      json += number;
    }
    json += "]}";
  }
  return json + "]}";
}

// The key from --key-file or MODELCRYPT_KEY, parsed by the library with the rules of the Python package
// and the CLI (hex with optional 0x, base64, raw bytes in a file), held in wiped memory.
modelcrypt::Key read_key(const Options& o) {
  try {
    return o.key_file.empty() ? modelcrypt::Key::FromEnv("MODELCRYPT_KEY") : modelcrypt::Key::FromFile(o.key_file);
  } catch (const modelcrypt::Error& e) {
    throw UsageError(std::string(o.key_file.empty() ? "MODELCRYPT_KEY" : "--key-file " + o.key_file) + ": " + e.what());
  }
}

// Decrypts the model into memory and hands it to libtorch; the plaintext is wiped before this returns.
torch::jit::Module load_module(const Options& o, const modelcrypt::Key& key) {
  const char* threads_env = std::getenv("MODELCRYPT_THREADS");  // 0 or unset: every core
  const unsigned threads = threads_env ? static_cast<unsigned>(std::strtoul(threads_env, nullptr, 10)) : 0;
  // The authenticated plaintext, read once from the file into modelcrypt's (wiped-on-free) memory.
  // Throws modelcrypt::Error (wrong key, tampering, missing file) before libtorch sees a byte.
  auto reader = std::make_shared<DecryptedModelReader>(modelcrypt::Load(o.model, key, "AES-GCM", "modelcrypt", threads));
  torch::jit::Module module = torch::jit::load(std::shared_ptr<caffe2::serialize::ReadAdapterInterface>(std::move(reader)),
                                               torch::kCPU);
  // libtorch copied the weights into its own tensors and released the reader: `reader` was the last
  // owner of the buffer, so the plaintext archive is already wiped and freed here.
  module.eval();
  return module;
}

int run(const Options& o) {
  const modelcrypt::Key key = read_key(o);
  const torch::Tensor input = make_input(o);  // bad input fails before any decryption
  torch::jit::Module module = load_module(o, key);
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> outputs;
  collect_tensors(module.forward({input}), outputs);
  std::cout << to_json(outputs) << std::endl;
  return 0;
}

// The line of a libtorch error that says what went wrong: TorchScript interpreter errors end with it
// ("RuntimeError: mat1 and mat2 shapes cannot be multiplied ..."), c10::Error starts with it.
std::string torch_reason(const std::string& what, bool first) {
  std::vector<std::string> lines;
  std::stringstream in(what);
  for (std::string line; std::getline(in, line);) if (line.find_first_not_of(" \t") != std::string::npos) lines.push_back(line);
  if (lines.empty()) return "unknown error";
  return first ? lines.front() : lines.back();
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = parse_args(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "error: " << e.what() << "\n"
              << "usage: " << argv[0]
              << " [--key-file FILE] --shape D0,D1,... [--input FILE | --seed N] ENCRYPTED_MODEL"
                 "   (or the key in MODELCRYPT_KEY)\n";
    return 2;
  }
  try {
    return run(options);
  } catch (const modelcrypt::Error& e) {
    // KEY_MISMATCH: not the file's key; AUTH_FAILED: the file was modified. No plaintext was released.
    std::cerr << "error: " << options.model << ": " << e.what() << "\n";
    return e.status() == MC_KEY_MISMATCH || e.status() == MC_AUTH_FAILED ? 1 : 3;
  } catch (const UsageError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << "error: libtorch: " << torch_reason(e.what_without_backtrace(), true) << "\n";
    return 4;
  } catch (const std::exception& e) {  // torch::jit::JITException and other runtime errors from forward()
    std::cerr << "error: libtorch: " << torch_reason(e.what(), false) << "\n";
    return 4;
  }
}
