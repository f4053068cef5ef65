"""The C/C++ unit tests (tests/cpp, tests/c): wipe-on-release of decrypted buffers, keys never freed
unwiped, and the C API under 8 concurrent threads.

They need the core's internal headers and a test hook that the wheel does not export, so they are
built from the source tree with plain CMake (-DMODELCRYPT_BUILD_TESTS=ON), once per session.
"""

import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = ["test_secure_buffer_wipe", "test_key_wipe", "test_wrapper_key_wipe", "test_concurrency"]


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)


@pytest.fixture(scope="session")
def unit_build(tmp_path_factory):
    cmake = shutil.which("cmake")
    assert cmake, "cmake is required to build the C/C++ unit tests"
    build = str(tmp_path_factory.mktemp("cpp-unit-build"))
    configure = run([cmake, "-S", ROOT, "-B", build, "-DMODELCRYPT_BUILD_TESTS=ON", "-DCMAKE_BUILD_TYPE=Release"])
    assert configure.returncode == 0, configure.stdout + configure.stderr
    targets = []
    for name in TESTS:
        targets += ["--target", name]
    compile_ = run([cmake, "--build", build, "-j2", *targets])
    assert compile_.returncode == 0, compile_.stdout[-5000:] + compile_.stderr[-5000:]
    return build


@pytest.mark.parametrize("name", TESTS)
def test_cpp_unit(unit_build, name, tmp_path):
    out = run([os.path.join(unit_build, name), str(tmp_path)])
    assert out.returncode == 0, out.stdout + out.stderr
    m = re.search(r"^(\d+) passed, 0 failed$", out.stdout, re.M)
    assert m and int(m.group(1)) > 0, out.stdout + out.stderr
