"""Encrypted PyTorch Distributed Checkpoint (DCP) storage, and converters.

    import torch.distributed.checkpoint as dcp
    from modelcrypt.torch import dcp as mdcp

    dcp.save(state_dict, storage_writer=mdcp.EncryptedFileSystemWriter("ckpt/", key))   # or recipients=[...]
    dcp.load(state_dict, storage_reader=mdcp.EncryptedFileSystemReader("ckpt/", key))   # or identity=...
    dcp.async_save(state_dict, storage_writer=mdcp.EncryptedFileSystemWriter("ckpt/", key))
    dcp.load(state_dict, storage_reader=mdcp.ModelcryptCheckpointReader("model.index.json", key))

    mdcp.dcp_to_checkpoint("ckpt/", "model.ckpt", key)      # one encrypted save_checkpoint file
    mdcp.checkpoint_to_dcp("model.ckpt", "ckpt/", key)      # and back

DCP reports a rank's failure as a ``CheckpointException`` on every rank; ``load(...)`` and
``save(...)`` here call DCP and raise the ModelCryptError inside it instead. Importable without a
process group: converters and ``no_dist`` loads work offline. The storage format:
``modelcrypt.checkpoint.dcp``.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any, Callable, Iterator, Optional

import torch
import torch.distributed.checkpoint as _dcp
from torch.distributed.checkpoint.metadata import TensorStorageMetadata

from .. import exceptions as _exceptions
from ..checkpoint import save_checkpoint
from ..checkpoint.dcp import EncryptedFileSystemReader, EncryptedFileSystemWriter, raise_modelcrypt_error
from ..checkpoint.dcp_checkpoint_reader import ModelcryptCheckpointReader
from ..exceptions import ModelCryptError

__all__ = ["EncryptedFileSystemWriter", "EncryptedFileSystemReader", "ModelcryptCheckpointReader", "save", "load",
           "dcp_to_checkpoint", "checkpoint_to_dcp", "raise_modelcrypt_error", "ObjectItemError"]


def _no_dist() -> bool:
    return not (torch.distributed.is_available() and torch.distributed.is_initialized())


@contextlib.contextmanager
def _one_process() -> Iterator[None]:
    """DCP warns that it assumes a single process when there is no process group: here that is the intent."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
        yield


def _run(dcp_call: Any, state_dict: dict, dcp_kwargs: dict, **storage: Any) -> None:
    """Calls dcp.save / dcp.load (one process when there is no process group) and raises the
    ModelCryptError (else OSError) of any rank as itself instead of DCP's CheckpointException."""
    dcp_kwargs.setdefault("no_dist", _no_dist())
    try:
        with _one_process() if dcp_kwargs["no_dist"] else contextlib.nullcontext():
            dcp_call(state_dict, **storage, **dcp_kwargs)
    except _dcp.api.CheckpointException as exc:
        raise_modelcrypt_error(exc, storage.get("storage_reader"))
        raise


def _peer_error(rank: int, outcome: tuple[str, str, bool]) -> Exception:
    """The error another rank reported (its class name, message, whether a ModelCryptError) as an
    exception of this rank: the same ModelCryptError class when there is one of that name."""
    name, message, modelcrypt_error = outcome
    cls = getattr(_exceptions, name, None) if modelcrypt_error else None
    if not (isinstance(cls, type) and issubclass(cls, ModelCryptError)):
        cls = ModelCryptError if modelcrypt_error else RuntimeError
    return cls(f"rank {rank}: {message}")


def _agreed(step: Callable[[], Any], dcp_kwargs: dict) -> Any:
    """Runs ``step`` (a rank-local check before DCP's first collective) on every rank and makes the
    ranks agree on its outcome: when one rank fails, every rank raises (its own error, else the first
    failing rank's, a ModelCryptError first), instead of the healthy ranks waiting in DCP's
    collectives for a rank that is gone."""
    dcp_kwargs.setdefault("no_dist", _no_dist())
    error: Optional[Exception] = None
    result = None
    try:
        result = step()
    except Exception as exc:  # noqa: BLE001 - reported to the other ranks, then raised
        error = exc
    if not dcp_kwargs["no_dist"]:
        group = dcp_kwargs.get("process_group")
        mine = None if error is None else (type(error).__name__, str(error), isinstance(error, ModelCryptError))
        outcomes: list[Any] = [None] * torch.distributed.get_world_size(group)
        torch.distributed.all_gather_object(outcomes, mine, group=group)
        if error is None:
            failed = sorted(((not o[2], r), o) for r, o in enumerate(outcomes) if o is not None)
            if failed:
                (_, rank), outcome = failed[0]
                raise _peer_error(rank, outcome)
    if error is not None:
        raise error
    return result


