"""Running Python code in a child process for the framework tests (Paddle is always run in one: its
process state outlives a test), and the tiny Paddle model they export in the legacy format."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

#: Exports a tiny seeded 4 -> 8 -> 3 MLP with paddle.jit.save to the prefix argv[1]
#: (run with FLAGS_enable_pir_api=0 for the legacy .pdmodel + .pdiparams format).
PADDLE_EXPORT = textwrap.dedent("""
    import sys
    import paddle
    paddle.seed(0)
    net = paddle.nn.Sequential(paddle.nn.Linear(4, 8), paddle.nn.ReLU(), paddle.nn.Linear(8, 3))
    net.eval()
    paddle.jit.save(net, sys.argv[1], input_spec=[paddle.static.InputSpec([None, 4], "float32", "x")])
""")


def run_python(code: str, *args: object, env: dict | None = None, cwd: object = None) -> str:
    """Runs ``python -c code args...``; asserts it exits 0 (showing the end of its output otherwise)
    and returns its stdout."""
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout


def export_legacy_paddle_model(prefix: object, cwd: object) -> None:
    """PADDLE_EXPORT to ``prefix`` (.pdmodel + .pdiparams), in the legacy (non-PIR) format."""
    run_python(PADDLE_EXPORT, prefix, env=dict(os.environ, FLAGS_enable_pir_api="0"), cwd=cwd)
