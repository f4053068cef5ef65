"""URLs on the command line (issue 17): `modelcrypt decrypt/verify/inspect URL` and `encrypt FILE -o
URL`, run as subprocesses against a real S3 server (moto's server mode, tests/s3_server.py) and the
Range-capable HTTP server of tests/test_http_source.py, both on 127.0.0.1. Storage options come
from MODELCRYPT_STORAGE_OPTIONS and --storage-option; secrets in them never reach a message."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

import modelcrypt
from s3_server import BUCKET
from s3_server import s3  # noqa: F401 (the fixture)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
MiB = 1 << 20
CHUNK = 64 * 1024
ENV = {k: v for k, v in os.environ.items() if not k.startswith("MODELCRYPT")}
ENV["PYTHONDONTWRITEBYTECODE"] = "1"
STORAGE = "MODELCRYPT_STORAGE_OPTIONS"


def mc(*args, options=None, env=None, text=True, timeout=300):
    """The CLI in a subprocess; ``options``: storage options given through MODELCRYPT_STORAGE_OPTIONS."""
    full = dict(ENV)
    if options is not None:
        full[STORAGE] = json.dumps(options)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "modelcrypt", *map(str, args)], capture_output=True, text=text,
                          env=full, stdin=subprocess.DEVNULL, timeout=timeout)


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def failed(r, code):
    assert r.returncode == code, f"exit {r.returncode} (want {code})\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert "Traceback" not in str(r.stderr)
    return r


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "k.key"
    path.write_text(KEY.hex() + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def other_key_file(tmp_path):
    path = tmp_path / "other.key"
    path.write_text(OTHER_KEY.hex() + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def plain():
    return os.urandom(37 * CHUNK + 1234)


def put(client, name, data):
    client.put_object(Bucket=BUCKET, Key=name, Body=data)
    return f"s3://{BUCKET}/{name}"


def get(client, name):
    return client.get_object(Bucket=BUCKET, Key=name)["Body"].read()


def tampered(blob, at):
    b = bytearray(blob)
    b[at] ^= 1
    return bytes(b)


def listing(path):
    return sorted(os.listdir(path))


# ------------------------------------------------------------------ decrypt


def test_decrypt_url_to_file_and_stdout(s3, tmp_path, key_file, plain):
    client, options = s3
    url = put(client, "dec/model.mcx", modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK))
    out = tmp_path / "out" / "model.bin"
    out.parent.mkdir()
    r = ok(mc("decrypt", url, "-o", out, "--key-file", key_file, options=options))
    assert out.read_bytes() == plain
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert listing(out.parent) == ["model.bin"]  # no temporary file left
    assert f"decrypted {url} -> {out}" in r.stderr
    # -o DIR/: the object's name without .mcx
    ok(mc("decrypt", url, "-o", f"{out.parent}/", "--key-file", key_file, options=options))
    assert (out.parent / "model").read_bytes() == plain
    # -o -: stdout
    r = ok(mc("decrypt", url, "-o", "-", "--key-file", key_file, options=options, text=False))
    assert r.stdout == plain
    # an existing destination: --force replaces it
    failed(mc("decrypt", url, "-o", out, "--key-file", key_file, options=options), 2)
    out.write_bytes(b"old")
    ok(mc("decrypt", url, "-o", out, "--key-file", key_file, "--force", options=options))
    assert out.read_bytes() == plain


def test_decrypt_tampered_object_leaves_nothing(s3, tmp_path, key_file, plain):
    client, options = s3
    blob = modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK)
    url = put(client, "dec/tampered.mcx", tampered(blob, len(blob) - 5 * CHUNK))  # a late chunk
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    r = failed(mc("decrypt", url, "-o", out_dir / "m.bin", "--key-file", key_file, options=options), 1)
    assert f"modelcrypt: error: {url}: authentication failed in chunk" in r.stderr
    assert listing(out_dir) == []  # no destination, no temporary file
    # an existing destination stays as it was, with --force too
    (out_dir / "m.bin").write_bytes(b"old contents")
    failed(mc("decrypt", url, "-o", out_dir / "m.bin", "--key-file", key_file, "--force", options=options), 1)
    assert listing(out_dir) == ["m.bin"] and (out_dir / "m.bin").read_bytes() == b"old contents"
    # stdout: the blocks before the modified chunk were authentic; exit 1 says the output is incomplete
    r = failed(mc("decrypt", url, "-o", "-", "--key-file", key_file, options=options, text=False), 1)
    assert len(r.stdout) < len(plain)


def test_decrypt_wrong_key_is_the_key_mismatch_error(s3, tmp_path, key_file, other_key_file, plain):
    client, options = s3
    blob = modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK)
    url = put(client, "dec/wrongkey.mcx", blob)
    local = tmp_path / "local.mcx"
    local.write_bytes(blob)
    out = tmp_path / "out.bin"
    r = failed(mc("decrypt", url, "-o", out, "--key-file", other_key_file, options=options), 1)
    want = failed(mc("decrypt", local, "-o", out, "--key-file", other_key_file), 1)
    assert "wrong key" in r.stderr
    assert r.stderr.replace(url, "FILE") == want.stderr.replace(str(local), "FILE")  # as for a local file
    assert not out.exists() and listing(tmp_path) == sorted(["k.key", "other.key", "local.mcx"])


def test_decrypt_trust_checks_the_signature_first(s3, tmp_path, key_file, plain):
    client, options = s3
    signing = modelcrypt.signing.generate_signing_key()
    signed = modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK, signing_key=signing)
    good = put(client, "dec/signed.mcx", signed)
    changed = put(client, "dec/signed-changed.mcx", tampered(signed, len(signed) // 2))
    unsigned = put(client, "dec/unsigned.mcx", modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK))
    trust = ["--trust", signing.public_key]
    out = tmp_path / "out.bin"
    ok(mc("decrypt", good, "-o", out, "--key-file", key_file, *trust, options=options))
    assert out.read_bytes() == plain
    out.unlink()
    r = failed(mc("decrypt", unsigned, "-o", out, "--key-file", key_file, *trust, options=options), 1)
    assert "not signed" in r.stderr and not out.exists()
    r = failed(mc("decrypt", changed, "-o", out, "--key-file", key_file, *trust, options=options), 1)
    assert "signed hash" in r.stderr and listing(tmp_path) == ["k.key"]
    # stdout: the whole object's signature is checked before the first byte is written
    r = failed(mc("decrypt", changed, "-o", "-", "--key-file", key_file, *trust, options=options, text=False), 1)
    assert r.stdout == b""
    another = modelcrypt.signing.generate_signing_key().public_key
    r = failed(mc("decrypt", good, "-o", "-", "--key-file", key_file, "--trust", another, options=options,
                  text=False), 1)
    assert r.stdout == b""


RSS_CHILD = r"""
import json, sys
import modelcrypt, modelcrypt.cli, s3fs, fsspec, botocore

