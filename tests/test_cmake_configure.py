"""CMake configuration (issue 19): configure reports the OpenSSL used, OPENSSL_ROOT_DIR selects
another static OpenSSL, a prefix with only a shared libcrypto fails with an explanation, and warnings
are -Wall -Wextra, errors when MODELCRYPT_WARNINGS_AS_ERRORS is set (CI).

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


def configure(build_dir, *defines, **env_extra):
    cmake = shutil.which("cmake")
    assert cmake, "cmake is required"
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENSSL_ROOT_DIR", "CMAKE_ARGS", "CMAKE_GENERATOR", "MODELCRYPT_WARNINGS_AS_ERRORS")}
    env.update(env_extra)
    return subprocess.run([cmake, "-S", ROOT, "-B", str(build_dir), *defines], capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.fixture(scope="module")
def default_configure(tmp_path_factory):
    build = tmp_path_factory.mktemp("cmake-default")
    out = configure(build)
    assert out.returncode == 0, out.stdout + out.stderr
    return build, out.stdout


@pytest.fixture(scope="module")
def system_openssl(default_configure):
    """(version, include dir, libcrypto.a) of a plain configure."""
    m = REPORT.search(default_configure[1])
    assert m, default_configure[1]
    return m.groups()


def _core_flags(build):
    with open(os.path.join(build, "CMakeFiles", "modelcrypt_core_objects.dir", "flags.make")) as f:
        return f.read()


def test_warnings_by_default_and_errors_on_request(default_configure, tmp_path):
    build, stdout = default_configure
    assert "-- modelcrypt: warnings -Wall -Wextra, as errors: OFF" in stdout
    flags = _core_flags(build)
    assert "-Wall" in flags and "-Wextra" in flags and "-Werror" not in flags
    # CI exports MODELCRYPT_WARNINGS_AS_ERRORS=1, which also reaches builds made by pip.
    out = configure(tmp_path / "werror", MODELCRYPT_WARNINGS_AS_ERRORS="1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "-- modelcrypt: warnings -Wall -Wextra, as errors: ON" in out.stdout
    assert "-Werror" in _core_flags(tmp_path / "werror")


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
