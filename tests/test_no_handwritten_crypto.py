"""No hand-written cryptography anywhere in the repository (issue 18).

Digests, ciphers, MACs, KDFs and curve arithmetic come from OpenSSL (C/C++) or hashlib / hmac /
`cryptography` (Python). A hand-written implementation cannot avoid its algorithm's constant tables
(SHA-2 round constants and initial state, the AES S-box, ChaCha's "expand 32-byte k", Keccak round
constants, X25519's a24, HMAC's 0x36/0x5c pads, ...), so every text file in the repository is scanned
for them in the notations code and data use (0x-literals with C/Rust/Go suffixes, plain or \\x-escaped
hex strings, decimal lists). The example app once carried exactly such a SHA-256 (removed in 8cc609f):
the positive control checks that the scanner flags that code and the other notations.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THIS_FILE = os.path.relpath(os.path.abspath(__file__), ROOT)
SKIP_DIRS = {".git", "__pycache__", "node_modules", ".venv", "venv"}
MAX_BYTES = 16 << 20

# name -> (width in bits of each value, the first values of its table or state, in order)
TABLES: dict[str, tuple[int, list[int]]] = {
    "SHA-224/256 round constants": (32, [0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5]),
    "SHA-256 initial state (also BLAKE2s)": (32, [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A]),
    "SHA-384/512 round constants": (64, [0x428A2F98D728AE22, 0x7137449123EF65CD]),
    "SHA-512 initial state (also BLAKE2b)": (64, [0x6A09E667F3BCC908, 0xBB67AE8584CAA73B]),
    "SHA-224 initial state": (32, [0xC1059ED8, 0x367CD507, 0x3070DD17, 0xF70E5939]),
    "MD5/SHA-1 initial state": (32, [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]),
    "MD5 sine table": (32, [0xD76AA478, 0xE8C7B756, 0x242070DB, 0xC1BDCEEE]),
    "SHA-1 round constants": (32, [0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xCA62C1D6]),
    "AES S-box": (8, [0x63, 0x7C, 0x77, 0x7B, 0xF2, 0x6B, 0x6F, 0xC5]),
    "AES inverse S-box": (8, [0x52, 0x09, 0x6A, 0xD5, 0x30, 0x36, 0xA5, 0x38]),
    "AES T-table": (32, [0xC66363A5, 0xF87C7C84, 0xEE777799]),
    "AES T-table (byte-swapped)": (32, [0xA56363C6, 0x847C7CF8, 0x997777EE]),
    "ChaCha20/Salsa20 constant": (32, [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]),
    "Keccak/SHA-3 round constants": (64, [0x0000000000000001, 0x0000000000008082, 0x800000000000808A]),
    "Poly1305 clamp": (64, [0x0FFFFFFC0FFFFFFF, 0x0FFFFFFC0FFFFFFC]),
    "SipHash initialisation constants": (64, [0x736F6D6570736575, 0x646F72616E646F6D]),
}
# name -> regular expression over the lower-cased text
PATTERNS: dict[str, str] = {
    "ChaCha20/Salsa20 constant text": r"expand 32-byte k|expand 16-byte k",
    "X25519 a24 constant": r"(?<![\w.])12166[56](?![\w.])",
    "Curve25519 field prime": r"2\s*\*\*\s*255\s*-\s*19|7f{62}ed",
    "HMAC inner/outer pad": r"(?:0x|\\x)36\b.{0,120}(?:0x|\\x)5c\b|(?:0x|\\x)5c\b.{0,120}(?:0x|\\x)36\b|trans_(?:36|5c)",
}

_SEP = r"[\s,;:'\"_\[\]{}()]*"  # between table entries: commas, quotes, brackets, digit separators


def _table_regex(width: int, values: list[int]) -> str:
    digits = width // 4
    hexes = [f"{v:0{digits}x}" for v in values]
    suffix = r"(?:u|ul|ull|l|ll|_?u\d+|_?i\d+)?"  # C/C++ (0x...u, ULL), Rust (0x..._u32)
    hex_notation = _SEP.join(rf"(?:0x|\\x)?0*{h}{suffix}" for h in hexes)
    decimal_notation = _SEP.join(rf"(?<!\d){v}(?!\d){suffix}" for v in values)
    return rf"{hex_notation}|{decimal_notation}"


FINGERPRINTS: dict[str, re.Pattern[str]] = {
    **{name: re.compile(_table_regex(width, values)) for name, (width, values) in TABLES.items()},
    **{name: re.compile(p) for name, p in PATTERNS.items()},
}


def fingerprints_in(text: str) -> list[str]:
    """Names of the cryptographic constant tables found in ``text``."""
    lowered = text.lower()
    return [name for name, rx in FINGERPRINTS.items() if rx.search(lowered)]


def _repository_files() -> Iterator[str]:
    """Tracked and untracked (not ignored) files in a git checkout; every file under the root otherwise."""
    try:
        out = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"], capture_output=True, check=True, timeout=60)
        names = [n for n in out.stdout.decode().split("\0") if n]
    except (OSError, subprocess.SubprocessError):
        names = []
    if names:
        yield from names
        return
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith("build")]
        for f in filenames:
            yield os.path.relpath(os.path.join(dirpath, f), ROOT)


def test_repository_has_no_cryptographic_constant_tables():
    found, scanned = {}, 0
    for rel in _repository_files():
        path = os.path.join(ROOT, rel)
        if rel == THIS_FILE or not os.path.isfile(path) or os.path.getsize(path) > MAX_BYTES:
            continue
        with open(path, "rb") as f:
            data = f.read()
        if b"\0" in data[:8192]:
            continue  # binary (models, fuzzing seeds, encrypted fixtures): random bytes, no code
        scanned += 1
        hits = fingerprints_in(data.decode("utf-8", errors="replace"))
        if hits:
            found[rel] = hits
    assert scanned > 300, f"only {scanned} files scanned: is ROOT right?"
    for required in ("cpp/src/crypto.cpp", "tests/reference_format.py", "examples/cpp/torch_inference.cpp"):
        assert os.path.isfile(os.path.join(ROOT, required)), required
    assert found == {}, ("hand-written cryptography? use OpenSSL (C/C++) or hashlib/hmac/cryptography (Python): "
                         f"{found}")


# The example app's hand-written SHA-256 as it was before 8cc609f (first lines of its tables).
OLD_EXAMPLE_SHA256 = """
constexpr std::uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
std::uint32_t rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  std::uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
"""


def test_scanner_flags_hand_written_implementations():
    assert fingerprints_in(OLD_EXAMPLE_SHA256) == ["SHA-224/256 round constants", "SHA-256 initial state (also BLAKE2s)"]
    samples = {
        "SHA-224/256 round constants": [
            "K = [0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5]",  # Python
            "const K: [u32; 64] = [0x428a2f98_u32, 0x71374491_u32, 0xb5c0fbcf_u32, 0xe9b5dba5_u32",  # Rust
            "K = bytes.fromhex('428a2f9871374491b5c0fbcfe9b5dba5')",  # a hex string
            "k = (1116352408, 1899447441, 3049323471, 3921009573)",  # decimal
        ],
        "SHA-384/512 round constants": ["0x428a2f98d728ae22ULL, 0x7137449123ef65cdULL,"],
        "AES S-box": ["static const uint8_t sbox[256] = {\n  0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5,",
                      'SBOX = b"\\x63\\x7c\\x77\\x7b\\xf2\\x6b\\x6f\\xc5"', "sbox = [99, 124, 119, 123, 242, 107, 111, 197]"],
        "AES T-table": ["0xc66363a5U, 0xf87c7c84U, 0xee777799U"],
        "MD5/SHA-1 initial state": ["h0, h1, h2, h3 = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476"],
        "ChaCha20/Salsa20 constant": ["state[0:4] = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]"],
        "ChaCha20/Salsa20 constant text": ['sigma = b"expand 32-byte k"'],
        "Keccak/SHA-3 round constants": ["RC = [0x0000000000000001, 0x0000000000008082, 0x800000000000808A,"],
        "X25519 a24 constant": ["z3 = (x3 * (aa + 121665 * e)) % p"],
        "Curve25519 field prime": ["P = 2 ** 255 - 19"],
        "HMAC inner/outer pad": ["ipad = bytes(b ^ 0x36 for b in k); opad = bytes(b ^ 0x5c for b in k)"],
    }
    for name, texts in samples.items():
        for text in texts:
            assert name in fingerprints_in(text), (name, text)
    # what the repository legitimately has: OpenSSL calls, hashlib/hmac, and numbers that merely look alike
    clean = """
    EVP_Digest(data, size, out, &n, EVP_sha256(), nullptr);
    mac = hmac.new(key, data, hashlib.sha256).digest()
    ("cs_u32_max", lambda a: v1_header(cs=0xFFFFFFFF, length=100, auth=a), "FormatError"),
    x[i] = float(((i * 7919 + N * 104729) mod 2001) - 1000) / 1000.0f
    offsets = [0x63, 0x10, 0x7c]  # a lone 0x63 is not a table
    """
    assert fingerprints_in(clean) == []
