"""Plaintext buffers are kept out of core dumps (MADV_DONTDUMP) and, up to 64 MiB, out of swap
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


def test_large_plaintext_is_not_dumped_but_not_locked(tmp_path):
    key = modelcrypt.generate_key()
    src = tmp_path / "big.bin"
    data = os.urandom(96 << 20)
    src.write_bytes(data)
    modelcrypt.encrypt_file(src, tmp_path / "big.mcx", key)
    locked_before = _vm_locked_kib()
    with modelcrypt.load(tmp_path / "big.mcx", key) as buf:
        flags = _mapping_flags(_address(buf))
        assert "dd" in flags and "hg" in flags  # MADV_DONTDUMP, MADV_HUGEPAGE
        assert "lo" not in flags                 # > 64 MiB: not pinned
        assert _vm_locked_kib() == locked_before
        assert np.frombuffer(buf, dtype=np.uint8)[:4096].tobytes() == data[:4096]


def test_closed_buffer_refuses_access_and_reads_zero_through_old_views():
    key = modelcrypt.generate_key()
    data = b"\x5a" * 100000
    buf = modelcrypt.decrypt_bytes(modelcrypt.encrypt_bytes(data, key), key)
    buf.close()
    with pytest.raises(ValueError):
        bytes(buf)
