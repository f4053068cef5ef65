"""OpenSSF model signing of encrypted model directories, with the ecosystem's own package.

An encrypted directory (``modelcrypt encrypt DIR -o DIR.enc/``) is signed as it is shipped: the
``model-signing`` package (sigstore/model-transparency) hashes every file of it — the ciphertext
members and the encrypted ``.modelcrypt-manifest`` — into an in-toto statement and signs that with
an elliptic-curve private key, offline (no Sigstore, no network). The result is a standard
model-signing signature bundle (a Sigstore bundle holding a DSSE envelope), so registries and CI
check it without modelcrypt and without the model key::

    model_signing verify key DIR.enc --signature DIR.enc.sig --public_key ec_public.pem

The signature lives beside the directory, ``DIR.enc.sig`` by default: a file inside the directory
would not be listed in its manifest, and modelcrypt's own readers refuse such a file (the
model_signing CLI likewise writes ``model.sig`` into the current directory unless told otherwise).

This proves the integrity and provenance of the encrypted bytes; it does not replace the publisher
signatures modelcrypt itself writes into each file. Needs ``pip install "modelcrypt[signing]"``.
"""

from __future__ import annotations

import ast
import base64
import binascii
import errno
import json
import os
import pathlib
from typing import Any, Optional, Union

from . import _sets
from ._api import BytesLike, StrPath, _check_bool, _fspath, inspect, is_encrypted
from ._atomic import fsync_directory
from .exceptions import SignatureError
from .keys import _path_shown, wipe

__all__ = ["sign_directory", "verify_directory_signature", "default_signature_path"]

INSTALL_HINT = 'pip install "modelcrypt[signing]"'
SIGNATURE_SUFFIX = ".sig"
SUPPORTED_CURVES = ("secp256r1", "secp384r1", "secp521r1")  # the curves model_signing signs with
Password = Union[str, BytesLike, None]


def _model_signing() -> Any:
    """The model_signing package, or an ImportError that says how to install it."""
    try:
        import model_signing
        import model_signing.hashing
        import model_signing.signing
        import model_signing.verifying
    except ImportError as exc:  # model_signing itself, or what it imports (pyopenssl: "OpenSSL")
        missing = exc.name or "model_signing"
        raise ImportError(f"signing encrypted directories needs the model-signing and pyopenssl packages "
                          f"({missing!r} could not be imported): {INSTALL_HINT}", name=exc.name) from exc
    return model_signing


def _hashing_config(ms: Any, ignored: list[str]) -> Any:
    """Every file of the directory, SHA-256 per file, no symlinks; git files are not left out (an
    encrypted directory's .gitattributes is a member like any other)."""
    return (ms.hashing.Config()
            .use_file_serialization(hashing_algorithm="sha256", allow_symlinks=False)
            .set_ignored_paths(paths=ignored, ignore_git_paths=False))


def _directory(directory: StrPath) -> str:
    root = os.fsdecode(_fspath(directory, "directory"))
    if not os.path.isdir(root):
        if not os.path.lexists(root):
            raise FileNotFoundError(f"{root}: no such directory")
        raise NotADirectoryError(f"{root} is not a directory")
    return root


def default_signature_path(directory: StrPath) -> pathlib.Path:
    """Where a directory's signature goes unless told otherwise: beside it, its name plus ``.sig``
    (``models/bert.enc/`` -> ``models/bert.enc.sig``)."""
    given = os.path.normpath(os.fsdecode(_fspath(directory, "directory")))
    path = pathlib.Path(given if os.path.basename(given) not in ("", ".", "..") else os.path.abspath(given))
    if not path.name:
        raise ValueError(f"{path}: give signature= for a signature of the root directory")
    return path.with_name(path.name + SIGNATURE_SUFFIX)


