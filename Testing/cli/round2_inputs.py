"""Shared parts of the round-2 bad-input tables (`test_bad_inputs_round2_*.py`): argv builders and setups
that write real files (NIfTI CTs, prepared cases, crafted checkpoints) into a row's folder.

A table row is `(id, argv, names that must appear, cause that must appear, setup(tmp, data) or None)`;
`{d}` in an argv is the session's `bad_data` folder, `{t}` the row's own folder.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ..conftest import SPACING_MM, _body_ct

CT, CASES = "{d}/ct.nii.gz", "{d}/prepared"
REPO = Path(__file__).resolve().parents[2]
Setup = Callable[[Path, Path], None]


def rows(table: list[tuple]) -> list:
    """The table's rows as pytest params, each named by its id."""
    return [pytest.param(*row[1:], id=row[0]) for row in table]


def lnsynth_env(**extra: str) -> dict[str, str]:
    """Environment of a real `lnsynth` subprocess run from this checkout."""
    return {**os.environ, "PYTHONPATH": str(REPO), "LNSYNTH_PROGRESS": "quiet", **extra}


def run_lnsynth(args: list[str], data: Path, tmp: Path, timeout: int = 180, **env: str) -> subprocess.CompletedProcess:
    """`python -m LNSynthLib ARGS` as a real process ({d}, {t} filled in)."""
    argv = [a.format(d=data, t=tmp) for a in args]
    return subprocess.run([sys.executable, "-m", "LNSynthLib", *argv], capture_output=True, text=True,
                          timeout=timeout, env=lnsynth_env(**env), cwd=tmp)


# --- argv builders -----------------------------------------------------------------------------------------------

def sample(checkpoint: str, *extra: str) -> list[str]:
    return ["sample", "--checkpoint", checkpoint, "--cases", CASES, "--out", "{t}/synt", "--device", "cpu", *extra]


def export(*extra: str, out: str = "{t}/proj") -> list[str]:
    return ["nnunet", "export", "--cases", CASES, "--out", out, *extra]


def prepare_ct(ct: str = "{t}/ct_bad.nii.gz", *extra: str) -> list[str]:
    return ["prepare", "--ct", ct, "--ln", "{d}/ln.nii.gz", "--out", "{t}/out", "--case-id", "c1",
            "--anatomy-source", "coarse", *extra]


def anatomy_of(ct: str = "{t}/ct_bad.nii.gz") -> list[str]:
    return ["anatomy", "--ct", ct, "--out", "{t}/a.nii.gz", "--method", "coarse"]


def predict_ct(ct: str = "{t}/ct_bad.nii.gz") -> list[str]:
    """`nnunet predict` of one CT; the CT is refused before the model folder (bad_data's cases) is looked at."""
    return ["nnunet", "predict", "--model", CASES, "--ct", ct, "--out", "{t}/pred.nii.gz", "--device", "cpu"]


# --- CTs ---------------------------------------------------------------------------------------------------------

def noisy_ct(shape: tuple[int, int, int] = (32, 32, 32)) -> np.ndarray:
    """The body CT with CT noise (sigma 8 HU), as a scanner writes it."""
    noise = np.random.default_rng(0).normal(0.0, 8.0, shape)
    return np.rint(_body_ct(shape) + noise).astype(np.int16)


def ct_file(transform=lambda a: a, spacing: float = SPACING_MM, name: str = "ct_bad.nii.gz",
            padding: int | None = None, zoom: int = 1) -> Setup:
    """Setup: `{t}/<name>`, the noisy body CT after `transform` (HU), on a grid of `spacing` (header units);
    `zoom`: in-plane voxels per bad_data voxel (a 512-matrix CT's fine in-plane grid)."""
    def make(tmp: Path, data: Path) -> None:
        from LNSynthLib.volumes.geometry import Geometry, Volume
        from LNSynthLib.volumes.io import write_volume

        arr = transform(noisy_ct().astype(np.float32))
        if zoom > 1:
            arr = np.ascontiguousarray(arr[::4].repeat(zoom, axis=1).repeat(zoom, axis=2))
        if padding is not None:   # the scanner's fill outside the round field of view
            arr[:, :2, :] = padding
        write_volume(Volume(arr.astype(np.float32), Geometry((spacing, spacing, SPACING_MM if zoom > 1 else spacing))),
                     tmp / name)
    return make


