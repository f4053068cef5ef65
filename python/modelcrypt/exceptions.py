"""The exceptions modelcrypt raises. One small flat family under ModelCryptError.

Argument errors are ordinary Python exceptions: TypeError for a wrong type, ValueError for a bad
value (key length, mode, chunk size, dst == src), OSError subclasses (FileNotFoundError, ...) for
the operating system's errors.
"""

__all__ = [
    "ModelCryptError",
    "KeyMismatchError",
    "AuthenticationError",
    "FormatError",
    "UnsupportedVersionError",
    "SignatureError",
]


class ModelCryptError(Exception):
    """Base class of every modelcrypt-specific error."""


class KeyMismatchError(ModelCryptError):
    """The key is not the key the file was encrypted with (checked before any bulk decryption)."""


class AuthenticationError(ModelCryptError):
    """The data failed authentication: it was modified, truncated, reordered or extended.

    No plaintext is ever handed out when this is raised.
    """


class FormatError(ModelCryptError):
    """The input is not a well-formed modelcrypt file (bad magic, truncated header, field out of range)."""


class UnsupportedVersionError(FormatError):
    """A well-formed header names a format version or algorithm this build does not support."""


class SignatureError(ModelCryptError):
    """Not signed, signed by an untrusted key, or changed since signing.

    Raised when trusted signers are required (``trusted_signers=``, ``--trust``) and the file has no
    valid publisher signature by one of them, or when a byte the signature covers has changed.
    """


class InsecureKeyFileWarning(UserWarning):
    """A key file grants permissions to group or others (its mode & 0o077 is not 0)."""


__all__.append("InsecureKeyFileWarning")


class InsecureFormatWarning(UserWarning):
    """A file was read from a legacy format with a known weakness (unauthenticated CBC/CTR/ECB, or
    PaddleX's fixed nonce). The message names the weakness; `modelcrypt migrate` fixes it."""


__all__.append("InsecureFormatWarning")


class SetMismatchError(AuthenticationError):
    """Files that were encrypted as one set (the shards of a checkpoint, an encrypted directory, a
    ModelCheckpoint series) do not form that set: a member from another save, a missing, duplicated,
    renamed or unlisted member, or a checkpoint whose file name disagrees with its authenticated step.
    Each member's set id, name and place are authenticated metadata (docs/FORMAT.md, "Sets")."""


__all__.append("SetMismatchError")


class KeyTextWarning(UserWarning):
    """A raw key's bytes are all printable text: hex or base64 key text passed as raw bytes (decode
    it with key_from_hex / key_from_base64 / read_key_file), or a password. The key is still used."""


__all__.append("KeyTextWarning")


class SourceReadError(ModelCryptError, OSError):
    """Reading an encrypted file from object storage or a URL failed: an HTTP error after the
    filesystem's retries, a timeout, a short body, a server that ignored a ``Range`` request. No
    plaintext is handed out."""


__all__.append("SourceReadError")


class SourceChangedError(SourceReadError):
    """The object changed while being read: a later range came from another version (ETag or version
    id) than the one pinned at the first read. Load it again."""


__all__.append("SourceChangedError")
