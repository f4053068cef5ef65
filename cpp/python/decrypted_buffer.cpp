// Binding of DecryptedBuffer (decrypted_buffer.hpp) and of its export handle.
//
// Why an export handle: consumers of the buffer protocol do not all keep their Py_buffer.
// torch.frombuffer (and numpy's frombuffer, for exporters without bf_releasebuffer) release it at once
// and keep only a reference to Py_buffer.obj, so counting getbuffer/releasebuffer calls would miss
// them and close() would wipe memory a tensor still reads: silent zeros. So Py_buffer.obj of every
// export is one handle per plaintext, created on the first export: another DecryptedBuffer object on
// the same PlaintextState, whose lifetime is exactly "something still points into the plaintext".
// (So memoryview(buf).obj is a DecryptedBuffer of the same bytes, not `buf` itself.)
#include "decrypted_buffer.hpp"

#include <memory>
#include <string>

#include "arguments.hpp"

namespace py = pybind11;

namespace modelcrypt_core::binding {

namespace {

// Buffer protocol: writable, one-dimensional bytes. Accessing a closed buffer raises ValueError
// (pybind11's own def_buffer would turn that into BufferError).
extern "C" int decrypted_buffer_getbuffer(PyObject* obj, Py_buffer* view, int flags) {
  view->obj = nullptr;
  try {
    const std::shared_ptr<PlaintextState> state = py::cast<DecryptedBuffer*>(py::handle(obj))->state;
    if (state->closed) {
      PyErr_SetString(PyExc_ValueError, "I/O operation on a closed DecryptedBuffer");
      return -1;
    }
    py::object handle;
    if (state->export_handle != nullptr) {
      handle = py::reinterpret_borrow<py::object>(state->export_handle);
    } else {
      handle = py::cast(std::make_unique<DecryptedBuffer>(state, true));
      state->export_handle = handle.ptr();
    }
    const Decrypted& d = state->contents;
    // PyBuffer_FillInfo takes its own reference to `handle`; ours goes at the end of this scope.
    return PyBuffer_FillInfo(view, handle.ptr(), const_cast<uint8_t*>(d.data()), static_cast<Py_ssize_t>(d.size()),
                             0, flags);
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (...) {
    PyErr_SetString(PyExc_BufferError, "cannot export a DecryptedBuffer");
  }
  return -1;
}

// numpy wraps an exporter in a memoryview (which keeps the Py_buffer) only when its type has a
// bf_releasebuffer. Nothing to do here: what counts is the lifetime of the export handle.
extern "C" void decrypted_buffer_releasebuffer(PyObject*, Py_buffer*) {}

// `self` of a DecryptedBuffer method, taken as py::handle so that a call with a wrong `self` or with
// extra arguments never reaches pybind11's "Invoked with: ..." message (which would show them).
PlaintextState& buffer_self(const py::handle& self) {
  if (!py::isinstance<DecryptedBuffer>(self)) raise(PyExc_TypeError, "expected a modelcrypt.DecryptedBuffer");
  return *self.cast<DecryptedBuffer&>().state;
}

void no_arguments(const py::args& args, const py::kwargs& kwargs, const char* name) {
  if (!args.empty() || !kwargs.empty()) raise(PyExc_TypeError, std::string(name) + "() takes no arguments");
}

// True inside an `except` or a `finally` entered by an exception (sys.exc_info() is set).
bool exception_being_handled() {
  PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
  PyErr_GetExcInfo(&type, &value, &traceback);
  const bool handled = value != nullptr && value != Py_None;
  Py_XDECREF(type);
  Py_XDECREF(value);
  Py_XDECREF(traceback);
  return handled;
}

}  // namespace

size_t PlaintextState::live_exports() const noexcept {
  return export_handle == nullptr ? 0 : static_cast<size_t>(Py_REFCNT(export_handle));
}

void PlaintextState::check_open() const {
  if (closed) throw py::value_error("I/O operation on a closed DecryptedBuffer");
}

void PlaintextState::close(bool exception_propagating) {
  if (closed) return;
  if (export_handle == nullptr) {
    contents.plaintext.wipe();
    closed = true;
    return;
  }
  if (exception_propagating) {
    closed = true;
    wipe_on_last_release = true;
    return;
  }
  const size_t n = live_exports();
  raise(PyExc_BufferError,
        "cannot close: " + std::to_string(n) + (n == 1 ? " exported view still exists" : " exported views still exist") +
            " (memoryview, numpy array, tensor, ... of this DecryptedBuffer); release them (del arr / mv.release()) "
            "or copy what you need (np.array(view, copy=True)) before closing. The buffer stays open and intact.");
}

void PlaintextState::export_handle_gone() noexcept {
  export_handle = nullptr;
  if (wipe_on_last_release) {
    contents.plaintext.wipe();
    wipe_on_last_release = false;
  }
}

void bind_decrypted_buffer(py::module_& m) {
  py::class_<DecryptedBuffer> buffer_class(m, "DecryptedBuffer", py::buffer_protocol(),
      "Decrypted bytes owned by modelcrypt: buffer protocol, len(), close() wipes them.");
  auto* type = reinterpret_cast<PyTypeObject*>(buffer_class.ptr());
  type->tp_as_buffer->bf_getbuffer = decrypted_buffer_getbuffer;
  type->tp_as_buffer->bf_releasebuffer = decrypted_buffer_releasebuffer;
  PyType_Modified(type);
  buffer_class
      .def("__len__", [](const py::handle& self, const py::args& args, const py::kwargs& kwargs) {
        no_arguments(args, kwargs, "__len__");
        const PlaintextState& buf = buffer_self(self);
        buf.check_open();
        return buf.contents.size();
      })
      .def("close", [](const py::handle& self, const py::args& args, const py::kwargs& kwargs) {
        no_arguments(args, kwargs, "close");
        buffer_self(self).close(exception_being_handled());
      }, "Wipe the plaintext (zeros, pages returned to the OS). Later access raises ValueError.\n\n"
         "While views of it exist (memoryview, np.frombuffer, torch.frombuffer, ...) it raises BufferError\n"
         "and leaves the buffer open and intact; inside an except/finally (an exception propagating) it\n"
         "closes it for new access instead and wipes it when the last view is released.")
      .def_property_readonly("closed", [](const py::handle& self) { return buffer_self(self).closed; })
      .def_property_readonly("exports", [](const py::handle& self) { return buffer_self(self).live_exports(); },
          "How many live views (memoryviews, arrays, tensors) point into the plaintext; close() needs 0.")
      .def_property_readonly("format", [](const py::handle& self) { return buffer_self(self).contents.format; })
      .def_property_readonly("cipher", [](const py::handle& self) { return buffer_self(self).contents.cipher; })
      .def_property_readonly("insecure_reason", [](const py::handle& self) { return buffer_self(self).contents.insecure; })
      .def_property_readonly("metadata_raw", [](const py::handle& self) {
        const auto& md = buffer_self(self).contents.metadata;
        return py::bytes(reinterpret_cast<const char*>(md.data()), md.size());
      })
      .def("__enter__", [](const py::handle& self, const py::args& args, const py::kwargs& kwargs) {
        no_arguments(args, kwargs, "__enter__");
        buffer_self(self);
        return py::reinterpret_borrow<py::object>(self);
      })
      .def("__exit__", [](const py::handle& self, const py::args& args, const py::kwargs&) {
        const bool propagating = !args.empty() && !args[0].is_none();
        buffer_self(self).close(propagating);
        return false;
      });
}

}  // namespace modelcrypt_core::binding
