"""Key helpers (docs/KEYS_AND_CLI.md, "Keys in Python"): key_from_hex, key_from_base64,
read_key_file (hex / base64 / raw detection, permission warning), key_from_env, write_key_file
and wipe(), against real files in tmp_path and the real native core."""

import array
import base64
import os
import stat
import sys
import warnings

import pytest

import modelcrypt

HEX_RE_DIGITS = "0123456789abcdefABCDEF"


def _key(n, seed=0):
    """A deterministic key of n bytes (every byte value distinct from its neighbours)."""
    return bytes((seed + 37 * i + 11) & 0xFF for i in range(n))


def _write(path, data, mode=0o600):
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


def _read_quietly(path):
    """read_key_file with every warning turned into an error (a 0600 file must not warn)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return modelcrypt.read_key_file(path)


def _roundtrips(key):
    data = os.urandom(5000)
    blob = modelcrypt.encrypt_bytes(data, key, chunk_size=4096)
    with modelcrypt.decrypt_bytes(blob, key) as buf:
        return bytes(buf) == data


# ------------------------------------------------------------------ key_from_hex


@pytest.mark.parametrize("n", [16, 24, 32])
def test_hex_lengths_and_type(n):
    raw = _key(n)
    k = modelcrypt.key_from_hex(raw.hex())
    assert type(k) is bytearray
    assert k == raw


@pytest.mark.parametrize(
    "text",
    [
        "{h}",
        "{H}",
        "0x{h}",
        "0x{H}",
        "  {h}\n",
        "\t0x{h}\r\n",
        "\n\n{H}  \t",
        "{mixed}",
    ],
)
def test_hex_case_whitespace_prefix(text):
    raw = _key(32, seed=5)
    h = raw.hex()
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(h))
    s = text.format(h=h, H=h.upper(), mixed=mixed)
    k = modelcrypt.key_from_hex(s)
    assert type(k) is bytearray and k == raw
    # bytes input is accepted with the same rules
    kb = modelcrypt.key_from_hex(s.encode("ascii"))
    assert type(kb) is bytearray and kb == raw


@pytest.mark.parametrize("digits", [0, 2, 30, 31, 33, 40, 62, 63, 66, 96, 128])
def test_hex_wrong_length(digits):
    s = ("a1" * 64)[:digits]
    with pytest.raises(ValueError) as ei:
        modelcrypt.key_from_hex(s)
    if digits:
        # "any other decoded length is a ValueError naming the length found"
        msg = str(ei.value)
        assert str(digits) in msg or str(digits // 2) in msg, msg


@pytest.mark.parametrize(
    "text",
    [
        "g" + "0" * 31,                      # non-hex letter
        "0" * 31 + "z",
        "00" * 15 + "0-",                   # punctuation
        "00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff",  # inner whitespace is not surrounding
        "0x",                                # prefix only
        "0x0x" + "00" * 16,                  # doubled prefix
        "é" * 32,                            # non-ASCII
        "",
        "   \n",
    ],
)
def test_hex_invalid_text(text):
    with pytest.raises(ValueError):
        modelcrypt.key_from_hex(text)


@pytest.mark.parametrize("bad", [None, 12345, 3.0, ["00" * 16], ("00" * 16,), {"k": 1}, object()])
def test_hex_wrong_type(bad):
    with pytest.raises(TypeError):
        modelcrypt.key_from_hex(bad)


# ------------------------------------------------------------------ key_from_base64


@pytest.mark.parametrize("n,chars", [(16, 24), (24, 32), (32, 44)])
def test_base64_paddlex_style(n, chars):
    raw = os.urandom(n)
    text = base64.b64encode(raw).decode("ascii")        # what PaddleX prints
    assert len(text) == chars
    for s in (text, text + "\n", "  " + text + " \r\n"):
        k = modelcrypt.key_from_base64(s)
        assert type(k) is bytearray and k == raw
        kb = modelcrypt.key_from_base64(s.encode("ascii"))
        assert type(kb) is bytearray and kb == raw


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the reference, binascii's strict_mode, exists from Python 3.11")
def test_base64_check_without_strict_mode_accepts_what_strict_mode_accepts():
    # Python < 3.11 has no binascii strict_mode: there the key readers check the text with a regex
    # (keys._a2b_base64_checked). On what they pass on (base64 characters, at most two '=' at the
    # end, a multiple of 4 long), it accepts and decodes exactly what strict_mode does.
    import binascii
    import itertools

    from modelcrypt import keys

    compared = 0
    for n in (4, 8):
        for chars in itertools.product(b"Aa+/=", repeat=n):
            text = bytes(chars)
            if not keys._BASE64_TEXT.fullmatch(text):
                continue
            try:
                expected = binascii.a2b_base64(text, strict_mode=True)
            except binascii.Error:
                expected = None
            try:
                got = keys._a2b_base64_checked(memoryview(text))
            except binascii.Error:
                got = None
            assert got == expected, text
            compared += 1
    assert compared > 1000
    raw = os.urandom(32)
    assert keys._a2b_base64_checked(base64.b64encode(raw)) == raw


def test_base64_of_bytes_with_plus_and_slash():
    raw = bytes([0xFB, 0xEF, 0xBE] * 10 + [0xFF, 0xFF])  # encodes to '+' / '/' heavy text
    text = base64.b64encode(raw).decode()
    assert "+" in text and "/" in text
    assert modelcrypt.key_from_base64(text) == raw


def test_base64_text_made_of_hex_digits_is_base64_here():
    # key_from_base64 does no detection: 32 hex-looking chars are base64 of 24 bytes.
    text = "0123456789abcdef" * 2
    k = modelcrypt.key_from_base64(text)
    assert k == base64.b64decode(text) and len(k) == 24


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t.rstrip("="),            # padding removed
        lambda t: t[:-1],                   # one padding char removed
        lambda t: t + "=",                  # extra padding
        lambda t: t + "==",
        lambda t: "=" + t[1:],              # padding at the start
        lambda t: t[:10] + "=" + t[11:],    # padding in the middle
    ],
    ids=["no-padding", "short-padding", "extra-padding-1", "extra-padding-2", "leading-pad", "inner-pad"],
)
def test_base64_padding_rules(mutate):
    raw = _key(32, seed=9)                  # 32 bytes -> 44 chars ending in one '='
    text = base64.b64encode(raw).decode()
    assert text.endswith("=") and not text.endswith("==")
    with pytest.raises(ValueError):
        modelcrypt.key_from_base64(mutate(text))
    raw16 = _key(16, seed=9)                # 16 bytes -> 24 chars ending in '=='
    text16 = base64.b64encode(raw16).decode()
    assert text16.endswith("==")
    with pytest.raises(ValueError):
        modelcrypt.key_from_base64(text16.rstrip("="))


@pytest.mark.parametrize(
    "text",
    [
        base64.urlsafe_b64encode(bytes([0xFB, 0xEF, 0xBE] * 10 + [0xFF, 0xFF])).decode(),  # '-' and '_'
        "AAAA" * 10 + "AAA!",
        base64.b64encode(bytes(range(32))).decode()[:20] + " " + base64.b64encode(bytes(range(32))).decode()[20:],
        "Ä" * 44,
    ],
)
def test_base64_invalid_chars(text):
    with pytest.raises(ValueError):
        modelcrypt.key_from_base64(text)


@pytest.mark.parametrize("n", [1, 8, 15, 17, 20, 23, 25, 31, 33, 48, 64])
def test_base64_wrong_decoded_length(n):
    text = base64.b64encode(_key(n)).decode()
    with pytest.raises(ValueError) as ei:
        modelcrypt.key_from_base64(text)
    msg = str(ei.value)
    assert str(n) in msg or str(len(text)) in msg, msg


@pytest.mark.parametrize("bad", [None, 44, ["AAAA"], object()])
def test_base64_wrong_type(bad):
    with pytest.raises(TypeError):
        modelcrypt.key_from_base64(bad)


# ------------------------------------------------------------------ read_key_file


@pytest.mark.parametrize("n", [16, 24, 32])
@pytest.mark.parametrize("suffix", [b"", b"\n", b"\r\n", b"  \n\n"])
def test_read_hex_file(tmp_path, n, suffix):
    raw = _key(n, seed=n)
    p = _write(tmp_path / "key.hex", raw.hex().encode() + suffix)
    k = _read_quietly(p)
    assert type(k) is bytearray and k == raw
    assert _read_quietly(str(p)) == raw


def test_read_hex_file_uppercase_and_leading_whitespace(tmp_path):
    raw = _key(32, seed=3)
    p = _write(tmp_path / "k", b"\n  " + raw.hex().upper().encode() + b"\n")
    assert _read_quietly(p) == raw


@pytest.mark.parametrize("n", [16, 24, 32])
@pytest.mark.parametrize("suffix", [b"", b"\n"])
def test_read_base64_file(tmp_path, n, suffix):
    raw = os.urandom(n)
    text = base64.b64encode(raw)
    if all(chr(c) in HEX_RE_DIGITS for c in text):  # astronomically unlikely; keep the test about base64
        raw = b"\xff" + raw[1:]
        text = base64.b64encode(raw)
    p = _write(tmp_path / "key.b64", text + suffix)
    k = _read_quietly(p)
    assert type(k) is bytearray and k == raw


def test_all_hex_32_chars_is_a_16_byte_hex_key_not_base64(tmp_path):
    text = b"0123456789abcdef0123456789abcdef"   # valid hex AND valid base64 (24 bytes)
    assert len(base64.b64decode(text, validate=True)) == 24
    p = _write(tmp_path / "k", text + b"\n")
    k = _read_quietly(p)
    assert len(k) == 16 and k == bytes.fromhex(text.decode())


def test_all_hex_48_and_64_chars_are_hex(tmp_path):
    for n in (24, 32):
        text = ("deadbeef" * 8)[: 2 * n].encode()
        p = _write(tmp_path / f"k{n}", text)
        assert _read_quietly(p) == bytes.fromhex(text.decode())


@pytest.mark.parametrize("n", [16, 24, 32])
def test_read_raw_file(tmp_path, n):
    raw = bytes([0xFF, 0x00]) + os.urandom(n - 4) + bytes([0x80, 0x01])
    p = _write(tmp_path / "key.bin", raw)
    k = _read_quietly(p)
    assert type(k) is bytearray and k == raw


@pytest.mark.parametrize("n", [16, 24, 32])
@pytest.mark.parametrize(
    "head,tail",
    [(b"\n", b"\n"), (b"\x00", b"\x00"), (b" \t", b"\r\n"), (b"\n\x00", b"\x00\n"), (b"", b"\x0b\x0c")],
)
def test_read_raw_file_keeps_whitespace_and_nul_at_the_ends(tmp_path, n, head, tail):
    # Nothing is stripped from a raw key: its exact bytes are the key.
    middle = bytes([0xC3, 0x00, 0xFE]) + bytes((7 * i + 200) & 0xFF for i in range(n - len(head) - len(tail) - 3))
    raw = head + middle + tail
    assert len(raw) == n
    p = _write(tmp_path / "key.bin", raw)
    k = _read_quietly(p)
    assert len(k) == n and k == raw


def test_raw_key_of_nul_bytes(tmp_path):
    p = _write(tmp_path / "zero.bin", bytes(32))
    assert _read_quietly(p) == bytes(32)


@pytest.mark.parametrize("digits", [30, 40, 62, 66, 2])
def test_hex_file_wrong_digit_count(tmp_path, digits):
    p = _write(tmp_path / "k", ("ab" * 40)[:digits].encode() + b"\n")
    with pytest.raises(ValueError, match=f"hex key of {digits} digits"):
        modelcrypt.read_key_file(p)


def test_hex_file_of_32_bytes_without_newline_is_hex_not_raw(tmp_path):
    # 32 ASCII hex digits are also 32 bytes long, which a raw key could be: hex wins.
    text = b"00112233445566778899aabbccddeeff"
    p = _write(tmp_path / "k", text)
    assert _read_quietly(p) == bytes.fromhex(text.decode())


def test_base64_file_wrong_decoded_length(tmp_path):
    p = _write(tmp_path / "k", base64.b64encode(_key(20)) + b"\n")   # 28 chars, 20 bytes
    with pytest.raises(ValueError):
        modelcrypt.read_key_file(p)


@pytest.mark.parametrize(
    "content",
    [
        b"hello world, not a key\n",           # 23 bytes: not hex, not base64, not a raw length
        b"this is my password",
        b"\xff" * 17,
        b"\x00" * 40,
        b"00112233-44556677-8899aabb-ccddeeff",
        b"",
        b"   \n",
    ],
)
def test_invalid_key_file(tmp_path, content):
    p = _write(tmp_path / "bad.key", content)
    with pytest.raises(ValueError) as ei:
        modelcrypt.read_key_file(p)
    msg = str(ei.value).lower()
    if content.strip():
        # "saying what was found (length, and that it is neither hex, base64 nor a raw key)"
        assert str(len(content)) in msg, msg
        assert "hex" in msg and "base64" in msg and "raw" in msg, msg


def test_missing_key_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        modelcrypt.read_key_file(tmp_path / "nope.key")
    with pytest.raises(FileNotFoundError):
        modelcrypt.read_key_file(str(tmp_path / "nope.key"))


# ------------------------------------------------------------------ insecure key files


def test_insecure_warning_class():
    assert issubclass(modelcrypt.InsecureKeyFileWarning, UserWarning)
    assert "InsecureKeyFileWarning" in modelcrypt.__all__


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700 | 0o001, 0o444])
def test_group_or_other_readable_key_file_warns(tmp_path, mode):
    raw = _key(32)
    p = _write(tmp_path / "k.hex", raw.hex().encode() + b"\n", mode=mode)
    with pytest.warns(modelcrypt.InsecureKeyFileWarning) as rec:
        k = modelcrypt.read_key_file(p)
    assert k == raw                               # a warning, not a refusal
    assert any(isinstance(w.message, UserWarning) for w in rec)


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o700])
def test_private_key_file_does_not_warn(tmp_path, mode):
    raw = _key(24)
    for name, content in (("h", raw.hex().encode()), ("b", base64.b64encode(raw)), ("r", raw)):
        p = _write(tmp_path / name, content, mode=mode)
        assert _read_quietly(p) == raw


def test_insecure_warning_can_be_made_an_error(tmp_path):
    p = _write(tmp_path / "k", _key(16).hex().encode(), mode=0o644)
    with warnings.catch_warnings():
        warnings.simplefilter("error", modelcrypt.InsecureKeyFileWarning)
        with pytest.raises(modelcrypt.InsecureKeyFileWarning):
            modelcrypt.read_key_file(p)


# ------------------------------------------------------------------ key_from_env


def test_env_default_name_hex(monkeypatch):
    raw = _key(32, seed=1)
    monkeypatch.setenv("MODELCRYPT_KEY", raw.hex() + "\n")
    k = modelcrypt.key_from_env()
    assert type(k) is bytearray and k == raw


def test_env_custom_name_base64(monkeypatch):
    raw = _key(16, seed=2)
    monkeypatch.setenv("MY_MODEL_KEY", "  " + base64.b64encode(raw).decode())
    monkeypatch.delenv("MODELCRYPT_KEY", raising=False)
    k = modelcrypt.key_from_env("MY_MODEL_KEY")
    assert type(k) is bytearray and k == raw


def test_env_all_hex_text_is_hex(monkeypatch):
    monkeypatch.setenv("MODELCRYPT_KEY", "0123456789abcdef0123456789abcdef")
    assert len(modelcrypt.key_from_env()) == 16


@pytest.mark.parametrize("name", ["MODELCRYPT_KEY", "SOME_OTHER_KEY_VAR"])
def test_env_unset(monkeypatch, name):
    monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match=name):
        if name == "MODELCRYPT_KEY":
            modelcrypt.key_from_env()          # the default name
        else:
            modelcrypt.key_from_env(name)


@pytest.mark.parametrize("name", ["MODELCRYPT_KEY", "SOME_OTHER_KEY_VAR"])
def test_env_empty(monkeypatch, name):
    monkeypatch.setenv(name, "")
    with pytest.raises(ValueError, match=name):
        modelcrypt.key_from_env(name)


@pytest.mark.parametrize("value", ["not a key", "ab" * 20, base64.b64encode(bytes(20)).decode()])
def test_env_bad_text(monkeypatch, value):
    monkeypatch.setenv("MODELCRYPT_KEY", value)
    with pytest.raises(ValueError):
        modelcrypt.key_from_env()


# ------------------------------------------------------------------ write_key_file


@pytest.fixture
def umask0():
    """Run with umask 0 so a 0600 result proves write_key_file sets the mode itself."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("n", [16, 24, 32])
