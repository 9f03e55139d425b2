"""Progress lines for long work: count, rate and ETA. A live line on a terminal, sparse lines in logs.

`RunEta` is the whole run's clock: elapsed time and an estimate of the time left, from each stage's
planned work (images to train, images to infer, configured seconds of timing) over the throughput this
run measured for that kind of work. A kind with nothing measured yet is named, never guessed."""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from edgekit.logs import progress_shown

# Kinds of planned work. TRAIN is counted as it happens by the training loop's progress bars; the
# others are measured by a finished stage that planned that kind of work only; SECONDS needs no rate.
TRAIN = "train img"
INFER = "infer img"
ENGINE = "engine"
SECONDS = "s"
COUNTED = frozenset({TRAIN})

Work = dict[str, float]  # planned units by kind, e.g. {TRAIN: 180_000}


def fmt_seconds(s: float) -> str:
    s = max(0, round(s))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def fit_terminal(line: str) -> str:
    """`line` cut to the terminal's width: a live line that wraps cannot be rewritten in place."""
    return line[: max(20, shutil.get_terminal_size().columns - 1)]


@dataclass
class _Count:
    """Units of a COUNTED kind reported in the current stage, and when: the rate is timed from the
    first report to the last, so a stage's set-up before its first batch is not taken for slow work."""

    total: float
    first: float
    last: float
    timed: float = 0.0  # the units after the first report (the first one's start time is unknown)


class RunEta:
    """Elapsed time and time left for a run's remaining stages (`plan`: stage -> Work, in run order)."""

    def __init__(self, plan: dict[str, Work], clock: Callable[[], float] = time.perf_counter):
        self.plan = _planned(plan)
        self.clock = clock
        self.start = clock()
        self.measured: dict[str, tuple[float, float]] = {}  # kind -> (units, seconds) of finished stages
        self.stage: str | None = None
        self.stage_start = self.start
        self.counts: dict[str, _Count] = {}

    def begin(self, stage: str, plan: dict[str, Work] | None = None) -> None:
        """`stage` starts; `plan` (its own and the later stages' work) replaces the plan when given."""
        if plan is not None:
            self.plan = _planned(plan)
        self.stage, self.stage_start, self.counts = stage, self.clock(), {}

    def count(self, kind: str, units: float) -> None:
        """A progress bar of the current stage did `units` of a COUNTED kind of work."""
        if self.stage is None or kind not in COUNTED:
            return
        now, seen = self.clock(), self.counts.get(kind)
        if seen is None:
            self.counts[kind] = _Count(units, now, now)
        else:
            seen.total, seen.timed, seen.last = seen.total + units, seen.timed + units, now

    def finish(self) -> None:
        """The current stage is done: what it measured joins the run's rates and it leaves the plan."""
        for kind, units, seconds in self._samples(final=True):
            had = self.measured.get(kind, (0.0, 0.0))
            self.measured[kind] = (had[0] + units, had[1] + seconds)
        self.plan.pop(self.stage or "", None)
        self.stage = None

    def _samples(self, final: bool) -> list[tuple[str, float, float]]:
        """(kind, units, seconds) the current stage measured: counted kinds as their bars timed them; a
        kind no bar counts by the stage's wall time, once the stage has finished, and only when that
        kind was all the stage planned (otherwise its time cannot be split between kinds)."""
        out = [(kind, c.timed, c.last - c.first) for kind, c in self.counts.items()]
        work = self.plan.get(self.stage or "") or {}
        if final and len(work) == 1 and not COUNTED & work.keys():
            ((kind, planned),) = work.items()
            out.append((kind, planned, self.clock() - self.stage_start))
        return [(kind, units, seconds) for kind, units, seconds in out if units > 0 and seconds > 0]

    def rate(self, kind: str) -> float | None:
        """Units per second of `kind` measured in this run so far (the current stage's bars included)."""
        if kind == SECONDS:
            return 1.0
        units, seconds = self.measured.get(kind, (0.0, 0.0))
        for k, u, s in self._samples(final=False) if self.stage else []:
            if k == kind:
                units, seconds = units + u, seconds + s
        return units / seconds if units > 0 and seconds > 0 else None

    def _left(self, stage: str, work: Work) -> float | None:
        """Seconds left of one stage's planned work, or None when a kind of it has no measured rate."""
        left = 0.0
        for kind, units in work.items():
            rate = self.rate(kind)
            if rate is None:
                return None
            if stage == self.stage and kind in self.counts:
                units = max(0.0, units - self.counts[kind].total)
            left += units / rate
        if stage == self.stage and not COUNTED & work.keys():
            left = max(0.0, left - (self.clock() - self.stage_start))
        return left

    def remaining(self) -> tuple[float, list[str]]:
        """Seconds left for the stages that can be estimated, and the stages that cannot be yet."""
        total, unknown = 0.0, []
        for stage, work in self.plan.items():
            left = self._left(stage, work)
            if left is None:
                unknown.append(stage)
            else:
                total += left
        return total, unknown

    def line(self) -> str:
        """'run 1m05s elapsed, ETA 2m10s', with '+ build (not measured yet)' for what has no rate yet."""
        head = f"run {fmt_seconds(self.clock() - self.start)} elapsed"
        if not self.plan:
            return head
        left, unknown = self.remaining()
        if len(unknown) == len(self.plan):
            return f"{head}, ETA unknown (not measured yet: {', '.join(unknown)})"
        tail = f" + {', '.join(unknown)} (not measured yet)" if unknown else ""
        return f"{head}, ETA {fmt_seconds(left)}{tail}"


