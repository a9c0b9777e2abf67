"""Where nnU-Net's files lie: project folders, dataset names, trainer names and trained-model folders.

Each project folder holds its own `nnUNet_raw`, `nnUNet_preprocessed` and `nnUNet_results`,
passed to nnU-Net through the environment of the child process (never of this one), so several
projects and the user's own nnU-Net setup do not interfere. Callers ask this module for an
nnU-Net path (`NnUNetProject`, `model_dir`, `model_of`) instead of writing nnU-Net's folder names,
`Dataset…` names or `parents[k]` hops themselves.

Imports neither torch nor nnunetv2 when loaded, so code outside the job processes (the panel,
the web page) can read a project's paths too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import LNSynthLib
from LNSynthLib.errors import InputDataError, LNSynthError
from LNSynthLib.segmentation.nnunet.constants import STANDARD_EPOCHS
from LNSynthLib.segmentation.nnunet.trainers.plateau import DEFAULT_MIN_DELTA

# nnU-Net finds LNSynth's trainers by this folder's path (`nnUNet_extTrainer`), importing its modules itself.
TRAINERS_DIR = Path(__file__).with_name("trainers")
LIBRARY_ROOT = Path(LNSynthLib.__file__).resolve().parents[1]   # folder holding LNSynthLib, for child processes
STANDARD_TRAINER = "nnUNetTrainer"
DEFAULT_CONFIGURATION = "3d_fullres"
DEFAULT_PLANS = "nnUNetPlans"          # nnU-Net's own plans identifier
DATASET_PREFIX = "Dataset"             # nnU-Net's dataset folders: `Dataset<id:03d>_<name>`


class NnUNetError(LNSynthError):
    """An nnU-Net program failed; the message holds the end of its output and the log file."""


@dataclass(frozen=True)
class TrainerSpec:
    """Which nnU-Net trainer to run: the standard one, or a short one for CPU tests and demos."""

    epochs: int | None = None          # None: nnU-Net's standard trainer (1000 epochs of 250 iterations)
    iterations: int = 10
    val_iterations: int = 2
    patience: int | None = None        # plateau stopping (`trainers/plateau.py`); epochs is then the budget
    min_delta: float = DEFAULT_MIN_DELTA
    real_share: float | None = None    # share of drawn cases that are real (`trainers/real_share.py`)

    def __post_init__(self) -> None:
        if self.patience is not None and self.epochs is None:
            raise InputDataError("plateau stopping needs a max-epoch budget",
                                 fix="give epochs (the budget) together with patience")

    @property
    def name(self) -> str:
        if self.epochs is None and self.real_share is None:
            return STANDARD_TRAINER
        # The short trainers' names are made next to the classes nnU-Net builds from them, a module that
        # imports torch and nnunetv2: imported when a name is asked, so reading paths stays light.
        from LNSynthLib.segmentation.nnunet.trainers.lnsynth_trainers import trainer_name

        if self.epochs is None:   # the standard budget (1000 x 250 + 50) with the real share
            return trainer_name(STANDARD_EPOCHS, 250, 50, None, self.min_delta, self.real_share)
        return trainer_name(self.epochs, self.iterations, self.val_iterations, self.patience, self.min_delta,
                            self.real_share)

    @property
    def total_epochs(self) -> int:
        return STANDARD_EPOCHS if self.epochs is None else int(self.epochs)


def dataset_name(dataset_id: int, name: str) -> str:
    """nnU-Net's dataset folder name, `Dataset101_Real`."""
    return f"{DATASET_PREFIX}{int(dataset_id):03d}_{name}"


def dataset_id_of(folder_name: str) -> int:
    """The id of a dataset folder name (`Dataset101_Real` -> 101).

    nnU-Net's `convert_dataset_name_to_id` does the same; it is not imported so that this module
    stays free of nnunetv2.
    """
    return int(folder_name[len(DATASET_PREFIX):].split("_")[0])


