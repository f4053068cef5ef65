// A Python callable read(offset, n) -> bytes as the core's ByteSource (file objects, URLs): calls
// hold the GIL, so they are serialized; each result is copied into the library's memory at once.
#pragma once
#include <pybind11/pybind11.h>

#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "arguments.hpp"
#include "byte_source.hpp"
#include "errors.hpp"

namespace modelcrypt_core::binding {

namespace py = pybind11;

// A Python callable read(offset, n) -> bytes as the core's ByteSource (calls serialized by the GIL).
class PythonReadSource final : public ByteSource {
 public:
  // Messages name the source by the reader's ``source_name`` (a str: the URL, the file object's name)
  // when it has one, else "the file object". Constructed with the GIL held.
  PythonReadSource(py::object read, uint64_t size) : read_(std::move(read)), size_(size) {
    const py::object name = py::getattr(read_, "source_name", py::none());
    if (py::isinstance<py::str>(name)) {
      name_ = name.cast<std::string>();
    } else if (PyErr_Occurred()) {
      PyErr_Clear();
    }
  }
  ~PythonReadSource() override {
    py::gil_scoped_acquire gil;
    error_.reset();
    read_ = py::object();
  }
  uint64_t size() const noexcept override { return size_; }
  const std::string& path() const noexcept override { return name_; }
  size_t read_at(void* buf, size_t n, uint64_t offset) const override {
    if (n == 0 || offset >= size_) return 0;
    if (n > size_ - offset) n = static_cast<size_t>(size_ - offset);
    py::gil_scoped_acquire gil;
    try {
      const py::object got = read_(offset, n);
      char* data = nullptr;
      Py_ssize_t len = 0;
      if (!PyBytes_Check(got.ptr()) || PyBytes_AsStringAndSize(got.ptr(), &data, &len) != 0) {
        PyErr_Clear();
        throw Error(Status::io, "the reader returned " + std::string(Py_TYPE(got.ptr())->tp_name) + ", not bytes");
      }
      if (static_cast<size_t>(len) > n) {
        throw Error(Status::io, "the reader returned " + std::to_string(len) + " bytes where " + std::to_string(n) +
                                    " were asked for (at offset " + std::to_string(offset) + ")");
      }
      std::memcpy(buf, data, static_cast<size_t>(len));
      return static_cast<size_t>(len);
    } catch (py::error_already_set& e) {
      const std::string what = e.what();
      if (!error_) error_ = std::make_unique<py::error_already_set>(std::move(e));
      throw Error(Status::io, "reading " + std::to_string(n) + " bytes at offset " + std::to_string(offset) +
                                  " failed: " + what);
    }
  }
  // Re-raises the reader's first exception, if it raised one (called with the GIL held).
  void reraise() const {
    if (error_) {
      std::unique_ptr<py::error_already_set> e = std::move(error_);
      throw std::move(*e);
    }
  }

 private:
  py::object read_;
  uint64_t size_;
  std::string name_ = "the file object";
  mutable std::unique_ptr<py::error_already_set> error_;
};


}  // namespace modelcrypt_core::binding
