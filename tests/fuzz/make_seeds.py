"""Regenerates the seed corpora in tests/fuzz/<harness>/ (run from the repository root with the
installed modelcrypt package; `make_seeds.py NAME...` regenerates only the named corpora). Encrypted
seeds get fresh salts/IVs each run, so regenerating changes their bytes but not what they cover.
Interop fixtures are copied from tests/interop/."""

import random
import shutil
import struct
import sys
from pathlib import Path

import modelcrypt

HERE = Path(__file__).resolve().parent
INTEROP = HERE.parent / "interop"
sys.path.insert(0, str(HERE.parent))
import legacy_reference as ref  # noqa: E402  (independent writer, for the ECB file no fixture has)

V1_KEY = bytes(range(32))          # fuzz_v1_decrypt, atheris_api
MS_KEY = b"0123456789ABCDEF"       # fuzz_mindspore (the MindSpore fixtures' key)
PX_KEY = bytes(range(1, 33))       # fuzz_paddlex (the PaddleX fixtures' key)
rng = random.Random(8)
ONLY = set(sys.argv[1:])  # corpora to regenerate (default: all)


def corpus(name):
    if ONLY and name not in ONLY:
        return lambda file, data: None
    d = HERE / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    return lambda file, data: (d / file).write_bytes(data)


