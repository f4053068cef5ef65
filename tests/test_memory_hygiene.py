"""Plaintext buffers are kept out of core dumps (MADV_DONTDUMP), out of fork() children (MADV_WIPEONFORK) and, up to 64 MiB, out of swap
(mlock, best effort), as the kernel reports them in /proc/self/smaps. Wiping on release is checked
byte by byte in tests/cpp/test_secure_buffer_wipe.cpp through a test hook."""

import os
import resource

import numpy as np
import pytest

import modelcrypt


def _mapping_flags(address):
    """VmFlags of the mapping holding `address`, from /proc/self/smaps."""
    current = None
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                current = lo <= address < hi
            elif current and line.startswith("VmFlags:"):
                return set(line.split()[1:])
    raise AssertionError(f"no mapping holds {address:#x}")


def _vm_locked_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmLck:"):
                return int(line.split()[1])
    raise AssertionError("no VmLck in /proc/self/status")


def _address(buf):
    return np.frombuffer(buf, dtype=np.uint8).ctypes.data


def _can_lock(nbytes):
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return soft == resource.RLIM_INFINITY or soft >= _vm_locked_kib() * 1024 + nbytes + (1 << 20)


def test_small_plaintext_is_locked_and_not_dumped():
    key = modelcrypt.generate_key()
    data = os.urandom(1 << 20)
    blob = modelcrypt.encrypt_bytes(data, key)
    locked_before = _vm_locked_kib()
    buf = modelcrypt.decrypt_bytes(blob, key)
    assert bytes(buf) == data
    flags = _mapping_flags(_address(buf))
    assert "dd" in flags  # MADV_DONTDUMP
    if _can_lock(len(data)):
        assert "lo" in flags
        assert _vm_locked_kib() - locked_before >= 1024
    buf.close()  # wiped now; the (zeroed) mapping goes with the object
    del buf
    import gc
    gc.collect()
    assert _vm_locked_kib() <= locked_before


_LARGE_CHILD = r"""
import sys, numpy as np, modelcrypt
sys.path.insert(0, sys.argv[3])
import test_memory_hygiene as t
key = bytes.fromhex(sys.argv[2])
before = t._vm_locked_kib()
with modelcrypt.load(sys.argv[1], key) as buf:
    flags = t._mapping_flags(t._address(buf))
    print(" ".join(sorted(flags)), t._vm_locked_kib() - before)
"""


def _large_buffer_flags(tmp_path, huge_pages):
    import subprocess
    import sys
    key = modelcrypt.generate_key()
    src = tmp_path / "big.bin"
    if not src.exists():
        src.write_bytes(os.urandom(96 << 20))
    modelcrypt.encrypt_file(src, tmp_path / "big.mcx", key)
    env = dict(os.environ)
    env.pop("MODELCRYPT_HUGE_PAGES", None)
    if huge_pages is not None:
        env["MODELCRYPT_HUGE_PAGES"] = huge_pages
    out = subprocess.run([sys.executable, "-c", _LARGE_CHILD, str(tmp_path / "big.mcx"), bytes(key).hex(),
                          os.path.dirname(__file__)], env=env, capture_output=True, text=True, check=True).stdout
    flags, locked = out.rsplit(" ", 1)
    return set(flags.split()), int(locked)


def _balloon_reports_free_pages():
    base = "/sys/bus/virtio/devices"
    for name in (os.listdir(base) if os.path.isdir(base) else []):
        try:
            dev = open(os.path.join(base, name, "device")).read().strip()
            bits = open(os.path.join(base, name, "features")).read().strip()
        except OSError:
            continue
        if dev in ("0x0005", "0x5") and len(bits) > 5 and bits[5] == "1":
            return True
    return False


@pytest.mark.parametrize("huge_pages", ["always", "never", None])
def test_large_plaintext_is_not_dumped_but_not_locked(tmp_path, huge_pages):
    flags, locked_kib = _large_buffer_flags(tmp_path, huge_pages)
    assert "dd" in flags           # MADV_DONTDUMP
    assert "lo" not in flags       # > 64 MiB: not pinned
    assert locked_kib == 0
    # MADV_HUGEPAGE: always / never as asked; by default unless the VM's balloon hands free memory
    # back to the host (fresh huge pages are the slow ones there)
    expect_huge = {"always": True, "never": False, None: not _balloon_reports_free_pages()}[huge_pages]
    assert ("hg" in flags) == expect_huge, flags


