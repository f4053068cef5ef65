"""Golden-file and cross-implementation tests for the modelcrypt v1 container format.

(a) the independent reference implementation (tests/reference_format.py) reproduces
    every expectation in tests/vectors/manifest.json, and the checked-in vectors are
    exactly what tests/vectors/generate.py produces;
(b) modelcrypt.load() and modelcrypt.decrypt_bytes() give the same outcome for every
    vector (same exception class, same plaintext and metadata);
(c) files written by modelcrypt are read by the reference reader, and files written by
    the reference writer are read by modelcrypt;
(d) modelcrypt.inspect() agrees with reference_format.parse_header().
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "vectors"))

import reference_format as rf  # noqa: E402

import modelcrypt  # noqa: E402

VECTORS = HERE / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text(encoding="utf-8"))
OK = [e for e in MANIFEST if e["expect"] == "ok"]
REF_ERRORS = {
    "FormatError": rf.FormatError,
    "UnsupportedVersionError": rf.UnsupportedVersionError,
    "KeyMismatchError": rf.KeyMismatchError,
    "AuthenticationError": rf.AuthenticationError,
}


def _ids(entries):
    return [e["file"][:-4] for e in entries]


def _data(entry) -> bytes:
    return (VECTORS / entry["file"]).read_bytes()


def _key(entry) -> bytes:
    return bytes.fromhex(entry["key"])


def _canon(meta) -> bytes:
    if not meta:
        return b""
    return json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _check_metadata_raw(entry, raw: bytes):
    assert len(raw) == entry["metadata_length"]
    assert hashlib.sha256(raw).hexdigest() == entry["metadata_sha256"]
    if entry["metadata"] is not None:
        assert raw.hex() == entry["metadata"]


def _expected_metadata_dict(entry) -> dict:
    raw = bytes.fromhex(entry["metadata"]) if entry["metadata"] is not None else None
    if raw is None:  # large metadata: hex left out of the manifest, read it from the file
        hdr = rf.parse_header(_data(entry))
        raw = hdr["metadata_raw"]
    return json.loads(raw.decode("utf-8")) if raw else {}


# =========================================================================== (a) reference


def test_manifest_is_well_formed():
    names = [e["file"] for e in MANIFEST]
    assert len(names) == len(set(names))
    on_disk = {p.name for p in VECTORS.glob("*.mcx")}
    assert on_disk == set(names)
    for e in MANIFEST:
        assert e["expect"] == "ok" or e["expect"] in REF_ERRORS
        assert len(bytes.fromhex(e["key"])) in (16, 24, 32)
        assert e["description"]
        if e["expect"] == "ok":
            assert e["step"] is None
            for k in ("plaintext_length", "plaintext_sha256", "metadata",
                      "metadata_length", "metadata_sha256"):
                assert k in e, (e["file"], k)
        else:
            assert e["step"] in range(1, 10)
    # at least one vector per outcome
    assert {e["expect"] for e in MANIFEST} == {"ok", *REF_ERRORS}
    assert sum(os.path.getsize(VECTORS / n) for n in names) < 400_000


def test_vectors_are_up_to_date():
    """The checked-in files are byte-for-byte what generate.py produces (deterministic)."""
    import generate

    files = generate.generate()
    for name, blob in files.items():
        assert (VECTORS / name).read_bytes() == blob, f"{name} is stale: rerun generate.py"


@pytest.mark.parametrize("entry", MANIFEST, ids=_ids(MANIFEST))
def test_reference_reader(entry):
    data, key = _data(entry), _key(entry)
    if entry["expect"] == "ok":
        pt, meta = rf.read(data, key)
        assert len(pt) == entry["plaintext_length"]
        assert hashlib.sha256(pt).hexdigest() == entry["plaintext_sha256"]
        _check_metadata_raw(entry, meta)
    else:
        with pytest.raises(REF_ERRORS[entry["expect"]]) as ei:
            rf.read(data, key)
        assert type(ei.value).__name__ == entry["expect"]


@pytest.mark.parametrize("entry", MANIFEST, ids=_ids(MANIFEST))
def test_reference_parse_header_keyless(entry):
    """Steps 1-5 need no key: parse_header rejects exactly the vectors with step <= 5."""
    data = _data(entry)
    if entry["expect"] != "ok" and entry["step"] <= 5:
        with pytest.raises(REF_ERRORS[entry["expect"]]) as ei:
            rf.parse_header(data)
        assert type(ei.value).__name__ == entry["expect"]
    else:
        hdr = rf.parse_header(data)
        assert hdr["version"] == 1 and hdr["algorithm"] == 1


def test_reference_roundtrip_random():
    rng = np.random.default_rng(1234)
    for L in (0, 1, 4095, 4096, 4097, 3 * 4096, 3 * 4096 + 17):
        for klen in (16, 24, 32):
            key = secrets.token_bytes(klen)
            pt = rng.integers(0, 256, L, dtype=np.uint8).tobytes()
            meta = _canon({"n": str(L)})
            blob = rf.write(pt, key, salt=secrets.token_bytes(32), chunk_size=4096,
                            metadata_raw=meta)
            assert len(blob) == rf.expected_file_length(128 + len(meta), L, 4096)
            assert rf.read(blob, key) == (pt, meta)


def test_reference_writer_rejects_bad_parameters():
    with pytest.raises(ValueError):
        rf.write(b"x", bytes(15), salt=bytes(32))
    with pytest.raises(ValueError):
        rf.write(b"x", bytes(32), salt=bytes(32), chunk_size=4097)
    with pytest.raises(ValueError):
        rf.write(b"x", bytes(32), salt=bytes(32), metadata_raw=bytes(65537))
    with pytest.raises(ValueError):
        rf.write(b"x", bytes(32), salt=bytes(31))


# =========================================================================== (b) modelcrypt vs vectors


def _mc_outcome(fn):
    """Run fn() -> DecryptedBuffer; return ("ok", plaintext, metadata) or (error name, None, None)."""
    try:
        buf = fn()
    except modelcrypt.ModelCryptError as e:
        return type(e).__name__, e, None
    with buf:
        pt = bytes(buf)
        assert len(buf) == len(pt)
        meta = buf.metadata
    return "ok", pt, meta


def _check_mc(entry, outcome):
    name, pt, meta = outcome
    detail = f"{len(pt)} plaintext bytes" if name == "ok" else repr(pt)
    assert name == entry["expect"], (
        f"{entry['file']}: modelcrypt gave {name} ({detail}), FORMAT.md/reference expect "
        f"{entry['expect']}"
    )
    if name == "ok":
        assert len(pt) == entry["plaintext_length"]
        assert hashlib.sha256(pt).hexdigest() == entry["plaintext_sha256"]
        assert dict(meta) == _expected_metadata_dict(entry)
    else:
        # exactly the documented class (not just a subclass of it)
        assert type(pt) is getattr(modelcrypt, entry["expect"])


@pytest.mark.parametrize("threads", [1, None], ids=["t1", "tall"])
@pytest.mark.parametrize("entry", MANIFEST, ids=_ids(MANIFEST))
def test_modelcrypt_load(entry, threads):
    path = VECTORS / entry["file"]
    _check_mc(entry, _mc_outcome(lambda: modelcrypt.load(path, _key(entry), threads=threads)))


@pytest.mark.parametrize("threads", [1, None], ids=["t1", "tall"])
@pytest.mark.parametrize("entry", MANIFEST, ids=_ids(MANIFEST))
def test_modelcrypt_decrypt_bytes(entry, threads):
    blob = _data(entry)
    _check_mc(entry,
              _mc_outcome(lambda: modelcrypt.decrypt_bytes(blob, _key(entry), threads=threads)))


@pytest.mark.parametrize("entry", MANIFEST, ids=_ids(MANIFEST))
def test_modelcrypt_load_str_path_and_bytearray_key(entry):
    path = str(VECTORS / entry["file"])
    key = bytearray(_key(entry))
    _check_mc(entry, _mc_outcome(lambda: modelcrypt.load(path, key)))


@pytest.mark.parametrize("entry", MANIFEST, ids=_ids(MANIFEST))
def test_modelcrypt_decrypt_file(entry, tmp_path):
    dst = tmp_path / "out.bin"
    try:
        modelcrypt.decrypt_file(VECTORS / entry["file"], dst, _key(entry))
    except modelcrypt.ModelCryptError as e:
        assert type(e) is getattr(modelcrypt, entry["expect"]), (entry["file"], repr(e))
        assert not dst.exists()
        assert list(tmp_path.iterdir()) == []  # no temp file left behind
        return
    assert entry["expect"] == "ok", f"{entry['file']}: decrypt_file succeeded"
    pt = dst.read_bytes()
    assert hashlib.sha256(pt).hexdigest() == entry["plaintext_sha256"]


@pytest.mark.parametrize("entry", MANIFEST, ids=_ids(MANIFEST))
def test_modelcrypt_is_encrypted(entry):
    assert modelcrypt.is_encrypted(VECTORS / entry["file"]) == _data(entry).startswith(rf.MAGIC)


# =========================================================================== (c) cross-implementation

SIZES = [0, 1, 4095, 4096, 4097, 3 * 4096, 3 * 4096 + 123, 200_003]
CHUNK_SIZES = [4096, 8192, 65536]
META = {"framework": "onnx", "name": "résnet", "a": "1"}


def _payload(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed + n).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("klen", [16, 24, 32])
@pytest.mark.parametrize("cs", CHUNK_SIZES)
@pytest.mark.parametrize("size", SIZES)
def test_modelcrypt_encrypt_bytes_read_by_reference(size, cs, klen):
    key = modelcrypt.generate_key(klen)
    assert isinstance(key, bytes) and len(key) == klen
    pt = _payload(size)
    meta = META if size % 2 else None
    blob = modelcrypt.encrypt_bytes(pt, key, chunk_size=cs, metadata=meta)
    hdr = rf.parse_header(blob)
    assert hdr["chunk_size"] == cs
    assert hdr["plaintext_length"] == size
    assert hdr["reserved"] == 0
    assert len(blob) == hdr["expected_file_length"]
    got_pt, got_meta = rf.read(blob, key)
    assert got_pt == pt
    assert got_meta == _canon(meta)


@pytest.mark.parametrize("size", [0, 5, 1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024 + 77])
def test_modelcrypt_default_chunk_size(size):
    key = modelcrypt.generate_key()
    assert len(key) == 32
    pt = _payload(size, 7)
    blob = modelcrypt.encrypt_bytes(pt, key)
    hdr = rf.parse_header(blob)
    assert hdr["chunk_size"] == rf.DEFAULT_CHUNK_SIZE
    assert hdr["metadata_length"] == 0
    assert rf.read(blob, key) == (pt, b"")


def test_modelcrypt_fresh_salt_per_file():
    key = modelcrypt.generate_key()
    salts = {rf.parse_header(modelcrypt.encrypt_bytes(b"same", key, chunk_size=4096))["salt"]
             for _ in range(8)}
    assert len(salts) == 8
    assert all(len(s) == 32 for s in salts)


@pytest.mark.parametrize("threads", [1, 4, None])
@pytest.mark.parametrize("cs", [4096, 65536, None])
@pytest.mark.parametrize("klen", [16, 24, 32])
def test_modelcrypt_encrypt_file_read_by_reference(tmp_path, klen, cs, threads):
    key = os.urandom(klen)
    pt = _payload(300_000 + klen, klen)
    src, dst = tmp_path / "model.bin", tmp_path / "model.mcx"
    src.write_bytes(pt)
    modelcrypt.encrypt_file(src, dst, key, chunk_size=cs, metadata=META, threads=threads)
    blob = dst.read_bytes()
    assert rf.parse_header(blob)["chunk_size"] == (cs or rf.DEFAULT_CHUNK_SIZE)
    assert rf.read(blob, key) == (pt, _canon(META))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin", "model.mcx"]


@pytest.mark.parametrize("klen", [16, 24, 32])
@pytest.mark.parametrize("cs", CHUNK_SIZES + [rf.DEFAULT_CHUNK_SIZE, rf.MAX_CHUNK_SIZE])
@pytest.mark.parametrize("size", SIZES)
def test_reference_writer_read_by_modelcrypt(tmp_path, size, cs, klen):
    key = os.urandom(klen)
    pt = _payload(size, 99)
    meta = {"size": str(size), "cs": str(cs)} if size % 2 == 0 else None
    blob = rf.write(pt, key, salt=os.urandom(32), chunk_size=cs, metadata_raw=_canon(meta))
    for threads in (1, None):
        with modelcrypt.decrypt_bytes(blob, key, threads=threads) as buf:
            assert bytes(buf) == pt
            assert dict(buf.metadata) == (meta or {})
    path = tmp_path / "ref.mcx"
    path.write_bytes(blob)
    with modelcrypt.load(path, key) as buf:
        assert bytes(buf) == pt
        arr = np.frombuffer(buf, dtype=np.uint8)
        assert arr.size == size
        if size:
            assert arr[-1] == pt[-1]
        del arr
    info = modelcrypt.inspect(path)
    assert info.plaintext_length == size and info.chunk_size == cs


def test_reference_writer_large_multichunk_parallel():
    """Many chunks so that a parallel reader actually splits the work."""
    key = os.urandom(32)
    pt = _payload(64 * 4096 + 5, 3)
    blob = rf.write(pt, key, salt=os.urandom(32), chunk_size=4096)
    for threads in (1, 2, 8, None):
        with modelcrypt.decrypt_bytes(blob, key, threads=threads) as buf:
            assert bytes(buf) == pt
    # every single-byte corruption position class is caught regardless of thread count
    for off in (rf.chunk_offset(40, 128, 4096) + 9, len(blob) - 1):
        bad = bytearray(blob)
        bad[off] ^= 0x40
        for threads in (1, None):
            with pytest.raises(modelcrypt.AuthenticationError):
                modelcrypt.decrypt_bytes(bytes(bad), key, threads=threads)


# =========================================================================== (d) inspect


def _check_inspect(info, hdr):
    assert info.version == hdr["version"] == 1
    assert info.algorithm == "AES-256-GCM"
    assert info.chunk_size == hdr["chunk_size"]
    assert info.plaintext_length == hdr["plaintext_length"]
    assert info.chunk_count == hdr["chunk_count"]
    assert info.header_length == hdr["header_length"]
    assert info.file_length == hdr["file_length"]
    assert bytes(info.salt) == hdr["salt"]
    assert bytes(info.key_commitment) == hdr["key_commitment"]
    assert bytes(info.metadata_raw) == hdr["metadata_raw"]
    raw = hdr["metadata_raw"]
    assert dict(info.metadata) == (json.loads(raw.decode()) if raw else {})


@pytest.mark.parametrize("entry", OK, ids=_ids(OK))
def test_modelcrypt_inspect_matches_reference(entry):
    path = VECTORS / entry["file"]
    hdr = rf.parse_header(path.read_bytes())
    info = modelcrypt.inspect(path)
    _check_inspect(info, hdr)
    assert info.file_length == os.path.getsize(path)


HEADER_ERRORS = [e for e in MANIFEST if e["expect"] != "ok" and e["step"] <= 5]


@pytest.mark.parametrize("entry", HEADER_ERRORS, ids=_ids(HEADER_ERRORS))
def test_modelcrypt_inspect_rejects_like_steps_1_to_5(entry):
    """inspect() runs the key-less reader steps 1-5 and raises the same error class."""
    with pytest.raises(modelcrypt.ModelCryptError) as ei:
        modelcrypt.inspect(VECTORS / entry["file"])
    assert type(ei.value) is getattr(modelcrypt, entry["expect"]), repr(ei.value)


def test_modelcrypt_inspect_on_modelcrypt_output(tmp_path):
    key = modelcrypt.generate_key(24)
    path = tmp_path / "m.mcx"
    src = tmp_path / "m.bin"
    src.write_bytes(_payload(12345))
    modelcrypt.encrypt_file(src, path, key, chunk_size=8192, metadata=META)
    _check_inspect(modelcrypt.inspect(path), rf.parse_header(path.read_bytes()))
