"""Training states in checkpoints: what ``torch.save`` users pass to save (nested dicts such as an
optimizer's ``state_dict()``, lists, tuples, Python scalars and strings alongside tensors), stored
without pickle.

The tensors become the checkpoint's entries under dotted names made of their path
(``{"optimizer": {"state": {0: {"exp_avg": t}}}}`` -> ``optimizer.state.0.exp_avg``); everything
else is a typed JSON tree (the *structure*) in the safetensors ``__metadata__`` under
``modelcrypt.structure``, so it is encrypted and authenticated with the tensors. Loading rebuilds
the same structure with the same types: int dict keys stay int, tuples stay tuples, bool stays
bool, floats are bit-exact (stored as float.hex(), NaN and infinities included). A flat mapping of
names to tensors has no structure: its file is exactly what it always was.

Structure nodes (JSON): {"t": "dict", "items": [[key, node], ...]} (key: a str, or {"int": "N"}),
{"t": "list" | "tuple", "items": [node, ...]}, {"t": "tensor", "name": N}, {"t": "str", "v": s},
{"t": "int", "v": "N"}, {"t": "float", "v": hex}, {"t": "bool", "v": b}, {"t": "none"}.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Callable

from .exceptions import FormatError

STRUCTURE_KEY = "modelcrypt.structure"
MAX_DEPTH = 64


def is_tensor(value: Any) -> bool:
    import numpy as np

    if isinstance(value, (np.ndarray, np.generic)) and not isinstance(value, (np.str_, np.bytes_)):
        return True
    return type(value).__module__.startswith("torch") and type(value).__name__ in ("Tensor", "Parameter")


def is_flat(params: Mapping) -> bool:
    """A mapping of str names to tensors only: saved exactly as before (no structure)."""
    return all(isinstance(k, str) and is_tensor(v) for k, v in params.items())


def flatten(params: Mapping) -> tuple[dict[str, Any], str]:
    """(tensors by dotted name, structure JSON). A name reached twice (``{"a.b": t, "a": {"b": u}}``)
    is a ValueError: every tensor has one name, and one name one tensor."""
    tensors: dict[str, Any] = {}

    def name_of(path: list[str]) -> str:
        name = ".".join(path)
        if name in tensors or name == "__metadata__":
            raise ValueError(f"two tensors of the checkpoint would both be named {name!r}; rename a key "
                             "(names join the path with '.')")
        return name

    def node(value: Any, path: list[str], depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ValueError(f"checkpoint structure nested deeper than {MAX_DEPTH} levels")
        if is_tensor(value):
            if not path:
                raise TypeError("params must be a mapping, not a single tensor")
            name = name_of(path)
            tensors[name] = value
            return {"t": "tensor", "name": name}
        if isinstance(value, bool):
            return {"t": "bool", "v": value}
        if isinstance(value, int):
            return {"t": "int", "v": str(int(value))}
        if isinstance(value, float):
            return {"t": "float", "v": float(value).hex()}
        if isinstance(value, str):
            return {"t": "str", "v": value}
        if value is None:
            return {"t": "none"}
        if isinstance(value, Mapping):
            items = []
            for k, v in value.items():
                if isinstance(k, bool) or not isinstance(k, (str, int)):
                    raise TypeError(f"checkpoint dict keys must be str or int, not {type(k).__name__} "
                                    f"(at {'.'.join(path) or 'the top'})")
                key = k if isinstance(k, str) else {"int": str(int(k))}
                items.append([key, node(v, path + [str(k)], depth + 1)])
            return {"t": "dict", "items": items}
        if isinstance(value, (list, tuple)):
            kind = "tuple" if isinstance(value, tuple) else "list"
            return {"t": kind, "items": [node(v, path + [str(i)], depth + 1) for i, v in enumerate(value)]}
        raise TypeError(f"checkpoint value at {'.'.join(path) or 'the top'} is a {type(value).__name__}: "
                        "a checkpoint holds tensors, dicts, lists, tuples, str, int, float, bool and None "
                        "(no pickle)")

    root = node(params, [], 0)
    return tensors, json.dumps(root, ensure_ascii=False, separators=(",", ":"))


def unflatten(structure: str, tensors: Mapping[str, Any], where: str,
              leaf: Callable[[Any], Any] = lambda t: t) -> Any:
    """The saved structure with its tensors put back (``leaf`` converts each, e.g. to torch)."""
    try:
        root = json.loads(structure)
    except (ValueError, RecursionError):
        raise FormatError(f"{where}: its {STRUCTURE_KEY} metadata is not JSON") from None
    used: set[str] = set()

    def bad(what: str) -> FormatError:
        return FormatError(f"{where}: malformed {STRUCTURE_KEY} metadata ({what})")

    def build(n: Any, depth: int) -> Any:
        if depth > MAX_DEPTH + 1 or not isinstance(n, dict):
            raise bad("a node is not an object, or nesting is too deep")
        t = n.get("t")
        if t == "tensor":
            name = n.get("name")
            if not isinstance(name, str) or name not in tensors or name in used:
                raise bad("a tensor it names is missing or named twice")
            used.add(name)
            return leaf(tensors[name])
        if t == "dict":
            out = {}
            for pair in _items(n, bad):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise bad("a dict item is not a [key, value] pair")
                k, v = pair
                if isinstance(k, dict) and set(k) == {"int"} and isinstance(k["int"], str):
                    k = _int(k["int"], bad)
                elif not isinstance(k, str):
                    raise bad("a dict key is neither a str nor an int")
                if k in out:
                    raise bad("a dict key appears twice")
                out[k] = build(v, depth + 1)
            return out
        if t in ("list", "tuple"):
            items = [build(v, depth + 1) for v in _items(n, bad)]
            return tuple(items) if t == "tuple" else items
        if t == "str" and isinstance(n.get("v"), str):
            return n["v"]
        if t == "int" and isinstance(n.get("v"), str):
            return _int(n["v"], bad)
        if t == "float" and isinstance(n.get("v"), str):
            try:
                return float.fromhex(n["v"])
            except ValueError:
                raise bad("a float is not float.hex() text") from None
        if t == "bool" and isinstance(n.get("v"), bool):
            return n["v"]
        if t == "none":
            return None
        raise bad(f"unknown node type {t!r}" if isinstance(t, str) and len(t) < 16 else "unknown node type")

    state = build(root, 0)
    if len(used) != len(tensors):
        raise FormatError(f"{where}: {len(tensors) - len(used)} tensor(s) of the checkpoint are not in its "
                          f"{STRUCTURE_KEY} metadata")
    return state


def _items(n: dict, bad: Callable[[str], FormatError]) -> list:
    items = n.get("items")
    if not isinstance(items, list):
        raise bad("a container has no item list")
    return items


def _int(text: str, bad: Callable[[str], FormatError]) -> int:
    if len(text) > 4300 or not (text.lstrip("-").isdigit() and text.isascii()):
        raise bad("an int is not decimal text")
    return int(text)
