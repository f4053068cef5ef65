// Binding of RandomAccessFile as _core.open_encrypted(path, key, mode) -> _core.EncryptedFileHandle.
// Every argument is taken as a plain Python object and converted here, so a wrong type is a
// TypeError naming the parameter, never pybind11's "Invoked with: <arguments>" (which would print
// the key). I/O and crypto run with the GIL released.
#include "bind_random_access.hpp"

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "arguments.hpp"
#include "bind_recipients.hpp"
#include "crypto.hpp"
#include "errors.hpp"
#include "file_errors.hpp"
#include "python_source.hpp"
#include "random_access.hpp"
#include "source_access.hpp"

namespace py = pybind11;
using namespace modelcrypt_core;
using namespace modelcrypt_core::binding;

namespace {

// threads: any count up to 2**64-1 means "that many", capped at 1024 (0: all cores).
unsigned threads_arg(const py::handle& obj) {
  return static_cast<unsigned>(std::min<uint64_t>(u64_arg(obj, "threads"), 1024));
}

// The Python-side handle: close() drops the file; calls in flight keep it alive until they end.
// File: RandomAccessFile (a path) or SourceFile (a Python reader, whose exceptions are re-raised).
template <class File>
struct Handle {
  std::shared_ptr<const File> file;
  std::shared_ptr<const PythonReadSource> python_source;  // SourceFile: the reader behind it
  std::mutex mutex;

  std::shared_ptr<const File> get() {
    std::lock_guard<std::mutex> lock(mutex);
    if (!file) throw py::value_error("I/O operation on a closed EncryptedFile");
    return file;
  }
  void close() {
    std::shared_ptr<const File> old;
    {
      std::lock_guard<std::mutex> lock(mutex);
      old.swap(file);
    }
    if (old) {
      py::gil_scoped_release nogil;
      old.reset();  // closes the source and wipes the keys (unless a read in flight still holds it)
    }
  }
  // Runs fn (GIL released); a failure caused by the Python reader re-raises the reader's exception.
  template <class Fn>
  auto run(const std::string& where, Fn&& fn) -> decltype(fn()) {
    try {
      py::gil_scoped_release nogil;
      return about_file(where, fn);
    } catch (const py::error_already_set&) {
      throw;
    } catch (...) {
      if (python_source) python_source->reraise();
      throw;
    }
  }
};

// What both handle types offer: ranges, lengths, the authenticated header.
template <class File>
void bind_common(py::class_<Handle<File>, std::shared_ptr<Handle<File>>>& cls,
                 const std::function<py::object(Decrypted&&)>& wrap) {
  using H = Handle<File>;
  cls.def("read_range", [wrap](H& self, py::object offset, py::object length, py::object threads) {
        const uint64_t o = u64_arg(offset, "offset"), n = u64_arg(length, "length");
        const unsigned t = threads_arg(threads);
        auto file = self.get();
        Decrypted d = self.run(file->path(), [&] { return file->read_range(o, n, t); });
        return wrap(std::move(d));
      }, py::arg("offset"), py::arg("length"), py::arg("threads"))
      .def("read_range_into", [](H& self, py::object offset, py::object out, py::object threads) {
        const uint64_t o = u64_arg(offset, "offset");
        const unsigned t = threads_arg(threads);
        const WritableBuffer buffer(out, "out");
        const auto file = self.get();
        self.run(file->path(), [&] { file->read_range_into(o, buffer.size(), buffer.data(), t); });
      }, py::arg("offset"), py::arg("out"), py::arg("threads"))
      .def("close", &H::close)
      .def_property_readonly("closed", [](H& self) {
        std::lock_guard<std::mutex> lock(self.mutex);
        return !self.file;
      })
      .def_property_readonly("path", [](H& self) { return py::bytes(self.get()->path()); })
      .def_property_readonly("plaintext_length", [](H& self) { return self.get()->header().plaintext_length; })
      .def_property_readonly("chunk_size", [](H& self) { return self.get()->header().chunk_size; })
      .def_property_readonly("chunk_count", [](H& self) { return self.get()->header().chunk_count(); })
      .def_property_readonly("file_length", [](H& self) { return self.get()->file_length(); })
      .def_property_readonly("header_info", [](H& self) {
        const auto file = self.get();
        return header_fields(file->header(), file->file_length());
      })
      .def_property_readonly("metadata_raw", [](H& self) {
        const auto file = self.get();
        const auto& md = file->header().metadata;
        return py::bytes(reinterpret_cast<const char*>(md.data()), md.size());
      });
}

}  // namespace

py::dict header_fields(const format::Header& h, uint64_t file_length) {
  py::dict d;
  d["version"] = h.version;
  d["algorithm"] = format::algorithm_name(h.algorithm);
  d["chunk_size"] = h.chunk_size;
  d["plaintext_length"] = h.plaintext_length;
  d["chunk_count"] = h.chunk_count();
  d["header_length"] = h.header_length();
  d["file_length"] = file_length;
  d["expected_file_length"] = h.file_length();
  d["salt"] = py::bytes(reinterpret_cast<const char*>(h.salt.data()), h.salt.size());
  d["key_commitment"] = py::bytes(reinterpret_cast<const char*>(h.commitment.data()), h.commitment.size());
  d["metadata_raw"] = py::bytes(reinterpret_cast<const char*>(h.metadata.data()), h.metadata.size());
  d["recipients_length"] = h.has_recipients() ? py::object(py::int_(h.recipients_block.size())) : py::object(py::none());
  d["recipients"] = stanzas_info(h.stanzas);
  return d;
}