def _signature_path(root: str, signature: Optional[StrPath]) -> tuple[pathlib.Path, Optional[str]]:
    """(signature path, its path relative to ``root`` when it lies inside the directory)."""
    sig = (default_signature_path(root) if signature is None
           else pathlib.Path(os.fsdecode(_fspath(signature, "signature"))))
    real = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(sig))), sig.name)
    rel = os.path.relpath(real, os.path.realpath(root))
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return sig, None
    return sig, rel  # "." when it is the directory itself


def _check_encrypted_directory(root: str) -> None:
    """A directory modelcrypt encrypted has its encrypted manifest at the top (checked without the
    key: the manifest's header says what it is; the signature covers its bytes)."""
    manifest = os.path.join(root, _sets.MANIFEST_NAME)
    hint = (f"refusing to sign plaintext: encrypt it first (modelcrypt encrypt {root} -o {root.rstrip('/')}.enc/), "
            "or pass allow_plaintext=True (CLI: --allow-plaintext) to sign it as it is")
    if not os.path.isfile(manifest) or not is_encrypted(manifest):
        raise ValueError(f"{root} is not an encrypted modelcrypt directory (no {_sets.MANIFEST_NAME}); {hint}")
    if inspect(manifest).metadata.get(_sets.KIND) != "manifest":
        raise ValueError(f"{root}: {manifest} is not a modelcrypt manifest; {hint}")


def _read_pem(path: str) -> bytearray:
    """A key file's bytes. An OSError names the file as key-file errors do (keys._path_shown: a
    path that looks like key text, i.e. a key given in place of its path, is not repeated)."""
    failure = None
    try:
        f = open(path, "rb", buffering=0)
    except OSError as exc:  # re-raised outside this block: no chained original quoting the path
        failure = (exc.errno, exc.strerror or "cannot open")
    if failure is not None:
        raise OSError(failure[0], failure[1], _path_shown(path))
    with f:
        return bytearray(f.read())


def _pem_is_encrypted(pem: BytesLike) -> bool:
    return b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in pem or b"Proc-Type: 4,ENCRYPTED" in pem


def private_key_is_encrypted(path: StrPath) -> bool:
    """Whether the PEM private key file at ``path`` needs a password (for the CLI's prompt)."""
    pem = _read_pem(os.fsdecode(_fspath(path, "private_key")))
    try:
        return _pem_is_encrypted(pem)
    finally:
        wipe(pem)


