"""Project Wycheproof vectors against modelcrypt's C++ AEAD / KDF / MAC layer.

Every case of third_party/wycheproof/{aes_gcm,hkdf_sha256,hmac_sha256}_test.json
is run through modelcrypt._core.primitives (thin wrappers over the code the
container format uses). Cases are parametrized by tcId so a failure names the
vector; test_*_case_count additionally runs every case through the same check
and asserts that the number run equals the file's numberOfTests.

Result categories:
  * "valid"      -- must reproduce the expected output exactly (and, for
                    AES-GCM, decrypt back; a one-bit tag flip must then fail).
                    Exception: the three LongIv cases with a 257-byte IV
                    (tcId 268, 272, 276) exceed OpenSSL 3's GCM IV limit of
                    128 bytes; the API contract documents "iv 1..128 bytes,
                    longer: ValueError", so for IVs > 128 bytes we assert that
                    ValueError on both encrypt and decrypt (counted apart).
  * "invalid"    -- must be rejected with the specific error for its flag:
                    AES-GCM ModifiedTag -> modelcrypt.AuthenticationError,
                    AES-GCM ZeroLengthIv -> ValueError (parameter error, on
                    both encrypt and decrypt), HKDF SizeTooLarge -> ValueError,
                    HMAC ModifiedTag -> computed tag (prefix) differs.
  * "acceptable" -- none of the three vendored files contains any (asserted
                    below, so a vector update forces a decision). If one
                    appears, check_* accepts either the exact expected output
                    or a clean rejection (ValueError / AuthenticationError),
                    but never a wrong output.
Any flag not listed above on an invalid case fails the test (no silent pass).
"""

import json
from pathlib import Path

import pytest

import modelcrypt
from modelcrypt._core import primitives

VECTORS = Path(__file__).resolve().parent.parent / "third_party" / "wycheproof"


def _load(name):
    with open(VECTORS / name, "rb") as f:
        data = json.load(f)
    cases = []
    for group in data["testGroups"]:
        for tc in group["tests"]:
            cases.append((group, tc))
    return data, cases


AES_GCM, AES_GCM_CASES = _load("aes_gcm_test.json")
HKDF, HKDF_CASES = _load("hkdf_sha256_test.json")
HMAC, HMAC_CASES = _load("hmac_sha256_test.json")


def _params(cases):
    return [pytest.param(g, t, id="tc%d" % t["tcId"]) for g, t in cases]


def _is_param_error(exc):
    """A ValueError that is not one of modelcrypt's authentication errors."""
    return isinstance(exc, ValueError) and not isinstance(exc, modelcrypt.ModelCryptError)


# ---------------------------------------------------------------- AES-GCM

MAX_IV = 128   # bytes; OpenSSL 3 provider limit, documented in the API contract


