"""modelcrypt quickstart: encrypt a model file, load it back into memory, run it.

    pip install . && python examples/quickstart.py

Nothing decrypted touches the disk: `modelcrypt.load` returns the plaintext in a buffer that
modelcrypt owns, and the weights below are zero-copy numpy views into it.
"""

import json
import os
import struct
import sys
import tempfile

import numpy as np

import modelcrypt

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "models", "tiny_mlp.safetensors")


def safetensors_arrays(buf):
    """Zero-copy numpy views of the float32 tensors of a safetensors image held in `buf`."""
    mv = memoryview(buf)
    (n,) = struct.unpack_from("<Q", mv, 0)
    header = json.loads(bytes(mv[8 : 8 + n]))
    arrays = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        arrays[name] = np.frombuffer(mv, np.float32, (end - start) // 4, 8 + n + start).reshape(info["shape"])
    return arrays


def forward(w, x):
    h = np.maximum(x @ w["fc1.weight"].T + w["fc1.bias"], 0)
    return h @ w["fc2.weight"].T + w["fc2.bias"]


def main():
    key = modelcrypt.generate_key()  # 32 random bytes; keep it somewhere safe (not next to the model)
    with tempfile.TemporaryDirectory() as tmp:
        encrypted = os.path.join(tmp, "tiny_mlp.safetensors.mcx")
        modelcrypt.encrypt_file(MODEL, encrypted, key, metadata={"model": "tiny-mlp", "framework": "numpy"})
        info = modelcrypt.inspect(encrypted)
        print(f"encrypted {os.path.getsize(MODEL)} bytes -> {info.file_length} bytes "
              f"({info.algorithm}, {info.chunk_count} chunk(s), metadata {info.metadata})")

        x = np.linspace(-1, 1, 16, dtype=np.float32)[None, :]
        with modelcrypt.load(encrypted, key) as plaintext:  # in memory only; wiped at the end of the block
            y = forward(safetensors_arrays(plaintext), x)
            print("output of the decrypted model:", np.round(y, 5))

        with open(MODEL, "rb") as f:
            expected = forward(safetensors_arrays(f.read()), x)
        assert np.array_equal(y, expected), "decrypted model differs from the original"

        try:
            modelcrypt.load(encrypted, modelcrypt.generate_key())
        except modelcrypt.KeyMismatchError as exc:
            print("wrong key refused:", exc)
    print("quickstart OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
