"""What an nnU-Net export is made from, by content: the export's recipe, and synthetic cases matched to
their real source case by their voxels, never by the case id alone.

- `export_content`: a SHA-256 of the CT and LN files of every case an export reads (training,
  source CTs of pasted patches, test), recorded in `lnsynth_export.json`. A rerun over an existing
  dataset is "the same export" only when every one of them, the settings and the code version
  match; a dataset of other cases under the same ids (another `--test-cases` folder, a re-prepared
  case) is not kept silently.
- `check_made_from`: a synthetic case names its source by id (`source_case`), and ids repeat across
  folders (`case_001` of two cohorts). It was sampled on its source's grid with the source's
  anatomy map kept, so it must lie on that grid and agree with that anatomy voxel for voxel;
  samples made from folder A are refused for folder B's patients (also with `--paste`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from LNSynthLib.cases import ANATOMY_FILE, CT_FILE, LN_FILE
from LNSynthLib.errors import InputDataError
from LNSynthLib.output_claims import code_version, content_digest

ANATOMY_AGREEMENT = 0.99   # fraction of the shared voxels whose anatomy label must agree


def case_digest(folder: Path) -> str:
    return content_digest(folder / CT_FILE, folder / LN_FILE)


def export_content(items: list[Any], real_root: Path, test: list[Path]) -> dict[str, Any]:
    """The content half of an export's recipe (`items`: `nnunet.export.TrainingItem`s)."""
    sources = sorted({i.source_case for i in items if i.kind == "pasted"})
    return {"code": code_version(),
            "training": {i.case_id: case_digest(i.folder) for i in items},
            "paste_sources": {s: case_digest(real_root / s) for s in sources},
            "test": {f.name: case_digest(f) for f in test}}


def _offset(patch, source) -> np.ndarray | None:
    """Index offset (z, y, x) of `patch`'s grid in `source`'s grid; None when the grids do not line up."""
    gp, gs = patch.geometry, source.geometry
    if not (np.allclose(gp.spacing, gs.spacing, rtol=1e-4, atol=1e-4)
            and np.allclose(gp.direction, gs.direction, atol=1e-4)):
        return None
    start = gs.physical_to_index(np.asarray(gp.origin))[::-1]
    whole = np.rint(start)
    if np.abs(start - whole).max() > 0.05:
        return None
    return whole.astype(int)


def made_from(synthetic: Path, source: Path) -> bool:
    """Whether the synthetic case lies on `source`'s grid with `source`'s anatomy where they overlap."""
    from LNSynthLib.volumes.io import read_volume

    patch, whole = read_volume(synthetic / ANATOMY_FILE), read_volume(source / ANATOMY_FILE)
    start = _offset(patch, whole)
    if start is None:
        return False
    lo = np.maximum(start, 0)
    hi = np.minimum(start + np.asarray(patch.shape), np.asarray(whole.shape))
    if np.any(hi <= lo):
        return False   # the patch lies outside the source case
    a = whole.array[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    b = patch.array[lo[0] - start[0]:hi[0] - start[0], lo[1] - start[1]:hi[1] - start[1],
                    lo[2] - start[2]:hi[2] - start[2]]
    return float(np.mean(a == b)) >= ANATOMY_AGREEMENT


def check_made_from(synthetic: list[Path], source: Path) -> None:
    """Refuse synthetic cases whose `source_case` is `source`'s id but which were made from another case."""
    for folder in synthetic:
        if not made_from(folder, source):
            raise InputDataError(
                f"synthetic case {folder.name} names {source.name} as its source, but it was not made from the "
                f"case {source} (its grid or anatomy differ): same case id, another case", path=folder,
                fix="export the synthetic cases together with the prepared cases they were sampled from "
                    "(the --cases folder given to `lnsynth sample`), or sample from these cases")
