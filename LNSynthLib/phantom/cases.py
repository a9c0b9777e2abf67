"""Phantom cases written as prepared cases (1 mm grid, LN-region crop), ready for LN-DDPM and nnU-Net export."""

from __future__ import annotations

from pathlib import Path

from LNSynthLib.cases import Case, save_case
from LNSynthLib.errors import OutputExistsError
from LNSynthLib.jobs.progress import Progress
from LNSynthLib.phantom.generate import generate_phantom
from LNSynthLib.volumes.preprocess import PreprocessSettings


def phantom_case_id(index: int) -> str:
    return f"phantom_{index:03d}"


def write_phantom_cases(root: str | Path, n_cases: int, seed: int = 0,
                        shape_zyx: tuple[int, int, int] = (96, 128, 128),
                        spacing_xyz: tuple[float, float, float] = (1.0, 1.0, 1.0), overwrite: bool = False,
                        settings: PreprocessSettings | None = None) -> list[Path]:
    """Write `phantom_000`, `phantom_001`, ... (case i uses seed `seed + i`); return their folders."""
    from LNSynthLib.prepare import prepare_volumes  # prepare imports the anatomy stack; keep phantom light

    root = Path(root)
    settings = settings or PreprocessSettings.train()
    if n_cases < 1:
        raise ValueError("n_cases must be at least 1")
    if not overwrite:
        existing = [root / phantom_case_id(i) for i in range(n_cases) if (root / phantom_case_id(i)).exists()]
        if existing:
            raise OutputExistsError(f"{len(existing)} phantom case folder(s) already exist", path=existing[0],
                                    fix="choose another --out folder, delete them, or pass --overwrite")
    folders = []
    with Progress("phantom", total=n_cases) as progress:
        for i in range(n_cases):
            phantom = generate_phantom(seed + i, shape_zyx, spacing_xyz)
            ct, anatomy, ln, meta = prepare_volumes(phantom.ct, phantom.anatomy, phantom.ln, settings)
            meta.update({"case_id": phantom_case_id(i), "synthetic": False, "source": "phantom",
                         "phantom_seed": seed + i, "phantom_shape_zyx": list(shape_zyx),
                         "phantom_spacing_xyz": list(spacing_xyz), "anatomy_source": "phantom-totalseg",
                         "anatomy_coarse": False})
            folders.append(save_case(Case(phantom_case_id(i), ct, anatomy, ln, meta), root, overwrite))
            progress.update()
    return folders
