"""Directory-tree helpers shared by `modelcrypt encrypt/decrypt` and migrate: walking without
following links, exclusion globs, and containment checks."""

from __future__ import annotations

import fnmatch
import os


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
