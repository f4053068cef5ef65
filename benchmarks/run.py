#!/usr/bin/env python3
"""modelcrypt benchmark harness: encrypted load against plain reads and the Python peers, in one run.

    python benchmarks/run.py [--size 1GiB] [--json out.json] [--repeat 3] [--dir DIR]
                             [--mindspore-python PATH] [--cases a,b,...] [--keep] [--dcp-sync-files]

Creates its data once in DIR (a fresh temporary directory on disk by default), then runs every case
in a fresh subprocess per repetition (this same script with ``--child``), times only the operation,
and reports the median. Warm page cache: before every repetition the parent reads the case's input
files once, so each measurement is of data already in the page cache (see benchmarks/README.md).

Only the standard library is imported here; numpy, cryptography, modelcrypt, torch and mindspore
are imported by the child that needs them (so a MindSpore virtual environment without modelcrypt can
run the MindSpore children). The dcp_* children start 2 ranks of their own (torch.multiprocessing,
spawn, gloo over loopback) and time dcp.save / dcp.load inside them.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MiB = 1 << 20
GiB = 1 << 30
CHUNK = 1 * MiB                # modelcrypt chunk size and cryptography streaming piece size
GEN_PIECE = 64 * MiB           # random data is generated and written in pieces of this size
NONCE_LEN, TAG_LEN = 12, 16    # cryptography peer file: nonce || ciphertext || tag
CKPT_TENSORS = 64              # checkpoint: 64 float32 tensors (8 MiB each at 512 MiB)
SEED = 20240607
DCP_TENSORS = 8                # DCP cases: 8 float32 tensors of --size bytes in all, row-sharded ...
DCP_RANKS = 2                  # ... over 2 ranks (DTensor, Shard(0))
RESULT_MARK = "@@MODELCRYPT_BENCH_RESULT "

# name -> (description, input files, bytes the GB/s figure is computed on: "size" or "ckpt")
CASES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "readinto": ("plaintext: f.readinto() into a fresh bytearray", ("plain",), "size"),
    "fromfile": ("plaintext: np.fromfile(path, dtype=uint8)", ("plain",), "size"),
    "load": ("modelcrypt.load(path, key) (default threads = all cores)", ("mcx",), "size"),
    "load_threads1": ("modelcrypt.load(path, key, threads=1)", ("mcx",), "size"),
    "aesgcm_oneshot": ("cryptography AESGCM(key).decrypt(nonce, f.read()[12:], None), read included",
                       ("gcm",), "size"),
    "aesgcm_stream": ("cryptography Cipher(AES, GCM(nonce, tag)).decryptor().update_into, 1 MiB pieces "
                      "into a preallocated bytearray", ("gcm",), "size"),
    "encrypt_file": ("modelcrypt.encrypt_file(plain, out, key, chunk_size=1 MiB) (default durable=True: "
                     "incl. its fsync)", ("plain",), "size"),
    "encrypt_file_nofsync": ("modelcrypt.encrypt_file(plain, out, key, chunk_size=1 MiB, durable=False)",
                             ("plain",), "size"),
    "decrypt_file": ("modelcrypt.decrypt_file(mcx, out, key) (default durable=True: incl. its fsync)",
                     ("mcx",), "size"),
    "decrypt_file_nofsync": ("modelcrypt.decrypt_file(mcx, out, key, durable=False)", ("mcx",), "size"),
    "copy": ("plaintext file copy, no crypto: readinto a 16 MiB buffer + write, no fsync (ceiling for "
             "the *_nofsync cases)", ("plain",), "size"),
    "copy_fsync": ("plaintext file copy as `copy`, then fsync (ceiling for encrypt_file/decrypt_file)",
                   ("plain",), "size"),
    "load_signed": ("modelcrypt.load(signed, key, trusted_signers=[pk]): the publisher signature (format v3) "
                    "checked chunk by chunk beside the decryption", ("signed",), "size"),
    "verify_signature": ("modelcrypt.verify_signature(signed, [pk]): keyless, SHA-256 of every chunk, no "
                         "decryption", ("signed",), "size"),
    "sha256sum": ("sha256sum of the same signed file (coreutils, one process; reference for verify_signature)",
                  ("signed",), "size"),
    "load_identity": ("modelcrypt.load(rcpt, identity=ident): the same plaintext encrypted to an X25519 recipient "
                      "(format v2; one X25519 + HKDF unwrap of the file key, then as load)", ("rcpt",), "size"),
    "recipients_add": ("modelcrypt.add_recipients(rcpt, identity=ident, recipients=[other]): in place, header-only "
                       "rewrite (default durable=True: incl. its fsync); removed again after the timer",
                       ("rcpt",), "size"),
    "reencrypt_recipients": ("open_encrypted(rcpt, identity=ident).reencrypt_to(out, recipients=[ident, other]): the "
                             "same recipient set by re-encrypting the file (default durable=True: incl. its fsync)",
                             ("rcpt",), "size"),
    "load_checkpoint": ("modelcrypt.load_checkpoint(ckpt, key) -> dict of numpy arrays", ("ckpt",), "ckpt"),
    # issue 18: decrypting into an instantiated model (its parameters already in memory, filled)
    "load_into_model": ("modelcrypt.torch.load_into_model(model, ckpt, key): every tensor decrypted straight "
                        "into the existing parameters of a torch model", ("ckpt",), "ckpt"),
    "load_checkpoint_state_dict": ("model.load_state_dict({k: torch.from_numpy(v) for k, v in "
                                   "modelcrypt.load_checkpoint(ckpt, key).items()}) into the same model "
                                   "(reference for load_into_model)", ("ckpt",), "ckpt"),
    "s3_load": ("modelcrypt.load('s3://bench/plain.bin.mcx', key, storage_options=...) from a local S3 server "
                "(moto, started by the parent on 127.0.0.1): ranged GETs in parallel, decrypted as they arrive",
                ("mcx",), "size"),
    "s3_cat_file": ("s3fs S3FileSystem.cat_file('bench/plain.bin') of the plaintext object from the same server "
                    "(fsspec's own plain download; reference for s3_load)", ("plain",), "size"),
    "mindspore_load_checkpoint": ("mindspore.load_checkpoint(ckpt, dec_key=key16, dec_mode='AES-GCM')",
                                  ("ms_enc",), "ckpt"),
    "mindspore_load_checkpoint_plain": ("mindspore.load_checkpoint(ckpt) of the same params, unencrypted "
                                        "(reference)", ("ms_plain",), "ckpt"),
    "dcp_save": ("torch.distributed.checkpoint.save(state, storage_writer=modelcrypt.torch.dcp."
                 "EncryptedFileSystemWriter(out, key, sync_files=S)), 2 ranks, rank 0's time", (), "size"),
    "dcp_save_plain": ("dcp.save(state, storage_writer=FileSystemWriter(out, sync_files=S)) of the same state "
                       "(DCP's own, unencrypted)", (), "size"),
    "dcp_save_fsync": ("dcp_save with sync_files=True (both writers' default): every rank file made durable",
                       (), "size"),
    "dcp_save_plain_fsync": ("dcp_save_plain with sync_files=True (FileSystemWriter's default)", (), "size"),
    "dcp_load": ("dcp.load(state, storage_reader=EncryptedFileSystemReader(ckpt, key)), 2 ranks, into "
                 "preallocated shards", ("dcp_enc",), "size"),
    "dcp_load_plain": ("dcp.load(state, storage_reader=FileSystemReader(ckpt)) of the same state, saved by "
                       "FileSystemWriter", ("dcp_plain",), "size"),
}
DCP_CASES = [c for c in CASES if c.startswith("dcp_")]
S3_CASES = [c for c in CASES if c.startswith("s3_")]
S3_BUCKET = "bench"
S3_ENV = "MODELCRYPT_BENCH_S3_ENDPOINT"  # the parent's moto server, for the s3_* children
DEFAULT_CASES = [c for c in CASES if not c.startswith("mindspore")]
MINDSPORE_CASES = [c for c in CASES if c.startswith("mindspore")]
# issue 14 (format v2 recipients), the cases its two targets compare; benchmarks/recipients.py runs these
RECIPIENT_CASES = ["load", "load_identity", "recipients_add", "reencrypt_recipients"]

FILES = {  # logical name -> file name inside DIR
    "key": "key.bin",
    "plain": "plain.bin",
    "mcx": "plain.bin.mcx",
    "signed": "plain.bin.signed.mcx",
    "signing_seed": "signing_seed.bin",
    "rcpt": "plain.bin.rcpt.mcx",        # format v2, encrypted to the X25519 identity below only
    "identity": "identity.txt",          # its identity (MODELCRYPT-SECRET-KEY-1..., 0600)
    "other_identity": "other_identity.txt",  # the recipient recipients_add adds (and removes again)
    "gcm": "plain.bin.gcm",
    "ckpt": "params.ckpt.mcx",
    "params_raw": "params.f32",
    "ms_enc": "params_enc.ckpt",
    "ms_plain": "params_plain.ckpt",
    "dcp_enc": "dcp_enc",      # directories: a 2-rank DCP checkpoint, encrypted (modelcrypt) ...
    "dcp_plain": "dcp_plain",  # ... and DCP's plain FileSystemWriter, of the same state
    "manifest": "manifest.json",
}
OUTPUTS = ("out.mcx", "out.bin", "dcp_out")  # written by the file-to-file and dcp_save cases, removed after each repetition
FILE_TO_FILE = ("encrypt_file", "encrypt_file_nofsync", "decrypt_file", "decrypt_file_nofsync", "copy", "copy_fsync")


# ----------------------------------------------------------------------------------------------------
# small helpers (used by parent and children)

def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?)(b?)\s*", text.lower())
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (examples: 1GiB, 512MiB, 1GB, 1073741824)")
    num, unit, binary, b = m.groups()
    base = 1024 if (binary or (unit and not b)) else 1000  # "1G" and "1GiB" binary, "1GB" decimal
    n = int(float(num) * base ** " kmgt".index(unit or " "))
    if n <= 0:
        raise argparse.ArgumentTypeError("size must be positive")
    return n


def fmt_bytes(n: float) -> str:
    for unit, div in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if abs(n) >= div:
            return f"{n / div:.2f} {unit}".replace(".00 ", " ")
    return f"{int(n)} B"


def proc_status() -> dict[str, int]:
    """Memory fields of /proc/self/status in bytes."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("Vm", "Rss")):
                key, rest = line.split(":", 1)
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB":
                    out[key] = int(parts[0]) * 1024
    return out


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def read_fully_into(f, mv) -> int:
    """readinto until mv is full or EOF (one read() returns at most ~2 GiB on Linux)."""
    done = 0
    while done < len(mv):
        n = f.readinto(mv[done:])
        if not n:
            break
        done += n
    return done


