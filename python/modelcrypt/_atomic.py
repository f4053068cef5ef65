"""Atomic file output for the Python-level writers (the C++ core has its own for its paths).

The data goes to a temporary file beside the destination (".NAME.mctmp-XXXXXXXXXXXX", the same
naming as the core), is fsynced, and is renamed over the destination only when complete: readers
see the old file or the new one, never a part.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

#: Anything memoryview() takes: bytes, bytearray, memoryview, a DecryptedBuffer, a numpy array...
#: (typing's Buffer protocol, collections.abc.Buffer, exists from Python 3.12 only).
Buffer = Any

#: Flags of the temporary file beyond write/create/exclusive: close-on-exec where there is one, and
#: binary mode on Windows (os.open's default there is text mode, which would turn b"\n" into b"\r\n").
_OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def atomic_write(path, data: Buffer | Sequence[Buffer], *, permissions: int = 0o666, exact_permissions: bool = False,
                 replace: bool = True) -> None:
    """Write `data` (any bytes-like object, or a list/tuple of them written in order) to `path`.

    permissions: mode bits for a new file (the umask applies unless exact_permissions).
    replace=False refuses an existing destination with FileExistsError, race-free (link, not rename).
    """
    target = os.fspath(path)
    if not replace and os.path.lexists(target):
        raise FileExistsError(f"{os.fsdecode(target)} exists; refusing to overwrite it")
    directory = os.path.dirname(os.path.abspath(target))
    tmp = os.path.join(directory, f".{os.path.basename(target)}.mctmp-{os.urandom(6).hex()}")
    # one buffer, or a list/tuple of them
    parts: list[Buffer] = list(data) if isinstance(data, (list, tuple)) else [data]
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, permissions)
    try:
        try:
            if exact_permissions:
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, permissions)
                else:  # Windows before Python 3.13 (where only the read-only bit exists anyway)
                    os.chmod(tmp, permissions)
            for part in parts:
                view = memoryview(part).cast("B")
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # FileExistsError if the destination appeared meanwhile
            os.unlink(tmp)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # Windows: a directory cannot be opened (or flushed) like this
        return
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