def plain_nii(data: Path, target: Path, keep: float = 1.0) -> Path:
    """The bad_data CT as an uncompressed NIfTI under `target`'s name (`keep`: the fraction of its bytes kept)."""
    raw = gzip.decompress((data / "ct.nii.gz").read_bytes())
    target.write_bytes(raw[:int(len(raw) * keep)])
    return target


# --- crafted checkpoints -----------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _tiny_payload() -> dict:
    """What `lnsynth train` stores for the tiny config (fresh weights): the base every crafted checkpoint edits."""
    import torch

    from LNSynthLib.diffusion.config import load_config, save_config
    from LNSynthLib.diffusion.model.network import build_denoiser

    config = load_config("tiny")
    torch.manual_seed(0)
    weights = build_denoiser(config).state_dict()
    return {"step": 3, "config_yaml": save_config(config), "model": weights, "ema": weights}


def checkpoint(edit: Callable[[dict], None]) -> Setup:
    """Setup: `{t}/ck.pt`, an LNSynth-format checkpoint after `edit(payload)` (written with torch.save, as an
    attacker or a damaged copy would, not through `save_checkpoint`)."""
    def make(tmp: Path, data: Path) -> None:
        import copy

        import torch

        from LNSynthLib.diffusion.train.checkpoint import FORMAT

        payload = copy.deepcopy(_tiny_payload())
        edit(payload)
        torch.save({"format": FORMAT, **payload}, tmp / "ck.pt")
    return make


def valid_checkpoint(tmp: Path, data: Path) -> None:
    """Setup: a valid tiny checkpoint at {t}/ck.pt."""
    checkpoint(lambda payload: None)(tmp, data)


# --- prepared cases ------------------------------------------------------------------------------------------------

def prepared(root: Path, case: str, ct: np.ndarray, *, margin_mm: float = 20.0, ct_name: str | None = None,
             data: Path) -> Path:
    """A real `prepare_case` of `ct` (with bad_data's nodes and anatomy map, rolled with the CT)."""
    from LNSynthLib.prepare import prepare_case
    from LNSynthLib.volumes.geometry import Geometry, Volume
    from LNSynthLib.volumes.io import read_volume, write_volume
    from LNSynthLib.volumes.preprocess import PreprocessSettings

    ct_path = root.parent / (ct_name or f"{root.name}_{case}_ct.nii.gz")
    write_volume(Volume(ct, Geometry((SPACING_MM,) * 3)), ct_path, overwrite=True)
    shift = int(np.argmax(ct[:, 16, 16] != -1000)) - 2   # the rolled CT rolls its labels too
    anatomy = read_volume(data / "anatomy14.nii.gz")
    ln = read_volume(data / "ln.nii.gz")
    labels = {}
    for name, vol in (("anatomy", anatomy), ("ln", ln)):
        path = root.parent / f"{root.name}_{case}_{name}.nii.gz"
        write_volume(Volume(np.roll(vol.array, shift, axis=0), vol.geometry), path, overwrite=True)
        labels[name] = path
    return prepare_case(ct_path, labels["ln"], root, case, anatomy_path=labels["anatomy"],
                        settings=PreprocessSettings(margin_mm=margin_mm, spacing=SPACING_MM))


def other_patient(shift: int = 1) -> np.ndarray:
    return np.roll(_body_ct(), shift, axis=0)   # another body: the same shapes a voxel lower


def synthetic_from(source_root: Path, target: Path, pairs: dict[str, str]) -> None:
    """`target/<named>_synt_0` for each `named: made_from`: a copy of `made_from` that names `named` as source."""
    for named, made_from in pairs.items():
        folder = target / f"{named}_synt_0"
        shutil.copytree(source_root / made_from, folder)
        meta = json.loads((folder / "case.json").read_text())
        (folder / "case.json").write_text(json.dumps({**meta, "synthetic": True, "source_case": named}))
