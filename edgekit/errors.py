"""User-facing errors: one line naming the problem and the fix; the CLI turns them into exit code 2."""

from __future__ import annotations

from pathlib import Path


class EdgekitError(Exception):
    """A problem with the user's input or environment, reported without a traceback.

    The message must say what is wrong and how to fix it, on one line.
    """

    exit_code = 2
    run_dir: Path | None = None  # set by the pipeline when the error ends a run: the folder that holds its report


class StageFailed(EdgekitError):
    """The run's own work failed a check (an export that does not compute what the model does, a gate
    that is not met): exit code 1, told apart from bad input (2). Still one line, no traceback."""

    exit_code = 1
