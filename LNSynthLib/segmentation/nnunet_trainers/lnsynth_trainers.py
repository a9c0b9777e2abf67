"""Short nnU-Net trainers for CPU tests and demos, found through nnU-Net's `nnUNet_extTrainer` lookup.

nnU-Net creates trainers from a class name alone (`-tr NAME`, and again from the name stored in a
checkpoint at prediction time), so the number of epochs and iterations is part of the name:
`nnUNetTrainerLNSynth_<E>ep_<I>it_<V>val` trains E epochs of I training and V validation
iterations. The class is made on demand by the module `__getattr__` (PEP 562), which nnU-Net's
`hasattr(module, name)` search calls. A checkpoint is written after every epoch so `--c` can
resume a short run, and test-time mirroring is off (CPU time). Everything else is nnU-Net's standard `nnUNetTrainer`.
"""

from __future__ import annotations

import re

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

NAME_PATTERN = re.compile(r"^nnUNetTrainerLNSynth_(\d+)ep_(\d+)it_(\d+)val$")
_CACHE: dict[str, type] = {}
_CUDA = torch.device("cuda")  # nnU-Net's default device argument


def trainer_name(epochs: int, iterations: int, val_iterations: int) -> str:
    return f"nnUNetTrainerLNSynth_{int(epochs)}ep_{int(iterations)}it_{int(val_iterations)}val"


def _make(name: str, epochs: int, iterations: int, val_iterations: int) -> type:
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = _CUDA) -> None:
        nnUNetTrainer.__init__(self, plans, configuration, fold, dataset_json, device)
        self.num_epochs = epochs
        self.num_iterations_per_epoch = iterations
        self.num_val_iterations_per_epoch = val_iterations
        self.save_every = 1

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):  # noqa: ANN001, ANN202
        # Mirroring stays as data augmentation; test-time mirroring (8 passes per window) is off
        # because on a CPU it multiplies validation and prediction time by eight.
        result = nnUNetTrainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size(self)
        self.inference_allowed_mirroring_axes = None
        return result

    return type(name, (nnUNetTrainer,), {
        "__init__": __init__, "__module__": __name__,
        "configure_rotation_dummyDA_mirroring_and_inital_patch_size":
            configure_rotation_dummyDA_mirroring_and_inital_patch_size,
    })


def __getattr__(name: str) -> type:
    match = NAME_PATTERN.match(name)
    if match is None:
        raise AttributeError(name)
    if name not in _CACHE:
        epochs, iterations, val_iterations = (int(g) for g in match.groups())
        if min(epochs, iterations, val_iterations) < 1:
            raise AttributeError(f"{name}: epochs and iterations must be at least 1")
        _CACHE[name] = _make(name, epochs, iterations, val_iterations)
    return _CACHE[name]
