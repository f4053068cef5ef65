"""Decrypting into memory the caller already owns: ``load_into(path, key, out) -> int``.

Loading weights into an instantiated model through ``load`` costs the plaintext buffer plus the
model's own parameters. ``load_into`` decrypts straight into the caller's writable buffer instead
(bytearray, numpy array, mmap, memoryview, a torch tensor on the CPU): the ciphertext is read in
bounded batches into modelcrypt's memory, every chunk is decrypted in a chunk-sized scratch buffer
and authenticated there, and only then copied into ``out``. So ``out`` only ever holds
authenticated plaintext, and the extra memory stays at a few MiB whatever the file's size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from ._api import Credential, Mode, StrPath, _check_threads
from ._random_access import _check_uint, open_encrypted

__all__ = ["load_into"]


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "data_ptr")


def torch_bytes(t: Any, name: str) -> np.ndarray:
    """A CPU, contiguous torch tensor's memory (or a storage's) as a writable 1-d uint8 numpy array (no copy)."""
    import torch  # reached only for torch tensors, so torch is installed

    if isinstance(t, torch.TypedStorage):
        t = t.untyped()  # (TypedStorage has no untyped_storage())
    if isinstance(t, torch.UntypedStorage):  # a tensor's storage: all of its bytes
        t = torch.empty(0, dtype=torch.uint8, device=t.device).set_(t)
    t = t.detach()
    if t.device.type != "cpu":
        raise ValueError(f"{name} is a torch tensor on {t.device}; modelcrypt decrypts into CPU memory only "
                         "(load into a CPU tensor, then move it)")
    if t.layout != torch.strided:
        raise ValueError(f"{name} is a {t.layout} torch tensor; only dense (strided) tensors can be loaded into")
    if not t.is_contiguous():
        raise ValueError(f"{name} is not contiguous: decrypting into it would scatter bytes; pass a contiguous "
                         "tensor (e.g. t.contiguous(), then copy back)")
    if t.is_conj() or t.is_neg():
        raise ValueError(f"{name} has a lazy conjugate/negative bit set; resolve it first (t.resolve_conj())")
    return t.reshape(-1).view(torch.uint8).numpy()


def numpy_bytes(a: np.ndarray, name: str) -> np.ndarray:
    """A numpy array's memory as a writable 1-d uint8 array (no copy)."""
    if not a.flags.writeable:
        raise TypeError(f"{name} is a read-only numpy array; pass a writable one")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} is not C-contiguous: decrypting into it would scatter bytes; pass a "
                         "C-contiguous array (np.ascontiguousarray, then copy back)")
    return a.reshape(-1).view(np.uint8)


@contextlib.contextmanager
def writable_bytes(out: Any, name: str = "out") -> Iterator[Any]:
    """``out`` as a writable, C-contiguous 1-d buffer of bytes (no copy), released on exit (so that an
    mmap can be closed afterwards). TypeError for read-only or non-buffer objects, ValueError for
    non-contiguous ones."""
    if _is_torch_tensor(out):
        yield torch_bytes(out, name)
        return
    if isinstance(out, np.ndarray):
        yield numpy_bytes(out, name)
        return
    try:
        view = memoryview(out)
    except TypeError:
        raise TypeError(f"{name} must be a writable buffer (bytearray, numpy array, mmap, memoryview) or a torch "
                        f"tensor, not {type(out).__name__}") from None
    with view:
        if view.readonly:
            raise TypeError(f"{name} is read-only ({type(out).__name__}); pass a writable buffer such as a "
                            "bytearray or numpy array")
        if not view.c_contiguous:
            raise ValueError(f"{name} is not C-contiguous; pass a contiguous buffer")
        flat = view if view.ndim == 1 and view.format == "B" else view.cast("B")
        try:
            yield flat
        finally:
            flat.release()


def load_into(path: StrPath | Any, key: Credential | None, out: Any, mode: Mode = "AES-GCM", *,
              identity: object = None, trusted_signers: list | None = None, threads: int | None = None,
              offset: int = 0, length: int | None = None) -> int:
    """Decrypt a modelcrypt file straight into ``out``, memory the caller owns; returns the bytes written.

    ``out``: any writable C-contiguous buffer (bytearray, numpy array, mmap, memoryview), a CPU,
    contiguous torch tensor (any dtype, bf16 included: its bytes are written; pinned memory too) or a
    tensor's storage (``t.untyped_storage()``). The plaintext bytes
    ``[offset, offset + length)`` (``length`` None: to the end) go to the first ``length`` bytes of
    ``out``; the rest of ``out`` is left as it was. Checked before anything is decrypted: a
    read-only ``out`` is a TypeError, a non-contiguous one a ValueError, one smaller than the bytes
    to write a ValueError naming both sizes, a range outside the plaintext a ValueError.

    No second copy of the plaintext exists: the ciphertext is read in bounded batches into
    modelcrypt's memory, each chunk decrypted and authenticated in a chunk-sized scratch buffer of
    its thread, and only then copied into ``out`` (so ``out`` only ever holds authenticated bytes).
    Raises KeyMismatchError for a wrong key, AuthenticationError for modified or truncated data
    (the file changed while it was read, too), FormatError for a file that is not a modelcrypt
    file; on any error every byte of ``out`` that was to be written is zeroed before the exception,
    so no partial plaintext is left behind. ``out`` must not be used by anyone else meanwhile.
    ``identity``, ``trusted_signers`` and a URL or file object as ``path`` work as for ``load``;
    ``mode`` must be "AES-GCM" (legacy formats and custom ciphers decrypt whole: use ``load``).
    """
    offset = _check_uint(offset, "offset")
    if length is not None:
        length = _check_uint(length, "length")
    _check_threads(threads)
    with writable_bytes(out) as dst:
        capacity = dst.nbytes
        if length is not None and length > capacity:  # known before the file is even opened
            raise ValueError(f"out holds {capacity} bytes but {length} are to be written into it")
        with open_encrypted(path, key, mode, identity=identity, trusted_signers=trusted_signers) as f:
            total = f.plaintext_length
            if offset > total:
                raise ValueError(f"offset {offset} is past the end of the {total}-byte plaintext")
            n = total - offset if length is None else length
            if n > total - offset:
                raise ValueError(f"range [{offset}, {offset}+{n}) is outside the {total}-byte plaintext")
            if n > capacity:
                raise ValueError(f"out holds {capacity} bytes but the plaintext to write into it is {n} bytes")
            f.read_range_into(offset, dst[:n], threads=threads)
    return n

