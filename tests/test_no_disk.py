"""load() and decrypt_bytes() never put anything on disk.

1. In-process: recursive listings (name, size, mtime) of the encrypted file's
   directory and of tempfile.gettempdir() are identical before and after.
   TMPDIR / tempfile.tempdir point at a private empty directory for the
   duration, so the comparison is exact and is not disturbed by unrelated
   processes writing to the shared /tmp (the system-wide check is 2.).
2. Subprocess under strace -f: between two marker syscalls that bracket the
   load()/decrypt_bytes() calls there is no open/openat for writing or
   creating, no creat, rename*, unlink*, mkdir*, link*, symlink*, and no
   write/pwrite64/writev/pwritev*/ftruncate to any filesystem path (fds 1/2 and pipes/sockets/anonymous inodes are ignored).
   A positive control runs encrypt_file under the same tracer and must be
   flagged, so a parsing mistake cannot make the check vacuous.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

import modelcrypt

KEY = bytes(range(32))
CS = 4096


def _listing(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
    st = os.lstat(root)
    out["."] = (st.st_mtime_ns,)
    return out


@pytest.fixture
def enc_file(tmp_path):
    d = tmp_path / "models"
    d.mkdir()
    data = os.urandom(7 * CS + 11)
    src = tmp_path / "plain.bin"
    src.write_bytes(data)
    enc = d / "model.enc"
    modelcrypt.encrypt_file(src, enc, KEY, chunk_size=CS, metadata={"a": "b"})
    return enc, data


def test_no_files_created_in_process(enc_file, tmp_path, monkeypatch):
    enc, data = enc_file
    private_tmp = tmp_path / "tmpdir"
    private_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    assert tempfile.gettempdir() == str(private_tmp)
    blob = enc.read_bytes()
    roots = [str(enc.parent), tempfile.gettempdir()]
    before = [_listing(r) for r in roots]
    for threads in (1, 2, None):
        with modelcrypt.load(enc, KEY, threads=threads) as buf:
            assert bytes(buf) == data
        with modelcrypt.load(str(enc), KEY, threads=threads) as buf:
            assert len(buf) == len(data)
        with modelcrypt.decrypt_bytes(blob, KEY, threads=threads) as buf:
            assert bytes(buf) == data
    # failures must not leave anything behind either
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.decrypt_bytes(bytes(tampered), KEY)
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.load(enc, bytes(32))
    after = [_listing(r) for r in roots]
    assert after == before
    assert os.listdir(private_tmp) == []


# ------------------------------------------------------------------ strace

# The brief's set plus the vectored writes (encrypt_file itself uses writev) and
# the other ways of creating directory entries or resizing a file.
TRACE_SET = ("openat,open,creat,rename,renameat,renameat2,unlink,unlinkat,write,pwrite64,"
             "writev,pwritev,pwritev2,ftruncate,mkdir,mkdirat,link,linkat,symlink,symlinkat")
WRITE_CALLS = ("write", "pwrite64", "writev", "pwritev", "pwritev2", "ftruncate")
BEGIN, END = "/nonexistent-modelcrypt-marker/begin", "/nonexistent-modelcrypt-marker/end"

CHILD = """
import hashlib, os, sys
import modelcrypt
path, key = sys.argv[1], bytes.fromhex(sys.argv[2])
mode = sys.argv[3]
with open(path, "rb") as f:
    blob = f.read()
def marker(p):
    try:
        open(p, "rb")
    except OSError:
        pass
marker(%(begin)r)
if mode == "read":
    out = []
    for t in (1, 2):
        with modelcrypt.load(path, key, threads=t) as b:
            out.append(hashlib.sha256(b).hexdigest())
        with modelcrypt.decrypt_bytes(blob, key, threads=t) as b:
            out.append(hashlib.sha256(b).hexdigest())
else:  # positive control: this one must write
    modelcrypt.encrypt_file(path, path + ".again", key)
    out = ["control"]
marker(%(end)r)
print("RESULT", *out)
""" % {"begin": BEGIN, "end": END}

_FD_PATH = re.compile(r"^(\d+)<([^>]*)>")


def _violations(trace_lines):
    """Offending syscalls between the BEGIN and END markers."""
    inside, seen_begin, seen_end, bad = False, False, False, []
    for line in trace_lines:
        if BEGIN in line:
            inside, seen_begin = True, True
            continue
        if END in line:
            inside, seen_end = False, True
            continue
        if not inside:
            continue
        m = re.match(r"^\d+\s+(?:<\.\.\. )?(\w+)[( ]", line)
        if not m:
            continue
        call = m.group(1)
        if call in ("open", "openat", "creat"):
            if call == "creat" or re.search(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_TMPFILE", line):
                bad.append(line)
        elif call.startswith(("rename", "unlink", "mkdir", "link", "symlink")):
            bad.append(line)
        elif call in WRITE_CALLS:
            args = line.split("(", 1)[1] if "(" in line else ""
            fm = _FD_PATH.match(args)
            if not fm:
                continue           # "<... write resumed>" continuation lines
            fd, target = int(fm.group(1)), fm.group(2)
            if fd in (1, 2):
                continue
            if target.startswith("/") and not target.startswith(("/dev/null", "/dev/pts",
                                                                  "/memfd:")):
                bad.append(line)
    assert seen_begin and seen_end, "markers not found in trace"
    return bad


def _strace(enc, mode, tmp_path):
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace not installed")
    trace = tmp_path / ("trace-%s.txt" % mode)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [strace, "-f", "-qq", "-y", "-s", "0", "-o", str(trace), "-e", "trace=" + TRACE_SET,
         sys.executable, "-c", textwrap.dedent(CHILD), str(enc), KEY.hex(), mode],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = trace.read_text(errors="replace").splitlines()
    return proc.stdout, lines


def test_load_under_strace_writes_nothing(enc_file, tmp_path):
    enc, data = enc_file
    import hashlib
    digest = hashlib.sha256(data).hexdigest()
    out, lines = _strace(enc, "read", tmp_path)
    assert out.split() == ["RESULT"] + [digest] * 4
    bad = _violations(lines)
    assert bad == [], "file-writing syscalls during load/decrypt_bytes:\n" + "\n".join(bad)
    assert sorted(os.listdir(enc.parent)) == ["model.enc"]


def test_strace_check_detects_writes(enc_file, tmp_path):
    """Positive control: encrypt_file (which must write) is flagged."""
    enc, _ = enc_file
    _, lines = _strace(enc, "write", tmp_path)
    bad = _violations(lines)
    assert any("openat" in l and "O_CREAT" in l for l in bad), bad
    assert any("rename" in l for l in bad), bad
    assert any(re.match(r"^\d+\s+(write|writev|pwrite64|pwritev2?)\(\d+</", l) for l in bad), bad
