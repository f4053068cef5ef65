"""scripts/build_openssl.sh, the OpenSSL build the release wheels' before-all runs, fails closed before
building anything: an unknown release without a checksum, a checksum that contradicts the known one
for a release, and a tarball whose SHA-256 is not the pinned one are refused, and nothing is
installed into the prefix. (The successful build itself runs in .ci/run's wheels step, which builds
OpenSSL 3.5 from source and links the wheels against it.)"""

import hashlib
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "build_openssl.sh"


def run(tmp_path, **env):
    full = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TMPDIR": str(tmp_path), **env}
    return subprocess.run(["bash", str(SCRIPT), str(tmp_path / "prefix")], env=full, capture_output=True,
                          text=True, timeout=60, check=False)


def known_checksums():
    text = SCRIPT.read_text()
    return dict(re.findall(r"^\s*(3\.5\.\d+)\) echo ([0-9a-f]{64}) ;;$", text, re.M))


def test_the_pin_is_a_3_5_release_with_a_known_checksum():
    pin = re.search(r'^PINNED_VERSION="([^"]+)"$', SCRIPT.read_text(), re.M).group(1)
    assert pin.startswith("3.5."), pin
    sums = known_checksums()
    assert pin in sums and "3.5.7" in sums, sums  # 3.5.7: what .ci/run builds here
    ci = (ROOT / ".ci" / "run").read_text()
    assert "OPENSSL_VERSION=3.5.7 bash scripts/build_openssl.sh" in ci


def test_unknown_release_without_checksum_is_refused(tmp_path):
    r = run(tmp_path, OPENSSL_VERSION="3.5.1", OPENSSL_TARBALL=str(tmp_path / "none.tar.gz"))
    assert r.returncode == 1 and "refusing to build an unverified OpenSSL" in r.stderr, r.stderr
    assert not (tmp_path / "prefix").exists() or not any((tmp_path / "prefix").iterdir())


def test_a_checksum_contradicting_the_known_one_is_refused(tmp_path):
    r = run(tmp_path, OPENSSL_VERSION="3.5.7", OPENSSL_SHA256="0" * 64)
    assert r.returncode == 1 and "differs from the known checksum of OpenSSL 3.5.7" in r.stderr, r.stderr


def test_a_tarball_with_another_sha256_is_refused_and_nothing_is_installed(tmp_path):
    fake = tmp_path / "openssl-3.5.7.tar.gz"
    fake.write_bytes(b"not openssl" * 1000)
    r = run(tmp_path, OPENSSL_VERSION="3.5.7", OPENSSL_TARBALL=str(fake))
    assert r.returncode == 1, r.stdout + r.stderr
    got = hashlib.sha256(fake.read_bytes()).hexdigest()
    assert f"SHA-256 mismatch for openssl-3.5.7.tar.gz: got {got}, expected {known_checksums()['3.5.7']}" in r.stderr
    assert not any((tmp_path / "prefix").iterdir())  # no stamp, no libraries
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("openssl-build.")] == []  # work dir removed
