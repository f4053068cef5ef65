"""Plaintext buffers are kept out of core dumps (MADV_DONTDUMP), out of fork() children (MADV_WIPEONFORK) and, up to 64 MiB, out of swap
(mlock, best effort), as the kernel reports them in /proc/self/smaps. Wiping on release is checked
byte by byte in tests/cpp/test_secure_buffer_wipe.cpp through a test hook."""

import os
import resource

import numpy as np
import pytest

import modelcrypt


def _mapping_flags(address):
    """VmFlags of the mapping holding `address`, from /proc/self/smaps."""
    current = None
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                current = lo <= address < hi
            elif current and line.startswith("VmFlags:"):
                return set(line.split()[1:])
    raise AssertionError(f"no mapping holds {address:#x}")


def _vm_locked_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmLck:"):
                return int(line.split()[1])
    raise AssertionError("no VmLck in /proc/self/status")


def _address(buf):
    return np.frombuffer(buf, dtype=np.uint8).ctypes.data


def _can_lock(nbytes):
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return soft == resource.RLIM_INFINITY or soft >= _vm_locked_kib() * 1024 + nbytes + (1 << 20)


def test_small_plaintext_is_locked_and_not_dumped():
    key = modelcrypt.generate_key()
    data = os.urandom(1 << 20)
    blob = modelcrypt.encrypt_bytes(data, key)
    locked_before = _vm_locked_kib()
    buf = modelcrypt.decrypt_bytes(blob, key)
    assert bytes(buf) == data
    flags = _mapping_flags(_address(buf))
    assert "dd" in flags  # MADV_DONTDUMP
    if _can_lock(len(data)):
        assert "lo" in flags
        assert _vm_locked_kib() - locked_before >= 1024
    buf.close()  # wiped now; the (zeroed) mapping goes with the object
    del buf
    import gc
    gc.collect()
    assert _vm_locked_kib() <= locked_before


_LARGE_CHILD = r"""
import sys, numpy as np, modelcrypt
sys.path.insert(0, sys.argv[3])
import test_memory_hygiene as t
key = bytes.fromhex(sys.argv[2])
before = t._vm_locked_kib()
with modelcrypt.load(sys.argv[1], key) as buf:
    flags = t._mapping_flags(t._address(buf))
    print(" ".join(sorted(flags)), t._vm_locked_kib() - before)
"""


def _large_buffer_flags(tmp_path, huge_pages):
    import subprocess
    import sys
    key = modelcrypt.generate_key()
    src = tmp_path / "big.bin"
    if not src.exists():
        src.write_bytes(os.urandom(96 << 20))
    modelcrypt.encrypt_file(src, tmp_path / "big.mcx", key)
    env = dict(os.environ)
    env.pop("MODELCRYPT_HUGE_PAGES", None)
    if huge_pages is not None:
        env["MODELCRYPT_HUGE_PAGES"] = huge_pages
    out = subprocess.run([sys.executable, "-c", _LARGE_CHILD, str(tmp_path / "big.mcx"), bytes(key).hex(),
                          os.path.dirname(__file__)], env=env, capture_output=True, text=True, check=True).stdout
    flags, locked = out.rsplit(" ", 1)
    return set(flags.split()), int(locked)


def _balloon_reports_free_pages():
    base = "/sys/bus/virtio/devices"
    for name in (os.listdir(base) if os.path.isdir(base) else []):
        try:
            dev = open(os.path.join(base, name, "device")).read().strip()
            bits = open(os.path.join(base, name, "features")).read().strip()
        except OSError:
            continue
        if dev in ("0x0005", "0x5") and len(bits) > 5 and bits[5] == "1":
            return True
    return False


@pytest.mark.parametrize("huge_pages", ["always", "never", None])
def test_large_plaintext_is_not_dumped_but_not_locked(tmp_path, huge_pages):
    flags, locked_kib = _large_buffer_flags(tmp_path, huge_pages)
    assert "dd" in flags           # MADV_DONTDUMP
    assert "lo" not in flags       # > 64 MiB: not pinned
    assert locked_kib == 0
    # MADV_HUGEPAGE: always / never as asked; by default unless the VM's balloon hands free memory
    # back to the host (fresh huge pages are the slow ones there)
    expect_huge = {"always": True, "never": False, None: not _balloon_reports_free_pages()}[huge_pages]
    assert ("hg" in flags) == expect_huge, flags


def test_closed_buffer_refuses_access_and_reads_zero_through_old_views():
    key = modelcrypt.generate_key()
    data = b"\x5a" * 100000
    buf = modelcrypt.decrypt_bytes(modelcrypt.encrypt_bytes(data, key), key)
    buf.close()
    with pytest.raises(ValueError):
        bytes(buf)


def _child_view(address, size):
    """Forks; the child reads `size` bytes at `address` (its copy of the parent's memory) and sends
    back whether they are all zero and their first bytes. Returns (all_zero, prefix)."""
    import ctypes
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no Python-level cleanup, no pytest machinery
        try:
            os.close(r)
            seen = ctypes.string_at(address, size)
            os.write(w, (b"Z" if seen.count(0) == size else b"N") + seen[:16])
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        answer = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    return answer[:1] == b"Z", answer[1:]


@pytest.mark.parametrize("size", [100000, 3 << 20])  # a 4 KiB-page buffer and a 2 MiB-aligned one
def test_forked_child_sees_zeros_in_plaintext_buffers(tmp_path, size):
    """MADV_WIPEONFORK: a fork() child (a worker pool, a subprocess started by fork) gets zero pages
    where the parent holds decrypted plaintext; the parent keeps its plaintext."""
    key = modelcrypt.generate_key()
    data = bytes([0xA5]) * size
    src = tmp_path / "m.bin"
    src.write_bytes(data)
    modelcrypt.encrypt_file(src, tmp_path / "m.mcx", key)
    for buf in (modelcrypt.load(tmp_path / "m.mcx", key), modelcrypt.decrypt_bytes(modelcrypt.encrypt_bytes(data, key), key)):
        with buf:
            address = _address(buf)
            all_zero, prefix = _child_view(address, len(buf))
            assert all_zero, f"the child sees the plaintext: {prefix.hex()}"
            assert bytes(buf) == data  # the parent's copy is untouched
            assert "wf" in _mapping_flags(address)  # VM_WIPEONFORK in smaps
