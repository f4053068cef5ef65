"""Worker processes of tests/test_dcp.py: real multi-process DCP jobs (gloo over loopback, file://
rendezvous). Each worker writes what it saw to ``out/<task>_<rank>.json``."""

from __future__ import annotations

import datetime
import json
import os
import traceback

import torch
import torch.distributed as dist

SHAPES = {"embed.weight": (256, 1024), "layer.w2_bf16": (40, 8), "head.bias": (16,)}
DTYPES = {"embed.weight": torch.float32, "layer.w2_bf16": torch.bfloat16, "head.bias": torch.float32}


def full_tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1234)
    return {n: torch.randn(SHAPES[n], generator=g).to(DTYPES[n]) for n in SHAPES}


WIDE = (8, 65536)  # float32 rows of 256 KiB: a column quarter of a row spans whole encryption chunks


def wide_tensor() -> torch.Tensor:
    return torch.arange(WIDE[0] * WIDE[1], dtype=torch.float32).reshape(WIDE)


BIG = {"a": (4096, 2048), "b": (2048, 1024)}  # float32: 32 MiB and 8 MiB, many 1 MiB encryption chunks


def big_tensors() -> dict[str, torch.Tensor]:
    return {n: torch.arange(r * c, dtype=torch.float32).reshape(r, c) + i for i, (n, (r, c)) in enumerate(BIG.items())}


def _mesh(world: int):
    from torch.distributed.device_mesh import init_device_mesh
    return init_device_mesh("cpu", (world,))


def sharded_state(world: int, *, empty: bool) -> dict:
    """big and w2 row-sharded (Shard(0)) over all ranks, bias replicated, plus a plain object."""
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor
    mesh = _mesh(world)
    full = full_tensors()
    state = {}
    for name, t in full.items():
        src = torch.zeros_like(t) if empty else t
        placement = [Replicate()] if name == "head.bias" else [Shard(0)]
        state[name] = distribute_tensor(src, mesh, placement)
    state["step"] = 0 if empty else 42
    return state


def _init(rank: int, world: int, init_file: str) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))


