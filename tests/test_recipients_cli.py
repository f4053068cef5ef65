"""The CLI's recipients: keygen --x25519, encrypt -r/-R, -i on readers, recipients list/add/remove."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import require_tool

AGE = os.path.join(os.path.dirname(__file__), "interop", "age")


def mc(*args, env=None):
    return subprocess.run([sys.executable, "-m", "modelcrypt", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "SKBUILD_EDITABLE_VERBOSE": "0", **(env or {})})


def ok(r):
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture()
def devices(tmp_path):
    out = []
    for name in ("a", "b", "c"):
        r = ok(mc("keygen", "--x25519", "-o", tmp_path / f"{name}.identity"))
        recipient = r.stdout.strip()
        assert recipient.startswith("modelcrypt1")
        assert os.stat(tmp_path / f"{name}.identity").st_mode & 0o777 == 0o600
        assert "SECRET" not in r.stdout + r.stderr
        (tmp_path / f"{name}.pub").write_text(recipient + "\n")
        out.append((tmp_path / f"{name}.identity", recipient))
    return out


def test_ship_to_many_devices(tmp_path, devices):
    model = tmp_path / "m.onnx"
    model.write_bytes(os.urandom(200_000))
    (a_id, a), (b_id, b), (c_id, c) = devices
    ok(mc("keygen", "-o", tmp_path / "team.key"))
    ok(mc("encrypt", model, "-o", tmp_path / "m.mcx", "-r", a, "-R", tmp_path / "b.pub", "--key-file", tmp_path / "team.key",
          "--chunk-size", "4096"))
    for source in (("-i", a_id), ("-i", b_id), ("--key-file", tmp_path / "team.key")):
        ok(mc("verify", tmp_path / "m.mcx", *source))
    r = mc("verify", tmp_path / "m.mcx", "-i", c_id)
    assert r.returncode == 1 and "no stanza" in r.stdout + r.stderr
    listing = ok(mc("recipients", "list", tmp_path / "m.mcx", "-R", tmp_path / "a.pub")).stdout.splitlines()
    assert listing[0] == "symmetric" and any(line.endswith(a) for line in listing) and len(listing) == 3
    before = (tmp_path / "m.mcx").read_bytes()
    ok(mc("recipients", "add", tmp_path / "m.mcx", "-r", c, "-i", a_id))
    ok(mc("recipients", "remove", tmp_path / "m.mcx", "-r", a, "--key-file", tmp_path / "team.key"))
    after = (tmp_path / "m.mcx").read_bytes()
    assert len(after) == len(before) and after[-150_000:] == before[-150_000:]
    ok(mc("decrypt", tmp_path / "m.mcx", "-o", tmp_path / "out.onnx", "-i", c_id))
    assert (tmp_path / "out.onnx").read_bytes() == model.read_bytes()
    r = mc("decrypt", tmp_path / "m.mcx", "-o", tmp_path / "out2.onnx", "-i", a_id)
    assert r.returncode == 1 and not (tmp_path / "out2.onnx").exists()
    assert "recipients" in ok(mc("inspect", tmp_path / "m.mcx")).stdout


def test_age_keygen_identity_files_work(tmp_path):
    model = tmp_path / "m.bin"
    model.write_bytes(b"weights" * 1000)
    ok(mc("encrypt", model, "-o", tmp_path / "m.mcx", "-R", os.path.join(AGE, "alice.pub.txt")))
    ok(mc("verify", tmp_path / "m.mcx", "-i", os.path.join(AGE, "alice.identity")))
    r = mc("verify", tmp_path / "m.mcx", "-i", os.path.join(AGE, "bob.identity"))
    assert r.returncode == 1


def test_bad_recipient_and_identity_errors(tmp_path, devices):
    model = tmp_path / "m.bin"
    model.write_bytes(b"x" * 100)
    a_id, a = devices[0]
    r = mc("encrypt", model, "-o", tmp_path / "m.mcx", "-r", a[:-1] + ("q" if a[-1] != "q" else "p"))
    assert r.returncode == 2 and "checksum" in r.stderr and not (tmp_path / "m.mcx").exists()
    secret = a_id.read_text().splitlines()[-1]
    r = mc("encrypt", model, "-o", tmp_path / "m.mcx", "-r", secret)
    assert r.returncode == 2 and secret not in r.stderr + r.stdout
    r = mc("keygen", "--x25519", "-o", a_id)
    assert r.returncode == 2 and "exists" in r.stderr
    r = mc("encrypt", model, "-o", tmp_path / "m.mcx")
    assert r.returncode == 2


def test_inspect_with_identity_or_key_authenticates_the_header(tmp_path, devices):
    import json

    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(50_000))
    (a_id, a), (b_id, b), (c_id, _) = devices
    ok(mc("keygen", "-o", tmp_path / "team.key"))
    enc = tmp_path / "m.mcx"
    ok(mc("encrypt", model, "-o", enc, "-r", a, "-r", b, "--key-file", tmp_path / "team.key", "--metadata", "v=1"))
    keyless = ok(mc("inspect", enc)).stdout
    assert "authenticated" not in keyless and "opened_by" not in keyless
    fingerprint = ok(mc("recipients", "list", enc)).stdout.splitlines()[2].split()[1]  # b's stanza: x25519 <fp> ...
    r = ok(mc("inspect", enc, "-i", b_id))
    lines = dict(line.split(": ", 1) for line in r.stdout.splitlines())
    assert lines["authenticated"] == "header" and lines["opened_by"] == f"x25519 {fingerprint}"
    assert "payload" in r.stderr
    obj = json.loads(ok(mc("inspect", enc, "--json", "--key-file", tmp_path / "team.key")).stdout)
    assert obj["authenticated"] == "header" and obj["opened_by"] == "symmetric" and obj["metadata"] == {"v": "1"}
    r = mc("inspect", enc, "-i", c_id)
    assert r.returncode == 1 and "no stanza" in r.stderr and r.stdout == ""
    r = mc("inspect", enc, "-i", a_id, "--key-file", tmp_path / "team.key")
    assert r.returncode == 2 and "only one" in r.stderr
    blob = bytearray(enc.read_bytes())
    blob[bytes(blob).index(b'"1"') + 1] ^= 0x01  # the metadata value "1" becomes "0"
    enc.write_bytes(blob)
    ok(mc("inspect", enc))  # keyless: the fields as found
    r = mc("inspect", enc, "-i", a_id)
    assert r.returncode == 1 and r.stdout == "" and "authentic" in r.stderr.lower()
    legacy = os.path.join(os.path.dirname(__file__), "interop", "mindspore", "b_gcm16.ckpt")
    r = mc("inspect", legacy, "--key-file", tmp_path / "team.key")
    assert r.returncode == 2 and "mindspore" in r.stderr


def test_keys_made_by_the_real_age_keygen(tmp_path):
    """age-keygen (Debian's age) makes the identity; modelcrypt derives the same recipient as
    `age-keygen -y`, encrypts to that recipient and opens the file with the age identity file, from
    a path and from the environment; a file for another age key is refused."""
    age_keygen = require_tool("age-keygen", "age")
    ident = tmp_path / "device.age.txt"
    made = subprocess.run([age_keygen, "-o", ident], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    os.chmod(ident, 0o600)
    public = subprocess.run([age_keygen, "-y", ident], capture_output=True, text=True, check=True).stdout.strip()
    assert public.startswith("age1")
    import modelcrypt

    from modelcrypt import _core

    assert _core.parse_recipient(public) == modelcrypt.read_identity_file(ident).public_key
    model = tmp_path / "m.bin"
    model.write_bytes(os.urandom(70_000))
    ok(mc("encrypt", model, "-o", tmp_path / "m.mcx", "-r", public, "--chunk-size", "4096"))
    ok(mc("decrypt", tmp_path / "m.mcx", "-o", tmp_path / "out.bin", "-i", ident))
    assert (tmp_path / "out.bin").read_bytes() == model.read_bytes()
    secret = [line for line in ident.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-1")][0]
    ok(mc("verify", tmp_path / "m.mcx", "--identity-env", "DEVICE_ID", env={"DEVICE_ID": secret}))
    other = tmp_path / "other.age.txt"
    subprocess.run([age_keygen, "-o", other], capture_output=True, check=True)
    os.chmod(other, 0o600)
    r = mc("verify", tmp_path / "m.mcx", "-i", other)
    assert r.returncode == 1 and "no stanza" in r.stdout + r.stderr
    assert secret not in r.stdout + r.stderr