def test_closed_buffer_refuses_access_and_reads_zero_through_old_views():
    key = modelcrypt.generate_key()
    data = b"\x5a" * 100000
    buf = modelcrypt.decrypt_bytes(modelcrypt.encrypt_bytes(data, key), key)
    buf.close()
    with pytest.raises(ValueError):
        bytes(buf)


def _child_view(address, size):
    """Forks; the child reads `size` bytes at `address` (its copy of the parent's memory) and sends
    back whether they are all zero and their first bytes. Returns (all_zero, prefix)."""
    import ctypes
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: no Python-level cleanup, no pytest machinery
        try:
            os.close(r)
            seen = ctypes.string_at(address, size)
            os.write(w, (b"Z" if seen.count(0) == size else b"N") + seen[:16])
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        answer = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    return answer[:1] == b"Z", answer[1:]


@pytest.mark.parametrize("size", [100000, 3 << 20])  # a 4 KiB-page buffer and a 2 MiB-aligned one
def test_forked_child_sees_zeros_in_plaintext_buffers(tmp_path, size):
    """MADV_WIPEONFORK: a fork() child (a worker pool, a subprocess started by fork) gets zero pages
    where the parent holds decrypted plaintext; the parent keeps its plaintext."""
    key = modelcrypt.generate_key()
    data = bytes([0xA5]) * size
    src = tmp_path / "m.bin"
    src.write_bytes(data)
    modelcrypt.encrypt_file(src, tmp_path / "m.mcx", key)
    for buf in (modelcrypt.load(tmp_path / "m.mcx", key), modelcrypt.decrypt_bytes(modelcrypt.encrypt_bytes(data, key), key)):
        with buf:
            address = _address(buf)
            all_zero, prefix = _child_view(address, len(buf))
            assert all_zero, f"the child sees the plaintext: {prefix.hex()}"
            assert bytes(buf) == data  # the parent's copy is untouched
            assert "wf" in _mapping_flags(address)  # VM_WIPEONFORK in smaps


# ------------------------------------------------------------------ Python-side copies of secrets
#
# A child process runs one modelcrypt call, then searches its own writable memory (/proc/self/mem,
# every rw-p mapping) for the secret: the key (raw and as hex text) or slices of the plaintext.
# Copies modelcrypt made and dropped unwiped stay in freed memory and are found. The needles live
# in an mmap (and the legitimate holders, e.g. the array np.load returned, are named) that the scan
# skips; needles are copied in through buffers, never through intermediate Python objects.

_SCANNER = r"""
import ctypes, gc, mmap, os, sys

class Needles:
    def __init__(self, size=1 << 16):
        self.mm = mmap.mmap(-1, size)
        self.lo = ctypes.addressof(ctypes.c_char.from_buffer(self.mm))
        self.used = 0
        self.spans = {}

    def put(self, name, view):  # raw bytes, copied buffer to buffer
        n = len(view)
        self.mm[self.used:self.used + n] = view
        self.spans[name] = (self.used, n)
        self.used += n

    def put_hex(self, name, view):  # hex text, one digit at a time (no bytes object holds it)
        digits = b"0123456789abcdef"
        start = self.used
        for b in view:
            self.mm[self.used] = digits[b >> 4]
            self.mm[self.used + 1] = digits[b & 15]
            self.used += 2
        self.spans[name] = (start, self.used - start)

    def view(self, name):
        off, n = self.spans[name]
        return memoryview(self.mm)[off:off + n]


def scan(needles, skip=()):
    # {needle name: number of copies in writable memory outside needles.mm and `skip` ranges}
    gc.collect()
    step = 8 << 20
    scratch = mmap.mmap(-1, step + 4096)
    s_lo = ctypes.addressof(ctypes.c_char.from_buffer(scratch))
    skip = list(skip) + [(needles.lo, needles.lo + len(needles.mm)), (s_lo, s_lo + len(scratch))]
    regions = []
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            if fields[1].startswith("rw") and not (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                regions.append((lo, hi))
    found = {name: 0 for name in needles.spans}
    longest = max(n for _, n in needles.spans.values())
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        for lo, hi in regions:
            pos = lo
            while pos < hi:
                n = min(step + longest, hi - pos)
                try:
                    got = os.preadv(fd, [memoryview(scratch)[:n]], pos)
                except OSError:
                    break
                for name in needles.spans:
                    needle = needles.view(name)
                    at = scratch.find(needle, 0, got)
                    while at >= 0:
                        addr = pos + at
                        if at < step and not any(a <= addr < b for a, b in skip):
                            found[name] += 1
                        at = scratch.find(needle, at + 1, got)
                    needle.release()
                pos += step
    finally:
        os.close(fd)
    return found
"""

