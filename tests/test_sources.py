"""Loading from byte sources other than a local path: seekable binary file objects and fsspec URLs
(issue 17), through the core's read callback, against real files, real fsspec filesystems and real
OpenSSL. Every byte is read once into modelcrypt's memory; failures are typed and leave nothing."""

from __future__ import annotations

import io
import os

import pytest

import modelcrypt

KEY = bytes(range(32))
CHUNK = 4096


@pytest.fixture(scope="module")
def plain():
    return os.urandom(5 * CHUNK + 321)


@pytest.fixture(scope="module")
def blob(plain):
    return modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK, metadata={"model": "tiny"})


class CountingReader(io.BytesIO):
    """A BytesIO that counts the bytes read from it."""

    def __init__(self, data):
        super().__init__(data)
        self.bytes_read = 0

    def read(self, n=-1):
        out = super().read(n)
        self.bytes_read += len(out)
        return out


@pytest.mark.parametrize("threads", [None, 1, 3])
def test_file_objects_load_like_paths(tmp_path, plain, blob, threads):
    f = CountingReader(blob)
    with modelcrypt.load(f, KEY, threads=threads) as buf:
        assert bytes(buf) == plain and buf.metadata == {"model": "tiny"}
    assert f.bytes_read == len(blob)  # every byte once
    path = tmp_path / "m.mcx"
    path.write_bytes(blob)
    with open(path, "rb") as real, modelcrypt.load(real, KEY, threads=threads) as buf:
        assert bytes(buf) == plain
    # a modelcrypt file embedded in a larger stream reads from the current position
    embedded = io.BytesIO(b"container header" + blob + b"")
    embedded.seek(len(b"container header"))
    with modelcrypt.load(embedded, KEY) as buf:
        assert bytes(buf) == plain


def test_file_objects_with_identity_and_signature(plain):
    ident, signer = modelcrypt.generate_identity(), modelcrypt.generate_signing_key()
    blob = modelcrypt.encrypt_bytes(plain, recipients=[ident.recipient], chunk_size=CHUNK, signing_key=signer)
    with modelcrypt.load(io.BytesIO(blob), identity=ident, trusted_signers=[signer]) as buf:
        assert bytes(buf) == plain
    with pytest.raises(modelcrypt.KeyMismatchError, match="identity"):
        modelcrypt.load(io.BytesIO(blob), identity=modelcrypt.generate_identity())
    with pytest.raises(modelcrypt.SignatureError):
        modelcrypt.load(io.BytesIO(blob), identity=ident, trusted_signers=[modelcrypt.generate_signing_key()])


