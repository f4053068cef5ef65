// Argument conversion shared by the binding files (bindings.cpp, bind_random_access.cpp).
#pragma once
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bind_recipients.hpp"
#include "bind_signing.hpp"
#include "container.hpp"
#include "crypto.hpp"

namespace modelcrypt_core::binding {

namespace py = pybind11;

// Argument conversion. Every binding takes its arguments as py::handle and converts them here, so
// that a bad argument never reaches pybind11's overload resolution, whose TypeError lists every
// argument of the call ("Invoked with: ...") -- the key and the plaintext included. The messages
// below name the argument and what it must be, and never show a value.
[[noreturn]] inline void raise(PyObject* type, const std::string& message) {
  PyErr_SetString(type, message.c_str());
  throw py::error_already_set();
}

// The arguments of a call that carries a secret (private key bytes, identity or signing key text),
// taken as *args / **kwargs so that a wrong number or name of arguments never reaches pybind11's
// "Invoked with: ..." message: the handles of `names` in order (by position or keyword), the first
// `required` of them required, a missing optional one a null handle. Messages name no value.
inline std::vector<py::handle> secret_arguments(const py::args& args, const py::kwargs& kwargs, const char* function,
                                                std::initializer_list<const char*> names, size_t required) {
  const std::vector<const char*> order(names);
  std::string usage = std::string(function) + "(";
  for (size_t i = 0; i < order.size(); ++i) usage += (i ? ", " : "") + std::string(order[i]);
  usage += ")";
  std::vector<py::handle> out(order.size());
  if (args.size() > order.size()) {
    raise(PyExc_TypeError, usage + " takes at most " + std::to_string(order.size()) + " argument(s), got " +
                               std::to_string(args.size()));
  }
  for (size_t i = 0; i < args.size(); ++i) out[i] = args[i];
  for (const auto& item : kwargs) {
    size_t at = order.size();
    if (PyUnicode_Check(item.first.ptr())) {
      const char* given = PyUnicode_AsUTF8(item.first.ptr());
      if (given == nullptr) PyErr_Clear();
      for (size_t i = 0; given != nullptr && i < order.size(); ++i) {
        if (std::string(given) == order[i]) at = i;
      }
    }
    if (at == order.size()) raise(PyExc_TypeError, usage + " got an unexpected keyword argument");
    if (out[at]) raise(PyExc_TypeError, usage + " got more than one value for '" + order[at] + "'");
    out[at] = item.second;
  }
  for (size_t i = 0; i < required; ++i) {
    if (!out[i]) raise(PyExc_TypeError, usage + " is missing the argument '" + order[i] + "'");
  }
  return out;
}

inline std::string bytes_arg(const py::handle& h, const char* name) {
  if (!PyBytes_Check(h.ptr())) raise(PyExc_TypeError, std::string(name) + " must be bytes");
  return std::string(PyBytes_AS_STRING(h.ptr()), static_cast<size_t>(PyBytes_GET_SIZE(h.ptr())));
}

inline std::string to_path(const py::handle& h, const char* name = "path") { return bytes_arg(h, name); }

// A str that encodes to UTF-8 (lone surrogates do not): modes and format names.
inline std::string text_arg(const py::handle& h, const char* name) {
  if (!PyUnicode_Check(h.ptr())) raise(PyExc_TypeError, std::string(name) + " must be a str");
  Py_ssize_t n = 0;
  const char* utf8 = PyUnicode_AsUTF8AndSize(h.ptr(), &n);
  if (utf8 == nullptr) {
    PyErr_Clear();  // the UnicodeEncodeError would carry the text; ours names the argument only
    raise(PyExc_ValueError, std::string(name) + " must be text encodable as UTF-8");
  }
  return std::string(utf8, static_cast<size_t>(n));
}

inline uint64_t u64_arg(const py::handle& h, const char* name, uint64_t max = UINT64_MAX) {
  if (!PyLong_Check(h.ptr()) || PyBool_Check(h.ptr())) raise(PyExc_TypeError, std::string(name) + " must be an int");
  const unsigned long long v = PyLong_AsUnsignedLongLong(h.ptr());
  if (v == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
    PyErr_Clear();
    raise(PyExc_OverflowError, std::string(name) + " is out of range (0 to " + std::to_string(max) + ")");
  }
  if (v > max) raise(PyExc_OverflowError, std::string(name) + " is out of range (0 to " + std::to_string(max) + ")");
  return v;
}

inline uint32_t u32_arg(const py::handle& h, const char* name) { return static_cast<uint32_t>(u64_arg(h, name, UINT32_MAX)); }

inline bool bool_arg(const py::handle& h, const char* name) {
  if (!PyBool_Check(h.ptr())) raise(PyExc_TypeError, std::string(name) + " must be True or False");
  return h.ptr() == Py_True;
}

// A C-contiguous read-only view of any bytes-like object, held for the duration of a call.
class BytesLike {
 public:
  explicit BytesLike(const py::handle& obj, const char* name = "data") {
    if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_SIMPLE) != 0) {
      PyErr_Clear();
      raise(PyExc_TypeError, std::string(name) + " must be a C-contiguous bytes-like object");
    }
  }
  ~BytesLike() { PyBuffer_Release(&view_); }
  BytesLike(const BytesLike&) = delete;
  BytesLike& operator=(const BytesLike&) = delete;
  ByteView view() const { return {static_cast<const uint8_t*>(view_.buf), static_cast<size_t>(view_.len)}; }

 private:
  Py_buffer view_{};
};