@pytest.mark.parametrize("fmt", ["hex", "base64", "raw"])
def test_write_key_file_formats(tmp_path, umask0, n, fmt):
    raw = os.urandom(n)
    p = tmp_path / f"key.{fmt}"
    modelcrypt.write_key_file(p, raw, format=fmt)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    content = p.read_bytes()
    if fmt == "hex":
        assert content.endswith(b"\n") and bytes.fromhex(content.decode().strip()) == raw
        assert len(content) == 2 * n + 1
    elif fmt == "base64":
        assert content.endswith(b"\n") and base64.b64decode(content.strip(), validate=True) == raw
    else:
        assert content == raw
    assert _read_quietly(p) == raw
    assert sorted(os.listdir(tmp_path)) == [p.name]           # no temporary left behind


def test_write_key_file_default_is_hex(tmp_path, umask0):
    raw = _key(32)
    p = tmp_path / "k"
    modelcrypt.write_key_file(str(p), bytearray(raw))
    assert p.read_bytes() == raw.hex().encode() + b"\n" or p.read_bytes() == raw.hex().upper().encode() + b"\n"
    assert stat.S_IMODE(p.stat().st_mode) == 0o600


def test_write_key_file_refuses_overwrite(tmp_path):
    p = tmp_path / "k"
    p.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        modelcrypt.write_key_file(p, _key(32))
    assert p.read_bytes() == b"precious"
    with pytest.raises(FileExistsError):
        modelcrypt.write_key_file(p, _key(32), force=False)
    assert p.read_bytes() == b"precious"
    assert sorted(os.listdir(tmp_path)) == ["k"]


