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


# ------------------------------------------------------------------ inspect of big legacy files

INSPECT_CHILD = textwrap.dedent("""
    import dataclasses, json, sys
    import modelcrypt
    def status(field):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                      # VmHWM := current RSS
    before = status("VmRSS")
    info = modelcrypt.inspect(sys.argv[1])
    fields = {k: v for k, v in dataclasses.asdict(info).items() if isinstance(v, (int, str, type(None)))}
    print(json.dumps({"info": fields, "growth_kb": status("VmHWM") - before}))
""")


def _ms_frame_header(cipher_len, gcm=True):
    magic = 0x7F3A5ED8 if gcm else 0x7F3A5ED9
    return (struct.pack("<I", magic) + (b"\x11" * 16 if gcm else b"")
            + struct.pack("<ii", cipher_len + 24, 16) + b"\x22" * 16 + struct.pack("<i", cipher_len))


def _sparse_file(path, pieces, total):
    """A file of `total` bytes holding `pieces` ({offset: bytes}) and holes elsewhere."""
    with open(path, "wb") as f:
        for off, data in pieces.items():
            f.seek(off)
            f.write(data)
        f.truncate(total)


def _inspect_in_child(path):
    import json
    out = subprocess.run([sys.executable, "-c", INSPECT_CHILD, str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r["info"], r["growth_kb"] * 1024


@pytest.mark.parametrize("gcm", [True, False])
def test_inspect_large_mindspore_file_reads_only_frame_headers(tmp_path, gcm):
    """inspect() of a 512 MiB MindSpore file (8 frames of 64 MiB; sparse: the ciphertext is not
    looked at without a key) walks the frame headers only: the child's peak RSS grows by far less
    than the file (it read the whole file into memory before), with the same description."""
    frame = 64 * MiB + (0 if gcm else 16)      # CBC frames: 64 MiB of plaintext padded by a block
    head = len(_ms_frame_header(0, gcm))
    pieces, pos = {}, 0
    for _ in range(8):
        pieces[pos] = _ms_frame_header(frame, gcm)
        pos += head + frame
    path = tmp_path / "big.ckpt"
    _sparse_file(path, pieces, pos)
    info, growth = _inspect_in_child(path)
    assert info == {"path": str(path), "file_length": pos, "plaintext_length": 8 * frame if gcm else None,
                    "format": "mindspore", "cipher": "AES-GCM" if gcm else "AES-CBC", "frames": 8,
                    "version": None, "algorithm": None, "chunk_size": None, "chunk_count": None,
                    "header_length": None, "expected_file_length": None, "salt": None, "key_commitment": None,
                    "recipients_length": None, "signer": None, "authenticated": False, "opened_by": None}, info
    assert growth < 16 * MiB, f"inspect grew the peak RSS by {growth / MiB:.1f} MiB"


def test_inspect_large_paddlex_file_reads_only_the_magic(tmp_path):
    size = 512 * MiB
    path = tmp_path / "big.pdmodel"
    _sparse_file(path, {0: b"PADDLE1" + b"0" * 128}, size)
    info, growth = _inspect_in_child(path)
    assert (info["format"], info["cipher"], info["frames"], info["file_length"], info["plaintext_length"]) == \
        ("paddlex", "AES-256-GCM", 1, size, size - 135 - 16), info
    assert growth < 16 * MiB, f"inspect grew the peak RSS by {growth / MiB:.1f} MiB"


def test_inspect_of_real_mindspore_files_and_bad_frames_unchanged(tmp_path):
    """Real writer output (several frames, a short last one) and a corrupted frame walk: the same
    description and the same errors as the in-memory walk."""
    src = tmp_path / "w.bin"
    src.write_bytes(os.urandom(130 * MiB + 5))
    key = modelcrypt.generate_key(16)
    enc = tmp_path / "w.ckpt"
    modelcrypt.encrypt_file(src, enc, key, format="mindspore")
    info, _ = _inspect_in_child(enc)
    assert (info["frames"], info["plaintext_length"], info["cipher"]) == (3, 130 * MiB + 5, "AES-GCM")
    data = bytearray(enc.read_bytes())
    second = 48 + 64 * MiB                     # offset of frame 1 (a GCM frame header is 48 bytes)
    data[second:second + 4] = b"\0\0\0\0"
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(data)
    with pytest.raises(modelcrypt.FormatError, match=f"MindSpore frame 1 at offset {second}: bad frame magic"):
        modelcrypt.inspect(bad)
    bad.write_bytes(bytes(enc.read_bytes()[:second + 20]))
    with pytest.raises(modelcrypt.FormatError, match=f"MindSpore frame 1 at offset {second}: truncated frame header"):
        modelcrypt.inspect(bad)
    with pytest.raises(modelcrypt.FormatError, match="runs past the end of the file"):
        bad.write_bytes(bytes(enc.read_bytes()[:-1]))
        modelcrypt.inspect(bad)