// A writable, C-contiguous buffer of the caller's (numpy array, bytearray, mmap, a tensor's
// storage through numpy), exported for as long as this object lives (so it cannot be resized).
class WritableBuffer {
 public:
  explicit WritableBuffer(const py::handle& obj, const char* name = "out") {
    if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_SIMPLE | PyBUF_WRITABLE) != 0) {
      PyErr_Clear();
      raise(PyExc_TypeError, std::string(name) + " must be a writable, C-contiguous buffer (bytearray, numpy array, "
                                                 "memoryview, mmap)");
    }
  }
  ~WritableBuffer() { PyBuffer_Release(&view_); }
  WritableBuffer(const WritableBuffer&) = delete;
  WritableBuffer& operator=(const WritableBuffer&) = delete;
  uint8_t* data() const { return static_cast<uint8_t*>(view_.buf); }
  uint64_t size() const { return static_cast<uint64_t>(view_.len); }

 private:
  Py_buffer view_{};
};

// The key is copied into wiping memory before the GIL is released, so another Python thread
// mutating a bytearray key cannot race the core.
inline SecretBytes copy_key(const py::handle& key) {
  BytesLike k(key, "key");
  const ByteView v = k.view();
  return SecretBytes(v.data, v.data + v.size);
}

// What a reader opens a file with: an X25519Identity object, or a bytes-like symmetric key (copied).
inline Credential copy_credential(const py::handle& key) {
  if (const Credential* trusted = trusted_credential(key)) return *trusted;  // a key or identity + trusted signers
  if (const Credential* identity = identity_credential(key)) return *identity;
  const SecretBytes k = copy_key(key);
  return Credential(ByteView{k.data(), k.size()});
}
inline const Credential& view_of(const Credential& c) { return c; }

// What a writer encrypts to: `key` None (recipients only), an X25519Identity (its recipient is
// added to options.recipients) or a bytes-like symmetric key; `recipients` a list of 32-byte
// X25519 public keys (or None).
inline SecretBytes writer_key(const py::handle& key, const py::handle& recipients, EncryptOptions& options) {
  if (!recipients.is_none()) {
    if (!PyList_Check(recipients.ptr()) && !PyTuple_Check(recipients.ptr())) raise(PyExc_TypeError, "recipients must be a list");
    for (const py::handle r : py::reinterpret_borrow<py::sequence>(recipients)) {
      BytesLike b(r, "each recipient");
      if (b.view().size != crypto::kX25519KeySize) raise(PyExc_ValueError, "each recipient must be a 32-byte X25519 public key");
      recipients::PublicKey pk{};
      std::copy(b.view().data, b.view().data + pk.size(), pk.begin());
      options.recipients.push_back(pk);
    }
  }
  SecretBytes k;
  if (const Credential* identity = identity_credential(key)) {
    options.recipients.push_back(identity->public_key());
  } else if (!key.is_none()) {
    k = copy_key(key);
  }
  options.with_key = !k.empty();
  return k;
}

inline ByteView view_of(const SecretBytes& s) { return {s.data(), s.size()}; }
inline ByteView view_of(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }


// The core's progress hook for a streaming call made with the GIL released: between batches it
// re-acquires the GIL, lets pending signals run (Ctrl-C raises KeyboardInterrupt, which cancels the
// operation: the core removes its temporary file) and calls the optional Python callback.
// `callback` is borrowed: the caller's argument keeps it alive for the whole call.
inline Progress python_progress(py::handle callback) {
  return [callback](uint64_t bytes_done) {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (!callback.is_none()) callback(bytes_done);
  };
}

}  // namespace modelcrypt_core::binding
