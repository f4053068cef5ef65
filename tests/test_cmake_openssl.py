"""CMake's handling of OpenSSL (issue 19): configure reports the OpenSSL used, OPENSSL_ROOT_DIR
selects another static OpenSSL, and a prefix with only a shared libcrypto fails with an explanation.

Configure only (no build): a few seconds each. The prefixes are made of symlinks to the system's
OpenSSL (Debian's libssl-dev ships both libcrypto.a and libcrypto.so).
"""

import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPORT = re.compile(r"^-- modelcrypt: OpenSSL (\d+\.\d+\.\d+\S*) \(static\), include dir (\S+), libcrypto (\S+)$",
                    re.M)


def configure(build_dir, *defines):
    cmake = shutil.which("cmake")
    assert cmake, "cmake is required"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENSSL_ROOT_DIR", "CMAKE_ARGS")}
    return subprocess.run([cmake, "-S", ROOT, "-B", str(build_dir), *defines], capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.fixture(scope="module")
def system_openssl(tmp_path_factory):
    """(version, include dir, libcrypto.a) of a plain configure."""
    out = configure(tmp_path_factory.mktemp("cmake-default"))
    assert out.returncode == 0, out.stdout + out.stderr
    m = REPORT.search(out.stdout)
    assert m, out.stdout
    return m.groups()


def _prefix(tmp_path, include_dir, libs):
    prefix = tmp_path / "openssl-prefix"
    (prefix / "lib").mkdir(parents=True)
    (prefix / "include").mkdir()
    (prefix / "include" / "openssl").symlink_to(os.path.join(include_dir, "openssl"))
    for lib in libs:
        (prefix / "lib" / os.path.basename(lib)).symlink_to(lib)
    return prefix


def test_configure_reports_the_static_openssl(system_openssl):
    version, include_dir, libcrypto = system_openssl
    assert tuple(int(x) for x in version.split(".")[:2]) >= (3, 0)
    assert libcrypto.endswith(".a") and os.path.isfile(libcrypto)
    with open(libcrypto, "rb") as f:
        assert f.read(8) == b"!<arch>\n"  # a static archive
    with open(os.path.join(include_dir, "openssl", "opensslv.h")) as f:
        header = f.read()
    assert re.search(r'#\s*define\s+OPENSSL_VERSION_STR\s+"%s"' % re.escape(version), header)


def test_openssl_root_dir_selects_a_static_openssl(system_openssl, tmp_path):
    _, include_dir, libcrypto = system_openssl
    prefix = _prefix(tmp_path, include_dir, [libcrypto])
    out = configure(tmp_path / "build", f"-DOPENSSL_ROOT_DIR={prefix}")
    assert out.returncode == 0, out.stdout + out.stderr
    m = REPORT.search(out.stdout)
    assert m and m.group(3) == str(prefix / "lib" / "libcrypto.a"), out.stdout
    assert m.group(2) == str(prefix / "include")


def test_only_a_shared_libcrypto_fails_clearly(system_openssl, tmp_path):
    _, include_dir, libcrypto = system_openssl
    shared = os.path.join(os.path.dirname(libcrypto), "libcrypto.so")
    assert os.path.exists(shared), "the system's shared libcrypto (libssl-dev) is required"
    prefix = _prefix(tmp_path, include_dir, [shared])
    out = configure(tmp_path / "build", f"-DOPENSSL_ROOT_DIR={prefix}")
    text = " ".join((out.stdout + out.stderr).split())  # CMake wraps messages
    assert out.returncode != 0, text
    assert f"Only a shared libcrypto was found under OPENSSL_ROOT_DIR={prefix}: {prefix}/lib/libcrypto.so" in text
    assert "links OpenSSL statically" in text and "libcrypto.a" in text
    assert not REPORT.search(out.stdout)  # not silently configured against the system's libcrypto.a
