"""Run under torchrun with 2 processes by tests/test_distributed.py (not a test module itself): every
process calls the Python API, as a user's training script would; each writes the Run it got to
ANSWERS/rank<N>.json (argv: OUTPUT ANSWERS). Not stdout: the ranks' lines may interleave there."""

import json
import sys
from pathlib import Path

import edgekit
import edgekit.distributed as dist

SLICE = Path(__file__).parent / "data" / "fashion-mnist"

run = edgekit.compress(
    "lenet5",
    prune=0.3,
    output=sys.argv[1],
    settings={
        "data.root": str(SLICE), "train.epochs": 2, "train.cache": False, "distill.epochs": 1,
        "validate.min_seconds": 0.05, "validate.min_runs": 5, "validate.warmup_s": 0, "validate.rounds": 1,
    },
)  # fmt: skip
top1 = {r["artifact"]: r["top1"] for r in run.report.get("results", [])}
answer = {"rank": dist.rank(), "run_dir": str(run.run_dir), "ship": str(run.ship), "top1": top1}
(Path(sys.argv[2]) / f"rank{dist.rank()}.json").write_text(json.dumps(answer))
