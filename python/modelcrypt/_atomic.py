"""Atomic file output for the Python-level writers (the C++ core has its own for its paths).

The data goes to a temporary file beside the destination (".NAME.mctmp-XXXXXXXXXXXX", the same
naming as the core; or, for install_streamed where the system has it, an unnamed O_TMPFILE file),
is fsynced, and is renamed over the destination only when complete: readers see the old file or
the new one, never a part. atomic_write writes bytes already in memory; install_streamed writes
what a callback streams into the file (the decryption of a URL, block by block).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any, Callable

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
    fsync_directory(directory)


def fsync_directory(directory: str) -> None:
    """fsync a directory (a rename or link in it made durable); best effort, a no-op on Windows."""
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


def write_all(fd: int, block: Buffer) -> None:
    """Write all of ``block`` to ``fd`` (every view of it released before it returns, so the block
    may be wiped)."""
    with memoryview(block) as view:
        done = 0
        while done < len(view):
            with view[done:] as rest:
                done += os.write(fd, rest)


def install_streamed(dst: str, write: Callable[[int], Any], *, durable: bool = True, replace: bool = True) -> None:
    """``write(fd)`` into a new file beside ``dst`` (mode 0600), then fsync (``durable``) and give it
    ``dst``'s name: as the core does, an unnamed O_TMPFILE file linked into place (a hard kill leaves
    nothing), else ".NAME.mctmp-XXXXXXXXXXXX" renamed. With ``replace=False`` an existing file is never
    replaced (link, not rename: FileExistsError, race-free). On any failure, ``write``'s included, the
    temporary file is removed: ``dst`` is either untouched or complete."""
    directory = os.path.dirname(os.path.abspath(dst))
    named = os.path.join(directory, f".{os.path.basename(dst)}.mctmp-{os.urandom(6).hex()}")
    tmp = None  # the temporary name, while one exists
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600)
        if not os.path.exists(f"/proc/self/fd/{fd}"):  # linked through /proc: without it, a name
            os.close(fd)
            raise OSError("no /proc/self/fd")
    except (AttributeError, OSError):  # no O_TMPFILE here (or on this filesystem)
        fd = os.open(named, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600)
        tmp = named
    try:
        try:
            if hasattr(os, "fchmod"):  # (Windows has none: the file takes its directory's ACL)
                os.fchmod(fd, 0o600)
            write(fd)
            if durable:
                os.fsync(fd)
            if tmp is None:  # unnamed: linked to a name through /proc
                if not replace:
                    _link_new(f"/proc/self/fd/{fd}", dst)
                    return
                _link(f"/proc/self/fd/{fd}", named)
                tmp = named
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, dst)
        else:
            _link_new(tmp, dst)
            os.unlink(tmp)
        tmp = None
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    finally:
        if tmp is None and durable:
            fsync_directory(directory)


def _link(src: str, dst: str) -> None:
    """linkat(src, dst, AT_SYMLINK_FOLLOW): a dir fd makes os.link use linkat (plain link() does not
    follow /proc/self/fd/N to the unnamed file). Windows has no directory fds (and no /proc): a plain
    hard link of the named temporary file."""
    if not hasattr(os, "O_DIRECTORY"):
        os.link(src, dst)
        return
    dfd = os.open(os.path.dirname(os.path.abspath(dst)), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.link(src, os.path.basename(dst), dst_dir_fd=dfd, follow_symlinks=True)
    finally:
        os.close(dfd)


def _link_new(src: str, dst: str) -> None:
    try:
        _link(src, dst)
    except FileExistsError:  # it appeared meanwhile
        raise FileExistsError(f"{dst} exists; refusing to overwrite it") from None
