"""Encrypted checkpoints: mappings of names to arrays, saved in the safetensors layout.

The plaintext of an encrypted checkpoint is exactly a ``.safetensors`` file (8-byte little-endian
header size, a JSON header padded with spaces to a multiple of 8, then the tensor data), so
``modelcrypt.decrypt_file`` turns one into a file the ``safetensors`` package reads, and a
checkpoint saved without a key *is* a plain ``.safetensors`` file.

* ``save_checkpoint`` / ``load_checkpoint``: one file; ``load_checkpoint(names=...)`` reads and
  decrypts only the chunks that hold the requested tensors (random access).
* ``save_checkpoint(max_shard_size=...)`` / ``load_distributed_checkpoint``: shards plus a
  Hugging Face style ``*.index.json`` weight map (the index holds no secrets and stays plaintext).
* ``CheckpointConfig`` / ``ModelCheckpoint``: save every N training steps, keep the newest K files.
* ``enc_mode`` / ``dec_mode`` may be callables with MindSpore's custom-cipher signatures
  (``enc(model_stream: bytes, key: bytes) -> bytes`` and ``dec(cipher_file: str, key: bytes) ->
  bytes``). modelcrypt does not check a custom cipher's correctness or security: whatever it
  returns is written or parsed as is.

MindSpore ``.ckpt`` checkpoints (protobuf; see ``modelcrypt.mindspore``) are read too, plain or
encrypted by MindSpore (frames) or by modelcrypt, and ``save_checkpoint(..., format="mindspore")``
writes files that ``mindspore.load_checkpoint(path, dec_key=..., dec_mode=...)`` loads.

Nothing here ever writes plaintext of an encrypted checkpoint to disk.

The package holds one concern per module: ``_layout`` (the safetensors layout), ``_arguments``
(argument checks), ``_one_file`` (writing and reading one file), ``_other_formats`` (MindSpore and
legacy containers), ``_save`` / ``_load`` (the single-file entry points), ``_shards`` (shards and
their index) and ``_callback`` (the training-loop helpers).
"""

from __future__ import annotations

import numpy as np  # noqa: F401  (the real numpy: modelcrypt.numpy must not shadow it)

from .._torch_arrays import torch_to_numpy as _from_torch  # noqa: F401  (its former name here)
from ._arguments import CHECKPOINT_FORMATS, DecMode, EncMode  # noqa: F401
from ._callback import CheckpointConfig, ModelCheckpoint
from ._into import IncompatibleKeys, load_checkpoint_into
from ._layout import MAX_HEADER_SIZE  # noqa: F401
from ._load import load_checkpoint, load_flat, user_metadata  # noqa: F401  (load_flat: modelcrypt.torch)
from ._one_file import _Checkpoint  # noqa: F401  (tests of random access)
from ._save import save_checkpoint
from ._shards import load_distributed_checkpoint

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "load_distributed_checkpoint",
    "CheckpointConfig",
    "ModelCheckpoint",
    "load_checkpoint_into",
    "IncompatibleKeys",
]
