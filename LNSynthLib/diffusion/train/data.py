"""Training patches from prepared cases: random crops, most of them containing a lymph node.

All cases are held in memory as arrays (CT already mapped from HU to [-1, 1] with the paper's
window). Patches come from one seeded numpy Generator whose state is saved in every checkpoint,
so a resumed run draws exactly the patches the uninterrupted run would have drawn. With
several processes every rank draws the same global batch and keeps its slice (see
`distributed.DistContext.batch_slice`), so the union over ranks is the single-process batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from LNSynthLib.cases import ANATOMY_FILE, load_case
from LNSynthLib.cases import list_cases as list_case_folders
from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.geometry import Geometry

CT_PAD_UNIT = -1.0  # padding outside a small case: the lowest value of the CT window


@dataclass
class CaseArrays:
    """One prepared case as arrays on its grid: CT in [-1, 1], anatomy labels, LN mask."""

    case_id: str
    ct_unit: np.ndarray
    anatomy: np.ndarray
    ln: np.ndarray
    geometry: Geometry
    ln_voxels: np.ndarray  # (N, 3) z, y, x indices of LN voxels

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.ct_unit.shape)  # type: ignore[return-value]


def case_arrays(folder: str | Path, num_labels: int = 14) -> CaseArrays:
    """Load and check one prepared case (same grid for CT, anatomy, LN; labels in range)."""
    from LNSynthLib.volumes.preprocess import hu_to_unit

    case = load_case(folder)
    shapes = {case.ct.shape, case.anatomy.shape, case.ln.shape}
    if len(shapes) != 1:
        raise InputDataError(f"ct, anatomy and ln have different shapes {sorted(shapes)}", path=folder,
                             fix="prepare the case again so that all three share one grid")
    anatomy = case.anatomy.array.astype(np.uint8)
    if int(anatomy.max(initial=0)) >= num_labels:
        raise InputDataError(f"anatomy has label {int(anatomy.max())}, expected 0..{num_labels - 1}",
                             path=Path(folder) / ANATOMY_FILE, fix="prepare the case again with `lnsynth prepare`")
    ln = (case.ln.array > 0).astype(np.uint8)
    ct_unit = np.asarray(hu_to_unit(case.ct.array.astype(np.float32)), dtype=np.float32)
    return CaseArrays(case.case_id, ct_unit, anatomy, ln, case.ct.geometry,
                      np.argwhere(ln > 0).astype(np.int32))


def load_training_cases(cases_root: str | Path, num_labels: int = 14) -> list[CaseArrays]:
    folders = list_case_folders(cases_root)
    if not folders:
        raise InputDataError("no prepared cases found", path=cases_root,
                             fix="run `lnsynth prepare` (or `lnsynth phantom`) to create case folders first")
    return [case_arrays(f, num_labels) for f in folders]


def crop_with_pad(array: np.ndarray, start_zyx: Sequence[int], size_zyx: Sequence[int],
                  fill: float) -> np.ndarray:
    """array[start:start+size], padding with `fill` where the window leaves the array."""
    out = np.full(tuple(size_zyx), fill, dtype=array.dtype)
    src, dst = [], []
    for s, n, dim in zip(start_zyx, size_zyx, array.shape, strict=True):
        lo, hi = max(0, s), min(dim, s + n)
        if hi <= lo:
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - s, hi - s))
    out[tuple(dst)] = array[tuple(src)]
    return out


def clamp_start(start: int, size: int, dim: int) -> int:
    """Keep a window inside the array; centre it when the array is smaller than the window."""
    if dim <= size:
        return (dim - size) // 2
    return int(min(max(start, 0), dim - size))


def centred_start(center_zyx: Sequence[float], size_zyx: Sequence[int], shape: Sequence[int]) -> tuple[int, ...]:
    """Start of a `size` window centred on `center` and clamped into the array."""
    return tuple(clamp_start(int(round(c - n / 2)), n, d) for c, n, d in zip(center_zyx, size_zyx, shape,
                                                                               strict=True))


def crop_case(case: CaseArrays, start: Sequence[int], size: Sequence[int]) -> tuple[np.ndarray, ...]:
    """(ct_unit, anatomy, ln) patches of one case."""
    return (crop_with_pad(case.ct_unit, start, size, CT_PAD_UNIT), crop_with_pad(case.anatomy, start, size, 0),
            crop_with_pad(case.ln, start, size, 0))


class PatchSampler:
    """Seeded random patches; `state()`/`load_state()` make the stream resumable."""

    def __init__(self, cases: list[CaseArrays], patch_size: Sequence[int], ln_patch_fraction: float,
                 seed: int) -> None:
        self.cases = cases
        self.patch_size = tuple(int(s) for s in patch_size)
        self.ln_patch_fraction = float(ln_patch_fraction)
        self.rng = np.random.default_rng(seed)
        self._ln_cases = [i for i, c in enumerate(cases) if len(c.ln_voxels)]

    def state(self) -> dict[str, Any]:
        return self.rng.bit_generator.state

    def load_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state

    def _start(self, case: CaseArrays, with_ln: bool) -> tuple[int, ...]:
        size, shape = self.patch_size, case.shape
        if with_ln:
            voxel = case.ln_voxels[self.rng.integers(len(case.ln_voxels))]
            # The node voxel lands anywhere in the middle half of the patch.
            starts = []
            for v, n, d in zip(voxel, size, shape, strict=True):
                lo, hi = int(v) - n + 1 + n // 4, int(v) - n // 4
                starts.append(clamp_start(int(self.rng.integers(lo, max(lo, hi) + 1)), n, d))
            return tuple(starts)
        return tuple(clamp_start(int(self.rng.integers(0, max(0, d - n) + 1)), n, d)
                     for n, d in zip(size, shape, strict=True))

    def next_batch(self, batch_size: int) -> dict[str, torch.Tensor]:
        """A global batch: x0 [B,1,D,H,W] float32, anatomy [B,1,...] long, ln [B,1,...] float32."""
        cts, anas, lns = [], [], []
        for _ in range(batch_size):
            with_ln = bool(self._ln_cases) and self.rng.random() < self.ln_patch_fraction
            index = (self._ln_cases[self.rng.integers(len(self._ln_cases))] if with_ln
                     else int(self.rng.integers(len(self.cases))))
            case = self.cases[index]
            ct, ana, ln = crop_case(case, self._start(case, with_ln), self.patch_size)
            cts.append(ct)
            anas.append(ana)
            lns.append(ln)
        return {"x0": torch.from_numpy(np.stack(cts)[:, None]),
                "anatomy": torch.from_numpy(np.stack(anas)[:, None].astype(np.int64)),
                "ln": torch.from_numpy(np.stack(lns)[:, None].astype(np.float32))}