def status(field):  # kB, from the kernel's accounting of this process
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets VmHWM (the peak RSS) to the current RSS
before = status("VmRSS")
rc = modelcrypt.cli.main(sys.argv[1:])
print(json.dumps({"rc": rc, "before_kib": before, "peak_kib": status("VmHWM")}))
"""


def _write_random(path, size):
    with open(path, "wb") as f:
        for _ in range(size // (16 * MiB)):
            f.write(os.urandom(16 * MiB))


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(16 * MiB):
            h.update(block)
    return h.digest()


def test_decrypt_url_memory_is_bounded(s3, tmp_path, key_file):
    """decrypt of 64 MiB and 256 MiB objects, each in a fresh CLI process: the peak RSS grows by about
    the same amount (the reader's window of two 32 MiB ranged requests, each briefly twice in the
    S3 client while its body is assembled, one 16 MiB block and its plaintext), not with the object.
    Measured 2026-12-03: 130-160 MiB for either size, depending on how the fetches overlap; the whole
    plaintext in memory would be 256 MiB more for the larger one."""
    client, options = s3
    growth = {}
    for mib in (64, 256):
        src = tmp_path / f"plain-{mib}.bin"
        _write_random(src, mib * MiB)
        url = f"s3://{BUCKET}/large/{mib}.mcx"
        modelcrypt.encrypt_file(src, url, KEY, storage_options=options)
        out = tmp_path / f"out-{mib}.bin"
        r = subprocess.run([sys.executable, "-c", RSS_CHILD, "decrypt", url, "-o", str(out), "--key-file",
                            str(key_file), "--no-fsync"], capture_output=True, text=True, timeout=600,
                           env=dict(ENV, **{STORAGE: json.dumps(options)}))
        assert r.returncode == 0, r.stderr
        figures = json.loads(r.stdout.splitlines()[-1])
        assert figures["rc"] == 0, r.stderr
        growth[mib] = (figures["peak_kib"] - figures["before_kib"]) * 1024
        print(f"peak RSS growth decrypting {mib} MiB from S3: {growth[mib] / MiB:.1f} MiB")
        assert _sha256(out) == _sha256(src)
        client.delete_object(Bucket=BUCKET, Key=f"large/{mib}.mcx")
        src.unlink()
        out.unlink()
    assert growth[256] < growth[64] + 64 * MiB  # 4x the object (192 MiB more), about the same memory
    assert growth[256] < 200 * MiB  # well under the object's 256 MiB


# ------------------------------------------------------------------ inspect, verify


def test_inspect_url(s3, tmp_path, key_file, other_key_file, plain):
    client, options = s3
    blob = modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK, metadata={"name": "m"})
    url = put(client, "insp/m.mcx", blob)
    local = tmp_path / "m.mcx"
    local.write_bytes(blob)
    fields = json.loads(ok(mc("inspect", url, "--json", options=options)).stdout)
    want = json.loads(ok(mc("inspect", local, "--json")).stdout)
    assert fields.pop("path") == url and want.pop("path") == str(local)
    assert fields == want and fields["metadata"] == {"name": "m"} and "authenticated" not in fields
    fields = json.loads(ok(mc("inspect", url, "--json", "--key-file", key_file, options=options)).stdout)
    assert fields["authenticated"] == "header" and fields["opened_by"] == "key"
    r = failed(mc("inspect", url, "--key-file", other_key_file, options=options), 1)
    assert "wrong key" in r.stderr
    # a modified header: authenticated with the key, it is refused (without, the fields are shown)
    bad = put(client, "insp/bad.mcx", tampered(blob, 100))
    failed(mc("inspect", bad, "--key-file", key_file, options=options), 1)
    r = failed(mc("inspect", put(client, "insp/not.mcx", b"hello" * 100), options=options), 1)
    assert "magic" in r.stderr
    r = failed(mc("inspect", f"s3://{BUCKET}/insp/missing.mcx", options=options), 3)
    assert "does not exist" in r.stderr


def test_verify_url(s3, tmp_path, key_file, plain):
    client, options = s3
    signing = modelcrypt.signing.generate_signing_key()
    blob = modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK, signing_key=signing)
    good = put(client, "ver/good.mcx", blob)
    bad = put(client, "ver/bad.mcx", tampered(blob, len(blob) // 3))
    longer = put(client, "ver/longer.mcx", blob + b"x")
    local = tmp_path / "good.mcx"
    local.write_bytes(blob)
    r = ok(mc("verify", good, local, "--key-file", key_file, options=options))
    assert r.stdout.splitlines() == [f"OK: {good}", f"OK: {local}"]
    r = failed(mc("verify", good, bad, longer, "--key-file", key_file, options=options), 1)
    lines = r.stdout.splitlines()
    assert lines[0] == f"OK: {good}"
    assert lines[1].startswith(f"FAILED: {bad}: authentication failed in chunk")
    assert lines[2].startswith(f"FAILED: {longer}: trailing data")
    # keyless, the publisher signature over the ciphertext
    trust = ["--trust", signing.public_key]
    r = ok(mc("verify", good, *trust, options=options))
    assert r.stdout.startswith(f"OK: {good} (signature by {signing.public_key}")
    r = failed(mc("verify", bad, *trust, options=options), 1)
    assert "does not match its signed hash" in r.stdout
    ok(mc("verify", good, *trust, "--key-file", key_file, options=options))
    failed(mc("verify", bad, *trust, "--key-file", key_file, options=options), 1)


def test_http_url_with_credentials_is_shown_without_them(tmp_path, key_file, plain):
    """http(s):// through fsspec (aiohttp): user:password@ never appears in any output."""
    pytest.importorskip("aiohttp")
    from test_http_source import _Server

    server = _Server()
    server.thread.start()
    try:
        blob = modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK)
        url = server.put("m.mcx", blob)
        server.put("bad.mcx", tampered(blob, len(blob) - 100))
        secret_url = url.replace("http://", "http://alice:pa55w0rd-zz@")
        out = tmp_path / "out.bin"
        r = ok(mc("decrypt", secret_url, "-o", out, "--key-file", key_file))
        assert out.read_bytes() == plain
        results = [r, ok(mc("verify", secret_url, "--key-file", key_file)), ok(mc("inspect", secret_url)),
                   failed(mc("verify", secret_url.replace("m.mcx", "bad.mcx"), "--key-file", key_file), 1),
                   failed(mc("decrypt", secret_url.replace("m.mcx", "missing.mcx"), "-o", out, "--force",
                             "--key-file", key_file), 3)]
        for r in results:
            assert "pa55w0rd" not in r.stdout + r.stderr and "alice" not in r.stdout + r.stderr
        assert f"OK: {url}" in results[1].stdout
        assert out.read_bytes() == plain  # the failed run left it as it was
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


