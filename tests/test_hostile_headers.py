"""Hostile headers (issue 8): small files whose headers claim huge sizes are rejected with the error
docs/FORMAT.md (or docs/LEGACY.md) documents, before anything is allocated in proportion to the claim.

FORMAT.md's resource rule: "a reader MUST NOT allocate memory in proportion to L or cs before step 8
passes"; only the header (at most 128 + 65536 bytes) may be buffered. Each case is written to a file
and opened in a fresh child interpreter through load (1 and 2 threads), decrypt_bytes, verify,
decrypt_file and inspect. Before each call the child resets its peak RSS (writing 5 to
/proc/self/clear_refs) and afterwards reads VmHWM from /proc/self/status; the parent checks that the
peak stays under 100 MiB and grew by less than 16 MiB, and that the exception class the child printed
is the documented one. The child also runs under an address-space limit (RLIMIT_AS = its size at start
+ 1 GiB), so even an allocation that is never touched (and so would not show in RSS) fails loudly
(MemoryError or a crash, not the documented class).

v1 headers are built with tests/reference_format.py and the right key, three ways: fully
authenticated (valid commitment and header MAC, so the rejection is the bound check or the file
length, not the MAC), with a valid commitment but a wrong MAC, and with a foreign salt/commitment.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import legacy_reference as LR  # noqa: E402
import reference_format as RF  # noqa: E402

KEY = bytes(range(0x40, 0x60))
SALT = bytes(range(0x80, 0xA0))
KEYS = RF.derive_keys(KEY, SALT)
MS_KEY = b"0123456789ABCDEF"
PX_KEY = bytes(range(1, 33))
KIB, MIB, GIB, TIB = 1024, 1024 ** 2, 1024 ** 3, 1024 ** 4

PEAK_LIMIT_KB = 100 * 1024             # absolute peak RSS of the child, during any one call
GROWTH_LIMIT_KB = 16 * 1024            # peak RSS growth caused by one call

APIS = ("load", "load_t2", "decrypt_bytes", "verify", "decrypt_file", "inspect")

CHILD = r"""
import json, os, resource, sys, warnings
warnings.simplefilter("ignore")
import modelcrypt

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])

size_kb = status("VmSize")
resource.setrlimit(resource.RLIMIT_AS, ((size_kb + 1024 * 1024) * 1024, resource.RLIM_INFINITY))
path, key_hex, mode = sys.argv[1], sys.argv[2], sys.argv[3]
key = bytes.fromhex(key_hex)
dst = path + ".out"
calls = {
    "load": lambda: modelcrypt.load(path, key, mode, format="auto", threads=1),
    "load_t2": lambda: modelcrypt.load(path, key, mode, format="auto", threads=2),
    "decrypt_bytes": lambda: modelcrypt.decrypt_bytes(open(path, "rb").read(), key, mode, format="auto", threads=1),
    "verify": lambda: modelcrypt.verify(path, key, mode, format="auto", threads=2),
    "decrypt_file": lambda: modelcrypt.decrypt_file(path, dst, key, mode, format="auto", threads=2),
    "inspect": lambda: modelcrypt.inspect(path),
}
for api in sys.argv[4:]:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")              # reset VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    before = status("VmRSS")
    try:
        res = calls[api]()
        exc, msg = None, None
        if hasattr(res, "close"):
            res.close()
        if api == "inspect":
            msg = {"plaintext_length": res.plaintext_length, "chunk_size": res.chunk_size}
    except BaseException as e:
        exc, msg = type(e).__name__, str(e)[:300]
    print(json.dumps({"api": api, "exc": exc, "msg": msg, "rss_before": before, "hwm": status("VmHWM"),
                      "reset": reset, "dst_exists": os.path.exists(dst)}), flush=True)
