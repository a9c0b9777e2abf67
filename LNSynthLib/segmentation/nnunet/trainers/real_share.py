"""Real cases keep their weight in a real + synthetic nnU-Net training, and training runs can be seeded.

nnU-Net draws the cases of a batch uniformly with replacement (batchgenerators' `DataLoader`
with `sampling_probabilities=None`). With 2 real and 20 synthetic cases the real ones then give
9 % of the patches; later work on mixing synthetic and real data keeps a third to a half real.
`case_probabilities` gives every real case `share / n_real` and every synthetic case
`(1 - share) / n_synthetic`; nnU-Net's own loader takes them through its `sampling_probabilities`
argument, which the standard trainer leaves at None (`real_share_loaders`). Which cases are real
is read from the export manifest (`export.MANIFEST`, `kind` of each training case) in the
dataset's raw folder, the one record of where each case came from.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SEED_ENV = "LNSYNTH_NNUNET_SEED"   # set by `runner.train(seed=...)` for the nnU-Net process


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy (nnU-Net's case draws and batchgenerators' augmentation) and torch (weights)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    import torch

    torch.manual_seed(seed)


def case_probabilities(identifiers: Sequence[str], real_ids: set[str], share: float) -> np.ndarray | None:
    """Draw probability per identifier (in the loader's order): `share` spread over the real cases, the rest
    over the others; None (nnU-Net's uniform draw) when the cases are all real or all synthetic."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"the real share must lie strictly between 0 and 1, got {share}")
    is_real = np.array([i in real_ids for i in identifiers], dtype=bool)
    n_real, n_other = int(is_real.sum()), int((~is_real).sum())
    if n_real == 0 or n_other == 0:
        return None
    return np.where(is_real, share / n_real, (1.0 - share) / n_other)


def real_case_ids(raw_dataset_dir: str | Path) -> set[str]:
    """Training case ids whose export kind is `real` (empty when the dataset was not exported by LNSynth)."""
    from LNSynthLib.segmentation.nnunet.export import MANIFEST

    path = Path(raw_dataset_dir) / MANIFEST
    if not path.exists():
        return set()
    return {i["case_id"] for i in json.loads(path.read_text(encoding="utf-8"))["training"] if i["kind"] == "real"}


def real_share_loaders(trainer: Any, share: float, build: Callable[[], Any]) -> Any:
    """Run nnU-Net's `get_dataloaders` (`build`) with every nnUNetDataLoader drawing cases by `case_probabilities`.

    The loaders are built inside nnU-Net's method, so its module's `nnUNetDataLoader` is swapped for
    the duration of the call for a subclass that sets the probabilities from its own identifiers.
    Fold `all` validates on the training cases, so the validation loader gets the same mix.
    """
    from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
    from nnunetv2.training.nnUNetTrainer import nnUNetTrainer as trainer_module

    # The variable nnU-Net's `nnunetv2.paths.nnUNet_raw` reads, read directly: without it (a training started
    # by hand) no case is known as real and the draw stays uniform, where nnU-Net's object would raise.
    raw = Path(os.environ.get("nnUNet_raw", "")) / trainer.plans_manager.dataset_name
    real_ids = real_case_ids(raw)
    used: dict[str, Any] = {}

    class SharedLoader(nnUNetDataLoader):
        def __init__(self, data: Any, *args: Any, **kwargs: Any) -> None:
            probabilities = case_probabilities(list(data.identifiers), real_ids, share)
            kwargs["sampling_probabilities"] = probabilities
            super().__init__(data, *args, **kwargs)
            used.setdefault("n_real", sum(i in real_ids for i in data.identifiers))
            used.setdefault("n_cases", len(data.identifiers))

    original = trainer_module.nnUNetDataLoader
    trainer_module.nnUNetDataLoader = SharedLoader
    try:
        loaders = build()
    finally:
        trainer_module.nnUNetDataLoader = original
    trainer.print_to_log_file(f"Real share: {share:.0%} of the drawn cases from the {used.get('n_real', 0)} real "
                              f"of {used.get('n_cases', 0)} training cases")
    return loaders
