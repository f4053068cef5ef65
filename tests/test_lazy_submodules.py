"""``import modelcrypt`` then ``modelcrypt.torch.load(...)``: the framework loaders are imported on
first attribute access (PEP 562), and a missing framework names the extra to install."""

from __future__ import annotations

import textwrap

import pytest

from conftest import require
from subprocess_python import run_python

FRAMEWORKS = {"torch": "torch", "onnxruntime": "onnxruntime", "paddle": "paddle"}


def test_import_modelcrypt_imports_no_framework():
    out = run_python(textwrap.dedent("""
        import sys
        import modelcrypt
        from modelcrypt import *  # noqa: F403
        heavy = ("torch", "onnxruntime", "paddle", "transformers", "modelcrypt.torch", "modelcrypt.onnxruntime",
                 "modelcrypt.paddle", "modelcrypt.numpy", "modelcrypt.transformers")  # (modelcrypt.mindspore is a parser, no framework)
        print(sorted(m for m in heavy if m in sys.modules))
        print(sorted(n for n in ("torch", "numpy", "onnxruntime", "paddle", "mindspore", "transformers")
                     if n in dir(modelcrypt)))
    """))
    loaded, listed = out.splitlines()
    assert loaded == "[]"
    assert listed == "['mindspore', 'numpy', 'onnxruntime', 'paddle', 'torch', 'transformers']"


def test_torch_submodule_loads_on_first_access(tmp_path):
    require("torch", load=False)
    out = run_python(textwrap.dedent("""
        import sys
        import numpy as np
        import modelcrypt
        key = bytes(range(32))
        modelcrypt.save_checkpoint({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, sys.argv[1], key)
        assert "modelcrypt.torch" not in sys.modules
        state = modelcrypt.torch.load_state_dict(sys.argv[1], key)   # no "import modelcrypt.torch"
        print(type(state["w"]).__module__, state["w"].sum().item())
        import modelcrypt.torch as direct
        print(direct is modelcrypt.torch, "modelcrypt.torch" in sys.modules)
    """), tmp_path / "ckpt.mcx")
    assert out.splitlines() == ["torch 15.0", "True True"]


def test_numpy_and_mindspore_submodules_are_the_modules(tmp_path):
    out = run_python(textwrap.dedent("""
        import sys
        import numpy as np
        import modelcrypt
        key = bytes(32)
        modelcrypt.numpy.save(sys.argv[1], np.arange(4), key)
        print(modelcrypt.numpy.load(sys.argv[1], key).tolist())
        print(modelcrypt.numpy.__name__, modelcrypt.mindspore.__name__, modelcrypt.numpy is not np)
    """), tmp_path / "a.npy.mcx")
    assert out.splitlines() == ["[0, 1, 2, 3]", "modelcrypt.numpy modelcrypt.mindspore True"]


@pytest.mark.parametrize("attribute,framework", sorted(FRAMEWORKS.items()))
def test_missing_framework_names_the_extra(attribute, framework):
    """With the framework absent (``sys.modules[name] = None`` makes Python's import of it fail),
    the first access raises ImportError naming ``pip install "modelcrypt[...]"``."""
    out = run_python(textwrap.dedent(f"""
        import sys
        sys.modules[{framework!r}] = None
        import modelcrypt
        try:
            modelcrypt.{attribute}
        except ImportError as exc:
            print("ImportError", exc)
        else:
            print("imported")
    """))
    assert out.startswith("ImportError")
    assert 'pip install "modelcrypt[' in out


def test_unknown_attribute_is_attribute_error():
    import modelcrypt

    with pytest.raises(AttributeError, match="has no attribute 'tensorflow'"):
        modelcrypt.tensorflow  # noqa: B018
    assert not hasattr(modelcrypt, "no_such_name")


def test_transformers_without_transformers_names_the_extra():
    """modelcrypt.transformers imports without transformers; its functions name the extra."""
    out = run_python(textwrap.dedent("""
        import sys
        sys.modules["transformers"] = None
        import modelcrypt
        try:
            modelcrypt.transformers.from_pretrained("model.enc", bytes(32))
        except ImportError as exc:
            print("ImportError", exc)
    """))
    assert out.startswith("ImportError") and 'pip install "modelcrypt[transformers]"' in out
