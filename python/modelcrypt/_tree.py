"""Directory-tree helpers shared by `modelcrypt encrypt/decrypt` and migrate: walking without
following links, exclusion globs, and containment checks."""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile


def same_or_inside(path: str, parent: str) -> bool:
    path, parent = os.path.realpath(path), os.path.realpath(parent)
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)


def walk(root: str, rel: str = ""):
    """Yields (kind, relative path) under root, links not followed: 'dir', 'file', 'symlink' or 'other'."""
    with os.scandir(os.path.join(root, rel) if rel else root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        r = f"{rel}/{entry.name}" if rel else entry.name
        if entry.is_symlink():
            yield "symlink", r
        elif entry.is_dir(follow_symlinks=False):
            yield "dir", r
            yield from walk(root, r)
        elif entry.is_file(follow_symlinks=False):
            yield "file", r
        else:
            yield "other", r


def excluded(rel: str, patterns: list[str]) -> bool:
    """Does a relative path (or its bare file name) match one of the fnmatch patterns?"""
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def install_tree(tmp: str, dst: str) -> None:
    """Moves the completed tree `tmp` to `dst`. An existing `dst` is replaced only now, when the new
    tree is complete: it is renamed aside, the new tree renamed in, and the old one removed."""
    if os.path.lexists(dst):
        parent = os.path.dirname(os.path.abspath(dst))
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(dst))}.mcold-", dir=parent)
        os.rename(dst, os.path.join(old, "x"))
        os.rename(tmp, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, dst)
