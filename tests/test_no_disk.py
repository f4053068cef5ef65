"""load(), load_checkpoint() and every framework loader never put anything on disk.

1. In-process: recursive listings (name, size, mtime) of the encrypted file's
   directory and of tempfile.gettempdir() are identical before and after.
   TMPDIR / tempfile.tempdir point at a private empty directory for the
   duration, so the comparison is exact and is not disturbed by unrelated
   processes writing to the shared /tmp (the system-wide check is 2.).
2. Subprocess under strace -f, one child per loader: modelcrypt.load /
   load_range / verify / decrypt_bytes, load_checkpoint (single file, random
   access and sharded), modelcrypt.torch (load, load_state_dict),
   modelcrypt.onnxruntime (a model with inline weights and one with an
   encrypted external data file), modelcrypt.paddle (create_predictor) and
   modelcrypt.numpy (.npy, .npz, compressed .npz). Each child first builds its
   encrypted inputs, imports its framework and warms it up on plaintext held in
   memory (frameworks may write caches on import or first use), then opens the
   nonexistent marker paths BEGIN / END around the measured section (the loader
   calls plus inference with the loaded model). Between the markers there must be
   no open/openat/openat2 for writing or creating, no creat, rename*, unlink*,
   rmdir, mkdir*, mknod*, link*, symlink*, truncate, chmod/chown/utime*/xattr
   change of a path, and no write/pwrite64/writev/pwritev*/ftruncate/fallocate/
   sendfile/splice/copy_file_range to any filesystem path (fds 1/2 and pipes,
   sockets, anonymous inodes, /dev/null, ttys and memfds are ignored). Each
   encrypted input must be opened inside the window (so the check is not vacuous).
   A positive control runs encrypt_file and the plain file-writing calls under
   the same tracer and every one must be flagged, so a parsing mistake cannot
   make the check pass vacuously.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import modelcrypt
from conftest import require

KEY = bytes(range(32))
CS = 4096


def _listing(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
    st = os.lstat(root)
    out["."] = (st.st_mtime_ns,)
    return out


@pytest.fixture
def enc_file(tmp_path):
    d = tmp_path / "models"
    d.mkdir()
    data = os.urandom(7 * CS + 11)
    src = tmp_path / "plain.bin"
    src.write_bytes(data)
    enc = d / "model.enc"
    modelcrypt.encrypt_file(src, enc, KEY, chunk_size=CS, metadata={"a": "b"})
    return enc, data


def test_no_files_created_in_process(enc_file, tmp_path, monkeypatch):
    enc, data = enc_file
    private_tmp = tmp_path / "tmpdir"
    private_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    assert tempfile.gettempdir() == str(private_tmp)
    blob = enc.read_bytes()
    roots = [str(enc.parent), tempfile.gettempdir()]
    before = [_listing(r) for r in roots]
    for threads in (1, 2, None):
        with modelcrypt.load(enc, KEY, threads=threads) as buf:
            assert bytes(buf) == data
        with modelcrypt.load(str(enc), KEY, threads=threads) as buf:
            assert len(buf) == len(data)
        with modelcrypt.decrypt_bytes(blob, KEY, threads=threads) as buf:
            assert bytes(buf) == data
    # failures must not leave anything behind either
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(modelcrypt.AuthenticationError):
        modelcrypt.decrypt_bytes(bytes(tampered), KEY)
    with pytest.raises(modelcrypt.KeyMismatchError):
        modelcrypt.load(enc, bytes(32))
    after = [_listing(r) for r in roots]
    assert after == before
    assert os.listdir(private_tmp) == []


# ------------------------------------------------------------------ strace

DATA = Path(__file__).parent / "data"

TRACE_SET = ("%file,write,pwrite64,writev,pwritev,pwritev2,ftruncate,fallocate,"
             "sendfile,splice,copy_file_range")
# %file calls that change the filesystem whatever their arguments
MODIFYING = ("creat", "rename", "renameat", "renameat2", "unlink", "unlinkat", "rmdir", "mkdir", "mkdirat",
             "mknod", "mknodat", "link", "linkat", "symlink", "symlinkat", "truncate", "chmod", "fchmodat",
             "fchmodat2", "chown", "lchown", "fchownat", "utime", "utimes", "utimensat", "futimesat",
             "setxattr", "lsetxattr", "removexattr", "lremovexattr")
OPENS = ("open", "openat", "openat2")
OPEN_FOR_WRITING = re.compile(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_TMPFILE|O_APPEND")
WRITE_CALLS = ("write", "pwrite64", "writev", "pwritev", "pwritev2", "ftruncate", "fallocate")
COPY_CALLS = ("sendfile", "splice", "copy_file_range")
HARMLESS_TARGETS = ("/dev/null", "/dev/pts/", "/dev/tty", "/memfd:")
BEGIN, END = "/nonexistent-modelcrypt-marker/begin", "/nonexistent-modelcrypt-marker/end"

# Every child: argv = work directory, key (hex). It defines P(name) (a path in the work directory)
# and marker(); the case's SETUP runs first, then MEASURED between the markers, then CHECK.
PRELUDE = """
import hashlib, os, sys
work, key = sys.argv[1], bytes.fromhex(sys.argv[2])
def P(name):
    return os.path.join(work, name)