# ------------------------------------------------------------------ encrypt


def test_encrypt_to_s3(s3, tmp_path, key_file, plain):
    client, options = s3
    src = tmp_path / "model.bin"
    src.write_bytes(plain)
    url = f"s3://{BUCKET}/enc/model.mcx"
    r = ok(mc("encrypt", src, "-o", url, "--key-file", key_file, "--chunk-size", "64KiB", "--metadata", "a=b",
              options=options))
    assert f"encrypted {src} -> {url}" in r.stderr
    blob = get(client, "enc/model.mcx")
    with modelcrypt.decrypt_bytes(blob, KEY) as buf:
        assert bytes(buf) == plain and buf.metadata == {"a": "b"}
    # an existing object is replaced only with --force
    src.write_bytes(plain[::-1])
    r = failed(mc("encrypt", src, "-o", url, "--key-file", key_file, options=options), 2)
    assert f"{url} exists; use --force" in r.stderr
    assert get(client, "enc/model.mcx") == blob
    ok(mc("encrypt", src, "-o", url, "--key-file", key_file, "--force", options=options))
    with modelcrypt.decrypt_bytes(get(client, "enc/model.mcx"), KEY) as buf:
        assert bytes(buf) == plain[::-1]
    # URL/: SRC's name + .mcx; then decrypted back through the CLI
    ok(mc("encrypt", src, "-o", f"s3://{BUCKET}/enc/dir/", "--key-file", key_file, options=options))
    out = tmp_path / "back.bin"
    ok(mc("decrypt", f"s3://{BUCKET}/enc/dir/model.bin.mcx", "-o", out, "--key-file", key_file, options=options))
    assert out.read_bytes() == plain[::-1]
    # a directory SRC is mirrored to local directories only
    (tmp_path / "tree").mkdir()
    r = failed(mc("encrypt", tmp_path / "tree", "-o", f"s3://{BUCKET}/enc/tree", "--key-file", key_file,
                  options=options), 2)
    assert "directory" in r.stderr