def files_under(path: str) -> list[str]:
    """path itself, or the files inside it when it is a directory (a DCP checkpoint)."""
    if not os.path.isdir(path):
        return [path]
    return sorted(os.path.join(root, n) for root, _, names in os.walk(path) for n in names)


def path_size(path: str) -> int:
    return sum(os.path.getsize(f) for f in files_under(path))


def remove_path(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def warm(paths) -> None:
    """Read each file (every file of a directory) once through a small buffer so that it is in the page cache."""
    buf = memoryview(bytearray(16 * MiB))
    for path in [f for p in paths for f in files_under(p)]:
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


def prefault(nbytes: int) -> float:
    """Touch nbytes of fresh anonymous memory (huge pages if allowed) and give it back; returns seconds.

    On a VM whose free memory is handed back to the host (virtio-balloon free page reporting), the
    first touch of such memory also faults on the host, which is slow and erratic. Touching and
    freeing this much memory right before the operation lets the operation's own allocations reuse
    host-backed pages, so it pays the guest's page-fault cost only, as a long-running process would.
    """
    import ctypes
    import mmap
    t = time.perf_counter()
    m = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # the default is MAP_SHARED (shmem)
    try:
        if hasattr(m, "madvise") and hasattr(mmap, "MADV_HUGEPAGE"):
            m.madvise(mmap.MADV_HUGEPAGE)
        c = (ctypes.c_char * nbytes).from_buffer(m)
        ctypes.memset(c, 1, nbytes)
        del c
    finally:
        m.close()
    return time.perf_counter() - t


def page_cache_residency(path: str) -> float | None:
    """Fraction of the file's pages in the page cache (mincore(2) on a private, never written mapping)."""
    import ctypes
    import mmap
    try:
        size = os.path.getsize(path)
        if size == 0:
            return 1.0
        libc = ctypes.CDLL(None, use_errno=True)
        page = mmap.PAGESIZE
        npages = (size + page - 1) // page
        vec = (ctypes.c_ubyte * npages)()
        with open(path, "rb") as f:
            m = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)
        try:
            anchor = ctypes.c_char.from_buffer(m)
            rc = libc.mincore(ctypes.c_void_p(ctypes.addressof(anchor)), ctypes.c_size_t(size), vec)
            del anchor
        finally:
            m.close()
        if rc != 0:
            return None
        return sum(b & 1 for b in bytes(vec)) / npages
    except (OSError, AttributeError, ValueError, TypeError):
        return None


# ----------------------------------------------------------------------------------------------------
# child: one case, one repetition, one fresh process

