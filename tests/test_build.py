"""Properties of the built extension: symbol hygiene, static OpenSSL, no
interference with other OpenSSL users in the same process, no openssl.cnf.

Everything that loads other libraries or changes OPENSSL_CONF runs in a fresh
subprocess so the state of this pytest process does not matter.
"""

import ctypes.util
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

import modelcrypt
import modelcrypt._core

EXT = modelcrypt._core.__file__
# The extension holds only the bindings; the core and the one copy of OpenSSL are in libmodelcrypt.so
# (the C API library of the wheel), which it links against.
LIB = os.path.join(os.path.dirname(EXT), "lib", "libmodelcrypt.so")
CRYPTOGAMS_IDS = (b"AES-NI GCM module for x86_64, CRYPTOGAMS by <appro@openssl.org>",
                  b"GHASH for x86_64, CRYPTOGAMS by <appro@openssl.org>")
OPENSSL_PREFIXES = ("EVP_", "OPENSSL_", "SSL_", "CRYPTO_", "ERR_", "BIO_", "OSSL_",
                    "HMAC", "AES_", "SHA256", "RAND_", "X509", "BN_", "EC_", "ossl_")


def _tool(name):
    path = shutil.which(name)
    assert path, "%s (binutils) is required for this test" % name
    return path


def _run_py(code, tmp_path, env_extra=None, timeout=120):
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if env_extra:
        env.update(env_extra)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=str(tmp_path),
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, "child failed (rc=%d)\nstdout:\n%s\nstderr:\n%s" % (
        proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout


# ------------------------------------------------------------ (a) symbols


def _defined_dynamic_symbols():
    out = subprocess.run([_tool("nm"), "-D", "--defined-only", EXT],
                         capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[-1], parts[-2]
        syms[name.split("@")[0]] = kind
    return syms


def test_exports_only_pyinit():
    syms = _defined_dynamic_symbols()
    assert set(syms) == {"PyInit__core"}, "unexpected exported symbols: %s" % sorted(
        set(syms) - {"PyInit__core"})
    assert syms["PyInit__core"] == "T"


def test_no_openssl_symbols_exported():
    syms = _defined_dynamic_symbols()
    leaked = sorted(s for s in syms if s.startswith(OPENSSL_PREFIXES))
    assert leaked == []


def test_openssl_is_linked_in():
    """Counter-check for the two tests above and (d): the AES-GCM code really is in
    libmodelcrypt.so (as local symbols or inlined code), it did not just vanish."""
    with open(LIB, "rb") as f:
        blob = f.read()
    # OpenSSL's x86_64 assembly modules carry these identification strings.
    assert any(i in blob for i in CRYPTOGAMS_IDS)
    assert b"AES-256-GCM" in blob or b"id-aes256-GCM" in blob


def test_openssl_is_in_the_wheel_once():
    """The extension carries no OpenSSL of its own: it neither contains OpenSSL's code nor imports
    any OpenSSL symbol; it needs libmodelcrypt.so, found through $ORIGIN/lib."""
    with open(EXT, "rb") as f:
        blob = f.read()
    assert not any(i in blob for i in CRYPTOGAMS_IDS)
    undefined = subprocess.run([_tool("nm"), "-D", "--undefined-only", EXT], capture_output=True, text=True,
                               check=True).stdout.split()
    assert [s for s in undefined if s.startswith(OPENSSL_PREFIXES)] == []
    dyn = subprocess.run([_tool("readelf"), "-d", EXT], capture_output=True, text=True, check=True).stdout
    assert "Shared library: [libmodelcrypt.so]" in dyn, dyn
    assert re.search(r"\((RUNPATH|RPATH)\)\s+Library r(un)?path: \[\$ORIGIN/lib\]", dyn), dyn


def test_extension_loads_the_packaged_library(tmp_path):
    """At run time the extension maps exactly the libmodelcrypt.so next to it (the one
    modelcrypt.get_lib_dir() names), not another copy."""
    out = _run_py("""
        import modelcrypt
        key = modelcrypt.generate_key()
        with modelcrypt.decrypt_bytes(modelcrypt.encrypt_bytes(b"x" * 100, key), key) as b:
            assert bytes(b) == b"x" * 100
        libs = sorted({l.split()[-1] for l in open("/proc/self/maps").read().splitlines()
                       if "libmodelcrypt" in l})
        print("LIBS", libs, modelcrypt.get_lib_dir())
        """, tmp_path)
    assert "LIBS %r %s" % ([os.path.realpath(LIB)], modelcrypt.get_lib_dir()) in out, out
    assert os.path.dirname(os.path.realpath(LIB)) == os.path.realpath(modelcrypt.get_lib_dir())


# ------------------------------------------------------------ (d) no dynamic libcrypto


@pytest.mark.parametrize("path", [EXT, LIB], ids=["extension", "libmodelcrypt"])
def test_no_dt_needed_on_libcrypto_or_libssl(path):
    out = subprocess.run([_tool("readelf"), "-d", path], capture_output=True, text=True,
                         check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)
    bad = [n for n in needed if n.startswith(("libcrypto", "libssl"))]
    assert bad == [], "DT_NEEDED: %r" % needed


@pytest.mark.parametrize("path", [EXT, LIB], ids=["extension", "libmodelcrypt"])
def test_ldd_does_not_resolve_libcrypto(path):
    ldd = shutil.which("ldd")
    assert ldd, "ldd is required"
    out = subprocess.run([ldd, path], capture_output=True, text=True).stdout
    assert "libcrypto" not in out and "libssl" not in out, out


def test_libcrypto_not_mapped_at_runtime(tmp_path):
    """Importing and using modelcrypt maps no shared libcrypto/libssl into a
    process that has no other OpenSSL user (_hashlib/_ssl are blocked)."""
    out = _run_py("""
        import sys
        sys.modules["_hashlib"] = None   # keep Python's own OpenSSL binding out
        sys.modules["_ssl"] = None
        import modelcrypt
        key = modelcrypt.generate_key()
        blob = modelcrypt.encrypt_bytes(b"x" * 10000, key)
        with modelcrypt.decrypt_bytes(blob, key) as b:
            assert bytes(b) == b"x" * 10000
        maps = open("/proc/self/maps").read()
        libs = sorted({l.split()[-1] for l in maps.splitlines()
                       if "libcrypto" in l or "libssl" in l})
        print("LIBS", libs)
        """, tmp_path)
    assert "LIBS []" in out, out


# ------------------------------------------------------------ (b) coexistence

_COEXIST_BODY = """
def use_modelcrypt():
    import modelcrypt
    from modelcrypt._core import primitives
    key = modelcrypt.generate_key(32)
    data = os.urandom(50000)
    blob = modelcrypt.encrypt_bytes(data, key, chunk_size=4096, metadata={"k": "v"})
    with modelcrypt.decrypt_bytes(blob, key) as b:
        assert bytes(b) == data and b.metadata == {"k": "v"}
    p = os.path.join(os.getcwd(), "m.enc")
    with open("m.bin", "wb") as f:
        f.write(data)
    modelcrypt.encrypt_file("m.bin", p, key, chunk_size=4096)
    with modelcrypt.load(p, key) as b:
        assert bytes(b) == data
    return primitives

def use_cryptography():
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives import hashes, hmac
    key = AESGCM.generate_key(bit_length=256)
    a = AESGCM(key)
    nonce = os.urandom(12)
    ct = a.encrypt(nonce, b"hello world" * 100, b"aad")
    assert a.decrypt(nonce, ct, b"aad") == b"hello world" * 100
    h = hmac.HMAC(b"k" * 32, hashes.SHA256())
    h.update(b"msg")
    return AESGCM, h.finalize()

def cross_check(primitives, AESGCM, cry_hmac):
    # Same inputs through both OpenSSL copies must agree.
    key, iv, aad, pt = b"\\x01" * 32, b"\\x02" * 12, b"aad", os.urandom(1000)
    ct, tag = primitives.aes_gcm_encrypt(key, iv, aad, pt)
    assert AESGCM(key).encrypt(iv, pt, aad) == bytes(ct) + bytes(tag)
    assert bytes(primitives.aes_gcm_decrypt(key, iv, aad, AESGCM(key).encrypt(iv, pt, aad)[:-16],
                                            AESGCM(key).encrypt(iv, pt, aad)[-16:])) == pt
    assert bytes(primitives.hmac_sha256(b"k" * 32, b"msg")) == cry_hmac
"""


@pytest.mark.parametrize("order", ["modelcrypt-first", "cryptography-first",
                                   "system-libcrypto-global-first"])
def test_coexists_with_other_openssl(order, tmp_path):
    if order == "system-libcrypto-global-first":
        lib = ctypes.util.find_library("crypto")
        if lib is None:
            pytest.skip("no shared libcrypto on this system to preload")
        pre = ("import ctypes\n"
               "_g = ctypes.CDLL(%r, mode=ctypes.RTLD_GLOBAL)\n"
               "_g.OPENSSL_init_crypto(0, None)\n" % lib)
        calls = "prim = use_modelcrypt()\nAESGCM, mac = use_cryptography()\n"
    elif order == "modelcrypt-first":
        pre = ""
        calls = "prim = use_modelcrypt()\nAESGCM, mac = use_cryptography()\n"
    else:
        pre = ""
        calls = "AESGCM, mac = use_cryptography()\nprim = use_modelcrypt()\n"
    code = ("import os, sys\n" + pre + _COEXIST_BODY + calls +
            "cross_check(prim, AESGCM, mac)\n"
            "use_modelcrypt(); use_cryptography()\n"
            "assert 'modelcrypt._core' in sys.modules and 'cryptography' in sys.modules\n"
            "print('COEXIST-OK')\n")
    out = _run_py(code, tmp_path)
    assert "COEXIST-OK" in out, out


# ------------------------------------------------------------ (c) OPENSSL_CONF ignored

GARBAGE_CNF = b"this is [not valid\n=== openssl config\n[[[\nfoo = $undefined::var\n\x00\xff\xfe\n"
PROVIDER_CNF = b"""openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
nonexistent = nonexistent_sect
[nonexistent_sect]
module = /nonexistent/modelcrypt-test-provider.so
activate = 1
"""
FIPS_ONLY_CNF = b"""openssl_conf = openssl_init
[openssl_init]
alg_section = evp_properties
[evp_properties]
default_properties = fips=yes
"""
CONFIGS = {"garbage": GARBAGE_CNF, "nonexistent-provider": PROVIDER_CNF,
           "fips-only-properties": FIPS_ONLY_CNF}

_CONF_CHILD = """
import sys, os
sys.modules["_hashlib"] = None   # no other OpenSSL user in this process
sys.modules["_ssl"] = None
import modelcrypt
from modelcrypt._core import primitives
key = bytes(range(32))
data = bytes(range(256)) * 100
open("plain.bin", "wb").write(data)
modelcrypt.encrypt_file("plain.bin", "c.enc", key, chunk_size=4096, metadata={"a": "b"})
with modelcrypt.load("c.enc", key) as b:
    assert bytes(b) == data and b.metadata == {"a": "b"}
modelcrypt.decrypt_file("c.enc", "out.bin", key)
assert open("out.bin", "rb").read() == data
blob = modelcrypt.encrypt_bytes(data, key)
with modelcrypt.decrypt_bytes(blob, key) as b:
    assert bytes(b) == data
ct, tag = primitives.aes_gcm_encrypt(bytes(16), bytes(12), b"", bytes(16))
assert (bytes(ct) + bytes(tag)).hex() == "0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf"
assert primitives.hkdf_sha256(b"\\x0b" * 22, bytes(range(13)), bytes(range(0xf0, 0xfa)), 42).hex().startswith("3cb25f25faacd57a")
print("CONF-OK")
"""


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_openssl_conf_is_not_read(name, tmp_path):
    cnf = tmp_path / ("evil-%s.cnf" % name)
    cnf.write_bytes(CONFIGS[name])
    env = {"OPENSSL_CONF": str(cnf), "OPENSSL_MODULES": str(tmp_path / "no-modules")}
    strace = shutil.which("strace")
    if strace:
        trace = tmp_path / "trace.txt"
        env2 = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", **env)
        proc = subprocess.run([strace, "-f", "-qq", "-o", str(trace), "-e", "trace=%file",
                               sys.executable, "-c", _CONF_CHILD], cwd=str(tmp_path), env=env2,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "CONF-OK" in proc.stdout
        touched = [l for l in trace.read_text(errors="replace").splitlines()
                   if str(cnf) in l or "openssl.cnf" in l]
        assert touched == [], "config file was accessed:\n" + "\n".join(touched)
    else:
        out = _run_py(_CONF_CHILD, tmp_path, env)
        assert "CONF-OK" in out


@pytest.mark.parametrize("name", ["nonexistent-provider", "fips-only-properties"])
def test_openssl_conf_positive_control(name, tmp_path):
    """The configs above really break an OpenSSL that does read OPENSSL_CONF
    (the system's shared libcrypto via ctypes), so passing the test above means
    something."""
    lib = ctypes.util.find_library("crypto")
    if lib is None:
        pytest.skip("no shared libcrypto on this system for the control")
    cnf = tmp_path / "evil.cnf"
    cnf.write_bytes(CONFIGS[name])
    code = """
        import ctypes
        lc = ctypes.CDLL(%r)
        lc.OPENSSL_init_crypto.argtypes = [ctypes.c_uint64, ctypes.c_void_p]
        lc.OPENSSL_init_crypto(0x40, None)          # OPENSSL_INIT_LOAD_CONFIG
        lc.EVP_CIPHER_fetch.restype = ctypes.c_void_p
        lc.EVP_CIPHER_fetch.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
        print("FETCH", bool(lc.EVP_CIPHER_fetch(None, b"AES-256-GCM", None)))
        """ % lib
    assert "FETCH True" in _run_py(code, tmp_path)          # without the config
    assert "FETCH False" in _run_py(code, tmp_path, {"OPENSSL_CONF": str(cnf)})