# ------------------------------------------------------------------ storage options


def test_storage_options_from_flag_and_env(s3, tmp_path, key_file, plain):
    client, options = s3
    url = put(client, "opt/m.mcx", modelcrypt.encrypt_bytes(plain, KEY, chunk_size=CHUNK))
    flags = []
    for name, value in options.items():
        flags += ["--storage-option", f"{name}={json.dumps(value) if not isinstance(value, str) else value}"]
    ok(mc("verify", url, "--key-file", key_file, *flags))  # the flag alone
    ok(mc("verify", url, "--key-file", key_file, options=options))  # the environment alone
    # the flag overrides the environment's entry (here: a closed port on 127.0.0.1)
    closed = dict(options, endpoint_url="http://127.0.0.1:9", config_kwargs={"retries": {"max_attempts": 1}})
    ok(mc("verify", url, "--key-file", key_file, "--storage-option", f"endpoint_url={options['endpoint_url']}",
          options=closed))
    r = failed(mc("verify", url, "--key-file", key_file, options=closed), 3)
    assert r.stdout.startswith(f"FAILED: object {url}:")
    r = failed(mc("inspect", url, "--storage-option", "endpoint_url=http://127.0.0.1:9",
                  "--storage-option", 'config_kwargs={"retries": {"max_attempts": 1}}', options=options), 3)
    assert f"object {url}" in r.stderr


