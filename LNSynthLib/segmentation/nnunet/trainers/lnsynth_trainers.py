"""Short nnU-Net trainers for CPU tests and demos, found through nnU-Net's `nnUNet_extTrainer` lookup.

nnU-Net creates trainers from a class name alone (`-tr NAME`, and again from the name stored in a
checkpoint at prediction time), so the number of epochs and iterations is part of the name:
`nnUNetTrainerLNSynth_<E>ep_<I>it_<V>val` trains E epochs of I training and V validation
iterations. `nnUNetTrainerLNSynth_<E>ep_<I>it_<V>val_pat<P>_d<D>` adds the plateau stopping rule
(`plateau.py`): stop when the smoothed validation loss has not improved by more than
D × 1e-4 for P epochs, E being the max-epoch budget; the per-epoch curves and the epoch it
stopped at go to `plateau.json` in the fold folder. A suffix `_rs<R>` draws R % of every batch from the real
cases (`real_share.py`; the rest from the synthetic ones), instead of nnU-Net's uniform draw over cases,
which gives 2 real cases among 20 synthetic ones 9 % of the patches. When `LNSYNTH_NNUNET_SEED` is set
the trainer seeds Python, NumPy and torch before nnU-Net builds the network and the data loaders, so two
runs with the same seed on a CPU with in-process augmentation (`nnUNet_n_proc_DA=0`) train identically.
The class is made on demand by the module
`__getattr__` (PEP 562), which nnU-Net's `hasattr(module, name)` search calls. A checkpoint (and
the progress plot) is written every 10 % of the epochs, every epoch below 20, so `--c` can resume;
test-time mirroring is off (CPU time); fold `all` skips the final validation on its own training
cases. Everything else is nnU-Net's standard `nnUNetTrainer`.
"""

from __future__ import annotations

import os
import re

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from LNSynthLib.devices import NNUNET_THREADS_ENV, job_threads
from LNSynthLib.segmentation.nnunet.trainers.plateau import DELTA_UNIT, plateau_state, write_record
from LNSynthLib.segmentation.nnunet.trainers.real_share import SEED_ENV, real_share_loaders, seed_everything

THREADS_ENV = NNUNET_THREADS_ENV   # torch threads of a CPU training (unset: the jobs' rule, `job_threads`)

NAME_PATTERN = re.compile(r"^nnUNetTrainerLNSynth_(\d+)ep_(\d+)it_(\d+)val(?:_pat(\d+)_d(\d+))?(?:_rs(\d+))?$")
_CACHE: dict[str, type] = {}
_CUDA = torch.device("cuda")  # nnU-Net's default device argument


class PlateauReached(Exception):
    """Raised at the end of an epoch when the stopping rule says stop; ends training normally."""


def trainer_name(epochs: int, iterations: int, val_iterations: int, patience: int | None = None,
                 min_delta: float = 0.0, real_share: float | None = None) -> str:
    name = f"nnUNetTrainerLNSynth_{int(epochs)}ep_{int(iterations)}it_{int(val_iterations)}val"
    if patience is not None:
        name += f"_pat{int(patience)}_d{int(round(min_delta / DELTA_UNIT))}"
    if real_share is not None:
        name += f"_rs{int(round(real_share * 100))}"
    return name


