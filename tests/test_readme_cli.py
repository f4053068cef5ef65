"""The README's command-line block runs as written, top to bottom, in a fresh directory."""

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _cli_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Keys and the command line"):]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "no ```sh block in the README's 'Keys and the command line' section"
    return match.group(1)


def _run_in_a_fresh_directory(tmp_path, block: str):
    """Runs a README block with bash -euo pipefail in an empty directory, `modelcrypt` on PATH as the
    installed entry point would be (this interpreter running the package). Returns (result, directory)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    launcher = bindir / "modelcrypt"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m modelcrypt "$@"\n')
    launcher.chmod(0o755)
    work = tmp_path / "fresh"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELCRYPT_")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=work, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r, work


def test_readme_cli_block_runs_in_a_fresh_directory(tmp_path):
    block = _cli_block()
    assert "modelcrypt keygen" in block and "modelcrypt decrypt" in block
    r, work = _run_in_a_fresh_directory(tmp_path, block)
    key_hex = (work / "model.key").read_text().strip()
    assert key_hex not in r.stdout + r.stderr
    assert (work / "model.onnx.mcx").is_file() and (work / "paddle_model.enc").is_dir()
    assert (work / "model.copy.onnx").read_bytes() == (work / "model.onnx").read_bytes()


def _sh_block(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"```sh\n(.*?)```", text[text.index(title):], re.S)
    assert match, f"no ```sh block in the README's {title!r} section"
    return match.group(1)


def test_readme_publisher_signature_block_runs_after_the_cli_block(tmp_path):
    block = _cli_block() + _sh_block("## Publisher signatures")
    assert "--sign publisher.sign" in block and "--trust publisher.pub" in block
    r, work = _run_in_a_fresh_directory(tmp_path, block)
    assert (work / "model.checked.onnx").read_bytes() == (work / "model.onnx").read_bytes()
    assert (work / "model.signed.mcx").read_bytes()[8] == 3  # format v3
    assert "SIGNING-KEY" not in (r.stdout + r.stderr).upper()
