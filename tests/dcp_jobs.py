"""Helpers of the DCP tests (test_dcp*.py): running a real multi-process DCP job, the files of a
checkpoint directory, the CLI in a child process, key files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp

import dcp_workers

KEY = bytes(range(32))
TIMEOUT = 240


def job(tmp_path, world: int, task: str, **args) -> list[dict]:
    """Runs ``task`` on ``world`` ranks; returns each rank's report. Fails (never hangs) past TIMEOUT."""
    out = tmp_path / f"out_{task}_{world}_{len(os.listdir(tmp_path))}"
    out.mkdir()
    init = out / "rendezvous"
    args = {"key": KEY.hex(), **{k: str(v) if isinstance(v, os.PathLike) else v for k, v in args.items()}}
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    ctx = mp.start_processes(dcp_workers.run, args=(world, str(init), str(out), task, args), nprocs=world,
                             join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT
    while not ctx.join(timeout=max(1, deadline - time.monotonic())):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"{task} on {world} ranks did not finish in {TIMEOUT} s")
    reports = [json.loads((out / f"{task}_{r}.json").read_text()) for r in range(world)]
    for r in reports:
        assert "crash" not in r, r["crash"]
    return reports


def files(path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def rank_files(path) -> list:
    return [path / n for n in files(path) if n.endswith(".distcp.mcx")]


def copy_dir(src, dst):
    shutil.copytree(src, dst)
    return dst


def full_target() -> dict:
    """A state dict shaped like dcp_workers' saves, all zeros (and step 0), for one process."""
    state = {n: torch.zeros_like(t) for n, t in dcp_workers.full_tensors().items()}
    state["step"] = 0
    return state


def write_key(path, key: bytes):
    path.write_text(key.hex() + "\n")
    os.chmod(path, 0o600)
    return path


def mc(*args) -> subprocess.CompletedProcess:
    """The modelcrypt CLI in a child process."""
    return subprocess.run([sys.executable, "-m", "modelcrypt", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}, timeout=300)
