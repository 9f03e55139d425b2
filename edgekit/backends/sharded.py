"""Accuracy of a run's own models with the images split across the ranks of a distributed run
(edgekit.sharding): each rank builds every model's runner and computes the logits of its contiguous
share, rank 0 joins them in order and scores them. The images are sent once for all the models. The
scores equal a one-process evaluation's: each image's logits do not depend on which rank computed them."""

from __future__ import annotations

from functools import partial

import numpy as np

from edgekit.artifact import ModelEntry
from edgekit.backends.measure import logits
from edgekit.backends.select import runner_for
from edgekit.distributed import bounds
from edgekit.metrics import topk_accuracy
from edgekit.sharding import across_ranks


def _share(
    entries: list[ModelEntry], images: np.ndarray, threads: int, label: str | None, rank: int, world: int
) -> list[np.ndarray]:
    start, stop = bounds(len(images), rank, world)
    shown = label if rank == 0 else None  # one progress line per model, rank 0's
    share = f" (rank 0's share of {world})" if world > 1 else ""
    return [
        logits(runner_for(e, threads), images[start:stop], label=shown and f"{shown} {e.name}{share}") for e in entries
    ]


def accuracies(
    entries: list[ModelEntry], images: np.ndarray, labels: np.ndarray, threads: int, label: str | None = None
) -> list[dict[str, float]]:
    """top-1/top-5 of each entry on `images`, computed across the ranks (in one process: here).
    `label`: progress lines "LABEL <model>"."""
    parts = across_ranks(partial(_share, list(entries), images, threads, label))
    return [topk_accuracy(np.concatenate([p[i] for p in parts]), labels) for i in range(len(entries))]
