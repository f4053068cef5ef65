"""``load_into_model``: an encrypted checkpoint decrypted straight into a model's own parameters.

``model.load_state_dict(modelcrypt.torch.load_state_dict(path, key))`` holds the weights twice:
the decrypted checkpoint and the model's parameters. ``load_into_model`` decrypts every tensor
directly into the storage of the parameter or buffer it belongs to (modelcrypt.load_checkpoint_into),
so peak extra memory stays at a few MiB whatever the model's size.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch.nn.modules.module import _IncompatibleKeys

from ..checkpoint import load_checkpoint_into

__all__ = ["load_into_model"]


def _backed_by_model(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Every state_dict entry must be the memory of a parameter or buffer of the model (a module
    with its own _save_to_state_dict may hand out copies, which loading into would not reach)."""
    owned = {t.data_ptr() for t in model.parameters()} | {t.data_ptr() for t in model.buffers()}
    for name, t in state.items():
        if t.numel() and t.data_ptr() not in owned:
            raise ValueError(f"state_dict entry {name!r} of {type(model).__name__} is not the memory of one of its "
                             "parameters or buffers (a custom state_dict?); load it with load_state_dict instead")


def load_into_model(model: torch.nn.Module, path: Any, key: Any = None, *, strict: bool = True,
                    identity: Any = None, trusted_signers: Optional[list] = None,
                    threads: Optional[int] = None) -> _IncompatibleKeys:
    """Load a checkpoint saved by ``modelcrypt.save_checkpoint(model.state_dict(), ...)`` (one file or
    the ``*.index.json`` of a sharded save) into ``model``'s existing parameters and buffers.

    Each tensor is decrypted straight into the storage behind ``model.state_dict()`` (no second copy
    of the weights is ever allocated; ``data_ptr()`` of every parameter is unchanged): parameters
    must be on the CPU and contiguous, dtypes (bf16 included) and shapes must match the checkpoint
    exactly (ValueError naming the tensor, before anything is decrypted; convert the model first,
    e.g. ``model.to(torch.bfloat16)``). Tied weights (two names, one storage) are loaded once.
    ``strict`` as for ``load_state_dict``: a missing name is a KeyError, a tensor the model lacks a
    ValueError; without it both are skipped. Returns ``(missing_keys, unexpected_keys)`` like
    ``load_state_dict``. Load-state-dict hooks of the modules are not run (the bytes are written in
    place). Errors as for modelcrypt.load_checkpoint_into: on any error during decryption every
    parameter already written is zeroed, so a failed load never leaves a half-loaded model behind.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    state = model.state_dict()
    _backed_by_model(model, state)
    with torch.no_grad():
        result = load_checkpoint_into(state, path, key, strict=strict, identity=identity,
                                      trusted_signers=trusted_signers, threads=threads)
    bump = getattr(torch.autograd.graph, "increment_version", None)
    if bump is not None:  # as an in-place copy_ would: autograd sees the parameters changed
        for t in state.values():
            bump(t)
    return _IncompatibleKeys(result.missing_keys, result.unexpected_keys)
