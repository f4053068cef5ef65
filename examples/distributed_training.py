"""Encrypted distributed checkpoints with PyTorch DCP: train an FSDP2-sharded model on CPU (gloo),
save an encrypted checkpoint from every rank, and load it back (on any number of ranks).

    modelcrypt keygen -o train.key
    export MODELCRYPT_KEY="$(cat train.key)"
    torchrun --nproc-per-node 2 --master-addr 127.0.0.1 --master-port 29512 examples/distributed_training.py ckpt/

Nothing is written in plaintext: every rank writes one modelcrypt file, and the checkpoint's
``.metadata`` (tensor names, shapes, where each shard is) is encrypted too. The key comes from the
environment (``MODELCRYPT_KEY``), never from the command line.
"""

import os
import sys

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

import modelcrypt
from modelcrypt.torch import dcp as mdcp


def make_model(mesh):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
    fully_shard(model, mesh=mesh)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2)


def main(path: str) -> int:
    # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR/PORT (env://); INIT_METHOD=file:///path also works
    dist.init_process_group("gloo", init_method=os.environ.get("INIT_METHOD", "env://"),
                            rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))
    rank, world = dist.get_rank(), dist.get_world_size()
    mesh = init_device_mesh("cpu", (world,))
    key = modelcrypt.key_from_env("MODELCRYPT_KEY")

    model, opt = make_model(mesh)
    data = torch.randn(64, 16, generator=torch.Generator().manual_seed(rank))
    for _ in range(5):  # a few training steps
        opt.zero_grad()
        model(data).pow(2).mean().backward()
        opt.step()
    model_sd, optim_sd = get_state_dict(model, opt)
    dcp.save({"model": model_sd, "optim": optim_sd, "step": 5},
             storage_writer=mdcp.EncryptedFileSystemWriter(path, key))

    resumed, resumed_opt = make_model(mesh)  # a fresh job would start here
    model_sd, optim_sd = get_state_dict(resumed, resumed_opt)
    state = {"model": model_sd, "optim": optim_sd, "step": 0}
    dcp.load(state, storage_reader=mdcp.EncryptedFileSystemReader(path, key))
    set_state_dict(resumed, resumed_opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
    same = all(torch.equal(a.full_tensor(), b.full_tensor())
               for a, b in zip(model.state_dict().values(), resumed.state_dict().values()))
    if rank == 0:
        print(f"saved and reloaded an encrypted checkpoint from {world} ranks at step {state['step']}: "
              f"{'identical' if same else 'DIFFERENT'}")
    dist.barrier()  # every rank is done with its collectives before the group goes away
    dist.destroy_process_group()
    return 0 if same else 1


if __name__ == "__main__":
    status = main(sys.argv[1] if len(sys.argv) > 1 else "ckpt")
    # Leave without interpreter teardown: gloo's worker threads can abort it after a finished run
    # (SIGABRT, "terminate called without an active exception"), which would
    # turn a good run into a failed job. Everything is saved and printed by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