def child_main(case: str, d: str, size: int, ckpt_size: int, do_prefault: bool = True,
               dcp_sync_files: bool = False) -> None:
    if case in DCP_CASES or case == "dcp_setup":
        dcp_child(case, d, size, dcp_sync_files, do_prefault)
        return
    p = {k: os.path.join(d, v) for k, v in FILES.items()}
    with open(p["key"], "rb") as f:
        key = f.read()
    key16 = key[:16]
    extra: dict = {}

    if case in ("readinto", "fromfile", "load", "load_threads1", "aesgcm_oneshot", "aesgcm_stream",
                "load_identity", *S3_CASES) + FILE_TO_FILE:
        with open(p["plain"], "rb") as f:  # 4 KiB of expected plaintext, to check the result afterwards
            head = f.read(4096)

    # --- setup (imports, paths); nothing here is timed
    if case == "readinto":
        def op():
            buf = bytearray(size)
            with open(p["plain"], "rb", buffering=0) as f:
                n = read_fully_into(f, memoryview(buf))
            assert n == size
            return buf

        def check(r):
            return len(r) == size and bytes(r[:4096]) == head
    elif case == "fromfile":
        import numpy as np

        def op():
            return np.fromfile(p["plain"], dtype=np.uint8)

        def check(r):
            return r.nbytes == size and r[:4096].tobytes() == head
    elif case in S3_CASES:
        import s3fs

        options = {"endpoint_url": os.environ[S3_ENV], "key": "testing", "secret": "testing",
                   "client_kwargs": {"region_name": "us-east-1"}}
        fs = s3fs.S3FileSystem(**options)  # the instance load's fsspec.url_to_fs reuses (fsspec's cache)
        if case == "s3_load":
            import modelcrypt

            def op():
                return modelcrypt.load(f"s3://{S3_BUCKET}/{FILES['mcx']}", key, storage_options=options)

            def check(r):
                return len(r) == size and bytes(memoryview(r)[:4096]) == head
        else:
            def op():
                return fs.cat_file(f"{S3_BUCKET}/{FILES['plain']}")

            def check(r):
                return len(r) == size and r[:4096] == head
    elif case in ("load", "load_threads1"):
        import modelcrypt
        kw = {"threads": 1} if case == "load_threads1" else {}

        def op():
            return modelcrypt.load(p["mcx"], key, **kw)

        def check(r):
            ok = len(r) == size and bytes(memoryview(r)[:4096]) == head
            r.close()
            return ok
    elif case == "aesgcm_oneshot":
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        def op():
            t = time.perf_counter()
            with open(p["gcm"], "rb") as f:
                data = f.read()
            extra["read_seconds"] = time.perf_counter() - t
            out = AESGCM(key).decrypt(data[:NONCE_LEN], memoryview(data)[NONCE_LEN:], None)
            return out

        def check(r):
            return len(r) == size and r[:4096] == head
    elif case == "aesgcm_stream":
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        def op():
            with open(p["gcm"], "rb", buffering=0) as f:
                total = os.fstat(f.fileno()).st_size - NONCE_LEN - TAG_LEN
                nonce = f.read(NONCE_LEN)
                f.seek(-TAG_LEN, os.SEEK_END)
                tag = f.read(TAG_LEN)
                f.seek(NONCE_LEN)
                dec = Cipher(algorithms.AES(key), modes.GCM(nonce, tag)).decryptor()
                out = bytearray(total + 15)  # update_into needs len(data) + block_size - 1 bytes of room
                ov = memoryview(out)
                piece = memoryview(bytearray(CHUNK))
                off = 0
                while off < total:
                    n = f.readinto(piece[:min(CHUNK, total - off)])
                    if not n:
                        raise EOFError("short read")
                    off += dec.update_into(piece[:n], ov[off:off + n + 15])
                dec.finalize()  # raises InvalidTag on a bad tag
            return ov[:total]

        def check(r):
            return len(r) == size and bytes(r[:4096]) == head
    elif case in ("encrypt_file", "encrypt_file_nofsync"):
        import modelcrypt
        out_path = os.path.join(d, OUTPUTS[0])
        durable = case == "encrypt_file"

        def op():
            modelcrypt.encrypt_file(p["plain"], out_path, key, chunk_size=CHUNK, durable=durable)

        def check(r):
            return os.path.getsize(out_path) >= size
    elif case in ("decrypt_file", "decrypt_file_nofsync"):
        import modelcrypt
        out_path = os.path.join(d, OUTPUTS[1])
        durable = case == "decrypt_file"

        def op():
            modelcrypt.decrypt_file(p["mcx"], out_path, key, durable=durable)

        def check(r):
            with open(out_path, "rb") as f:
                return os.path.getsize(out_path) == size and f.read(4096) == head
    elif case in ("copy", "copy_fsync"):
        out_path = os.path.join(d, OUTPUTS[1])
        piece = memoryview(bytearray(16 * MiB))

        def op():
            with open(p["plain"], "rb", buffering=0) as src, open(out_path, "wb", buffering=0) as dst:
                while True:
                    n = src.readinto(piece)
                    if not n:
                        break
                    view = piece[:n]
                    while view:
                        view = view[dst.write(view):]
                if case == "copy_fsync":
                    os.fsync(dst.fileno())

        def check(r):
            with open(out_path, "rb") as f:
                return os.path.getsize(out_path) == size and f.read(4096) == head
    elif case in ("load_signed", "verify_signature", "sha256sum"):
        import modelcrypt
        with open(p["signing_seed"], "rb") as f:
            signer = modelcrypt.SigningKey.from_private_bytes(f.read()).public_key
        if case == "load_signed":
            with open(p["plain"], "rb") as f:
                head = f.read(4096)

            def op():
                return modelcrypt.load(p["signed"], key, trusted_signers=[signer])

            def check(r):
                ok = len(r) == size and bytes(memoryview(r)[:4096]) == head
                r.close()
                return ok
        elif case == "verify_signature":
            def op():
                return modelcrypt.verify_signature(p["signed"], [signer])

            def check(r):
                return r == signer
        else:
            def op():
                return subprocess.run(["sha256sum", p["signed"]], capture_output=True, text=True, check=True).stdout

            def check(r):
                return len(r.split()[0]) == 64
    elif case in ("load_identity", "recipients_add", "reencrypt_recipients"):
        import modelcrypt
        ident = modelcrypt.read_identity_file(p["identity"])
        other = modelcrypt.read_identity_file(p["other_identity"])
        if case == "load_identity":
            def op():
                return modelcrypt.load(p["rcpt"], identity=ident)

            def check(r):
                ok = len(r) == size and bytes(memoryview(r)[:4096]) == head
                r.close()
                return ok
        elif case == "recipients_add":
            other_fp = modelcrypt.recipient_fingerprint(other.recipient)

            def listed():
                return [r["fingerprint"] for r in modelcrypt.list_recipients(p["rcpt"])]

            if other_fp in listed():  # left over from an interrupted repetition
                modelcrypt.remove_recipients(p["rcpt"], identity=ident, recipients=[other.recipient])
            file_size = os.path.getsize(p["rcpt"])

            def op():
                return modelcrypt.add_recipients(p["rcpt"], identity=ident, recipients=[other.recipient])

            def check(r):
                ok = (r["in_place"] and r["added"] == 1 and os.path.getsize(p["rcpt"]) == file_size
                      and other_fp in listed())
                modelcrypt.remove_recipients(p["rcpt"], identity=ident, recipients=[other.recipient])  # as it was
                return ok and other_fp not in listed() and os.path.getsize(p["rcpt"]) == file_size
        else:
            out_path = os.path.join(d, OUTPUTS[0])

            def op():
                with modelcrypt.open_encrypted(p["rcpt"], identity=ident) as f:
                    f.reencrypt_to(out_path, recipients=[ident, other])

            def check(r):
                fps = {x["fingerprint"] for x in modelcrypt.list_recipients(out_path)}
                return (os.path.getsize(out_path) >= size and fps == {
                    modelcrypt.recipient_fingerprint(i.recipient) for i in (ident, other)})
    elif case == "load_checkpoint":
        import modelcrypt

        def op():
            return modelcrypt.load_checkpoint(p["ckpt"], key)

        def check(r):
            return len(r) == CKPT_TENSORS and sum(a.nbytes for a in r.values()) == ckpt_size
    elif case in ("load_into_model", "load_checkpoint_state_dict"):
        import numpy as np
        import torch

        import modelcrypt
        import modelcrypt.torch as mctorch

        model = torch.nn.Module()  # layer00.weight ... as the checkpoint names them, resident (filled)
        for i in range(CKPT_TENSORS):
            layer = torch.nn.Module()
            layer.weight = torch.nn.Parameter(torch.empty(ckpt_shape(ckpt_size)).fill_(-1.0), requires_grad=False)
            model.add_module(f"layer{i:02d}", layer)
        head_elems = ckpt_size // CKPT_TENSORS // 4
        expected_first = np.fromfile(p["params_raw"], dtype=np.float32, count=1024)
        expected_last = np.fromfile(p["params_raw"], dtype=np.float32, count=1024,
                                    offset=(CKPT_TENSORS * head_elems - 1024) * 4)
        ptrs = [t.data_ptr() for t in model.state_dict().values()]
        if case == "load_into_model":
            def op():
                return mctorch.load_into_model(model, p["ckpt"], key)
        else:
            def op():
                state = modelcrypt.load_checkpoint(p["ckpt"], key)
                return model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})

        def check(r):
            first = model.layer00.weight.detach().reshape(-1)[:1024].numpy()
            last = getattr(model, f"layer{CKPT_TENSORS - 1:02d}").weight.detach().reshape(-1)[-1024:].numpy()
            return (not r.missing_keys and not r.unexpected_keys and np.array_equal(first, expected_first)
                    and np.array_equal(last, expected_last)
                    and [t.data_ptr() for t in model.state_dict().values()] == ptrs)
    elif case in ("mindspore_load_checkpoint", "mindspore_load_checkpoint_plain"):
        import mindspore
        extra["mindspore_version"] = mindspore.__version__
        if case == "mindspore_load_checkpoint":
            path, kw = p["ms_enc"], {"dec_key": key16, "dec_mode": "AES-GCM"}
        else:
            path, kw = p["ms_plain"], {}

        def op():
            return mindspore.load_checkpoint(path, **kw)

        def check(r):
            return len(r) == CKPT_TENSORS and sum(v.asnumpy().nbytes for v in r.values()) == ckpt_size
    elif case == "mindspore_setup":
        mindspore_setup(p, key16, ckpt_size)
        print(RESULT_MARK + json.dumps({"ok": True}), flush=True)
        return
    else:
        raise SystemExit(f"unknown case {case!r}")

    # --- warm page cache: read the inputs once before the operation (after the imports, so a slow
    # import cannot give the kernel time to drop them), and record what mincore says about them
    warm([p[f] for f in CASES[case][1]])
    extra["page_cache_residency"] = {f: page_cache_residency(p[f]) for f in CASES[case][1]}

    # --- memory the operation will fill: see prefault() (twice the plaintext for the peers that hold
    # two copies). Last step before the timer: the host reclaims freed memory after about 2 s.
    if do_prefault:
        nbytes = size if CASES[case][2] == "size" else ckpt_size
        # (file-to-file cases: the page cache pages of the output come from the same free memory)
        # (recipients_add rewrites a header: nothing to fill)
        mult = {"aesgcm_oneshot": 2, "mindspore_load_checkpoint": 2, "mindspore_load_checkpoint_plain": 2,
                "recipients_add": 0, "load_into_model": 0}.get(case, 1)
        extra["prefault_seconds"] = prefault(mult * nbytes + 64 * MiB)

    # --- measurement: RSS baseline after imports and setup, peak reset, time only op()
    gc.collect()
    gc.disable()
    before = proc_status()
    peak_reset = reset_peak_rss()
    if peak_reset:
        before = proc_status()
    t0 = time.perf_counter()
    result = op()
    t1 = time.perf_counter()
    after = proc_status()  # result still referenced: its pages count
    gc.enable()
    ok = bool(check(result))
    del result
    print(RESULT_MARK + json.dumps({
        "seconds": t1 - t0,
        "rss_before": before.get("VmRSS"),
        "hwm_after": after.get("VmHWM"),
        "rss_after": after.get("VmRSS"),
        "rss_anon_delta": after.get("RssAnon", 0) - before.get("RssAnon", 0),
        "rss_file_delta": after.get("RssFile", 0) - before.get("RssFile", 0),
        "peak_reset": peak_reset,
        "result_ok": ok,
        **extra,
    }), flush=True)


