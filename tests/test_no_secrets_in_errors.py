"""No key or plaintext bytes in any error: security review item 2.

Every public function of modelcrypt (the names in ``__all__`` of the package and of its
submodules, so new functions are covered without editing this file) is called with wrong types,
out-of-range numbers, non-UTF-8 text and bad paths, one argument at a time, while the other
arguments carry a sentinel key and sentinel plaintext. Every exception raised (and every warning
issued) is searched, with its args, its attributes, its formatted traceback and every chained
``__cause__`` / ``__context__`` (suppressed ones too: the objects are still reachable), for the
sentinels in raw, repr-escaped, hex and base64 forms, as any 8-byte window, so a message that
quotes part of a key is caught too. The CLI is run as a subprocess with bad arguments (non-UTF-8
modes and text, bad numbers, missing files, key text where a file name belongs) and the key in a
key file or an environment variable: its output holds no sentinel and no traceback, and bad input
exits 2.

Values that are the key or the plaintext themselves are not passed as *paths* (except to
read_key_file): a file name is quoted in file errors by design, whatever it is.
"""

from __future__ import annotations

import base64
import importlib
import inspect
import os
import subprocess
import sys
import traceback
import warnings

import numpy as np
import pytest

import modelcrypt

from conftest import require

# ------------------------------------------------------------------ the sentinels and their forms

# 32 bytes: ASCII words (so a str form is plausible) mixed with bytes that are not UTF-8.
_KEY = b"kEy!\x00\x9d\xfe\x01SeNtInElk3Y\xc3\x28\xa0\xa1\xe2\x82\x28-\xf0\x28\x8c\xbc\x7f"
assert len(_KEY) == 32
_UNIT = b"\x8bPlAiN\xc3\x28sEnTiNeL-tExT\x00\xff\xfe{pLaInTeXt}\xe2\x82\x28\x01\x02pAyLoAd\xf0\x9f\x98!"
_PLAINTEXT = _UNIT * 64


def key() -> bytes:
    """A fresh copy of the sentinel key (code under test may wipe what it is given)."""
    return bytes(bytearray(_KEY))


def plaintext() -> bytes:
    return bytes(bytearray(_PLAINTEXT))


def _windows(secret: bytes, n: int = 8) -> set[bytes]:
    return {secret[i:i + n] for i in range(len(secret) - n + 1)}


def _text_forms(secret: bytes) -> set[str]:
    forms: set[str] = set()
    for w in _windows(secret):
        forms |= {w.hex(), w.hex().upper(), w.hex(" "), repr(w)[2:-1], repr(bytearray(w))[12:-2],
                  w.decode("latin-1"), w.decode("utf-8", "surrogateescape"), w.decode("utf-8", "backslashreplace")}
    for i in range(len(secret) - 9 + 1):  # base64 of every 9-byte window (12 characters, any alignment)
        w = secret[i:i + 9]
        forms |= {base64.b64encode(w).decode(), base64.urlsafe_b64encode(w).decode()}
    forms.discard("")
    return forms


_SECRETS = {"key": _KEY, "plaintext": _UNIT * 2}
_FORMS = {name: _text_forms(secret) for name, secret in _SECRETS.items()}
_RAW = {name: _windows(secret) for name, secret in _SECRETS.items()}


def _found_in_text(text: str) -> list[str]:
    return [f"{name} ({form!r})" for name, forms in _FORMS.items() for form in forms if form in text][:3]


def _found_in_bytes(data: bytes) -> list[str]:
    hits = [f"{name} (raw bytes)" for name, ws in _RAW.items() if any(w in data for w in ws)]
    return hits or _found_in_text(data.decode("latin-1"))


