"""Errors about a file name that file: "model.onnx.mcx: authentication failed in chunk 3 of 5 ...".

The path is added once, at the binding, to the core's message; the exception type stays what it was,
and neither the key nor any plaintext appears."""

import os

import pytest

import modelcrypt

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
CS = 4096
PLAINTEXT = bytes((i * 7 + 3) % 251 for i in range(5 * CS - 100))


def _cases(tmp_path):
    good = modelcrypt.encrypt_bytes(PLAINTEXT, KEY, chunk_size=CS)
    tampered = bytearray(good)
    tampered[-100] ^= 1  # in the last chunk
    files = {
        "wrong key": ("model.onnx.mcx", good, OTHER_KEY, modelcrypt.KeyMismatchError),
        "tampered": ("tampered.mcx", bytes(tampered), KEY, modelcrypt.AuthenticationError),
        "truncated": ("truncated.mcx", good[:-CS], KEY, modelcrypt.AuthenticationError),
        "truncated header": ("short.mcx", good[:40], KEY, modelcrypt.FormatError),
        "not modelcrypt": ("plain.bin", b"just some plaintext bytes, not an encrypted file " * 20, KEY,
                           modelcrypt.FormatError),
    }
    out = {}
    for case, (name, data, key, error) in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        out[case] = (path, key, error)
    return out


def _operations(tmp_path):
    return {
        "load": lambda p, k: modelcrypt.load(p, k),
        "verify": lambda p, k: modelcrypt.verify(p, k),
        "decrypt_file": lambda p, k: modelcrypt.decrypt_file(p, tmp_path / "out.bin", k),
        # the whole plaintext, so the tampered chunk is in range
        "load_range": lambda p, k: modelcrypt.load_range(p, k, offset=0, length=len(PLAINTEXT)),
        "open_encrypted": lambda p, k: modelcrypt.open_encrypted(p, k).read_range(0, len(PLAINTEXT)),
    }


@pytest.mark.parametrize("case", ["wrong key", "tampered", "truncated", "truncated header", "not modelcrypt"])
@pytest.mark.parametrize("operation", ["load", "verify", "decrypt_file", "load_range", "open_encrypted"])
def test_error_names_the_file_and_keeps_its_type(tmp_path, monkeypatch, case, operation):
    path, key, error = _cases(tmp_path)[case]
    monkeypatch.chdir(tmp_path)  # the name as the caller gave it: relative here
    with pytest.raises(error) as info:
        _operations(tmp_path)[operation](path.name, key)
    message = str(info.value)
    assert message.startswith(f"{path.name}: "), message
    assert message.count(path.name) == 1, message  # named once, not once per layer
    assert key.hex() not in message and key.hex().upper() not in message
    assert repr(key)[2:-1] not in message
    assert "plaintext bytes" not in message
    assert not (tmp_path / "out.bin").exists()


@pytest.mark.parametrize("case, error", [("truncated header", modelcrypt.FormatError),
                                         ("not modelcrypt", modelcrypt.FormatError)])
def test_inspect_names_the_file(tmp_path, case, error):
    path, _, _ = _cases(tmp_path)[case]
    with pytest.raises(error, match="^" + str(path).replace("\\", "\\\\") + ": "):
        modelcrypt.inspect(path)


def test_absolute_and_pathlike_paths_are_named_as_given(tmp_path):
    path, key, _ = _cases(tmp_path)["tampered"]
    with pytest.raises(modelcrypt.AuthenticationError, match="^" + str(path) + ": authentication failed in chunk"):
        modelcrypt.load(path, key)
    with pytest.raises(modelcrypt.AuthenticationError, match="^" + str(path) + ": "):
        modelcrypt.load(os.fsencode(path), key)


def test_encrypt_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        modelcrypt.encrypt_file(tmp_path / "missing.onnx", tmp_path / "out.mcx", KEY)
    assert "missing.onnx" in str(info.value) and info.value.filename.endswith("missing.onnx")


def test_legacy_only_paths_name_the_file(tmp_path):
    path = tmp_path / "legacy.ckpt"
    with pytest.warns(modelcrypt.InsecureFormatWarning):
        path.write_bytes(modelcrypt.encrypt_bytes(PLAINTEXT, KEY[:16], format="mindspore"))
    with pytest.raises(ValueError, match="^" + str(path) + ": random access needs a modelcrypt file"):
        modelcrypt.load_range(path, KEY[:16], offset=0, length=10)
    with pytest.raises(modelcrypt.FormatError, match="^" + str(path) + ": "):
        modelcrypt.load(path, KEY[:16])  # format v1 only unless asked
