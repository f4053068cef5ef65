"""Read once (security review, item 1): the bytes authenticated are the bytes decrypted.

A second process rewrites an encrypted file through a shared mapping -- it toggles one ciphertext
byte, the chunk-size field (4096 <-> 0) and one metadata byte, as fast as it can -- while a reader
process calls ``decrypt_bytes(mmap)`` on a mapping of that very file, ``inspect(path)`` and
``load_checkpoint(path, names=...)`` in a loop. The only outcomes allowed are the authentic
plaintext (and metadata) or a ModelCryptError: never other plaintext, never another exception,
never a signal (SIGFPE from a chunk size that changed between two reads of the header).

The reader runs in its own process so that a crash is seen as its exit status. Each API gets
MODELCRYPT_RACE_SECONDS seconds (default 3; the review's reproduction used 15).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import modelcrypt

SECONDS = float(os.environ.get("MODELCRYPT_RACE_SECONDS", "3"))
KEY = bytes(range(32))

WRITER = textwrap.dedent(
    """
    import mmap, os, sys, time
    path, ct_off, md_off, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    fd = os.open(path, os.O_RDWR)
    m = mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    good_cs, zero = bytes(m[12:16]), bytes(4)
    print("ready", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(2000):
            m[ct_off] ^= 1
            m[12:16] = zero
            m[md_off] ^= 0x20
            m[ct_off] ^= 1
            m[12:16] = good_cs
            m[md_off] ^= 0x20
    m.close()
    os.close(fd)
    """
)

READER = textwrap.dedent(
    """
    import hashlib, json, mmap, os, sys, time
    import modelcrypt
    api, path, key_hex, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    expected = json.loads(sys.argv[5])
    key = bytes.fromhex(key_hex)
    counts = {"ok": 0, "error": 0, "wrong": 0, "other": 0}
    other = []
    end = time.monotonic() + seconds
    fd = os.open(path, os.O_RDONLY)
    m = mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ)
    while time.monotonic() < end:
        try:
            if api == "decrypt_bytes":
                with modelcrypt.decrypt_bytes(m, key) as buf:
                    good = (hashlib.sha256(buf).hexdigest() == expected["sha256"]
                            and buf.metadata == expected["metadata"])
            elif api == "inspect":
                info = modelcrypt.inspect(path)
                good = (info.chunk_size == expected["chunk_size"]
                        and info.plaintext_length == expected["plaintext_length"]
                        and info.chunk_count == expected["chunk_count"])
            else:
                arrays = modelcrypt.load_checkpoint(path, key, names=[expected["name"]])
                good = hashlib.sha256(arrays[expected["name"]].tobytes()).hexdigest() == expected["sha256"]
        except modelcrypt.ModelCryptError:
            counts["error"] += 1
            continue
        except Exception as exc:
            counts["other"] += 1
            if len(other) < 5:
                other.append(f"{type(exc).__name__}: {exc}")
            continue
        counts["ok" if good else "wrong"] += 1
    counts["other_examples"] = other
    print(json.dumps(counts))
    """
)


def _race(api: str, path, ct_off: int, md_off: int, expected: dict) -> dict:
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(ct_off), str(md_off), str(SECONDS + 30)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        reader = subprocess.run([sys.executable, "-c", READER, api, str(path), KEY.hex(), str(SECONDS),
                                 json.dumps(expected)], capture_output=True, text=True, timeout=SECONDS + 120)
    finally:
        writer.kill()
        writer.wait()
    assert reader.returncode == 0, f"{api}: reader died with status {reader.returncode} (signal if negative)\n{reader.stderr[-2000:]}"
    counts = json.loads(reader.stdout.strip().splitlines()[-1])
    return counts


def _offsets(path) -> tuple[int, int]:
    """A ciphertext byte inside chunk 1 and a byte of the metadata, from the header fields."""
    info = modelcrypt.inspect(path)
    assert info.chunk_size == 4096 and info.chunk_count >= 3
    md_off = 96 + len(info.metadata_raw) // 2
    ct_off = info.header_length + (4096 + 16) + 100
    return ct_off, md_off


def _check(api: str, counts: dict) -> None:
    assert counts["wrong"] == 0, f"{api} released data that is not the authentic plaintext: {counts}"
    assert counts["other"] == 0, f"{api} raised something other than a ModelCryptError: {counts}"
    assert counts["ok"] > 0 and counts["error"] > 0, f"{api}: the race did not exercise both outcomes: {counts}"


def test_decrypt_bytes_of_a_changing_mapping(tmp_path):
    plaintext = np.random.default_rng(1).integers(0, 256, 5 * 4096 + 123, dtype=np.uint8).tobytes()
    path = tmp_path / "model.mcx"
    path.write_bytes(modelcrypt.encrypt_bytes(plaintext, KEY, chunk_size=4096, metadata={"model": "racer-" + "x" * 40}))
    ct_off, md_off = _offsets(path)
    import hashlib

    counts = _race("decrypt_bytes", path, ct_off, md_off,
                   {"sha256": hashlib.sha256(plaintext).hexdigest(), "metadata": {"model": "racer-" + "x" * 40}})
    _check("decrypt_bytes", counts)


def test_inspect_of_a_changing_file(tmp_path):
    path = tmp_path / "model.mcx"
    path.write_bytes(modelcrypt.encrypt_bytes(bytes(5 * 4096), KEY, chunk_size=4096, metadata={"m": "y" * 32}))
    ct_off, md_off = _offsets(path)
    info = modelcrypt.inspect(path)
    counts = _race("inspect", path, ct_off, md_off, {"chunk_size": 4096, "plaintext_length": info.plaintext_length,
                                                     "chunk_count": info.chunk_count})
    # inspect is keyless: a changed metadata byte is not an error there, a chunk size of 0 must be.
    assert counts["wrong"] == 0 and counts["other"] == 0, counts
    assert counts["ok"] > 0 and counts["error"] > 0, counts


def test_load_checkpoint_names_of_a_changing_file(tmp_path):
    import hashlib

    rng = np.random.default_rng(2)
    tensors = {"a": rng.standard_normal(3000).astype(np.float32), "b": rng.standard_normal(2000).astype(np.float32)}
    plain, path = tmp_path / "ckpt.safetensors", tmp_path / "ckpt.mcx"
    modelcrypt.save_checkpoint(tensors, plain)
    modelcrypt.encrypt_file(plain, path, KEY, chunk_size=4096, metadata={"note": "z" * 32})
    ct_off, md_off = _offsets(path)
    counts = _race("load_checkpoint", path, ct_off, md_off,
                   {"name": "a", "sha256": hashlib.sha256(tensors["a"].tobytes()).hexdigest()})
    _check("load_checkpoint", counts)


def test_decrypt_bytes_header_validated_on_the_copy():
    """A chunk size of 0 (or any invalid value) is refused with FormatError, never a division by zero."""
    blob = bytearray(modelcrypt.encrypt_bytes(b"x" * 10000, KEY, chunk_size=4096))
    blob[12:16] = bytes(4)
    with pytest.raises(modelcrypt.FormatError, match="chunk size"):
        modelcrypt.decrypt_bytes(blob, KEY)
