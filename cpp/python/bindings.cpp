// pybind11 binding of the modelcrypt core. Only argument conversion, GIL release and error mapping
// live here; argument policy (types, key lengths, modes, metadata encoding) is checked in
// python/modelcrypt/_api.py before these functions are called, and again by the core.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <string>

#include "arguments.hpp"
#include "bind_random_access.hpp"
#include "python_source.hpp"
#include "bind_recipients.hpp"
#include "container.hpp"
#include "crypto.hpp"
#include "decrypted_buffer.hpp"
#include "errors.hpp"
#include "file_errors.hpp"
#include "legacy.hpp"

namespace py = pybind11;
using namespace modelcrypt_core;
using namespace modelcrypt_core::binding;

namespace {

// `metadata` must outlive the returned options (they hold a view of it).
EncryptOptions encrypt_options(uint32_t chunk_size, const std::string& metadata, unsigned threads, Progress progress) {
  EncryptOptions options;
  options.chunk_size = chunk_size;
  options.metadata = view_of(metadata);
  options.threads = threads;
  options.progress = std::move(progress);
  return options;
}

py::object exception_class(const char* name) {
  return py::module_::import("modelcrypt.exceptions").attr(name);
}

// The core's message as str. Messages may quote a file name that is not UTF-8: such bytes are
// shown as \xNN escapes (PyErr_SetString would fail to decode them and raise a UnicodeDecodeError
// in place of the real error).
py::str message_of(const Error& e) {
  const std::string text = e.what();
  PyObject* s = PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "backslashreplace");
  if (s == nullptr) {
    PyErr_Clear();
    return py::str("(undecodable error message)");
  }
  return py::reinterpret_steal<py::str>(s);
}

void set_error(PyObject* type, const Error& e) { PyErr_SetObject(type, message_of(e).ptr()); }

