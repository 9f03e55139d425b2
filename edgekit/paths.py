"""Where edgekit keeps what outlives a run: one cache root, `$EDGEKIT_CACHE` or `~/.cache/edgekit`."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(*parts: str) -> Path:
    """The cache root, or a folder inside it (`cache_root("baselines")`); nothing is created here."""
    root = Path(os.environ.get("EDGEKIT_CACHE") or Path.home() / ".cache" / "edgekit")
    return root.joinpath(*parts)