# Freed small objects are soon reused, so a scan can miss a dropped copy: the objects that hold key
# material by construction (what generate_key returns, what binascii encodes or decodes during the
# call) are also recorded by a hook, and must all be zeros afterwards.
_TRACKER = r"""
import binascii
handed = []

def _tracking(fn):
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        handed.append(out)
        return out
    return wrapper

def track_binascii():
    for name in ("hexlify", "b2a_base64", "unhexlify", "a2b_base64"):
        setattr(binascii, name, _tracking(getattr(binascii, name)))

def unwiped():
    return sum(1 for o in handed if len(o) >= 2 and o.count(0) != len(o))
"""

_KEYGEN_CHILD = _SCANNER + _TRACKER + r"""
import modelcrypt.cli
import modelcrypt.cli._key_source as key_source
needles = Needles()
real = key_source.generate_key

def generate_key(n):  # the real key, also recorded as needles
    key = real(n)
    with memoryview(key) as v:
        needles.put("raw", v)
        needles.put_hex("hex", v)
    handed.append(key)
    return key

key_source.generate_key = generate_key  # where the CLI looks it up
track_binascii()
rc = modelcrypt.cli.main(sys.argv[1:])
assert rc == 0, rc
found = scan(needles)
found["unwiped"] = unwiped()
print("FOUND", found, flush=True)
"""

_KEYFILE_CHILD = _SCANNER + _TRACKER + r"""
import modelcrypt, modelcrypt.cli as cli
from modelcrypt import _core
needles = Needles()
key = _core.random_bytes(32)
with memoryview(key) as v:
    needles.put("raw", v)
    needles.put_hex("hex", v)
modelcrypt.wipe(key)
del key
keyfile, src, dst = sys.argv[1:4]
fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
with needles.view("hex") as v:
    os.write(fd, v)
os.write(fd, b"\n")
os.close(fd)
track_binascii()
k = modelcrypt.read_key_file(keyfile)        # the library call
modelcrypt.wipe(k)
del k
rc = modelcrypt.cli.main(["encrypt", src, "-o", dst, "--key-file", keyfile, "--quiet"])   # and the CLI's key path
assert rc == 0, rc
found = scan(needles)
found["unwiped"] = unwiped()
print("FOUND", found, flush=True)
"""


def _run_scan(code, *args):
    import subprocess
    import sys
    env = dict(os.environ, SKBUILD_EDITABLE_VERBOSE="0")
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    line = [l for l in out.stdout.splitlines() if l.startswith("FOUND ")]
    assert line, out.stdout
    import ast
    return ast.literal_eval(line[-1][len("FOUND "):]), out.stdout


@pytest.mark.parametrize("fmt", ["hex", "base64", "raw"])
def test_keygen_to_a_file_leaves_no_copy_of_the_key(tmp_path, fmt):
    found, _ = _run_scan(_KEYGEN_CHILD, "keygen", "-o", tmp_path / "k", "--format", fmt, "--quiet")
    assert found["raw"] == 0 and found["unwiped"] == 0 and (fmt != "hex" or found["hex"] == 0), found
    assert len(modelcrypt.read_key_file(tmp_path / "k")) == 32


def test_keygen_to_stdout_leaves_no_copy_of_the_key(tmp_path):
    found, stdout = _run_scan(_KEYGEN_CHILD, "keygen")
    assert len(stdout.splitlines()[0]) == 64  # the key was printed
    assert found == {"raw": 0, "hex": 0, "unwiped": 0}, found


