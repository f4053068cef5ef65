"""Encrypted DCP checkpoints fail closed (issue 16): missing, foreign, truncated, flipped, swapped or
hostile files and a wrong key raise a ModelCryptError on every rank, never hang and apply nothing;
a save that dies leaves the previous checkpoint loadable; stored objects are never unpickled freely."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from conftest import require  # noqa: E402

torch = require("torch")
import torch.distributed.checkpoint as dcp  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

import modelcrypt  # noqa: E402
from modelcrypt.torch import dcp as mdcp  # noqa: E402

import dcp_workers  # noqa: E402
from dcp_jobs import KEY, TIMEOUT, copy_dir, full_target, job, rank_files  # noqa: E402


def test_failures_raise_on_every_rank_and_touch_nothing(tmp_path, dcp_saved4):
    other = tmp_path / "other"
    job(tmp_path, 4, "save", path=other, chunk_size=64 << 10)
    cases = {}
    missing = copy_dir(dcp_saved4, tmp_path / "missing")
    rank_files(missing)[1].unlink()
    cases["missing"] = (missing, "SetMismatchError")
    foreign = copy_dir(dcp_saved4, tmp_path / "foreign")
    victim = rank_files(foreign)[2]
    rank_prefix = victim.name.split("_")[2]  # '__2_<save>.distcp.mcx' -> '2'
    replacement = next(p for p in rank_files(other) if p.name.split("_")[2] == rank_prefix)
    shutil.copy(replacement, victim)
    cases["other save"] = (foreign, "SetMismatchError")
    truncated = copy_dir(dcp_saved4, tmp_path / "truncated")
    f = rank_files(truncated)[0]
    f.write_bytes(f.read_bytes()[:-100])
    cases["truncated"] = (truncated, "AuthenticationError")
    meta = copy_dir(dcp_saved4, tmp_path / "meta")
    data = bytearray((meta / ".metadata").read_bytes())
    data[-20] ^= 1
    (meta / ".metadata").write_bytes(bytes(data))
    cases["flipped metadata"] = (meta, "AuthenticationError")
    for name, (path, expected) in cases.items():
        reports = job(tmp_path, 2, "load_fails", path=path)
        for r in reports:
            assert r["error"] == expected, (name, r)
            # a missing or resized rank file and a bad .metadata are seen by every rank before any tensor is
            # copied; a same-size file of another save by the ranks that read it (the others raise too)
            assert r["untouched"] or name == "other save", (name, r)
    wrong = job(tmp_path, 2, "load_fails", path=dcp_saved4, key=bytes(32).hex())
    assert all(r["error"] == "KeyMismatchError" and r["untouched"] for r in wrong), wrong


def test_a_wrong_key_on_one_rank_only_fails_every_rank_quickly(tmp_path, dcp_saved4):
    """mdcp.load authenticates .metadata on every rank before DCP's first collective and the ranks
    agree on the outcome: the healthy rank raises the failing rank's error instead of waiting in
    dcp.load for a peer that is gone (gloo: "Connection closed by peer", or the group's timeout)."""
    reports = job(tmp_path, 2, "load_wrong_key_on_one_rank", path=dcp_saved4)
    for r in reports:
        assert r["error"] == "KeyMismatchError" and r["modelcrypt_error"] and r["untouched"], r
        assert r["seconds"] < 30, r
    assert reports[0]["message"].startswith("rank 1:"), reports[0]


def test_flipped_chunk_byte_fails_the_load(tmp_path, dcp_saved4):
    path = copy_dir(dcp_saved4, tmp_path / "flipped")
    f = rank_files(path)[3]
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x40
    f.write_bytes(bytes(data))
    state = {n: torch.zeros_like(t) for n, t in dcp_workers.full_tensors().items()}
    state["step"] = 0
    with pytest.raises(modelcrypt.AuthenticationError):
        mdcp.load(state, path, KEY)
    reports = job(tmp_path, 2, "load_fails", path=path)
    assert all(r["error"] == "AuthenticationError" for r in reports), reports


def test_swapped_items_and_renamed_rank_files_are_refused(tmp_path):
    path = tmp_path / "one"
    state = {"a": torch.arange(1000, dtype=torch.float32), "b": torch.arange(1000, dtype=torch.float32) * 2}
    mdcp.save(state, path, KEY)
    swapped = copy_dir(path, tmp_path / "renamed")
    rank = rank_files(swapped)[0]
    rank.rename(rank.with_name("__7_" + rank.name.split("_", 3)[3]))
    target = {"a": torch.zeros(1000), "b": torch.zeros(1000)}
    with pytest.raises(modelcrypt.SetMismatchError):
        mdcp.load(target, swapped, KEY)
    assert torch.count_nonzero(target["a"]) == 0


def test_items_swapped_within_and_between_rank_files_are_refused(tmp_path, dcp_saved4):
    """A hostile (authenticated: re-encrypted) .metadata that points an item at another item's bytes,
    in the same rank file or another rank's, and two same-size rank files swapped by name."""
    def entries(doc, fqn):
        return sorted((e for e in doc["storage_data"] if e["fqn"] == fqn), key=lambda e: e["offset"])

    def within(doc):  # two items of one rank file exchange their byte ranges
        a = entries(doc, "embed.weight")[0]
        b = next(e for e in doc["storage_data"] if e["file"] == a["file"] and e["fqn"] == "layer.w2_bf16")
        for k in ("start", "length"):
            a[k], b[k] = b[k], a[k]

    def between(doc):  # the same tensor's shards of two ranks exchange their files and ranges
        a, b = entries(doc, "embed.weight")[:2]
        assert a["file"] != b["file"]
        for k in ("file", "start", "length"):
            a[k], b[k] = b[k], a[k]

    for name, edit in (("within", within), ("between", between)):
        path = copy_dir(dcp_saved4, tmp_path / name)
        _rewrite_metadata(path, edit)
        target = full_target()
        with pytest.raises(modelcrypt.SetMismatchError, match="not stored where"):
            mdcp.load(target, path, KEY)
    renamed = tmp_path / "same_size"
    job(tmp_path, 2, "save_rows", path=renamed)
    a, b = rank_files(renamed)
    assert a.stat().st_size == b.stat().st_size  # so the recorded file lengths do not give the swap away
    tmp = a.with_name("swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    target = {"x": torch.zeros(2, 4)}
    with pytest.raises(modelcrypt.SetMismatchError, match="renamed"):
        mdcp.load(target, renamed, KEY)
    assert torch.count_nonzero(target["x"]) == 0


def test_a_failed_save_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    path = tmp_path / "ckpt"
    first = {"w": torch.ones(100), "step": 1}
    mdcp.save(first, path, KEY)
    from modelcrypt.checkpoint import dcp as storage

    real = storage.EncryptedFileSystemWriter._write_rank_file

    def dies_after_writing(self, *a, **kw):
        real(self, *a, **kw)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.EncryptedFileSystemWriter, "_write_rank_file", dies_after_writing)
    with pytest.raises(OSError, match="No space"):
        mdcp.save({"w": torch.full((100,), 2.0), "step": 2}, path, KEY)
    monkeypatch.undo()
    target = {"w": torch.zeros(100), "step": 0}
    mdcp.load(target, path, KEY)
    assert torch.equal(target["w"], torch.ones(100)) and target["step"] == 1
    mdcp.save({"w": torch.full((100,), 3.0), "step": 3}, path, KEY)  # the next good save replaces it
    assert len(rank_files(path)) == 1  # and the files of older saves are gone
    mdcp.load(target, path, KEY)
    assert target["step"] == 3


def test_a_rank_killed_mid_save_leaves_the_previous_checkpoint_loadable(tmp_path):
    path = tmp_path / "ckpt"
    job(tmp_path, 2, "save", path=path)
    before = sorted(os.listdir(path))
    out = tmp_path / "dies"
    out.mkdir()
    ctx = mp.start_processes(dcp_workers.run, args=(2, str(out / "rendezvous"), str(out), "save_dies",
                                                    {"key": KEY.hex(), "path": str(path)}),
                             nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT
    with pytest.raises(mp.ProcessExitedException):  # rank 1 exits with 17; the other rank is then terminated
        while not ctx.join(timeout=max(1, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                for p in ctx.processes:
                    p.kill()
                pytest.fail(f"save_dies on 2 ranks did not finish in {TIMEOUT} s")
    assert set(before) <= set(os.listdir(path))  # the previous save's files and .metadata are still there
    for r in job(tmp_path, 2, "load", path=path):
        assert all(r["equal"].values()) and r["step"] == 42, r


def test_no_pickle_in_metadata_and_objects_checked(tmp_path):
    mdcp.save({"w": torch.ones(3), "cfg": {"lr": 0.1, "name": "x"}}, tmp_path / "p", KEY)
    with modelcrypt.load(tmp_path / "p" / ".metadata", KEY) as buf:
        doc = json.loads(bytes(buf))
    assert doc["format"] == "modelcrypt-dcp-metadata"
    target = {"w": torch.zeros(3), "cfg": {"lr": 0.0, "name": ""}}
    mdcp.load(target, tmp_path / "p", KEY)
    assert target["cfg"] == {"lr": 0.1, "name": "x"}


class _Planted:
    """An object whose unpickling would run code: it creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_stored_object_that_runs_code_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"
    mdcp.save({"w": torch.ones(3), "evil": _Planted(marker)}, tmp_path / "p", KEY)
    assert not marker.exists()
    target = {"w": torch.zeros(3), "evil": None}
    with pytest.raises(modelcrypt.FormatError, match="evil"):
        mdcp.load(target, tmp_path / "p", KEY)
    assert not marker.exists()


def test_the_planner_unpickles_only_what_the_restricted_unpickler_built(tmp_path, monkeypatch):
    """DefaultLoadPlanner.load_bytes unpickles with weights_only=False: it must get a fresh
    serialization of the object torch.load(weights_only=True) returned, never the stored bytes. A
    parser differential is simulated: the restricted unpickler reads something other than what an
    unrestricted one would, and what lands in the state dict is what the restricted one built."""
    mdcp.save({"name": "stored"}, tmp_path / "p", KEY)
    real_load = torch.load

    def differing_load(f, *a, **kw):
        obj = real_load(f, *a, **kw)
        return "restricted" if kw.get("weights_only") else obj

    monkeypatch.setattr(torch, "load", differing_load)
    target = {"name": ""}
    mdcp.load(target, tmp_path / "p", KEY)
    assert target["name"] == "restricted"


def _rewrite_metadata(path, edit):
    """Decrypts .metadata, applies ``edit`` to its JSON and encrypts it again under KEY as the writer
    does: a hostile but authenticated .metadata (anyone holding a recipient could write one)."""
    from modelcrypt import _core, _metadata, _sets
    from modelcrypt.checkpoint import dcp as storage
    with modelcrypt.load(path / ".metadata", KEY) as buf:
        doc = json.loads(bytes(buf))
    edit(doc)
    meta = _metadata.encode({_sets.SET: doc["save_id"], _sets.MEMBER: ".metadata", _sets.KIND: storage.KIND_METADATA})
    text = json.dumps(doc).replace('"DEEP"', "[" * 100000 + "]" * 100000)  # nesting json.dumps cannot write
    _core.encrypt_parts_to_file([text.encode()], os.fsencode(path / ".metadata"), KEY, "AES-GCM",
                                1 << 20, meta, 0, None, False, None)


def _rename_first_file(doc, new):
    old = next(iter(doc["files"]))
    doc["files"][new] = doc["files"].pop(old)
    for e in doc["storage_data"]:
        if e["file"] == old:
            e["file"] = new


def test_hostile_metadata_is_a_format_error(tmp_path):
    state = {"w": torch.arange(12, dtype=torch.float32).reshape(3, 4), "step": 3}
    mdcp.save(state, tmp_path / "good", KEY)

    def shifted_chunk(doc):
        doc["state_dict_metadata"]["w"]["chunks"][0]["offsets"] = [2, 0]

    def flat_chunk(doc):
        doc["state_dict_metadata"]["w"]["chunks"][0] = {"offsets": [0], "sizes": [12]}

    def deep(doc):
        doc["planner_data"] = "DEEP"

    cases = {"traversal": lambda d: _rename_first_file(d, "../../etc/passwd"),
             "absolute": lambda d: _rename_first_file(d, "/etc/passwd"),
             "other save's name": lambda d: _rename_first_file(d, "__0_" + "0" * 32 + ".distcp.mcx"),
             "chunk outside the tensor": shifted_chunk, "chunk of the wrong rank": flat_chunk, "deep nesting": deep}
    for name, edit in cases.items():
        path = copy_dir(tmp_path / "good", tmp_path / name.replace(" ", "_").replace("'", ""))
        _rewrite_metadata(path, edit)
        target = {"w": torch.zeros(3, 4), "step": 0}
        with pytest.raises(modelcrypt.FormatError):
            mdcp.load(target, path, KEY)
        with pytest.raises(modelcrypt.FormatError):
            mdcp.EncryptedFileSystemReader(path, KEY).read_metadata()
        assert torch.count_nonzero(target["w"]) == 0, name


def test_dcp_load_directly_keeps_the_modelcrypt_error_on_the_reader(tmp_path):
    """Plain dcp.load raises DCP's CheckpointException (a BaseException); for a .metadata failure it
    holds only the error's text inside an AssertionError. The reader keeps the error itself."""
    from torch.distributed.checkpoint.api import CheckpointException
    mdcp.save({"w": torch.ones(1000)}, tmp_path / "c", KEY)
    reader = mdcp.EncryptedFileSystemReader(tmp_path / "c", bytes(32))
    with pytest.raises(CheckpointException) as info:
        dcp.load({"w": torch.zeros(1000)}, storage_reader=reader, no_dist=True)
    assert isinstance(reader.error, modelcrypt.KeyMismatchError)
    with pytest.raises(modelcrypt.KeyMismatchError):
        mdcp.raise_modelcrypt_error(info.value, reader)
    f = rank_files(tmp_path / "c")[0]
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 1
    f.write_bytes(bytes(data))
    reader = mdcp.EncryptedFileSystemReader(tmp_path / "c", KEY)
    with pytest.raises(CheckpointException) as info:
        dcp.load({"w": torch.zeros(1000)}, storage_reader=reader, no_dist=True)
    assert isinstance(reader.error, modelcrypt.AuthenticationError)
    with pytest.raises(modelcrypt.AuthenticationError):
        mdcp.raise_modelcrypt_error(info.value)  # a read_data failure is in DCP's failures as itself too
    with pytest.raises(modelcrypt.KeyMismatchError):  # and mdcp.load raises it as itself
        mdcp.load({"w": torch.zeros(1000)}, tmp_path / "c", bytes(32))


def test_checkpoint_reader_applies_the_shard_set_rules(tmp_path):
    full = dcp_workers.full_tensors()
    modelcrypt.save_checkpoint(full, tmp_path / "m.ckpt", KEY, max_shard_size="300KB")
    index = next(p for p in tmp_path.iterdir() if p.name.endswith(".index.json"))
    shards = sorted(p for p in tmp_path.iterdir() if p.name.endswith(".ckpt"))
    assert len(shards) >= 2
    tmp = shards[0].with_suffix(".tmp")
    shards[0].rename(tmp)
    shards[1].rename(shards[0])
    tmp.rename(shards[1])
    state = {n: torch.zeros_like(t) for n, t in full.items()}
    reader = mdcp.ModelcryptCheckpointReader(index, KEY)
    with pytest.raises(modelcrypt.SetMismatchError, match="renamed"):
        reader.read_metadata()
    shards[0].rename(tmp)
    shards[1].rename(shards[0])
    tmp.rename(shards[1])
    shards[-1].unlink()
    with pytest.raises(modelcrypt.SetMismatchError):
        mdcp.ModelcryptCheckpointReader(index, KEY).read_metadata()
    assert all(torch.count_nonzero(t) == 0 for t in state.values())
