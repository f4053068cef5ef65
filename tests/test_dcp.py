"""Encrypted PyTorch Distributed Checkpoint storage (issue 16), with real multi-process DCP jobs:
gloo over loopback, file:// rendezvous, DTensor- and FSDP2-sharded state on CPU, resharding
4 -> 2 -> 1, 1 -> 2, 2 -> 4 (row and column cuts), byte counts of what each rank decrypts. Failures
are in test_dcp_failures.py, the converters and the CLI in test_dcp_convert.py."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import require  # noqa: E402

torch = require("torch")
import torch.distributed.checkpoint as dcp  # noqa: E402

import modelcrypt  # noqa: E402
from modelcrypt.torch import dcp as mdcp  # noqa: E402

import dcp_workers  # noqa: E402
from dcp_jobs import KEY, TIMEOUT, files, job  # noqa: E402


def test_saved_by_4_ranks_is_encrypted_and_names_nothing(dcp_saved4):
    names = files(dcp_saved4)
    assert ".metadata" in names and len([n for n in names if n.endswith(".distcp.mcx")]) == 4
    full = dcp_workers.full_tensors()
    for name in names:
        data = (dcp_saved4 / name).read_bytes()
        assert modelcrypt.inspect(dcp_saved4 / name).format == "modelcrypt"
        for word in (b"embed.weight", b"layer.w2_bf16", b"head.bias", b"step", b"float32", b"bfloat16", b"[256,1024]",
                     b"torch"):
            assert word not in data, (name, word)
        assert full["embed.weight"].numpy().tobytes()[:64] not in data


@pytest.mark.parametrize("world", [2, 1])
def test_saved_by_4_loads_resharded(tmp_path, dcp_saved4, world):
    if world == 1:
        state = {n: torch.zeros_like(t) for n, t in dcp_workers.full_tensors().items()}
        state["step"] = 0
        mdcp.load(state, dcp_saved4, KEY)  # no process group: one process
        full = dcp_workers.full_tensors()
        assert all(torch.equal(state[n], full[n]) for n in full) and state["step"] == 42
        return
    for r in job(tmp_path, world, "load", path=dcp_saved4):
        assert all(r["equal"].values()) and r["step"] == 42, r


def test_saved_by_2_loaded_by_4_decrypts_only_its_rows(tmp_path):
    cs = 16 << 10
    path = tmp_path / "ckpt2"
    job(tmp_path, 2, "save", path=path, chunk_size=cs)
    reports = job(tmp_path, 4, "load", path=path)
    stored = sum((path / n).stat().st_size for n in files(path))
    for r in reports:
        assert all(r["equal"].values()), r
        # a rank needs a quarter of embed.weight (64 of 256 rows: 256 KiB) and of layer.w2_bf16, and head.bias:
        # those bytes, the chunks at the ends of each range, each file's item table and the .metadata
        needed = 64 * 1024 * 4 + 10 * 8 * 2 + 16 * 4
        read = r["counters"]["ciphertext_bytes_read"]
        assert read <= needed + 10 * (cs + 16) + (path / ".metadata").stat().st_size, (read, needed)
        assert read < 0.4 * stored, (read, stored)  # not the whole checkpoint: about a quarter of it


def test_fsdp2_model_saved_by_4_loaded_by_2(tmp_path):
    path = tmp_path / "fsdp"
    job(tmp_path, 4, "fsdp2", path=path, mode="save")
    for r in job(tmp_path, 2, "fsdp2", path=path, mode="load"):
        assert r["equal"] and all(r["equal"].values()), r


def test_saved_by_2_and_loaded_column_sharded_by_4_decrypts_only_its_columns(tmp_path):
    """Saved row-sharded, loaded with Shard(1) (a tensor-parallel cut): each rank needs a quarter of
    every row; rows of 256 KiB and 16 KiB encryption chunks let it skip the chunks of other columns."""
    cs = 16 << 10
    path = tmp_path / "wide"
    job(tmp_path, 2, "save_wide", path=path, chunk_size=cs)
    stored = sum((path / n).stat().st_size for n in files(path))
    rows, cols = dcp_workers.WIDE
    for r in job(tmp_path, 4, "load_columns", path=path):
        assert all(r["equal"].values()), r
        needed = rows * cols  # a quarter of each row, in bytes: rows * cols / 4 * 4
        read = r["counters"]["ciphertext_bytes_read"]
        # the columns' bytes, at most two cut chunks per row, each rank file's item table, .metadata
        assert read <= needed + rows * 2 * (cs + 16) + 2 * (cs + 16) + (path / ".metadata").stat().st_size, read
        assert read < 0.4 * stored, (read, stored)


def test_saved_by_1_loaded_by_2(tmp_path):
    state = dict(dcp_workers.full_tensors(), step=42)
    mdcp.save(state, tmp_path / "one", KEY)  # no process group: one process
    for r in job(tmp_path, 2, "load", path=tmp_path / "one"):
        assert all(r["equal"].values()) and r["step"] == 42, r


def test_fsdp2_model_saved_by_2_loaded_by_4(tmp_path):
    path = tmp_path / "fsdp"
    job(tmp_path, 2, "fsdp2", path=path, mode="save")
    for r in job(tmp_path, 4, "fsdp2", path=path, mode="load"):
        assert r["equal"] and all(r["equal"].values()), r


def test_checkpoint_shards_load_into_a_sharded_model(tmp_path):
    full = dcp_workers.full_tensors()
    modelcrypt.save_checkpoint(full, tmp_path / "model.ckpt", KEY, max_shard_size="300KB")
    index = next(p for p in tmp_path.iterdir() if p.name.endswith(".index.json"))
    for r in job(tmp_path, 2, "load_checkpoint_file", path=index):
        assert all(r["equal"].values()), r


def test_checkpoint_shards_loaded_by_2_ranks_decrypt_only_their_rows(tmp_path):
    """save_checkpoint shards through ModelcryptCheckpointReader: each of 2 ranks decrypts its half of
    the row-sharded tensors, each shard's header once, not the whole checkpoint."""
    modelcrypt.save_checkpoint(dcp_workers.big_tensors(), tmp_path / "big.ckpt", KEY, max_shard_size="20MB")
    index = next(p for p in tmp_path.iterdir() if p.name.endswith(".index.json"))
    shards = [p for p in tmp_path.iterdir() if p.name.endswith(".ckpt")]
    assert len(shards) == 2
    stored = sum(p.stat().st_size for p in shards)
    chunk = (1 << 20) + 16
    for r in job(tmp_path, 2, "load_big_checkpoint", path=index):
        assert all(r["equal"].values()), r
        read = r["counters"]["ciphertext_bytes_read"]
        needed = stored // 2
        # per shard: its header chunk, and the cut chunk at each end of each tensor's half
        assert read <= needed + len(shards) * 3 * chunk, (read, needed)
        assert read < 0.65 * stored, (read, stored)