"""


def run_child(path: Path, key: bytes, mode: str, apis=APIS) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), key.hex(), mode, *apis],
                          capture_output=True, text=True, timeout=120)
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert proc.returncode == 0 and len(lines) == len(apis), (
        f"child exited {proc.returncode} after {len(lines)} of {len(apis)} calls\n"
        f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}")
    return {r["api"]: r for r in lines}


def check(tmp_path: Path, name: str, data: bytes, key: bytes, mode: str, want: str, want_inspect):
    """Run every API on `data` in a child: exact class, bounded peak RSS, no output file.
    want_inspect: a class name, or a dict of fields inspect must report (it needs no key and runs
    only steps 1-5, so a header that passes them is described, not rejected)."""
    path = tmp_path / name
    path.write_bytes(data)
    results = run_child(path, key, mode)
    problems = []
    for api, r in results.items():
        expected = want_inspect if api == "inspect" else want
        if isinstance(expected, dict):
            if r["exc"] is not None or r["msg"] != expected:
                problems.append(f"{api}: expected to report {expected}, got {r['exc']}: {r['msg']}")
        elif r["exc"] != expected:
            problems.append(f"{api}: expected {expected}, got {r['exc'] or 'success'}: {r['msg']}")
        if r["hwm"] >= PEAK_LIMIT_KB:
            problems.append(f"{api}: peak RSS {r['hwm']} kB >= {PEAK_LIMIT_KB} kB")
        if r["reset"] and r["hwm"] - r["rss_before"] >= GROWTH_LIMIT_KB:
            problems.append(f"{api}: peak RSS grew by {r['hwm'] - r['rss_before']} kB")
        if r["dst_exists"]:
            problems.append(f"{api}: decrypt_file left {path}.out behind")
    assert results["load"]["reset"], "could not reset VmHWM through /proc/self/clear_refs"
    assert not problems, f"{name} ({len(data)} bytes):\n" + "\n".join(problems)


# --------------------------------------------------------------------------- v1 header builders

def v1_header(*, cs: int, length: int, m: int = 0, meta: bytes = b"", auth: str = "mac",
              version: int = 1, algorithm: int = 1, reserved: int = 0) -> bytes:
    """file[0 : 128 + len(meta)] for the given fields. auth: "mac" = valid commitment and header MAC
    under KEY; "badmac" = valid commitment, wrong MAC; "foreign" = another key's salt/commitment."""
    salt, commitment = SALT, KEYS["key_commitment"]
    if auth == "foreign":
        salt, commitment = bytes(32), RF.derive_keys(bytes(32), bytes(32))["key_commitment"]
    head = RF.build_header(chunk_size=cs, plaintext_length=length, metadata_raw=meta, salt=salt,
                           key_commitment=commitment, metadata_length=m, version=version,
                           algorithm=algorithm, reserved=reserved)
    mac = RF.header_mac(KEYS["mac_key"], head)
    if auth != "mac":
        mac = bytes(b ^ 0x5A for b in mac)
    return head + mac


AUTH_ERROR = {"mac": "AuthenticationError", "badmac": "AuthenticationError", "foreign": "KeyMismatchError"}


def _valid_reference(data: bytes, key: bytes = KEY):
    """What the independent reference reader says (class name), for the files it can read."""
    try:
        RF.read(data, key)
    except (RF.FormatError, RF.KeyMismatchError, RF.AuthenticationError) as exc:
        return type(exc).__name__
    return None


# (name, fields, file size) for headers whose every field is in bounds: steps 1-5 pass, so inspect
# describes the file; with the key, step 6/7 (foreign / bad MAC) or step 8 (length) rejects it.
IN_BOUNDS = [
    ("1TiB_cs1MiB", dict(cs=MIB, length=TIB), 160),
    ("1TiB_cs64MiB", dict(cs=64 * MIB, length=TIB), 128),
    ("2p48_cs64MiB", dict(cs=64 * MIB, length=2 ** 48), 200),
    ("2p48_cs1MiB_n2p28", dict(cs=MIB, length=2 ** 48), 4096 + 16),
    ("2p44_cs4096_n2p32", dict(cs=4096, length=2 ** 44), 160),
    ("cs64MiB_one_full_chunk", dict(cs=64 * MIB, length=64 * MIB), 128 + 16),
    ("cs64MiB_L64MiB_plus1", dict(cs=64 * MIB, length=64 * MIB + 1), 128 + 4096 + 32),
    ("max_metadata_and_1TiB", dict(cs=MIB, length=TIB, m=65536, meta=bytes(65536)), 128 + 65536 + 16),
]