@dataclass(frozen=True)
class NnUNetProject:
    """One folder with nnU-Net's three data folders."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    @classmethod
    def of_model(cls, model: str | Path) -> NnUNetProject:
        """The project a trained-model folder `<project>/nnUNet_results/DatasetXXX_Name/<model>` is in."""
        return cls(Path(model).parents[2])

    # nnU-Net's three folders (its environment variables point here) and the project's logs
    raw = property(lambda self: self.root / "nnUNet_raw")
    preprocessed = property(lambda self: self.root / "nnUNet_preprocessed")
    results = property(lambda self: self.root / "nnUNet_results")
    logs = property(lambda self: self.root / "logs")

    def raw_dataset(self, dataset_id: int, name: str | None = None) -> Path:
        """The raw dataset folder `Dataset<id>_<name>`: one to write (`name` given), or the exported one."""
        return self.raw / (self.find_dataset(dataset_id) if name is None else dataset_name(dataset_id, name))

    def datasets(self) -> list[Path]:
        """The raw dataset folders exported into this project, by name."""
        return sorted(self.raw.glob(f"{DATASET_PREFIX}*_*")) if self.raw.is_dir() else []

    def find_dataset(self, dataset_id: int) -> str:
        """Folder name `DatasetXXX_Name` of an exported dataset."""
        hits = sorted(self.raw.glob(f"{DATASET_PREFIX}{int(dataset_id):03d}_*")) if self.raw.is_dir() else []
        if not hits:
            raise InputDataError(f"no nnU-Net dataset with id {dataset_id}", path=self.raw,
                                 fix="run `lnsynth nnunet export` first with this --project and --dataset-id")
        return hits[0].name

    def env(self, device: str = "cpu", workers: int | None = None) -> dict[str, str]:
        """Environment for nnU-Net child processes."""
        env = dict(os.environ)
        env.update({"nnUNet_raw": str(self.raw), "nnUNet_preprocessed": str(self.preprocessed),
                    "nnUNet_results": str(self.results), "nnUNet_extTrainer": str(TRAINERS_DIR),
                    "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"})
        # The nnU-Net child runs `nnunet.entry` from this LNSynthLib, wherever it is installed.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(LIBRARY_ROOT), env.get("PYTHONPATH")) if p)
        if workers is None:
            workers = 0 if device == "cpu" else max(1, min(8, (os.cpu_count() or 2) - 1))
        # On a small CPU, worker processes for augmentation and export cost more than they save.
        # (Planning needs nnUNet_n_proc_DA >= 1, so 0 is set only for training: see `runner.train`.)
        env.setdefault("nnUNet_def_n_proc", str(max(1, workers)))
        env["LNSYNTH_NNUNET_DA_WORKERS"] = str(workers)
        return env

    def training_dir(self, dataset_id: int, trainer: TrainerSpec, fold: int | str = 0,
                     configuration: str = DEFAULT_CONFIGURATION, plans: str = DEFAULT_PLANS) -> Path:
        return (self.results / self.find_dataset(dataset_id) / f"{trainer.name}__{plans}__{configuration}"
                / f"fold_{fold}")

    def fold_dirs(self, dataset: str = f"{DATASET_PREFIX}*", fold: int | str = "*",
                  checkpoint: str | None = None) -> list[Path]:
        """Fold folders `<results>/<dataset>/<model>/fold_<fold>` of every trained model, by path; `dataset`
        and `fold` may be glob patterns; with `checkpoint`, only the folds that hold that file."""
        folds = sorted(self.results.glob(f"{dataset}/*/fold_{fold}"))
        return [f for f in folds if checkpoint is None or (f / checkpoint).exists()]


def model_dir(project: NnUNetProject, dataset_id: int, trainer: TrainerSpec,
              configuration: str = DEFAULT_CONFIGURATION, plans: str = DEFAULT_PLANS) -> Path:
    """nnU-Net's trained-model folder `<results>/DatasetXXX/<trainer>__<plans>__<configuration>`."""
    return project.training_dir(dataset_id, trainer, 0, configuration, plans).parent


def model_of(path: str | Path) -> Path:
    """The trained-model folder above a fold folder `fold_X`, or above a checkpoint in one."""
    path = Path(path)
    fold = path if path.name.startswith("fold_") else path.parent
    if not fold.name.startswith("fold_"):
        raise InputDataError("not a fold folder of an nnU-Net trained model, nor a checkpoint in one", path=path,
                             fix="give <model>/fold_X or a checkpoint in it")
    return fold.parent


def dataset_of(model: str | Path) -> str:
    """The dataset folder name `DatasetXXX_Name` of a trained-model folder."""
    return Path(model).parent.name


def model_results(model: str | Path) -> Path:
    """The `nnUNet_results` folder that holds a trained-model folder (nnU-Net finds the model there by name)."""
    return Path(model).parents[1]


def parse_model_dir(model: Path) -> tuple[str, str, str, str]:
    """(dataset folder, trainer, plans, configuration) from a trained-model folder.

    nnU-Net's own parser (`parse_dataset_trainer_plans_configuration_from_path`) reads the two folder
    names it writes, `DatasetXXX_Name/<trainer>__<plans>__<configuration>`. It is given those two
    alone: on a whole path it takes the first folder named `Dataset…` anywhere, so a project kept
    under such a folder would be misread. Imported here, not at the top, so that this module stays
    free of nnunetv2 (it runs where a model is used, in the job process).
    """
    from nnunetv2.utilities.file_path_utilities import parse_dataset_trainer_plans_configuration_from_path

    try:
        parts = parse_dataset_trainer_plans_configuration_from_path(os.path.join(model.parent.name, model.name))
    except AssertionError:   # nnU-Net's way of saying the path is not a model folder
        parts = None
    if not parts or len(parts) != 4 or not (model / "plans.json").exists():
        raise InputDataError("not an nnU-Net trained-model folder", path=model,
                             fix="give <nnUNet_results>/DatasetXXX_Name/<Trainer>__<Plans>__<configuration> "
                                 "(printed by `lnsynth nnunet train` as model_dir)")
    dataset, trainer, plans, configuration = parts
    return dataset, trainer, plans, configuration


def trained_fold(model: str | Path, checkpoint: str = "checkpoint_final.pth") -> str:
    """The fold of a trained-model folder that holds `checkpoint`: fold 0 first, then `all`, then the lowest."""
    folds = sorted(p.name.removeprefix("fold_") for p in Path(model).glob("fold_*") if (p / checkpoint).exists())
    for preferred in ("0", "all"):
        if preferred in folds:
            return preferred
    if not folds:
        raise InputDataError(f"no fold holds {checkpoint}", path=model,
                             fix="train a fold first (`lnsynth nnunet train`) or give the trained-model folder")
    return folds[0]
