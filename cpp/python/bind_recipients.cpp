#include "bind_recipients.hpp"

#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "arguments.hpp"
#include "crypto.hpp"
#include "file_errors.hpp"
#include "recipient_text.hpp"
#include "recipients.hpp"
#include "recipients_edit.hpp"

namespace py = pybind11;

namespace modelcrypt_core::binding {
namespace {

// An X25519 private key in wiping memory. Not picklable, no secret in its repr.
struct IdentityObject {
  Credential credential;
};

py::bytes bytes_of(const uint8_t* p, size_t n) { return py::bytes(reinterpret_cast<const char*>(p), n); }

py::bytearray bytearray_of(const SecretBytes& s) {
  return py::reinterpret_steal<py::bytearray>(
      PyByteArray_FromStringAndSize(reinterpret_cast<const char*>(s.data()), static_cast<Py_ssize_t>(s.size())));
}

recipients::PublicKey public_key_arg(const py::handle& h, const char* name) {
  BytesLike b(h, name);
  if (b.view().size != crypto::kX25519KeySize) raise(PyExc_ValueError, std::string(name) + " must be 32 bytes (an X25519 public key)");
  recipients::PublicKey k{};
  std::copy(b.view().data, b.view().data + k.size(), k.begin());
  return k;
}

std::vector<recipients::PublicKey> public_keys_arg(const py::handle& h, const char* name) {
  if (!PyList_Check(h.ptr()) && !PyTuple_Check(h.ptr())) raise(PyExc_TypeError, std::string(name) + " must be a list");
  std::vector<recipients::PublicKey> out;
  for (const py::handle item : py::reinterpret_borrow<py::sequence>(h)) out.push_back(public_key_arg(item, name));
  return out;
}

std::vector<SecretBytes> keys_arg(const py::handle& h, const char* name) {
  if (!PyList_Check(h.ptr()) && !PyTuple_Check(h.ptr())) raise(PyExc_TypeError, std::string(name) + " must be a list");
  std::vector<SecretBytes> out;
  for (const py::handle item : py::reinterpret_borrow<py::sequence>(h)) out.push_back(copy_key(item));
  return out;
}

const char* stanza_type_name(uint8_t type) {
  return type == recipients::kTypeX25519 ? "x25519" : type == recipients::kTypeSymmetric ? "symmetric" : "unknown";
}

}  // namespace

const Credential* identity_credential(const py::handle& obj) {
  const py::handle type = py::type::of<IdentityObject>();
  if (!PyObject_TypeCheck(obj.ptr(), reinterpret_cast<PyTypeObject*>(type.ptr()))) return nullptr;
  return &obj.cast<const IdentityObject&>().credential;
}

py::list stanzas_info(const std::vector<recipients::Stanza>& stanzas) {
  py::list out;
  for (const recipients::Stanza& s : stanzas) {
    py::dict d;
    d["type"] = stanza_type_name(s.type);
    d["type_id"] = s.type;
    if (s.type == recipients::kTypeX25519) {
      const recipients::Fingerprint f = s.fingerprint();
      d["fingerprint"] = bytes_of(f.data(), f.size());
    } else {
      d["fingerprint"] = py::none();
    }
    out.append(d);
  }
  return out;
}

void bind_recipients(py::module_& m) {
  py::class_<IdentityObject, std::shared_ptr<IdentityObject>>(m, "X25519Identity")
      .def_static("generate", [](const py::args& args, const py::kwargs& kwargs) {
        secret_arguments(args, kwargs, "X25519Identity.generate", {}, 0);
        SecretBytes secret(crypto::kX25519KeySize);
        crypto::random_bytes(secret.data(), secret.size());
        return std::make_shared<IdentityObject>(IdentityObject{Credential::x25519_identity({secret.data(), secret.size()})});
      })
      .def_static("from_text", [](const py::args& args, const py::kwargs& kwargs) {
        const std::vector<py::handle> a = secret_arguments(args, kwargs, "X25519Identity.from_text", {"text", "source"}, 1);
        const py::handle text = a[0];
        const std::string src = a[1] ? text_arg(a[1], "source") : std::string("identity text");
        SecretBytes content;  // str or any bytes-like, copied into wiping memory
        if (PyUnicode_Check(text.ptr())) {
          Py_ssize_t n = 0;
          const char* utf8 = PyUnicode_AsUTF8AndSize(text.ptr(), &n);
          if (utf8 == nullptr) {
            PyErr_Clear();
            raise(PyExc_ValueError, "identity text must be ASCII");
          }
          content.assign(utf8, utf8 + n);
        } else {
          content = copy_key(text);
        }
        const SecretBytes secret = recipient_text::parse_identity({content.data(), content.size()}, src);
        return std::make_shared<IdentityObject>(IdentityObject{Credential::x25519_identity({secret.data(), secret.size()})});
      })
      .def_static("from_private_bytes", [](const py::args& args, const py::kwargs& kwargs) {
        const SecretBytes secret =
            copy_key(secret_arguments(args, kwargs, "X25519Identity.from_private_bytes", {"data"}, 1)[0]);
        return std::make_shared<IdentityObject>(IdentityObject{Credential::x25519_identity({secret.data(), secret.size()})});
      })
      .def_property_readonly("public_key", [](const IdentityObject& self) {
        return bytes_of(self.credential.public_key().data(), crypto::kX25519KeySize);
      })
      .def_property_readonly("recipient", [](const IdentityObject& self) {
        return recipient_text::format_recipient(self.credential.public_key());
      })
      .def("secret_text", [](const py::args& args, const py::kwargs& kwargs) {
        // bytearray, so the caller can wipe it; self and arguments unconverted (see secret_arguments)
        const py::handle obj = secret_arguments(args, kwargs, "X25519Identity.secret_text", {"self"}, 1)[0];
        if (!py::isinstance<IdentityObject>(obj)) raise(PyExc_TypeError, "expected a modelcrypt.X25519Identity");
        const IdentityObject& self = obj.cast<const IdentityObject&>();
        return bytearray_of(recipient_text::format_identity(self.credential.private_key()));
      })
      .def("__repr__", [](const IdentityObject& self) {
        return "X25519Identity(recipient='" + recipient_text::format_recipient(self.credential.public_key()) + "')";
      })
      .def("__reduce__", [](const IdentityObject&) -> py::object {
        raise(PyExc_TypeError, "an identity cannot be pickled (it is a private key); save it with write_identity_file");
      });

  m.def("parse_recipient", [](const py::handle& text) {
    const std::string t = text_arg(text, "recipient");
    const recipients::PublicKey k = recipient_text::parse_recipient(t);
    return bytes_of(k.data(), k.size());
  }, py::arg("recipient"));
  m.def("parse_recipients_list", [](const py::handle& content, const py::handle& source) {
    const std::string c = text_arg(content, "content"), s = text_arg(source, "source");
    py::list out;
    for (const recipients::PublicKey& k : recipient_text::parse_recipients_list(c, s)) out.append(bytes_of(k.data(), k.size()));
    return out;
  }, py::arg("content"), py::arg("source"));
  m.def("format_recipient", [](const py::handle& public_key) {
    return recipient_text::format_recipient(public_key_arg(public_key, "public_key"));
  }, py::arg("public_key"));
  m.def("recipient_fingerprint", [](const py::handle& public_key) {
    const recipients::Fingerprint f = recipients::fingerprint_of(public_key_arg(public_key, "public_key"));
    return bytes_of(f.data(), f.size());
  }, py::arg("public_key"));
  m.def("holds_identity", [](const py::handle& content) {
    BytesLike b(content, "content");
    return recipient_text::holds_identity(b.view());
  }, py::arg("content"));

  m.def("edit_recipients", [](const py::handle& path, const py::handle& key, const py::handle& add_x25519,
                              const py::handle& add_symmetric, const py::handle& remove_x25519,
                              const py::handle& remove_symmetric, const py::handle& durable) {
    const std::string p = to_path(path);
    const Credential credential = copy_credential(key);
    RecipientChanges changes;
    changes.add_x25519 = public_keys_arg(add_x25519, "add_x25519");
    changes.add_symmetric = keys_arg(add_symmetric, "add_symmetric");
    changes.remove_x25519 = public_keys_arg(remove_x25519, "remove_x25519");
    changes.remove_symmetric = keys_arg(remove_symmetric, "remove_symmetric");
    changes.durable = bool_arg(durable, "durable");
    RecipientEditResult r;
    {
      py::gil_scoped_release nogil;
      r = about_file(p, [&] { return edit_recipients(p, credential, changes); });
    }
    py::dict d;
    d["in_place"] = r.in_place;
    d["stanzas"] = r.stanzas;
    d["added"] = r.added;
    d["removed"] = r.removed;
    return d;
  }, py::arg("path"), py::arg("key"), py::arg("add_x25519"), py::arg("add_symmetric"), py::arg("remove_x25519"),
     py::arg("remove_symmetric"), py::arg("durable"));
}

}  // namespace modelcrypt_core::binding
