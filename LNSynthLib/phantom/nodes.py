"""Lymph nodes for the phantom: soft-tissue ellipsoids in fat along the vessels, never touching organs.

A candidate node is placed beside a random point of a vessel centreline and accepted only if
the node grown by a safety gap lies entirely in visceral fat (so it neither touches an organ,
a vessel nor another node). Sizes scale with the phantom so small test volumes still get
several nodes; short axes stay within 5–25 mm where the volume allows it.
"""

from __future__ import annotations

import numpy as np

from LNSynthLib.phantom import tissues as T
from LNSynthLib.phantom.canvas import Canvas, ellipsoid_mask
from LNSynthLib.phantom.layout import Vessel

MIN_SHORT_AXIS_MM = 5.0
MAX_SHORT_AXIS_MM = 25.0


def short_axis_range(canvas: Canvas) -> tuple[float, float]:
    """Short-axis range (mm) that fits this phantom: 5–25 mm, narrowed for small or coarse grids."""
    fx, fy, _ = canvas.extent_xyz
    body = min(0.45 * fx, 0.37 * fy)  # the body's smaller half-width, as in the layout
    lo = max(MIN_SHORT_AXIS_MM, 2.5 * max(canvas.spacing[:2]))
    hi = min(MAX_SHORT_AXIS_MM, max(lo, 0.16 * body))
    return lo, hi


def place_nodes(canvas: Canvas, vessels: list[Vessel], rng: np.random.Generator, n_nodes: int,
                max_tries: int = 400) -> int:
    """Paint up to `n_nodes` nodes (tissue NODE, TotalSegmentator id 0); return how many were placed."""
    lo, hi = short_axis_range(canvas)
    gap = max(2.0, 1.5 * max(canvas.spacing))
    weights = np.array([v.radius * np.linalg.norm(np.diff(v.points, axis=0), axis=1).sum() for v in vessels])
    weights = weights / weights.sum()
    placed = 0
    for _ in range(n_nodes):
        for attempt in range(max_tries):
            # Shrink the wanted size as attempts fail, so crowded small phantoms still get nodes.
            shrink = 1.0 - 0.8 * attempt / max_tries
            short = lo + (hi - lo) * rng.uniform(0.0, 1.0) * shrink
            semi = np.array([short / 2, short / 2 * rng.uniform(1.0, 1.5), short / 2 * rng.uniform(1.0, 1.4)])
            angle = rng.uniform(0, np.pi)
            center = _candidate(vessels[rng.choice(len(vessels), p=weights)], semi, gap, rng)
            if _fits(canvas, center, semi, angle, gap):
                found = ellipsoid_mask(canvas, center, semi, angle)
                canvas.paint(found[0], found[1], T.NODE, 0)
                placed += 1
                break
    return placed


def _candidate(vessel: Vessel, semi: np.ndarray, gap: float, rng: np.random.Generator) -> np.ndarray:
    seg = rng.integers(len(vessel.points) - 1)
    p = vessel.points[seg] + rng.uniform(0, 1) * (vessel.points[seg + 1] - vessel.points[seg])
    theta = rng.uniform(0, 2 * np.pi)
    dist = vessel.radius + semi[1] + gap + rng.uniform(0.0, semi[1])
    return p + np.array([dist * np.cos(theta), dist * np.sin(theta), rng.uniform(-1, 1) * semi[2]])


def _fits(canvas: Canvas, center: np.ndarray, semi: np.ndarray, angle: float, gap: float) -> bool:
    reach = np.array([max(semi[:2]), max(semi[:2]), semi[2]]) + gap
    lo = np.array([canvas.x[0], canvas.y[0], canvas.z[0]])
    hi = np.array([canvas.x[-1], canvas.y[-1], canvas.z[-1]])
    if np.any(center - reach < lo) or np.any(center + reach > hi):
        return False  # no node clipped by the volume border
    grown = ellipsoid_mask(canvas, center, semi + gap, angle)
    if grown is None:
        return False
    box, mask = grown
    region = canvas.tissue[box][mask]
    return bool(region.size) and bool(np.all(region == T.VISCERAL_FAT)) and not canvas.ts[box][mask].any()
