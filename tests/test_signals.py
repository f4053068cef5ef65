"""SIGTERM and SIGHUP (kill, docker stop, systemd, a closed terminal) cancel a CLI command the way
Ctrl-C does (issue 13): exit 128 + signal number, one line on stderr, no partial output, no
temporary file or directory, the previous destination intact. Real subprocesses, real signals,
sent while the command has its source open (so the signal lands mid-write)."""

import os
import signal
import subprocess
import sys
import time

import pytest

import modelcrypt

KEY = bytes(range(32))
ENV = {k: v for k, v in os.environ.items() if not k.startswith("MODELCRYPT")}


def _start(*args):
    return subprocess.Popen([sys.executable, "-m", "modelcrypt", *map(str, args)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def _has_open(pid: int, inside: str) -> bool:
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(inside):
                    return True
            except OSError:
                pass
    except OSError:
        pass
    return False


def _signal_mid_run(proc, inside: str, sig) -> tuple[int, str]:
    deadline = time.monotonic() + 60
    while proc.poll() is None and not _has_open(proc.pid, inside):
        assert time.monotonic() < deadline, "the command never opened its source"
        time.sleep(0.002)
    if proc.poll() is None:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _leftovers(directory) -> list[str]:
    return [n for n in os.listdir(directory) if "mctmp" in n or n.startswith(".")]


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("signals")
    src = root / "model"
    src.mkdir()
    for i in range(12):
        (src / f"part{i:02d}.bin").write_bytes(os.urandom(8 << 20))
    enc = root / "model.enc"
    modelcrypt.encrypt_directory(src, enc, KEY)
    big = root / "big.bin"
    with open(big, "wb") as f:
        for _ in range(24):
            f.write(os.urandom(8 << 20))
    big_enc = root / "big.bin.mcx"
    modelcrypt.encrypt_file(big, big_enc, KEY)
    keyfile = root / "k.hex"
    modelcrypt.write_key_file(keyfile, KEY)
    return root, src, enc, big, big_enc, keyfile


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
@pytest.mark.parametrize("command", ["encrypt-dir", "decrypt-dir", "decrypt-file", "encrypt-file", "migrate-file"])
def test_signal_cancels_like_ctrl_c(trees, tmp_path, command, sig):
    root, src, enc, big, big_enc, keyfile = trees
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    previous = out_dir / "dst"
    source, args = {
        "encrypt-dir": (src, ("encrypt", src)),
        "decrypt-dir": (enc, ("decrypt", enc)),
        "decrypt-file": (big_enc, ("decrypt", big_enc)),
        "encrypt-file": (big, ("encrypt", big)),
        "migrate-file": (big_enc, ("migrate", big_enc, "--from-key-file", keyfile)),
    }[command]
    is_dir = command.endswith("-dir")
    if is_dir:  # an existing destination that a cancelled --force run must leave as it was
        previous.mkdir()
        (previous / "keep.txt").write_text("previous output\n")
    else:
        previous.write_bytes(b"previous output\n")
    proc = _start(*args, "-o", previous, "--key-file", keyfile, "--force", "-q")
    rc, err = _signal_mid_run(proc, str(source), sig)
    if rc == 0:  # finished before the signal could land: the complete new output, nothing else
        pytest.fail(f"{command} finished before {sig.name} arrived; make the input larger")
    assert rc == 128 + sig, (rc, err)
    assert err.strip() == f"modelcrypt: terminated by {sig.name}; no output was written", err
    assert "Traceback" not in err
    if is_dir:
        assert sorted(os.listdir(previous)) == ["keep.txt"]
    else:
        assert previous.read_bytes() == b"previous output\n"
    assert _leftovers(out_dir) == [], os.listdir(out_dir)


def test_signal_handlers_are_restored_after_main(tmp_path):
    """main() called in-process (embedding, tests) leaves the caller's handlers as they were."""
    import modelcrypt.cli

    src = tmp_path / "m.bin"
    src.write_bytes(b"x" * 1000)
    keyfile = tmp_path / "k.hex"
    modelcrypt.write_key_file(keyfile, KEY)
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    assert modelcrypt.cli.main(["encrypt", str(src), "--key-file", str(keyfile), "-q"]) == 0
    assert {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)} == before