def _check_curve(key: Any, path: str, what: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise ValueError(f"{path}: not an elliptic-curve {what} (found {type(key).__name__}); model signing takes "
                         f"a P-256, P-384 or P-521 key")
    if public.curve.name not in SUPPORTED_CURVES:
        raise ValueError(f"{path}: elliptic-curve {what} on {public.curve.name}; model signing takes a P-256, "
                         "P-384 or P-521 key (secp256r1, secp384r1, secp521r1)")


def _check_private_key(path: str, password: Optional[bytearray]) -> bool:
    """Checks that ``path`` holds a usable EC private key (PEM), so that errors name the file and
    say what is wrong; returns whether the key is encrypted. Neither the key nor the password
    appears in any message."""
    from cryptography.hazmat.primitives import serialization

    pem = _read_pem(path)
    path = _path_shown(path)
    try:
        if b"-----BEGIN" not in pem:
            raise ValueError(f"{path}: not a PEM file; the private key must be a PEM EC private key "
                             "(-----BEGIN PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)")
        if b"PRIVATE KEY-----" not in pem:
            what = "a public key" if b"PUBLIC KEY-----" in pem else "not a private key"
            raise ValueError(f"{path}: {what}; signing needs the EC private key (its public key is what "
                             "verifying takes)")
        encrypted = _pem_is_encrypted(pem)
        if encrypted and password is None:
            raise ValueError(f"{path}: the private key is encrypted; give its password (password=...; CLI: "
                             "--password-env VAR, or the prompt in a terminal)")
        try:
            # (cryptography takes any bytes-like password; a bytearray can be wiped)
            key = serialization.load_pem_private_key(pem, password if encrypted else None)  # type: ignore[arg-type]
        except ValueError:
            raise ValueError(f"{path}: " + ("wrong password for the encrypted private key (or a damaged key)"
                                            if encrypted else "not a readable PEM private key")) from None
        except Exception as exc:  # UnsupportedAlgorithm and the like
            raise ValueError(f"{path}: not a usable private key ({type(exc).__name__})") from None
        _check_curve(key, path, "private key")
        return encrypted
    finally:
        wipe(pem)


def _check_public_key(path: str) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = _read_pem(path)
    path = _path_shown(path)
    try:
        if b"PRIVATE KEY-----" in pem:
            raise ValueError(f"{path}: a private key; verifying takes the signer's public key (keep the private "
                             "key with the signer)")
        if b"-----BEGIN PUBLIC KEY-----" not in pem:
            raise ValueError(f"{path}: not a PEM public key (-----BEGIN PUBLIC KEY-----)")
        try:
            key = serialization.load_pem_public_key(bytes(pem))
        except Exception as exc:
            raise ValueError(f"{path}: not a readable PEM public key ({type(exc).__name__})") from None
        _check_curve(key, path, "public key")
    finally:
        wipe(pem)


def _password_bytes(password: Password) -> Optional[bytearray]:
    if password is None:
        return None
    if isinstance(password, str):
        return bytearray(password.encode("utf-8"))
    if isinstance(password, (bytes, bytearray, memoryview)):
        return bytearray(password)
    raise TypeError(f"password must be str or bytes-like, not {type(password).__name__}")


def sign_directory(directory: StrPath, private_key: StrPath, *, signature: Optional[StrPath] = None,
                   password: Password = None, allow_plaintext: bool = False) -> pathlib.Path:
    """Sign the encrypted directory ``directory`` with the elliptic-curve private key in the PEM
    file ``private_key`` (P-256, P-384 or P-521; ``password`` if the PEM is encrypted), as
    ``model_signing`` signs a model: every file (ciphertext members and the encrypted manifest),
    SHA-256 per file, in a standard model-signing signature bundle. Offline: no Sigstore, no
    network. The bundle is written atomically to ``signature`` (default: beside the directory,
    ``DIR.sig``; a path inside the directory is refused, as modelcrypt's readers refuse files its
    manifest does not list) and that path is returned. A directory that is not an encrypted
    modelcrypt directory (no ``.modelcrypt-manifest``) is refused (``ValueError``) unless
    ``allow_plaintext=True``. A missing key file is ``FileNotFoundError``, an unusable one
    (not PEM, a public key, not EC, encrypted without or with a wrong password) ``ValueError``
    naming the file; the key and password are never in a message."""
    ms = _model_signing()
    _check_bool(allow_plaintext, "allow_plaintext")
    root = _directory(directory)
    if not allow_plaintext:
        _check_encrypted_directory(root)
    sig, inside = _signature_path(root, signature)
    if inside is not None:
        raise ValueError(f"signature {sig} lies inside {root}: modelcrypt's readers refuse a file the directory's "
                         "manifest does not list; write it beside the directory "
                         f"(default: {default_signature_path(root)})")
    key_path = os.fsdecode(_fspath(private_key, "private_key"))
    secret = _password_bytes(password)
    try:
        encrypted = _check_private_key(key_path, secret)
        config = ms.signing.Config().use_elliptic_key_signer(
            private_key=key_path, password=bytes(secret) if encrypted and secret is not None else None)
    finally:
        if secret is not None:
            wipe(secret)
    config.set_hashing_config(_hashing_config(ms, []))
    parent = os.path.dirname(os.path.abspath(sig))
    if not os.path.isdir(parent):
        raise FileNotFoundError(errno.ENOENT, "the signature's directory does not exist",
                                os.path.dirname(sig) or parent)
    tmp = pathlib.Path(parent, f".{sig.name}.mctmp-{os.urandom(6).hex()}")
    try:
        config.sign(root, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, sig)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    fsync_directory(parent)
    return sig


def _signer_ignored_paths(bundle: bytes) -> list[str]:
    """The paths the (verified) signature's manifest leaves out of the model, as its signer chose."""
    doc = json.loads(bundle.decode("utf-8"))
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"], validate=True))
    ignored = statement["predicate"]["serialization"].get("ignore_paths", [])
    return [str(p) for p in ignored]


def _diff_text(text: str) -> str:
    """model_signing's list of differences ("['Extra files found ...', ...]") as plain text."""
    try:
        items = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    if isinstance(items, list) and all(isinstance(i, str) for i in items):
        return "; ".join(items)
    return text


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def verify_directory_signature(directory: StrPath, public_key: StrPath, *,
                               signature: Optional[StrPath] = None) -> None:
    """Check that ``directory`` is exactly what the holder of the private key paired with the PEM
    public key ``public_key`` signed with :func:`sign_directory` (or ``model_signing sign key``):
    the signature bundle at ``signature`` (default: beside the directory, ``DIR.sig``) verifies
    with that key and every file of the directory is in it with the same SHA-256, none missing,
    none added, none renamed. Writes nothing and needs no model key. Raises
    :class:`~modelcrypt.SignatureError` when the directory is not signed (no signature file, not
    a signature bundle), signed by another key, or changed since signing; a missing or unusable
    public key file is ``FileNotFoundError`` / ``ValueError`` naming it."""
    ms = _model_signing()
    root = _directory(directory)
    sig, inside = _signature_path(root, signature)
    key_path = os.fsdecode(_fspath(public_key, "public_key"))
    _check_public_key(key_path)
    if not sig.is_file():
        if os.path.lexists(sig):
            raise SignatureError(f"{root}: not signed: {sig} is not a file")
        raise SignatureError(f"{root}: not signed: no signature file {sig}")
    ignored = [] if inside is None else [inside]
    config = ms.verifying.Config().use_elliptic_key_verifier(public_key=key_path)
    config.set_hashing_config(_hashing_config(ms, ignored))
    before = sig.read_bytes()
    try:
        config.verify(root, sig)
    except (OSError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - whatever model_signing refuses is not verified
        raise _signature_error(root, sig, _path_shown(key_path), exc) from None
    if sig.read_bytes() != before:  # what is read below must be the bundle model_signing verified
        raise SignatureError(f"{root}: {sig} changed while it was being verified")
    try:
        left_out = _signer_ignored_paths(before)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:  # UnicodeDecodeError too
        raise SignatureError(f"{root}: {sig}: unreadable statement in the signature bundle ({_why(exc)})") from None
    for rel in left_out:
        if rel not in ignored and os.path.lexists(os.path.join(root, rel)):
            raise SignatureError(f"{root}: {rel!r} is not covered by the signature (its signer left it out)")


def _signature_error(root: str, sig: pathlib.Path, key_path: str, exc: BaseException) -> SignatureError:
    from cryptography.exceptions import InvalidSignature

    message = " ".join(str(exc).split())
    if isinstance(exc, InvalidSignature):
        return SignatureError(f"{root}: the signature in {sig} does not verify with {key_path}: the bundle was "
                              "modified, or signed by another key")
    if message.startswith("Key mismatch"):
        return SignatureError(f"{root}: {sig} was signed by another key than {key_path} (not a trusted signer)")
    if message.startswith("Signature mismatch"):
        detail = _diff_text(message[len("Signature mismatch"):].lstrip(": "))
        return SignatureError(f"{root}: changed since signing: {detail}" if detail
                              else f"{root}: changed since signing")
    if "symlink" in message:
        return SignatureError(f"{root}: changed since signing: {message}")
    if isinstance(exc, (ValueError, KeyError, TypeError)) and not message.startswith("Expected"):
        return SignatureError(f"{root}: {sig} is not a readable model-signing signature bundle ({_why(exc)})")
    return SignatureError(f"{root}: signature verification failed ({_why(exc)})")


verify_directory = verify_directory_signature  # the name this module's contract uses; see __init__.py