# ----------------------------------------------------------------------------------------------------
# DCP cases: a child starts DCP_RANKS ranks (spawn, gloo over loopback, file:// rendezvous), each
# rank builds its shards, and only dcp.save / dcp.load is timed inside the ranks

def dcp_shapes(size: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(global shape, local shape) of each of the DCP_TENSORS float32 tensors, row-sharded over DCP_RANKS."""
    unit = DCP_TENSORS * DCP_RANKS * 4
    if size % unit:
        raise SystemExit(f"the dcp cases need --size to be a multiple of {unit}")
    elems = size // DCP_TENSORS // 4
    if elems % (DCP_RANKS * 1024) == 0:
        return (elems // 1024, 1024), (elems // 1024 // DCP_RANKS, 1024)
    return (elems,), (elems // DCP_RANKS,)


def dcp_local_shard(torch, i: int, rank: int, local_shape):
    """Rank `rank`'s rows of tensor i: random float32, the same in every process (seeded by tensor and rank)."""
    g = torch.Generator().manual_seed(SEED + 1000 + 16 * i + rank)
    return torch.rand(local_shape, generator=g, dtype=torch.float32)


def dcp_worker(rank: int, world: int, work: str, task: str, d: str, size: int, sync_files: bool,
               do_prefault: bool) -> None:
    """One rank of a DCP case (or of the setup save, task "dcp_setup"); writes work/rank<r>.json."""
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    # what torchrun sets for its workers (every rank on this machine): the encrypted storage divides
    # the cores among the local ranks by it
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    import datetime as _dt
    import torch
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import FileSystemReader, FileSystemWriter
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Shard
    from modelcrypt.torch import dcp as mdcp

    dist.init_process_group("gloo", init_method=f"file://{os.path.join(work, 'rendezvous')}", rank=rank,
                            world_size=world, timeout=_dt.timedelta(seconds=900))
    report: dict = {"rank": rank}
    try:
        p = {k: os.path.join(d, v) for k, v in FILES.items()}
        with open(p["key"], "rb") as f:
            key = f.read()
        mesh = init_device_mesh("cpu", (world,))
        gshape, lshape = dcp_shapes(size)
        gstride = tuple(int(x) for x in torch.empty(gshape, device="meta").stride())
        names = [f"layer{i:02d}.weight" for i in range(DCP_TENSORS)]

        def state(empty: bool) -> dict:
            # DTensor.from_local of this rank's rows: the same DTensors as distribute_tensor(full, mesh,
            # [Shard(0)]) gives, without building the full tensors on every rank
            return {n: DTensor.from_local(torch.zeros(lshape) if empty else dcp_local_shard(torch, i, rank, lshape),
                                          mesh, [Shard(0)], run_check=False, shape=torch.Size(gshape), stride=gstride)
                    for i, n in enumerate(names)}

        if task == "dcp_setup":  # both checkpoints of the load cases, durable like the other setup files
            sd = state(False)
            dcp.save(sd, storage_writer=mdcp.EncryptedFileSystemWriter(p["dcp_enc"], key, sync_files=True))
            dcp.save(sd, storage_writer=FileSystemWriter(p["dcp_plain"], sync_files=True))
            dist.barrier()
            report["ok"] = True
            return
        out = os.path.join(d, "dcp_out")
        if task in ("dcp_save", "dcp_save_plain", "dcp_save_fsync", "dcp_save_plain_fsync"):
            sd = state(False)
            durable = sync_files or task.endswith("_fsync")
            writer = (mdcp.EncryptedFileSystemWriter(out, key, sync_files=durable)
                      if task in ("dcp_save", "dcp_save_fsync") else FileSystemWriter(out, sync_files=durable))
            report["sync_files"] = durable

            def op():
                dcp.save(sd, storage_writer=writer)
        elif task in ("dcp_load", "dcp_load_plain"):
            sd = state(True)
            src = p["dcp_enc"] if task == "dcp_load" else p["dcp_plain"]
            reader = mdcp.EncryptedFileSystemReader(src, key) if task == "dcp_load" else FileSystemReader(src)
            if rank == 0:  # warm page cache (shared by the ranks), then what mincore says about it
                warm([src])
                fr = [page_cache_residency(f) for f in files_under(src)]
                report["page_cache_residency"] = {CASES[task][1][0]: min((v for v in fr if v is not None),
                                                                         default=None)}

            def op():
                dcp.load(sd, storage_reader=reader)
        else:
            raise ValueError(task)

        # memory the operation may fill (this rank's share of the state: output page cache or read
        # buffers), as the other cases do; then peak reset, then only the call is timed
        gc.collect()
        dist.barrier()
        if do_prefault:
            report["prefault_seconds"] = prefault(size // world + 64 * MiB)
        gc.disable()
        before = proc_status()
        report["peak_reset"] = reset_peak_rss()
        if report["peak_reset"]:
            before = proc_status()
        dist.barrier()
        t0 = time.perf_counter()
        op()
        dist.barrier()
        t1 = time.perf_counter()
        after = proc_status()
        gc.enable()
        report.update({
            "seconds": t1 - t0,
            "rss_before": before.get("VmRSS"), "hwm_after": after.get("VmHWM"), "rss_after": after.get("VmRSS"),
            "rss_anon_delta": after.get("RssAnon", 0) - before.get("RssAnon", 0),
            "rss_file_delta": after.get("RssFile", 0) - before.get("RssFile", 0),
        })
        if task.startswith("dcp_load"):  # every shard as saved (after the timer)
            report["result_ok"] = all(torch.equal(sd[n].to_local(), dcp_local_shard(torch, i, rank, lshape))
                                      for i, n in enumerate(names))
        else:
            dist.barrier()
            files = files_under(out)
            report["result_ok"] = (os.path.exists(os.path.join(out, ".metadata"))
                                   and sum(os.path.getsize(f) for f in files) >= size)
            report["files"] = len(files)
    except BaseException as exc:  # noqa: BLE001 - reported by the child
        import traceback
        report["crash"] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-3000:]}"
    finally:
        with open(os.path.join(work, f"rank{rank}.json"), "w") as f:
            json.dump(report, f)
        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001
            pass


def dcp_child(case: str, d: str, size: int, sync_files: bool, do_prefault: bool) -> None:
    """Runs `case` on DCP_RANKS ranks and prints one result: rank 0's time, the larger rank's memory."""
    import torch.multiprocessing as mp
    work = tempfile.mkdtemp(prefix="dcp-job-", dir=d)
    try:
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"
        ctx = mp.start_processes(dcp_worker, args=(DCP_RANKS, work, case, d, size, sync_files, do_prefault),
                                 nprocs=DCP_RANKS, join=False, start_method="spawn")
        while not ctx.join(timeout=5):
            pass
        ranks = []
        for r in range(DCP_RANKS):
            with open(os.path.join(work, f"rank{r}.json")) as f:
                ranks.append(json.load(f))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    crashed = [r for r in ranks if "crash" in r]
    if crashed:
        raise SystemExit(f"rank {crashed[0]['rank']}: {crashed[0]['crash']}")
    if case == "dcp_setup":
        print(RESULT_MARK + json.dumps({"ok": True}), flush=True)
        return

    def extra_of(r):
        return r["hwm_after"] - r["rss_before"]

    worst = max(ranks, key=extra_of)
    print(RESULT_MARK + json.dumps({
        "seconds": ranks[0]["seconds"],
        "rss_before": worst["rss_before"], "hwm_after": worst["hwm_after"], "rss_after": worst["rss_after"],
        "rss_anon_delta": worst["rss_anon_delta"], "rss_file_delta": worst["rss_file_delta"],
        "peak_reset": all(r["peak_reset"] for r in ranks),
        "result_ok": all(r["result_ok"] for r in ranks),
        "page_cache_residency": ranks[0].get("page_cache_residency"),
        "sync_files": ranks[0].get("sync_files", sync_files),
        "ranks": [{k: r.get(k) for k in ("seconds", "rss_before", "hwm_after", "rss_anon_delta", "rss_file_delta",
                                          "prefault_seconds", "files")} | {"extra_rss": extra_of(r)} for r in ranks],
    }), flush=True)