def marker(p):
    try:
        open(p, "rb")
    except OSError:
        pass
"""

_FD_PATH = re.compile(r"(\d+)<([^>]*)>")
_CALL = re.compile(r"^\d+\s+(?:<\.\.\. )?(\w+)[( ]")


def _writes_to_file(args):
    """True when one of the fd<path> arguments is a filesystem path (not a pipe/socket/tty/...)."""
    for _, target in _FD_PATH.findall(args):
        if target.startswith("/") and not target.startswith(HARMLESS_TARGETS):
            return True
    return False


def _window(trace_lines):
    """The trace lines between the BEGIN and END markers."""
    inside, seen_begin, seen_end, out = False, False, False, []
    for line in trace_lines:
        if BEGIN in line:
            inside, seen_begin = True, True
            continue
        if END in line:
            inside, seen_end = False, True
            continue
        if inside:
            out.append(line)
    assert seen_begin and seen_end, "markers not found in trace"
    return out


def _violations(trace_lines):
    """Offending syscalls between the BEGIN and END markers."""
    bad = []
    for line in _window(trace_lines):
        m = _CALL.match(line)
        if not m or re.match(r"^\d+\s+<\.\.\. \w+ resumed>", line):
            continue  # a "<... call resumed>" line: the arguments were on its "<unfinished ...>" line
        call = m.group(1)
        args = line.split("(", 1)[1] if "(" in line else ""
        if call in OPENS:
            if OPEN_FOR_WRITING.search(args):
                bad.append(line)
        elif call in MODIFYING:
            bad.append(line)
        elif call in WRITE_CALLS:
            fm = _FD_PATH.match(args)
            if fm and int(fm.group(1)) not in (1, 2) and _writes_to_file(fm.group(0)):
                bad.append(line)
        elif call in COPY_CALLS:
            if _writes_to_file(args):
                bad.append(line)
    return bad


def _opened_in_window(trace_lines):
    """Paths opened (read-only) between the markers."""
    out = set()
    for line in _window(trace_lines):
        m = re.match(r'^\d+\s+open(?:at2?)?\((?:[^,]*, )?"([^"]*)"', line)
        if m:
            out.add(os.path.basename(m.group(1)))
    return out


def _strace(code, work, tmp_path, name, timeout=300):
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace not installed")
    trace = tmp_path / f"trace-{name}.txt"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(
        [strace, "-f", "-qq", "-y", "-s", "0", "-o", str(trace), "-e", "trace=" + TRACE_SET,
         sys.executable, "-c", code, str(work), KEY.hex()],
        cwd=str(work), env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout, trace.read_text(errors="replace").splitlines()


def _child(setup, measured, check):
    return "\n".join([PRELUDE, textwrap.dedent(setup), f"marker({BEGIN!r})", textwrap.dedent(measured),
                      f"marker({END!r})", textwrap.dedent(check), 'print("CHILD-OK")'])


def _run_case(tmp_path, name, setup, measured, check, must_open):
    work = tmp_path / f"work-{name}"
    work.mkdir()
    out, lines = _strace(_child(setup, measured, check), work, tmp_path, name)
    assert "CHILD-OK" in out, out
    bad = _violations(lines)
    assert bad == [], f"{name}: file-writing syscalls while loading:\n" + "\n".join(bad)
    opened = _opened_in_window(lines)
    missing = [n for n in must_open if n not in opened]
    assert not missing, f"{name}: {missing} not opened between the markers (vacuous check?); opened: {sorted(opened)}"
    return out, work


# --- modelcrypt.load / load_range / verify / decrypt_bytes

CORE_SETUP = """
import modelcrypt
data = os.urandom(7 * 4096 + 11)
with open(P("plain.bin"), "wb") as f:
    f.write(data)