def pattern(n):
    return bytes((i * 7 + i // 251) & 0xFF for i in range(n))


def v1(n, key=V1_KEY, metadata=None):
    return modelcrypt.encrypt_bytes(pattern(n), key, chunk_size=4096, metadata=metadata, threads=1)


# --- fuzz_v1_decrypt: format v1 files under V1_KEY, and broken ones
put = corpus("fuzz_v1_decrypt")
put("empty.mc", v1(0))
put("small_metadata.mc", v1(100, metadata={"framework": "onnx", "name": "fuzz"}))
put("two_chunks.mc", v1(5000))
put("two_full_chunks.mc", v1(8192))
put("four_chunks_1byte_tail.mc", v1(12289))
good = v1(300)
put("bad_truncated_header.mc", good[:60])
put("bad_header_only.mc", good[:96 + 32])
put("bad_version2.mc", good[:8] + struct.pack("<H", 2) + good[10:])
put("bad_chunk_size.mc", good[:12] + struct.pack("<I", 4097) + good[16:])
put("bad_trailing_byte.mc", good + b"\0")
put("bad_truncated_chunk.mc", good[:-1])
put("bad_flipped_tag.mc", good[:-1] + bytes([good[-1] ^ 1]))
put("bad_other_key.mc", v1(300, key=bytes(range(100, 132))))
put("mindspore_gcm_same_key.ms", modelcrypt.encrypt_bytes(pattern(200), V1_KEY, format="mindspore"))

# --- fuzz_v3_signature: files signed by the harness signer (seed bytes 40..5f), and text forms
V3_SEED = bytes(range(0x40, 0x60))


def v3_seeds():
    put = corpus("fuzz_v3_signature")
    signer = modelcrypt.SigningKey.from_private_bytes(V3_SEED)
    ident = modelcrypt.Identity.from_private_bytes(bytes(range(0x80, 0xA0)))
    sign = lambda n, **kw: modelcrypt.encrypt_bytes(pattern(n), kw.pop("key", V1_KEY), chunk_size=4096,
                                                    signing_key=signer, threads=1, **kw)
    put("empty.mc", sign(0))
    put("two_chunks.mc", sign(5000, metadata={"framework": "onnx"}))
    put("recipient_and_key.mc", sign(9000, recipients=[ident.recipient]))
    good = sign(300)
    put("bad_flipped_signature.mc", good[:-40] + bytes([good[-40] ^ 1]) + good[-39:])
    put("bad_truncated_trailer.mc", good[:-1])
    other = modelcrypt.SigningKey.from_private_bytes(bytes(range(0x60, 0x80)))
    put("other_signer.mc", modelcrypt.encrypt_bytes(pattern(300), V1_KEY, chunk_size=4096, signing_key=other, threads=1))
    put("unsigned_v1.mc", v1(300))
    put("signer_text", signer.public_key.encode())
    put("signing_key_text", b"# comment\n" + bytes(signer.secret_text()) + b"\n")


v3_seeds()

# --- fuzz_v2_recipients: [mode] + payload (cpp/fuzz/fuzz_v2_recipients.cpp). The harness's identities
# A, B, C are the private keys a0..bf, c0..df, e0..ff; its symmetric keys K = 00..1f, K2 = f0..ff.
V2_A, V2_B, V2_C = (bytes(range(s, s + 32)) for s in (0xA0, 0xC0, 0xE0))
V2_K, V2_K2 = bytes(range(32)), bytes(range(0xF0, 0x100))
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def bech32(hrp, data):
    """BIP 173 Bech32 (lowercase) of bytes, for the age forms of the harness's keys."""
    def polymod(values):
        chk = 1
        for v in values:
            top = chk >> 25
            chk = (chk & 0x1ffffff) << 5 ^ v
            for i, g in enumerate((0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3)):
                chk ^= g if (top >> i) & 1 else 0
        return chk
    acc = bits = 0
    five = []
    for b in data:
        acc, bits = (acc << 8 | b) & 0xfff, bits + 8
        while bits >= 5:
            bits -= 5
            five.append(acc >> bits & 31)
    if bits:
        five.append(acc << (5 - bits) & 31)
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    mod = polymod(expanded + five + [0] * 6) ^ 1
    return hrp + "1" + "".join(BECH32[v] for v in five + [mod >> 5 * (5 - i) & 31 for i in range(6)])


def v2_seeds():
    put = corpus("fuzz_v2_recipients")
    a, b, c = (modelcrypt.Identity.from_private_bytes(k) for k in (V2_A, V2_B, V2_C))
    enc = lambda n, key, recipients, **kw: modelcrypt.encrypt_bytes(pattern(n), key, chunk_size=4096, threads=1,
                                                                    recipients=recipients, **kw)
    # mode 0: open with A, B, C, K, K2 (in memory, from a file, random access)
    a_k = enc(5000, V2_K, [a])
    put("open_a_key_two_chunks", b"\0" + a_k)
    put("open_a_b_key_metadata", b"\0" + enc(9000, V2_K, [a, b], metadata={"framework": "onnx"}))
    put("open_a_only_empty", b"\0" + enc(0, None, [a]))
    put("open_b_k2_one_chunk", b"\0" + enc(4096, V2_K2, [b]))
    put("open_signed_v3", b"\0" + enc(300, V2_K, [a], signing_key=modelcrypt.SigningKey.from_private_bytes(bytes(range(0x40, 0x60)))))
    put("open_v1_key", b"\0" + v1(300))
    # (metadata_length 0: recipients length R at 128, block at 132, stanzas from 136)
    flip = lambda at, bit=1: b"\0" + a_k[:at] + bytes([a_k[at] ^ bit]) + a_k[at + 1:]
    (block_len,) = struct.unpack_from("<I", a_k, 128)
    body, at = {}, 136  # stanza type -> offset of its body
    for _ in range(struct.unpack_from("<H", a_k, 132)[0]):
        body[a_k[at]] = at + 4
        at += 4 + struct.unpack_from("<H", a_k, at + 2)[0]
    put("bad_recipients_mac", flip(132 + block_len))
    put("bad_x25519_fingerprint", flip(body[1]))
    put("bad_x25519_ephemeral", flip(body[1] + 16, 0x80))
    put("bad_x25519_wrapped_tag", flip(body[1] + 95))
    put("bad_x25519_zero_ephemeral", b"\0" + a_k[:body[1] + 16] + bytes(32) + a_k[body[1] + 48:])  # S = 0: no unwrap
    put("bad_symmetric_salt", flip(body[2]))
    put("bad_padding", flip(at + 10))
    put("bad_truncated_block", b"\0" + a_k[:400])
    put("bad_stanza_length", b"\0" + a_k[:body[1] - 2] + struct.pack("<H", 95) + a_k[body[1]:])
    # mode 1: recipient and identity text
    put("text_recipient", b"\1" + a.recipient.encode())
    put("text_age_recipient", b"\1" + bech32("age", a.public_key).encode() + b"\n")
    put("text_recipients_file", b"\1# team\n" + a.recipient.encode() + b"\n\n" + bech32("age", b.public_key).encode() + b"\n")
    put("text_identity", b"\1" + bytes(a.secret_text()))
    put("text_age_keygen_file", b"\1# created: 2026-01-01T00:00:00Z\n# public key: " + bech32("age", b.public_key).encode() +
        b"\n" + bech32("age-secret-key-", V2_B).upper().encode() + b"\n")
    put("text_identity_file", b"\1# modelcrypt X25519 identity\n# public key: " + c.recipient.encode() + b"\n" +
        bytes(c.secret_text()) + b"\n")
    r = a.recipient
    put("text_bad_checksum", b"\1" + (r[:-1] + ("q" if r[-1] != "q" else "p")).encode())
    put("text_mixed_case", b"\1" + (r[:12].upper() + r[12:]).encode())
    put("text_two_identities", b"\1" + bytes(a.secret_text()) + b"\n" + bytes(b.secret_text()) + b"\n")
    put("text_short_data", b"\1" + bech32("age", V2_A[:20]).encode())
    put("text_other_hrp", b"\1" + bech32("npub", a.public_key).encode())
    put("text_short_identity", b"\1# public key: none\n" + bech32("age-secret-key-", V2_A[:20]).upper().encode() + b"\n")
    # modes 2 and 3: [mode][op0: credential (op0 % 5: A, B, C, K, K2)][op1: add A/B/C bits 0-2, extras
    # (2 x bits 4-7)][op2: remove A/B/C bits 0-2, remove K/K2 bits 3-4, add K/K2 bits 5-6] + file / build
    two = enc(5000, V2_K, [a, b])
    put("edit_a_add_c", bytes([2, 0, 0b100, 0]) + a_k)
    put("edit_k_remove_b_add_k2", bytes([2, 3, 0, 0b1000010]) + two)
    put("edit_b_remove_a_and_key", bytes([2, 1, 0, 0b1001]) + two)
    put("edit_a_add_12_extras", bytes([2, 0, 0x60, 0]) + enc(300, None, [a]))
    put("edit_a_add_30_extras_rewrite", bytes([2, 0, 0xF0, 0]) + enc(300, V2_K, [a, b]))
    put("edit_a_remove_self", bytes([2, 0, 0, 1]) + two)
    put("edit_v1_refused", bytes([2, 3, 1, 0]) + v1(300))
    put("build_a_k_add_b_c", bytes([3, 0, 0b110, 0, 0b1001]) + pattern(5000))
    put("build_abc_remove_b_k", bytes([3, 2, 0, 0b1010, 0b1111]) + pattern(300))
    put("build_a_k2_add_extras_k", bytes([3, 4, 0xF1, 0b100000, 0b10001]) + pattern(100))
    put("build_bad_chunk_edit", bytes([3, 3, 0b10, 0, 0b1001001]) + pattern(4200))


v2_seeds()

# --- fuzz_v1_roundtrip / fuzz_legacy_roundtrip: structure-aware, any bytes are valid input
for name in ("fuzz_v1_roundtrip", "fuzz_legacy_roundtrip"):
    put = corpus(name)
    for i, n in enumerate((8, 32, 100, 300, 700)):
        put(f"random_{i}", bytes(rng.randrange(256) for _ in range(n)))

# --- fuzz_mindspore: MindSpore 2.10.0's own files (tests/interop), multi-frame and broken ones
put = corpus("fuzz_mindspore")
ms = {}
for f in ("b_gcm16.ckpt", "c_cbc16.ckpt", "g_sm4cbc16.ckpt", "d_gcm16.mindir"):
    ms[f] = (INTEROP / "mindspore" / f).read_bytes()
    put(f, ms[f])
for mode in ("AES-GCM", "AES-CBC", "SM4-CBC"):  # frames back to back: a two-frame file
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = modelcrypt.encrypt_bytes(pattern(40), MS_KEY, mode, format="mindspore")
        b = modelcrypt.encrypt_bytes(pattern(17), MS_KEY, mode, format="mindspore")
    put(f"two_frames_{mode.lower()}.ms", a + b)
put("empty_gcm.ms", modelcrypt.encrypt_bytes(b"", MS_KEY, format="mindspore"))
g = ms["b_gcm16.ckpt"]
put("bad_truncated.ms", g[:-3])
put("bad_iv_len.ms", g[:24] + struct.pack("<i", 12) + g[28:])
put("bad_block_len.ms", g[:20] + struct.pack("<i", 7) + g[24:])
put("bad_trailing_magic.ms", g + g[:4])
put("bad_tag.ms", g[:4] + bytes([g[4] ^ 1]) + g[5:])

# --- fuzz_paddlex: PaddleX files (tests/interop) and broken ones
put = corpus("fuzz_paddlex")
px = {}
for f in ("encrypted.yml", "plain.bin.encrypted", "encrypted.pdparams"):
    px[f] = (INTEROP / "paddle" / "paddlex" / f).read_bytes()
    put(f, px[f])
p = px["plain.bin.encrypted"]
put("bad_truncated.px", p[:140])
put("bad_key_hash.px", p[:7] + b"0" * 64 + p[71:])
put("empty_plaintext.px", ref.write_paddlex(b"", PX_KEY))
put("bad_version.px", b"PADDLE2" + p[7:])

# --- fuzz_paddle_cipher: [mode selector][key selector] + Paddle CipherFactory file (tests/interop)
put = corpus("fuzz_paddle_cipher")
cipher = INTEROP / "paddle" / "cipher"
put("ctr_default_k256", bytes([0, 0]) + (cipher / "default_k256.enc").read_bytes())
put("ctr_k128", bytes([0, 1]) + (cipher / "ctr_k128.enc").read_bytes())
put("cbc_k192", bytes([1, 2]) + (cipher / "cbc_k192.enc").read_bytes())
put("gcm_k256", bytes([3, 0]) + (cipher / "gcm_k256.enc").read_bytes())
plain = (cipher / "plain.bin").read_bytes()
put("ecb_k128", bytes([2, 1]) + ref.write_paddle_cipher(plain[:100], bytes(range(0x40, 0x50)), "AES_ECB_PKCSPadding"))
put("gcm_iv96_tag32_k192", bytes([3 | 1 << 2 | 1 << 4, 2]) +
    ref.write_paddle_cipher(plain[:50], bytes(range(0x80, 0x98)), "AES_GCM_NoPadding", 96, 32))
put("bad_cbc_not_block", bytes([1, 2]) + (cipher / "cbc_k192.enc").read_bytes()[:-5])
put("mode_string_1", b"\xc0paddle:AES_GCM_NoPadding:iv=96:tag=128")
put("mode_string_2", b"\xc0PADDLE:AES_CBC_PKCSPadding:iv=128")

# --- atheris_api: [entry point][key/mode selector] + payload (see atheris_api.py)
put = corpus("atheris_api")
small = v1(100, metadata={"k": "v"})
put("decrypt_bytes_v1", bytes([0, 0]) + small)
put("decrypt_bytes_mindspore", bytes([0, 1]) + ms["b_gcm16.ckpt"])
put("detect_paddlex", bytes([1, 0]) + px["encrypted.yml"])
put("inspect_v1", bytes([2, 0]) + small)
put("inspect_mindspore_cbc", bytes([2, 0]) + ms["c_cbc16.ckpt"])
put("load_paddlex", bytes([3, 2]) + px["encrypted.yml"])
put("verify_v1", bytes([4, 0]) + small)
put("load_range_v1", bytes([5, 0]) + v1(5000))
put("key_hex", bytes([6, 1]) + b" 0x" + bytes(range(16)).hex().encode() + b"\n")
put("key_base64", bytes([7, 0]) + (INTEROP / "paddle" / "paddlex" / "key.b64").read_bytes())
put("key_env_hex", bytes([8, 1]) + bytes(range(24)).hex().encode())
put("key_file_raw", bytes([8, 0]) + bytes(range(32)))

total = sum(f.stat().st_size for f in HERE.rglob("*") if f.is_file())
print(f"tests/fuzz: {total} bytes in total")
