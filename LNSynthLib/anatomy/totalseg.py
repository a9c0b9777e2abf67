"""Run TotalSegmentator (`total` task) offline: weights checked first, usage statistics off, never a download.

TotalSegmentator downloads missing weights on its own and reports usage to its server by
default; LNSynth must work without network, so we look up the exact datasets it would need in
the installed package, refuse to start when they are absent (with instructions to install
them offline), and switch usage statistics off in its config before it runs.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from LNSynthLib.atomic import temp_folder
from LNSynthLib.errors import InputDataError, MissingWeightsError

TASK = "total"
HOME_ENV = "TOTALSEG_HOME_DIR"
WEIGHTS_ENV = "TOTALSEG_WEIGHTS_PATH"
RELEASES_URL = "https://github.com/wasserth/TotalSegmentator/releases/download"


def required_datasets(fast: bool = True) -> list[tuple[int, str, str]]:
    """(task id, nnU-Net dataset folder, release tag) TotalSegmentator needs for the `total` task."""
    from totalsegmentator.map_tasks_config import TASK_CONFIGS, TASK_ID_WEIGHTS_CONFIGS

    mode = "fast" if fast else "default"
    task_ids = TASK_CONFIGS[TASK]["sub_modes"][mode]["task_id"]
    task_ids = task_ids if isinstance(task_ids, list) else [task_ids]
    out = []
    for tid in task_ids:
        info = TASK_ID_WEIGHTS_CONFIGS[tid]
        folder = str(Path(info.get("rel_path") or "") / info["foldername"])
        out.append((int(tid), folder, str(info.get("version") or "")))
    return out


def weights_root(weights_dir: str | Path | None = None) -> Path:
    """Folder in which TotalSegmentator looks for nnU-Net datasets (as its own `get_weights_dir`)."""
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV])
    return home_dir(weights_dir) / "nnunet" / "results"


def home_dir(weights_dir: str | Path | None = None) -> Path:
    if weights_dir is not None:
        return Path(weights_dir)
    from totalsegmentator.config import get_totalseg_dir

    return Path(get_totalseg_dir())


def missing_weights(weights_dir: str | Path | None = None, fast: bool = True) -> list[tuple[int, str, str]]:
    """Datasets that are absent or incomplete (no `checkpoint_final.pth`) under the weights folder."""
    root = weights_root(weights_dir)
    missing = []
    for tid, folder, version in required_datasets(fast):
        path = root / folder
        if not path.is_dir() or not any(path.rglob("checkpoint_final.pth")):
            missing.append((tid, folder, version))
    return missing


def check_weights(weights_dir: str | Path | None = None, fast: bool = True) -> None:
    """Raise `MissingWeightsError` naming each missing dataset, where it must go and how to install it offline."""
    missing = missing_weights(weights_dir, fast)
    if not missing:
        return
    root = weights_root(weights_dir)
    home = home_dir(weights_dir)
    names = ", ".join(f"Task {tid} ({folder})" for tid, folder, _ in missing)
    zips = " ".join(f"{RELEASES_URL}/{version}/{Path(folder).name}.zip" for _, folder, version in missing)
    mode = "fast (3 mm)" if fast else "full-resolution (1.5 mm)"
    raise MissingWeightsError(
        f"TotalSegmentator weights for the {mode} '{TASK}' task are missing: {names}; "
        f"they must be in {root}",
        path=root,
        fix=(f"on a machine with internet download {zips} ; copy each zip here and run "
             f"`TOTALSEG_HOME_DIR={home} totalseg_import_weights -i <zip>` (it unpacks into {root}), "
             f"or set {HOME_ENV} / --weights-dir to a folder that already holds them. "
             f"Without weights use `--anatomy-source coarse` (weights-free, coarse anatomy)"),
    )


def weights_available(weights_dir: str | Path | None = None, fast: bool = True) -> bool:
    return not missing_weights(weights_dir, fast)


@contextlib.contextmanager
def _totalseg_environment(weights_dir: str | Path | None) -> Iterator[Path]:
    """Point TotalSegmentator at `weights_dir` and turn its usage statistics off, for the call only."""
    home = home_dir(weights_dir)
    home.mkdir(parents=True, exist_ok=True)
    config_file = home / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.exists() else {
        "totalseg_id": "totalseg_offline", "prediction_counter": 0}
    config.update({"send_usage_stats": False, "statistics_disclaimer_shown": True})
    config_file.write_text(json.dumps(config, indent=4))
    saved = os.environ.get(HOME_ENV)
    os.environ[HOME_ENV] = str(home)
    try:
        yield home
    finally:
        if saved is None:
            os.environ.pop(HOME_ENV, None)
        else:
            os.environ[HOME_ENV] = saved


def run_totalsegmentator(ct_path: str | Path, out_path: str | Path, *, device: str = "auto", fast: bool = True,
                         weights_dir: str | Path | None = None) -> Path:
    """Segment `ct_path` into one multi-label `total` file at `out_path` (same grid as the CT)."""
    from LNSynthLib.atomic import atomic_path

    ct_path, out_path = Path(ct_path), Path(out_path)
    if not ct_path.exists():
        raise InputDataError("CT not found", path=ct_path, fix="check the path")
    check_weights(weights_dir, fast)
    from LNSynthLib.devices import totalseg_device

    dev = totalseg_device(device)
    with temp_folder("lnsynth_totalseg") as scratch, \
            _totalseg_environment(weights_dir), atomic_path(out_path) as tmp:
        source = ct_path
        if not (ct_path.name.endswith(".nii") or ct_path.name.endswith(".nii.gz")):
            # TotalSegmentator reads NIfTI or DICOM only: hand it NRRD/MHA/DICOM-folder input as NIfTI.
            from LNSynthLib.volumes.io import read_volume, write_volume

            source = write_volume(read_volume(ct_path), Path(scratch) / "ct.nii.gz")
        from totalsegmentator.python_api import totalsegmentator

        from LNSynthLib.safe_checkpoints import weights_only_loading

        # The weights folder is user-given: its nnU-Net checkpoints load weights-only, never running code.
        with weights_only_loading():
            totalsegmentator(str(source), str(tmp), ml=True, fast=fast, task=TASK, device=dev, statistics=False,
                             quiet=True)
    return out_path