def test_bad_storage_options_are_usage_errors(s3, tmp_path, key_file):
    client, options = s3
    url = f"s3://{BUCKET}/opt/none.mcx"
    r = failed(mc("inspect", url, "--storage-option", "hunter2-not-key-value", options=options), 2)
    assert "KEY=VALUE" in r.stderr and "hunter2" not in r.stderr
    r = failed(mc("inspect", url, "--storage-option", "=x", options=options), 2)
    r = failed(mc("inspect", url, env={STORAGE: '{"secret": "hunter2'}), 2)
    assert STORAGE in r.stderr and "hunter2" not in r.stderr
    r = failed(mc("inspect", url, env={STORAGE: '["hunter2"]'}), 2)
    assert "JSON object" in r.stderr and "hunter2" not in r.stderr
    r = failed(mc("inspect", tmp_path / "x.mcx", "--storage-option", "anon=true"), 2)
    assert "--storage-option applies to URLs" in r.stderr


def test_secret_storage_options_are_never_shown(s3, tmp_path, key_file):
    """botocore echoes a bad endpoint; a secret pasted there (or anywhere the client repeats it) is
    masked, as is every value under a secret-like name."""
    client, options = s3
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYzz"
    url = f"s3://{BUCKET}/opt/m.mcx"
    bad = dict(options, secret=secret, endpoint_url=secret)
    for r in (failed(mc("inspect", url, options=bad), 3),
              failed(mc("verify", url, "--key-file", key_file, options=bad), 3),
              failed(mc("inspect", url, "--storage-option", f"secret={secret}",
                        "--storage-option", f"endpoint_url={secret}", options=options), 3)):
        assert secret not in r.stdout + r.stderr
        assert "***" in r.stdout + r.stderr  # the message is there, the secret masked


# ------------------------------------------------------------------ what URLs cannot do


def test_commands_that_take_local_paths_refuse_urls(s3, tmp_path, key_file):
    client, options = s3
    url = put(client, "ref/m.mcx", modelcrypt.encrypt_bytes(b"x" * 1000, KEY))
    cases = [
        (("recipients", "add", url, "-r", modelcrypt.recipients.generate_identity().recipient,
          "--key-file", key_file), "recipients edits"),
        (("recipients", "list", url), "recipients"),
        (("migrate", url, "-o", tmp_path / "m", "--from-key-file", key_file, "--key-file", key_file), "migrate"),
        (("decrypt", url, "-o", f"s3://{BUCKET}/ref/plain", "--key-file", key_file), "not to a URL"),
        (("encrypt", url, "-o", tmp_path / "e.mcx", "--key-file", key_file), "local SRC"),
        (("decrypt", f"s3://{BUCKET}/ref/", "-o", tmp_path / "d", "--key-file", key_file), "not a directory"),
        (("decrypt", f"s3://{BUCKET}/ref", "-o", tmp_path / "d", "--key-file", key_file), "is a directory"),
        (("decrypt", url, "-o", tmp_path / "d", "--key-file", key_file, "--exclude", "*.x"), "--exclude"),
        (("verify", url, "--key-file", key_file, "--format", "auto"), "modelcrypt files only"),
    ]
    for argv, why in cases:
        r = failed(mc(*argv, options=options), 2)
        assert why in r.stderr, (argv, r.stderr)
        assert r.stderr.count("modelcrypt: error:") == 1
    assert listing(tmp_path) == ["k.key"]


def test_missing_filesystem_package_names_it(tmp_path, key_file):
    """gs:// needs gcsfs (not a test dependency): the message says what to install."""
    try:
        import gcsfs  # noqa: F401
        pytest.skip("gcsfs is installed")
    except ImportError:
        pass
    for argv in (("inspect", "gs://bucket/m.mcx"), ("decrypt", "gs://bucket/m.mcx", "-o", tmp_path / "o",
                                                     "--key-file", key_file)):
        r = failed(mc(*argv), 2)
        assert "gcsfs" in r.stderr and "pip install" in r.stderr
    assert listing(tmp_path) == ["k.key"]
