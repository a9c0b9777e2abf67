"""`generate_phantom`: a seeded abdominal CT with its TotalSegmentator labels, 14-label anatomy and LN mask.

The phantom is the embedded demo data and the ground truth for fast tests: it exercises the
same code paths as a real CT (the anatomy map is made from its TotalSegmentator-style labels
by `totalseg_to_anatomy`, LN statistics by `lymph_node_components`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from LNSynthLib.anatomy.groups import totalseg_to_anatomy
from LNSynthLib.anatomy.lymph_nodes import NodeStats, lymph_node_components
from LNSynthLib.phantom import tissues as T
from LNSynthLib.phantom.canvas import Canvas
from LNSynthLib.phantom.layout import draw_anatomy
from LNSynthLib.phantom.nodes import place_nodes
from LNSynthLib.volumes.geometry import Geometry, Volume

NOISE_HU = 12.0  # quantum noise of a typical abdominal CT


@dataclass
class Phantom:
    ct: Volume          # HU, float32
    totalseg: Volume    # TotalSegmentator `total` class ids, uint8
    anatomy: Volume     # 14-label map, uint8
    ln: Volume          # lymph-node mask, uint8 0/1
    nodes: list[NodeStats]


def generate_phantom(seed: int = 0, shape_zyx: tuple[int, int, int] = (96, 128, 128),
                     spacing_xyz: tuple[float, float, float] = (1.0, 1.0, 1.0),
                     n_nodes: int | None = None) -> Phantom:
    """Build one phantom; the same arguments always give the same phantom."""
    if min(shape_zyx) < 16:
        raise ValueError(f"phantom shape {shape_zyx} is too small (at least 16 voxels per axis)")
    rng = np.random.default_rng(seed)
    canvas = Canvas(shape_zyx, spacing_xyz)
    vessels = draw_anatomy(canvas, rng)
    wanted = int(rng.integers(3, 9)) if n_nodes is None else int(n_nodes)
    place_nodes(canvas, vessels, rng, wanted)
    geometry = Geometry(canvas.spacing, canvas.origin_xyz)
    ct = _render_hu(canvas, rng)
    ln = (canvas.tissue == T.NODE).astype(np.uint8)
    ln_volume = Volume(ln, geometry)
    anatomy = totalseg_to_anatomy(canvas.ts, ct)
    return Phantom(ct=Volume(ct, geometry), totalseg=Volume(canvas.ts, geometry), anatomy=Volume(anatomy, geometry),
                   ln=ln_volume, nodes=lymph_node_components(ln_volume))


def _render_hu(canvas: Canvas, rng: np.random.Generator) -> np.ndarray:
    """Tissue HU + smooth per-tissue texture + slight partial-volume blur + white noise."""
    mean, amp = T.hu_tables()
    texture = _smooth_noise(canvas.shape, rng, cell_mm=6.0, spacing=canvas.spacing)
    texture *= amp[canvas.tissue]
    texture += mean[canvas.tissue]
    ct = ndimage.gaussian_filter(texture, sigma=0.6, truncate=2.0)
    del texture
    noise = rng.standard_normal(ct.shape, dtype=np.float32)
    noise *= np.float32(NOISE_HU)
    ct += noise
    return ct


def _smooth_noise(shape: tuple[int, ...], rng: np.random.Generator, cell_mm: float,
                  spacing: tuple[float, float, float]) -> np.ndarray:
    """Unit-variance noise smooth over ~`cell_mm`: coarse random grid, linearly interpolated up.

    Interpolation is separable (two gathers and a blend per axis), far cheaper than
    `ndimage.zoom` on a 512×512×300 volume.
    """
    spacing_zyx = spacing[::-1]
    coarse_shape = tuple(int(max(2, np.ceil(n * s / cell_mm)) + 1) for n, s in zip(shape, spacing_zyx, strict=True))
    out = rng.standard_normal(coarse_shape).astype(np.float32)
    for axis, (n, c) in enumerate(zip(shape, coarse_shape, strict=True)):
        pos = np.linspace(0.0, c - 1.0, n)
        lo = np.minimum(np.floor(pos).astype(np.intp), c - 2)
        frac = (pos - lo).astype(np.float32).reshape([-1 if a == axis else 1 for a in range(3)])
        a, b = np.take(out, lo, axis=axis), np.take(out, lo + 1, axis=axis)
        b -= a
        b *= frac
        a += b
        out = a
    return out / max(float(out[::4, ::4, ::4].std()), 1e-6)
