"""Paddle 3 PIR programs (``model.json``, paddle.jit.save's default in Paddle 3) are refused with a
clear ValueError before Paddle sees them (Paddle's set_model_buffer crashes the process on one), and
the export advice in that message is followed here and gives a model that loads and runs.

Paddle runs in subprocesses: a regression would be a segmentation fault, which must fail this test,
not kill the test run."""

from __future__ import annotations

import os
import re
import textwrap

import numpy as np

import modelcrypt
from conftest import require
from subprocess_python import run_python

KEY = bytes(range(32))

_EXPORT = textwrap.dedent("""
    import sys
    import paddle
    paddle.seed(0)
    net = paddle.nn.Sequential(paddle.nn.Linear(4, 8), paddle.nn.ReLU(), paddle.nn.Linear(8, 3))
    net.eval()
    paddle.jit.save(net, sys.argv[1], input_spec=[paddle.static.InputSpec([None, 4], "float32", "x")])
""")

_REFUSE = textwrap.dedent("""
    import sys
    import modelcrypt.paddle as mcpaddle

    key = bytes.fromhex(sys.argv[1])
    for program, params in zip(*[iter(sys.argv[2:])] * 2):
        try:
            mcpaddle.create_predictor(program, params, key, disable_gpu=True)
        except ValueError as exc:
            print("REFUSED", exc)
        else:
            print("ACCEPTED")
""")

_RUN = textwrap.dedent("""
    import sys
    import numpy as np
    import paddle.inference as pi
    import modelcrypt.paddle as mcpaddle

    key = bytes.fromhex(sys.argv[1])
    pir_json, pir_params, enc_model, enc_params, x_path = sys.argv[2:7]

    def run(predictor, x):
        predictor.get_input_handle(predictor.get_input_names()[0]).copy_from_cpu(x)
        predictor.run()
        return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()

    x = np.load(x_path)
    config = pi.Config(pir_json, pir_params)  # plain Paddle, the PIR model from its files
    config.disable_gpu()
    reference = run(pi.create_predictor(config), x)
    out = run(mcpaddle.create_predictor(enc_model, enc_params, key, disable_gpu=True), x)
    assert np.allclose(out, reference, rtol=1e-6, atol=1e-7), (out, reference)
    assert np.abs(out).sum() > 0
    print("RUN-OK")
""")


def _env(**flags):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGS_enable_pir")}
    env.update(flags)
    return env


def test_pir_program_is_refused_with_export_advice_that_works(tmp_path):
    require("paddle", load=False)
    # 1. what Paddle 3 writes by default: a PIR program
    pir = tmp_path / "pir"
    pir.mkdir()
    run_python(_EXPORT, pir / "model", env=_env(), cwd=tmp_path)
    assert sorted(p.name for p in pir.iterdir()) == ["model.json", "model.pdiparams"]
    assert (pir / "model.json").read_bytes().startswith(b'{"base_code":{"magic":"pir"')
    enc = tmp_path / "enc"
    enc.mkdir()
    for name in ("model.json", "model.pdiparams"):
        modelcrypt.encrypt_file(pir / name, enc / (name + ".mcx"), KEY)
    # (a JSON that is not PIR is no ProgramDesc either)
    (tmp_path / "other.json").write_bytes(b'  \n{"layers": [1, 2, 3]}')
    modelcrypt.encrypt_file(tmp_path / "other.json", enc / "other.json.mcx", KEY)

    out = run_python(_REFUSE, KEY.hex(), enc / "model.json.mcx", enc / "model.pdiparams.mcx",
                  enc / "other.json.mcx", enc / "model.pdiparams.mcx", cwd=tmp_path)
    lines = out.splitlines()
    refused = [line for line in lines if line.startswith(("REFUSED", "ACCEPTED"))]
    assert len(refused) == 2 and all(line.startswith("REFUSED") for line in refused), out
    pir_message, other_message = refused
    assert str(enc / "model.json.mcx") in pir_message  # names the file
    assert "PIR program" in pir_message and "ProgramDesc" in pir_message
    assert str(enc / "other.json.mcx") in other_message and "JSON, not a ProgramDesc" in other_message

    # 2. follow the message's advice: the environment setting it names, for the exporting process
    advice = re.search(r"environment variable (FLAGS_\w+)=(\w+)", pir_message)
    assert advice, pir_message
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    run_python(_EXPORT, legacy / "model", env=_env(**{advice.group(1): advice.group(2)}), cwd=tmp_path)
    assert (legacy / "model.pdmodel").is_file() and (legacy / "model.pdiparams").is_file()
    for name in ("model.pdmodel", "model.pdiparams"):
        modelcrypt.encrypt_file(legacy / name, enc / (name + ".legacy.mcx"), KEY)
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(5).standard_normal((6, 4)).astype(np.float32))
    assert "RUN-OK" in run_python(_RUN, KEY.hex(), pir / "model.json", pir / "model.pdiparams",
                               enc / "model.pdmodel.legacy.mcx", enc / "model.pdiparams.legacy.mcx", x, cwd=tmp_path)
