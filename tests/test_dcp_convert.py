"""Converting encrypted DCP checkpoints to and from single save_checkpoint files (issue 16), in Python
and with the CLI: round trips, output keys and recipients, identities, object items."""

from __future__ import annotations

import pytest

from conftest import require  # noqa: E402

torch = require("torch")

import modelcrypt  # noqa: E402
from modelcrypt.torch import dcp as mdcp  # noqa: E402

import dcp_workers  # noqa: E402
from dcp_jobs import KEY, mc, write_key  # noqa: E402


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


def test_cli_converts_both_ways(tmp_path):
    full = dcp_workers.full_tensors()
    mdcp.save(dict(full), tmp_path / "d", KEY)
    write_key(tmp_path / "k.key", KEY)


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
    write_key(tmp_path / "wrong.key", bytes(32))
    r = mc("dcp", "to-checkpoint", tmp_path / "d", tmp_path / "x.ckpt", "--key-file", tmp_path / "wrong.key")
    assert r.returncode == 1 and "wrong key" in r.stderr and not (tmp_path / "x.ckpt").exists(), r.stderr


def test_object_items_are_refused_with_exit_1_or_left_out(tmp_path):
    """An optimizer's param_groups (plain data) cannot go into a save_checkpoint file: the converter
    says so (ObjectItemError, CLI exit 1) and --tensors-only / tensors_only=True leaves them out."""
    state = {"model": {"w": torch.randn(8, 4)}, "optim": {"param_groups": [{"lr": 0.01, "params": ["w"]}]}, "step": 5}
    mdcp.save(state, tmp_path / "d", KEY)
    with pytest.raises(mdcp.ObjectItemError, match="tensors_only"):
        mdcp.dcp_to_checkpoint(tmp_path / "d", tmp_path / "a.ckpt", KEY)
    assert not (tmp_path / "a.ckpt").exists()
    write_key(tmp_path / "k.key", KEY)


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
    full = dcp_workers.full_tensors()
    modelcrypt.save_checkpoint(full, tmp_path / "one.ckpt", KEY)
    write_key(tmp_path / "k.key", KEY)
    write_key(tmp_path / "out.key", bytes(range(1, 33)))
    ident = modelcrypt.generate_identity()
    modelcrypt.write_identity_file(tmp_path / "dev.identity", ident)


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
