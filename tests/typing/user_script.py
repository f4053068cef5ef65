"""A small user program of modelcrypt's public API, type-checked with ``mypy --strict`` by
tests/test_typing.py (never run: it only has to type-check without errors or ignores)."""

from __future__ import annotations

import numpy as np

import modelcrypt
import modelcrypt.numpy
import modelcrypt.torch


def encrypt_and_load(model: str, key_path: str) -> int:
    key: bytearray = modelcrypt.read_key_file(key_path)
    modelcrypt.encrypt_file(model, model + ".mcx", key, metadata={"model": "resnet50"}, threads=2)
    blob: bytes = modelcrypt.encrypt_bytes(b"weights", key)
    with modelcrypt.decrypt_bytes(blob, key) as small:
        assert len(small) == 7
    with modelcrypt.load(model + ".mcx", key) as buf:
        head = np.frombuffer(memoryview(buf), np.uint8, count=4).copy()  # numpy < 3.12 stubs: no Buffer protocol
        meta: dict[str, str] = dict(buf.metadata)
    with modelcrypt.load_range(model + ".mcx", key, offset=0, length=4) as part:
        assert bytes(part) == head.tobytes()
    modelcrypt.verify(model + ".mcx", key)
    info: modelcrypt.FileInfo = modelcrypt.inspect(model + ".mcx")
    assert modelcrypt.is_encrypted(model + ".mcx")
    with modelcrypt.open_encrypted(model + ".mcx", key) as f:
        first: bytes = bytes(f.read_range(0, 4))
    modelcrypt.wipe(key)
    return len(meta) + len(first) + (info.chunk_size or 0)


def checkpoints(path: str) -> float:
    key: bytes = modelcrypt.generate_key()
    modelcrypt.save_checkpoint({"w": np.ones((2, 2), np.float32)}, path, key)
    state = modelcrypt.load_checkpoint(path, key, names=["w"])
    arrays = modelcrypt.torch.load_state_dict(path, key)
    modelcrypt.numpy.save(path + ".npy.mcx", np.zeros(3), key)
    loaded = modelcrypt.numpy.load(path + ".npy.mcx", key)
    return float(np.asarray(state["w"]).sum()) + len(arrays) + float(np.asarray(loaded).sum())


def recipients(path: str) -> str:
    ident: modelcrypt.Identity = modelcrypt.generate_identity()
    modelcrypt.encrypt_file(path, path + ".mcx", recipients=[ident.recipient])
    try:
        modelcrypt.verify(path + ".mcx", identity=ident)
    except modelcrypt.KeyMismatchError:
        return "not for us"
    except modelcrypt.ModelCryptError as exc:
        return str(exc)
    return ident.recipient


def lazy_submodule(path: str, key: bytes) -> object:
    return modelcrypt.torch.load(path, key)
