"""The README's Python section runs as written: its first code block is extracted and executed in a
fresh process, in a temporary directory holding the ``model.onnx`` it names."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import require

README = Path(__file__).resolve().parent.parent / "README.md"


def _python_section_snippet() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "README's Python section has no python code block"
    return blocks[0]


def _tiny_onnx_model(path: Path) -> None:
    onnx = require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = np.arange(12, dtype=np.float32).reshape(4, 3)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "readme",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        [numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save_model(model, str(path))


def test_readme_python_snippet_runs_as_written(tmp_path):
    require("onnxruntime", load=False)
    _tiny_onnx_model(tmp_path / "model.onnx")
    snippet = _python_section_snippet()
    assert "bytes(buf)" not in snippet  # a second, unwiped plaintext copy is not the example
    # what the snippet leaves behind, checked after it ran
    check = (
        "\nimport numpy as _np\n"
        "assert buf.closed\n"
        "assert head.tobytes() == open('model.onnx', 'rb').read()[:16]\n"
        "_y = session.run(None, {'x': _np.ones((1, 4), _np.float32)})[0]\n"
        "assert _y.tolist() == [[18.0, 22.0, 26.0]], _y\n"
        "print('README OK')\n"
    )
    proc = subprocess.run([sys.executable, "-c", snippet + check], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "README OK" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "model.onnx.mcx"]  # nothing else written