def _values(obj, depth=0):
    """The strs and bytes-like objects inside an exception argument."""
    if depth > 4:
        return
    if isinstance(obj, (str, bytes, bytearray, memoryview)):
        yield obj
    elif isinstance(obj, dict):
        for k, v in list(obj.items())[:100]:
            yield from _values(k, depth + 1)
            yield from _values(v, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in list(obj)[:100]:
            yield from _values(v, depth + 1)


def leaks(exc: BaseException) -> list[str]:
    """Where the sentinels appear in an exception, its chain, args, attributes and traceback."""
    problems = []
    seen: set[int] = set()
    stack = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        texts = []
        for how in (str, repr, lambda x: repr(x.args)):
            try:
                texts.append(how(e))
            except Exception as inner:  # a broken __str__ is a finding of its own
                problems.append(f"{type(e).__name__}: formatting raised {type(inner).__name__}")
        texts.append("".join(traceback.format_exception(type(e), e, e.__traceback__)))
        texts.extend(getattr(e, "__notes__", []) or [])
        values = list(_values(e.args))
        for attr in ("object", "filename", "filename2", "strerror", "doc", "msg", "reason", "name", "path"):
            v = getattr(e, attr, None)
            values.extend(_values(v))
        for v in values:
            if isinstance(v, str):
                texts.append(v)
            else:
                hits = _found_in_bytes(bytes(v))
                if hits:
                    problems.append(f"{type(e).__name__} carries bytes with {hits}")
        for t in texts:
            hits = _found_in_text(t)
            if hits:
                problems.append(f"{type(e).__name__} text has {hits}: {t[:300]!r}")
        stack.extend([e.__cause__, e.__context__, *getattr(e, "exceptions", ())])
    return problems


def test_the_detector_finds_what_pybind11_printed():
    """The checker itself: a pybind11-style message with the key's repr, its hex, a window of it."""
    for text in (f"Invoked with: b'/x', {_KEY!r}, 'paddle:\\udc80'", _KEY[3:14].hex(), repr(_PLAINTEXT[5:20]),
                 base64.b64encode(_KEY).decode()):
        assert leaks(TypeError(text)), text
    e = UnicodeDecodeError("utf-8", _KEY, 5, 6, "invalid start byte")
    assert leaks(e)
    try:
        try:
            raise ValueError(_KEY)
        except ValueError:
            raise TypeError("clean") from None
    except TypeError as chained:
        assert leaks(chained)  # a suppressed context still counts
    assert not leaks(ValueError("key must be 16, 24 or 32 bytes long, got 31 bytes"))


# ------------------------------------------------------------------ fixtures: real files


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("secrets")
    enc = d / "model.mcx"
    enc.write_bytes(modelcrypt.encrypt_bytes(plaintext(), key()))
    ckpt = d / "ckpt.safetensors.mcx"
    modelcrypt.save_checkpoint({"w": np.frombuffer(_PLAINTEXT, dtype=np.uint8).copy()}, ckpt, key())
    keyfile = d / "key.hex"
    keyfile.write_text(_KEY.hex() + "\n")
    os.chmod(keyfile, 0o600)
    conf = d / "paddle.conf"
    conf.write_text("cipher_name : AES_GCM_NoPadding\n")
    # A real Paddle program: Paddle itself crashes (SIGSEGV) on a buffer that is not one.
    paddle_dir = os.path.join(os.path.dirname(__file__), "data", "paddle")
    for name in ("model.pdmodel", "model.pdiparams"):
        with open(os.path.join(paddle_dir, name), "rb") as f:
            (d / (name + ".mcx")).write_bytes(modelcrypt.encrypt_bytes(f.read(), key()))
    return {"dir": d, "enc": str(enc), "ckpt": str(ckpt), "keyfile": str(keyfile), "conf": str(conf),
            "blob": enc.read_bytes(), "pdmodel": str(d / "model.pdmodel.mcx"), "pdiparams": str(d / "model.pdiparams.mcx")}


# ------------------------------------------------------------------ the public functions

MODULES = ["modelcrypt", "modelcrypt.keys", "modelcrypt.checkpoint", "modelcrypt.mindspore", "modelcrypt.numpy",
           "modelcrypt.torch", "modelcrypt.onnxruntime", "modelcrypt.paddle"]
_FRAMEWORK = {"modelcrypt.torch": "torch", "modelcrypt.onnxruntime": "onnxruntime", "modelcrypt.paddle": "paddle"}


def _public(module_name):
    module = importlib.import_module(module_name)
    for name in module.__all__:
        obj = getattr(module, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            continue
        if callable(obj):
            yield f"{module_name}.{name}"


def _all_public():
    out = []
    for m in MODULES:
        try:
            out.extend(_public(m))
        except ImportError:
            out.append(f"{m}.*")  # reported by the test as a skip (or a failure in CI, see conftest.require)
    return sorted(set(out))


PATH_PARAMS = {"path", "src", "dst", "model_path", "params_path", "index_or_paths", "directory", "config_path", "file"}
KEY_PARAMS = {"key", "old_key", "new_key", "enc_key", "dec_key"}
MODE_PARAMS = {"mode", "old_mode", "enc_mode", "dec_mode"}
WRITERS = ("encrypt_file", "decrypt_file", "migrate", "save", "savez", "savez_compressed", "save_checkpoint",
           "write_key_file")

# Bad values for any argument: wrong types, numbers out of every range, text that is not valid UTF-8,
# paths that do not exist or cannot exist, and the secrets themselves in a slot they do not belong to.
# Each call makes fresh objects (wipe() zeroes the bytes it is given, a shared literal included).
BAD_VALUES = [
    ("2**64", lambda: 2**64), ("2**63", lambda: 2**63), ("-1", lambda: -1), ("-2**64", lambda: -2**64),
    ("1.5", lambda: 1.5), ("nan", lambda: float("nan")), ("True", lambda: True), ("None", lambda: None),
    ("object()", lambda: object()), ("paddle:\\udc80", lambda: "paddle:\udc80"), ("\\udc80", lambda: "\udc80\udcff"),
    ("AES-GCM\\0", lambda: "AES-GCM\x00"), ("b'\\xff'", lambda: bytes(bytearray(b"\xff\xfe"))), ("''", lambda: ""),
    ("missing path", lambda: "/nonexistent/\udc80/x"), ("NUL path", lambda: "a\x00b"), ("[]", lambda: []),
    ("[key]", lambda: [key()]), ("{key: plaintext}", lambda: {key(): plaintext()}), ("{'\\udc80': 'x'}", lambda: {"\udc80": "x"}),
    ("key", key), ("bytearray(plaintext)", lambda: bytearray(_PLAINTEXT)), ("memoryview(key)", lambda: memoryview(key())),
    ("key.hex()", lambda: _KEY.hex()), ("paddle:key.hex()", lambda: "paddle:" + _KEY.hex()),
    ("key base64", lambda: base64.b64encode(_KEY).decode()), ("plaintext as str", lambda: _PLAINTEXT.decode("latin-1")),
    ("mistyped hex key", lambda: _KEY.hex()[:-1] + "g"),
]
_SECRET_VALUES = {"key", "bytearray(plaintext)", "memoryview(key)", "key.hex()", "paddle:key.hex()", "key base64",
                  "plaintext as str", "mistyped hex key", "[key]", "{key: plaintext}"}


def _good(qualname, pname, files, tmp_path):
    """A value that works for this parameter, carrying the sentinels wherever they fit."""
    func = qualname.rsplit(".", 1)[1]
    writer = any(func == w or func.startswith(w) for w in WRITERS)
    if pname in KEY_PARAMS:
        return key()
    if pname in MODE_PARAMS:
        return "AES-GCM"
    if pname == "dst" or (pname == "path" and writer):
        return str(tmp_path / f"out-{len(os.listdir(tmp_path))}")
    if pname == "path":
        if func == "read_key_file":
            return files["keyfile"]
        if "checkpoint" in func or func == "load_state_dict":
            return files["ckpt"]
        return files["enc"]
    if pname == "model_path":
        return files["pdmodel"]
    if pname == "params_path":
        return files["pdiparams"]
    if pname == "src":
        return files["enc"]
    if pname == "index_or_paths":
        return [files["ckpt"]]
    if pname == "config_path":
        return files["conf"]
    if pname == "directory":
        return str(tmp_path)
    if pname == "text":
        return _KEY.hex() if func == "key_from_hex" else base64.b64encode(_KEY).decode()
    if pname == "name":
        return "MODELCRYPT_SECRETS_TEST_KEY"
    if pname == "data":
        return plaintext()
    if pname == "blob":
        return files["blob"]
    if pname == "prefix" and func == "ModelCheckpoint":
        return "ckpt"
    if pname in ("buffer", "prefix", "model"):
        return plaintext()
    if pname == "obj":
        return bytearray(_KEY) if func == "wipe" else {"w": np.frombuffer(_PLAINTEXT, dtype=np.uint8).copy()}
    if pname == "params":
        return {"w": np.frombuffer(_PLAINTEXT, dtype=np.uint8).copy()}
    if pname == "arr":
        return np.frombuffer(_PLAINTEXT, dtype=np.uint8).copy()
    if pname == "offset":
        return 0
    if pname == "length":
        return 32 if func == "generate_key" else 8
    if pname in ("file_length", "plaintext_length"):
        return 1
    return inspect.Parameter.empty


def _calls(qualname, files, tmp_path):
    """(description, callable) pairs: the function with one argument replaced by each bad value."""
    module_name, name = qualname.rsplit(".", 1)
    func = getattr(importlib.import_module(module_name), name)
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # a native class without a signature
        yield "no arguments", lambda: func()
        yield "bad positional", lambda: func(key(), 2**64, "paddle:\udc80")
        return
    params = [p for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())

    def base():
        kwargs = {}
        for p in params:
            good = _good(qualname, p.name, files, tmp_path)
            if good is not inspect.Parameter.empty:
                kwargs[p.name] = good
            elif p.default is inspect.Parameter.empty:
                kwargs[p.name] = key()  # nothing better known: the sentinel
        return kwargs

    def call(kwargs):
        positional = [kwargs.pop(p.name) for p in params if p.kind == p.POSITIONAL_ONLY and p.name in kwargs]
        return lambda: func(*positional, **kwargs)

    yield "good arguments", call(base())
    for p in params:
        for label, make in BAD_VALUES:
            if p.name in PATH_PARAMS and label in _SECRET_VALUES and not (name == "read_key_file"):
                continue
            kwargs = base()
            kwargs[p.name] = make()
            yield f"{p.name}={label}", call(kwargs)
    if var_kw:
        for extra in ("threads", "chunk_size", "metadata", "format", "mode", "no_such_option"):
            for label, make in BAD_VALUES:
                kwargs = base()
                kwargs[extra] = make()
                yield f"**{extra}={label}", call(kwargs)


@pytest.mark.parametrize("qualname", _all_public())
def test_no_secret_in_any_exception(qualname, files, tmp_path, monkeypatch, capfd):
    module_name = qualname.rsplit(".", 1)[0]
    if module_name in _FRAMEWORK or qualname.endswith(".*"):
        require(_FRAMEWORK.get(module_name, module_name.rsplit(".", 1)[-1]))
    monkeypatch.setenv("MODELCRYPT_SECRETS_TEST_KEY", _KEY.hex())
    monkeypatch.chdir(tmp_path)
    failures = []
    calls = 0
    for label, fn in _calls(qualname, files, tmp_path):
        calls += 1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = fn()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - every exception is examined
                found = leaks(exc)
                if found:
                    failures.append(f"{qualname}({label}): {found[0]}")
            else:
                close = getattr(result, "close", None)
                if isinstance(result, modelcrypt.DecryptedBuffer) and close is not None:
                    close()
        for w in caught:
            found = _found_in_text(str(w.message))
            if found:
                failures.append(f"{qualname}({label}) warning: {found}: {str(w.message)[:200]!r}")
    out, err = capfd.readouterr()
    found = _found_in_text(out + err)
    if found:
        failures.append(f"{qualname}: printed {found}")
    assert calls > 1 or qualname.rsplit(".", 1)[1] in ("get_include", "get_lib_dir", "get_cmake_dir",
                                                       "get_pkgconfig_dir", "generate_identity",
                                                       "generate_signing_key", "openssl_version")
    assert not failures, "\n".join(failures[:30])


def test_every_public_function_is_exercised():
    """The sweep above covers what the package exports (not a hand-written list that could go stale)."""
    names = _all_public()
    for expected in ("modelcrypt.load", "modelcrypt.load_range", "modelcrypt.decrypt_bytes", "modelcrypt.encrypt_bytes",
                     "modelcrypt.migrate", "modelcrypt.key_from_hex", "modelcrypt.checkpoint.load_checkpoint",
                     "modelcrypt.mindspore.parse_checkpoint", "modelcrypt.numpy.load"):
        assert expected in names
    assert len(names) >= 40, names


# ------------------------------------------------------------------ the reported cases, one by one


@pytest.mark.parametrize("call", [
    lambda f: modelcrypt.load_range(f["enc"], key(), offset=2**64, length=1),
    lambda f: modelcrypt.load_range(f["enc"], key(), offset=0, length=2**64),
    lambda f: modelcrypt.load_range(f["enc"], key(), offset=2**63, length=2**63),
    lambda f: modelcrypt.load(f["enc"], key(), "paddle:\udc80"),
    lambda f: modelcrypt.decrypt_bytes(f["blob"], key(), "paddle:\udc80"),
    lambda f: modelcrypt.encrypt_bytes(plaintext(), key(), "paddle:\udc80"),
    lambda f: modelcrypt.encrypt_bytes(plaintext(), key(), "AES-GCM", chunk_size=2**64),
    lambda f: modelcrypt.verify(f["enc"], key(), "\udc80"),
    lambda f: modelcrypt.load(f["enc"], key(), "paddle:" + _KEY.hex()),
    lambda f: modelcrypt.load(f["enc"], key(), "paddle:AES_GCM_NoPadding:" + _KEY.hex()[:20]),
], ids=["offset", "length", "offset+length", "load-mode", "decrypt_bytes-mode", "encrypt_bytes-mode", "chunk_size",
        "verify-mode", "paddle-hex-mode", "paddle-field"])
def test_reported_cases_are_clean_errors(call, files):
    with pytest.raises((ValueError, TypeError)) as info:
        call(files)
    assert not leaks(info.value), leaks(info.value)
    assert "Invoked with" not in str(info.value)


def test_mode_must_be_text(files):
    with pytest.raises(ValueError, match="not valid text") as info:
        modelcrypt.load(files["enc"], key(), "paddle:\udc80")
    assert "\udc80" not in str(info.value)


def test_key_text_given_in_the_wrong_place_is_not_echoed(files, tmp_path):
    hex_key = _KEY.hex()
    for call in (lambda: modelcrypt.load(files["enc"], key(), hex_key),
                 lambda: modelcrypt.key_from_env(hex_key),
                 lambda: modelcrypt.read_key_file(hex_key),
                 lambda: modelcrypt.write_key_file(tmp_path / "k", key(), hex_key),
                 lambda: modelcrypt.key_from_hex(hex_key[:-2] + "zz"),
                 lambda: modelcrypt.key_from_hex(hex_key[:-1]),
                 lambda: modelcrypt.key_from_base64(base64.b64encode(_KEY).decode()[:-2] + "!!")):
        with pytest.raises((ValueError, TypeError, OSError)) as info:
            call()
        assert not leaks(info.value), leaks(info.value)


def test_paddle_config_that_is_a_key_file(files):
    """--from-paddle-config given the key file by mistake: the error quotes no key text."""
    with pytest.raises(ValueError) as info:
        modelcrypt.paddle_cipher_mode(files["keyfile"])
    assert not leaks(info.value), leaks(info.value)
    raw = files["dir"] / "raw.key"
    raw.write_bytes(_KEY)
    with pytest.raises(ValueError) as info:
        modelcrypt.paddle_cipher_mode(raw)
    assert not leaks(info.value), leaks(info.value)


def _decode_key(_path, k):
    return k.decode("utf-8")  # a custom cipher's bug: UnicodeDecodeError holding the key bytes


def _echo_key(_path, k):
    raise RuntimeError(f"cipher failed for key {k!r}")


def _choke_on_plaintext(stream, _k):
    raise ValueError(f"cannot encrypt {stream[:40]!r}")


@pytest.mark.parametrize("cipher", [_decode_key, _echo_key])
def test_custom_cipher_errors_carrying_the_key(cipher, files, tmp_path):
    for call in (lambda: modelcrypt.load(files["enc"], key(), cipher),
                 lambda: modelcrypt.verify(files["enc"], key(), cipher),
                 lambda: modelcrypt.decrypt_file(files["enc"], tmp_path / "out", key(), cipher),
                 lambda: modelcrypt.load_checkpoint(files["enc"], key(), cipher)):
        with pytest.raises(Exception) as info:
            call()
        assert not leaks(info.value), leaks(info.value)


def test_custom_cipher_errors_carrying_plaintext(tmp_path):
    with pytest.raises(Exception) as info:
        modelcrypt.encrypt_bytes(plaintext(), key(), _choke_on_plaintext)
    assert not leaks(info.value), leaks(info.value)
    src = tmp_path / "src"
    src.write_bytes(_PLAINTEXT)
    with pytest.raises(Exception) as info:
        modelcrypt.encrypt_file(src, tmp_path / "dst", key(), _choke_on_plaintext)
    assert not leaks(info.value), leaks(info.value)


def test_custom_cipher_errors_without_secrets_pass_through(files):
    def exploding(_path, _k):
        raise RuntimeError("cipher exploded")

    with pytest.raises(RuntimeError, match="cipher exploded"):
        modelcrypt.load(files["enc"], key(), exploding)


def test_checkpoint_errors_quote_no_plaintext(tmp_path):
    """A decrypted checkpoint header is plaintext: its FormatErrors name no tensor and quote no value."""
    import json
    import struct

    name = _UNIT.decode("latin-1")
    bad_headers = [
        {name: {"dtype": "X", "shape": [1], "data_offsets": [0, 1]}},  # unknown dtype
        {name: {"dtype": name, "shape": [1], "data_offsets": [0, 1]}},  # the dtype is plaintext too
        {name: {"dtype": "U8", "shape": [2], "data_offsets": [0, 1]}},  # shape disagrees
        {name: {"dtype": "U8", "shape": [name], "data_offsets": [0, 1]}},
        {name: [1, 2, 3]},
    ]
    for i, header in enumerate(bad_headers):
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        path = tmp_path / f"bad{i}.mcx"
        path.write_bytes(modelcrypt.encrypt_bytes(struct.pack("<Q", len(text)) + text + b"\0", key()))
        with pytest.raises(modelcrypt.FormatError) as info:
            modelcrypt.load_checkpoint(path, key())
        assert not leaks(info.value), (header, leaks(info.value))
    not_json = tmp_path / "notjson.mcx"
    body = b"{" + _UNIT[:30] + b"     "
    body += b" " * (-len(body) % 8)
    not_json.write_bytes(modelcrypt.encrypt_bytes(struct.pack("<Q", len(body)) + body, key()))
    with pytest.raises(modelcrypt.FormatError) as info:
        modelcrypt.load_checkpoint(not_json, key())
    assert not leaks(info.value), leaks(info.value)


def test_mindspore_checkpoint_errors_quote_no_plaintext():
    from modelcrypt import mindspore as ms

    Checkpoint, _ = ms._message_classes()
    name = _UNIT[:20].decode("latin-1")
    for tensor_type, dims, content in ((name, [1], b"\0" * 4), ("Float32", [3], b"\0" * 4), ("Float32", [2], b"\0" * 3)):
        msg = Checkpoint()
        v = msg.value.add()
        v.tag = name
        v.tensor.dims.extend(dims)
        v.tensor.tensor_type = tensor_type
        v.tensor.tensor_content = content
        with pytest.raises(modelcrypt.FormatError) as info:
            ms.parse_checkpoint(msg.SerializeToString())
        assert not leaks(info.value), leaks(info.value)


# ------------------------------------------------------------------ the CLI

ENV = {k: v for k, v in os.environ.items() if not k.startswith("MODELCRYPT")}
ENV["PYTHONDONTWRITEBYTECODE"] = "1"


def run_cli(*args, env=None):
    full = dict(ENV)
    full.update(env or {})
    full_args = [a if isinstance(a, bytes) else os.fsencode(str(a)) for a in args]
    return subprocess.run([os.fsencode(sys.executable), b"-m", b"modelcrypt", *full_args], capture_output=True,
                          env=full, stdin=subprocess.DEVNULL, timeout=120)


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli-secrets")
    src = d / "plain.bin"
    src.write_bytes(_PLAINTEXT)
    enc = d / "plain.bin.mcx"
    enc.write_bytes(modelcrypt.encrypt_bytes(_PLAINTEXT, _KEY))
    keyfile = d / "key.hex"
    keyfile.write_text(_KEY.hex() + "\n")
    os.chmod(keyfile, 0o600)
    rawkey = d / "key.raw"
    rawkey.write_bytes(_KEY)
    os.chmod(rawkey, 0o600)
    badkey = d / "bad.key"  # a mistyped key: one digit short, still mostly the key
    badkey.write_text(_KEY.hex()[:-1] + "\n")
    os.chmod(badkey, 0o600)
    return d


# The core's error messages name the file; a file name that is not UTF-8 is shown with \xNN escapes
# (the binding decodes messages with backslashreplace), and the error stays an OSError (exit 3).

K = ("--key-file", "{keyfile}")
E = ("--key-env", "MC_SECRET_KEY")
CLI_CASES = [
    # (arguments, expected exit code)
    (("migrate", "{enc}", "-o", "{out}", "--from-key-file", "{keyfile}", "--from-mode", b"paddle:\xff", *K), 2),
    (("migrate", "{enc}", "-o", "{out}", "--from-key-env", "MC_SECRET_KEY", "--from-mode", b"\xff\xfe", *E), 2),
    (("migrate", "{enc}", "-o", "{out}", "--from-key-file", "{keyfile}", "--from-mode", "paddle:{hexkey}", *K), 2),
    (("migrate", "{enc}", "-o", "{out}", "--from-key-file", "{keyfile}", "--from-mode", "{hexkey}", *K), 2),
    (("migrate", "{enc}", "-o", "{out}", "--from-key-file", "{keyfile}", "--from-paddle-config", "{keyfile}", *K), 2),
    (("migrate", "{enc}", "-o", "{out}", "--from-key-file", "{keyfile}", "--from-paddle-config", "{rawkey}", *K), 2),
    (("migrate", "{enc}", "-o", "{out}", "--from-key-file", "{badkey}", *K), 2),
    (("migrate", "{enc}", "-o", "{out}", "--from-key-file", "{keyfile}", "--threads", "0", *K), 2),
    (("encrypt", "{src}", "-o", "{out}", *K, "--chunk-size", str(2**64)), 2),
    (("encrypt", "{src}", "-o", "{out}", *K, "--chunk-size", "-1"), 2),
    (("encrypt", "{src}", "-o", "{out}", *K, "--threads", str(2**64)), 0),
    (("encrypt", "{src}", "-o", "{out}", *K, "--threads", "x"), 2),
    (("encrypt", "{src}", "-o", "{out}", *E, "--metadata", b"a=\xff"), 2),
    (("encrypt", "{src}", "-o", "{out}", *E, "--metadata", b"\xff=b"), 2),
    (("encrypt", "{src}", "-o", "{out}", "--key-file", "{badkey}"), 2),
    (("encrypt", "{src}", "-o", "{out}", "--key-file", "{hexkey}"), 3),
    (("encrypt", "{src}", "-o", "{out}", "--key-env", "{hexkey}"), 2),
    (("encrypt", "{src}", "-o", "{out}", "--key-env", b"\xff"), 2),
    (("encrypt", "{src}", "-o", "{out}", "--key-env", "MC_BAD_KEY"), 2),
    (("encrypt", "/nonexistent/\xff", "-o", "{out}", *K), 3),
    (("decrypt", "{enc}", "-o", "{out}", *K, "--threads", "-5"), 2),
    (("decrypt", "{enc}", "-o", "{out}", "--key-file", "{rawkey}", "--threads", str(2**70)), 0),
    (("decrypt", "{src}", "-o", "{out}", *K), 1),
    (("decrypt", "{enc}", "-o", "{out}", "--key-file", "{badkey}"), 2),
    (("decrypt", b"{enc}\xff", "-o", "{out}", *E), 3),
    (("verify", "{enc}", "--key-env", "MC_BAD_KEY"), 2),
    (("verify", "{enc}", "--key-file", b"/nonexistent/\xff"), 3),
    (("verify", "{enc}", b"{dir}/\xff", *K), 3),
    (("verify", "{src}", *E), 1),
    (("inspect", b"/nonexistent/\xff"), 3),
    (("inspect", "{src}"), 1),
    (("keygen", "--length", str(2**64)), 2),
    (("keygen", "--format", b"\xff"), 2),
    (("keygen", "-o", "{keyfile}"), 2),
    (("config", "--libdir", "--openssl-version"), 2),
]


def _case_id(i, case):
    args = case.values[0] if hasattr(case, "values") else case[0]
    return f"{args[0]}-{i}"


@pytest.mark.parametrize("args, code", CLI_CASES, ids=[_case_id(i, c) for i, c in enumerate(CLI_CASES)])
def test_cli_bad_input(args, code, cli_files, tmp_path):
    fields = {"enc": cli_files / "plain.bin.mcx", "src": cli_files / "plain.bin", "keyfile": cli_files / "key.hex",
              "rawkey": cli_files / "key.raw", "badkey": cli_files / "bad.key", "out": tmp_path / "out",
              "hexkey": _KEY.hex(), "dir": cli_files}
    argv = []
    for a in args:
        if isinstance(a, str):
            a = os.fsencode(a.format(**fields))
        for name, value in fields.items():
            a = a.replace(b"{" + name.encode() + b"}", os.fsencode(str(value)))
        argv.append(a)
    r = run_cli(*argv, env={"MC_SECRET_KEY": _KEY.hex(), "MC_BAD_KEY": _KEY.hex()[:-2] + "zz"})
    output = r.stdout + r.stderr
    text = output.decode("utf-8", "backslashreplace")
    assert b"Traceback" not in output, text
    assert not _found_in_bytes(output), (_found_in_bytes(output), text)
    assert r.returncode == code, f"exit {r.returncode} (want {code}): {text}"
    if code:
        assert b"error" in r.stderr or (args[0] == "verify" and b"FAILED" in r.stdout), text


def test_missing_file_with_a_non_utf8_name_is_a_file_error():
    with pytest.raises(FileNotFoundError) as ei:
        modelcrypt.inspect(b"/nonexistent/\xff")
    assert "\\xff" in str(ei.value)


def test_decrypted_buffer_methods_never_echo_their_arguments():
    """DecryptedBuffer's methods and properties take their arguments unconverted: a key or the
    plaintext passed by mistake (or as a wrong `self`) is not shown by pybind11's "Invoked with"."""
    k = bytes(_KEY)
    buf = modelcrypt.decrypt_bytes(modelcrypt.encrypt_bytes(_PLAINTEXT, k), k)
    calls = {
        "close(key)": lambda: buf.close(k),
        "close(x=plaintext)": lambda: buf.close(x=_PLAINTEXT),
        "__len__(key)": lambda: buf.__len__(k),
        "__enter__(plaintext)": lambda: buf.__enter__(_PLAINTEXT),
        "unbound close(key)": lambda: modelcrypt.DecryptedBuffer.close(k),
        "unbound __len__(plaintext)": lambda: modelcrypt.DecryptedBuffer.__len__(_PLAINTEXT),
        "closed.fget(key)": lambda: modelcrypt.DecryptedBuffer.closed.fget(k),
        "metadata_raw.fget(plaintext)": lambda: modelcrypt.DecryptedBuffer.metadata_raw.fget(_PLAINTEXT),
    }
    for what, call in calls.items():
        with pytest.raises(TypeError) as ei:
            call()
        assert not leaks(ei.value), (what, leaks(ei.value))
    assert len(buf) == len(_PLAINTEXT) and not buf.closed  # none of the refused calls did anything
    buf.close()


def _native_classes() -> list[type]:
    """The classes of the public API that are defined by the extension (their methods are pybind11's)."""
    out = []
    for name in modelcrypt.__all__:
        obj = getattr(modelcrypt, name)
        if isinstance(obj, type) and obj.__module__.startswith("modelcrypt._core") and obj not in out:
            out.append(obj)
    return out


def test_native_classes_never_echo_their_arguments():
    """Every callable of every extension class in the public API (SigningKey.from_private_bytes,
    X25519Identity.from_text, ... and their instances' methods), called with the sentinel key and
    plaintext as too many positional arguments and as an unknown keyword: a TypeError (or another
    error) that shows neither (pybind11's "Invoked with: ..." would show both)."""
    classes = _native_classes()
    assert modelcrypt.SigningKey in classes and modelcrypt.Identity in classes
    instances = {modelcrypt.SigningKey: modelcrypt.generate_signing_key(), modelcrypt.Identity: modelcrypt.generate_identity()}
    checked = 0
    for cls in classes:
        owners = [cls] + ([instances[cls]] if cls in instances else [])
        for owner in owners:
            for name in dir(cls):
                if name.startswith("_") and name not in ("__len__", "__enter__", "__exit__"):
                    continue
                attr = getattr(owner, name, None)
                if not callable(attr):
                    continue
                for call in (lambda: attr(key(), plaintext(), key(), plaintext(), key()),
                             lambda: attr(key(), sentinel=plaintext()),
                             lambda: attr(data=key(), text=plaintext(), source=key())):
                    try:
                        call()
                    except Exception as exc:  # noqa: BLE001 - any error, as long as it holds no secret
                        assert not leaks(exc), (cls.__name__, name, leaks(exc))
                    checked += 1
    assert checked >= 30