def test_reading_a_key_file_leaves_no_copy_of_the_key(tmp_path):
    src = tmp_path / "m.bin"
    src.write_bytes(os.urandom(1000))
    found, _ = _run_scan(_KEYFILE_CHILD, tmp_path / "k.hex", src, tmp_path / "m.mcx")
    assert found == {"raw": 0, "hex": 0, "unwiped": 0}, found


_NUMPY_CHILD = _SCANNER + r"""
import numpy as np
import modelcrypt, modelcrypt.numpy as mcnp
path, key = sys.argv[1], bytes.fromhex(sys.argv[2])
result = mcnp.load(path, key)
arrays = list(result.values()) if isinstance(result, dict) else [result]
needles = Needles()
skip = []
for i, arr in enumerate(arrays):  # slices of the plaintext, taken from the arrays np.load returned
    skip.append((arr.ctypes.data, arr.ctypes.data + arr.nbytes))
    with memoryview(arr.reshape(-1).view(np.uint8)) as v:
        for j, off in enumerate(range(4096, arr.nbytes - 64, arr.nbytes // 8)):
            needles.put(f"a{i}.{j}", v[off:off + 64])
found = scan(needles, skip)
print("FOUND", {"copies": sum(found.values()), "needles": len(found)}, flush=True)
"""


@pytest.mark.parametrize("kind", ["npy", "npz"])
def test_numpy_load_leaves_no_copy_of_the_plaintext(tmp_path, kind):
    """modelcrypt.numpy.load hands np.load its plaintext through MemoryReader.read, which must return
    bytes copies: each is wiped once np.load has dropped it."""
    import modelcrypt.numpy as mcnp
    key = modelcrypt.generate_key()
    arr = np.frombuffer(os.urandom(4 << 20), dtype=np.uint8)
    path = tmp_path / f"a.{kind}.mcx"
    if kind == "npy":
        mcnp.save(path, arr, key)
    else:
        mcnp.savez(path, key, a=arr, b=arr[: 1 << 20].copy())
    found, _ = _run_scan(_NUMPY_CHILD, path, bytes(key).hex())
    assert found["needles"] >= 8 and found["copies"] == 0, found



# ------------------------------------------------------------------ X25519 identities (format v2)
#
# The identity counterparts of the key tests above: a child generates or reads an identity and uses
# it (CLI and library), then searches its memory for the identity's secret in every form it takes
# (its 32 raw bytes, their Bech32 5-bit groups, its MODELCRYPT-SECRET-KEY-1... text) and, for a file
# encrypted to it, for the file key FK unwrapped from its stanza, the stanza's X25519 shared secret
# and wrap key, and the keys derived from FK (PRK, payload key, header MAC key, recipients MAC key),
# all computed independently in the parent with `cryptography` (FORMAT.md's key schedule). As for
# keys, the identity texts handed to Python (Identity.secret_text) are also tracked and must be zeros.

_BECH32 = r"""
def put_bech32(needles, text_name, raw_name, five_name):
    # Decodes the Bech32 text needle into its data, raw bytes and 5-bit groups, written one value
    # at a time into the needles (small ints only: no Python object holds more than 12 bits of it).
    charset = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    off, n = needles.spans[text_name]
    mm = needles.mm
    sep = max(i for i in range(n) if mm[off + i] == ord("1"))
    start5 = needles.used
    for i in range(sep + 1, n - 6):
        c = mm[off + i] | 0x20  # lower case
        mm[needles.used] = charset.index(c)
        needles.used += 1
    needles.spans[five_name] = (start5, needles.used - start5)
    start = needles.used
    acc = bits = 0
    for i in range(start5, start5 + needles.spans[five_name][1]):
        acc = ((acc << 5) | mm[i]) & 0xfff
        bits += 5
        if bits >= 8:
            bits -= 8
            mm[needles.used] = (acc >> bits) & 0xff
            needles.used += 1
    acc = 0
    needles.spans[raw_name] = (start, needles.used - start)
    # the 5-bit groups as Bech32 carries the 32 bytes: 51 full groups plus a padded last one
    needles.spans[five_name] = (start5, 51)


def put_identity_text(needles, ident):
    secret = ident.secret_text()
    with memoryview(secret) as v:
        needles.put("text", v)
    secret[:] = bytes(len(secret))
    del secret
    put_bech32(needles, "text", "raw", "five")
    off, n = needles.spans["text"]
    needles.spans["text_data"] = (off + 23, n - 23)  # after MODELCRYPT-SECRET-KEY-1: its secret part


def track_secret_text():
    # every identity text handed out (Identity.secret_text: the CLI's keygen, write_identity_file)
    # is recorded, and must be zeros afterwards (a dropped small bytearray is soon reused, so the
    # scan alone could miss it)
    import modelcrypt
    real = modelcrypt.Identity.secret_text

    def secret_text(self):
        out = real(self)
        handed.append(out)
        return out

    modelcrypt.Identity.secret_text = secret_text


def add_halves(needles):
    # the second half of every secret too: freeing a small block overwrites its first bytes with
    # the allocator's free-list pointers, so a dropped copy may survive only in part
    for name, (off, n) in list(needles.spans.items()):
        needles.spans[name + "/2"] = (off + n // 2, n - n // 2)
"""

