"""Encrypted PyTorch Distributed Checkpoint storage (issue 16), with real multi-process DCP jobs:
gloo over loopback, file:// rendezvous, DTensor- and FSDP2-sharded state on CPU, resharding
4 -> 2 -> 1 and 2 -> 4, byte counts of what each rank decrypts, failures on every rank."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from conftest import require  # noqa: E402

torch = require("torch")
import torch.distributed.checkpoint as dcp  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

import modelcrypt  # noqa: E402
from modelcrypt.torch import dcp as mdcp  # noqa: E402

import dcp_workers  # noqa: E402

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
    import time
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


@pytest.fixture(scope="module")
def saved4(tmp_path_factory):
    path = tmp_path_factory.mktemp("dcp") / "ckpt4"
    job(tmp_path_factory.mktemp("jobs"), 4, "save", path=path, chunk_size=64 << 10)
    return path


def _files(path):
    return sorted(p.name for p in path.iterdir())


def test_saved_by_4_ranks_is_encrypted_and_names_nothing(saved4):
    names = _files(saved4)
    assert ".metadata" in names and len([n for n in names if n.endswith(".distcp.mcx")]) == 4
    full = dcp_workers.full_tensors()
    for name in names:
        data = (saved4 / name).read_bytes()
        assert modelcrypt.inspect(saved4 / name).format == "modelcrypt"
        for word in (b"embed.weight", b"layer.w2_bf16", b"head.bias", b"step", b"float32", b"bfloat16", b"[256,1024]",
                     b"torch"):
            assert word not in data, (name, word)
        assert full["embed.weight"].numpy().tobytes()[:64] not in data


@pytest.mark.parametrize("world", [2, 1])
def test_saved_by_4_loads_resharded(tmp_path, saved4, world):
    if world == 1:
        state = {n: torch.zeros_like(t) for n, t in dcp_workers.full_tensors().items()}
        state["step"] = 0
        mdcp.load(state, saved4, KEY)  # no process group: one process
        full = dcp_workers.full_tensors()
        assert all(torch.equal(state[n], full[n]) for n in full) and state["step"] == 42
        return
    for r in job(tmp_path, world, "load", path=saved4):
        assert all(r["equal"].values()) and r["step"] == 42, r


def test_saved_by_2_loaded_by_4_decrypts_only_its_rows(tmp_path):
    cs = 16 << 10
    path = tmp_path / "ckpt2"
    job(tmp_path, 2, "save", path=path, chunk_size=cs)
    reports = job(tmp_path, 4, "load", path=path)
    stored = sum((path / n).stat().st_size for n in _files(path))
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


def test_checkpoint_shards_load_into_a_sharded_model(tmp_path):
    full = dcp_workers.full_tensors()
    index = tmp_path / "model.index.json"
    modelcrypt.save_checkpoint(full, tmp_path / "model.ckpt", KEY, max_shard_size="300KB")
    assert index.exists() or any(p.suffix == ".json" for p in tmp_path.iterdir())
    index = next(p for p in tmp_path.iterdir() if p.name.endswith(".index.json"))
    for r in job(tmp_path, 2, "load_checkpoint_file", path=index):
        assert all(r["equal"].values()), r


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _rank_files(path):
    return [path / n for n in _files(path) if n.endswith(".distcp.mcx")]


def test_failures_raise_on_every_rank_and_touch_nothing(tmp_path, saved4):
    other = tmp_path / "other"
    job(tmp_path, 4, "save", path=other, chunk_size=64 << 10)
    cases = {}
    missing = _copy(saved4, tmp_path / "missing")
    _rank_files(missing)[1].unlink()
    cases["missing"] = (missing, "SetMismatchError")
    foreign = _copy(saved4, tmp_path / "foreign")
    victim = _rank_files(foreign)[2]
    rank_prefix = victim.name.split("_")[2]  # '__2_<save>.distcp.mcx' -> '2'
    replacement = next(p for p in _rank_files(other) if p.name.split("_")[2] == rank_prefix)
    shutil.copy(replacement, victim)
    cases["other save"] = (foreign, "SetMismatchError")
    truncated = _copy(saved4, tmp_path / "truncated")
    f = _rank_files(truncated)[0]
    f.write_bytes(f.read_bytes()[:-100])
    cases["truncated"] = (truncated, "AuthenticationError")
    meta = _copy(saved4, tmp_path / "meta")
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
    wrong = job(tmp_path, 2, "load_fails", path=saved4, key=bytes(32).hex())
    assert all(r["error"] == "KeyMismatchError" and r["untouched"] for r in wrong), wrong


def test_a_wrong_key_on_one_rank_only_fails_every_rank_quickly(tmp_path, saved4):
    """mdcp.load authenticates .metadata on every rank before DCP's first collective and the ranks
    agree on the outcome: the healthy rank raises the failing rank's error instead of waiting in
    dcp.load for a peer that is gone (gloo: "Connection closed by peer", or the group's timeout)."""
    reports = job(tmp_path, 2, "load_wrong_key_on_one_rank", path=saved4)
    for r in reports:
        assert r["error"] == "KeyMismatchError" and r["modelcrypt_error"] and r["untouched"], r
        assert r["seconds"] < 30, r
    assert reports[0]["message"].startswith("rank 1:"), reports[0]


def test_flipped_chunk_byte_fails_the_load(tmp_path, saved4):
    path = _copy(saved4, tmp_path / "flipped")
    f = _rank_files(path)[3]
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
    swapped = _copy(path, tmp_path / "renamed")
    rank = _rank_files(swapped)[0]
    rank.rename(rank.with_name("__7_" + rank.name.split("_", 3)[3]))
    target = {"a": torch.zeros(1000), "b": torch.zeros(1000)}
    with pytest.raises(modelcrypt.SetMismatchError):
        mdcp.load(target, swapped, KEY)
    assert torch.count_nonzero(target["a"]) == 0


def _full_target():
    state = {n: torch.zeros_like(t) for n, t in dcp_workers.full_tensors().items()}
    state["step"] = 0
    return state


def test_items_swapped_within_and_between_rank_files_are_refused(tmp_path, saved4):
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
        path = _copy(saved4, tmp_path / name)
        _rewrite_metadata(path, edit)
        target = _full_target()
        with pytest.raises(modelcrypt.SetMismatchError, match="not stored where"):
            mdcp.load(target, path, KEY)
    renamed = tmp_path / "same_size"
    job(tmp_path, 2, "save_rows", path=renamed)
    a, b = _rank_files(renamed)
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
    assert len(_rank_files(path)) == 1  # and the files of older saves are gone
    mdcp.load(target, path, KEY)
    assert target["step"] == 3


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


def test_converters_round_trip(tmp_path):
    full = dcp_workers.full_tensors()
    mdcp.save(dict(full), tmp_path / "d", KEY)
    mdcp.dcp_to_checkpoint(tmp_path / "d", tmp_path / "one.ckpt", KEY)
    import modelcrypt.torch as mctorch
    got = mctorch.load_state_dict(tmp_path / "one.ckpt", KEY)
    assert set(got) == set(full) and all(torch.equal(got[n], full[n]) for n in full)
    mdcp.checkpoint_to_dcp(tmp_path / "one.ckpt", tmp_path / "d2", KEY)
    target = {n: torch.zeros_like(t) for n, t in full.items()}
    mdcp.load(target, tmp_path / "d2", KEY)
    assert all(torch.equal(target[n], full[n]) for n in full)


def test_converters_never_write_plaintext_by_default(tmp_path):
    """An identity opens the source but is no output key: the converters refuse before writing
    anything (save_checkpoint without a key would write a plain .safetensors file)."""
    ident = modelcrypt.generate_identity()
    full = dcp_workers.full_tensors()
    mdcp.save(dict(full), tmp_path / "d", recipients=[ident.recipient])
    with pytest.raises(TypeError, match="out_key"):
        mdcp.dcp_to_checkpoint(tmp_path / "d", tmp_path / "one.ckpt", identity=ident)
    assert not (tmp_path / "one.ckpt").exists()
    mdcp.dcp_to_checkpoint(tmp_path / "d", tmp_path / "one.ckpt", identity=ident, out_key=KEY)
    assert modelcrypt.inspect(tmp_path / "one.ckpt").format == "modelcrypt"
    with pytest.raises(TypeError, match="out_key.*recipients"):
        mdcp.checkpoint_to_dcp(tmp_path / "one.ckpt", tmp_path / "d2", None)
    assert not (tmp_path / "d2").exists()


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
        path = _copy(tmp_path / "good", tmp_path / name.replace(" ", "_").replace("'", ""))
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
    f = _rank_files(tmp_path / "c")[0]
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


def test_example_runs_on_two_ranks(tmp_path):
    """examples/distributed_training.py as torchrun would run it (RANK / WORLD_SIZE), with a file://
    rendezvous instead of torchrun's TCP store, so that nothing listens beyond loopback."""
    import subprocess
    import sys
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


def test_cli_converts_both_ways(tmp_path):
    import subprocess
    import sys
    full = dcp_workers.full_tensors()
    mdcp.save(dict(full), tmp_path / "d", KEY)
    (tmp_path / "k.key").write_text(KEY.hex() + "\n")
    os.chmod(tmp_path / "k.key", 0o600)

    def mc(*args):
        return subprocess.run([sys.executable, "-m", "modelcrypt", *map(str, args)], capture_output=True, text=True,
                              env={**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}, timeout=300)

    r = mc("dcp", "to-checkpoint", tmp_path / "d", tmp_path / "one.ckpt", "--key-file", tmp_path / "k.key")
    assert r.returncode == 0 and "warning" not in r.stderr.lower(), r.stderr
    import modelcrypt.torch as mctorch
    got = mctorch.load_state_dict(tmp_path / "one.ckpt", KEY)
    assert all(torch.equal(got[n], full[n]) for n in full)
    r = mc("dcp", "from-checkpoint", tmp_path / "one.ckpt", tmp_path / "d2", "--key-file", tmp_path / "k.key")
    assert r.returncode == 0, r.stderr
    target = {n: torch.zeros_like(t) for n, t in full.items()}
    mdcp.load(target, tmp_path / "d2", KEY)
    assert all(torch.equal(target[n], full[n]) for n in full)
    r = mc("dcp", "to-checkpoint", tmp_path / "d", tmp_path / "one.ckpt", "--key-file", tmp_path / "k.key")
    assert r.returncode == 2 and "exists" in r.stderr
    (tmp_path / "wrong.key").write_text(bytes(32).hex() + "\n")
    os.chmod(tmp_path / "wrong.key", 0o600)
    r = mc("dcp", "to-checkpoint", tmp_path / "d", tmp_path / "x.ckpt", "--key-file", tmp_path / "wrong.key")
    assert r.returncode == 1 and "wrong key" in r.stderr and not (tmp_path / "x.ckpt").exists(), r.stderr


def test_object_items_are_refused_with_exit_1_or_left_out(tmp_path):
    """An optimizer's param_groups (plain data) cannot go into a save_checkpoint file: the converter
    says so (ObjectItemError, CLI exit 1) and --tensors-only / tensors_only=True leaves them out."""
    import subprocess
    import sys
    state = {"model": {"w": torch.randn(8, 4)}, "optim": {"param_groups": [{"lr": 0.01, "params": ["w"]}]}, "step": 5}
    mdcp.save(state, tmp_path / "d", KEY)
    with pytest.raises(mdcp.ObjectItemError, match="tensors_only"):
        mdcp.dcp_to_checkpoint(tmp_path / "d", tmp_path / "a.ckpt", KEY)
    assert not (tmp_path / "a.ckpt").exists()
    (tmp_path / "k.key").write_text(KEY.hex() + "\n")
    os.chmod(tmp_path / "k.key", 0o600)

    def mc(*args):
        return subprocess.run([sys.executable, "-m", "modelcrypt", *map(str, args)], capture_output=True, text=True,
                              env={**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}, timeout=300)

    r = mc("dcp", "to-checkpoint", tmp_path / "d", tmp_path / "b.ckpt", "--key-file", tmp_path / "k.key")
    assert r.returncode == 1 and "--tensors-only" in r.stderr and not (tmp_path / "b.ckpt").exists(), r.stderr
    r = mc("dcp", "to-checkpoint", tmp_path / "d", tmp_path / "b.ckpt", "--key-file", tmp_path / "k.key",
           "--tensors-only")
    assert r.returncode == 0, r.stderr
    import modelcrypt.torch as mctorch
    got = mctorch.load_state_dict(tmp_path / "b.ckpt", KEY)
    assert set(got) == {"model.w"} and torch.equal(got["model.w"], state["model"]["w"])


def test_cli_identities_recipients_and_an_output_key(tmp_path):
    """from-checkpoint encrypts the DCP checkpoint to -r recipients (and an --out-key-file); an identity
    opens it for to-checkpoint, whose single file needs a symmetric output key."""
    import subprocess
    import sys
    full = dcp_workers.full_tensors()
    modelcrypt.save_checkpoint(full, tmp_path / "one.ckpt", KEY)
    for name, key in (("k.key", KEY), ("out.key", bytes(range(1, 33)))):
        (tmp_path / name).write_text(key.hex() + "\n")
        os.chmod(tmp_path / name, 0o600)
    ident = modelcrypt.generate_identity()
    modelcrypt.write_identity_file(tmp_path / "dev.identity", ident)

    def mc(*args):
        return subprocess.run([sys.executable, "-m", "modelcrypt", *map(str, args)], capture_output=True, text=True,
                              env={**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0"}, timeout=300)

    r = mc("dcp", "from-checkpoint", tmp_path / "one.ckpt", tmp_path / "d", "--key-file", tmp_path / "k.key",
           "-r", ident.recipient)
    assert r.returncode == 0, r.stderr
    for opener in ({"identity": ident}, {"key": KEY}):  # the recipient and the symmetric stanza both open it
        target = {n: torch.zeros_like(t) for n, t in full.items()}
        mdcp.load(target, tmp_path / "d", **opener)
        assert all(torch.equal(target[n], full[n]) for n in full)
    r = mc("dcp", "to-checkpoint", tmp_path / "d", tmp_path / "x.ckpt", "-i", tmp_path / "dev.identity")
    assert r.returncode == 2 and "--out-key-file" in r.stderr and not (tmp_path / "x.ckpt").exists(), r.stderr
    r = mc("dcp", "to-checkpoint", tmp_path / "d", tmp_path / "x.ckpt", "-i", tmp_path / "dev.identity",
           "--out-key-file", tmp_path / "out.key")
    assert r.returncode == 0, r.stderr
    import modelcrypt.torch as mctorch
    got = mctorch.load_state_dict(tmp_path / "x.ckpt", bytes(range(1, 33)))
    assert all(torch.equal(got[n], full[n]) for n in full)
    with pytest.raises(modelcrypt.KeyMismatchError):
        mctorch.load_state_dict(tmp_path / "x.ckpt", KEY)
    r = mc("dcp", "to-checkpoint", tmp_path / "d", tmp_path / "y.ckpt", "--key-file", tmp_path / "k.key",
           "-r", ident.recipient)
    assert r.returncode == 2 and "from-checkpoint" in r.stderr, r.stderr
    r = mc("dcp", "from-checkpoint", tmp_path / "x.ckpt", tmp_path / "d3", "--key-file", tmp_path / "out.key",
           "--out-key-env", "NO_SUCH_VARIABLE_HERE")
    assert r.returncode == 2 and "NO_SUCH_VARIABLE_HERE" in r.stderr and not (tmp_path / "d3").exists(), r.stderr


def test_a_rank_killed_mid_save_leaves_the_previous_checkpoint_loadable(tmp_path):
    path = tmp_path / "ckpt"
    job(tmp_path, 2, "save", path=path)
    before = sorted(os.listdir(path))
    out = tmp_path / "dies"
    out.mkdir()
    ctx = mp.start_processes(dcp_workers.run, args=(2, str(out / "rendezvous"), str(out), "save_dies",
                                                    {"key": KEY.hex(), "path": str(path)}),
                             nprocs=2, join=False, start_method="spawn")
    import time
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
