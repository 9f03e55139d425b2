"""The Pareto front of (cost, accuracy) points: lower cost (latency or MACs) and higher accuracy are better."""

from __future__ import annotations

from collections.abc import Sequence


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates (cost <= and accuracy >=, one of them strictly),
    in cost order; equal points both stay. One sweep in (cost, -accuracy) order: a point is on the front
    when it beats every accuracy seen so far (all of them at a lower or equal cost)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    front: list[int] = []
    best = float("-inf")
    for i in order:
        cost, acc = points[i]
        if acc > best:
            front.append(i)
            best = acc
        elif front and tuple(points[front[-1]]) == (cost, acc):
            front.append(i)
    return front