@pytest.mark.parametrize("auth", ["mac", "badmac", "foreign"])
@pytest.mark.parametrize("name,fields,size", IN_BOUNDS, ids=[c[0] for c in IN_BOUNDS])
def test_in_bounds_huge_claims(tmp_path, name, fields, size, auth):
    header = v1_header(auth=auth, **fields)
    data = (header + bytes(range(256)) * (size // 256 + 1))[:max(size, len(header))]
    want = AUTH_ERROR[auth]
    assert _valid_reference(data) == want
    check(tmp_path, f"{name}_{auth}.mcx", data, KEY, "AES-GCM", want,
          {"plaintext_length": fields["length"], "chunk_size": fields["cs"]})


# (name, header bytes, expected class) for headers rejected by steps 1-5, i.e. with or without a key
OUT_OF_BOUNDS = [
    # a ~100-byte file claiming a 1 TB plaintext: shorter than H = 128 (step 5)
    ("100B_claims_1TB", lambda a: v1_header(cs=MIB, length=10 ** 12, auth=a)[:100], "FormatError"),
    ("96B_claims_2p48", lambda a: v1_header(cs=64 * MIB, length=2 ** 48, auth=a)[:96], "FormatError"),
    ("claims_2p48_plus1", lambda a: v1_header(cs=64 * MIB, length=2 ** 48 + 1, auth=a), "FormatError"),
    ("claims_2p64_minus1", lambda a: v1_header(cs=64 * MIB, length=2 ** 64 - 1, auth=a), "FormatError"),
    ("claims_2p48_cs4096_n2p36", lambda a: v1_header(cs=4096, length=2 ** 48, auth=a), "FormatError"),
    ("claims_2p44_plus1_cs4096", lambda a: v1_header(cs=4096, length=2 ** 44 + 1, auth=a), "FormatError"),
    # a ~4 GB chunk size (the largest multiple of 4096 in a u32), and other huge chunk sizes
    ("cs_4GB", lambda a: v1_header(cs=0xFFFFF000, length=TIB, auth=a), "FormatError"),
    ("cs_4GB_L_one_chunk", lambda a: v1_header(cs=0xFFFFF000, length=0xFFFFF000, auth=a), "FormatError"),
    ("cs_u32_max", lambda a: v1_header(cs=0xFFFFFFFF, length=100, auth=a), "FormatError"),
    ("cs_2GiB", lambda a: v1_header(cs=2 ** 31, length=2 ** 31, auth=a), "FormatError"),
    ("cs_64MiB_plus_4096", lambda a: v1_header(cs=64 * MIB + 4096, length=64 * MIB + 4096, auth=a), "FormatError"),
    # metadata length near the maximum with a tiny file (step 5), and beyond it (step 4)
    ("M_65536_tiny", lambda a: v1_header(cs=MIB, length=10, m=65536, auth=a), "FormatError"),
    ("M_65535_tiny", lambda a: v1_header(cs=MIB, length=10, m=65535, auth=a), "FormatError"),
    ("M_65536_one_byte_short", lambda a: v1_header(cs=MIB, length=0, m=65536, meta=bytes(65536),
                                                   auth=a)[:-1], "FormatError"),
    ("M_65537", lambda a: v1_header(cs=MIB, length=10, m=65537, auth=a), "FormatError"),
    ("M_u32_max", lambda a: v1_header(cs=MIB, length=10, m=0xFFFFFFFF, auth=a), "FormatError"),
    # huge claims together with an unknown version / reserved bits: the documented step decides
    ("v4_cs_4GB_1TB", lambda a: v1_header(cs=0xFFFFF000, length=TIB, version=4, auth=a), "UnsupportedVersionError"),
    ("alg2_M_u32_max", lambda a: v1_header(cs=MIB, length=10, m=0xFFFFFFFF, algorithm=2, auth=a),
     "UnsupportedVersionError"),
    ("reserved_1TB", lambda a: v1_header(cs=MIB, length=TIB, reserved=1, auth=a), "FormatError"),
]


@pytest.mark.parametrize("auth", ["mac", "foreign"])
@pytest.mark.parametrize("name,build,want", OUT_OF_BOUNDS, ids=[c[0] for c in OUT_OF_BOUNDS])
def test_out_of_bounds_claims(tmp_path, name, build, want, auth):
    data = build(auth)
    assert len(data) < 128 + 65536
    ref = _valid_reference(data)
    assert ref == want, ref
    check(tmp_path, f"{name}_{auth}.mcx", data, KEY, "AES-GCM", want, want)


# --------------------------------------------------------------------------- legacy

def _ms_frame_head(mode: str, block_len: int, cipher_len: int, iv_len: int = 16) -> bytes:
    head = struct.pack("<I", LR.MS_MAGIC[mode])
    if mode == "AES-GCM":
        head += bytes(range(16))                                  # tag
    return head + struct.pack("<ii", block_len, iv_len) + bytes(range(16, 32)) + struct.pack("<i", cipher_len)


def _ms_cases():
    out = []
    for mode in ("AES-GCM", "AES-CBC"):
        good = LR.write_mindspore(b"w" * 64, MS_KEY, mode)
        for name, head in (
            ("len_2GiB", _ms_frame_head(mode, 0x7FFFFFFF, 0x7FFFFFFF - 24)),
            ("len_64MiB_plus16_max", _ms_frame_head(mode, 64 * MIB + 16 + 24, 64 * MIB + 16)),
            ("len_64MiB_plus32", _ms_frame_head(mode, 64 * MIB + 32 + 24, 64 * MIB + 32)),
            ("len_1GiB", _ms_frame_head(mode, GIB + 24, GIB)),
            ("block_len_2GiB_inconsistent", _ms_frame_head(mode, 0x7FFFFFFF, 64)),
            ("len_negative", _ms_frame_head(mode, -1 + 24, -1)),
            ("len_int_min", _ms_frame_head(mode, -(2 ** 31) + 24, -(2 ** 31))),
            ("iv_len_2GiB", _ms_frame_head(mode, 64 + 24, 64, iv_len=0x7FFFFFFF)),
        ):
            out.append((f"ms_{mode}_{name}", head + bytes(64), MS_KEY, mode))
            # the same hostile frame after a valid first frame
            out.append((f"ms_{mode}_second_frame_{name}", good + head + bytes(64), MS_KEY, mode))
    return out


MS_CASES = _ms_cases()


@pytest.mark.parametrize("name,data,key,mode", MS_CASES, ids=[c[0] for c in MS_CASES])
def test_mindspore_huge_frame_lengths(tmp_path, name, data, key, mode):
    """LEGACY.md: iv_len other than 16, block_len != cipher_len + 24, a negative or > 64 MiB + 16
    ciphertext length, or one running past the end of the file: FormatError (inspect, which
    describes the frames without a key, rejects them the same way)."""
    with pytest.raises(LR.FormatError):
        LR.read_mindspore(data, key, mode)
    check(tmp_path, name + ".ckpt", data, key, mode, "FormatError", "FormatError")


@pytest.mark.parametrize("size", [7, 71, 135, 150])
def test_paddlex_too_short(tmp_path, size):
    """PaddleX has no length field; a file shorter than its header and tag is a FormatError."""
    data = LR.write_paddlex(b"", PX_KEY)[:size]
    with pytest.raises(LR.FormatError):
        LR.read_paddlex(data, PX_KEY)
    check(tmp_path, f"px_{size}.enc", data, PX_KEY, "AES-GCM", "FormatError", "FormatError")