def check_aes_gcm(group, tc):
    key = bytes.fromhex(tc["key"])
    iv = bytes.fromhex(tc["iv"])
    aad = bytes.fromhex(tc["aad"])
    msg = bytes.fromhex(tc["msg"])
    ct = bytes.fromhex(tc["ct"])
    tag = bytes.fromhex(tc["tag"])
    assert len(key) * 8 == group["keySize"]
    assert len(iv) * 8 == group["ivSize"]
    assert group["tagSize"] == 128 and len(tag) == 16
    result, flags = tc["result"], set(tc["flags"])

    if result == "valid" and len(iv) > MAX_IV:
        with pytest.raises(ValueError) as ei:
            primitives.aes_gcm_encrypt(key, iv, aad, msg)
        assert _is_param_error(ei.value), repr(ei.value)
        with pytest.raises(ValueError) as ei:
            primitives.aes_gcm_decrypt(key, iv, aad, ct, tag)
        assert _is_param_error(ei.value), repr(ei.value)
        return "valid-iv-too-long"

    if result == "valid":
        got_ct, got_tag = primitives.aes_gcm_encrypt(key, iv, aad, msg)
        assert bytes(got_ct) == ct, "ciphertext mismatch"
        assert bytes(got_tag) == tag, "tag mismatch"
        assert bytes(primitives.aes_gcm_decrypt(key, iv, aad, ct, tag)) == msg
        # The verifier must actually look at the tag: a flipped last bit fails.
        bad_tag = tag[:-1] + bytes([tag[-1] ^ 0x01])
        with pytest.raises(modelcrypt.AuthenticationError):
            primitives.aes_gcm_decrypt(key, iv, aad, ct, bad_tag)
        return "valid"

    if result == "invalid":
        if "ZeroLengthIv" in flags:
            assert len(iv) == 0
            with pytest.raises(ValueError) as ei:
                primitives.aes_gcm_decrypt(key, iv, aad, ct, tag)
            assert _is_param_error(ei.value), repr(ei.value)
            with pytest.raises(ValueError) as ei:
                primitives.aes_gcm_encrypt(key, iv, aad, msg)
            assert _is_param_error(ei.value), repr(ei.value)
            return "invalid-param"
        if flags == {"ModifiedTag"}:
            with pytest.raises(modelcrypt.AuthenticationError):
                primitives.aes_gcm_decrypt(key, iv, aad, ct, tag)
            # Sanity of the vector's meaning: the ciphertext is the honest one,
            # only the tag differs from what encryption produces.
            got_ct, got_tag = primitives.aes_gcm_encrypt(key, iv, aad, msg)
            assert bytes(got_ct) == ct
            assert bytes(got_tag) != tag
            return "invalid-auth"
        pytest.fail("unhandled invalid AES-GCM flags %r (tcId %d)" % (flags, tc["tcId"]))

    if result == "acceptable":
        try:
            got = primitives.aes_gcm_decrypt(key, iv, aad, ct, tag)
        except (ValueError, modelcrypt.AuthenticationError):
            return "acceptable-rejected"
        assert bytes(got) == msg
        return "acceptable-accepted"

    pytest.fail("unknown result %r" % result)


@pytest.mark.parametrize("group,tc", _params(AES_GCM_CASES))
def test_aes_gcm(group, tc):
    check_aes_gcm(group, tc)


def test_aes_gcm_case_count():
    outcomes = [check_aes_gcm(g, t) for g, t in AES_GCM_CASES]
    assert len(outcomes) == AES_GCM["numberOfTests"] == 316
    assert outcomes.count("valid") == 226
    assert outcomes.count("valid-iv-too-long") == 3
    assert outcomes.count("invalid-auth") == 81
    assert outcomes.count("invalid-param") == 6
    assert not any(o.startswith("acceptable") for o in outcomes)


def test_aes_gcm_iv_length_limits():
    key, aad, pt = bytes(16), b"", b"x" * 33
    for n in (1, 12, 127, 128):
        iv = bytes(range(n))
        ct, tag = primitives.aes_gcm_encrypt(key, iv, aad, pt)
        assert bytes(primitives.aes_gcm_decrypt(key, iv, aad, ct, tag)) == pt
    for n in (0, 129):
        with pytest.raises(ValueError):
            primitives.aes_gcm_encrypt(key, bytes(n), aad, pt)
    ct, tag = primitives.aes_gcm_encrypt(key, bytes(12), aad, pt)
    for bad_tag in (bytes(tag)[:15], bytes(tag) + b"\0", b""):
        with pytest.raises(ValueError):
            primitives.aes_gcm_decrypt(key, bytes(12), aad, ct, bad_tag)
    for bad_key in (bytes(15), bytes(33), b""):
        with pytest.raises(ValueError):
            primitives.aes_gcm_encrypt(bad_key, bytes(12), aad, pt)


# ---------------------------------------------------------------- HKDF-SHA256


