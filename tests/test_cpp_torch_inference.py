"""Issue 18 part 3: real inference from C++ with libtorch (examples/cpp/torch_inference.cpp).

The example is built once per module with CMake against the *installed* packages, the way a native
developer would: find_package(modelcrypt) from `modelcrypt config --cmakedir` and find_package(Torch)
from torch.utils.cmake_prefix_path (the torch wheel's headers, libraries and CMake package). A
TorchScript model (conv + linear layers, scripted and traced) is encrypted in Python, run by the C++
app straight from modelcrypt's decrypted buffer, and its outputs are compared with Python's; wrong
keys, modified files, missing files and non-TorchScript plaintext fail with a clear message, a
non-zero exit status and nothing on stdout; under strace the whole run writes no file.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

import modelcrypt
from conftest import require, require_tool
from test_no_disk import BEGIN, END, TRACE_SET, _violations

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(os.path.dirname(HERE), "examples", "cpp")
SHAPE = (2, 3, 8, 8)
# TorchScript is deprecated in torch 2.13 in favour of torch.export, but it is what libtorch's C++
# torch::jit::load runs; the warnings say nothing about this test.
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def torch():
    return require("torch")


@pytest.fixture(scope="module")
def app(torch, tmp_path_factory):
    """examples/cpp's torch_inference, configured and built once (Release; 10-30 s on 2 cores)."""
    import torch.utils

    cmake = require_tool("cmake", "cmake")
    require_tool("c++", "g++")
    build = str(tmp_path_factory.mktemp("torch-example-build"))
    configure = run([cmake, "-S", EXAMPLE, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DEXAMPLES_REQUIRE_TORCH=ON",
                     f"-Dmodelcrypt_DIR={modelcrypt.get_cmake_dir()}",
                     f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"])
    assert configure.returncode == 0, configure.stdout + configure.stderr
    started = time.monotonic()
    compile_ = run([cmake, "--build", build, "--target", "torch_inference", "--parallel", "2"])
    assert compile_.returncode == 0, compile_.stdout + compile_.stderr
    print(f"torch_inference built in {time.monotonic() - started:.1f} s")
    return os.path.join(build, "torch_inference")


def _net(torch):
    class Net(torch.nn.Module):
        """Conv + batch norm + linear, two outputs (a tuple): logits and the pooled features."""

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(6)
            self.fc = torch.nn.Linear(6 * 4 * 4, 5)

        def forward(self, x):
            y = torch.nn.functional.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
            return self.fc(y.flatten(1)), y.mean(dim=(2, 3))

    torch.manual_seed(18)
    net = Net()
    with torch.no_grad():  # non-trivial running statistics, so eval-mode batch norm matters
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    return net.eval()


@pytest.fixture(scope="module")
def models(torch, tmp_path_factory):
    """{"scripted"|"traced": (encrypted path, python module)}, the key and its key file."""
    d = tmp_path_factory.mktemp("torch-models")
    key = modelcrypt.generate_key()
    net = _net(torch)
    out = {}
    for kind, module in (("scripted", torch.jit.script(net)),
                         ("traced", torch.jit.trace(net, torch.zeros(SHAPE)))):
        archive = io.BytesIO()
        torch.jit.save(module, archive)  # (module.save(BytesIO) would write a file named "<_io.BytesIO ...>")
        assert archive.getvalue()[:2] == b"PK"
        path = d / f"{kind}.pt.mcx"
        path.write_bytes(modelcrypt.encrypt_bytes(archive.getvalue(), key, chunk_size=4096))
        out[kind] = (path, module)
    key_file = d / "model.key"
    key_file.write_text(key.hex() + "\n")
    return out, key, key_file


def _seeded_input(seed, shape=SHAPE):
    """The input torch_inference generates for --seed (documented in its usage comment)."""
    import numpy as np

    n = int(np.prod(shape))
    return (((np.arange(n, dtype=np.int64) * 7919 + seed * 104729) % 2001 - 1000).astype("<f4")
            / np.float32(1000)).reshape(shape)


def _outputs(proc):
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout  # one JSON line
    return json.loads(lines[0])["outputs"]


def _assert_matches(torch, outputs, module, x):
    import numpy as np

    with torch.no_grad():
        expected = module(torch.from_numpy(x))
    assert len(outputs) == len(expected) == 2
    for got, want in zip(outputs, expected):
        assert got["dtype"] == "Float"
        assert got["shape"] == list(want.shape)
        values = np.array(got["values"], dtype=np.float32).reshape(want.shape)
        np.testing.assert_allclose(values, want.numpy(), rtol=1e-5, atol=1e-6)
    # not a model that outputs the same thing for every input
    assert np.ptp(np.array(outputs[0]["values"])) > 1e-3


def test_outputs_equal_pythons_for_scripted_and_traced_models(torch, app, models, tmp_path):
    import numpy as np

    encrypted, key, key_file = models
    env_hex = dict(os.environ, MODELCRYPT_KEY=key.hex())
    env_b64 = dict(os.environ, MODELCRYPT_KEY=base64.b64encode(key).decode())
    shape = ",".join(map(str, SHAPE))
    for kind, (path, module) in encrypted.items():
        # generated inputs, key from a file and from the environment (hex, base64)
        for seed, env, key_args in ((0, None, ["--key-file", str(key_file)]), (7, env_hex, []), (-3, env_b64, [])):
            out = _outputs(run([app, *key_args, "--shape", shape, "--seed", str(seed), str(path)], env=env))
            _assert_matches(torch, out, module, _seeded_input(seed))
        # a raw float32 input file
        x = np.random.default_rng(5).standard_normal(SHAPE).astype("<f4")
        raw = tmp_path / f"{kind}-input.f32"
        x.tofile(raw)
        out = _outputs(run([app, "--key-file", str(key_file), "--shape", shape, "--input", str(raw), str(path)]))
        _assert_matches(torch, out, module, x)


def test_batch_size_follows_the_shape(torch, app, models):
    encrypted, _, key_file = models
    path, module = encrypted["scripted"]
    out = _outputs(run([app, "--key-file", str(key_file), "--shape", "5,3,8,8", str(path)]))  # seed 0 by default
    _assert_matches(torch, out, module, _seeded_input(0, (5, 3, 8, 8)))
    assert out[0]["shape"] == [5, 5] and out[1]["shape"] == [5, 6]


def _fails(proc, status, *needles):
    assert proc.returncode == status, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == "", proc.stdout  # no output values on any failure
    assert proc.stderr.startswith("error: ") and len(proc.stderr.splitlines()) <= 3, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


def test_wrong_key_tampering_and_missing_file(app, models, tmp_path):
    encrypted, key, key_file = models
    path = encrypted["scripted"][0]
    shape = ["--shape", ",".join(map(str, SHAPE))]
    wrong = tmp_path / "wrong.key"
    wrong.write_text(modelcrypt.generate_key().hex())
    _fails(run([app, "--key-file", str(wrong), *shape, str(path)]), 1, "KEY_MISMATCH", "wrong key", str(path))

    data = bytearray(path.read_bytes())
    for name, offset in (("tampered-first.mcx", len(data) // 3), ("tampered-last.mcx", len(data) - 20)):
        bad = bytearray(data)
        bad[offset] ^= 0x40
        (tmp_path / name).write_bytes(bytes(bad))
        _fails(run([app, "--key-file", str(key_file), *shape, str(tmp_path / name)]), 1, "AUTH_FAILED")
    (tmp_path / "truncated.mcx").write_bytes(bytes(data[:-100]))
    truncated = run([app, "--key-file", str(key_file), *shape, str(tmp_path / "truncated.mcx")])
    assert truncated.returncode in (1, 3) and truncated.stdout == "" and "error: " in truncated.stderr

    missing = tmp_path / "missing.pt.mcx"
    _fails(run([app, "--key-file", str(key_file), *shape, str(missing)]), 3, "IO", str(missing))


def test_bad_key_text_usage_and_inputs(app, models, tmp_path):
    encrypted, key, key_file = models
    path = str(encrypted["scripted"][0])
    shape = ["--shape", ",".join(map(str, SHAPE))]
    env = {k: v for k, v in os.environ.items() if k != "MODELCRYPT_KEY"}
    _fails(run([app, *shape, path], env=env), 2, "MODELCRYPT_KEY")  # no key at all
    _fails(run([app, *shape, path], env=dict(env, MODELCRYPT_KEY="abc")), 2, "MODELCRYPT_KEY")
    _fails(run([app, "--key-file", str(tmp_path / "nokey"), *shape, path]), 2, "--key-file")
    refused = run([app, "--key", key.hex(), *shape, path])
    _fails(refused, 2, "never taken on the command line")
    assert key.hex() not in refused.stderr
    _fails(run([app, "--key-file", str(key_file), path]), 2, "--shape is required")
    _fails(run([app, "--key-file", str(key_file), "--shape", "2,x", path]), 2, "not an integer")
    short = tmp_path / "short.f32"
    short.write_bytes(b"\0" * 12)
    _fails(run([app, "--key-file", str(key_file), *shape, "--input", str(short), path]), 2, "has 12 bytes")
    # the model rejects an input of the wrong shape: libtorch's reason, one line
    _fails(run([app, "--key-file", str(key_file), "--shape", "1,3,12,12", path]), 4, "libtorch: ", "shapes")


def test_plaintext_that_is_not_torchscript(app, models, tmp_path):
    _, key, key_file = models
    not_a_model = tmp_path / "weights.bin.mcx"
    modelcrypt.encrypt_file(os.path.join(os.path.dirname(HERE), "examples", "models", "tiny_mlp.safetensors"),
                            not_a_model, key)
    _fails(run([app, "--key-file", str(key_file), "--shape", "1,4", str(not_a_model)]), 4, "libtorch: ")


def test_the_app_writes_no_file(app, models, tmp_path):
    """The whole run under strace -f (decryption threads and libtorch's included): no file is
    created, written, renamed or removed; the encrypted model is opened and the result reaches stdout."""
    strace = require_tool("strace", "strace")
    encrypted, _, key_file = models
    path = encrypted["scripted"][0]
    trace = tmp_path / "trace.txt"
    proc = run([strace, "-f", "-qq", "-y", "-s", "0", "-o", str(trace), "-e", "trace=" + TRACE_SET,
                app, "--key-file", str(key_file), "--shape", ",".join(map(str, SHAPE)), str(path)], cwd=str(tmp_path))
    assert proc.returncode == 0 and json.loads(proc.stdout)["outputs"], proc.stderr
    lines = trace.read_text(errors="replace").splitlines()
    # test_no_disk's checker looks between its markers: here the window is the whole process
    bad = _violations([f"0 open(\"{BEGIN}\")", *lines, f"0 open(\"{END}\")"])
    assert bad == [], "file-writing syscalls:\n" + "\n".join(bad)
    assert any(f"{path}" in line and "open" in line for line in lines), "the model was not opened (vacuous trace?)"
    assert any(line.split()[1].startswith("write(1<") for line in lines if len(line.split()) > 1), \
        "no write to stdout traced (vacuous trace?)"
    assert sorted(os.listdir(tmp_path)) == ["trace.txt"]


def test_readme_walkthrough(app, tmp_path):
    """The README's steps: make_torchscript_model.py, `modelcrypt keygen` / `encrypt`, then the app
    with the key from the file and from MODELCRYPT_KEY, answering what the script predicted."""
    import numpy as np

    script = os.path.join(EXAMPLE, "make_torchscript_model.py")
    made = run([sys.executable, script, str(tmp_path / "model.pt"), "--seed", "4"])
    assert made.returncode == 0 and made.stderr == "", made.stderr
    expected = json.loads(made.stdout)["outputs"]
    cli = shutil.which("modelcrypt")
    assert cli, "the modelcrypt console script is not on PATH"
    key_file, encrypted = tmp_path / "model.key", tmp_path / "model.pt.mcx"
    for cmd in ([cli, "keygen", "-o", str(key_file)],
                [cli, "encrypt", str(tmp_path / "model.pt"), "-o", str(encrypted), "--key-file", str(key_file)]):
        out = run(cmd)
        assert out.returncode == 0, out.stderr
    (tmp_path / "model.pt").unlink()
    args = ["--shape", "1,3,16,16", "--seed", "4", str(encrypted)]
    for got in (_outputs(run([app, "--key-file", str(key_file), *args])),
                _outputs(run([app, *args], env=dict(os.environ, MODELCRYPT_KEY=key_file.read_text().strip())))):
        assert [o["shape"] for o in got] == [o["shape"] for o in expected] == [[1, 10]]
        np.testing.assert_allclose(got[0]["values"], expected[0]["values"], rtol=1e-5, atol=1e-6)
