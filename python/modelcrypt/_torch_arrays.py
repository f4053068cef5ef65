"""Torch tensors as numpy arrays, for the writers of checkpoints (safetensors and MindSpore).

torch is imported only when a value is a torch object, so numpy-only callers never import it.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

__all__: list[str] = []


def torch_to_numpy(name: str, t: Any) -> tuple[np.ndarray, Optional[str]]:
    """``t`` detached, on the CPU and contiguous, as a numpy array; with ``"BF16"`` when it is bfloat16
    (returned as its raw uint16 bits, numpy having no bfloat16), else with None."""
    import torch  # only reached for objects that are torch tensors, so torch is installed

    if not isinstance(t, torch.Tensor):
        raise TypeError(f"checkpoint value {name!r} is a {type(t).__module__}.{type(t).__name__}, not a tensor")
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16), "BF16"
    try:
        return t.numpy(), None
    except TypeError as exc:
        raise TypeError(f"checkpoint value {name!r}: torch dtype {t.dtype} is not supported ({exc})") from None
