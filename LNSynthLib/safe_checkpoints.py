"""Load nnU-Net checkpoints without running code from them.

nnU-Net (and TotalSegmentator through it) calls `torch.load(weights_only=False)`, which unpickles
arbitrary objects: a shared model folder whose `checkpoint_final.pth` carries a `__reduce__`
payload runs that payload. Here `torch.load` is replaced by one that always loads weights-only,
allowing only the few globals genuine nnU-Net checkpoints hold (numpy scalars in the training
log, `torch.device` in the trainer arguments). A file that needs anything else is refused with
`UnsafeCheckpointError` and nothing from it runs. Installed for good in the nnU-Net processes
LNSynth starts (`segmentation/nnunet/entry.py`), and around in-process calls (TotalSegmentator) with
`weights_only_loading()`.

Why a wrapper rather than torch's own switch alone (`TORCH_FORCE_WEIGHTS_ONLY_LOAD=1` with
`torch.serialization.add_safe_globals`, which forces the same weights-only unpickler, even over nnU-Net's
explicit `weights_only=False`): a refused file would then fail as torch's `UnpicklingError` deep inside
nnU-Net's code, and the panel would show a traceback instead of the project's error naming the file and
the fix (the nnU-Net child prints it after `ERROR_PREFIX`); the switch is also read from the environment
by every later load in every thread, and torch refuses every load where a user has set
`TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` beside it. The wrapper calls torch's own weights-only loader with
`torch.serialization.safe_globals`: it adds only the allow-list and the error.
"""

from __future__ import annotations

import contextlib
import importlib
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from LNSynthLib.errors import InputDataError

ERROR_PREFIX = "lnsynth-error: "   # how an nnU-Net child reports an LNSynthError to its parent

# Globals found in real nnU-Net v2 checkpoints (saved by `nnUNetTrainer.save_checkpoint`) besides
# what torch's weights-only unpickler allows anyway: numpy scalars and dtypes (training log values).
SAFE_GLOBAL_NAMES = (
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.dtypes.Float64DType",
    "numpy.dtypes.Float32DType",
    "numpy.dtypes.Int64DType",
    "numpy.dtypes.Int32DType",
    "numpy.dtypes.BoolDType",
    "torch.device",
)
UNSAFE_FIX = ("use only checkpoints from a source you trust that were written by nnU-Net itself; a file needing "
              "other Python objects than weights, numbers and settings is refused because loading it could run "
              "code. Retrain or re-download the model")


class UnsafeCheckpointError(InputDataError):
    """A checkpoint needs Python objects beyond weights and plain data to load."""


def safe_globals() -> list[Any]:
    """The allow-listed objects that exist in this numpy/torch (names differ across numpy 1/2)."""
    found = []
    for name in SAFE_GLOBAL_NAMES:
        module_name, _, attr = name.rpartition(".")
        try:
            found.append(getattr(importlib.import_module(module_name), attr))
        except (ImportError, AttributeError):
            continue
    return found


def _describe(source: object) -> str:
    return str(source) if isinstance(source, (str, Path)) else getattr(source, "name", repr(source))


def _make_safe_load(original: Any) -> Any:
    import torch

    def safe_load(f: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        kwargs.pop("pickle_module", None)   # weights-only loading uses torch's own restricted unpickler
        try:
            with torch.serialization.safe_globals(safe_globals()):
                return original(f, *args, **kwargs)
        except pickle.UnpicklingError as exc:
            if isinstance(f, (str, Path)) and Path(f).is_file() and not zipfile.is_zipfile(f):
                # Every torch.save since PyTorch 1.6 writes a zip archive: this is no checkpoint at all.
                raise InputDataError("is not a PyTorch checkpoint (damaged, cut off, or another kind of file)",
                                     path=_describe(f), fix="retrain or re-download the model") from None
            reason = str(exc).strip().splitlines()
            detail = next((line for line in reason if "GLOBAL" in line or "Unsupported" in line), reason[0] if
                          reason else "unsupported content")
            raise UnsafeCheckpointError(f"checkpoint refused: it needs more than weights to load ({detail.strip()})",
                                        path=_describe(f), fix=UNSAFE_FIX) from None

    safe_load.lnsynth_safe = True  # type: ignore[attr-defined]
    safe_load.original = original  # type: ignore[attr-defined]
    return safe_load


def install() -> None:
    """Make every `torch.load` of this process weights-only (idempotent; for nnU-Net child processes)."""
    import torch

    if not getattr(torch.load, "lnsynth_safe", False):
        torch.load = _make_safe_load(torch.load)


@contextlib.contextmanager
def weights_only_loading() -> Iterator[None]:
    """Weights-only `torch.load` for the duration of the block (in-process nnU-Net, e.g. TotalSegmentator)."""
    import torch

    if getattr(torch.load, "lnsynth_safe", False):
        yield
        return
    original = torch.load
    torch.load = _make_safe_load(original)
    try:
        yield
    finally:
        torch.load = original


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load an nnU-Net checkpoint weights-only onto the CPU (raises UnsafeCheckpointError, or torch's error)."""
    import torch

    loader = getattr(torch.load, "original", torch.load)
    return _make_safe_load(loader)(str(path), map_location="cpu")