def test_async_save(tmp_path):
    state = {"w": torch.randn(300, 30), "step": 5}
    fut = dcp.async_save(state, storage_writer=mdcp.EncryptedFileSystemWriter(tmp_path / "a", KEY), no_dist=True)
    (fut.result() if hasattr(fut, "result") else fut.upload_completion.result())
    target = {"w": torch.zeros(300, 30), "step": 0}
    mdcp.load(target, tmp_path / "a", KEY)
    assert torch.equal(target["w"], state["w"]) and target["step"] == 5


def test_recipients_identity_and_signatures(tmp_path):
    ident, sk = modelcrypt.generate_identity(), modelcrypt.generate_signing_key()
    state = {"w": torch.randn(64, 8)}
    mdcp.save(state, tmp_path / "r", recipients=[ident.recipient], signing_key=sk)
    target = {"w": torch.zeros(64, 8)}
    mdcp.load(target, tmp_path / "r", identity=ident, trusted_signers=[sk.public_key])
    assert torch.equal(target["w"], state["w"])
    with pytest.raises(modelcrypt.SignatureError):
        mdcp.load(target, tmp_path / "r", identity=ident, trusted_signers=[modelcrypt.generate_signing_key().public_key])


def test_example_runs_on_two_ranks(tmp_path):
    """examples/distributed_training.py as torchrun would run it (RANK / WORLD_SIZE), with a file://
    rendezvous instead of torchrun's TCP store, so that nothing listens beyond loopback."""
    example = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples",
                           "distributed_training.py")
    env = {**os.environ, "MODELCRYPT_KEY": KEY.hex(), "WORLD_SIZE": "2", "GLOO_SOCKET_IFNAME": "lo",
           "INIT_METHOD": f"file://{tmp_path / 'rendezvous'}", "SKBUILD_EDITABLE_VERBOSE": "0"}
    procs = [subprocess.Popen([sys.executable, example, str(tmp_path / "ckpt")], env={**env, "RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=TIMEOUT))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("the example did not finish")
    assert all(p.returncode == 0 for p in procs), outs
    assert "identical" in outs[0][0] and "from 2 ranks at step 5" in outs[0][0], outs
    for name in os.listdir(tmp_path / "ckpt"):
        assert modelcrypt.inspect(tmp_path / "ckpt" / name).format == "modelcrypt"


def test_threads_per_rank(tmp_path, monkeypatch):
    """threads= is checked like every other threads argument; by default a rank takes its share of
    the cores among LOCAL_WORLD_SIZE ranks (torchrun's), and a save/load with any count is the same."""
    from modelcrypt.checkpoint import dcp as storage
    cores = len(os.sched_getaffinity(0))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert storage._rank_threads(None) == 0  # every core
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(2 * cores))
    assert storage._rank_threads(None) == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert storage._rank_threads(None) == 0
    assert storage._rank_threads(3) == 3
    with pytest.raises(ValueError, match="threads"):
        mdcp.EncryptedFileSystemWriter(tmp_path / "x", KEY, threads=0)
    with pytest.raises(TypeError, match="threads"):
        mdcp.EncryptedFileSystemReader(tmp_path / "x", KEY, threads="2")
    full = dcp_workers.full_tensors()
    for threads in (1, 3):
        dcp.save(dict(full), storage_writer=mdcp.EncryptedFileSystemWriter(tmp_path / f"t{threads}", KEY,
                                                                           threads=threads), no_dist=True)
        target = {n: torch.zeros_like(t) for n, t in full.items()}
        dcp.load(target, storage_reader=mdcp.EncryptedFileSystemReader(tmp_path / f"t{threads}", KEY,
                                                                       threads=4 - threads), no_dist=True)
        assert all(torch.equal(target[n], full[n]) for n in full)
