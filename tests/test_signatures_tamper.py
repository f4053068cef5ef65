"""Publisher signatures (format v3, issue 15): what readers given ``trusted_signers`` refuse.

Every changed, unsigned, stripped, re-signed or foreign file gives SignatureError (a ModelCryptError,
no plaintext) through every read path, while the same file without ``trusted_signers`` gives the
errors of format v2. Files are tampered with byte surgery from docs/FORMAT.md (signature_layout.py),
and the re-signed and key-holder forgeries are built with `cryptography`, not with modelcrypt.
"""

from __future__ import annotations

import base64
import os
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import modelcrypt
from modelcrypt import _core
from signature_layout import (flipped, forged_by_key_holder, layout, raw_public, resigned, swap_chunks,
                              trailer_is_valid)

CS = 4096
PLAINTEXT = bytes((i * 7 + 3) % 251 for i in range(3 * CS + 100))  # 4 chunks, the last one short
KEY = bytes(range(32))
HERE = Path(__file__).parent
MINDSPORE = HERE / "interop" / "mindspore"
PADDLEX = HERE / "interop" / "paddle" / "paddlex"


@pytest.fixture(scope="module")
def signer():
    return modelcrypt.generate_signing_key()


@pytest.fixture(scope="module")
def device():
    return modelcrypt.generate_identity()


@pytest.fixture(scope="module")
def signed(signer):
    """A signed symmetric-key file (format v3) as bytes."""
    return modelcrypt.encrypt_bytes(PLAINTEXT, KEY, chunk_size=CS, signing_key=signer)


