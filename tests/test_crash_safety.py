"""Crash safety of the writers: a writer killed at any point never damages the destination.

A child process encrypts a 512 MiB file with modelcrypt.encrypt_file (or decrypts it with
decrypt_file, or runs ``modelcrypt encrypt``) onto a destination that already holds a complete
file, and is killed with SIGKILL: during start-up, right after start, blocked inside the progress
callback after the first batch, at half way and after the last batch (all data written, before
fsync and rename), and after random delays (seeded by MODELCRYPT_CRASH_SEED, else random; the seed
is in every failure message). After each kill:

* the destination is byte-identical to the previous file and still verifies (or, only when the
  kill came after the rename, it is the complete new output); a destination that did not exist
  before still does not exist;
* on Linux filesystems with O_TMPFILE (the writers' data goes to an unnamed file, linked to a
  temporary name only once complete, just before the rename): nothing else is left at all. The
  kills inside the progress callback are checked to have hit a writer that held its unnamed file
  open in the destination's directory. The one exception allowed is a kill in the instant between
  that link and the rename, after every byte was written and flushed: a complete temporary file,
  never a partial one;
* elsewhere (no O_TMPFILE: named temporary files from the start) the only other entries are
  temporary files named ".<name>.mctmp-XXXXXXXXXXXX" (12 hex digits), at most one per kill, never
  at the destination's name; they are not valid output (verify fails) unless the kill came after
  every byte was written (then they are complete but unpublished); decrypt_file's temporary files
  are owner-only (0600), like its output.

Errors and Ctrl-C leave no temporary file anywhere, also tested here: SIGINT gives
KeyboardInterrupt / exit 130, the previous destination intact and no temporary file at all,
including a SIGINT that arrives while the writer sits in its final fsync before the rename, caught
there through /proc/PID/syscall.
The next successful run writes a valid destination, creates no temporary file of its own and
leaves stale named ones of killed runs (no O_TMPFILE) alone (the test allows a later version to
remove them, but not to touch anything else).
"""

from __future__ import annotations

import filecmp
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

import modelcrypt

