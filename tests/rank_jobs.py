"""Run under torchrun with 2 processes by tests/test_distributed.py (not a test module itself): rank 0
hands map jobs to rank 1 (edgekit.sharding) while rank 1 waits in edgekit.training.serve, as in a run.
Prints JSON lines that the test reads: a sharded result, a sharded evaluation, int8 sensitivity and minmax
calibration each beside a one-process one, and the error of a share that failed on rank 1."""

import json
import os
import tempfile
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch

import numpy as np
import torch

import edgekit
import edgekit.distributed as dist
import edgekit.quant.ptq as ptq
import edgekit.sharding as sharding
import edgekit.training as training
from edgekit.artifact import ModelEntry, Role
from edgekit.backends import evaluate
from edgekit.backends.select import runner_for
from edgekit.backends.sharded import accuracies
from edgekit.data import DataConfig, load_data
from edgekit.errors import EdgekitError
from edgekit.quant.ptq import CPU_OP_TYPES, PtqSettings, calibrate
from edgekit.quant.sensitivity import HeldOut, logits_of, rank_layers
from edgekit.search import run_search, spread
from edgekit.zoo import create_model


def squares(n: int, rank: int, world: int) -> dict:
    start, stop = dist.bounds(n, rank, world)
    return {"rank": rank, "pid": os.getpid(), "values": [i * i for i in range(start, stop)]}


def fails_on_rank_1(rank: int, world: int) -> int:
    if rank == 1:
        raise ValueError("disk full\non rank 1")
    return rank


def _ranges(data) -> dict:
    return {name: [np.asarray(v).tolist() for v in data[name].range_value] for name in data}


def _search_both_ways() -> dict:
    """A GA search (MACs target) with its candidates scored across the ranks, and the same in one process."""
    data = load_data(DataConfig(root=str(Path(__file__).parent / "data" / "fashion-mnist")))
    torch.manual_seed(0)
    model = create_model("lenet5", num_classes=10, in_chans=1, small_input=True).eval()
    settings: dict[str, Any] = dict(target_macs=0.7, budget_evals=10, population=6, proxy_images=200, bn_images=200)
    sent: list = []

    def recorded(fn):
        parts = sharding.across_ranks(fn)
        sent.append([len(p) for p in parts])
        return parts

    with tempfile.TemporaryDirectory() as tmp:
        with patch.object(spread, "across_ranks", recorded):
            split = run_search(model, data, out_dir=Path(tmp) / "two", **settings)
        with patch.object(dist, "world_size", return_value=1):
            alone = run_search(model, data, out_dir=Path(tmp) / "one", **settings)

    def seen(result) -> list:
        return [[r["genes"], r["macs"], r["proxy_top1"]] for r in result.data["evaluated"]]

    return {"search": seen(split), "one_process": seen(alone), "shares": sent, "chosen": [split.chosen, alone.chosen]}


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
                # minmax calibration, 101 images split 51 / 50 across the ranks, against one process
                sent: list = []  # what each rank sent back: its ranges

                def recorded(fn):
                    sent.extend(sharding.across_ranks(fn))
                    return sent

                with patch.object(ptq, "across_ranks", recorded):
                    split = calibrate(fp32, images[:101], PtqSettings(), Path(tmp), CPU_OP_TYPES)[1]
                with patch.object(dist, "world_size", return_value=1):
                    whole = calibrate(fp32, images[:101], PtqSettings(), Path(tmp), CPU_OP_TYPES)[1]
                shares = [len(p) for p in sent]
                print(
                    json.dumps({"calibration": _ranges(split), "one_process": _ranges(whole), "shares": shares}),
                    flush=True,
                )
            print(json.dumps(_search_both_ways()), flush=True)
            try:
                sharding.across_ranks(fails_on_rank_1)
            except EdgekitError as exc:
                print(json.dumps({"error": str(exc)}), flush=True)
        finally:
            training.release()


if __name__ == "__main__":
    main()