_IDENTITY_KEYGEN_CHILD = _SCANNER + _TRACKER + _BECH32 + r"""
import modelcrypt.cli
import modelcrypt.cli._recipients_cli as rcli
needles = Needles()
real = rcli._rc.generate_identity
made = []

def generate_identity():  # the real identity; its secret recorded as needles
    ident = real()
    put_identity_text(needles, ident)
    made.append(ident.recipient)
    return ident

rcli._rc.generate_identity = generate_identity
track_binascii()
track_secret_text()
rc = modelcrypt.cli.main(sys.argv[1:])
assert rc == 0 and len(made) == 1, rc
assert needles.spans["raw"][1] == 32
add_halves(needles)
found = scan(needles)
found["unwiped"] = unwiped()
print("RECIPIENT", made[0], flush=True)
print("FOUND", found, flush=True)
"""


@pytest.mark.parametrize("to", ["file", "stdout"])
def test_identity_keygen_leaves_no_copy_of_the_identity(tmp_path, to):
    args = ["keygen", "--x25519", "--quiet"] + (["-o", tmp_path / "id"] if to == "file" else [])
    found, stdout = _run_scan(_IDENTITY_KEYGEN_CHILD, *args)
    assert {"text", "text_data/2", "five", "raw/2", "unwiped"} <= set(found), found
    assert not any(found.values()), found
    recipient = [l.split()[1] for l in stdout.splitlines() if l.startswith("RECIPIENT ")][0]
    if to == "file":
        assert modelcrypt.read_identity_file(tmp_path / "id").recipient == recipient
    else:  # the identity was printed (its text is the line after the comment naming its recipient)
        text = [l for l in stdout.splitlines() if l.startswith("MODELCRYPT-SECRET-KEY-1")]
        assert len(text) == 1 and modelcrypt.Identity.from_text(text[0]).recipient == recipient


_IDENTITY_USE_CHILD = _SCANNER + _TRACKER + _BECH32 + r"""
import pickle
import modelcrypt, modelcrypt.cli
secrets_path, path, idfile, out, other, size = sys.argv[1:7]
needles = Needles()
names = ("raw", "shared", "wrap", "fk", "prk", "payload", "mac", "recipients_mac")
fd = os.open(secrets_path, os.O_RDONLY)  # straight into the needles: no bytes object holds them
assert os.preadv(fd, [memoryview(needles.mm)[:32 * len(names)]], 0) == 32 * len(names)
os.close(fd)
for i, name in enumerate(names):
    needles.spans["identity_raw" if name == "raw" else name] = (32 * i, 32)
needles.used = 32 * len(names)
ident = modelcrypt.Identity.from_private_bytes(needles.view("identity_raw"))
put_identity_text(needles, ident)
track_binascii()
track_secret_text()
shown = [repr(ident), str(ident)]
try:
    pickle.dumps(ident)
except TypeError as exc:
    shown.append(str(exc))
else:
    raise AssertionError("an identity was pickled")
leaked = sum(s.encode().find(needles.view(n)) >= 0 for s in shown for n in ("text",))
modelcrypt.write_identity_file(idfile, ident)
ident2 = modelcrypt.read_identity_file(idfile)
with modelcrypt.load(path, identity=ident2) as buf:
    assert len(buf) == int(size)
with modelcrypt.open_encrypted(path, identity=ident) as f:
    f.read_all().close()
assert modelcrypt.inspect(path, identity=ident).authenticated
modelcrypt.verify(path, identity=ident)
assert modelcrypt.add_recipients(path, identity=ident2, recipients=[other])["in_place"]
assert modelcrypt.remove_recipients(path, identity=ident, recipients=[other])["removed"] == 1
rc = modelcrypt.cli.main(["decrypt", path, "-o", out, "-i", idfile, "--quiet"])
assert rc == 0, rc
rc = modelcrypt.cli.main(["recipients", "add", path, "-i", idfile, "-r", other, "--quiet"])
assert rc == 0, rc
try:
    modelcrypt.load(path, identity=modelcrypt.generate_identity())
except modelcrypt.KeyMismatchError:
    pass
del ident, ident2
add_halves(needles)
found = scan(needles)
found["unwiped"] = unwiped()
found["shown"] = leaked
print("FOUND", found, flush=True)
"""


