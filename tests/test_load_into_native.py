"""mc_load_into / mc_load_range_into (tests/c/test_load_into.c), built against the installed package
like tests/test_native_api.py, run natively and under valgrind."""

import os
import re
import shutil
import subprocess

import pytest

import modelcrypt

HERE = os.path.dirname(os.path.abspath(__file__))
VALGRIND = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=99", "-q"]


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    env = dict(os.environ, PKG_CONFIG_PATH=modelcrypt.get_pkgconfig_dir())
    flags = run(["pkg-config", "--cflags", "--libs", "modelcrypt"], env=env)
    assert flags.returncode == 0, flags.stderr
    out = str(tmp_path_factory.mktemp("load-into-build") / "test_load_into")
    cc = run(["cc", "-std=c99", "-Wall", "-Werror", "-o", out, os.path.join(HERE, "c", "test_load_into.c"),
              *flags.stdout.split()])
    assert cc.returncode == 0, cc.stderr
    return out


def test_c_load_into(binary, tmp_path):
    out = run([binary, str(tmp_path)])
    assert out.returncode == 0, out.stdout + out.stderr
    m = re.search(r"^(\d+) passed, 0 failed$", out.stdout, re.M)
    assert m and int(m.group(1)) >= 45, out.stdout


def test_c_load_into_is_valgrind_clean(binary, tmp_path):
    assert shutil.which("valgrind"), "valgrind is required (.ci/run installs it)"
    out = run([*VALGRIND, binary, str(tmp_path)])
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"^\d+ passed, 0 failed$", out.stdout, re.M)
