"""Training-loop helpers: CheckpointConfig and ModelCheckpoint (save every N steps, keep the newest K)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Optional

from .. import _sets
from .._api import BytesLike, StrPath, _fspath, _shown
from ._arguments import EncMode, _check_encryption
from ._save import save_checkpoint


class CheckpointConfig:
    """How often ModelCheckpoint saves and how many files it keeps (MindSpore's names).

    ``save_checkpoint_steps``: save when ``step % save_checkpoint_steps == 0``. ``keep_checkpoint_max``:
    how many checkpoints of the prefix to keep. ``enc_key`` / ``enc_mode`` / ``signing_key`` /
    ``recipients`` as for save_checkpoint (no key and no recipients: plain .safetensors checkpoints).
    """

    def __init__(
        self,
        save_checkpoint_steps: int = 1,
        keep_checkpoint_max: int = 5,
        enc_key: Optional[BytesLike] = None,
        enc_mode: EncMode = "AES-GCM",
        signing_key: Any = None,
        recipients: Optional[list[Any]] = None,
    ):
        for what, value in (("save_checkpoint_steps", save_checkpoint_steps),
                            ("keep_checkpoint_max", keep_checkpoint_max)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{what} must be an int, not {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{what} must be >= 1, got {value}")
        self.save_checkpoint_steps = save_checkpoint_steps
        self.keep_checkpoint_max = keep_checkpoint_max
        self.encryption = _check_encryption(enc_key, enc_mode, recipients, signing_key)

    # The writer settings can be changed after construction; each change is checked as in __init__.
    def _replace(self, **changes: Any) -> None:
        enc = self.encryption
        now = {"enc_key": enc.key, "enc_mode": enc.mode, "recipients": enc.recipients, "signing_key": enc.signing_key}
        now.update(changes)
        self.encryption = _check_encryption(now["enc_key"], now["enc_mode"], now["recipients"], now["signing_key"])

    @property
    def enc_key(self) -> Optional[BytesLike]:
        return self.encryption.key

    @enc_key.setter
    def enc_key(self, value: Optional[BytesLike]) -> None:
        self._replace(enc_key=value)

    @property
    def enc_mode(self) -> EncMode:
        return self.encryption.mode

    @enc_mode.setter
    def enc_mode(self, value: EncMode) -> None:
        self._replace(enc_mode=value)

    @property
    def signing_key(self) -> Any:
        return self.encryption.signing_key

    @signing_key.setter
    def signing_key(self, value: Any) -> None:
        self._replace(signing_key=value)

    @property
    def recipients(self) -> Optional[list[bytes]]:
        """The X25519 recipients (32-byte public keys), or None."""
        return self.encryption.recipients

    @recipients.setter
    def recipients(self, value: Optional[list[Any]]) -> None:
        self._replace(recipients=value)

    def __repr__(self) -> str:
        mode = getattr(self.enc_mode, "__name__", "custom") if callable(self.enc_mode) else self.enc_mode
        return (f"CheckpointConfig(save_checkpoint_steps={self.save_checkpoint_steps}, "
                f"keep_checkpoint_max={self.keep_checkpoint_max}, "
                f"enc_key={'<set>' if self.enc_key is not None else None}, enc_mode={mode!r}"
                + (f", recipients=<{len(self.recipients)}>" if self.recipients else "")
                + (f", signing_key={self.signing_key!r})" if self.signing_key is not None else ")"))


class ModelCheckpoint:
    """Saves ``<directory>/<prefix>-<step>.ckpt`` every ``config.save_checkpoint_steps`` steps.

    Keeps the newest ``config.keep_checkpoint_max`` checkpoints of this prefix by step number,
    counting those left in the directory by an earlier run; the checkpoint just written is always
    kept. Older files are deleted only after the new one is complete, and every save is atomic,
    so a crash or error during a save never destroys the previous checkpoint.

    Encrypted checkpoints (string ``enc_mode``, with a key and/or recipients) carry, authenticated, this object's
    ``series_id``, their file name and their step: ``load_checkpoint`` refuses (SetMismatchError)
    such a file under any name but ``<prefix>-<step>.ckpt`` with its own step, so an old
    checkpoint cannot be renamed to pass for a newer one.
    ``directory`` defaults to the current directory and is created if missing.
    """

    def __init__(self, prefix: str, directory: Optional[StrPath] = None, config: Optional[CheckpointConfig] = None):
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a str, not {type(prefix).__name__}")
        if not prefix or "/" in prefix or os.sep in prefix or prefix in (".", ".."):
            raise ValueError("prefix must be a non-empty file name prefix without path separators, "
                             f"got {_shown(prefix)}")
        if config is None:
            config = CheckpointConfig()
        elif not isinstance(config, CheckpointConfig):
            raise TypeError(f"config must be a CheckpointConfig or None, not {type(config).__name__}")
        self.prefix = prefix
        self.directory = os.path.abspath(os.fsdecode(_fspath(directory, "directory")) if directory is not None else ".")
        self.config = config
        self._pattern = re.compile(re.escape(prefix) + r"-(\d+)\.ckpt")
        self._last_saved: Optional[str] = None
        #: the id binding this object's checkpoints into one series (authenticated in each file)
        self.series_id = _sets.new_set_id()
        os.makedirs(self.directory, exist_ok=True)

    def _existing(self) -> list[tuple[int, str]]:
        found = []
        for entry in os.listdir(self.directory):
            m = self._pattern.fullmatch(entry)
            if m:
                found.append((int(m.group(1)), os.path.join(self.directory, entry)))
        return sorted(found)

    def checkpoints(self) -> list[str]:
        """Paths of this prefix's checkpoints in the directory, oldest step first."""
        return [p for _, p in self._existing()]

    @property
    def latest(self) -> Optional[str]:
        """The checkpoint this object saved last, else the highest-step one in the directory, else None."""
        if self._last_saved is not None and os.path.exists(self._last_saved):
            return self._last_saved
        existing = self._existing()
        return existing[-1][1] if existing else None

    def step(self, params: Mapping[str, Any], step: int) -> Optional[str]:
        """Save ``params`` if ``step`` is a multiple of save_checkpoint_steps; returns the path or None."""
        if isinstance(step, bool) or not isinstance(step, int):
            raise TypeError(f"step must be an int, not {type(step).__name__}")
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        if step % self.config.save_checkpoint_steps:
            return None
        name = f"{self.prefix}-{step}.ckpt"
        path = os.path.join(self.directory, name)
        binding = None
        enc = self.config.encryption
        if enc.modelcrypt:
            binding = {_sets.SET: self.series_id, _sets.MEMBER: name, _sets.STEP: str(step)}
        save_checkpoint(params, path, enc.key, enc.mode, signing_key=enc.signing_key, recipients=enc.recipients,
                        _binding=binding)
        self._last_saved = path
        others = [p for _, p in self._existing() if p != path]
        keep = self.config.keep_checkpoint_max - 1
        for old in others[: max(0, len(others) - keep)]:
            try:
                os.unlink(old)
            except FileNotFoundError:
                pass
        return path