def _v2_secrets(blob: bytes, private: bytes) -> list[bytes]:
    """[identity, X25519 shared secret, wrap key, FK, PRK, payload key, header MAC key, recipients MAC
    key] of a v2 file with one X25519 stanza, from docs/FORMAT.md with `cryptography` alone."""
    import hashlib
    import hmac
    import struct
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    m = struct.unpack_from("<I", blob, 24)[0]
    salt = blob[32:64]
    stanza = 128 + m + 4 + 4  # R field, then the block's count and reserved field
    assert blob[stanza] == 1 and struct.unpack_from("<H", blob, stanza + 2)[0] == 96
    body = blob[stanza + 4: stanza + 100]
    ephemeral, wrapped = body[16:48], body[48:96]
    x = X25519PrivateKey.from_private_bytes(private)
    public = x.public_key().public_bytes_raw()
    shared = x.exchange(X25519PublicKey.from_public_bytes(ephemeral))
    wrap = HKDF(hashes.SHA256(), 32, ephemeral + public, b"modelcrypt v2 x25519 wrap").derive(shared)
    fk = AESGCM(wrap).decrypt(bytes(12), wrapped, salt)
    prk = hmac.new(salt, fk, hashlib.sha256).digest()

    def expand(info):
        return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()

    assert expand(b"modelcrypt v1 key commitment") == blob[64:96]  # the schedule above is the file's
    return [private, shared, wrap, fk, prk, expand(b"modelcrypt v1 payload AES-256-GCM"),
            expand(b"modelcrypt v1 header mac"), expand(b"modelcrypt v2 recipients mac")]


def test_identity_use_leaves_no_copy_of_the_identity_or_the_file_key(tmp_path):
    """Reading, writing and using an identity (load, open_encrypted, inspect, verify, recipients add
    and remove, the CLI's decrypt -i and recipients add -i) and releasing it leaves none of its
    secret and none of the file's keys in the process; its repr, str and pickling error hold no
    secret either."""
    private = os.urandom(32)
    ident = modelcrypt.Identity.from_private_bytes(private)
    src, path = tmp_path / "m.bin", tmp_path / "m.mcx"
    src.write_bytes(os.urandom(3 << 20))
    modelcrypt.encrypt_file(src, path, recipients=[ident], chunk_size=1 << 20)
    secrets = tmp_path / "secrets.bin"
    fd = os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"".join(_v2_secrets(path.read_bytes(), private)))
    os.close(fd)
    other = modelcrypt.generate_identity().recipient
    found, _ = _run_scan(_IDENTITY_USE_CHILD, secrets, path, tmp_path / "id", tmp_path / "m.out", other,
                         src.stat().st_size)
    names = {"identity_raw", "shared", "wrap", "fk", "prk", "payload", "mac", "recipients_mac", "text", "text_data",
             "raw", "five"}
    assert names | {n + "/2" for n in names} | {"unwiped", "shown"} == set(found), found
    assert not any(found.values()), found
    assert (tmp_path / "m.out").read_bytes() == src.read_bytes()