def save(state_dict: dict, path: Any, key: Any = None, *, recipients: Any = None, signing_key: Any = None,
         **dcp_kwargs: Any) -> None:
    """``dcp.save`` to an encrypted checkpoint; a ModelCryptError on any rank is raised as itself (on
    every rank: a bad key or recipient on one rank only is agreed on before DCP starts)."""
    writer = _agreed(lambda: EncryptedFileSystemWriter(path, key, recipients=recipients, signing_key=signing_key),
                     dcp_kwargs)
    _run(_dcp.save, state_dict, dcp_kwargs, storage_writer=writer)


def load(state_dict: dict, path: Any, key: Any = None, *, identity: Any = None, trusted_signers: Any = None,
         **dcp_kwargs: Any) -> None:
    """``dcp.load`` (in place, resharding as DCP does) from an encrypted checkpoint. The metadata is
    authenticated first on every rank and the ranks agree on the outcome, so a wrong key or a foreign
    file, even on one rank only, is a ModelCryptError on every rank (a rank whose own check passed
    raises the failing rank's error class, its message prefixed with ``rank N:``)."""
    def open_checkpoint() -> EncryptedFileSystemReader:
        reader = EncryptedFileSystemReader(path, key, identity=identity, trusted_signers=trusted_signers)
        reader.read_metadata()
        return reader

    _run(_dcp.load, state_dict, dcp_kwargs, storage_reader=_agreed(open_checkpoint, dcp_kwargs))


class ObjectItemError(ValueError):
    """A DCP checkpoint holds an object (non-tensor) item, e.g. an optimizer's ``param_groups`` or a
    step counter, which a save_checkpoint file (tensors only) cannot hold."""


def _full_state_dict(reader: Any, tensors_only: bool = False) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint, whole, as a flat dict (one process); object items are refused
    (ObjectItemError), or left out with ``tensors_only``."""
    md = reader.read_metadata()
    state: dict[str, Any] = {}
    for fqn, item in md.state_dict_metadata.items():
        if not isinstance(item, TensorStorageMetadata):
            if tensors_only:
                continue
            raise ObjectItemError(f"{fqn!r} is not a tensor (a DCP object item, such as an optimizer's param_groups "
                                  "or a step count): a save_checkpoint file holds tensors only; convert with "
                                  "tensors_only=True (CLI: --tensors-only) to leave such items out")
        state[fqn] = torch.empty(item.size, dtype=item.properties.dtype)
    with _one_process():
        _dcp.load(state, storage_reader=reader, no_dist=True)
    return state


def dcp_to_checkpoint(src: Any, dst: Any, key: Any = None, *, identity: Any = None, trusted_signers: Any = None,
                      out_key: Any = None, signing_key: Any = None, metadata: Optional[dict] = None,
                      tensors_only: bool = False) -> None:
    """An encrypted DCP checkpoint (directory ``src``) as one encrypted ``save_checkpoint`` file ``dst``,
    under ``out_key`` (default: ``key``; with ``identity`` it is required: a TypeError otherwise, never a
    plaintext file). Holds the whole state dict in memory once; nothing in plaintext
    on disk. Object (non-tensor) items (optimizer param_groups, step counts: a save_checkpoint file
    holds tensors only) are an ObjectItemError (a ValueError), or left out with ``tensors_only=True``."""
    output_key = out_key if out_key is not None else key
    if output_key is None:  # save_checkpoint without a key writes plaintext: never by default here
        raise TypeError("dcp_to_checkpoint needs an output key: give out_key= (the DCP checkpoint was opened "
                        "with an identity, and a save_checkpoint file is encrypted under a symmetric key)")
    reader = EncryptedFileSystemReader(src, key, identity=identity, trusted_signers=trusted_signers)
    state = _full_state_dict(reader, tensors_only)
    save_checkpoint(state, os.fspath(dst), output_key, metadata=metadata, signing_key=signing_key)


def checkpoint_to_dcp(src: Any, dst: Any, key: Any = None, *, identity: Any = None, out_key: Any = None,
                      recipients: Any = None, signing_key: Any = None, trusted_signers: Any = None) -> None:
    """A modelcrypt checkpoint (one file or a shard index, opened with ``key`` or ``identity``) as an
    encrypted DCP checkpoint in directory ``dst`` under ``out_key`` (default: ``key``) and/or
    ``recipients`` (one process; load it with any number of ranks)."""
    output_key = out_key if out_key is not None else key
    if output_key is None and not recipients:  # checked before anything is read or decrypted
        raise TypeError("checkpoint_to_dcp needs an output key or recipients: give out_key= and/or recipients=")
    writer = EncryptedFileSystemWriter(dst, output_key, recipients=recipients, signing_key=signing_key)
    reader = ModelcryptCheckpointReader(src, key, identity=identity, trusted_signers=trusted_signers)
    state = _full_state_dict(reader)
    with _one_process():
        _dcp.save(state, storage_writer=writer, no_dist=True)