void translate(const Error& e) {
  switch (e.status()) {
    case Status::key_mismatch: set_error(exception_class("KeyMismatchError").ptr(), e); return;
    case Status::auth_failed: set_error(exception_class("AuthenticationError").ptr(), e); return;
    case Status::format: set_error(exception_class("FormatError").ptr(), e); return;
    case Status::unsupported: set_error(exception_class("UnsupportedVersionError").ptr(), e); return;
    case Status::signature: set_error(exception_class("SignatureError").ptr(), e); return;
    case Status::invalid_argument: set_error(PyExc_ValueError, e); return;
    case Status::no_memory: set_error(PyExc_MemoryError, e); return;
    case Status::io: {
      // OSError(errno, message, filename) becomes FileNotFoundError, PermissionError, ... by errno.
      py::object oserror = py::reinterpret_borrow<py::object>(PyExc_OSError);
      py::object err;
      if (e.sys_errno() != 0) {
        py::object filename = py::reinterpret_steal<py::object>(
            PyUnicode_DecodeFSDefaultAndSize(e.path().data(), static_cast<Py_ssize_t>(e.path().size())));
        err = oserror(e.sys_errno(), message_of(e), filename);
      } else {
        err = oserror(message_of(e));
      }
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(err.ptr())), err.ptr());
      return;
    }
    default: set_error(exception_class("ModelCryptError").ptr(), e); return;
  }
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "modelcrypt native core (private; use the modelcrypt package)";
  crypto::ensure_initialized();

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      translate(e);
    }
  });

  m.attr("DEFAULT_CHUNK_SIZE") = format::kDefaultChunkSize;
  m.attr("MIN_CHUNK_SIZE") = format::kMinChunkSize;
  m.attr("MAX_CHUNK_SIZE") = format::kMaxChunkSize;
  m.attr("CHUNK_SIZE_MULTIPLE") = format::kChunkSizeMultiple;
  m.attr("MAX_METADATA_SIZE") = format::kMaxMetadataSize;
  m.attr("FORMAT_VERSION") = format::kVersion;
  m.def("supported_modes", &supported_modes);
  m.def("openssl_version", [] { return std::string(crypto::openssl_version()); });

  bind_decrypted_buffer(m);
  bind_recipients(m);
  bind_signing(m);

  bind_random_access(m, [](Decrypted&& d) {
    auto out = std::make_unique<DecryptedBuffer>();
    out->contents() = std::move(d);
    return py::cast(std::move(out));
  });

  m.def("load", [](const py::handle& path, const py::handle& key, const py::handle& mode, const py::handle& format,
                   const py::handle& threads) {
    const std::string p = to_path(path), md = text_arg(mode, "mode"), fmt = text_arg(format, "format");
    const unsigned t = u32_arg(threads, "threads");
    const Credential k = copy_credential(key);
    auto out = std::make_unique<DecryptedBuffer>();
    {
      py::gil_scoped_release nogil;
      out->contents() = about_file(p, [&] { return load_file(p, view_of(k), md, fmt, t); });
    }
    return out;
  }, py::arg("path"), py::arg("key"), py::arg("mode"), py::arg("format"), py::arg("threads"));

  // load from a Python reader: read(offset, n) -> bytes (fewer than n only at the end), called with the
  // GIL from the core's threads one at a time; the bytes are copied into the library's memory and only
  // that copy is authenticated and decrypted. An exception raised by read() is re-raised as itself.
  m.def("load_source", [](const py::object& read, const py::handle& size, const py::handle& key, const py::handle& mode,
                          const py::handle& threads) {
    if (!PyCallable_Check(read.ptr())) raise(PyExc_TypeError, "read must be callable: read(offset, n) -> bytes");
    const uint64_t n = u64_arg(size, "size");
    const std::string md = text_arg(mode, "mode");
    const unsigned t = u32_arg(threads, "threads");
    const Credential k = copy_credential(key);
    const PythonReadSource source(read, n);
    auto out = std::make_unique<DecryptedBuffer>();
    try {
      py::gil_scoped_release nogil;
      out->contents() = load_source(source, k, md, t);
    } catch (const Error&) {
      source.reraise();  // the reader's own exception, when it raised one
      throw;
    }
    return out;
  }, py::arg("read"), py::arg("size"), py::arg("key"), py::arg("mode"), py::arg("threads"));

  m.def("load_range", [](const py::handle& path, const py::handle& key, const py::handle& mode, const py::handle& offset,
                         const py::handle& length, const py::handle& threads) {
    const std::string p = to_path(path), md = text_arg(mode, "mode");
    const uint64_t off = u64_arg(offset, "offset"), len = u64_arg(length, "length");
    const unsigned t = u32_arg(threads, "threads");
    const Credential k = copy_credential(key);
    auto out = std::make_unique<DecryptedBuffer>();
    {
      py::gil_scoped_release nogil;
      out->contents() = about_file(p, [&] { return load_range(p, view_of(k), md, off, len, t); });
    }
    return out;
  }, py::arg("path"), py::arg("key"), py::arg("mode"), py::arg("offset"), py::arg("length"), py::arg("threads"));

  m.def("secure_copy", [](const py::handle& data) {
    BytesLike in(data);
    auto out = std::make_unique<DecryptedBuffer>();
    {
      py::gil_scoped_release nogil;
      out->contents() = secure_copy(in.view());
    }
    return out;
  }, py::arg("data"));

  m.def("debug_counters", [] {
    const DebugCounters c = debug_counters();
    py::dict d;
    d["chunks_decrypted"] = c.chunks_decrypted;
    d["ciphertext_bytes_read"] = c.ciphertext_bytes_read;
    return d;
  });
  m.def("reset_debug_counters", &reset_debug_counters);

  m.def("encrypt_parts_to_file", [](const py::handle& parts, const py::handle& dst, const py::handle& key,
                                    const py::handle& mode, const py::handle& chunk_size, const py::handle& metadata,
                                    const py::handle& threads, const py::handle& progress, const py::handle& durable,
                                    const py::handle& recipients, const py::handle& signing_key) {
    if (!PyList_Check(parts.ptr()) && !PyTuple_Check(parts.ptr())) raise(PyExc_TypeError, "parts must be a list or tuple");
    std::vector<std::unique_ptr<BytesLike>> held;  // keeps every part's buffer exported during the call
    std::vector<ByteView> views;
    for (const py::handle part : py::reinterpret_borrow<py::sequence>(parts)) {
      held.push_back(std::make_unique<BytesLike>(part, "each part"));
      views.push_back(held.back()->view());
    }
    const std::string d = to_path(dst, "dst"), md = bytes_arg(metadata, "metadata"), mo = text_arg(mode, "mode");
    const uint32_t cs = u32_arg(chunk_size, "chunk_size");
    const unsigned t = u32_arg(threads, "threads");
    EncryptOptions options = encrypt_options(cs, md, t, python_progress(progress));
    const SecretBytes k = writer_key(key, recipients, options);
    options.signing_key = signing_key_arg(signing_key);
    options.durable = bool_arg(durable, "durable");
    py::gil_scoped_release nogil;
    about_file(d, [&] { encrypt_parts_to_file(views, d, view_of(k), mo, options); });
  }, py::arg("parts"), py::arg("dst"), py::arg("key"), py::arg("mode"), py::arg("chunk_size"), py::arg("metadata"),
     py::arg("threads"), py::arg("progress") = py::none(), py::arg("durable") = py::bool_(true),
     py::arg("recipients") = py::none(), py::arg("signing_key") = py::none());

  m.def("decrypt_bytes", [](const py::handle& blob, const py::handle& key, const py::handle& mode, const py::handle& format,
                            const py::handle& threads) {
    const std::string md = text_arg(mode, "mode"), fmt = text_arg(format, "format");
    const unsigned t = u32_arg(threads, "threads");
    const Credential k = copy_credential(key);
    BytesLike in(blob, "blob");
    auto out = std::make_unique<DecryptedBuffer>();
    {
      py::gil_scoped_release nogil;
      out->contents() = decrypt_memory(in.view(), view_of(k), md, fmt, t);
    }
    return out;
  }, py::arg("blob"), py::arg("key"), py::arg("mode"), py::arg("format"), py::arg("threads"));

  m.def("encrypt_bytes", [](const py::handle& data, const py::handle& key, const py::handle& mode, const py::handle& chunk_size,
                            const py::handle& metadata, const py::handle& threads, const py::handle& recipients,
                            const py::handle& signing_key) {
    const std::string mo = text_arg(mode, "mode"), md = bytes_arg(metadata, "metadata");
    const uint32_t cs = u32_arg(chunk_size, "chunk_size");
    const unsigned t = u32_arg(threads, "threads");
    EncryptOptions options = encrypt_options(cs, md, t, nullptr);
    const SecretBytes k = writer_key(key, recipients, options);
    options.signing_key = signing_key_arg(signing_key);
    BytesLike in(data);
    const uint64_t size = encrypted_length(in.view().size, options);
    PyObject* raw = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(size));
    if (raw == nullptr) throw py::error_already_set();
    py::object result = py::reinterpret_steal<py::object>(raw);
    auto* dst = reinterpret_cast<uint8_t*>(PyBytes_AS_STRING(raw));
    {
      py::gil_scoped_release nogil;
      encrypt_memory(in.view(), view_of(k), mo, options, dst, size);
    }
    return result;
  }, py::arg("data"), py::arg("key"), py::arg("mode"), py::arg("chunk_size"), py::arg("metadata"), py::arg("threads"),
     py::arg("recipients") = py::none(), py::arg("signing_key") = py::none());

  m.def("encrypt_file", [](const py::handle& src, const py::handle& dst, const py::handle& key, const py::handle& mode,
                           const py::handle& chunk_size, const py::handle& metadata, const py::handle& threads,
                           const py::handle& progress, const py::handle& durable, const py::handle& recipients,
                           const py::handle& signing_key) {
    const std::string s = to_path(src, "src"), d = to_path(dst, "dst"), md = bytes_arg(metadata, "metadata");
    const std::string mo = text_arg(mode, "mode");
    const uint32_t cs = u32_arg(chunk_size, "chunk_size");
    const unsigned t = u32_arg(threads, "threads");
    const bool du = bool_arg(durable, "durable");
    EncryptOptions options = encrypt_options(cs, md, t, python_progress(progress));
    const SecretBytes k = writer_key(key, recipients, options);
    options.signing_key = signing_key_arg(signing_key);
    options.durable = du;
    py::gil_scoped_release nogil;
    about_file(s, [&] { encrypt_file(s, d, view_of(k), mo, options); });
  }, py::arg("src"), py::arg("dst"), py::arg("key"), py::arg("mode"), py::arg("chunk_size"), py::arg("metadata"),
     py::arg("threads"), py::arg("progress") = py::none(), py::arg("durable") = true, py::arg("recipients") = py::none(),
     py::arg("signing_key") = py::none());

  // File -> a Python writer (write(bytes) per piece of ciphertext, in order, as it is sealed): the
  // streaming upload's engine. Policy (multipart, abort, atomic publish) lives in Python.
  m.def("encrypt_file_to_writer", [](const py::handle& src, const py::handle& write, const py::handle& key,
                                     const py::handle& mode, const py::handle& chunk_size, const py::handle& metadata,
                                     const py::handle& threads, const py::handle& progress,
                                     const py::handle& recipients, const py::handle& signing_key) {
    const std::string s = to_path(src, "src"), md = bytes_arg(metadata, "metadata");
    const std::string mo = text_arg(mode, "mode");
    const uint32_t cs = u32_arg(chunk_size, "chunk_size");
    const unsigned t = u32_arg(threads, "threads");
    if (!PyCallable_Check(write.ptr())) raise(PyExc_TypeError, "write must be callable");
    EncryptOptions options = encrypt_options(cs, md, t, python_progress(progress));
    const SecretBytes k = writer_key(key, recipients, options);
    options.signing_key = signing_key_arg(signing_key);
    // Each piece is lent as a read-only memoryview of the sealed batch (no copy) and released when
    // write returns: the batch's memory is reused, so a writer copies what it keeps (fsspec's
    // buffered files and our _upload writers do). A writer still holding an export is an error.
    const CiphertextWriter writer = [write](const uint8_t* data, size_t n) {
      py::gil_scoped_acquire gil;
      py::memoryview piece = py::memoryview::from_memory(const_cast<uint8_t*>(data), static_cast<py::ssize_t>(n), true);
      try {
        write(piece);
      } catch (...) {
        PyObject* r = PyObject_CallMethod(piece.ptr(), "release", nullptr);
        if (r != nullptr) Py_DECREF(r); else PyErr_Clear();
        throw;
      }
      piece.attr("release")();  // BufferError if the writer kept an export: the bytes would change under it
    };
    py::gil_scoped_release nogil;
    about_file(s, [&] { encrypt_file_to_writer(s, writer, view_of(k), mo, options); });
  }, py::arg("src"), py::arg("write"), py::arg("key"), py::arg("mode"), py::arg("chunk_size"), py::arg("metadata"),
     py::arg("threads"), py::arg("progress") = py::none(), py::arg("recipients") = py::none(),
     py::arg("signing_key") = py::none());

  m.def("decrypt_file", [](const py::handle& src, const py::handle& dst, const py::handle& key, const py::handle& mode,
                           const py::handle& format, const py::handle& threads, const py::handle& progress,
                           const py::handle& durable) {
    const std::string s = to_path(src, "src"), d = to_path(dst, "dst");
    const std::string mo = text_arg(mode, "mode"), fmt = text_arg(format, "format");
    const unsigned t = u32_arg(threads, "threads");
    const bool du = bool_arg(durable, "durable");
    const Credential k = copy_credential(key);
    const Progress hook = python_progress(progress);
    py::gil_scoped_release nogil;
    return about_file(s, [&] { return decrypt_file(s, d, view_of(k), mo, fmt, t, hook, du); });
  }, py::arg("src"), py::arg("dst"), py::arg("key"), py::arg("mode"), py::arg("format"), py::arg("threads"),
     py::arg("progress") = py::none(), py::arg("durable") = true);

  m.def("verify_file", [](const py::handle& path, const py::handle& key, const py::handle& mode, const py::handle& format,
                          const py::handle& threads, const py::handle& progress) {
    const std::string p = to_path(path), mo = text_arg(mode, "mode"), fmt = text_arg(format, "format");
    const unsigned t = u32_arg(threads, "threads");
    const Credential k = copy_credential(key);
    const Progress hook = python_progress(progress);
    py::gil_scoped_release nogil;
    return about_file(p, [&] { return verify_file(p, view_of(k), mo, fmt, t, hook); });
  }, py::arg("path"), py::arg("key"), py::arg("mode"), py::arg("format"), py::arg("threads"), py::arg("progress") = py::none());

  // In-place wiping for modelcrypt.wipe(): policy (which objects, which sizes) lives in Python.
  m.def("wipe_writable_buffer", [](const py::handle& obj) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj.ptr(), &view, PyBUF_SIMPLE | PyBUF_WRITABLE) != 0) throw py::error_already_set();
    crypto::wipe(view.buf, static_cast<size_t>(view.len));
    PyBuffer_Release(&view);
  }, py::arg("buffer"));
  m.def("wipe_bytes_object", [](const py::handle& obj) {
    if (!PyBytes_CheckExact(obj.ptr())) raise(PyExc_TypeError, "obj must be a bytes object");
    // Zeroes the bytes object's own storage and drops its cached hash, which described the old value.
    crypto::wipe(PyBytes_AS_STRING(obj.ptr()), static_cast<size_t>(PyBytes_GET_SIZE(obj.ptr())));
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
    reinterpret_cast<PyBytesObject*>(obj.ptr())->ob_shash = -1;
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
  }, py::arg("obj"));

  m.def("detect_format", [](const py::handle& path) {
    const std::string p = to_path(path);
    py::gil_scoped_release nogil;
    return about_file(p, [&] { return detect_file_format(p); });
  }, py::arg("path"));

  m.def("describe_legacy", [](const py::handle& path) {
    const std::string p = to_path(path);
    legacy::FileDescription fd;
    {
      py::gil_scoped_release nogil;
      fd = about_file(p, [&] { return legacy::describe_file(p); });
    }
    py::dict d;
    d["format"] = legacy::format_name(fd.format);
    d["cipher"] = fd.description.cipher;
    d["frames"] = fd.description.frames;
    d["plaintext_length"] = fd.description.plaintext_length < 0 ? py::object(py::none()) : py::int_(fd.description.plaintext_length);
    d["file_length"] = fd.file_length;
    return d;
  }, py::arg("path"));

  m.def("mindspore_encrypt_bytes", [](const py::handle& data, const py::handle& key, const py::handle& mode_arg) {
    const std::string mode = text_arg(mode_arg, "mode");
    const SecretBytes k = copy_key(key);
    BytesLike in(data);
    const legacy::Mode m = legacy::parse_mode(mode);
    const uint64_t size = legacy::mindspore_encrypted_length(in.view().size, m);
    PyObject* raw = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(size));
    if (raw == nullptr) throw py::error_already_set();
    py::object result = py::reinterpret_steal<py::object>(raw);
    auto* dst = reinterpret_cast<uint8_t*>(PyBytes_AS_STRING(raw));
    {
      py::gil_scoped_release nogil;
      legacy::mindspore_encrypt(in.view(), m, view_of(k), dst, size);
    }
    return result;
  }, py::arg("data"), py::arg("key"), py::arg("mode"));

  m.def("mindspore_encrypt_file", [](const py::handle& src, const py::handle& dst, const py::handle& key, const py::handle& mode_arg) {
    const std::string mode = text_arg(mode_arg, "mode");
    const std::string s = to_path(src, "src"), d = to_path(dst, "dst");
    const SecretBytes k = copy_key(key);
    const legacy::Mode m = legacy::parse_mode(mode);
    py::gil_scoped_release nogil;
    about_file(s, [&] { legacy::mindspore_encrypt_file(s, d, m, view_of(k)); });
  }, py::arg("src"), py::arg("dst"), py::arg("key"), py::arg("mode"));

  m.def("is_encrypted", [](const py::handle& path) {
    const std::string p = to_path(path);
    py::gil_scoped_release nogil;
    return about_file(p, [&] { return is_encrypted(p); });
  }, py::arg("path"));

  m.def("inspect", [](const py::handle& path) {
    const std::string p = to_path(path);
    FileInfo info;
    {
      py::gil_scoped_release nogil;
      info = about_file(p, [&] { return inspect_file(p); });
    }
    py::dict d = header_fields(info.header, info.file_length);
    d["signer"] = info.has_signer ? py::object(py::bytes(reinterpret_cast<const char*>(info.signer.data()), info.signer.size()))
                                  : py::object(py::none());
    return d;
  }, py::arg("path"));

  // inspect over a Python reader (a URL's RangeReader): read(offset, n) -> bytes, `size` bytes in all.
  m.def("inspect_source", [](const py::object& read, const py::handle& size) {
    if (!PyCallable_Check(read.ptr())) raise(PyExc_TypeError, "read must be callable: read(offset, n) -> bytes");
    const PythonReadSource source(read, u64_arg(size, "size"));
    FileInfo info;
    try {
      py::gil_scoped_release nogil;
      info = inspect_source(source);
    } catch (const Error&) {
      source.reraise();
      throw;
    }
    py::dict d = header_fields(info.header, info.file_length);
    d["signer"] = info.has_signer ? py::object(py::bytes(reinterpret_cast<const char*>(info.signer.data()), info.signer.size()))
                                  : py::object(py::none());
    return d;
  }, py::arg("read"), py::arg("size"));

  m.def("random_bytes", [](const py::handle& length) {  // backs generate_key(): filled in place, no unwiped copy
    const size_t n = static_cast<size_t>(u64_arg(length, "n", 1u << 20));
    py::bytes out(nullptr, n);
    crypto::random_bytes(reinterpret_cast<uint8_t*>(PyBytes_AS_STRING(out.ptr())), n);
    return out;
  }, py::arg("n"));

  // Raw primitives, for known-answer tests (Wycheproof) of the exact code the format uses.
  py::module_ prim = m.def_submodule("primitives", "AES-GCM / HKDF / HMAC primitives of the core (for tests)");
  prim.def("aes_gcm_encrypt", [](const py::handle& key, const py::handle& iv, const py::handle& aad, const py::handle& pt) {
    const std::string k = bytes_arg(key, "key"), n = bytes_arg(iv, "iv"), a = bytes_arg(aad, "aad"), p = bytes_arg(pt, "plaintext");
    crypto::AesGcm gcm(view_of(k));
    std::string ct(p.size(), '\0');
    uint8_t tag[crypto::kGcmTagSize];
    gcm.encrypt(view_of(n), view_of(a),
                reinterpret_cast<const uint8_t*>(p.data()), reinterpret_cast<uint8_t*>(ct.data()), p.size(), tag);
    return py::make_tuple(py::bytes(ct), py::bytes(reinterpret_cast<const char*>(tag), sizeof tag));
  }, py::arg("key"), py::arg("iv"), py::arg("aad"), py::arg("plaintext"));
  prim.def("aes_gcm_decrypt", [](const py::handle& key, const py::handle& iv, const py::handle& aad, const py::handle& ct,
                                 const py::handle& tag) {
    const std::string k = bytes_arg(key, "key"), n = bytes_arg(iv, "iv"), a = bytes_arg(aad, "aad");
    const std::string c = bytes_arg(ct, "ciphertext"), t = bytes_arg(tag, "tag");
    if (t.size() != crypto::kGcmTagSize) throw Error(Status::invalid_argument, "tag must be 16 bytes");
    crypto::AesGcm gcm(view_of(k));
    std::string pt(c.size(), '\0');
    if (!gcm.decrypt(view_of(n), view_of(a),
                     reinterpret_cast<const uint8_t*>(c.data()), reinterpret_cast<uint8_t*>(pt.data()), c.size(),
                     reinterpret_cast<const uint8_t*>(t.data()))) {
      throw Error(Status::auth_failed, "AES-GCM tag mismatch");
    }
    return py::bytes(pt);
  }, py::arg("key"), py::arg("iv"), py::arg("aad"), py::arg("ciphertext"), py::arg("tag"));
  prim.def("hkdf_sha256", [](const py::handle& ikm, const py::handle& salt, const py::handle& info, const py::handle& length_arg) {
    const std::string i = bytes_arg(ikm, "ikm"), s = bytes_arg(salt, "salt"), f = bytes_arg(info, "info");
    const size_t length = static_cast<size_t>(u64_arg(length_arg, "length"));
    const SecretBytes out = crypto::hkdf_sha256(view_of(i),
                                                view_of(s),
                                                view_of(f), length);
    return py::bytes(reinterpret_cast<const char*>(out.data()), out.size());
  }, py::arg("ikm"), py::arg("salt"), py::arg("info"), py::arg("length"));
  prim.def("hmac_sha256", [](const py::handle& key, const py::handle& data) {
    const std::string k = bytes_arg(key, "key"), d = bytes_arg(data, "data");
    uint8_t out[crypto::kSha256Size];
    crypto::hmac_sha256(view_of(k), view_of(d), out);
    return py::bytes(reinterpret_cast<const char*>(out), sizeof out);
  }, py::arg("key"), py::arg("data"));
}
