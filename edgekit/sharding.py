"""Work spread over the ranks of a distributed run outside training, and what rank 0 tells them.

Map jobs: rank 0 hands every rank the same
picklable `fn(rank, world)`, each computes its share, and rank 0 gets the results in rank order. The other
ranks run it from their wait loop (edgekit.training.serve), so it may only be called by rank 0 between
fit calls, which is where the pipeline's stages run. In one process it is just `[fn(0, 1)]`.

Folder notices: rank 0 tells the other ranks its run folder when it makes it and again when the run
finished, so that every rank's API call can return that run (edgekit.api.run_recipe).

A rank whose share fails still answers (with the error), so no rank is left inside a collective, and rank
0 raises one EdgekitError naming the rank and its error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import edgekit.distributed as dist
from edgekit.errors import EdgekitError

T = TypeVar("T")
MAP = "map"  # the job tag serve() dispatches on


@dataclass(frozen=True)
class ShareFailed:
    rank: int
    error: str


_IN_SHARE: list[bool] = []  # non-empty while this process computes a share


def share(fn: Callable[[int, int], Any], rank: int, world: int) -> Any:
    """Run one rank's share, turning an error into a ShareFailed answer."""
    _IN_SHARE.append(True)
    try:
        return fn(rank, world)
    except Exception as exc:  # every rank must still reach the gather
        return ShareFailed(rank, " ".join(str(exc).split()) or type(exc).__name__)
    finally:
        _IN_SHARE.pop()


def across_ranks(fn: Callable[[int, int], T]) -> list[T]:
    """fn(rank, world) on every rank, the results in rank order (rank 0's first). Called from inside a
    share (e.g. a share that quantizes, which calibrates across ranks) it runs fn alone in this process:
    the other ranks are busy with their own shares and would never answer."""
    world = dist.world_size()
    if world == 1 or _IN_SHARE:
        return [fn(0, 1)]
    dist.broadcast_object((MAP, fn))
    results = dist.gather_objects(share(fn, 0, world))
    failed = [r for r in results if isinstance(r, ShareFailed)]
    if failed:
        first = failed[0]
        raise EdgekitError(f"rank {first.rank} failed in its share of the work: {first.error}")
    return results


def serve_share(job: tuple) -> None:
    """A rank other than 0: compute this rank's share of a map job and send it to rank 0."""
    _, fn = job
    dist.gather_objects(share(fn, dist.rank(), dist.world_size()))


FOLDER = "folder"  # a job that only tells the other ranks rank 0's run folder, and whether the run finished
_FOLDER: list[tuple[str, bool]] = []


def forget_folder() -> None:
    _FOLDER.clear()


def note_folder(job: tuple) -> None:
    """A rank other than 0, in its wait loop: remember the folder rank 0 announced."""
    _FOLDER[:] = [(job[1], job[2])]


def announce_folder(path: str, finished: bool = False) -> None:
    """Rank 0, leading a distributed run: tell the other ranks (waiting in serve) its run folder."""
    _FOLDER[:] = [(path, finished)]
    dist.broadcast_object((FOLDER, path, finished))


def announce_finished() -> None:
    """Rank 0, its run over without an error: the folder announced before is complete."""
    if _FOLDER:
        announce_folder(_FOLDER[-1][0], finished=True)


def announced_folder() -> tuple[str, bool] | None:
    """After serve (a rank other than 0): rank 0's run folder and whether its run finished."""
    return _FOLDER[-1] if _FOLDER else None
