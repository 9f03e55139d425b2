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
    captured stream gets them), flushed at once: progress must show while a long stage runs.
    `all_to_stderr`: with `--json` stdout carries one JSON object, so every line goes to stderr."""

    def __init__(self, all_to_stderr: bool = False) -> None:
        super().__init__()
        self.all_to_stderr = all_to_stderr

    def emit(self, record: logging.LogRecord) -> None:
        try:
            to_stderr = self.all_to_stderr or record.levelno >= logging.WARNING
            stream = sys.stderr if to_stderr else sys.stdout
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
    """Whether progress lines should be written: the edgekit logger lets INFO through, and so does a
    console handler when there is one (`-q` with `--log-file` keeps the file's INFO lines, not the bars)."""
    if not LOGGER.isEnabledFor(logging.INFO):
        return False
    consoles = [h for h in LOGGER.handlers if isinstance(h, ConsoleHandler)]
    return not consoles or any(h.level <= logging.INFO for h in consoles)


def configure_cli(verbosity: int = 0, log_file: str | None = None, json_output: bool = False) -> None:
    """The command line's logging: `verbosity` -1 (-q: warnings and errors only), 0 (progress) or 1 (-v:
    debug lines too); `log_file` gets every line at debug level with a timestamp, whatever the console
    shows; `json_output` sends the console lines to stderr."""
    console_level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    for h in [h for h in LOGGER.handlers if isinstance(h, (ConsoleHandler, logging.FileHandler))]:
        LOGGER.removeHandler(h)
        h.close()
    console = ConsoleHandler(all_to_stderr=json_output)
    console.setFormatter(logging.Formatter("%(message)s"))
    console.setLevel(console_level)
    LOGGER.addHandler(console)
    level = console_level
    if log_file:
        try:
            handler = logging.FileHandler(log_file, encoding="utf-8", delay=False)
        except OSError as exc:
            from edgekit.errors import EdgekitError

            raise EdgekitError(
                f"cannot open the log file {log_file} ({exc.strerror or type(exc).__name__}): give a writable path "
                "to --log-file"
            ) from None
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.DEBUG)
        LOGGER.addHandler(handler)
        level = logging.DEBUG
    LOGGER.setLevel(level)
