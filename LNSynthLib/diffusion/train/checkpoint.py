"""LN-DDPM checkpoints: one file, written atomically, loadable with `weights_only=True`.

A checkpoint holds everything a killed run needs to continue exactly where it stopped: model,
EMA and optimizer state, the step, the loss history, the config (YAML text) and every random
state that the run draws from (python, numpy, torch CPU and CUDA, plus the run's own data and
noise generators). Only tensors, numbers, strings, lists and dicts are stored, so loading never
executes code.
"""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from LNSynthLib.atomic import NO_ROOM_FIX, atomic_path
from LNSynthLib.errors import InputDataError, OutputWriteError
from LNSynthLib.input_paths import check_input_path

FORMAT = "lnsynth-ln-ddpm/1"
CHECKPOINT_NAME = "checkpoint.pt"


def capture_global_rng() -> dict[str, Any]:
    """Python, numpy and torch global random states as weights-only-safe values."""
    py_version, py_state, py_gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
        "numpy": {"name": name, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_global_rng(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write atomically (temp file + rename); replaces the run's previous checkpoint."""
    from LNSynthLib.diffusion.train.checkpoint_checks import check_finite_weights

    payload = {"format": FORMAT, **payload}
    check_finite_weights(payload, path)   # a diverged run keeps its last finite checkpoint
    with atomic_path(path, overwrite=True) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as exc:   # torch's zip writer reports a full disk as "unexpected pos ..."
            raise OutputWriteError(f"could not be written completely (torch: {str(exc).strip()[:200]}); "
                                   "the previous checkpoint is kept", path=path, fix=NO_ROOM_FIX) from exc
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load without executing code; a damaged or foreign file gives an error naming it."""
    path = Path(path)
    if not path.is_file():
        if path.exists():
            check_input_path(path, folder_ok=False)  # a folder, pipe or device: say which
        raise InputDataError("checkpoint not found", path=path,
                             fix="give the checkpoint.pt written by `lnsynth train` (in its --run-dir)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise InputDataError(f"checkpoint cannot be read ({str(exc).splitlines()[0]})", path=path,
                             fix="the file is damaged or not an LNSynth checkpoint; use another checkpoint "
                                 "or train again") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputDataError("not an LNSynth LN-DDPM checkpoint", path=path,
                             fix=f"give a checkpoint written by `lnsynth train` (format {FORMAT})")
    from LNSynthLib.diffusion.train.checkpoint_checks import check_checkpoint

    check_checkpoint(payload, path)   # crafted, damaged or diverged: refused before any use
    return payload


def config_of(payload: dict[str, Any]):  # noqa: ANN201 - LNDDPMConfig
    """The LNDDPMConfig stored in a checkpoint."""
    from LNSynthLib.diffusion.config import config_from_dict, read_yaml

    return config_from_dict(read_yaml(payload["config_yaml"]))
