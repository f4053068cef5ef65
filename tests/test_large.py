"""A > 4 GiB model through encrypt_file / decrypt_file with bounded memory.

Marked `slow` for selection (-m "not slow" during development) but part of the
default suite. Needs ~8.1 GiB of free disk under pytest's tmp_path (the source
is sparse; the encrypted and decrypted files are not).
"""

import hashlib
import os
import struct
import subprocess
import sys
import textwrap

import pytest

import modelcrypt

GiB, MiB = 1 << 30, 1 << 20
SIZE = 4 * GiB + 5 * MiB + 3
RSS_LIMIT = 200 * MiB
MARKER_OFFSETS = [
    0,
    MiB - 5,                 # straddles the first default chunk boundary
    2 ** 31 - 7,             # straddles 2^31
    2 ** 32 - 30,            # just below 2^32
    2 ** 32 - 6,             # straddles 2^32
    2 ** 32 + 16,            # just above 2^32
    2 ** 32 + MiB + 17,
    SIZE - 12,               # last bytes of the file
]

CHILD = textwrap.dedent("""
    import sys
    import modelcrypt
    op, src, dst, key = sys.argv[1], sys.argv[2], sys.argv[3], bytes.fromhex(sys.argv[4])
    if op == "encrypt":
        modelcrypt.encrypt_file(src, dst, key)
    else:
        modelcrypt.decrypt_file(src, dst, key)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                print("HWM_KB", int(line.split()[1]))
""")


def _marker(off):
    return b"MC" + struct.pack("<Q", off) + b"!\xa5"     # 12 bytes, unique per offset


def _expected_range(start, length):
    out = bytearray(length)
    for off in MARKER_OFFSETS:
        m = _marker(off)
        for i, b in enumerate(m):
            if start <= off + i < start + length:
                out[off + i - start] = b
    return bytes(out)


def _sha256_file(path, block=8 * MiB):
    h = hashlib.sha256()
    buf = bytearray(block)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            h.update(view[:n])
    return h.hexdigest()


def _run_child(op, src, dst, key):
    """Run CHILD; return (child's own VmHWM, rusage max RSS of that child), bytes."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, op, str(src), str(dst), key.hex()],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, status, ru = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == 0, "%s failed (rc=%d):\n%s\n%s" % (op, proc.returncode, out, err)
    hwm = [int(l.split()[1]) * 1024 for l in out.splitlines() if l.startswith("HWM_KB")]
    assert len(hwm) == 1, out
    return hwm[0], ru.ru_maxrss * 1024


@pytest.mark.slow
def test_large_file_streaming(tmp_path):
    src, enc, dec = tmp_path / "big.bin", tmp_path / "big.enc", tmp_path / "big.out"
    key = modelcrypt.generate_key(32)
    try:
        with open(src, "wb") as f:
            f.truncate(SIZE)
            for off in MARKER_OFFSETS:
                f.seek(off)
                f.write(_marker(off))
        assert src.stat().st_size == SIZE
        src_sha = _sha256_file(src)

        # VmHWM is the child's own peak. (ru_maxrss from wait4 is not: Linux folds the RSS of the
        # process image before exec - a fork of this pytest process, with its frameworks - into it.)
        hwm, _ = _run_child("encrypt", src, enc, key)
        assert hwm < RSS_LIMIT, "encrypt_file peak RSS %.1f MiB" % (hwm / MiB)

        info = modelcrypt.inspect(enc)
        n = -(-SIZE // info.chunk_size)
        assert info.plaintext_length == SIZE
        assert info.chunk_size == 1048576
        assert info.chunk_count == n == 4 * 1024 + 5 + 1
        assert info.file_length == enc.stat().st_size == info.header_length + SIZE + 16 * n
        assert modelcrypt.is_encrypted(enc)

        hwm, _ = _run_child("decrypt", enc, dec, key)
        assert hwm < RSS_LIMIT, "decrypt_file peak RSS %.1f MiB" % (hwm / MiB)
        enc.unlink()

        assert dec.stat().st_size == SIZE
        with open(dec, "rb") as f:
            for off in MARKER_OFFSETS:
                f.seek(off)
                assert f.read(12) == _marker(off), "marker at %d" % off
            f.seek(2 ** 32 - 100)
            assert f.read(200) == _expected_range(2 ** 32 - 100, 200)
        assert _sha256_file(dec) == src_sha
        assert [n for n in os.listdir(tmp_path) if ".mctmp" in n] == []
    finally:
        for p in (src, enc, dec):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
