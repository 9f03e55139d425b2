"""Data-parallel training over torch.distributed (torchrun's environment, or `--nproc N`, which launches
the processes itself). Ground: the facts of the process group and the few collectives edgekit uses.

With no torchrun environment (WORLD_SIZE unset or 1) every function here is a no-op and the run is the
single-process run it always was. Rank 0 leads: it runs the pipeline and writes the run folder; the
other ranks only train inside its fit calls (edgekit.training.serve) and never write (`check_writer`)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from edgekit.errors import EdgekitError

if TYPE_CHECKING:
    import torch

# Ranks other than 0 wait in a collective while rank 0 exports, quantizes and validates alone: the
# group's timeout must outlast those stages (a dead peer is caught sooner: gloo sees the closed
# connection, and the launcher stops every rank when one exits non-zero).
WAIT = timedelta(hours=24)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def is_main() -> bool:
    return rank() == 0


def backend() -> str | None:
    """The backend of the training collectives: nccl on CUDA, gloo on the CPU; None in one process."""
    import torch

    if world_size() == 1:
        return None
    return "nccl" if torch.cuda.is_available() else "gloo"


def check_writer(path: object) -> None:
    """Only rank 0 writes: every atomic write of edgekit (edgekit.fileio) passes here first."""
    if not is_main():
        raise RuntimeError(f"rank {rank()} tried to write {path}: only rank 0 writes in a distributed run")


@contextmanager
def group() -> Iterator[None]:
    """The process group for the block (no-op in one process); torn down afterwards."""
    import torch

    if world_size() == 1 or torch.distributed.is_initialized():
        yield
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        name = "cpu:gloo,cuda:nccl"  # object broadcasts stay on gloo, gradients of CUDA tensors use NCCL
    else:
        name = "gloo"
    torch.distributed.init_process_group(name, timeout=WAIT)
    finished = False
    try:
        yield
        finished = True
    finally:
        if finished:
            _meet_before_teardown()
        torch.distributed.destroy_process_group()


def _meet_before_teardown() -> None:
    """Every rank reaches the teardown before any tears down: a rank that destroyed its group while a
    peer still had gloo traffic in flight aborted the peer now and then ("terminate called without an
    active exception", SIGABRT; seen on torch 2.13.0+cu130, Python 3.10). Bounded, so a rank whose
    peer failed still exits."""
    import torch

    with contextlib.suppress(Exception):  # a peer that failed or left: tear down regardless
        torch.distributed.monitored_barrier(timeout=timedelta(seconds=60))


def broadcast_object(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (pickled; the others pass anything, e.g. None)."""
    import torch

    if world_size() == 1:
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order, on rank 0 (pickled); the other ranks get an empty list."""
    import torch

    if world_size() == 1:
        return [obj]
    out: list[Any] | None = [None] * world_size() if is_main() else None
    torch.distributed.gather_object(obj, out, dst=0)
    return out or []


def all_reduce_sum(values: list[float]) -> list[float]:
    """The element-wise sum of `values` over the ranks (metrics, e.g. a loss sum and an image count)."""
    import torch

    if world_size() == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return t.tolist()


def sum_gradients(params: list[torch.nn.Parameter], weight: float) -> None:
    """Each gradient becomes the sum over ranks of `weight` times that rank's: with `weight` = this rank's
    share of the global batch, the mean-loss gradient of the whole batch. One flat all-reduce per
    device. A gradient that is None (a frozen parameter) is None on every rank and stays None."""
    import torch

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    for device in {g.device for g in grads}:
        mine = [g for g in grads if g.device == device]
        flat = torch.cat([g.reshape(-1).float() for g in mine]).mul_(weight)
        torch.distributed.all_reduce(flat)
        offset = 0
        for g in mine:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()


def bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """This rank's contiguous slice of n items (sizes differ by at most one, the first ranks take the
    extra ones), as [start, stop): how training batches, evaluation images and sensitivity layers split."""
    base, extra = divmod(n, world)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def shard(batch: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's part of a global batch of indices (`bounds`; a global batch smaller than the world is
    the caller's to skip)."""
    start, stop = bounds(len(batch), rank, world)
    return batch[start:stop]


# --- launching: `edgekit compress/run --nproc N` ---------------------------------------------------------


def devices_available() -> tuple[int, str]:
    """How many processes this machine takes: one per GPU where PyTorch sees one, else one per core."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.device_count(), "CUDA GPUs"
    return os.cpu_count() or 1, "CPU cores"


def check_nproc(nproc: int) -> None:
    have, what = devices_available()
    if nproc < 1:
        raise EdgekitError(f"--nproc {nproc} is not a process count: give 1 or more (at most {have}, the {what} here)")
    if nproc > have:
        raise EdgekitError(
            f"--nproc {nproc} is more than the {have} {what} on this machine: give at most {have} (one process per "
            "GPU, or per core on the CPU); use torchrun --nnodes for more machines"
        )


def check_batch(section: str, batch_size: int, world: int) -> None:
    if batch_size % world:
        raise EdgekitError(
            f"{section}.batch_size {batch_size} does not divide among {world} processes: the global batch stays "
            f"{batch_size} and each process takes batch_size / {world}; set --set {section}.batch_size to a "
            f"multiple of {world}, e.g. {batch_size - batch_size % world or world}"
        )


def free_port(port: int | None) -> int:
    """`port` when nothing listens there (else a one-line error), or a free port picked by the system."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("", port or 0))
        except OSError:
            raise EdgekitError(
                f"--master-port {port} is in use (another distributed run?): give a free port, or leave "
                "--master-port out to pick one"
            ) from None
        return int(s.getsockname()[1])


def launch(args: list[str], nproc: int, port: int | None) -> int:
    """Run `python -m edgekit ARGS` in `nproc` processes on this machine with torchrun's environment;
    the first process to fail stops the others, and its exit code is the launch's (its one-line error
    is already on stderr). Why not torchrun itself: it reports a failing child as a multi-line
    ChildFailedError with exit code 1, losing edgekit's exit 2 (bad input) versus 1 (failed check)."""
    check_nproc(nproc)
    port = free_port(port)
    threads = str(max(1, (os.cpu_count() or 1) // nproc))  # no oversubscription of the cores
    procs = []
    for r in range(nproc):
        env = {
            **os.environ,
            "RANK": str(r),
            "LOCAL_RANK": str(r),
            "WORLD_SIZE": str(nproc),
            "LOCAL_WORLD_SIZE": str(nproc),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
        env.setdefault("OMP_NUM_THREADS", threads)
        procs.append(subprocess.Popen([sys.executable, "-m", "edgekit", *args], env=env))
    try:
        return _wait_all(procs)
    except KeyboardInterrupt:
        for p in procs:  # they got the Ctrl-C too: let rank 0 close its report
            p.wait()
        return 130


def _wait_all(procs: list[subprocess.Popen]) -> int:
    while True:
        codes = [p.poll() for p in procs]
        failed = next((c for c in codes if c not in (None, 0)), None)
        if failed is not None:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                p.wait()
            return failed
        if all(c == 0 for c in codes):
            return 0
        time.sleep(0.1)
