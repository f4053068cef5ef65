"""Checking destinations and converting a file or mirroring a directory into a new tree, atomically."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from typing import Callable

from .._tree import excluded as _excluded, install_tree, same_or_inside as _same_or_inside, walk as _walk
from ..exceptions import ModelCryptError
from ._common import _data_error, _info, _Progress, _umask, _usage


def _file_destination(src: str, dst: str, name: Callable[[str], str]) -> str:
    """Like cp: a file SRC and an existing directory DST (or a DST ending in /) means DST/name(SRC)."""
    if os.path.isdir(src) or not (dst.endswith("/") or os.path.isdir(dst)):
        return dst
    if not os.path.isdir(dst):
        raise _usage(f"{dst} is not an existing directory; create it first, or give -o DIR/NAME")
    return os.path.join(dst, name(os.path.basename(os.path.abspath(src))))


def _check_destination(args: argparse.Namespace, src: str, dst: str) -> None:
    if _same_or_inside(dst, src) and (os.path.isdir(src) or os.path.realpath(dst) == os.path.realpath(src)):
        raise _usage(f"destination {dst} is the source or lies inside it")
    if os.path.lexists(dst):
        if not args.force:
            raise _usage(f"{dst} exists; use --force to replace it")
        if os.path.isdir(dst) != os.path.isdir(src):
            raise _usage(f"{dst} exists and is {'a directory' if os.path.isdir(dst) else 'a file'}; "
                         f"remove it first")


def _mirror(args: argparse.Namespace, src: str, dst: str, convert: Callable, dir_mode: int, verb: str,
            check: Callable | None = None, finish: Callable | None = None) -> int:
    """Builds dst as a mirror of directory src in a temporary directory, then moves it into place.
    convert(path, out, progress, rel) converts one file; check(plan) runs before any file is
    converted, finish(tmp) after the last one, before the tree is moved into place."""
    plan = []
    for kind, rel in _walk(src):
        if kind == "symlink":
            _info(args, f"skipped symlink: {rel}")
        elif kind == "other":
            _info(args, f"skipped special file: {rel}")
        elif (kind == "file" and _excluded(rel, getattr(args, "exclude", None) or [])
              and not getattr(args, "copy_excluded", False)):  # with --copy-excluded, convert copies it
            _info(args, f"excluded: {rel}")
        else:
            plan.append((kind, rel))
    if check is not None:
        try:
            plan = check(plan)
        except ModelCryptError as exc:
            raise _data_error(src, exc) from None
    total = sum(os.lstat(os.path.join(src, rel)).st_size for kind, rel in plan if kind == "file")
    parent = os.path.dirname(os.path.abspath(dst))
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(dst))}.mctmp-", dir=parent)
    progress = _Progress(args, total, verb, force=True)
    count = 0
    try:
        os.chmod(tmp, dir_mode & ~_umask())
        for kind, rel in plan:
            out = os.path.join(tmp, rel)
            if kind == "dir":
                os.mkdir(out, dir_mode)
                continue
            path = os.path.join(src, rel)
            try:
                convert(path, out, progress.callback(), rel)
            except ModelCryptError as exc:
                raise _data_error(path, exc) from None
            progress.file_done(os.lstat(path).st_size)
            count += 1
        if finish is not None:
            finish(tmp)
        install_tree(tmp, dst)  # with --force, the old tree goes only now
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        progress.close()
    return count


def _convert_path(args: argparse.Namespace, src: str, dst: str, convert: Callable, dir_mode: int, verb: str,
                  convert_member: Callable | None = None, check: Callable | None = None,
                  finish: Callable | None = None) -> None:
    """Runs convert(src_file, dst_file, progress) on a file, or mirrors a directory with
    convert_member(path, out, progress, rel) (see _mirror)."""
    if os.path.isdir(src):
        assert convert_member is not None  # (given by every command that takes a directory)
        n = _mirror(args, src, dst, convert_member, dir_mode, verb, check, finish)
        _info(args, f"{verb}ed {n} file(s) into {dst}")
        return
    progress = _Progress(args, os.path.getsize(src), verb)
    try:
        convert(src, dst, progress.callback())
    except ModelCryptError as exc:
        raise _data_error(src, exc) from None
    finally:
        progress.close()
    _info(args, f"{verb}ed {src} -> {dst}")
