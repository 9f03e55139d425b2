"""Progress lines for long work: count, rate and ETA. A live line on a terminal, sparse lines in logs."""

from __future__ import annotations

import sys
import time

from edgekit.logs import progress_shown


def fmt_seconds(s: float) -> str:
    s = max(0, round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class Progress:
    def __init__(self, label: str, total: int, unit: str = "img", stream=None):
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        self.enabled = progress_shown()  # silenced with the edgekit logger
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self.done = 0
        self._last_print = 0.0
        self._last_tenth = -1

    def update(self, n: int, **extra) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.perf_counter()
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        tail = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in extra.items())
        line = f"{self.label} [{self.done}/{self.total}] {rate:,.0f} {self.unit}/s  ETA {fmt_seconds(eta)}  {tail}"
        line = line.rstrip()
        finished = self.done >= self.total
        if self.tty:
            if finished or now - self._last_print > 0.2:
                self.stream.write("\r\033[K" + line + ("\n" if finished else ""))
                self.stream.flush()
                self._last_print = now
        else:
            tenth = int(10 * self.done / max(self.total, 1))
            if tenth != self._last_tenth and (tenth % 2 == 0 or finished):
                self.stream.write(line + "\n")
                self.stream.flush()
                self._last_tenth = tenth
