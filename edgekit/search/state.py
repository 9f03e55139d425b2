"""The state file: after every generation the whole search (algorithm state with its RNG, every
evaluated record, counters, the per-generation log) is written atomically as JSON, so a search stopped
at any point resumes from its last finished generation and continues exactly as it would have. The
settings that shape the search are saved with it; resuming under other settings is refused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_json
from edgekit.search.config import Config
from edgekit.search.space import Space

STATE_FILE = "search_state.json"
VERSION = 1
# settings that only say when to stop or how to report: a resumed search may change them
FREE = (
    "budget_evals",
    "budget_minutes",
    "max_generations",
    "stall_generations",
    "finalists",
    "final_latency_s",
    "fill_steps",
    "fill_margin",
)


def fingerprint(cfg: Config, space: Space) -> dict[str, Any]:
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in FREE}
    return {"settings": settings, "space": space.describe()}


def save_state(path: Path, fp: dict, algorithm: dict, records: list[dict], progress: dict) -> None:
    atomic_write_json(
        path, {"version": VERSION, "fingerprint": fp, "progress": progress, "algorithm": algorithm, "records": records}
    )


def load_state(path: Path, fp: dict) -> dict | None:
    """The saved state, or None when there is none; an EdgekitError when it belongs to another search."""
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EdgekitError(f"{path} is not a readable search state ({exc}): delete it to start over") from None
    if state.get("version") != VERSION:
        raise EdgekitError(f"{path} was written by another state version: delete it to start over")
    saved = state["fingerprint"]
    if saved != json.loads(json.dumps(fp)):  # compared as JSON reads it back (tuples become lists)
        differ = sorted(
            k for k in {**saved["settings"], **fp["settings"]} if saved["settings"].get(k) != fp["settings"].get(k)
        )
        what = f"settings {', '.join(differ)}" if differ else "the model's prunable groups"
        raise EdgekitError(
            f"{path} belongs to a search with other {what}: resume with the same settings and model, or delete it "
            "to start over"
        )
    return state
