#include "bind_signing.hpp"

#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "arguments.hpp"
#include "file_errors.hpp"
#include "python_source.hpp"
#include "signing_text.hpp"

namespace py = pybind11;

namespace modelcrypt_core::binding {
namespace {

// An Ed25519 signing key in wiping memory. Not picklable, no secret in its repr.
struct SigningKeyObject {
  std::shared_ptr<const signature::SigningKey> key;
};

// A reader's credential together with the signers it trusts (Credential::require_signers).
struct TrustedCredentialObject {
  Credential credential;
};

py::bytes bytes_of(const uint8_t* p, size_t n) { return py::bytes(reinterpret_cast<const char*>(p), n); }

// str (UTF-8) or bytes-like, copied into wiping memory: key files' contents.
SecretBytes text_content(const py::handle& text, const char* name) {
  if (PyUnicode_Check(text.ptr())) {
    Py_ssize_t n = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(text.ptr(), &n);
    if (utf8 == nullptr) {
      PyErr_Clear();
      raise(PyExc_ValueError, std::string(name) + " must be ASCII text");
    }
    return SecretBytes(utf8, utf8 + n);
  }
  return copy_key(text);
}

signature::PublicKey signer_arg(const py::handle& h) {
  BytesLike b(h, "each trusted signer");
  if (b.view().size != signature::kPublicKeySize) {
    raise(PyExc_ValueError, "each trusted signer must be a 32-byte Ed25519 public key");
  }
  signature::PublicKey k{};
  std::copy(b.view().data, b.view().data + k.size(), k.begin());
  return k;
}

std::vector<signature::PublicKey> signers_arg(const py::handle& h) {
  if (!PyList_Check(h.ptr()) && !PyTuple_Check(h.ptr())) raise(PyExc_TypeError, "trusted signers must be a list");
  std::vector<signature::PublicKey> out;
  for (const py::handle item : py::reinterpret_borrow<py::sequence>(h)) out.push_back(signer_arg(item));
  if (out.empty()) raise(PyExc_ValueError, "trusted signers must not be empty");
  return out;
}

std::shared_ptr<SigningKeyObject> wrap(signature::SigningKey k) {
  return std::make_shared<SigningKeyObject>(SigningKeyObject{std::make_shared<const signature::SigningKey>(std::move(k))});
}

}  // namespace

const Credential* trusted_credential(const py::handle& obj) {
  const py::handle type = py::type::of<TrustedCredentialObject>();
  if (!PyObject_TypeCheck(obj.ptr(), reinterpret_cast<PyTypeObject*>(type.ptr()))) return nullptr;
  return &obj.cast<const TrustedCredentialObject&>().credential;
}

std::shared_ptr<const signature::SigningKey> signing_key_arg(const py::handle& obj) {
  if (obj.is_none()) return nullptr;
  const py::handle type = py::type::of<SigningKeyObject>();
  if (!PyObject_TypeCheck(obj.ptr(), reinterpret_cast<PyTypeObject*>(type.ptr()))) {
    raise(PyExc_TypeError, "signing_key must be a modelcrypt.SigningKey");
  }
  return obj.cast<const SigningKeyObject&>().key;
}

void bind_signing(py::module_& m) {
  py::class_<SigningKeyObject, std::shared_ptr<SigningKeyObject>>(m, "SigningKey")
      .def_static("generate", [](const py::args& args, const py::kwargs& kwargs) {
        secret_arguments(args, kwargs, "SigningKey.generate", {}, 0);
        return wrap(signature::SigningKey::generate());
      })
      .def_static("from_text", [](const py::args& args, const py::kwargs& kwargs) {
        const std::vector<py::handle> a = secret_arguments(args, kwargs, "SigningKey.from_text", {"text", "source"}, 1);
        const py::handle text = a[0];
        const std::string src = a[1] ? text_arg(a[1], "source") : std::string("signing key text");
        const SecretBytes content = text_content(text, "signing key text");
        const SecretBytes seed = signing_text::parse_signing_key({content.data(), content.size()}, src);
        return wrap(signature::SigningKey::from_seed({seed.data(), seed.size()}));
      })
      .def_static("from_private_bytes", [](const py::args& args, const py::kwargs& kwargs) {
        const SecretBytes seed = copy_key(secret_arguments(args, kwargs, "SigningKey.from_private_bytes", {"data"}, 1)[0]);
        return wrap(signature::SigningKey::from_seed({seed.data(), seed.size()}));
      })
      .def_property_readonly("public_key", [](const SigningKeyObject& self) {
        return signing_text::format_signer(self.key->public_key());
      })
      .def_property_readonly("public_key_bytes", [](const SigningKeyObject& self) {
        return bytes_of(self.key->public_key().data(), signature::kPublicKeySize);
      })
      .def("secret_text", [](const py::args& args, const py::kwargs& kwargs) {
        // bytearray, so the caller can wipe it; self and arguments unconverted (see secret_arguments)
        const py::handle obj = secret_arguments(args, kwargs, "SigningKey.secret_text", {"self"}, 1)[0];
        if (!py::isinstance<SigningKeyObject>(obj)) raise(PyExc_TypeError, "expected a modelcrypt.SigningKey");
        const SigningKeyObject& self = obj.cast<const SigningKeyObject&>();
        const SecretBytes s = signing_text::format_signing_key(self.key->seed());
        return py::reinterpret_steal<py::bytearray>(
            PyByteArray_FromStringAndSize(reinterpret_cast<const char*>(s.data()), static_cast<Py_ssize_t>(s.size())));
      })
      .def("__repr__", [](const SigningKeyObject& self) {
        return "SigningKey(public_key='" + signing_text::format_signer(self.key->public_key()) + "')";
      })
      .def("__reduce__", [](const SigningKeyObject&) -> py::object {
        raise(PyExc_TypeError, "a signing key cannot be pickled (it is a private key); save it with write_signing_key_file");
      });

  py::class_<TrustedCredentialObject, std::shared_ptr<TrustedCredentialObject>>(m, "TrustedCredential")
      .def(py::init([](const py::handle& key, const py::handle& signers) {
        Credential c = key.is_none() ? Credential(ByteView{}) : copy_credential(key);
        c.require_signers(signers_arg(signers));
        return std::make_shared<TrustedCredentialObject>(TrustedCredentialObject{std::move(c)});
      }), py::arg("key"), py::arg("signers"))
      .def("__repr__", [](const TrustedCredentialObject& self) {
        return "TrustedCredential(" + std::to_string(self.credential.trusted_signers().size()) + " trusted signer(s))";
      })
      .def("__reduce__", [](const TrustedCredentialObject&) -> py::object {
        raise(PyExc_TypeError, "a credential cannot be pickled");
      });

  m.def("parse_signer", [](const py::handle& text) {
    const SecretBytes content = text_content(text, "signer public key");
    const signature::PublicKey k = signing_text::parse_signer({reinterpret_cast<const char*>(content.data()), content.size()});
    return bytes_of(k.data(), k.size());
  }, py::arg("text"));
  m.def("parse_signers_list", [](const py::handle& content, const py::handle& source) {
    const SecretBytes c = text_content(content, "trusted signers");
    py::list out;
    for (const auto& k : signing_text::parse_signers_list({reinterpret_cast<const char*>(c.data()), c.size()},
                                                          text_arg(source, "source"))) {
      out.append(bytes_of(k.data(), k.size()));
    }
    return out;
  }, py::arg("content"), py::arg("source"));
  m.def("format_signer", [](const py::handle& public_key) {
    return signing_text::format_signer(signer_arg(public_key));
  }, py::arg("public_key"));
  m.def("holds_signing_key", [](const py::handle& content) {
    const SecretBytes c = text_content(content, "content");
    return signing_text::holds_signing_key({c.data(), c.size()});
  }, py::arg("content"));
  m.def("verify_signature", [](const py::handle& path, const py::handle& signers, const py::handle& threads,
                               const py::handle& progress) {
    const std::string p = to_path(path);
    const std::vector<signature::PublicKey> trusted = signers_arg(signers);
    const unsigned t = u32_arg(threads, "threads");
    const Progress hook = python_progress(progress);
    signature::PublicKey signer{};
    {
      py::gil_scoped_release nogil;
      signer = about_file(p, [&] { return verify_signature_file(p, trusted, t, hook); });
    }
    return bytes_of(signer.data(), signer.size());
  }, py::arg("path"), py::arg("signers"), py::arg("threads"), py::arg("progress") = py::none());
  // verify_signature over a Python reader (a URL's RangeReader): read(offset, n) -> bytes.
  m.def("verify_signature_source", [](const py::object& read, const py::handle& size, const py::handle& signers,
                                      const py::handle& threads, const py::handle& progress) {
    if (!PyCallable_Check(read.ptr())) raise(PyExc_TypeError, "read must be callable: read(offset, n) -> bytes");
    const PythonReadSource source(read, u64_arg(size, "size"));
    const std::vector<signature::PublicKey> trusted = signers_arg(signers);
    const unsigned t = u32_arg(threads, "threads");
    const Progress hook = python_progress(progress);
    signature::PublicKey signer{};
    try {
      py::gil_scoped_release nogil;
      signer = verify_signature_source(source, trusted, t, hook);
    } catch (const Error&) {
      source.reraise();
      throw;
    }
    return bytes_of(signer.data(), signer.size());
  }, py::arg("read"), py::arg("size"), py::arg("signers"), py::arg("threads"), py::arg("progress") = py::none());
}

}  // namespace modelcrypt_core::binding
