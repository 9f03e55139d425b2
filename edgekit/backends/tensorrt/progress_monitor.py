"""Progress of a TensorRT engine build, through TensorRT's IProgressMonitor (TensorRT 10 and later).

TensorRT reports nested phases ("Building engine" > "Tactic selection" > ...), each with a number of
steps. `BuildProgress` turns them into edgekit progress lines: the open phases as one path with their
step counts, rewritten in place on a terminal and written at most every `interval` seconds otherwise,
silenced with the `edgekit` logger like every progress bar. Ctrl-C during a build cancels it cleanly:
the KeyboardInterrupt is caught in the callback (it must not cross into TensorRT's C++), the next
`step_complete` returns False and the builder raises KeyboardInterrupt once TensorRT has stopped.

Nothing here imports tensorrt: `attach` takes the module the builder loaded."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from edgekit.logs import progress_shown
from edgekit.progress import current_run, fit_terminal, fmt_seconds

TTY_INTERVAL, LOG_INTERVAL = 0.2, 10.0  # seconds between step lines: a live line, or a log that stays short


@dataclass
class Phase:
    name: str
    parent: str | None
    steps: int
    start: float
    done: int = 0


class BuildProgress:
    """The build's open phases and whether it was cancelled. TensorRT may call from its own threads, so
    every callback takes the lock; none lets an exception escape (TensorRT's callbacks are noexcept)."""

    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = interval if interval is not None else (TTY_INTERVAL if self.tty else LOG_INTERVAL)
        self.enabled = progress_shown()
        self.clock = clock
        self.phases: dict[str, Phase] = {}  # open phases, in the order they started
        self.cancelled = False
        self.monitor: Any = None  # the IProgressMonitor object, kept alive as long as this
        self._lock = threading.Lock()
        self._last_line = float("-inf")

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        self._guarded(self._start, phase_name, parent_phase, num_steps)

    def step_complete(self, phase_name: str, step: int) -> bool:
        self._guarded(self._step, phase_name, step)
        return not self.cancelled  # False asks TensorRT to stop the build

    def phase_finish(self, phase_name: str) -> None:
        self._guarded(self._finish, phase_name)

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            with self._lock:
                fn(*args)
        except KeyboardInterrupt:  # Ctrl-C while TensorRT called us: cancel at the next step
            first, self.cancelled = not self.cancelled, True
            if first:
                self._say_cancelled()
        except Exception:  # a display problem must never end the build
            self.enabled = False

    def _say_cancelled(self) -> None:
        # A second Ctrl-C while this writes must not reach TensorRT either: it is cancelling already.
        with contextlib.suppress(BaseException):
            self._write(f"{self.label}: Ctrl-C: cancelling the TensorRT build", end=True)

    def _start(self, name: str, parent: str | None, steps: int) -> None:
        self.phases[name] = Phase(name, parent, max(1, steps), self.clock())
        if parent is None:  # top-level phases are few: each gets its line
            self._write(f"{self.label}: {name} ({steps} steps)", end=True)

    def _step(self, name: str, step: int) -> None:
        phase = self.phases.get(name)
        if phase is None:
            return
        phase.done = max(phase.done, step + 1)  # steps count from 0
        now = self.clock()
        if now - self._last_line >= self.interval:
            self._write(self._path_line(name, now), end=not self.tty)
            self._last_line = now

    def _finish(self, name: str) -> None:
        phase = self.phases.pop(name, None)
        if phase is not None and phase.parent is None:
            self._write(f"{self.label}: {name} done in {fmt_seconds(self.clock() - phase.start)}", end=True)

    def _path_line(self, name: str, now: float) -> str:
        """'model.int8.onnx: Building engine 2/3 > Tactic selection 14/120  1m05s' for the phase that
        just stepped and its parents, with the run's ETA when a pipeline run is going."""
        chain: list[Phase] = []
        phase = self.phases.get(name)
        while phase is not None and phase not in chain:
            chain.insert(0, phase)
            phase = self.phases.get(phase.parent) if phase.parent else None
        path = " > ".join(f"{p.name} {p.done}/{p.steps}" for p in chain)
        line = f"{self.label}: {path}  {fmt_seconds(now - chain[0].start)}"
        run = current_run()
        return f"{line}  | {run.line()}" if run is not None else line

    def _write(self, line: str, end: bool) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r\033[K" + fit_terminal(line) + ("\n" if end else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def attach(trt: Any, config: Any, label: str, **kwargs: Any) -> BuildProgress | None:
    """Set a progress monitor on the builder `config`; returns its BuildProgress, or None where this
    TensorRT has no IProgressMonitor (before 10.0). The monitor object stays referenced from the returned
    BuildProgress: TensorRT requires it to outlive the build."""
    base: Any = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None
    progress = BuildProgress(label, **kwargs)

    class Monitor(base):  # a pybind11 class: its __init__ must be called explicitly
        def __init__(self) -> None:
            base.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            progress.phase_start(phase_name, parent_phase, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return progress.step_complete(phase_name, step)

        def phase_finish(self, phase_name: str) -> None:
            progress.phase_finish(phase_name)

    progress.monitor = Monitor()
    config.progress_monitor = progress.monitor
    return progress
