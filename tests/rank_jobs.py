"""Run under torchrun with 2 processes by tests/test_distributed.py (not a test module itself): rank 0
hands map jobs to rank 1 (edgekit.sharding) while rank 1 waits in edgekit.training.serve, as in a run.
Prints JSON lines that the test reads: a sharded result, a sharded evaluation beside a one-process one,
and the error of a share that failed on rank 1."""

import json
import os
import tempfile
from functools import partial
from pathlib import Path
from unittest.mock import patch

import numpy as np
import torch

import edgekit
import edgekit.distributed as dist
import edgekit.sharding as sharding
import edgekit.training as training
from edgekit.artifact import ModelEntry, Role
from edgekit.backends import evaluate
from edgekit.backends.select import runner_for
from edgekit.backends.sharded import accuracies
from edgekit.errors import EdgekitError
from edgekit.quant.sensitivity import HeldOut, logits_of, rank_layers
from edgekit.zoo import create_model


def squares(n: int, rank: int, world: int) -> dict:
    start, stop = dist.bounds(n, rank, world)
    return {"rank": rank, "pid": os.getpid(), "values": [i * i for i in range(start, stop)]}


def fails_on_rank_1(rank: int, world: int) -> int:
    if rank == 1:
        raise ValueError("disk full\non rank 1")
    return rank


def main() -> None:
    with dist.group():
        if not dist.is_main():
            training.serve()
            return
        try:
            parts = sharding.across_ranks(partial(squares, 11))
            print(json.dumps({"squares": parts}), flush=True)
            torch.manual_seed(0)
            model = create_model("lenet5", num_classes=10, in_chans=1).eval()
            entry = ModelEntry(Role.BASELINE, "baseline", "torch", "fp32", 0, 0, Path("unused.pt"), model)
            images = np.random.default_rng(0).standard_normal((203, 1, 32, 32)).astype(np.float32)
            labels = np.random.default_rng(1).integers(0, 10, 203)
            two = accuracies([entry], images, labels, threads=1)[0]
            one = evaluate(runner_for(entry, 1), images, labels)
            print(json.dumps({"sharded": two, "one_process": one}), flush=True)
            with tempfile.TemporaryDirectory() as tmp:  # int8 sensitivity, layers split across the ranks
                fp32 = edgekit.export_onnx(model, Path(tmp) / "m.onnx", (1, 32, 32))
                int8 = edgekit.quantize_onnx(fp32, images[:64], Path(tmp) / "m.int8.onnx")
                held = HeldOut(images, labels, logits_of(fp32, images))
                ranked = rank_layers(int8, fp32, held)
                with patch.object(dist, "world_size", return_value=1):  # the same, in this process alone
                    alone = rank_layers(int8, fp32, held)
            print(json.dumps({"sensitivity": ranked, "one_process": alone}), flush=True)
            try:
                sharding.across_ranks(fails_on_rank_1)
            except EdgekitError as exc:
                print(json.dumps({"error": str(exc)}), flush=True)
        finally:
            training.release()


if __name__ == "__main__":
    main()