void bind_random_access(py::module_& m, std::function<py::object(Decrypted&&)> wrap) {
  using H = Handle<RandomAccessFile>;
  py::class_<H, std::shared_ptr<H>> cls(m, "EncryptedFileHandle",
      "An encrypted file opened once, its header authenticated once (private; use modelcrypt.open_encrypted).");
  bind_common(cls, wrap);
  // spans: a list of (offset, out) pairs, each out a writable C-contiguous buffer that receives the
  // plaintext [offset, offset + len(out)); all of them decrypted in one pass (read_spans_into).
  cls.def("read_spans_into", [](H& self, py::object spans, py::object threads) {
        if (!PyList_Check(spans.ptr())) raise(PyExc_TypeError, "spans must be a list of (offset, out) pairs");
        const unsigned t = threads_arg(threads);
        std::vector<std::unique_ptr<WritableBuffer>> buffers;  // held (exported) until the call ends
        std::vector<PlaintextSpan> targets;
        for (const py::handle item : spans) {
          if (!PyTuple_Check(item.ptr()) || PyTuple_GET_SIZE(item.ptr()) != 2) {
            raise(PyExc_TypeError, "spans must be a list of (offset, out) pairs");
          }
          const uint64_t o = u64_arg(PyTuple_GET_ITEM(item.ptr(), 0), "offset");
          buffers.push_back(std::make_unique<WritableBuffer>(PyTuple_GET_ITEM(item.ptr(), 1), "out"));
          targets.push_back({o, buffers.back()->size(), buffers.back()->data()});
        }
        const auto file = self.get();
        self.run(file->path(), [&] { file->read_spans_into(std::move(targets), t); });
      }, py::arg("spans"), py::arg("threads"))
      .def("decrypt_to_file", [](H& self, py::object dst, py::object threads, py::object progress,
                                py::object durable) {
        const std::string d = to_path(dst, "dst");
        const unsigned t = threads_arg(threads);
        const bool durable_flag = bool_arg(durable, "durable");
        const Progress hook = python_progress(progress);
        auto file = self.get();
        py::gil_scoped_release nogil;
        about_file(file->path(), [&] { file->decrypt_to_file(d, t, hook, durable_flag); });
      }, py::arg("dst"), py::arg("threads"), py::arg("progress"), py::arg("durable"))
      .def("verify", [](H& self, py::object threads, py::object progress) {
        const unsigned t = threads_arg(threads);
        const Progress hook = python_progress(progress);
        auto file = self.get();
        py::gil_scoped_release nogil;
        about_file(file->path(), [&] { file->verify(t, hook); });
      }, py::arg("threads"), py::arg("progress"))
      .def("reencrypt_to_file", [](H& self, py::object dst, py::object new_key, py::object chunk_size,
                                   py::object metadata, py::object threads, py::object progress, py::object durable,
                                   py::object recipients, py::object signing_key) {
        const std::string d = to_path(dst, "dst"), md = bytes_arg(metadata, "metadata");
        EncryptOptions options;
        options.chunk_size = u32_arg(chunk_size, "chunk_size");
        options.metadata = view_of(md);
        options.threads = threads_arg(threads);
        options.durable = bool_arg(durable, "durable");
        options.progress = python_progress(progress);
        const SecretBytes k = writer_key(new_key, recipients, options);
        options.signing_key = signing_key_arg(signing_key);
        auto file = self.get();
        py::gil_scoped_release nogil;
        about_file(file->path(), [&] { file->reencrypt_to_file(d, view_of(k), options); });
      }, py::arg("dst"), py::arg("new_key"), py::arg("chunk_size"), py::arg("metadata"), py::arg("threads"),
         py::arg("progress"), py::arg("durable"), py::arg("recipients") = py::none(), py::arg("signing_key") = py::none());

  using S = Handle<SourceFile>;
  py::class_<S, std::shared_ptr<S>> source_cls(m, "EncryptedSourceHandle",
      "An encrypted file read through a Python reader (a file object or URL), its header authenticated once "
      "(private; use modelcrypt.open_encrypted).");
  bind_common(source_cls, wrap);

  m.def("open_encrypted", [](py::object path, py::object key, py::object mode) {
    const std::string p = to_path(path, "path"), md = text_arg(mode, "mode");
    const Credential k = copy_credential(key);  // copied into wiping memory before the GIL is released
    auto handle = std::make_shared<H>();
    {
      py::gil_scoped_release nogil;
      handle->file = about_file(p, [&] { return std::make_shared<const RandomAccessFile>(p, k, md); });
    }
    return handle;
  }, py::arg("path"), py::arg("key"), py::arg("mode"));

  // open_encrypted over a Python reader: read(offset, n) -> bytes, `size` bytes in all.
  m.def("open_source", [](py::object read, py::object size, py::object key, py::object mode) {
    if (!PyCallable_Check(read.ptr())) raise(PyExc_TypeError, "read must be callable: read(offset, n) -> bytes");
    const uint64_t n = u64_arg(size, "size");
    const std::string md = text_arg(mode, "mode");
    const Credential k = copy_credential(key);
    auto handle = std::make_shared<S>();
    handle->python_source = std::make_shared<const PythonReadSource>(read, n);
    std::shared_ptr<const ByteSource> source = handle->python_source;
    handle->file = handle->run(source->path(), [&] {
      return std::make_shared<const SourceFile>(source, k, md);
    });
    return handle;
  }, py::arg("read"), py::arg("size"), py::arg("key"), py::arg("mode"));
}