def _make(name: str, epochs: int, iterations: int, val_iterations: int, patience: int | None,
          min_delta: float, real_share: float | None = None) -> type:
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = _CUDA) -> None:
        if os.environ.get(SEED_ENV):
            seed_everything(int(os.environ[SEED_ENV]))   # before nnU-Net draws anything
        if device.type == "cpu" or os.environ.get(THREADS_ENV):
            # nnU-Net gives a CPU run every core; on a shared machine two spinning OpenMP threads are many times
            # slower than one (a descheduled thread stalls the other at every barrier): the jobs' rule instead.
            torch.set_num_threads(job_threads(THREADS_ENV))
        nnUNetTrainer.__init__(self, plans, configuration, fold, dataset_json, device)
        self.num_epochs = epochs
        self.num_iterations_per_epoch = iterations
        self.num_val_iterations_per_epoch = val_iterations
        # A checkpoint and the progress plot every 10 % of the budget (every epoch below 20): each costs about
        # as much as a CPU epoch of these sizes, and a resumed run repeats at most 10 % of its epochs.
        self.save_every = max(1, epochs // 10)
        plot = self.logger.plot_progress_png

        def plot_sometimes(output_folder: str, final: bool = False) -> None:
            done = self.current_epoch + 1   # called before nnU-Net counts the epoch just finished
            if final or done % self.save_every == 0 or done >= self.num_epochs:
                plot(output_folder)

        self.logger.plot_progress_png = plot_sometimes

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):  # noqa: ANN001, ANN202
        # Mirroring stays as data augmentation; test-time mirroring (8 passes per window) is off
        # because on a CPU it multiplies validation and prediction time by eight.
        result = nnUNetTrainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size(self)
        self.inference_allowed_mirroring_axes = None
        return result

    def perform_actual_validation(self, save_probabilities: bool = False) -> None:
        if self.fold == "all":
            # Fold `all` validates on its own training cases: a score that says nothing about new scans,
            # at the cost of predicting every (synthetic) training case.
            self.print_to_log_file("Final validation skipped: fold `all` holds no held-out case")
            return
        nnUNetTrainer.perform_actual_validation(self, save_probabilities)

    def on_epoch_end(self) -> None:
        nnUNetTrainer.on_epoch_end(self)
        history = self.logger.get_value   # step=None: the whole list, restored from the checkpoint on resume
        state = plateau_state(history("val_losses", step=None), patience=patience, min_delta=min_delta,
                              max_epochs=self.num_epochs, train_losses=history("train_losses", step=None),
                              fold=self.fold)
        if self.local_rank == 0:
            write_record(self.output_folder, state)
        if state["reason"] == "plateau":
            self.print_to_log_file(f"Plateau: no improvement of the smoothed val_loss by more than {min_delta} "
                                   f"for {patience} epochs; stopping after epoch {state['stopped_epoch']}")
            raise PlateauReached

    def run_training(self) -> None:
        try:
            nnUNetTrainer.run_training(self)
        except PlateauReached:
            self.logger.plot_progress_png(self.output_folder, final=True)
            self.on_train_end()   # checkpoint_final.pth, as at the end of the budget

    members = {"__init__": __init__, "__module__": __name__, "perform_actual_validation": perform_actual_validation,
               "configure_rotation_dummyDA_mirroring_and_inital_patch_size":
                   configure_rotation_dummyDA_mirroring_and_inital_patch_size}
    if patience is not None:
        members.update(on_epoch_end=on_epoch_end, run_training=run_training)
    if real_share is not None:
        def get_dataloaders(self):  # noqa: ANN001, ANN202
            return real_share_loaders(self, real_share, lambda: nnUNetTrainer.get_dataloaders(self))

        members["get_dataloaders"] = get_dataloaders
    return type(name, (nnUNetTrainer,), members)


def __getattr__(name: str) -> type:
    match = NAME_PATTERN.match(name)
    if match is None:
        raise AttributeError(name)
    if name not in _CACHE:
        epochs, iterations, val_iterations = (int(g) for g in match.groups()[:3])
        patience = None if match.group(4) is None else int(match.group(4))
        min_delta = 0.0 if match.group(5) is None else int(match.group(5)) * DELTA_UNIT
        real_share = None if match.group(6) is None else int(match.group(6)) / 100
        if min(epochs, iterations, val_iterations) < 1 or (patience is not None and patience < 1):
            raise AttributeError(f"{name}: epochs, iterations and patience must be at least 1")
        if real_share is not None and not 0 < real_share < 1:
            raise AttributeError(f"{name}: the real share must lie between 1 and 99 %")
        _CACHE[name] = _make(name, epochs, iterations, val_iterations, patience, min_delta, real_share)
    return _CACHE[name]
