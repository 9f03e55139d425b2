"""The kill test of issue 6 on the real demo: start `edgekit compress mobilenet_v3 --prune 0.3 --int8`,
SIGKILL it during distillation (after its first epoch checkpoint), `edgekit run --resume` the run
folder, and compare its final accuracy with an uninterrupted run of the same recipe.

    python bench/kill_resume.py [--output DIR] [--kill-at "distill epoch 2/3"] [--no-reference]

Prints what the resumed run redid and a table of top-1 (resumed vs uninterrupted); exits 1 when the
resumed run retrained the baseline, redid a finished stage, or differs by more than --tolerance points."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DEMO = ["compress", "mobilenet_v3", "--prune", "0.3", "--int8"]


def edgekit(args: list[str], log: Path) -> tuple[int, str]:
    with open(log, "w") as f:
        rc = subprocess.call([sys.executable, "-m", "edgekit", *args], stdout=f, stderr=subprocess.STDOUT)
    return rc, log.read_text()


def start_and_kill(out: Path, marker: str) -> Path:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgekit", *DEMO, "--output", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    assert proc.stdout is not None  # stdout=PIPE
    start = time.perf_counter()
    for line in proc.stdout:
        print("  | " + line.rstrip())
        if line.startswith(marker):
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    print(f"killed with SIGKILL after {time.perf_counter() - start:.0f} s at {marker!r} (exit {proc.returncode})")
    (run,) = [p for p in out.iterdir() if p.is_dir()]
    return run


def top1(run: Path) -> dict[str, float]:
    return {r["artifact"]: r["top1"] for r in json.loads((run / "report.json").read_text())["results"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", default="artifacts/killtest")
    ap.add_argument("--kill-at", default="distill epoch 2/3", help="kill when a progress line starts with this")
    ap.add_argument("--tolerance", type=float, default=0.3, help="allowed top-1 difference in points")
    ap.add_argument("--no-reference", action="store_true", help="skip the uninterrupted reference run")
    args = ap.parse_args()
    root = Path(args.output) / time.strftime("%Y%m%d-%H%M%S")
    killed_out, ref_out = root / "killed", root / "reference"
    killed_out.mkdir(parents=True)
    run = start_and_kill(killed_out, args.kill_at)
    finished = [s["name"] for s in json.loads((run / "manifest.json").read_text())["stages"]]
    print(
        f"stages finished before the kill: {finished}; epoch checkpoint present: "
        f"{(run / '.distill.epoch.pt').is_file()}"
    )
    start = time.perf_counter()
    rc, log = edgekit(["run", "--resume", str(run)], root / "resume.log")
    print(f"resume: exit {rc} in {time.perf_counter() - start:.0f} s; log {root / 'resume.log'}")
    redone = [s for s in finished if f"== {s}\n" in log]
    problems = [f"resume exited {rc}"] if rc else []
    if "train epoch" in log or redone:
        problems.append(f"the resumed run redid {redone or ['training']}")
    for line in log.splitlines():
        if line.startswith(("resuming", "distill: resuming")):
            print("  " + line)
    got = top1(run)
    ref = {}
    if not args.no_reference:
        ref_out.mkdir()
        start = time.perf_counter()
        rc_ref, _ = edgekit([*DEMO, "--output", str(ref_out)], root / "reference.log")
        print(f"reference (uninterrupted): exit {rc_ref} in {time.perf_counter() - start:.0f} s")
        ref = top1(next(p for p in ref_out.iterdir() if p.is_dir()))
    print("\n| artifact | resumed top-1 | uninterrupted top-1 | Δ points |\n|---|---:|---:|---:|")
    for name, value in got.items():
        r = ref.get(name)
        delta = (value - r) * 100 if r is not None else None
        print(
            f"| {name} | {value * 100:.2f}% | {'' if r is None else f'{r * 100:.2f}%'} | "
            f"{'' if delta is None else f'{delta:+.2f}'} |"
        )
        if delta is not None and abs(delta) > args.tolerance:
            problems.append(f"{name} differs by {delta:+.2f} points")
    print("\nPASS" if not problems else "\nFAIL: " + "; ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