modelcrypt.encrypt_file(P("plain.bin"), P("model.enc"), key, chunk_size=4096, metadata={"a": "b"})
os.unlink(P("plain.bin"))
with open(P("model.enc"), "rb") as f:
    blob = f.read()
expected = hashlib.sha256(data).hexdigest()
"""

CORE_MEASURED = """
out = []
for t in (1, 2):
    with modelcrypt.load(P("model.enc"), key, threads=t) as b:
        out.append(hashlib.sha256(b).hexdigest())
    with modelcrypt.decrypt_bytes(blob, key, threads=t) as b:
        out.append(hashlib.sha256(b).hexdigest())
with modelcrypt.load_range(P("model.enc"), key, offset=4000, length=5000) as b:
    part = bytes(b)
modelcrypt.verify(P("model.enc"), key)
try:
    modelcrypt.load(P("model.enc"), bytes(32))
except modelcrypt.KeyMismatchError:
    out.append("wrong-key-refused")
"""

CORE_CHECK = """
assert out == [expected] * 4 + ["wrong-key-refused"], out
assert part == data[4000:9000]
print("RESULT", *out[:4])
"""


def test_load_under_strace_writes_nothing(tmp_path):
    out, work = _run_case(tmp_path, "core", CORE_SETUP, CORE_MEASURED, CORE_CHECK, ["model.enc"])
    assert sorted(os.listdir(work)) == ["model.enc"]


def test_strace_check_detects_writes(tmp_path):
    """Positive control: encrypt_file and every kind of file-writing call are flagged."""
    measured = """
    modelcrypt.encrypt_file(P("model.enc"), P("model.enc.again"), key)
    with open(P("w.bin"), "wb") as f:                 # open O_CREAT + write
        f.write(b"x")
    fd = os.open(P("w.bin"), os.O_RDWR)
    os.pwrite(fd, b"y", 0)
    os.truncate(fd, 0)
    os.close(fd)
    os.rename(P("w.bin"), P("w2.bin"))
    os.link(P("w2.bin"), P("w3.bin"))
    os.mkdir(P("d"))
    os.unlink(P("w3.bin"))
    os.truncate(P("w2.bin"), 0)
    """
    work = tmp_path / "work-control"
    work.mkdir()
    _, lines = _strace(_child(CORE_SETUP, measured, ""), work, tmp_path, "control")
    bad = _violations(lines)
    text = "\n".join(bad)

    def flagged(pattern):
        return any(re.search(pattern, line) for line in bad)

    # encrypt_file writes an unnamed O_TMPFILE file in the work directory (a named ".mctmp-" file
    # where the filesystem lacks O_TMPFILE), then links it to the new destination (or renames the
    # named temporary file there)
    assert (flagged(r"openat\(.*work-control.*O_TMPFILE") or flagged(r"openat\(.*model\.enc\.again\.mctmp-.*O_CREAT")), text
    assert flagged(r"(linkat|rename(at2?)?)\(.*model\.enc\.again"), text
    assert flagged(r"^\d+\s+(write|writev|pwrite64|pwritev2?)\(\d+<[^>]*work-control/(#\d+>? ?\(deleted\)|\.model\.enc\.again\.mctmp-)"), text
    assert flagged(r"openat\(.*w\.bin.*O_WRONLY\|O_CREAT"), text
    assert flagged(r"^\d+\s+write\(\d+<[^>]*w\.bin>"), text
    assert flagged(r"^\d+\s+pwrite64\(\d+<[^>]*w\.bin>"), text
    assert flagged(r"^\d+\s+ftruncate\(\d+<[^>]*w\.bin>"), text
    assert flagged(r"rename(at2?)?\(.*w\.bin.*w2\.bin"), text
    assert flagged(r"link(at)?\(.*w3\.bin"), text
    assert flagged(r"mkdir(at)?\(.*/d\""), text
    assert flagged(r"unlink(at)?\(.*w3\.bin"), text
    assert flagged(r"^\d+\s+truncate\(.*w2\.bin"), text
    assert "model.enc" in _opened_in_window(lines)


# --- load_checkpoint / load_distributed_checkpoint

def test_load_checkpoint_under_strace_writes_nothing(tmp_path):
    setup = """
    import numpy as np
    import modelcrypt
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((64, 33)).astype(np.float32), "h": rng.standard_normal(9).astype(np.float16),
              "i": np.arange(100, dtype=np.int64), "flags": np.array([True, False]), "s": np.array(2.5)}
    modelcrypt.save_checkpoint(params, P("ckpt.safetensors.mcx"), key)
    index = modelcrypt.save_checkpoint(params, P("sharded.safetensors"), key, max_shard_size=1000)
    shards = sorted(n for n in os.listdir(work) if n.startswith("sharded-"))
    assert len(shards) >= 2, shards
    modelcrypt.load_checkpoint(P(shards[0]), key)  # warm-up (lazy imports)
    """
    measured = """
    whole = modelcrypt.load_checkpoint(P("ckpt.safetensors.mcx"), key)
    some = modelcrypt.load_checkpoint(P("ckpt.safetensors.mcx"), key, names=["i", "h"])
    dist = modelcrypt.load_distributed_checkpoint(index, key)
    dist_some = modelcrypt.load_distributed_checkpoint([P(n) for n in shards], key, names=["w"])
    total = float(sum(np.asarray(a, dtype=np.float64).sum() for a in whole.values()))
    """
    check = """
    for got in (whole, dist):
        assert sorted(got) == sorted(params)
        assert all(np.array_equal(got[k], v) and got[k].dtype == v.dtype for k, v in params.items())
    assert list(some) == ["i", "h"] and np.array_equal(some["h"], params["h"])
    assert list(dist_some) == ["w"] and np.array_equal(dist_some["w"], params["w"])
    """
    _run_case(tmp_path, "checkpoint", setup, measured, check, ["ckpt.safetensors.mcx", "sharded.safetensors.index.json"])


# --- PyTorch

def test_torch_loaders_under_strace_write_nothing(tmp_path):
    require("torch", load=False)
    setup = """
    import io
    import torch
    import modelcrypt
    import modelcrypt.torch as mctorch
    def mlp():
        return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    torch.manual_seed(0)
    net = mlp()
    obj = {"state": net.state_dict(), "step": 7, "bf16": torch.randn(3, 5).to(torch.bfloat16)}
    mctorch.save(obj, P("obj.pt.mcx"), key)
    modelcrypt.save_checkpoint(net.state_dict(), P("sd.safetensors.mcx"), key)
    x = torch.randn(6, 4)
    reference = net(x)
    # warm-up: torch's own loader from memory, and a forward pass
    stream = io.BytesIO()
    torch.save(obj, stream)
    warm = mlp()
    warm.load_state_dict(torch.load(io.BytesIO(stream.getvalue()))["state"])
    warm(x)
    """
    measured = """
    back = mctorch.load(P("obj.pt.mcx"), key)
    sd = mctorch.load_state_dict(P("sd.safetensors.mcx"), key)
    only = mctorch.load_state_dict(P("sd.safetensors.mcx"), key, names=["2.bias"])
    a, b = mlp(), mlp()
    a.load_state_dict(back["state"])
    b.load_state_dict(sd)
    out_a, out_b = a(x), b(x)
    """
    check = """
    assert torch.equal(out_a, reference) and torch.equal(out_b, reference)
    assert back["step"] == 7 and back["bf16"].dtype == torch.bfloat16 and torch.equal(back["bf16"], obj["bf16"])
    assert torch.equal(only["2.bias"], net.state_dict()["2.bias"])
    """
    _run_case(tmp_path, "torch", setup, measured, check, ["obj.pt.mcx", "sd.safetensors.mcx"])


# --- ONNX Runtime (inline weights and an encrypted external data file)

def test_onnxruntime_loader_under_strace_writes_nothing(tmp_path):
    require("onnx", load=False)
    require("onnxruntime", load=False)
    setup = """
    import shutil
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    import onnxruntime as ort
    import modelcrypt
    import modelcrypt.onnxruntime as mcort
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Add", ["h", "B"], ["a"]),
         helper.make_node("Relu", ["a"], ["y"])], "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    os.mkdir(P("plain"))
    onnx.save_model(model, P("plain/mlp.onnx"))
    onnx.save_model(model, P("plain/ext.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    for name in ("mlp.onnx", "ext.onnx", "weights.bin"):
        modelcrypt.encrypt_file(P("plain/" + name), P(name), key)
    with open(P("plain/mlp.onnx"), "rb") as f:
        plain_model = f.read()
    shutil.rmtree(P("plain"))
    assert mcort.external_data_locations(open(P("ext.onnx"), "rb").read()) == []  # encrypted: opaque
    x = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    expected = np.maximum(x @ w + b, 0)
    # warm-up: ONNX Runtime on the plaintext model from memory
    ort.InferenceSession(plain_model, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    """
    measured = """
    outs = []
    for name in ("mlp.onnx", "ext.onnx"):
        session = mcort.InferenceSession(P(name), key, providers=["CPUExecutionProvider"])
        outs.append(session.run(None, {"x": x})[0])
    options = ort.SessionOptions()
    session = mcort.InferenceSession(P("ext.onnx"), key, external_data={"weights.bin": P("weights.bin")},
                                     sess_options=options, providers=["CPUExecutionProvider"])
    outs.append(session.run(None, {"x": x})[0])
    """
    check = """
    assert expected.any()
    for out in outs:
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    """
    _run_case(tmp_path, "onnxruntime", setup, measured, check, ["mlp.onnx", "ext.onnx", "weights.bin"])


# --- Paddle Inference

def test_paddle_loader_under_strace_writes_nothing(tmp_path):
    require("paddle", load=False)
    setup = f"""
    import numpy as np
    import paddle.inference as pi
    import modelcrypt
    import modelcrypt.paddle as mcpaddle
    data = {str(DATA / "paddle")!r}
    for name in ("model.pdmodel", "model.pdiparams"):
        modelcrypt.encrypt_file(os.path.join(data, name), P(name + ".mcx"), key)
    with open(os.path.join(data, "model.pdmodel"), "rb") as f:
        program = f.read()
    with open(os.path.join(data, "model.pdiparams"), "rb") as f:
        params = f.read()
    x = np.load(os.path.join(data, "ref_input.npy"))
    expected = np.load(os.path.join(data, "ref_output.npy"))

    def run(predictor):
        predictor.get_input_handle(predictor.get_input_names()[0]).copy_from_cpu(x)
        predictor.run()
        return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()

    # warm-up: Paddle's own predictor on the plaintext program from memory, default options
    config = pi.Config()
    config.disable_gpu()
    config.set_model_buffer(program, len(program), params, len(params))
    run(pi.create_predictor(config))
    """
    measured = """
    outs = [run(mcpaddle.create_predictor(P("model.pdmodel.mcx"), P("model.pdiparams.mcx"), key, disable_gpu=True)),
            run(mcpaddle.create_predictor(P("model.pdmodel.mcx"), P("model.pdiparams.mcx"), key, disable_gpu=True,
                                          switch_ir_optim=False, set_cpu_math_library_num_threads=1))]
    """
    check = """
    for out in outs:
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    """
    _run_case(tmp_path, "paddle", setup, measured, check, ["model.pdmodel.mcx", "model.pdiparams.mcx"])


# --- NumPy

def test_numpy_loader_under_strace_writes_nothing(tmp_path):
    setup = """
    import io
    import numpy as np
    import modelcrypt
    import modelcrypt.numpy as mcnp
    arrays = {"f32": np.arange(12, dtype=np.float32).reshape(3, 4), "i8": np.array([-1, 2], np.int8),
              "big": np.random.default_rng(0).standard_normal(50000), "scalar": np.array(3.5)}
    mcnp.save(P("a.npy.mcx"), arrays["big"], key)
    mcnp.savez(P("all.npz.mcx"), key, **arrays)
    mcnp.savez_compressed(P("all_c.npz.mcx"), key, **arrays)
    # warm-up: numpy's own loaders from memory
    stream = io.BytesIO()
    np.savez_compressed(stream, **arrays)
    stream.seek(0)
    dict(np.load(stream))
    stream = io.BytesIO()
    np.save(stream, arrays["f32"])
    stream.seek(0)
    np.load(stream)
    """
    measured = """
    one = mcnp.load(P("a.npy.mcx"), key)
    both = [mcnp.load(P(n), key) for n in ("all.npz.mcx", "all_c.npz.mcx")]
    """
    check = """
    assert np.array_equal(one, arrays["big"])
    for got in both:
        assert list(got) == list(arrays) and all(np.array_equal(got[k], v) for k, v in arrays.items())
    """
    _run_case(tmp_path, "numpy", setup, measured, check, ["a.npy.mcx", "all.npz.mcx", "all_c.npz.mcx"])
