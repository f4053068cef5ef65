"""The native API shipped in the wheel: C header, libmodelcrypt.so, CMake and pkg-config packages.

Everything here is built with the real toolchain against the *installed* package (no source-tree
paths), the way a C or C++ developer would after `pip install modelcrypt`.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

import modelcrypt

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EXAMPLE = os.path.join(ROOT, "examples", "cpp")
MODEL = os.path.join(ROOT, "examples", "models", "tiny_mlp.safetensors")
EXAMPLE_METADATA = {"model": "tiny_mlp", "note": "quotes \" and \\ survive"}
VALGRIND = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=99", "-q"]
C_API = {
    "mc_status_string", "mc_last_error", "mc_version", "mc_load", "mc_decrypt_memory", "mc_encrypt_file",
    "mc_decrypt_file", "mc_encrypt_memory", "mc_buffer_data", "mc_buffer_size", "mc_buffer_free", "mc_wipe",
    "mc_load_with_format", "mc_decrypt_memory_with_format", "mc_decrypt_file_with_format", "mc_buffer_format",
    "mc_buffer_insecure_reason",
    # issue 13: parity with Python
    "mc_buffer_metadata", "mc_load_ex", "mc_decrypt_file_ex", "mc_verify_file", "mc_load_range", "mc_inspect",
    "mc_key_from_text", "mc_key_from_file", "mc_key_from_env",
    "mc_key_new", "mc_key_generate_identity", "mc_key_parse", "mc_key_read_file", "mc_key_read_env", "mc_key_is_identity",
    "mc_key_recipient", "mc_key_free", "mc_load_with_key", "mc_decrypt_memory_with_key", "mc_verify_file_with_key",
    "mc_load_range_with_key", "mc_encrypt_file_to_recipients", "mc_recipients_edit",
    # issue 15: publisher signatures
    "mc_key_require_signer", "mc_signing_key_generate", "mc_signing_key_parse", "mc_signing_key_read_file",
    "mc_signing_key_public", "mc_signing_key_free", "mc_encrypt_file_signed", "mc_verify_signature",
    "mc_decrypt_file_with_key",
    # writer options (chunk size, threads, metadata, fsync) with key, recipients and signer
    "mc_encrypt_file_ex",
    # issue 17: loading through the caller's read callback
    "mc_load_from_reader",
    # issue 18: decrypting into the caller's memory
    "mc_load_into", "mc_load_range_into",
    # issue 19: the OpenSSL linked in
    "mc_openssl_version",
}
PUBLIC_NODE, PRIVATE_NODE = "MODELCRYPT_0.1", "MODELCRYPT_PRIVATE_0.1"
OPENSSL_PREFIXES = ("EVP_", "OPENSSL_", "SSL_", "CRYPTO_", "ERR_", "BIO_", "OSSL_",
                    "HMAC", "AES_", "SHA256", "RAND_", "X509", "BN_", "EC_", "ossl_")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


def pkg_config(*args):
    env = dict(os.environ, PKG_CONFIG_PATH=modelcrypt.get_pkgconfig_dir())
    out = run(["pkg-config", *args, "modelcrypt"], env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.fixture(scope="module")
def libpath():
    return os.path.join(modelcrypt.get_lib_dir(), "libmodelcrypt.so")


@pytest.fixture(scope="module")
def c_test_binary(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cbuild") / "test_c_api")
    cc = run(["cc", "-std=c99", "-Wall", "-Werror", "-o", out, os.path.join(HERE, "c", "test_c_api.c"),
              *pkg_config("--cflags", "--libs"), "-pthread"])
    assert cc.returncode == 0, cc.stderr
    return out


@pytest.fixture(scope="module")
def example_app(tmp_path_factory):
    build = str(tmp_path_factory.mktemp("example-build"))
    configure = run(["cmake", "-S", EXAMPLE, "-B", build, f"-Dmodelcrypt_DIR={modelcrypt.get_cmake_dir()}",
                     "-DCMAKE_BUILD_TYPE=Release"])
    assert configure.returncode == 0, configure.stdout + configure.stderr
    # model_info only: torch_inference (libtorch) is built and tested in test_cpp_torch_inference.py
    compile_ = run(["cmake", "--build", build, "--target", "model_info"])
    assert compile_.returncode == 0, compile_.stdout + compile_.stderr
    return os.path.join(build, "model_info")


@pytest.fixture()
def encrypted_model(tmp_path):
    key = modelcrypt.generate_key()
    path = tmp_path / "tiny_mlp.safetensors.mcx"
    modelcrypt.encrypt_file(MODEL, path, key, metadata=EXAMPLE_METADATA)
    key_file = tmp_path / "key.hex"
    key_file.write_text(key.hex() + "\n")
    return path, key, key_file


def test_installed_layout_and_config_command():
    inc, lib, cmake_dir, pc = (modelcrypt.get_include(), modelcrypt.get_lib_dir(), modelcrypt.get_cmake_dir(),
                               modelcrypt.get_pkgconfig_dir())
    assert os.path.isfile(os.path.join(inc, "modelcrypt", "modelcrypt.h"))
    assert os.path.isfile(os.path.join(inc, "modelcrypt", "modelcrypt.hpp"))
    assert os.path.isfile(os.path.join(lib, "libmodelcrypt.so"))
    for name in ("modelcryptConfig.cmake", "modelcryptConfigVersion.cmake", "modelcryptTargets.cmake"):
        assert os.path.isfile(os.path.join(cmake_dir, name)), name
    assert os.path.isfile(os.path.join(pc, "modelcrypt.pc"))
    script = shutil.which("modelcrypt")
    assert script, "the modelcrypt console script is not on PATH"
    for flag, expected in (("--cmakedir", cmake_dir), ("--includedir", inc), ("--libdir", lib),
                           ("--pkgconfigdir", pc)):
        for cmd in ([script, "config", flag], [sys.executable, "-m", "modelcrypt", "config", flag]):
            out = run(cmd)
            assert out.returncode == 0 and out.stdout.strip() == expected, (cmd, out.stdout, out.stderr)
    summary = run([script, "config"])
    assert summary.returncode == 0, summary.stderr
    assert summary.stdout.splitlines() == [
        f"modelcrypt: {modelcrypt.__version__}", f"openssl: {modelcrypt.openssl_version()}",
        f"cmakedir: {cmake_dir}", f"includedir: {inc}", f"libdir: {lib}", f"pkgconfigdir: {pc}"]
    both = run([script, "config", "--libdir", "--includedir"])
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    assert pkg_config("--modversion") == [modelcrypt.__version__]


def test_shared_library_exports_only_the_c_api(libpath):
    """The public version node holds exactly the C API; the private one only the C++ core
    (namespace modelcrypt_core, for the Python extension); nothing of
    OpenSSL is exported."""
    nm = run(["nm", "-D", "--defined-only", libpath])
    assert nm.returncode == 0, nm.stderr
    by_node = {}
    for line in nm.stdout.splitlines():
        if not line.strip():
            continue
        name, _, node = line.split()[-1].partition("@@")
        if name not in (PUBLIC_NODE, PRIVATE_NODE):  # the version definitions themselves (type A)
            by_node.setdefault(node, set()).add(name)
    assert set(by_node) == {PUBLIC_NODE, PRIVATE_NODE}, sorted(by_node)  # nothing unversioned
    assert by_node[PUBLIC_NODE] == C_API
    private = by_node[PRIVATE_NODE]
    assert private, "the C++ core the extension links against is not exported"
    assert not [s for s in private if s.startswith(("mc_", *OPENSSL_PREFIXES))]
    demangled = run(["c++filt"], input="\n".join(sorted(private))).stdout.splitlines()
    assert len(demangled) == len(private)
    foreign = [d for d in demangled if not re.match(r"^((typeinfo( name)?|vtable|VTT|guard variable|"
                                                      r"(non-)?virtual thunk) (for|to) )?modelcrypt_core::", d)]
    assert foreign == []
    needed = run(["readelf", "-d", libpath]).stdout
    assert "libcrypto" not in needed and "libssl" not in needed
    assert re.search(r"\(SONAME\).*\[libmodelcrypt\.so\]", needed)


def test_header_is_c99_and_cpp_clean(tmp_path):
    src = tmp_path / "h.c"
    src.write_text("#include <modelcrypt/modelcrypt.h>\nint main(void) { return mc_version() == 0; }\n")
    for compiler, std in (("cc", "-std=c99"), ("c++", "-std=c++17")):
        out = run([compiler, std, "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-x",
                   "c" if compiler == "cc" else "c++", str(src), "-o", str(tmp_path / "h"),
                   *pkg_config("--cflags", "--libs")])
        assert out.returncode == 0, out.stderr
        assert run([str(tmp_path / "h")]).returncode == 0


def test_c_program_exercises_every_entry_point(c_test_binary, tmp_path):
    out = run([c_test_binary, str(tmp_path)])
    assert out.returncode == 0, out.stdout + out.stderr
    m = re.search(r"^(\d+) passed, 0 failed$", out.stdout, re.M)
    assert m and int(m.group(1)) >= 70, out.stdout


def test_cpp_wrapper(tmp_path):
    exe = str(tmp_path / "test_cpp_wrapper")
    cxx = run(["c++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-o", exe,
               os.path.join(HERE, "c", "test_cpp_wrapper.cpp"), *pkg_config("--cflags", "--libs")])
    assert cxx.returncode == 0, cxx.stderr
    out = run([exe, str(tmp_path)])
    assert out.returncode == 0 and re.search(r"^\d+ passed, 0 failed$", out.stdout, re.M), out.stdout


def test_example_app_matches_python(example_app, encrypted_model):
    path, key, key_file = encrypted_model
    with modelcrypt.load(path, key) as buf:
        expected = {"size": len(buf), "format": "modelcrypt", "metadata": buf.metadata}
    assert expected["size"] == os.path.getsize(MODEL) and expected["metadata"] == EXAMPLE_METADATA
    by_file = run([example_app, str(path), str(key_file)])
    by_env = run([example_app, str(path)], env=dict(os.environ, MODELCRYPT_KEY=key.hex()))
    by_b64 = run([example_app, str(path)], env=dict(os.environ, MODELCRYPT_KEY=base64.b64encode(key).decode()))
    for out in (by_file, by_env, by_b64):
        assert out.returncode == 0, out.stderr
        assert len(out.stdout.splitlines()) == 1 and json.loads(out.stdout) == expected, out.stdout


def test_example_app_wrong_key_and_tampering(example_app, encrypted_model, tmp_path):
    path, key, _ = encrypted_model
    wrong = tmp_path / "wrong.hex"
    wrong.write_text(modelcrypt.generate_key().hex())
    out = run([example_app, str(path), str(wrong)])
    assert out.returncode == 1
    assert "KEY_MISMATCH" in out.stderr and out.stdout == ""
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x40
    bad = tmp_path / "tampered.mcx"
    bad.write_bytes(bytes(data))
    out = run([example_app, str(bad)], env=dict(os.environ, MODELCRYPT_KEY=key.hex()))
    assert out.returncode == 1 and "AUTH_FAILED" in out.stderr and out.stdout == ""
    out = run([example_app, str(tmp_path / "missing.mcx")], env=dict(os.environ, MODELCRYPT_KEY=key.hex()))
    assert out.returncode == 3 and "IO" in out.stderr and out.stdout == ""
    assert run([example_app]).returncode == 2


def test_c_program_and_example_are_valgrind_clean(c_test_binary, example_app, encrypted_model, tmp_path):
    assert shutil.which("valgrind"), "valgrind is required (.ci/run installs it)"
    # The address-space cap of the NO_MEMORY case is meaningless under valgrind; it runs natively above.
    out = run([*VALGRIND, c_test_binary, str(tmp_path), "--no-rlimit"])
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"^\d+ passed, 0 failed$", out.stdout, re.M)
    path, _, key_file = encrypted_model
    out = run([*VALGRIND, example_app, str(path), str(key_file)])
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""


# --- legacy formats through the C ABI: the buffer holds exactly the plaintext, not the file image

def _c_lib(libpath):
    import ctypes
    lib = ctypes.CDLL(libpath)
    lib.mc_load.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                            ctypes.POINTER(ctypes.c_void_p)]
    lib.mc_decrypt_memory.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
                                      ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.mc_buffer_data.argtypes = [ctypes.c_void_p]
    lib.mc_buffer_data.restype = ctypes.c_void_p
    lib.mc_buffer_size.argtypes = [ctypes.c_void_p]
    lib.mc_buffer_size.restype = ctypes.c_size_t
    lib.mc_buffer_free.argtypes = [ctypes.c_void_p]
    lib.mc_load_with_format.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                        ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.mc_decrypt_memory_with_format.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
                                                  ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.mc_decrypt_file_with_format.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
                                                ctypes.c_char_p, ctypes.c_char_p]
    lib.mc_buffer_format.argtypes = [ctypes.c_void_p]
    lib.mc_buffer_format.restype = ctypes.c_char_p
    lib.mc_buffer_insecure_reason.argtypes = [ctypes.c_void_p]
    lib.mc_buffer_insecure_reason.restype = ctypes.c_char_p
    lib.mc_last_error.restype = ctypes.c_char_p
    return lib


def _c_decrypt_both_ways(lib, path, key, mode, fmt=None):
    """Plaintexts from mc_load and mc_decrypt_memory (their *_with_format variants when `fmt` is given)."""
    import ctypes
    results = []
    blob = open(path, "rb").read()
    for how in ("load", "memory"):
        buf = ctypes.c_void_p()
        if how == "load" and fmt is None:
            st = lib.mc_load(os.fsencode(path), key, len(key), mode.encode(), ctypes.byref(buf))
        elif how == "load":
            st = lib.mc_load_with_format(os.fsencode(path), key, len(key), mode.encode(), fmt.encode(), ctypes.byref(buf))
        elif fmt is None:
            st = lib.mc_decrypt_memory(blob, len(blob), key, len(key), mode.encode(), ctypes.byref(buf))
        else:
            st = lib.mc_decrypt_memory_with_format(blob, len(blob), key, len(key), mode.encode(), fmt.encode(),
                                                   ctypes.byref(buf))
        assert st == 0, (how, st, lib.mc_last_error())
        results.append(ctypes.string_at(lib.mc_buffer_data(buf), lib.mc_buffer_size(buf)))
        lib.mc_buffer_free(buf)
    return results


@pytest.mark.parametrize("fmt,mode", [("mindspore", "AES-GCM"), ("mindspore", "AES-CBC"), ("modelcrypt", "AES-GCM")])
def test_c_api_returns_exact_plaintext_of_written_files(libpath, tmp_path, fmt, mode):
    import warnings
    key = modelcrypt.generate_key()
    data = os.urandom(1100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", modelcrypt.InsecureFormatWarning)
        blob = modelcrypt.encrypt_bytes(data, key, mode, format=fmt)
    path = tmp_path / "f.enc"
    path.write_bytes(blob)
    # MindSpore GCM needs the explicit choice; AES-CBC exists only in MindSpore's format, so it is one.
    fmt_arg = "mindspore" if (fmt, mode) == ("mindspore", "AES-GCM") else None
    assert _c_decrypt_both_ways(_c_lib(libpath), str(path), bytes(key), mode, fmt_arg) == [data, data]


def test_c_api_reads_legacy_formats_only_when_asked_and_reports_the_format(libpath, tmp_path):
    """Security review item 3: mc_load and mc_decrypt_memory read format v1 only; a MindSpore GCM or
    PaddleX file needs mc_*_with_format, and the buffer says which format it was and why it is weak."""
    import ctypes
    import warnings

    lib = _c_lib(libpath)
    key = bytes(range(32))
    data = os.urandom(3000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", modelcrypt.InsecureFormatWarning)
        ms = modelcrypt.encrypt_bytes(data, key, "AES-GCM", format="mindspore")
    v1 = modelcrypt.encrypt_bytes(data, key)
    px = os.path.join(HERE, "interop", "paddle", "paddlex")
    cases = [("ms.enc", ms, "mindspore"), ("v1.mcx", v1, "modelcrypt")]
    for name, blob, fmt in cases:
        (tmp_path / name).write_bytes(blob)
    for name, blob, fmt in cases:
        path = os.fsencode(tmp_path / name)
        out = ctypes.c_void_p()
        st = lib.mc_load(path, key, 32, None, ctypes.byref(out))
        st_mem = lib.mc_decrypt_memory(blob, len(blob), key, 32, None, ctypes.byref(out))
        dst = os.fsencode(tmp_path / (name + ".out"))
        st_file = lib.mc_decrypt_file(path, dst, key, 32, None)
        if fmt == "modelcrypt":
            assert (st, st_mem, st_file) == (0, 0, 0)
            lib.mc_buffer_free(out)
        else:
            assert (st, st_mem, st_file) == (3, 3, 3)  # MC_FORMAT, and no output file
            assert b"format='mindspore'" in lib.mc_last_error()
            assert not os.path.exists(dst)
        for choice in (fmt, "auto"):
            out = ctypes.c_void_p()
            assert lib.mc_load_with_format(path, key, 32, None, choice.encode(), ctypes.byref(out)) == 0
            assert ctypes.string_at(lib.mc_buffer_data(out), lib.mc_buffer_size(out)) == data
            assert lib.mc_buffer_format(out) == fmt.encode()
            reason = lib.mc_buffer_insecure_reason(out)
            assert (b"dropped, reordered and spliced" in reason) if fmt == "mindspore" else reason == b""
            lib.mc_buffer_free(out)
        assert lib.mc_decrypt_file_with_format(path, dst, key, 32, None, b"auto") == 0
        assert open(dst, "rb").read() == data
    # PaddleX fixtures: refused by default, read with "paddlex", reported as such
    pkey = base64.b64decode(open(os.path.join(px, "key.b64")).read().strip())
    out = ctypes.c_void_p()
    p = os.fsencode(os.path.join(px, "encrypted.pdmodel"))
    assert lib.mc_load(p, pkey, len(pkey), None, ctypes.byref(out)) == 3
    assert lib.mc_load_with_format(p, pkey, len(pkey), None, b"paddlex", ctypes.byref(out)) == 0
    assert lib.mc_buffer_format(out) == b"paddlex" and b"nonce" in lib.mc_buffer_insecure_reason(out)
    assert ctypes.string_at(lib.mc_buffer_data(out), lib.mc_buffer_size(out)) == open(os.path.join(px, "model.pdmodel"), "rb").read()
    lib.mc_buffer_free(out)
    # a bad choice is an argument error; an encrypted image from mc_encrypt_memory has no format
    out = ctypes.c_void_p()
    assert lib.mc_load_with_format(os.fsencode(tmp_path / "v1.mcx"), key, 32, None, b"zip", ctypes.byref(out)) == 6
    assert lib.mc_buffer_format(None) == b"" and lib.mc_buffer_insecure_reason(None) == b""


def test_c_api_returns_exact_plaintext_of_paddle_fixtures(libpath):
    d = os.path.join(HERE, "interop", "paddle", "cipher")
    plain = open(os.path.join(d, "plain.bin"), "rb").read()
    lib = _c_lib(libpath)
    for name, k, conf in (("ctr_k128.enc", bytes(range(0x40, 0x50)), "ctr.conf"),
                          ("gcm_k256.enc", bytes(range(0x00, 0x20)), "gcm.conf")):
        mode = modelcrypt.paddle_cipher_mode(os.path.join(d, conf))
        assert _c_decrypt_both_ways(lib, os.path.join(d, name), k, mode) == [plain, plain], name