def test_write_key_file_force_overwrites_with_0600(tmp_path, umask0):
    p = tmp_path / "k"
    p.write_bytes(b"old old old")
    os.chmod(p, 0o644)
    raw = _key(16, seed=4)
    modelcrypt.write_key_file(p, raw, format="base64", force=True)
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert _read_quietly(p) == raw
    assert sorted(os.listdir(tmp_path)) == ["k"]


def test_write_key_file_force_is_keyword_only(tmp_path):
    with pytest.raises(TypeError):
        modelcrypt.write_key_file(tmp_path / "k", _key(32), "hex", True)


# ------------------------------------------------------------------ wipe


def test_wipe_bytearray():
    ba = bytearray(os.urandom(64))
    ba[0] = 1
    modelcrypt.wipe(ba)
    assert ba == bytearray(64) and len(ba) == 64


def test_wipe_key_from_helpers():
    k = modelcrypt.key_from_hex(_key(32).hex())
    modelcrypt.wipe(k)
    assert k == bytearray(32)


def test_wipe_writable_memoryview_only_its_range():
    ba = bytearray(b"\x55" * 32)
    mv = memoryview(ba)[8:24]
    modelcrypt.wipe(mv)
    assert ba == b"\x55" * 8 + bytes(16) + b"\x55" * 8