def run(rank: int, world: int, init_file: str, out: str, task: str, args: dict) -> None:
    import modelcrypt
    import torch.distributed.checkpoint as dcp
    from modelcrypt import _core
    from modelcrypt.torch import dcp as mdcp

    _init(rank, world, init_file)
    report: dict = {"rank": rank}
    try:
        key = bytes.fromhex(args["key"])
        if task == "save":
            state = sharded_state(world, empty=False)
            writer = mdcp.EncryptedFileSystemWriter(args["path"], key, chunk_size=args.get("chunk_size", 1 << 20))
            dcp.save(state, storage_writer=writer)
        elif task == "save_wide":  # row-sharded (Shard(0)) when saved
            from torch.distributed.tensor import Shard, distribute_tensor
            dcp.save({"wide": distribute_tensor(wide_tensor(), _mesh(world), [Shard(0)])},
                     storage_writer=mdcp.EncryptedFileSystemWriter(args["path"], key, chunk_size=args["chunk_size"]))
        elif task == "load_columns":  # column-sharded (Shard(1), as tensor parallelism cuts) when loaded
            from torch.distributed.tensor import Shard, distribute_tensor
            state = {"wide": distribute_tensor(torch.zeros(WIDE), _mesh(world), [Shard(1)])}
            _core.reset_debug_counters()
            dcp.load(state, storage_reader=mdcp.EncryptedFileSystemReader(args["path"], key))
            report["counters"] = _core.debug_counters()
            report["equal"] = {"wide": bool(torch.equal(state["wide"].full_tensor(), wide_tensor()))}
        elif task == "save_rows":  # one row of "x" per rank: rank files of equal size
            from torch.distributed.tensor import Shard, distribute_tensor
            x = torch.arange(world * 4, dtype=torch.float32).reshape(world, 4)
            dcp.save({"x": distribute_tensor(x, _mesh(world), [Shard(0)])},
                     storage_writer=mdcp.EncryptedFileSystemWriter(args["path"], key))
        elif task == "save_dies":  # rank 1 is killed right after writing its rank file, before .metadata
            from modelcrypt.checkpoint import dcp as storage
            real = storage.EncryptedFileSystemWriter._write_rank_file

            def write_then_die(self, *a, **kw):
                out = real(self, *a, **kw)
                if rank == 1:
                    os._exit(17)
                return out

            storage.EncryptedFileSystemWriter._write_rank_file = write_then_die
            state = {n: t * 0 + 9 for n, t in sharded_state(world, empty=False).items() if n != "step"}
            dcp.save(state, storage_writer=mdcp.EncryptedFileSystemWriter(args["path"], key))
        elif task == "load":
            state = sharded_state(world, empty=True)
            _core.reset_debug_counters()
            dcp.load(state, storage_reader=mdcp.EncryptedFileSystemReader(args["path"], key))
            report["counters"] = _core.debug_counters()
            full = full_tensors()
            report["equal"] = {n: bool(torch.equal(state[n].full_tensor(), full[n])) for n in SHAPES}
            report["step"] = state["step"]
        elif task == "load_checkpoint_file":
            state = sharded_state(world, empty=True)
            state.pop("step")
            _core.reset_debug_counters()
            dcp.load(state, storage_reader=mdcp.ModelcryptCheckpointReader(args["path"], key))
            report["counters"] = _core.debug_counters()
            full = full_tensors()
            report["equal"] = {n: bool(torch.equal(state[n].full_tensor(), full[n])) for n in SHAPES}
        elif task == "load_big_checkpoint":  # save_checkpoint shards of BIG, row-sharded when loaded
            from torch.distributed.tensor import Shard, distribute_tensor
            state = {n: distribute_tensor(torch.zeros(shape), _mesh(world), [Shard(0)]) for n, shape in BIG.items()}
            _core.reset_debug_counters()
            dcp.load(state, storage_reader=mdcp.ModelcryptCheckpointReader(args["path"], key))
            report["counters"] = _core.debug_counters()
            report["equal"] = {n: bool(torch.equal(state[n].full_tensor(), t)) for n, t in big_tensors().items()}
        elif task == "fsdp2":
            from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict
            from torch.distributed.fsdp import fully_shard
            torch.manual_seed(0)
            model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8))
            reference = {k: v.clone() for k, v in model.state_dict().items()}
            fully_shard(model, mesh=_mesh(world))
            if args["mode"] == "save":
                dcp.save(get_model_state_dict(model), storage_writer=mdcp.EncryptedFileSystemWriter(args["path"], key))
            else:
                with torch.no_grad():
                    for p in model.parameters():
                        p.zero_()
                sd = get_model_state_dict(model)
                dcp.load(sd, storage_reader=mdcp.EncryptedFileSystemReader(args["path"], key))
                set_model_state_dict(model, sd)
                got = {k: v.full_tensor() for k, v in get_model_state_dict(model).items()}
                report["equal"] = {k: bool(torch.equal(got[k], reference[k])) for k in reference}
        elif task == "load_fails":
            state = sharded_state(world, empty=True)
            try:
                mdcp.load(state, args["path"], key)
                report["error"] = None
            except modelcrypt.ModelCryptError as exc:
                report["error"] = type(exc).__name__
                report["message"] = str(exc)
            report["untouched"] = bool(all(torch.count_nonzero(state[n].to_local()) == 0 for n in SHAPES))
        elif task == "load_wrong_key_on_one_rank":  # rank 1 only has the wrong key: every rank must raise
            import time
            state = sharded_state(world, empty=True)
            start = time.monotonic()
            try:
                mdcp.load(state, args["path"], bytes(32) if rank == 1 else key)
                report["error"] = None
            except BaseException as exc:  # noqa: BLE001 - the test checks which
                report["error"] = type(exc).__name__
                report["modelcrypt_error"] = isinstance(exc, modelcrypt.ModelCryptError)
                report["message"] = str(exc)[:300]
            report["seconds"] = time.monotonic() - start
            report["untouched"] = bool(all(torch.count_nonzero(state[n].to_local()) == 0 for n in SHAPES))
        else:
            raise ValueError(task)
        dist.barrier()
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        report["crash"] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
    finally:
        with open(os.path.join(out, f"{task}_{rank}.json"), "w") as f:
            json.dump(report, f)
        dist.destroy_process_group()
    # no interpreter teardown: gloo's worker threads can abort it (SIGABRT, "terminate called without an
    # active exception", seen once here after a finished load); the report above is what the test reads
    import sys
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
