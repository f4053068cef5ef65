"""A tiny PyTorch training loop that saves encrypted checkpoints and resumes from the latest one.

    python examples/torch_training_loop.py --dir runs/demo --steps 20 --save-every 5
    python examples/torch_training_loop.py --dir runs/demo --steps 40    # resumes at step 20

Checkpoints are "<dir>/linear-<step>.ckpt": modelcrypt containers whose plaintext is a
.safetensors file (model weights plus the step counter). The key comes from --key-file (created,
mode 0600, if missing) or, when set, the MODELCRYPT_KEY environment variable (hex or base64).
Keep the key away from the checkpoints in real use.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch

import modelcrypt


def make_data(n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    true_w = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    return x, x @ true_w.T + 0.25


def get_key(args: argparse.Namespace) -> bytearray:
    if os.environ.get("MODELCRYPT_KEY"):
        return modelcrypt.key_from_env("MODELCRYPT_KEY")
    if not os.path.exists(args.key_file):
        modelcrypt.write_key_file(args.key_file, modelcrypt.generate_key())
        print(f"new key written to {args.key_file}")
    return modelcrypt.read_key_file(args.key_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="checkpoints", help="checkpoint directory")
    parser.add_argument("--key-file", default=None, help="key file (default: <dir>/train.key)")
    parser.add_argument("--steps", type=int, default=20, help="train until this step")
    parser.add_argument("--save-every", type=int, default=5)
    parser.add_argument("--keep", type=int, default=3)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    args.key_file = args.key_file or os.path.join(args.dir, "train.key")
    key = get_key(args)

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    config = modelcrypt.CheckpointConfig(save_checkpoint_steps=args.save_every, keep_checkpoint_max=args.keep,
                                         enc_key=key, enc_mode="AES-GCM")
    checkpoints = modelcrypt.ModelCheckpoint("linear", directory=args.dir, config=config)

    start = 0
    if checkpoints.latest is not None:
        state = modelcrypt.load_checkpoint(checkpoints.latest, key)  # decrypted in memory only
        start = int(state.pop("step"))
        model.load_state_dict({name: torch.from_numpy(array) for name, array in state.items()})
        print(f"resumed from {checkpoints.latest} at step {start}")
    else:
        print("starting from scratch")

    x, y = make_data()
    loss = None
    for step in range(start + 1, args.steps + 1):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        params = {**model.state_dict(), "step": np.array(step, dtype=np.int64)}
        saved = checkpoints.step(params, step)
        if saved:
            print(f"step {step}: loss {loss.item():.4f}, saved {os.path.basename(saved)}")
    if loss is not None:
        print(f"final loss {loss.item():.4f}")
    print("kept:", " ".join(os.path.basename(p) for p in checkpoints.checkpoints()))
    modelcrypt.wipe(key)


if __name__ == "__main__":
    main()