def test_wipe_writable_memoryview_of_typed_array():
    arr = array.array("I", range(1, 17))
    modelcrypt.wipe(memoryview(arr))
    assert list(arr) == [0] * 16


@pytest.mark.parametrize("n", [2, 3, 16, 32, 1000])
def test_wipe_bytes_in_place_and_hash_reset(n):
    b = bytes(bytearray(os.urandom(n)))    # a fresh object, built at run time
    b = b if any(b) else b"\x01" + b[1:]    # make sure it is not already zero
    hash(b)                                 # caches the hash inside the object
    ident = id(b)
    modelcrypt.wipe(b)
    assert id(b) == ident
    assert b == bytes(n)
    assert hash(b) == hash(bytes(n))
    assert {b: 1}[bytes(n)] == 1            # usable as a dict key afterwards


def test_wipe_bytes_from_urandom():
    b = os.urandom(32)
    hash(b)
    modelcrypt.wipe(b)
    assert b == bytes(32) and hash(b) == hash(bytes(32))


@pytest.mark.parametrize("n", [0, 1])
def test_wipe_singleton_bytes_refused(n):
    b = bytes(bytearray([0x41] * n))        # the interpreter hands back its shared singleton
    with pytest.raises(ValueError):
        modelcrypt.wipe(b)
    assert b == b"A" * n
    assert bytes([0x41]) == b"\x41" and bytes(bytearray(b"A")) == b"A"