def _planned(plan: dict[str, Work]) -> dict[str, Work]:
    """The stages with work to estimate (a stage planning none, such as load, is left out)."""
    kept = {stage: {kind: units for kind, units in work.items() if units > 0} for stage, work in plan.items()}
    return {stage: work for stage, work in kept.items() if work}


_RUN: ContextVar[RunEta | None] = ContextVar("edgekit_run_eta", default=None)


@contextlib.contextmanager
def run_clock(eta: RunEta) -> Iterator[RunEta]:
    """Make `eta` the run's clock while the block runs: progress bars of planned work report to it."""
    token = _RUN.set(eta)
    try:
        yield eta
    finally:
        _RUN.reset(token)


def current_run() -> RunEta | None:
    return _RUN.get()


class Progress:
    """`work`: the RunEta kind these units are (TRAIN for training images); such a bar reports them to
    the run's clock and shows the run's ETA after its own."""

    def __init__(self, label: str, total: int, unit: str = "img", stream=None, work: str | None = None):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.enabled = progress_shown()  # silenced with the edgekit logger
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self.done = 0
        self.work = work
        self.run = current_run() if work else None
        self._last_print = 0.0
        self._last_tenth = -1

    def update(self, n: int, **extra) -> None:
        self.done += n
        if self.run is not None and self.work:
            self.run.count(self.work, n)
        if not self.enabled:
            return
        now = time.perf_counter()
        finished = self.done >= self.total
        if self.tty:
            if finished or now - self._last_print > 0.2:
                self.stream.write("\r\033[K" + fit_terminal(self._line(now, extra)) + ("\n" if finished else ""))
                self.stream.flush()
                self._last_print = now
        else:
            tenth = int(10 * self.done / max(self.total, 1))
            if tenth != self._last_tenth and (tenth % 2 == 0 or finished):
                self.stream.write(self._line(now, extra) + "\n")
                self.stream.flush()
                self._last_tenth = tenth

    def _line(self, now: float, extra: dict) -> str:
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        tail = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in extra.items())
        line = f"{self.label} [{self.done}/{self.total}] {rate:,.0f} {self.unit}/s  ETA {fmt_seconds(eta)}  {tail}"
        if self.run is not None:
            line = f"{line.rstrip()}  | {self.run.line()}"
        return line.rstrip()