def _write(tmp_path, data, name="m.mcx"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _read_all_through_handle(path, cred, trust):
    with modelcrypt.open_encrypted(path, **cred, trusted_signers=trust) as f:
        return f.read_all()


def readers(path, cred, trust):
    """Every whole-file read path, as (name, call); decrypt_file writes to path + '.out'."""
    out = Path(str(path) + ".out")
    return [
        ("load", lambda: modelcrypt.load(path, **cred, trusted_signers=trust)),
        ("decrypt_bytes", lambda: modelcrypt.decrypt_bytes(Path(path).read_bytes(), **cred, trusted_signers=trust)),
        ("verify", lambda: modelcrypt.verify(path, **cred, trusted_signers=trust)),
        ("load_range", lambda: modelcrypt.load_range(path, **cred, offset=0, length=len(PLAINTEXT),
                                                     trusted_signers=trust)),
        ("open_encrypted", lambda: _read_all_through_handle(path, cred, trust)),
        ("decrypt_file", lambda: modelcrypt.decrypt_file(path, out, **cred, trusted_signers=trust)),
    ]


def assert_refused(path, error, match=None, *, cred=None, trust=None):
    """Every read path raises ``error`` (matching ``match``) and releases nothing."""
    cred = {"key": KEY} if cred is None else cred
    for name, call in readers(path, cred, trust):
        with pytest.raises(error, match=match) as info:
            call()
        assert isinstance(info.value, modelcrypt.ModelCryptError), name
        assert not Path(str(path) + ".out").exists(), f"{name}: decrypt_file left plaintext behind"


def assert_loads(path, *, cred=None, trust=None, plaintext=PLAINTEXT):
    cred = {"key": KEY} if cred is None else cred
    for name, call in readers(path, cred, trust):
        result = call()
        if name == "decrypt_file":
            assert Path(str(path) + ".out").read_bytes() == plaintext
            os.unlink(str(path) + ".out")
        elif name != "verify":
            assert bytes(result) == plaintext, name


def keyless_refused(path, signer, match=None):
    with pytest.raises(modelcrypt.SignatureError, match=match):
        modelcrypt.verify_signature(path, [signer])


def test_signature_error_is_a_direct_model_crypt_error():
    assert modelcrypt.SignatureError.__mro__[1] is modelcrypt.ModelCryptError
    assert not issubclass(modelcrypt.SignatureError, modelcrypt.AuthenticationError)


def test_the_signed_file_is_what_the_spec_says(tmp_path, signed, signer):
    lay = layout(signed)
    assert lay.version == 3 and lay.chunk_count == 4
    assert len(signed) == lay.trailer + 100 + 32 * 4
    assert signed[lay.signer_key] == signer.public_key_bytes
    assert trailer_is_valid(signed)  # the independent check with `cryptography`
    path = _write(tmp_path, signed)
    assert_loads(path, trust=[signer])
    assert_loads(path)
    assert modelcrypt.verify_signature(path, [signer]) == signer.public_key


def test_signed_by_another_key(tmp_path, signed, signer):
    path = _write(tmp_path, signed)
    other = modelcrypt.generate_signing_key()
    assert_refused(path, modelcrypt.SignatureError, "untrusted key", trust=[other])
    keyless_refused(path, other, "untrusted key")
    assert_loads(path, trust=[other, signer])  # any one of the trusted signers will do


@pytest.mark.parametrize("version", [1, 2])
def test_unsigned_files_are_refused_with_trust(tmp_path, signer, device, version):
    recipients = [device.recipient] if version == 2 else None
    path = _write(tmp_path, modelcrypt.encrypt_bytes(PLAINTEXT, KEY, chunk_size=CS, recipients=recipients))
    assert modelcrypt.inspect(path).version == version and modelcrypt.inspect(path).signer is None
    assert_refused(path, modelcrypt.SignatureError, f"not signed \\(format v{version}\\)", trust=[signer])
    keyless_refused(path, signer, "not signed")
    assert_loads(path)  # without trusted_signers, as before
    if version == 2:
        assert_refused(path, modelcrypt.SignatureError, "not signed", cred={"identity": device}, trust=[signer])


def test_legacy_files_are_refused_with_trust(signer):
    ms_key = b"0123456789ABCDEF"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = bytes(modelcrypt.load(MINDSPORE / "b_gcm16.ckpt", ms_key, format="mindspore"))
        assert plain == (MINDSPORE / "a_plain.ckpt").read_bytes()
        for fmt in ("mindspore", "auto"):
            for call in (lambda: modelcrypt.load(MINDSPORE / "b_gcm16.ckpt", ms_key, format=fmt, trusted_signers=[signer]),
                         lambda: modelcrypt.decrypt_bytes((MINDSPORE / "b_gcm16.ckpt").read_bytes(), ms_key,
                                                          format=fmt, trusted_signers=[signer]),
                         lambda: modelcrypt.verify(MINDSPORE / "d_gcm16.mindir", ms_key, format=fmt,
                                                   trusted_signers=[signer])):
                with pytest.raises(modelcrypt.SignatureError, match="legacy mindspore format"):
                    call()
        px_key = base64.b64decode((PADDLEX / "key.b64").read_text().strip())
        assert len(modelcrypt.load(PADDLEX / "encrypted.pdmodel", px_key, format="paddlex")) > 0
        with pytest.raises(modelcrypt.SignatureError, match="legacy paddlex format"):
            modelcrypt.load(PADDLEX / "encrypted.pdmodel", px_key, format="paddlex", trusted_signers=[signer])


@pytest.mark.parametrize("chunk", [0, 1, 3], ids=["first", "middle", "last"])
def test_one_flipped_ciphertext_byte(tmp_path, signed, signer, chunk):
    lay = layout(signed)
    path = _write(tmp_path, flipped(signed, lay.chunk(chunk).start + 17))
    assert not trailer_is_valid(path.read_bytes())
    assert_refused(path, modelcrypt.SignatureError, f"chunk {chunk} of 4 does not match its signed hash", trust=[signer])
    assert_refused(path, modelcrypt.AuthenticationError, f"chunk {chunk}")  # no trust: the GCM tag catches it
    keyless_refused(path, signer, f"chunk {chunk} of 4")


@pytest.mark.parametrize("chunk", [0, 3])
def test_one_flipped_tag_byte(tmp_path, signed, signer, chunk):
    path = _write(tmp_path, flipped(signed, layout(signed).chunk(chunk).stop - 1, 0x80))
    assert_refused(path, modelcrypt.SignatureError, f"chunk {chunk} of 4", trust=[signer])
    assert_refused(path, modelcrypt.AuthenticationError)
    keyless_refused(path, signer)


def test_swapped_chunks_with_their_hash_entries(tmp_path, signed, signer):
    path = _write(tmp_path, swap_chunks(signed, 0, 1, swap_hashes=True))
    # the hash list matches the chunks, but it is not the list that was signed
    assert_refused(path, modelcrypt.SignatureError, "signature does not verify", trust=[signer])
    assert_refused(path, modelcrypt.AuthenticationError)
    keyless_refused(path, signer, "signature does not verify")


def test_swapped_chunks_alone(tmp_path, signed, signer):
    path = _write(tmp_path, swap_chunks(signed, 1, 2, swap_hashes=False))
    assert_refused(path, modelcrypt.SignatureError, "chunk 1 of 4 does not match", trust=[signer])
    assert_refused(path, modelcrypt.AuthenticationError)
    keyless_refused(path, signer)


@pytest.mark.parametrize("field, match", [("signature", "signature does not verify"), ("signer_key", "untrusted key"),
                                          ("hash_entry", "signature does not verify")])
def test_flipped_trailer_byte(tmp_path, signed, signer, field, match):
    lay = layout(signed)
    where = {"signature": lay.signature.start + 40, "signer_key": lay.signer_key.start + 5,
             "hash_entry": lay.hash_entry(2).start + 31}[field]
    path = _write(tmp_path, flipped(signed, where))
    assert_refused(path, modelcrypt.SignatureError, match, cred={"key": KEY}, trust=[signer])
    keyless_refused(path, signer, match)


def test_unknown_signature_algorithm_and_reserved_field(tmp_path, signed, signer):
    lay = layout(signed)
    path = _write(tmp_path, flipped(signed, lay.trailer, 0x02), "alg.mcx")
    assert_refused(path, modelcrypt.UnsupportedVersionError, "signature algorithm", trust=[signer])
    path = _write(tmp_path, flipped(signed, lay.trailer + 2), "reserved.mcx")
    assert_refused(path, modelcrypt.FormatError, "reserved", trust=[signer])


@pytest.mark.parametrize("how", ["truncated", "extended"])
def test_trailer_truncated_or_extended(tmp_path, signed, signer, how):
    data = signed[:-1] if how == "truncated" else signed + b"\0"
    path = _write(tmp_path, data)
    # with trust the length is checked before the key (S2); without, the authenticated header fixes it
    assert_refused(path, modelcrypt.SignatureError, "truncated|trailing", trust=[signer])
    assert_refused(path, modelcrypt.AuthenticationError, "truncated|trailing")
    keyless_refused(path, signer, "truncated|trailing")  # without a key only the signature can tell
    path = _write(tmp_path, signed[:layout(signed).hash_entry(3).start], "cut.mcx")  # a whole hash entry gone
    keyless_refused(path, signer, "truncated")


def _stripped(data):
    out = bytearray(data[:layout(data).trailer])
    out[8] = 2  # version 3 -> 2, the trailer cut off
    return bytes(out)


def test_stripped_signature_without_a_key(tmp_path, signed, signer):
    path = _write(tmp_path, _stripped(signed))
    assert modelcrypt.inspect(path).version == 2 and modelcrypt.inspect(path).signer is None
    keyless_refused(path, signer, "not signed")
    # the header MAC covers the version: without trust, a plain authentication failure
    assert_refused(path, modelcrypt.AuthenticationError, "header")


def test_stripped_signature_with_trust_is_a_signature_error(tmp_path, signed, signer):
    path = _write(tmp_path, _stripped(signed))
    assert_refused(path, modelcrypt.SignatureError, "not signed", trust=[signer])


def test_stripped_signature_with_trust_releases_nothing(tmp_path, signed, signer):
    path = _write(tmp_path, _stripped(signed))
    assert_refused(path, (modelcrypt.SignatureError, modelcrypt.AuthenticationError), trust=[signer])


def test_stripped_by_a_key_holder(tmp_path, signed, signer):
    """A key holder can make a valid unsigned (v2) file with the same plaintext: only trust refuses it."""
    path = _write(tmp_path, forged_by_key_holder(signed, KEY, version=2))
    assert modelcrypt.inspect(path).version == 2
    assert_loads(path)  # it authenticates under the key: this is the threat signatures close
    assert_refused(path, modelcrypt.SignatureError, "not signed \\(format v2\\)", trust=[signer])
    keyless_refused(path, signer, "not signed")


def test_forgery_helper_reproduces_an_unchanged_file(signed):
    assert forged_by_key_holder(signed, KEY) == signed  # so the forgeries below change only what they say


def test_metadata_changed_by_a_key_holder(tmp_path, signer):
    data = modelcrypt.encrypt_bytes(PLAINTEXT, KEY, chunk_size=CS, metadata={"model": "resnet"}, signing_key=signer)
    forged = forged_by_key_holder(data, KEY, metadata_raw=b'{"model":"evil"}')
    path = _write(tmp_path, forged)
    buf = modelcrypt.load(path, KEY)
    assert bytes(buf) == PLAINTEXT and buf.metadata == {"model": "evil"}  # valid under the key alone
    assert_refused(path, modelcrypt.SignatureError, "signature does not verify", trust=[signer])
    keyless_refused(path, signer, "signature does not verify")
    # a changed metadata byte: with trust the signature fails before the key is used; without, the header MAC
    raw = _write(tmp_path, flipped(data, 96 + 3), "raw.mcx")
    assert_refused(raw, modelcrypt.SignatureError, "signature does not verify", trust=[signer])
    assert_refused(raw, modelcrypt.AuthenticationError, "header")
    keyless_refused(raw, signer, "signature does not verify")


def test_resigned_by_an_untrusted_key(tmp_path, signed, signer):
    attacker = Ed25519PrivateKey.generate()
    data = resigned(signed, attacker)
    assert trailer_is_valid(data)
    path = _write(tmp_path, data)
    assert_refused(path, modelcrypt.SignatureError, "untrusted key", trust=[signer])
    keyless_refused(path, signer, "untrusted key")
    # the re-signed file is well formed: trusting the attacker's key opens it
    assert modelcrypt.verify_signature(path, [raw_public(attacker)]) == modelcrypt.SigningKey.from_private_bytes(
        attacker.private_bytes_raw()).public_key
    assert_loads(path, trust=[raw_public(attacker)])


def test_changed_by_a_key_holder_and_resigned(tmp_path, signer):
    """A key holder who changes the model and signs it with their own key is refused too."""
    data = modelcrypt.encrypt_bytes(PLAINTEXT, KEY, chunk_size=CS, metadata={"v": "1"}, signing_key=signer)
    path = _write(tmp_path, resigned(forged_by_key_holder(data, KEY, metadata_raw=b'{"v":"2"}'),
                                     Ed25519PrivateKey.generate()))
    assert modelcrypt.load(path, KEY).metadata == {"v": "2"}
    assert_refused(path, modelcrypt.SignatureError, "untrusted key", trust=[signer])


@pytest.mark.parametrize("credential", ["identity", "both"])
def test_tampering_is_caught_with_recipients(tmp_path, signer, device, credential):
    key = KEY if credential == "both" else None
    data = modelcrypt.encrypt_bytes(PLAINTEXT, key, chunk_size=CS, recipients=[device.recipient], signing_key=signer)
    path = _write(tmp_path, flipped(data, layout(data).chunk(2).start))
    assert_refused(path, modelcrypt.SignatureError, "chunk 2", cred={"identity": device}, trust=[signer])
    assert_refused(path, modelcrypt.AuthenticationError, cred={"identity": device})
    path = _write(tmp_path, resigned(data, Ed25519PrivateKey.generate()), "resigned.mcx")
    assert_refused(path, modelcrypt.SignatureError, "untrusted", cred={"identity": device}, trust=[signer])


# ---------------------------------------------------------------- random access checks what it reads

def test_random_access_checks_only_the_chunks_it_reads(tmp_path, signer):
    plaintext = os.urandom(8 * CS)
    data = modelcrypt.encrypt_bytes(plaintext, KEY, chunk_size=CS, signing_key=signer)
    path = _write(tmp_path, flipped(data, layout(data).chunk(7).start + 100))  # the hash list still signs the original
    _core.reset_debug_counters()
    with modelcrypt.open_encrypted(path, KEY, trusted_signers=[signer]) as f:
        assert _core.debug_counters()["chunks_decrypted"] == 0  # opening verifies the signature, decrypts nothing
        assert bytes(f.read_range(0, CS)) == plaintext[:CS]
        assert _core.debug_counters()["chunks_decrypted"] == 1
        assert bytes(f.read_range(3 * CS + 5, 2 * CS)) == plaintext[3 * CS + 5: 5 * CS + 5]
        with pytest.raises(modelcrypt.SignatureError, match="chunk 7 of 8"):
            f.read_range(7 * CS, 10)
        with pytest.raises(modelcrypt.SignatureError, match="chunk 7 of 8"):
            f.read_range(6 * CS, 2 * CS)  # a range that ends in the bad chunk gives nothing
        with pytest.raises(modelcrypt.SignatureError):
            f.read_all()
    assert bytes(modelcrypt.load_range(path, KEY, offset=CS, length=CS, trusted_signers=[signer])) == plaintext[CS:2 * CS]
    with pytest.raises(modelcrypt.SignatureError):
        modelcrypt.load_range(path, KEY, offset=7 * CS, length=1, trusted_signers=[signer])
    with modelcrypt.open_encrypted(path, KEY) as f:  # without trust, the GCM tag still catches it
        with pytest.raises(modelcrypt.AuthenticationError):
            f.read_range(7 * CS, 10)


def test_random_access_refuses_a_changed_hash_list_at_open(tmp_path, signer):
    data = modelcrypt.encrypt_bytes(os.urandom(8 * CS), KEY, chunk_size=CS, signing_key=signer)
    path = _write(tmp_path, flipped(data, layout(data).hash_entry(7).start))
    _core.reset_debug_counters()
    with pytest.raises(modelcrypt.SignatureError, match="signature does not verify"):
        modelcrypt.open_encrypted(path, KEY, trusted_signers=[signer])
    assert _core.debug_counters()["chunks_decrypted"] == 0


def test_whole_load_with_trust_decrypts_every_chunk_once(tmp_path, signer):
    path = _write(tmp_path, modelcrypt.encrypt_bytes(os.urandom(8 * CS), KEY, chunk_size=CS, signing_key=signer))
    _core.reset_debug_counters()
    modelcrypt.load(path, KEY, trusted_signers=[signer])
    assert _core.debug_counters()["chunks_decrypted"] == 8


def test_load_checkpoint_names_reads_only_its_chunks(tmp_path, signer):
    import numpy as np

    first = np.arange(64, dtype=np.float32)
    big = np.frombuffer(os.urandom(3 << 20), dtype=np.uint8)  # spans several 1 MiB chunks after `first`
    path = modelcrypt.save_checkpoint({"a": first, "z": big}, tmp_path / "m.safetensors", KEY, signing_key=signer)
    data = Path(path).read_bytes()
    lay = layout(data)
    assert lay.chunk_count == 4
    Path(path).write_bytes(flipped(data, lay.chunk(3).start + 10))
    got = modelcrypt.load_checkpoint(path, KEY, names=["a"], trusted_signers=[signer])
    assert np.array_equal(got["a"], first)
    with pytest.raises(modelcrypt.SignatureError, match="chunk 3 of 4"):
        modelcrypt.load_checkpoint(path, KEY, names=["z"], trusted_signers=[signer])
    with pytest.raises(modelcrypt.SignatureError):
        modelcrypt.load_checkpoint(path, KEY, trusted_signers=[signer])