def test_wipe_readonly_memoryview_of_bytes():
    b = bytes(bytearray(os.urandom(24)))
    b = b if any(b) else b"\x01" + b[1:]
    hash(b)
    mv = memoryview(b)
    assert mv.readonly
    modelcrypt.wipe(mv)
    assert b == bytes(24)
    assert hash(b) == hash(bytes(24))


def test_wipe_decrypted_buffer_closes_it():
    key = _key(32)
    blob = modelcrypt.encrypt_bytes(b"secret weights" * 100, key)
    buf = modelcrypt.decrypt_bytes(blob, key)
    assert bytes(buf)[:6] == b"secret"
    modelcrypt.wipe(buf)
    assert buf.closed
    with pytest.raises(ValueError):
        bytes(buf)
    with pytest.raises(ValueError):
        memoryview(buf)


@pytest.mark.parametrize("bad", ["secret text", 12345, [1, 2, 3], (1, 2), None, 3.5, {"a": 1}])
def test_wipe_other_types(bad):
    with pytest.raises(TypeError):
        modelcrypt.wipe(bad)


# ------------------------------------------------------------------ keys with the crypto API


def test_keys_from_every_helper_work_with_encrypt_and_decrypt(tmp_path, monkeypatch):
    raw = os.urandom(32)
    via_hex = modelcrypt.key_from_hex(raw.hex())
    via_b64 = modelcrypt.key_from_base64(base64.b64encode(raw))
    monkeypatch.setenv("MODELCRYPT_KEY", base64.b64encode(raw).decode())
    via_env = modelcrypt.key_from_env()
    modelcrypt.write_key_file(tmp_path / "k", raw, format="raw")
    via_file = _read_quietly(tmp_path / "k")
    keys = [via_hex, via_b64, via_env, via_file]
    assert all(k == raw for k in keys)
    data = os.urandom(10_000)
    blob = modelcrypt.encrypt_bytes(data, via_hex, chunk_size=4096, metadata={"m": "x"})
    for k in keys:
        with modelcrypt.decrypt_bytes(blob, k) as buf:
            assert bytes(buf) == data
    for k in keys:
        assert _roundtrips(k)
    # a different key from the same helper is rejected
    other = modelcrypt.key_from_hex(os.urandom(32).hex())
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.decrypt_bytes(blob, other)


@pytest.mark.parametrize("n", [16, 24])
def test_short_keys_from_helpers_work(n):
    raw = os.urandom(n)
    assert _roundtrips(modelcrypt.key_from_hex(raw.hex()))
    assert _roundtrips(modelcrypt.key_from_base64(base64.b64encode(raw).decode()))
