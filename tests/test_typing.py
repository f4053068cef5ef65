"""The public API's type hints are complete enough for ``mypy --strict`` on a user's program
(tests/typing/user_script.py), run against the installed package."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import require

SCRIPT = os.path.join(os.path.dirname(__file__), "typing", "user_script.py")


def _mypy(tmp_path, *args: str) -> subprocess.CompletedProcess:
    require("mypy", load=False)
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--cache-dir",
                           str(tmp_path / "cache"), *args], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path)


def test_user_script_passes_mypy_strict(tmp_path):
    proc = _mypy(tmp_path, SCRIPT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_catches_a_wrong_call(tmp_path):
    """The check has teeth: a wrong argument type and a wrong use of a return value are reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("import modelcrypt\n"
                   "modelcrypt.encrypt_file('a', 'b', key=12345)\n"
                   "size: str = modelcrypt.generate_key()\n"
                   "modelcrypt.torch.load_state_dict('ckpt.mcx', b'k' * 32, names=7)\n")
    proc = _mypy(tmp_path, str(bad))
    assert proc.returncode == 1
    assert "bad.py:2: error" in proc.stdout and "bad.py:3: error" in proc.stdout
    assert "bad.py:4: error" in proc.stdout
