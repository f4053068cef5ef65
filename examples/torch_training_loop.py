"""A tiny PyTorch training loop that saves encrypted checkpoints and resumes from the latest one.

    python examples/torch_training_loop.py --dir runs/demo --steps 20 --save-every 5
    python examples/torch_training_loop.py --dir runs/demo --steps 40    # resumes at step 20

Checkpoints are "<dir>/linear-<step>.ckpt": modelcrypt containers whose plaintext is a
.safetensors file holding the whole training state — model weights, the Adam optimizer's state
(moments, step counts, hyper-parameters), the RNG state that picks the minibatches, and the step —
so a resumed run continues bit for bit as if it had never stopped (no pickle anywhere: the
structure is typed JSON inside the encrypted file). The key comes from --key-file (created,
mode 0600, if missing) or, when set, the MODELCRYPT_KEY environment variable (hex or base64).
Keep the key away from the checkpoints in real use.
"""

from __future__ import annotations

import argparse
import hashlib
import os

import torch

import modelcrypt
import modelcrypt.torch


def make_data(n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    true_w = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    return x, x @ true_w.T + 0.25


def state_digest(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> str:
    """SHA-256 over every byte of the model's and the optimizer's tensors (bit-identical resume check)."""
    digest = hashlib.sha256()
    for t in list(model.state_dict().values()) + [v for s in optimizer.state_dict()["state"].values()
                                                    for v in s.values()]:
        digest.update(t.detach().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


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
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    config = modelcrypt.CheckpointConfig(save_checkpoint_steps=args.save_every, keep_checkpoint_max=args.keep,
                                         enc_key=key, enc_mode="AES-GCM")
    checkpoints = modelcrypt.ModelCheckpoint("linear", directory=args.dir, config=config)

    start = 0
    if checkpoints.latest is not None:
        state = modelcrypt.torch.load_state_dict(checkpoints.latest, key)  # decrypted in memory only
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        start = state["step"]
        print(f"resumed from {checkpoints.latest} at step {start}")
    else:
        print("starting from scratch")

    x, y = make_data()
    loss = None
    for step in range(start + 1, args.steps + 1):
        batch = torch.randperm(len(x))[:32]  # minibatches drawn from the RNG whose state is checkpointed
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
        loss.backward()
        optimizer.step()
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
                 "step": step}
        saved = checkpoints.step(state, step)
        if saved:
            print(f"step {step}: loss {loss.item():.4f}, saved {os.path.basename(saved)}")
    if loss is not None:
        print(f"final loss {loss.item():.6f}")
    print(f"final state sha256 {state_digest(model, optimizer)}")
    print("kept:", " ".join(os.path.basename(p) for p in checkpoints.checkpoints()))
    modelcrypt.wipe(key)


if __name__ == "__main__":
    main()
