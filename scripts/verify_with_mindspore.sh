#!/usr/bin/env bash
# Opt-in check that real MindSpore loads the MindSpore-format files modelcrypt writes.
#
#   scripts/verify_with_mindspore.sh [VENV_DIR]        (default VENV_DIR: /tmp/ms-venv)
#
# Creates (or reuses) a virtual environment with `pip install mindspore "numpy<2"` (about 2.5 GB; not
# part of the test suite), then:
#   1. modelcrypt (the python3 running this script, where modelcrypt is installed) writes
#      - checkpoints of float64/32/16, bfloat16 (with ml_dtypes), int64/32, uint8, bool, 0-d and str
#        values: encrypted checkpoints with save_checkpoint(params, path, key, mode, format="mindspore")
#        for AES-GCM with 16/24/32-byte keys, AES-CBC and SM4-CBC, and a plain one without a key;
#      - a MindIR file encrypted with encrypt_file(src, dst, key, format="mindspore") from the plain
#        MindIR fixture (tests/interop/mindspore/a_plain.mindir);
#   2. MindSpore, in the venv, runs mindspore.load_checkpoint(path, dec_key=..., dec_mode=...) on each
#      checkpoint and compares every parameter with what was saved, and mindspore.load(path,
#      dec_key=..., dec_mode=...) on the MindIR file and runs it on the fixture's input.
# Prints PASS/FAIL per file and exits non-zero if anything failed.
#
# MODELCRYPT_PYTHON: the interpreter with modelcrypt installed (default: python3).
# MINDSPORE_PIP_ARGS: extra arguments for the pip install (e.g. an index URL or a version pin).
set -euo pipefail

VENV="${1:-/tmp/ms-venv}"
MC_PY="${MODELCRYPT_PYTHON:-python3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FIXTURES="$ROOT/tests/interop/mindspore"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/modelcrypt-ms-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV and installing mindspore (about 2.5 GB) ..."
    "$MC_PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install --quiet mindspore "numpy<2" ${MINDSPORE_PIP_ARGS:-}
fi
"$VENV/bin/python" -c "import mindspore; print('mindspore', mindspore.__version__)"

echo "writing files with modelcrypt ($("$MC_PY" -c 'import modelcrypt; print(modelcrypt.__version__)')) into $WORK"
"$MC_PY" - "$WORK" "$FIXTURES" <<'EOF'
import json, os, sys, warnings
import numpy as np
import modelcrypt

work, fixtures = sys.argv[1], sys.argv[2]
warnings.simplefilter("ignore", modelcrypt.InsecureFormatWarning)
rng = np.random.default_rng(0)
params = {
    "fc1.weight": rng.standard_normal((3, 4)).astype(np.float32),
    "fc1.bias": rng.standard_normal((3,)).astype(np.float32),
    "layer.f16": rng.standard_normal((2, 5)).astype(np.float16),
    "layer.f64": rng.standard_normal((4,)),
    "counts.i32": np.arange(-3, 3, dtype=np.int32).reshape(2, 3),
    "counts.i64": np.array([2**40, -7], dtype=np.int64),
    "mask": np.array([True, False, True]),
    "bytes.u8": np.arange(10, dtype=np.uint8),
    "global_step": np.array(42, dtype=np.int32),             # 0-d: dims [0]
    "big": rng.standard_normal((1 << 20,)).astype(np.float32),  # 4 MiB
}
np.savez(os.path.join(work, "expected.npz"), **params)
extra = {"note": "modelcrypt wrote this: ü"}              # MindSpore append_dict string
try:
    import ml_dtypes
    bf16 = np.array([[1.0, -2.5, 3.0], [0.5, 256.0, -0.125]], dtype=np.float32)  # exact in bfloat16
    extra["w.bf16"] = bf16.astype(ml_dtypes.bfloat16)
    np.save(os.path.join(work, "bf16.npy"), bf16)