def check_hkdf(group, tc):
    ikm = bytes.fromhex(tc["ikm"])
    salt = bytes.fromhex(tc["salt"])
    info = bytes.fromhex(tc["info"])
    size = tc["size"]
    okm = bytes.fromhex(tc["okm"])
    assert len(ikm) * 8 == group["keySize"]
    result, flags = tc["result"], set(tc["flags"])

    if result == "valid":
        got = bytes(primitives.hkdf_sha256(ikm, salt, info, size))
        assert len(got) == size
        assert got == okm
        return "valid"

    if result == "invalid":
        if flags == {"SizeTooLarge"}:
            assert size > 255 * 32
            with pytest.raises(ValueError) as ei:
                primitives.hkdf_sha256(ikm, salt, info, size)
            assert _is_param_error(ei.value), repr(ei.value)
            return "invalid"
        pytest.fail("unhandled invalid HKDF flags %r (tcId %d)" % (flags, tc["tcId"]))

    if result == "acceptable":
        try:
            got = bytes(primitives.hkdf_sha256(ikm, salt, info, size))
        except ValueError:
            return "acceptable-rejected"
        assert got == okm
        return "acceptable-accepted"

    pytest.fail("unknown result %r" % result)


@pytest.mark.parametrize("group,tc", _params(HKDF_CASES))
def test_hkdf_sha256(group, tc):
    check_hkdf(group, tc)


def test_hkdf_sha256_case_count():
    outcomes = [check_hkdf(g, t) for g, t in HKDF_CASES]
    assert len(outcomes) == HKDF["numberOfTests"] == 86
    assert outcomes.count("valid") == 83
    assert outcomes.count("invalid") == 3
    assert not any(o.startswith("acceptable") for o in outcomes)


def test_hkdf_sha256_length_bounds():
    ikm, salt, info = b"\x0b" * 22, b"salt", b"info"
    assert len(primitives.hkdf_sha256(ikm, salt, info, 1)) == 1
    full = bytes(primitives.hkdf_sha256(ikm, salt, info, 255 * 32))
    assert len(full) == 255 * 32
    # HKDF output is prefix-consistent across lengths.
    assert bytes(primitives.hkdf_sha256(ikm, salt, info, 42)) == full[:42]
    for bad in (0, 255 * 32 + 1):
        with pytest.raises(ValueError):
            primitives.hkdf_sha256(ikm, salt, info, bad)


# ---------------------------------------------------------------- HMAC-SHA256


def check_hmac(group, tc):
    key = bytes.fromhex(tc["key"])
    msg = bytes.fromhex(tc["msg"])
    tag = bytes.fromhex(tc["tag"])
    assert len(key) * 8 == group["keySize"]
    n = group["tagSize"] // 8
    assert n in (16, 32) and len(tag) == n
    got = bytes(primitives.hmac_sha256(key, msg))
    assert len(got) == 32
    result, flags = tc["result"], set(tc["flags"])

    if result == "valid":
        assert got[:n] == tag
        return "valid"
    if result == "invalid":
        if flags == {"ModifiedTag"}:
            assert got[:n] != tag
            return "invalid"
        pytest.fail("unhandled invalid HMAC flags %r (tcId %d)" % (flags, tc["tcId"]))
    if result == "acceptable":
        # A MAC is a function: "acceptable" can only mean the tag matches.
        assert got[:n] == tag
        return "acceptable"
    pytest.fail("unknown result %r" % result)


@pytest.mark.parametrize("group,tc", _params(HMAC_CASES))
def test_hmac_sha256(group, tc):
    check_hmac(group, tc)


def test_hmac_sha256_case_count():
    outcomes = [check_hmac(g, t) for g, t in HMAC_CASES]
    assert len(outcomes) == HMAC["numberOfTests"] == 174
    assert outcomes.count("valid") == 66
    assert outcomes.count("invalid") == 108
    truncated = sum(1 for g, _ in HMAC_CASES if g["tagSize"] < 256)
    assert truncated == 87
