"""edgekit reports progress through the `edgekit` logger, so a script or a notebook can silence or
redirect it (`logging.getLogger("edgekit").setLevel(logging.WARNING)`). The command line, and the
Python API when the application has configured no logging, show its lines as plain text: INFO on
stdout, warnings on stderr, as edgekit printed them before it used logging."""

from __future__ import annotations

import logging
import sys

LOGGER = logging.getLogger("edgekit")


class ConsoleHandler(logging.Handler):
    """Bare lines to the current sys.stdout / sys.stderr, looked up at each record (so a redirected or
    captured stream gets them), flushed at once: progress must show while a long stage runs."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # a closed pipe or stream: logging's own error path, never the run's
            self.handleError(record)


def show_on_console(always: bool = False) -> None:
    """Show edgekit's messages on the console, once. The command line does it `always`; the Python API
    only when the application handles no logging (no handler on the `edgekit` or the root logger)."""
    if any(isinstance(h, ConsoleHandler) for h in LOGGER.handlers):
        return
    if LOGGER.level == logging.NOTSET:
        LOGGER.setLevel(logging.INFO)
    if not always and (LOGGER.handlers or logging.getLogger().handlers):
        return
    handler = ConsoleHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    LOGGER.addHandler(handler)


def progress_shown() -> bool:
    """Whether progress lines should be written (the edgekit logger lets INFO through)."""
    return LOGGER.isEnabledFor(logging.INFO)
