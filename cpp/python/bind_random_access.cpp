// Binding of RandomAccessFile as _core.open_encrypted(path, key, mode) -> _core.EncryptedFileHandle.
// Every argument is taken as a plain Python object and converted here, so a wrong type is a
// TypeError naming the parameter, never pybind11's "Invoked with: <arguments>" (which would print
// the key). I/O and crypto run with the GIL released.
#include "bind_random_access.hpp"

#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "crypto.hpp"
#include "errors.hpp"
#include "random_access.hpp"

namespace py = pybind11;
using namespace modelcrypt;

namespace {

class HeldBuffer {
 public:
  HeldBuffer(const py::handle& obj, const char* what) {
    if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_SIMPLE) != 0) {
      PyErr_Clear();
      throw py::type_error(std::string(what) + " must be bytes-like, not " + Py_TYPE(obj.ptr())->tp_name);
    }
  }
  ~HeldBuffer() { PyBuffer_Release(&view_); }
  HeldBuffer(const HeldBuffer&) = delete;
  HeldBuffer& operator=(const HeldBuffer&) = delete;
  ByteView view() const { return {static_cast<const uint8_t*>(view_.buf), static_cast<size_t>(view_.len)}; }

 private:
  Py_buffer view_{};
};

std::string path_arg(const py::handle& obj, const char* what) {
  if (!PyBytes_Check(obj.ptr())) throw py::type_error(std::string(what) + " must be bytes (os.fsencode)");
  return std::string(PyBytes_AS_STRING(obj.ptr()), static_cast<size_t>(PyBytes_GET_SIZE(obj.ptr())));
}

std::string str_arg(const py::handle& obj, const char* what) {
  if (!PyUnicode_Check(obj.ptr())) throw py::type_error(std::string(what) + " must be a str");
  Py_ssize_t n = 0;
  const char* s = PyUnicode_AsUTF8AndSize(obj.ptr(), &n);
  if (s == nullptr) throw py::error_already_set();
  return std::string(s, static_cast<size_t>(n));
}

uint64_t uint_arg(const py::handle& obj, const char* what) {
  if (!PyLong_Check(obj.ptr()) || PyBool_Check(obj.ptr())) throw py::type_error(std::string(what) + " must be an int");
  const unsigned long long v = PyLong_AsUnsignedLongLong(obj.ptr());
  if (v == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
    PyErr_Clear();
    throw py::value_error(std::string(what) + " must be between 0 and 2**64-1");
  }
  return static_cast<uint64_t>(v);
}

unsigned threads_arg(const py::handle& obj) {
  const uint64_t t = uint_arg(obj, "threads");
  return static_cast<unsigned>(std::min<uint64_t>(t, 1024));
}

bool bool_arg(const py::handle& obj, const char* what) {
  if (!PyBool_Check(obj.ptr())) throw py::type_error(std::string(what) + " must be True or False");
  return obj.ptr() == Py_True;
}

// Between batches: Ctrl-C and the optional Python callback (as bindings.cpp does for streaming calls).
Progress python_progress(py::handle callback) {
  return [callback](uint64_t bytes_done) {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (!callback.is_none()) callback(bytes_done);
  };
}

// The Python-side handle: close() drops the file; calls in flight keep it alive until they end.
struct Handle {
  std::shared_ptr<const RandomAccessFile> file;
  std::mutex mutex;

  std::shared_ptr<const RandomAccessFile> get() {
    std::lock_guard<std::mutex> lock(mutex);
    if (!file) throw py::value_error("I/O operation on a closed EncryptedFile");
    return file;
  }
  void close() {
    std::shared_ptr<const RandomAccessFile> old;
    {
      std::lock_guard<std::mutex> lock(mutex);
      old.swap(file);
    }
    if (old) {
      py::gil_scoped_release nogil;
      old.reset();  // closes the descriptor and wipes the keys (unless a read in flight still holds it)
    }
  }
};

}  // namespace

void bind_random_access(py::module_& m, std::function<py::object(Decrypted&&)> wrap) {
  py::class_<Handle, std::shared_ptr<Handle>> cls(m, "EncryptedFileHandle",
      "An encrypted file opened once, its header authenticated once (private; use modelcrypt.open_encrypted).");
  cls.def("read_range", [wrap](Handle& self, py::object offset, py::object length, py::object threads) {
        const uint64_t o = uint_arg(offset, "offset"), n = uint_arg(length, "length");
        const unsigned t = threads_arg(threads);
        auto file = self.get();
        Decrypted d;
        {
          py::gil_scoped_release nogil;
          d = file->read_range(o, n, t);
        }
        return wrap(std::move(d));
      }, py::arg("offset"), py::arg("length"), py::arg("threads"))
      .def("decrypt_to_file", [](Handle& self, py::object dst, py::object threads, py::object progress,
                                 py::object durable) {
        const std::string d = path_arg(dst, "dst");
        const unsigned t = threads_arg(threads);
        const bool durable_flag = bool_arg(durable, "durable");
        const Progress hook = python_progress(progress);
        auto file = self.get();
        py::gil_scoped_release nogil;
        file->decrypt_to_file(d, t, hook, durable_flag);
      }, py::arg("dst"), py::arg("threads"), py::arg("progress"), py::arg("durable"))
      .def("verify", [](Handle& self, py::object threads, py::object progress) {
        const unsigned t = threads_arg(threads);
        const Progress hook = python_progress(progress);
        auto file = self.get();
        py::gil_scoped_release nogil;
        file->verify(t, hook);
      }, py::arg("threads"), py::arg("progress"))
      .def("close", &Handle::close)
      .def_property_readonly("closed", [](Handle& self) {
        std::lock_guard<std::mutex> lock(self.mutex);
        return !self.file;
      })
      .def_property_readonly("path", [](Handle& self) { return py::bytes(self.get()->path()); })
      .def_property_readonly("plaintext_length", [](Handle& self) { return self.get()->header().plaintext_length; })
      .def_property_readonly("chunk_size", [](Handle& self) { return self.get()->header().chunk_size; })
      .def_property_readonly("chunk_count", [](Handle& self) { return self.get()->header().chunk_count(); })
      .def_property_readonly("file_length", [](Handle& self) { return self.get()->file_length(); })
      .def_property_readonly("metadata_raw", [](Handle& self) {
        const auto file = self.get();
        const auto& md = file->header().metadata;
        return py::bytes(reinterpret_cast<const char*>(md.data()), md.size());
      });

  m.def("open_encrypted", [](py::object path, py::object key, py::object mode) {
    const std::string p = path_arg(path, "path"), md = str_arg(mode, "mode");
    SecretBytes k;
    {
      HeldBuffer kb(key, "key");  // copied into wiping memory before the GIL is released
      k = SecretBytes(kb.view().data, kb.view().data + kb.view().size);
    }
    auto handle = std::make_shared<Handle>();
    {
      py::gil_scoped_release nogil;
      handle->file = std::make_shared<const RandomAccessFile>(p, ByteView{k.data(), k.size()}, md);
    }
    return handle;
  }, py::arg("path"), py::arg("key"), py::arg("mode"));
}
