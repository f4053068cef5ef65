// modelcrypt._core.DecryptedBuffer: decrypted plaintext handed to Python, and the rule that no live
// view of it ever sees the wipe.
#pragma once
#include <pybind11/pybind11.h>

#include <cstddef>
#include <memory>
#include <utility>

#include "container.hpp"

namespace modelcrypt_core::binding {

// The plaintext and its state, shared by the DecryptedBuffer the caller holds and, while anything
// points into the plaintext, by its export handle (see decrypted_buffer.cpp): a second DecryptedBuffer
// object that is Py_buffer.obj of every export (memoryview, np.frombuffer, torch.frombuffer, ...).
//
// close() with no live export wipes. With live exports it raises BufferError and changes nothing,
// as mmap.close() does -- except while an exception is propagating (``__exit__`` of a block that
// raised, close() in an ``except``/``finally``), where raising would replace the caller's exception:
// then the buffer is closed for new access and wiped when the last export is released. When the
// last object referring to the plaintext goes, it is wiped in any case (SecureBuffer's destructor).
struct PlaintextState {
  Decrypted contents;
  bool closed = false;
  bool wipe_on_last_release = false;
  PyObject* export_handle = nullptr;  // borrowed; null while nothing is exported

  // References to the export handle: one per Py_buffer over the plaintext, plus one per consumer
  // (torch) that kept Py_buffer.obj after releasing its Py_buffer.
  size_t live_exports() const noexcept;
  void check_open() const;
  void close(bool exception_propagating);
  void export_handle_gone() noexcept;
};

struct DecryptedBuffer {
  std::shared_ptr<PlaintextState> state = std::make_shared<PlaintextState>();
  bool is_export_handle = false;

  DecryptedBuffer() = default;
  DecryptedBuffer(std::shared_ptr<PlaintextState> s, bool handle) : state(std::move(s)), is_export_handle(handle) {}
  DecryptedBuffer(const DecryptedBuffer&) = delete;
  DecryptedBuffer& operator=(const DecryptedBuffer&) = delete;
  ~DecryptedBuffer() {
    if (is_export_handle) state->export_handle_gone();
  }
  Decrypted& contents() noexcept { return state->contents; }
};

void bind_decrypted_buffer(pybind11::module_& m);

}  // namespace modelcrypt_core::binding