def ckpt_shape(ckpt_size: int) -> tuple[int, ...]:
    elems = ckpt_size // CKPT_TENSORS // 4
    return (elems // 1024, 1024) if elems % 1024 == 0 else (elems,)


def read_params_raw(path: str, ckpt_size: int):
    import numpy as np
    flat = np.fromfile(path, dtype=np.float32)
    assert flat.nbytes == ckpt_size
    shape = ckpt_shape(ckpt_size)
    n = flat.size // CKPT_TENSORS
    return {f"layer{i:02d}.weight": flat[i * n:(i + 1) * n].reshape(shape) for i in range(CKPT_TENSORS)}


def setup_child(python: str, task: str, what: str, d: str, size: int, ckpt_size: int) -> None:
    """Runs the setup child `task` (run.py --child TASK) with `python`; a failure raises with its stderr."""
    r = subprocess.run([python, os.path.abspath(__file__), "--child", task, "--dir", d,
                        "--size", str(size), "--checkpoint-size", str(ckpt_size)],
                       capture_output=True, text=True, timeout=1800)
    if r.returncode != 0 or RESULT_MARK not in r.stdout:
        raise RuntimeError(f"{what} setup failed (exit {r.returncode}):\n{r.stderr[-3000:]}")


def mindspore_setup(p: dict, key16: bytes, ckpt_size: int) -> None:
    """Runs under the MindSpore python: encrypted and plain MindSpore checkpoints of the same params."""
    import mindspore
    params = read_params_raw(p["params_raw"], ckpt_size)
    plist = [{"name": k, "data": mindspore.Tensor(v)} for k, v in params.items()]
    mindspore.save_checkpoint(plist, p["ms_enc"], enc_key=key16, enc_mode="AES-GCM")
    mindspore.save_checkpoint(plist, p["ms_plain"])


# ----------------------------------------------------------------------------------------------------
# parent: data, runs, report

def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fsync_path(path: str) -> None:
    for name in files_under(path) + ([path] if os.path.isdir(path) else []):
        fd = os.open(name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def create_data(d: str, size: int, ckpt_size: int, needed: set[str], ms_python: str | None) -> dict:
    """Create the files the selected cases need (reusing them if a matching manifest says they exist)."""
    p = {k: os.path.join(d, v) for k, v in FILES.items()}
    manifest = {"version": 1, "size": size, "ckpt_size": ckpt_size, "seed": SEED, "files": {}}
    try:
        with open(p["manifest"]) as f:
            old = json.load(f)
        if all(old.get(k) == manifest[k] for k in ("version", "size", "ckpt_size", "seed")) and \
                os.path.exists(p["key"]):
            manifest["files"] = {k: v for k, v in old.get("files", {}).items()
                                 if os.path.exists(p[k]) and path_size(p[k]) == v}
    except (OSError, ValueError):
        pass
    created: list[str] = []
    timings: dict[str, float] = {}

    def done(name: str, t0: float) -> None:
        fsync_path(p[name])
        manifest["files"][name] = path_size(p[name])
        timings[name] = time.perf_counter() - t0
        created.append(name)
        with open(p["manifest"], "w") as f:
            json.dump(manifest, f)

    if not manifest["files"] or not os.path.exists(p["key"]):
        manifest["files"] = {}
        with open(p["key"], "wb") as f:
            f.write(os.urandom(32))
    with open(p["key"], "rb") as f:
        key = f.read()

    if ({"plain", "mcx", "gcm", "signed", "rcpt"} & needed) and "plain" not in manifest["files"]:
        import numpy as np
        log(f"creating {fmt_bytes(size)} of random plaintext")
        t0 = time.perf_counter()
        rng = np.random.default_rng(SEED)
        with open(p["plain"], "wb") as f:
            left = size
            while left:
                n = min(GEN_PIECE, left)
                f.write(rng.bytes(n))
                left -= n
        done("plain", t0)
    if "mcx" in needed and "mcx" not in manifest["files"]:
        import modelcrypt
        log("encrypting it with modelcrypt (1 MiB chunks)")
        t0 = time.perf_counter()
        modelcrypt.encrypt_file(p["plain"], p["mcx"], key, chunk_size=CHUNK)
        done("mcx", t0)
    if "signed" in needed and "signed" not in manifest["files"]:
        import modelcrypt
        log("encrypting it with modelcrypt, signed by a publisher key (format v3, 1 MiB chunks)")
        t0 = time.perf_counter()
        seed = os.urandom(32)
        with open(p["signing_seed"], "wb") as f:
            f.write(seed)
        modelcrypt.encrypt_file(p["plain"], p["signed"], key, chunk_size=CHUNK,
                                signing_key=modelcrypt.SigningKey.from_private_bytes(seed))
        done("signed", t0)
    if "rcpt" in needed and ("rcpt" not in manifest["files"]
                             or not all(os.path.exists(p[n]) for n in ("identity", "other_identity"))):
        import modelcrypt
        log("encrypting it with modelcrypt to an X25519 recipient (format v2, 1 MiB chunks)")
        t0 = time.perf_counter()
        for name in ("identity", "other_identity"):
            modelcrypt.write_identity_file(p[name], modelcrypt.generate_identity(), force=True)
        modelcrypt.encrypt_file(p["plain"], p["rcpt"], recipients=[modelcrypt.read_identity_file(p["identity"])],
                                chunk_size=CHUNK)
        done("rcpt", t0)
    if "gcm" in needed and "gcm" not in manifest["files"]:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        log("encrypting it with cryptography (nonce || ciphertext || tag)")
        t0 = time.perf_counter()
        nonce = os.urandom(NONCE_LEN)
        enc = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
        inbuf = memoryview(bytearray(16 * MiB))
        outbuf = memoryview(bytearray(16 * MiB + 15))
        with open(p["plain"], "rb", buffering=0) as src, open(p["gcm"], "wb") as dst:
            dst.write(nonce)
            while True:
                n = src.readinto(inbuf)
                if not n:
                    break
                m = enc.update_into(inbuf[:n], outbuf)
                dst.write(outbuf[:m])
            enc.finalize()
            dst.write(enc.tag)
        done("gcm", t0)
    if ({"ckpt", "params_raw"} & needed) and "params_raw" not in manifest["files"]:
        import numpy as np
        log(f"creating {fmt_bytes(ckpt_size)} of checkpoint parameters ({CKPT_TENSORS} float32 tensors "
            f"of shape {ckpt_shape(ckpt_size)})")
        t0 = time.perf_counter()
        rng = np.random.default_rng(SEED + 1)
        n = ckpt_size // CKPT_TENSORS // 4
        with open(p["params_raw"], "wb") as f:
            for _ in range(CKPT_TENSORS):
                a = rng.random(n, dtype=np.float32)
                a -= 0.5
                a.tofile(f)
        done("params_raw", t0)
    if "ckpt" in needed and "ckpt" not in manifest["files"]:
        import modelcrypt
        log("saving them with modelcrypt.save_checkpoint (encrypted)")
        t0 = time.perf_counter()
        modelcrypt.save_checkpoint(read_params_raw(p["params_raw"], ckpt_size), p["ckpt"], key)
        done("ckpt", t0)
    if ({"ms_enc", "ms_plain"} & needed) and not {"ms_enc", "ms_plain"} <= set(manifest["files"]):
        log(f"saving them with MindSpore ({ms_python}): encrypted (AES-GCM) and plain")
        t0 = time.perf_counter()
        setup_child(ms_python, "mindspore_setup", "MindSpore", d, size, ckpt_size)
        done("ms_enc", t0)
        done("ms_plain", time.perf_counter())  # one subprocess wrote both: its time is under ms_enc
    if ({"dcp_enc", "dcp_plain"} & needed) and not {"dcp_enc", "dcp_plain"} <= set(manifest["files"]):
        gshape, _ = dcp_shapes(size)
        log(f"saving {fmt_bytes(size)} with torch.distributed.checkpoint on {DCP_RANKS} ranks ({DCP_TENSORS} "
            f"float32 tensors {gshape}, Shard(0)): encrypted (modelcrypt) and plain (FileSystemWriter)")
        t0 = time.perf_counter()
        remove_path(p["dcp_enc"])
        remove_path(p["dcp_plain"])
        setup_child(sys.executable, "dcp_setup", "DCP", d, size, ckpt_size)
        done("dcp_enc", t0)
        done("dcp_plain", time.perf_counter())  # one job wrote both: its time is under dcp_enc
    return {"created": created, "seconds": timings,
            "files": {k: manifest["files"].get(k) for k in needed if k in manifest["files"]}}


def run_child(python: str, case: str, d: str, size: int, ckpt_size: int, timeout: float,
              do_prefault: bool, dcp_sync_files: bool = False) -> dict:
    cmd = [python, os.path.abspath(__file__), "--child", case, "--dir", d, "--size", str(size),
           "--checkpoint-size", str(ckpt_size)] + ([] if do_prefault else ["--no-prefault"]) \
        + (["--dcp-sync-files"] if dcp_sync_files else [])
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in r.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    tail = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"error": f"exit {r.returncode}: {tail}"}


def start_s3(d: str):
    """The s3_* cases' server: moto's S3 in this (the harness) process on 127.0.0.1, holding the
    plaintext and the encrypted file as objects (multipart uploads from DIR); its endpoint goes to the
    children in S3_ENV."""
    import boto3
    from boto3.s3.transfer import TransferConfig
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1")
    client.create_bucket(Bucket=S3_BUCKET)
    t0 = time.perf_counter()
    for name in ("plain", "mcx"):
        client.upload_file(os.path.join(d, FILES[name]), S3_BUCKET, FILES[name],
                           Config=TransferConfig(multipart_chunksize=64 * MiB))
    log(f"local S3 server {endpoint}: uploaded plain and mcx in {time.perf_counter() - t0:.1f} s")
    os.environ[S3_ENV] = endpoint
    return server


def balloon_free_page_reporting() -> bool:
    """Does a virtio-balloon device report free pages to the host (feature bit 5)? modelcrypt then
    uses 4 KiB pages for its buffers by default (MODELCRYPT_HUGE_PAGES unset or auto)."""
    base = "/sys/bus/virtio/devices"
    try:
        names = os.listdir(base)
    except OSError:
        return False
    for name in names:
        try:
            with open(os.path.join(base, name, "device")) as f:
                dev = f.read().strip()
            with open(os.path.join(base, name, "features")) as f:
                bits = f.read().strip()
        except OSError:
            continue
        if dev in ("0x0005", "0x5") and len(bits) > 5 and bits[5] == "1":
            return True
    return False


def machine_description(d: str) -> dict:
    def first(path: str, pattern: str) -> str | None:
        try:
            with open(path) as f:
                for line in f:
                    m = re.match(pattern, line)
                    if m:
                        return m.group(1).strip()
        except OSError:
            pass
        return None

    def read(path: str) -> str | None:
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return None

    def cmd(*args: str) -> str | None:
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None

    info: dict = {
        "cpu_model": first("/proc/cpuinfo", r"model name\s*:\s*(.*)"),
        "cpu_flags_aes_vaes_avx512": None,
        "cores_online": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_total": None,
        "kernel": platform.release(),
        "thp_enabled": read("/sys/kernel/mm/transparent_hugepage/enabled"),
        "balloon_free_page_reporting": balloon_free_page_reporting(),
        "MODELCRYPT_HUGE_PAGES": os.environ.get("MODELCRYPT_HUGE_PAGES", "auto (unset)"),
        "thp_defrag": read("/sys/kernel/mm/transparent_hugepage/defrag"),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
    }
    flags = (first("/proc/cpuinfo", r"flags\s*:\s*(.*)") or "").split()
    info["cpu_flags_aes_vaes_avx512"] = " ".join(f for f in ("aes", "vaes", "vpclmulqdq", "avx2", "avx512f")
                                                 if f in flags)
    mem = first("/proc/meminfo", r"MemTotal:\s*(\d+) kB")
    if mem:
        info["memory_total"] = fmt_bytes(int(mem) * 1024)
    # filesystem holding the data directory (tmpfs would not be "on disk")
    best = ("", "?", "?")
    try:
        real = os.path.realpath(d)
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, fstype = line.split()[:3]
                mnt = mnt.replace("\\040", " ")
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best[0]):
                    best = (mnt, fstype, dev)
    except OSError:
        pass
    info["data_dir"] = d
    info["data_dir_filesystem"] = f"{best[1]} ({best[2]} on {best[0]})"
    # versions
    try:
        import modelcrypt
        info["modelcrypt"] = getattr(modelcrypt, "__version__", "?")
        core = getattr(modelcrypt, "_core", None)
        v = None
        for attr in ("openssl_version", "OPENSSL_VERSION"):
            v = getattr(core, attr, None) or getattr(modelcrypt, attr, None)
            if callable(v):
                v = v()
            if v:
                break
        if v:
            info["openssl"] = f"{v} (reported by modelcrypt)"
        else:
            found = None
            try:
                with open(core.__file__, "rb") as f:
                    blob = f.read()
                m = re.search(rb"OpenSSL (\d+\.\d+\.\d+[a-z]?)", blob) or \
                    re.search(rb"\x00(3\.\d+\.\d+)\x00", blob)
                found = m.group(1).decode() if m else None
            except (OSError, AttributeError):
                pass
            sys_v = cmd("openssl", "version")
            info["openssl"] = (f"{found} (version string in modelcrypt's statically linked _core); "
                               if found else "") + f"system: {sys_v or 'unknown'}"
    except Exception as e:  # noqa: BLE001 - description only
        info["modelcrypt"] = f"not importable: {e}"
        info["openssl"] = f"system: {cmd('openssl', 'version') or 'unknown'}"
    for mod in ("numpy", "cryptography"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001
            info[mod] = None
    return info


def loadavg() -> str | None:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="cases: " + ", ".join(CASES))
    ap.add_argument("--size", type=parse_size, default=GiB, help="plaintext size (default 1GiB)")
    ap.add_argument("--checkpoint-size", type=parse_size, default=512 * MiB,
                    help="checkpoint parameter bytes (default 512MiB, 64 float32 tensors)")
    ap.add_argument("--json", metavar="OUT", help="also write everything to this JSON file")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions per case, median reported (default 3)")
    ap.add_argument("--dir", help="data directory (default: a new temporary directory on disk)")
    ap.add_argument("--mindspore-python", metavar="PATH",
                    help="python of a MindSpore environment: adds the MindSpore load_checkpoint cases")
    ap.add_argument("--cases", help="comma-separated subset of the cases (default: all; MindSpore ones need "
                                    "--mindspore-python)")
    ap.add_argument("--keep", action="store_true", help="keep the data (a later run with --dir reuses it)")
    ap.add_argument("--settle", type=float, default=3.0, metavar="S",
                    help="after each child: sync, then wait S seconds before the next one (default 3)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per child (default 900)")
    ap.add_argument("--no-prefault", action="store_true",
                    help="don't touch and free the memory an operation will need right before it (see README)")
    ap.add_argument("--dcp-sync-files", action="store_true",
                    help="dcp_save cases: sync_files=True for both writers (default False: page cache only)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        child_main(args.child, args.dir, args.size, args.checkpoint_size, not args.no_prefault, args.dcp_sync_files)
        return 0
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    if args.checkpoint_size % (CKPT_TENSORS * 4):
        ap.error(f"--checkpoint-size must be a multiple of {CKPT_TENSORS * 4}")

    if args.cases:
        cases = [c.strip() for c in args.cases.split(",") if c.strip()]
        unknown = [c for c in cases if c not in CASES]
        if unknown:
            ap.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    else:
        cases = DEFAULT_CASES + (MINDSPORE_CASES if args.mindspore_python else [])
        if importlib.util.find_spec("torch") is None:
            log("torch is not installed: skipping the dcp_* cases")
            cases = [c for c in cases if c not in DCP_CASES]
        if any(importlib.util.find_spec(m) is None for m in ("moto", "boto3", "s3fs")):
            log("moto[server], boto3 or s3fs is not installed: skipping the s3_* cases")
            cases = [c for c in cases if c not in S3_CASES]
    if any(c in DCP_CASES for c in cases):
        try:
            dcp_shapes(args.size)
        except SystemExit as e:
            ap.error(str(e))
    if any(c in MINDSPORE_CASES for c in cases) and not args.mindspore_python:
        ap.error("the MindSpore cases need --mindspore-python PATH")

    ms_python = args.mindspore_python
    if ms_python:
        r = subprocess.run([ms_python, "-c", "import mindspore, sys; print(mindspore.__version__)"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            log(f"MindSpore not usable with {ms_python} ({(r.stderr.strip().splitlines() or ['?'])[-1]}); "
                "skipping the MindSpore cases")
            cases = [c for c in cases if c not in MINDSPORE_CASES]
            ms_python = None
        else:
            ms_version = r.stdout.strip().splitlines()[-1]
            log(f"MindSpore {ms_version} at {ms_python}")

    needed = {f for c in cases for f in CASES[c][1]}
    if "ckpt" in needed or {"ms_enc", "ms_plain"} & needed:
        needed.add("params_raw")
    if {"mcx", "gcm", "signed", "rcpt"} & needed:
        needed.add("plain")  # source of the encrypted files, and of the children's 4 KiB result check

    own_dir = args.dir is None
    d = tempfile.mkdtemp(prefix="modelcrypt-bench-") if own_dir else os.path.abspath(args.dir)
    os.makedirs(d, exist_ok=True)
    need_bytes = (args.size * sum(1 for f in ("plain", "mcx", "gcm", "signed", "rcpt") if f in needed)
                  + args.checkpoint_size * (("params_raw" in needed) + ("ckpt" in needed)
                                            + 2 * bool({"ms_enc", "ms_plain"} & needed))
                  + args.size * any(c in FILE_TO_FILE or c == "reencrypt_recipients" for c in cases)
                  + args.size * 2 * bool({"dcp_enc", "dcp_plain"} & needed)
                  + args.size * any(c.startswith("dcp_save") for c in cases))
    free = shutil.disk_usage(d).free
    if need_bytes * 1.05 > free:
        log(f"not enough space in {d}: need about {fmt_bytes(need_bytes)}, {fmt_bytes(free)} free")
        if own_dir:
            shutil.rmtree(d, ignore_errors=True)
        return 2

    started = time.perf_counter()
    report: dict = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                    "argv": sys.argv[1:], "size": args.size, "checkpoint_size": args.checkpoint_size,
                    "repeat": args.repeat, "chunk_size": CHUNK, "prefault": not args.no_prefault,
                    "dcp_sync_files": args.dcp_sync_files,
                    "loadavg_start": loadavg()}
    created_files: list[str] = []
    s3_server = None
    try:
        log(f"data directory {d}")
        setup = create_data(d, args.size, args.checkpoint_size, needed, ms_python)
        created_files = setup["created"]
        report["setup"] = setup
        report["machine"] = machine_description(d)
        if any(c in S3_CASES for c in cases):
            s3_server = start_s3(d)
            report["machine"]["s3_server"] = "moto ThreadedMotoServer in the harness process, 127.0.0.1"
        if ms_python:
            report["machine"]["mindspore"] = ms_version
            report["machine"]["mindspore_python"] = ms_python

        # Round-robin over the cases, one repetition at a time, so slow drift (other work on the
        # machine) spreads over all cases instead of hitting one.
        raw: dict[str, list[dict]] = {c: [] for c in cases}
        resid: dict[str, float] = {}
        for rep in range(args.repeat):
            for c in cases:
                python = ms_python if c in MINDSPORE_CASES else sys.executable
                res = run_child(python, c, d, args.size, args.checkpoint_size, args.timeout, not args.no_prefault,
                                args.dcp_sync_files)
                for out in OUTPUTS:
                    remove_path(os.path.join(d, out))
                if args.settle > 0:  # let write-back, discards and the host's memory reclaim calm down
                    os.sync()
                    time.sleep(args.settle)
                raw[c].append(res)
                for f, v in (res.get("page_cache_residency") or {}).items():
                    if v is not None:
                        resid[f] = min(resid.get(f, 1.0), v)
                shown = f"{res['seconds']:.3f} s" if "seconds" in res else res.get("error")
                log(f"rep {rep + 1}/{args.repeat} {c}: {shown}")
        report["page_cache_residency_min"] = resid

        results: dict[str, dict] = {}
        for c in cases:
            nbytes = args.size if CASES[c][2] == "size" else args.checkpoint_size
            good = [r for r in raw[c] if "seconds" in r]
            entry: dict = {"description": CASES[c][0], "bytes": nbytes, "runs": raw[c]}
            if good:
                secs = [r["seconds"] for r in good]
                med = statistics.median(secs)
                extras = [r["hwm_after"] - r["rss_before"] for r in good
                          if r.get("hwm_after") is not None and r.get("rss_before") is not None]
                entry.update({
                    "seconds_median": med, "seconds_min": min(secs), "seconds_max": max(secs),
                    "gbps": nbytes / med / 1e9,
                    "extra_rss_bytes": statistics.median(extras) if extras else None,
                    "extra_rss_x_size": statistics.median(extras) / nbytes if extras else None,
                    "result_ok": all(r.get("result_ok") for r in good),
                })
                if c == "aesgcm_oneshot":
                    entry["read_seconds_median"] = statistics.median(r.get("read_seconds", 0) for r in good)
            errs = [r["error"] for r in raw[c] if "error" in r]
            if errs:
                entry["errors"] = errs
            results[c] = entry
        load_gbps = results.get("load", {}).get("gbps")
        for c, e in results.items():
            e["x_load"] = e["gbps"] / load_gbps if load_gbps and e.get("gbps") else None
        report["results"] = results
        report["checks"] = make_checks(results, report["machine"].get("cores_usable"))
        report["loadavg_end"] = loadavg()
        report["harness_seconds"] = time.perf_counter() - started

        print_report(report)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)
                f.write("\n")
            log(f"wrote {args.json}")
    finally:
        if s3_server is not None:
            s3_server.stop()
        if args.keep:
            log(f"kept the data in {d}")
        elif own_dir:
            shutil.rmtree(d, ignore_errors=True)
        else:  # a given --dir: remove only what this run created (and the manifest if nothing is left)
            for name in created_files:
                remove_path(os.path.join(d, FILES[name]))
                if name == "rcpt":  # and the identities written with it
                    for ident in ("identity", "other_identity"):
                        remove_path(os.path.join(d, FILES[ident]))
            for out in OUTPUTS:
                remove_path(os.path.join(d, out))
            if not any(os.path.exists(os.path.join(d, FILES[k])) for k in FILES
                       if k not in ("manifest", "key")):
                for k in ("manifest", "key"):
                    try:
                        os.unlink(os.path.join(d, FILES[k]))
                    except FileNotFoundError:
                        pass
    return 0


def make_checks(results: dict, cores) -> list[dict]:
    def gbps(c):
        return results.get(c, {}).get("gbps")

    def ratio(a, b):
        ga, gb = gbps(a), gbps(b)
        return ga / gb if ga and gb else None

    def rss(c):
        return results.get(c, {}).get("extra_rss_bytes")

    def secs(c):
        return results.get(c, {}).get("seconds_median")

    checks = []

    def add(name, value, target, kind, unit="x", note=""):
        if value is None:
            status = "n/a"
        elif kind == "info":
            status = "info"
        elif kind == ">=":
            status = "PASS" if value >= target else "FAIL"
        else:
            status = "PASS" if value <= target else "FAIL"
        checks.append({"check": name, "value": value, "target": f"{kind} {target}{unit}", "status": status,
                       "note": note})

    add("load vs cryptography streaming", ratio("load", "aesgcm_stream"), 4.0, ">=")
    add("load vs plaintext readinto", ratio("load", "readinto"), 3.0, ">=")
    add(f"load ({cores} threads, default) vs load threads=1", ratio("load", "load_threads1"), 1.7, ">=",
        note="" if cores == 2 else f"the target is for 2 threads; this machine has {cores} usable cores")
    add("encrypt_file (durable=False) vs load", ratio("encrypt_file_nofsync", "load"), 0.8, ">=",
        note="writes go to the page cache; see copy")
    add("encrypt_file (default, fsync) vs load", ratio("encrypt_file", "load"), 0.8, ">=",
        note="bound by the disk's flush speed: see copy_fsync")
    add("encrypt_file vs plaintext copy_fsync", ratio("encrypt_file", "copy_fsync"), "", "info")
    add("encrypt_file (durable=False) vs plaintext copy", ratio("encrypt_file_nofsync", "copy"), "", "info")
    add("decrypt_file vs plaintext copy_fsync", ratio("decrypt_file", "copy_fsync"), "", "info")
    for c in ("encrypt_file", "decrypt_file", "encrypt_file_nofsync", "decrypt_file_nofsync"):
        v = rss(c)
        add(f"{c} peak extra RSS (MiB)", v / MiB if v is not None else None, 64, "<=", unit=" MiB")
    add("load peak extra RSS (x size)", results.get("load", {}).get("extra_rss_x_size"), 1.05, "<=")
    # issue 17: loading from object storage (a local moto S3 server in the harness process)
    add("s3_load vs fsspec s3fs cat_file of the plain object", ratio("s3_load", "s3_cat_file"), 0.9, ">=",
        note="" if gbps("s3_load") else "not measured (--cases s3_load,s3_cat_file; needs moto[server], s3fs)")
    s3 = results.get("s3_load", {})
    s3_x = s3.get("extra_rss_x_size")
    add("s3_load peak extra RSS - 64 MiB (x size)",
        s3_x - 64 * MiB / (s3["extra_rss_bytes"] / s3_x) if s3_x and s3.get("extra_rss_bytes") else None, 1.05, "<=")
    add("load with trusted_signers (signed) vs unsigned load", ratio("load_signed", "load"), 0.6, ">=",
        note="SHA-256 of each chunk runs beside its AES-GCM on all cores")
    add("keyless verify_signature vs sha256sum", ratio("verify_signature", "sha256sum"), 1.0, ">=")
    # issue 14: format v2 recipients (same plaintext size; recipients_add and its re-encryption both durable)
    add("load with an X25519 identity (v2) vs load with a key (v1)", ratio("load_identity", "load"), 0.95, ">=")
    ta, tr = secs("recipients_add"), secs("reencrypt_recipients")
    add("recipients add (in place) speed vs re-encrypting the file", tr / ta if ta and tr else None, 50, ">=",
        note=f"{ta * 1000:.2f} ms vs {tr:.3f} s" if ta and tr else "")
    add("load_checkpoint vs MindSpore encrypted load_checkpoint",
        ratio("load_checkpoint", "mindspore_load_checkpoint"), 8.0, ">=",
        note="" if gbps("mindspore_load_checkpoint") else "not measured (no --mindspore-python)")

    # issue 18: decrypting into an existing model against load_checkpoint + load_state_dict
    v = rss("load_into_model")
    add("load_into_model peak extra RSS (MiB)", v / MiB if v is not None else None, 64, "<=", unit=" MiB")
    ti, tr = secs("load_into_model"), secs("load_checkpoint_state_dict")
    add("load_into_model time / load_checkpoint + load_state_dict", ti / tr if ti and tr else None, 0.8, "<=",
        note=f"{ti:.3f} s vs {tr:.3f} s" if ti and tr else "")

    # issue 16: encrypted DCP storage against DCP's own FileSystemWriter/Reader, at the writers' default
    # (sync_files=True: durable), and, beyond the target, to the page cache only (sync_files=False)
    for op, enc, plain in (("save (default, sync_files=True)", "dcp_save_fsync", "dcp_save_plain_fsync"),
                           ("save (page cache only, sync_files=False)", "dcp_save", "dcp_save_plain"),
                           ("load", "dcp_load", "dcp_load_plain")):
        te, tp = secs(enc), secs(plain)
        add(f"DCP encrypted {op} time / plain ({DCP_RANKS} ranks)", te / tp if te and tp else None,
            1.25, "<=", note=f"{te:.3f} s vs {tp:.3f} s" if te and tp else "")
        re_, rp = rss(enc), rss(plain)
        add(f"DCP encrypted {op} peak extra RSS/rank - plain (MiB)",
            (re_ - rp) / MiB if re_ is not None and rp is not None else None, 64, "<=", unit=" MiB",
            note=f"{re_ / MiB:.1f} vs {rp / MiB:.1f} MiB, the larger rank of each"
            if re_ is not None and rp is not None else "")
    return checks


def print_report(rep: dict) -> None:
    res = rep["results"]
    print()
    print(f"modelcrypt benchmark  size {fmt_bytes(rep['size'])} ({rep['size']} bytes), checkpoint "
          f"{fmt_bytes(rep['checkpoint_size'])}, chunk {fmt_bytes(rep['chunk_size'])}, median of {rep['repeat']}")
    print(f"warm page cache, {'memory prefaulted' if rep['prefault'] else 'no prefault'}, GB = 10^9 bytes, "
          f"x load = speed relative to load, extra RSS = peak growth during the operation")
    print()
    hdr = f"{'case':33} {'GB/s':>7} {'x load':>7} {'extra RSS x size':>17} {'extra RSS':>11} {'median s':>9} {'min-max s':>13}  ok"
    print(hdr)
    print("-" * len(hdr))
    for c, e in res.items():
        if "gbps" not in e:
            print(f"{c:33} {'error: ' + '; '.join(e.get('errors', ['?']))[:90]}")
            continue
        xl = f"{e['x_load']:.2f}" if e.get("x_load") is not None else "-"
        xr = f"{e['extra_rss_x_size']:.3f}" if e.get("extra_rss_x_size") is not None else "-"
        mb = f"{e['extra_rss_bytes'] / MiB:.1f} MiB" if e.get("extra_rss_bytes") is not None else "-"
        mm = f"{e['seconds_min']:.2f}-{e['seconds_max']:.2f}"
        ok = "yes" if e.get("result_ok") else "NO"
        if e.get("errors"):
            ok += f" ({len(e['errors'])} failed)"
        print(f"{c:33} {e['gbps']:7.3f} {xl:>7} {xr:>17} {mb:>11} {e['seconds_median']:9.3f} {mm:>13}  {ok}")
    if "aesgcm_oneshot" in res and res["aesgcm_oneshot"].get("read_seconds_median") is not None:
        print(f"  (aesgcm_oneshot: {res['aesgcm_oneshot']['read_seconds_median']:.3f} s of it is f.read())")
    if any(c in DCP_CASES for c in res):
        gshape, _ = dcp_shapes(rep["size"])
        print(f"  (dcp_* cases: {DCP_RANKS} ranks (gloo, loopback), {DCP_TENSORS} float32 tensors {gshape} as DTensors "
              f"Shard(0); GB/s over the whole state ({fmt_bytes(rep['size'])}), rank 0's time of the call between "
              f"barriers; extra RSS of the rank with more; dcp_save*: sync_files="
              f"{rep.get('dcp_sync_files', False)}, dcp_save*_fsync: sync_files=True)")
    if any(c.startswith("mindspore") or c in ("load_checkpoint", "load_into_model", "load_checkpoint_state_dict") for c in res):
        print(f"  (checkpoint cases: GB/s over the {fmt_bytes(rep['checkpoint_size'])} of parameters, "
              f"extra RSS x that size)")
    print()
    print("targets (issues 7, 14, 15, 16, 18)")
    for ch in rep["checks"]:
        v = ch["value"]
        vs = "-" if v is None else (f"{v:.1f} MiB" if ch["target"].endswith("MiB") else f"{v:.2f}x")
        note = f"  [{ch['note']}]" if ch.get("note") else ""
        target = "" if ch["target"].startswith("info") else f"  (target {ch['target']})"
        print(f"  {ch['status']:4}  {ch['check']:58} {vs:>10}{target}{note}")
    print()
    m = rep["machine"]
    print("machine")
    for k in ("cpu_model", "cpu_flags_aes_vaes_avx512", "cores_online", "cores_usable", "memory_total", "kernel",
              "thp_enabled", "thp_defrag", "balloon_free_page_reporting", "MODELCRYPT_HUGE_PAGES", "openssl", "python", "modelcrypt", "numpy", "cryptography",
              "mindspore", "data_dir_filesystem"):
        if m.get(k) is not None:
            print(f"  {k:26} {m[k]}")
    resid = rep.get("page_cache_residency_min") or {}
    if resid:
        print(f"  {'page cache residency':26} " + ", ".join(f"{k} {v * 100:.0f}%" for k, v in resid.items())
              + " (lowest seen right before an operation, mincore)")
    print(f"  {'load average':26} {rep.get('loadavg_start')} at start, {rep.get('loadavg_end')} at end")
    print(f"  {'harness time':26} {rep['harness_seconds']:.0f} s (setup {sum(rep['setup']['seconds'].values()):.0f} s)")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