def test_file_object_failures_are_typed(blob):
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.load(io.BytesIO(blob), bytes(32))
    bad = bytearray(blob)
    bad[-30] ^= 1
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.load(io.BytesIO(bytes(bad)), KEY)
    with pytest.raises(modelcrypt.AuthenticationError, match="truncated|shorter|length"):
        modelcrypt.load(io.BytesIO(blob[:-10]), KEY)
    with pytest.raises(modelcrypt.FormatError):
        modelcrypt.load(io.BytesIO(b"not an encrypted model" * 10), KEY)

    class Unplugged(Exception):
        pass

    class Failing(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 0:
                raise Unplugged("the cable")
            return super().read(n)

    with pytest.raises(Unplugged, match="cable"):  # the reader's own exception, as itself
        modelcrypt.load(Failing(blob), KEY)

    class Lying(io.BytesIO):
        def read(self, n=-1):
            return super().read(n) + b"extra"

    with pytest.raises(OSError, match="asked for"):
        modelcrypt.load(Lying(blob), KEY)


def test_file_object_argument_errors(tmp_path, blob):
    path = tmp_path / "m.mcx"
    path.write_bytes(blob)
    with open(path, "r", encoding="latin-1") as text, pytest.raises(TypeError, match="text mode"):
        modelcrypt.load(text, KEY)
    with pytest.raises(ValueError, match="modelcrypt files only"):
        modelcrypt.load(io.BytesIO(blob), KEY, format="mindspore")
    with pytest.raises(ValueError, match="custom"):
        modelcrypt.load(io.BytesIO(blob), KEY, lambda p, k: b"")
    with pytest.raises(ValueError, match="legacy mode"):
        modelcrypt.load(io.BytesIO(blob), bytes(range(16)), "AES-CBC")
    with pytest.raises(ValueError, match="storage_options"):
        modelcrypt.load(path, KEY, storage_options={"anon": True})

    class Unseekable(io.RawIOBase):
        def readable(self):
            return True

        def read(self, n=-1):
            return b""

        def seek(self, *a):
            raise io.UnsupportedOperation("seek")

    with pytest.raises(ValueError, match="seekable"):
        modelcrypt.load(Unseekable(), KEY)


def test_urls_through_fsspec(tmp_path, plain, blob):
    import fsspec  # a test dependency (pyproject [test])

    mem = fsspec.filesystem("memory")
    mem.pipe_file("/models/m.mcx", blob)
    try:
        with modelcrypt.load("memory://models/m.mcx", KEY) as buf:
            assert bytes(buf) == plain
        (tmp_path / "m.mcx").write_bytes(blob)
        with modelcrypt.load(f"file://{tmp_path}/m.mcx", KEY) as buf:
            assert bytes(buf) == plain
        with pytest.raises(modelcrypt.KeyMismatchError):
            modelcrypt.load("memory://models/m.mcx", bytes(32))
        with pytest.raises(FileNotFoundError):
            modelcrypt.load("memory://models/missing.mcx", KEY)
        with pytest.raises(ValueError, match="cannot open"):
            modelcrypt.load("nosuchscheme://user:secret@host/m.mcx", KEY)
        try:
            modelcrypt.load("nosuchscheme://user:secret@host/m.mcx", KEY)
        except ValueError as exc:
            assert "secret" not in str(exc)
    finally:
        mem.rm("/models", recursive=True)


def test_random_access_through_file_objects_and_urls(plain, blob):
    import fsspec

    f = CountingReader(blob)
    with modelcrypt.open_encrypted(f, KEY) as ef:
        assert ef.plaintext_length == len(plain) and ef.chunk_size == CHUNK and ef.metadata == {"model": "tiny"}
        header_bytes = f.bytes_read
        with ef.read_range(2 * CHUNK + 5, 100) as b:
            assert bytes(b) == plain[2 * CHUNK + 5:2 * CHUNK + 105]
        assert f.bytes_read - header_bytes == CHUNK + 16  # one chunk and its tag, nothing else
        out = bytearray(3 * CHUNK)
        ef.read_range_into(CHUNK - 1, out)
        assert bytes(out) == plain[CHUNK - 1:4 * CHUNK - 1]
        with pytest.raises(ValueError, match="local file"):
            ef.verify()
        with pytest.raises(ValueError, match="local file"):
            ef.decrypt_to("/nonexistent/out.bin")
    with pytest.raises(ValueError, match="closed"):
        ef.read_range(0, 1)
    mem = fsspec.filesystem("memory")
    mem.pipe_file("/ra/m.mcx", blob)
    try:
        with modelcrypt.load_range("memory://ra/m.mcx", KEY, offset=7, length=5000) as b:
            assert bytes(b) == plain[7:5007]
        with modelcrypt.open_encrypted("memory://ra/m.mcx", KEY) as ef:
            assert "memory://ra/m.mcx" in repr(ef)
            with ef.read_all() as b:
                assert bytes(b) == plain
        with pytest.raises(modelcrypt.KeyMismatchError):
            modelcrypt.open_encrypted("memory://ra/m.mcx", bytes(32))
    finally:
        mem.rm("/ra", recursive=True)


def test_random_access_reader_errors_are_raised_as_themselves(blob):
    class Flaky(io.BytesIO):
        fail = False

        def read(self, n=-1):
            if self.fail:
                raise ConnectionResetError("peer went away")
            return super().read(n)

    f = Flaky(blob)
    with modelcrypt.open_encrypted(f, KEY) as ef:
        f.fail = True
        with pytest.raises(ConnectionResetError, match="peer"):
            ef.read_range(0, 10)
        f.fail = False
        with ef.read_range(0, 10) as b:  # the handle still works after the source recovers
            assert len(b) == 10


def test_checkpoint_by_name_from_a_file_object_reads_only_its_chunks(tmp_path):
    import numpy as np

    params = {f"t{i:02d}": np.full((1 << 18,), i, np.float32) for i in range(16)}  # 1 MiB each
    path = tmp_path / "c.safetensors"
    modelcrypt.save_checkpoint(params, path, KEY)
    blob = path.read_bytes()
    whole = modelcrypt.load_checkpoint(io.BytesIO(blob), KEY)
    assert all(np.array_equal(whole[k], v) for k, v in params.items())
    f = CountingReader(blob)
    one = modelcrypt.load_checkpoint(f, KEY, names=["t09"])
    assert list(one) == ["t09"] and np.array_equal(one["t09"], params["t09"])
    info = modelcrypt.inspect(path)
    stored_chunk = info.chunk_size + 16
    # the modelcrypt header, chunk 0 (the safetensors header) and the <= 2 chunks the tensor spans
    assert f.bytes_read <= info.header_length + 3 * stored_chunk, (f.bytes_read, len(blob))
    assert f.bytes_read < len(blob) // 4
