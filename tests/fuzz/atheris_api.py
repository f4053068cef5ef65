"""Atheris harness for modelcrypt's Python entry points (run by .ci/fuzz.sh; see README.md here).

Input layout: byte 0 picks the entry point, byte 1 the key/mode (or str/bytes for the key parsers),
bytes 2.. are the payload (a file image, or key text). For each entry point only the exceptions it
documents are expected; anything else propagates and atheris reports it as a crash:

  decrypt_bytes, load, verify, load_range    ModelCryptError (Format/Authentication/KeyMismatch/
                                             UnsupportedVersion) or ValueError (mode that does not
                                             match the file, range outside the plaintext)
  detect_format                              none (returns one of four names)
  inspect                                    ModelCryptError (FormatError)
  key_from_hex, key_from_base64,             ValueError, TypeError
  read_key_file, key_from_env
A successful decryption must also yield a usable buffer: bytes(), .metadata (FormatError allowed:
metadata is opaque bytes to the core), close().

    python tests/fuzz/atheris_api.py [libFuzzer flags] [corpus dir]
"""

import os
import sys
import tempfile
import warnings

import atheris

with atheris.instrument_imports(include=["modelcrypt"]):
    import modelcrypt
    from modelcrypt import keys as mc_keys

KEYS = (bytes(range(32)), b"0123456789ABCDEF", bytes(range(1, 33)), bytes(range(0x40, 0x50)))
MODES = ("AES-GCM", "AES-CBC", "SM4-CBC", "paddle:AES_GCM_NoPadding", "paddle:AES_CTR_NoPadding",
         "paddle:AES_CBC_PKCSPadding", "paddle:AES_ECB_PKCSPadding", "paddle:AES_GCM_NoPadding:iv=96:tag=32")
FORMATS = ("modelcrypt", "mindspore", "paddlex", "unknown")
DECRYPT_ERRORS = (modelcrypt.ModelCryptError, ValueError)
KEY_ERRORS = (ValueError, TypeError)

_dir = tempfile.mkdtemp(prefix="mc_atheris_")
PATH = os.path.join(_dir, "input.bin")
ENV = "MODELCRYPT_FUZZ_KEY"


def _write(payload: bytes) -> str:
    with open(PATH, "wb") as f:
        f.write(payload)
    os.chmod(PATH, 0o600)
    return PATH


def _use(buf) -> None:
    try:
        data = bytes(buf)
        assert len(data) == len(buf)
        try:
            md = buf.metadata
            assert isinstance(md, dict)
        except modelcrypt.FormatError:
            pass
    finally:
        buf.close()


def _key_text(sel: int, payload: bytes):
    return payload.decode("latin-1") if sel & 1 else payload


def _run(target: int, sel: int, payload: bytes) -> None:
    key, mode = KEYS[sel % len(KEYS)], MODES[(sel >> 2) % len(MODES)]
    if target == 0:
        _use(modelcrypt.decrypt_bytes(payload, key, mode, format="auto", threads=1))
    elif target == 1:
        fmt = modelcrypt.detect_format(_write(payload))
        assert fmt in FORMATS, fmt
    elif target == 2:
        info = modelcrypt.inspect(_write(payload))
        assert info.file_length == len(payload)
        try:
            _ = info.metadata  # (the property parses the metadata)
        except modelcrypt.FormatError:  # unauthenticated, opaque bytes: may be anything
            pass
    elif target == 3:
        _use(modelcrypt.load(_write(payload), key, mode, format="auto", threads=1))
    elif target == 4:
        modelcrypt.verify(_write(payload), key, mode, format="auto", threads=1)
    elif target == 5:
        _use(modelcrypt.load_range(_write(payload), key, "AES-GCM", offset=sel * 97, length=(sel >> 4) * 1031, threads=1))
    elif target == 6:
        assert len(mc_keys.key_from_hex(_key_text(sel, payload))) in (16, 24, 32)
    elif target == 7:
        assert len(mc_keys.key_from_base64(_key_text(sel, payload))) in (16, 24, 32)
    elif sel & 1 and b"\0" not in payload:  # environment values cannot hold NUL
        os.environ[ENV] = payload.decode("latin-1")
        assert len(mc_keys.key_from_env(ENV)) in (16, 24, 32)
    else:
        assert len(mc_keys.read_key_file(_write(payload))) in (16, 24, 32)


# What each entry point may raise on hostile input (anything else is reported as a crash).
EXPECTED = {0: DECRYPT_ERRORS, 1: (), 2: (modelcrypt.ModelCryptError,), 3: DECRYPT_ERRORS, 4: DECRYPT_ERRORS,
            5: DECRYPT_ERRORS, 6: KEY_ERRORS, 7: KEY_ERRORS, 8: KEY_ERRORS}


def TestOneInput(data: bytes) -> None:
    if len(data) < 2:
        return
    target = data[0] % 9
    try:
        _run(target, data[1], data[2:])
    except EXPECTED[target]:
        pass


def main() -> None:
    warnings.simplefilter("ignore")  # InsecureFormatWarning / InsecureKeyFileWarning are expected
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
