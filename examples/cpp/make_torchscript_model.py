"""Writes a small TorchScript model for torch_inference and prints what it should answer.

    python examples/cpp/make_torchscript_model.py model.pt [--seed N]

The model (conv + linear, input shape 1,3,16,16) is saved with torch.jit.save; the script prints the
JSON line torch_inference prints for `--shape 1,3,16,16 --seed N` on the same model, computed here in
Python, so the C++ output can be compared with it (values agree to float32 rounding).
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np
import torch

SHAPE = (1, 3, 16, 16)


class TinyConvNet(torch.nn.Module):
    """Conv 3->8 (3x3), ReLU, 2x2 max pool, linear 512->10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.nn.functional.max_pool2d(torch.relu(self.conv(x)), 2).flatten(1))


def seeded_input(seed: int, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    """The input torch_inference generates for --seed (see torch_inference.cpp)."""
    n = int(np.prod(shape))
    x = ((np.arange(n, dtype=np.int64) * 7919 + seed * 104729) % 2001 - 1000).astype("<f4") / np.float32(1000)
    return x.reshape(shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output", help="where to write the TorchScript model (e.g. model.pt)")
    parser.add_argument("--seed", type=int, default=0, help="the --seed torch_inference will be given")
    args = parser.parse_args()
    # torch 2.13 deprecates TorchScript in favour of torch.export; it is still what libtorch's
    # torch::jit::load reads.
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
    torch.manual_seed(0)
    model = torch.jit.script(TinyConvNet().eval())
    torch.jit.save(model, args.output)
    with torch.no_grad():
        y = model(torch.from_numpy(seeded_input(args.seed)))
    values = [float(f"{v:.9g}") for v in y.flatten().tolist()]
    print(json.dumps({"outputs": [{"dtype": "Float", "shape": list(y.shape), "values": values}]}))


if __name__ == "__main__":
    main()