KEY = bytes(range(32))
MIB = 1 << 20
SIZE = 512 * MIB
SEED = int(os.environ.get("MODELCRYPT_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
TEMP = re.compile(r"^\.(?P<name>.+)\.mctmp-[0-9a-f]{12}$")

CHILD = r"""
import os, sys, time
import modelcrypt
op, src, dst, key, at = sys.argv[1], sys.argv[2], sys.argv[3], bytes.fromhex(sys.argv[4]), sys.argv[5]
total = os.path.getsize(src) if op == "encrypt" else modelcrypt.inspect(src).plaintext_length
kind, fraction = at.split(":") if at else ("", "0")
marked = []

def progress(done):
    # at the first call with done >= fraction * total: "block" stops there (until killed), "mark" says
    # so and carries on
    if done >= float(fraction) * total and not marked:
        marked.append(done)
        print("BLOCKED" if kind == "block" else "MARK", done, flush=True)
        if kind == "block":
            time.sleep(600)

callback = progress if kind else None
print("READY", flush=True)
t0 = time.monotonic()
try:
    if op == "encrypt":
        modelcrypt.encrypt_file(src, dst, key, metadata={"generation": "new"}, progress=callback)
    else:
        modelcrypt.decrypt_file(src, dst, key, progress=callback)
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
    sys.exit(130)
print("DONE", time.monotonic() - t0, flush=True)
"""


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """(directory, plaintext source, its complete encryption with metadata generation=old, seconds
    one encrypt_file of it takes)."""
    d = tmp_path_factory.mktemp("crash")
    src = d / "model.bin"
    block = bytearray(os.urandom(MIB))
    with open(src, "wb") as f:
        for i in range(SIZE // MIB):
            block[:8] = i.to_bytes(8, "little")  # every chunk differs
            f.write(block)
    enc = d / "model.enc"
    t0 = time.monotonic()
    modelcrypt.encrypt_file(src, enc, KEY, metadata={"generation": "old"})
    seconds = time.monotonic() - t0
    os.chmod(enc, 0o444)
    os.chmod(src, 0o444)
    yield d, src, enc, seconds
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(autouse=True)
def _free_disk(tmp_path):
    """The tests write GiBs (previous files, stale temporary files): free them at once."""
    yield
    for entry in tmp_path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink()


def _supports_tmpfile(directory):
    """Whether `directory`'s filesystem creates unnamed files (O_TMPFILE), as the writers use them."""
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY, 0o600)
    except (OSError, AttributeError):
        return False
    os.close(fd)
    return True


def _unnamed_outputs(pid, directory):
    """The unnamed (O_TMPFILE) files process `pid` has open in `directory` ("DIR/#INODE (deleted)")."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if os.path.dirname(link) == str(directory) and re.fullmatch(r"#\d+ \(deleted\)", os.path.basename(link)):
            found.append(link)
    return found


def _spawn(args):
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, proc.kill)  # never hang the suite on a child that stopped talking
    watchdog.daemon = True
    watchdog.start()
    return proc, watchdog


def _child(op, src, dst, at=""):
    return _spawn([sys.executable, "-c", CHILD, op, str(src), str(dst), KEY.hex(), at])


def _wait_line(proc, prefix, what):
    line = proc.stdout.readline()
    if not line.startswith(prefix):
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"[seed {SEED}] {what}: expected {prefix!r} from the child, got {line!r}{out!r}\n{err[-3000:]}")
    return line


def _finish(proc, watchdog, sig=signal.SIGKILL):
    """Sends sig (None: none) unless the process has ended, and collects it."""
    if sig is not None and proc.poll() is None:
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    watchdog.cancel()
    return proc.returncode, out, err


# fsync / fdatasync syscall numbers, to catch a writer in its final fsync through /proc/PID/syscall
_FSYNC_SYSCALLS = {"x86_64": ("74", "75"), "aarch64": ("82", "83")}.get(platform.machine(), ())


def _signal_during_final_fsync(proc, sig, timeout=60):
    """Polls the child's main thread until it is inside fsync/fdatasync of its temporary file (the
    writers fsync it only in the final commit, before the rename), then sends `sig`. Returns whether
    it did; False (nothing sent) when the process ended first or this cannot be observed here."""
    if not _FSYNC_SYSCALLS:
        return False
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with open(f"/proc/{proc.pid}/syscall") as f:
                fields = f.read().split()
            if fields and fields[0] in _FSYNC_SYSCALLS:
                target = os.readlink(f"/proc/{proc.pid}/fd/{int(fields[1], 16)}")
                if ".mctmp-" in target or re.search(r"/#\d+ \(deleted\)$", target):
                    proc.send_signal(sig)
                    return True
        except (OSError, ValueError, IndexError):
            pass
    return False


def _kill_child(op, src, dst, how, seconds, rng, holding=None):
    """Runs the child and SIGKILLs it at the point `how`; returns (returncode, stdout). For the kills
    in the progress callback, appends to `holding` (when given) the unnamed files the blocked child
    has open beside dst."""
    if how == "start-up":
        proc, wd = _child(op, src, dst)
        time.sleep(rng.uniform(0.0, 0.05))
    elif how == "after READY":
        proc, wd = _child(op, src, dst)
        _wait_line(proc, "READY", how)
    elif how.startswith("block "):  # blocked in the progress callback at this fraction of the data
        proc, wd = _child(op, src, dst, "block:" + how.split()[1])
        _wait_line(proc, "READY", how)
        _wait_line(proc, "BLOCKED", how)
        if holding is not None:
            holding.append(_unnamed_outputs(proc.pid, dst.parent))
    elif how.startswith("last batch +"):  # this many seconds after the last batch was written: in the
        proc, wd = _child(op, src, dst, "mark:1")  # final fsync, the rename or just after
        _wait_line(proc, "READY", how)
        _wait_line(proc, "MARK", how)
        time.sleep(float(how.split("+")[1].rstrip("s")))
    else:  # a delay after READY, as a fraction of one complete run
        fraction = float(how.split()[1])
        proc, wd = _child(op, src, dst)
        _wait_line(proc, "READY", how)
        time.sleep(fraction * seconds)
    rc, out, err = _finish(proc, wd)
    assert rc in (-signal.SIGKILL, 0), f"[seed {SEED}] {how}: child exit {rc}\n{out}\n{err[-3000:]}"
    if rc == 0:
        assert "DONE" in out, out
    return rc, out


def _temps(directory, dst_name, known_names):
    """The temporary files beside dst: every entry but `known_names` must be one, named for dst."""
    temps = set()
    for entry in os.listdir(directory):
        if entry in known_names:
            continue
        m = TEMP.match(entry)
        assert m and m.group("name") == dst_name, f"[seed {SEED}] unexpected entry {entry!r} beside {dst_name}"
        assert entry != dst_name
        temps.add(entry)
    return temps


def _check_new_temps(directory, new, how, *, complete_size, may_be_complete, is_plaintext, plaintext=None):
    assert len(new) <= 1, f"[seed {SEED}] {how}: more than one temporary file from one run: {new}"
    if _supports_tmpfile(directory):  # unnamed until complete: only a complete file may be left
        for name in new:
            assert may_be_complete and os.path.getsize(directory / name) == complete_size, \
                f"[seed {SEED}] {how}: the killed writer left {name} ({os.path.getsize(directory / name)} bytes)"
    for name in new:
        path = directory / name
        st = os.lstat(path)
        assert os.path.isfile(path) and not os.path.islink(path)
        assert st.st_size <= complete_size
        if is_plaintext:  # partial plaintext of decrypt_file: owner-only, like the output
            assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
            if st.st_size == complete_size:
                assert may_be_complete, f"[seed {SEED}] {how}: complete plaintext left at {name}"
            with open(path, "rb") as f, open(plaintext, "rb") as g:  # a prefix of the plaintext, nothing else
                assert f.read(4 * MIB) == g.read(min(4 * MIB, st.st_size))
            continue
        try:
            modelcrypt.verify(path, KEY)
        except modelcrypt.ModelCryptError:
            continue  # partial output: not a valid file
        assert may_be_complete, f"[seed {SEED}] {how}: the temporary file {name} verifies"
        assert st.st_size == complete_size


def _kill_plan(rng, random_kills):
    fixed = ["start-up", "after READY", "block 0", "block 0.5", "block 1", "last batch +0s",
             f"last batch +{rng.uniform(0.0, 0.4):.3f}s"]
    return fixed + [f"delay {rng.uniform(0.0, 1.1):.3f}" for _ in range(random_kills)]


def _may_be_complete(how):
    return how == "block 1" or how.startswith(("delay", "last batch"))


# ------------------------------------------------------------------ encrypt_file

def test_encrypt_file_killed_keeps_previous_destination(big, tmp_path):
    d, src, previous, seconds = big
    rng = random.Random(SEED)
    dst = tmp_path / "model.mcx"
    shutil.copyfile(previous, dst)
    complete_size = os.path.getsize(previous)
    seen: set[str] = set()
    outcomes = []
    unnamed = _supports_tmpfile(tmp_path)
    for how in _kill_plan(rng, 2):
        before = os.stat(dst)
        holding: list[list[str]] = []
        rc, out = _kill_child("encrypt", src, dst, how, seconds, rng, holding)
        now = os.stat(dst)
        if (now.st_ino, now.st_mtime_ns) == (before.st_ino, before.st_mtime_ns):
            assert filecmp.cmp(dst, previous, shallow=False), f"[seed {SEED}] {how}: destination modified in place"
            modelcrypt.verify(dst, KEY)
            outcomes.append((how, "previous"))
        else:  # replaced: only acceptable as the complete new output, and only when the writer got that far
            assert _may_be_complete(how) and how != "block 1", f"[seed {SEED}] {how}: destination replaced"
            modelcrypt.verify(dst, KEY)
            info = modelcrypt.inspect(dst)
            assert info.metadata == {"generation": "new"} and info.plaintext_length == SIZE
            assert now.st_size == complete_size
            outcomes.append((how, "new" if rc == 0 else "new (killed after rename)"))
            shutil.copyfile(previous, dst)  # back to the previous file for the next kill
        temps = _temps(tmp_path, dst.name, {dst.name})
        new = temps - seen
        assert seen <= temps, f"[seed {SEED}] {how}: a stale temporary file disappeared"
        if how.startswith("block"):
            if unnamed:  # the kill hit a writer that was writing its unnamed file: nothing is left
                assert len(holding[0]) == 1, f"[seed {SEED}] {how}: the blocked writer holds {holding}"
                assert not new, f"[seed {SEED}] {how}: the killed writer left {new}"
            else:
                assert len(new) == 1, f"[seed {SEED}] {how}: the killed writer's temporary file is missing: {temps}"
        _check_new_temps(tmp_path, new, how, complete_size=complete_size, may_be_complete=_may_be_complete(how),
                         is_plaintext=False)
        seen |= new
    print(f"seed {SEED}: {outcomes}; temporary files left: {len(seen)}")
    if not unnamed:
        assert seen, "no kill left a temporary file: the kills did not hit the writer"
    assert [o for h, o in outcomes if h.startswith(("start-up", "after", "block"))] == ["previous"] * 5, outcomes

    # the next successful run: a valid destination, no new temporary file, the stale ones untouched
    stale = {name: os.stat(tmp_path / name).st_size for name in seen}
    modelcrypt.encrypt_file(src, dst, KEY, metadata={"generation": "final"})
    modelcrypt.verify(dst, KEY)
    assert modelcrypt.inspect(dst).metadata == {"generation": "final"}
    remaining = _temps(tmp_path, dst.name, {dst.name})
    assert remaining <= set(stale), remaining - set(stale)
    for name in remaining:
        assert os.stat(tmp_path / name).st_size == stale[name]
    if unnamed:
        return
    partial = [n for n in remaining if os.path.getsize(tmp_path / n) < complete_size]
    assert partial, remaining
    with pytest.raises(modelcrypt.ModelCryptError):  # a stale partial file is not loadable
        modelcrypt.load(tmp_path / partial[0], KEY).close()


def test_encrypt_file_killed_without_previous_destination(big, tmp_path):
    d, src, previous, seconds = big
    rng = random.Random(SEED + 1)
    dst = tmp_path / "fresh.mcx"
    seen: set[str] = set()
    for how in ("after READY", "block 0.25", "block 1", f"last batch +{rng.uniform(0.0, 0.3):.3f}s"):
        holding: list[list[str]] = []
        rc, out = _kill_child("encrypt", src, dst, how, seconds, rng, holding)
        if holding and _supports_tmpfile(tmp_path):
            assert len(holding[0]) == 1, f"[seed {SEED}] {how}: the blocked writer holds {holding}"
        if os.path.lexists(dst):
            assert _may_be_complete(how) and how != "block 1", f"[seed {SEED}] {how}: destination appeared"
            modelcrypt.verify(dst, KEY)
            assert modelcrypt.inspect(dst).plaintext_length == SIZE
            os.unlink(dst)
        temps = _temps(tmp_path, dst.name, set())
        if _supports_tmpfile(tmp_path):  # a new destination is named in one step (linkat): never a temporary
            assert not temps - seen, f"[seed {SEED}] {how}: the killed writer left {temps - seen}"
        _check_new_temps(tmp_path, temps - seen, how, complete_size=os.path.getsize(previous),
                         may_be_complete=_may_be_complete(how), is_plaintext=False)
        seen = temps
    for name in seen:
        os.unlink(tmp_path / name)


def test_encrypt_file_interrupted_leaves_no_temporary_file(big, tmp_path):
    """SIGINT is KeyboardInterrupt: as documented, the previous file stays and no temporary file remains."""
    d, src, previous, seconds = big
    rng = random.Random(SEED + 2)
    dst = tmp_path / "model.mcx"
    shutil.copyfile(previous, dst)
    for at, delay in (("block:0.3", 0.0), ("", rng.uniform(0.2, 0.6) * seconds)):
        proc, wd = _child("encrypt", src, dst, at)
        _wait_line(proc, "READY", "SIGINT")
        if at:
            _wait_line(proc, "BLOCKED", "SIGINT")
        time.sleep(delay)
        rc, out, err = _finish(proc, wd, signal.SIGINT)
        if rc == 0:  # finished before the signal arrived
            assert "DONE" in out and modelcrypt.inspect(dst).metadata == {"generation": "new"}
            shutil.copyfile(previous, dst)
        else:
            assert rc == 130 and "INTERRUPTED" in out, f"[seed {SEED}] exit {rc}\n{out}\n{err[-3000:]}"
            if not filecmp.cmp(dst, previous, shallow=False):
                # the signal came during the final rename or the return: KeyboardInterrupt, yet the
                # destination is already the complete new file (still atomic: old or complete new)
                assert not at, f"[seed {SEED}] {at}: interrupted in the progress callback, destination replaced"
                modelcrypt.verify(dst, KEY)
                assert modelcrypt.inspect(dst).metadata == {"generation": "new"}
                print(f"seed {SEED}: SIGINT after {delay:.3f}s: KeyboardInterrupt after the rename")
                shutil.copyfile(previous, dst)
        assert os.listdir(tmp_path) == [dst.name], f"[seed {SEED}] {at or delay}: {os.listdir(tmp_path)}"


@pytest.mark.parametrize("op", ["encrypt", "decrypt"])
def test_interrupt_during_final_fsync_keeps_previous(big, tmp_path, op):
    """SIGINT while the writer is in its final fsync (every byte written, the rename still to come):
    the call must end in KeyboardInterrupt with the destination "left as it was" (encrypt_file's
    docstring) and no temporary file. The child's main thread is watched through /proc/PID/syscall
    and signalled while it sits in fsync of its temporary file."""
    d, plaintext, enc, seconds = big
    dst = tmp_path / "out"
    previous = os.urandom(MIB)
    src = plaintext if op == "encrypt" else enc
    outcomes = []
    for attempt in range(2):
        dst.write_bytes(previous)
        before = os.stat(dst)
        proc, wd = _child(op, src, dst, "mark:1")
        _wait_line(proc, "READY", "SIGINT in fsync")
        _wait_line(proc, "MARK", "SIGINT in fsync")  # the last batch is written
        in_fsync = _signal_during_final_fsync(proc, signal.SIGINT)
        rc, out, err = _finish(proc, wd, None if in_fsync else signal.SIGINT)
        now = os.stat(dst)
        unchanged = (now.st_ino, now.st_mtime_ns) == (before.st_ino, before.st_mtime_ns) and dst.read_bytes() == previous
        outcomes.append({"signal in fsync": in_fsync, "exit": rc, "KeyboardInterrupt": "INTERRUPTED" in out,
                         "destination": "previous" if unchanged else "replaced"})
        assert os.listdir(tmp_path) == ["out"], os.listdir(tmp_path)
        if not unchanged:  # whatever happened, only the complete new output may be there
            if op == "encrypt":
                modelcrypt.verify(dst, KEY)
            else:
                assert filecmp.cmp(dst, plaintext, shallow=False)
    bad = [o for o in outcomes if (o["KeyboardInterrupt"] and o["destination"] == "replaced")
           or (o["signal in fsync"] and (o["exit"], o["destination"]) != (130, "previous"))]
    assert not bad, f"{op}_file: KeyboardInterrupt, but the destination was replaced: {outcomes}"


# ------------------------------------------------------------------ decrypt_file

def test_decrypt_file_killed_keeps_previous_destination(big, tmp_path):
    d, plaintext, enc, seconds = big
    rng = random.Random(SEED + 3)
    dst = tmp_path / "model.bin"
    previous = os.urandom(3 * MIB + 5)
    dst.write_bytes(previous)
    seen: set[str] = set()
    for how in ("block 0.5", "block 1", f"last batch +{rng.uniform(0.0, 0.3):.3f}s", f"delay {rng.uniform(0.1, 0.8):.3f}"):
        before = os.stat(dst)
        holding: list[list[str]] = []
        rc, out = _kill_child("decrypt", enc, dst, how, seconds / 2, rng, holding)
        now = os.stat(dst)
        if (now.st_ino, now.st_mtime_ns) == (before.st_ino, before.st_mtime_ns):
            assert dst.read_bytes() == previous, f"[seed {SEED}] {how}: destination modified in place"
        else:
            assert _may_be_complete(how) and how != "block 1", f"[seed {SEED}] {how}: destination replaced"
            assert filecmp.cmp(dst, plaintext, shallow=False) and now.st_mode & 0o777 == 0o600
            dst.write_bytes(previous)
        temps = _temps(tmp_path, dst.name, {dst.name})
        new = temps - seen
        if how.startswith("block"):
            if _supports_tmpfile(tmp_path):  # no partial plaintext left anywhere
                assert len(holding[0]) == 1, f"[seed {SEED}] {how}: the blocked writer holds {holding}"
                assert not new, f"[seed {SEED}] {how}: the killed writer left {new}"
            else:
                assert len(new) == 1, f"[seed {SEED}] {how}: {temps}"
        _check_new_temps(tmp_path, new, how, complete_size=SIZE, may_be_complete=_may_be_complete(how),
                         is_plaintext=True, plaintext=plaintext)
        seen = temps
    for name in seen:
        os.unlink(tmp_path / name)


# ------------------------------------------------------------------ CLI

def _cli(src, dst, keyfile):
    return _spawn([sys.executable, "-m", "modelcrypt", "encrypt", str(src), "-o", str(dst), "--key-file", str(keyfile),
                   "--metadata", "generation=cli", "--force", "--quiet"])


def _wait_for_temp(proc, directory, dst_name, known, timeout=60):
    """Polls until the process writes a new temporary file for dst_name (an unnamed one it holds
    open, or a named one) (True), or the process ended (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if _unnamed_outputs(proc.pid, directory):
                return True
        except OSError:
            pass
        for name in os.listdir(directory):
            if name not in known and TEMP.match(name):
                return True
        time.sleep(0.001)
    return False


def test_cli_encrypt_killed_or_interrupted(big, tmp_path):
    d, src, previous, _ = big
    rng = random.Random(SEED + 4)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    keyfile = tmp_path / "key.hex"
    keyfile.write_text(KEY.hex() + "\n")
    os.chmod(keyfile, 0o600)
    dst = out_dir / "model.mcx"
    complete_size = os.path.getsize(previous)

    # one complete run, for its duration (interpreter start-up included)
    t0 = time.monotonic()
    proc, wd = _cli(src, dst, keyfile)
    out, err = proc.communicate(timeout=120)
    wd.cancel()
    seconds = time.monotonic() - t0
    assert proc.returncode == 0, err
    assert modelcrypt.inspect(dst).metadata == {"generation": "cli"}
    shutil.copyfile(previous, dst)

    seen: set[str] = set()
    plan = [(signal.SIGKILL, "temp file created", 0), (signal.SIGKILL, "random", rng.uniform(0.2, 0.95)),
            (signal.SIGINT, "temp file created", 0), (signal.SIGINT, "random", rng.uniform(0.2, 0.9)),
            (signal.SIGINT, "final fsync", 0)]  # every byte written, the rename still to come
    for sig, when, fraction in plan:
        what = f"[seed {SEED}] {sig.name} at {when} {fraction:.2f}"
        before = os.stat(dst)
        t0 = time.monotonic()
        sig_sent = False
        proc, wd = _cli(src, dst, keyfile)
        if when == "random":
            time.sleep(fraction * seconds)
        elif when == "final fsync":
            if _signal_during_final_fsync(proc, sig):
                sig_sent = True
            else:
                when = "random"  # not observable here (or too quick): judged like a random signal
        else:
            assert _wait_for_temp(proc, out_dir, dst.name, seen), f"{what}: the CLI ended before writing"
        rc, out, err = _finish(proc, wd, None if sig_sent else sig)
        what += f" (+{time.monotonic() - t0:.2f}s of a {seconds:.2f}s run): exit {rc}, stderr {err[-2000:]!r}"
        now = os.stat(dst)
        unchanged = (now.st_ino, now.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
        if unchanged:
            assert filecmp.cmp(dst, previous, shallow=False), what
        temps = _temps(out_dir, dst.name, {dst.name})
        new = temps - seen
        if sig == signal.SIGKILL:
            assert rc in (-signal.SIGKILL, 0), what
            if not unchanged:  # only the complete new output may replace it
                assert when == "random", what
        elif rc == 0:  # finished before the signal: the new file
            assert when == "random" and not unchanged, what
        elif rc == -signal.SIGINT:  # Ctrl-C while Python was still starting: nothing was written
            assert when == "random" and unchanged and not new, what
        else:  # documented: exit 130, no partial output, the previous DST intact, no temporary file
            assert rc == 130, what
            assert unchanged, f"{what}: exit 130 ('no output was written') but the destination was replaced"
            assert not new, f"{what}: left {new}"
        if not unchanged:
            modelcrypt.verify(dst, KEY)
            assert modelcrypt.inspect(dst).metadata == {"generation": "cli"}, what
            shutil.copyfile(previous, dst)
        modelcrypt.verify(dst, KEY)
        _check_new_temps(out_dir, new, what, complete_size=complete_size, may_be_complete=True, is_plaintext=False)
        seen = temps
    for name in seen:
        os.unlink(out_dir / name)