except ImportError:
    print("ml_dtypes not installed: skipping the bfloat16 parameter")
params.update(extra)
cases = []
for name, key, mode in [
    ("gcm16.ckpt", b"0123456789ABCDEF", "AES-GCM"),
    ("gcm24.ckpt", bytes(range(24)), "AES-GCM"),
    ("gcm32.ckpt", bytes(range(32)), "AES-GCM"),
    ("cbc16.ckpt", b"0123456789ABCDEF", "AES-CBC"),
    ("cbc32.ckpt", bytes(range(32)), "AES-CBC"),
    ("sm4.ckpt", b"0123456789ABCDEF", "SM4-CBC"),
    ("plain.ckpt", None, None),
]:
    path = os.path.join(work, name)
    modelcrypt.save_checkpoint(params, path, key, mode or "AES-GCM", format="mindspore")
    cases.append({"kind": "ckpt", "path": path, "key": key.hex() if key else None, "mode": mode})
mindir_key = b"0123456789ABCDEF"
mindir = os.path.join(work, "net_gcm.mindir")
modelcrypt.encrypt_file(os.path.join(fixtures, "a_plain.mindir"), mindir, mindir_key, "AES-GCM", format="mindspore")
cases.append({"kind": "mindir", "path": mindir, "key": mindir_key.hex(), "mode": "AES-GCM"})
with open(os.path.join(work, "cases.json"), "w") as f:
    json.dump(cases, f)
EOF

echo "loading them with MindSpore"
"$VENV/bin/python" - "$WORK" "$FIXTURES" <<'EOF'
import json, os, sys, traceback
import numpy as np
import mindspore as ms

work, fixtures = sys.argv[1], sys.argv[2]
expected = dict(np.load(os.path.join(work, "expected.npz")))
fixture = json.load(open(os.path.join(fixtures, "expected.json")))
failed = 0
for case in json.load(open(os.path.join(work, "cases.json"))):
    name = os.path.basename(case["path"])
    key = bytes.fromhex(case["key"]) if case["key"] else None
    label = f"{name} ({case['mode'] or 'plain'})"
    try:
        if case["kind"] == "ckpt":
            kwargs = {"dec_key": key, "dec_mode": case["mode"]} if key else {}
            loaded = ms.load_checkpoint(case["path"], **kwargs)
            bf16 = os.path.join(work, "bf16.npy")
            names = sorted([*expected, "note", *(["w.bf16"] if os.path.exists(bf16) else [])])
            assert sorted(loaded) == names, f"names {sorted(loaded)}"
            assert loaded["note"] == "modelcrypt wrote this: ü", f"note {loaded['note']!r}"
            if os.path.exists(bf16):
                got = loaded["w.bf16"]
                assert got.dtype == ms.bfloat16, f"w.bf16: dtype {got.dtype}"
                assert np.array_equal(got.float().asnumpy(), np.load(bf16)), "w.bf16: values differ"
            for pname, want in expected.items():
                got = loaded[pname].asnumpy()
                assert got.dtype == want.dtype, f"{pname}: dtype {got.dtype} != {want.dtype}"
                assert got.shape == want.shape, f"{pname}: shape {got.shape} != {want.shape}"
                assert got.tobytes() == want.tobytes(), f"{pname}: values differ"
        else:
            graph = ms.load(case["path"], dec_key=key, dec_mode=case["mode"])
            net = ms.nn.GraphCell(graph)
            out = net(ms.Tensor(np.array(fixture["input"], dtype=np.float32))).asnumpy()
            want = np.array(fixture["output"], dtype=np.float32)
            assert np.allclose(out, want, rtol=1e-6, atol=1e-6), f"output {out} != {want}"
        print(f"PASS {label}")
    except Exception:
        failed += 1
        print(f"FAIL {label}")
        traceback.print_exc()
print("ALL PASS" if not failed else f"{failed} FAILED")
sys.exit(1 if failed else 0)
EOF
