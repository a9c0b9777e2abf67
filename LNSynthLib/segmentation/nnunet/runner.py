"""Plan/preprocess, train and predict through nnU-Net v2's own command-line programs.

Where the files lie is `project`'s knowledge (the project's `nnUNet_raw`, `nnUNet_preprocessed` and
`nnUNet_results`, dataset names, trained-model folders); this module runs the programs on them. Every
step resumes: planning is skipped when its plans and data exist, training continues with `--c` from the
last epoch checkpoint, prediction only runs the cases that have no output yet.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from LNSynthLib.atomic import sweep_leftovers, temp_folder, write_text_atomic
from LNSynthLib.errors import InputDataError
from LNSynthLib.jobs.progress import Progress
from LNSynthLib.safe_checkpoints import ERROR_PREFIX
from LNSynthLib.segmentation.nnunet.export import MANIFEST, stamp_state, write_splits, write_stamp
from LNSynthLib.segmentation.nnunet.plans import plan_hash, plan_summary
from LNSynthLib.segmentation.nnunet.progress import EpochRecord, NnUNetLogParser, failure_cause
from LNSynthLib.segmentation.nnunet.project import (
    DEFAULT_CONFIGURATION,
    DEFAULT_PLANS,
    STANDARD_TRAINER,
    NnUNetError,
    NnUNetProject,
    TrainerSpec,
    model_results,
    parse_model_dir,
    trained_fold,
)
from LNSynthLib.segmentation.nnunet.trainers.real_share import SEED_ENV

SHARED_PLANS = "LNSynthRealPlans"      # a dataset's copy of the plans made from the real training cases
TRAINING_RECORD = "lnsynth_training.json"
ENTRY_MODULE = "LNSynthLib.segmentation.nnunet.entry"


def nnunet_command(name: str) -> list[str]:
    """Command line that runs the nnU-Net program `name` through `entry`.

    Not the console script itself: the wrapper makes checkpoint loading weights-only and
    checkpoint writes atomic in the nnU-Net process (see `entry`).
    """
    from importlib.metadata import entry_points

    if not list(entry_points(group="console_scripts", name=name)):
        raise NnUNetError(f"nnU-Net program {name} not found", fix="install nnunetv2 (pinned in requirements.txt)")
    return [sys.executable, "-m", ENTRY_MODULE, name]


def _program_name(cmd: Sequence[str]) -> str:
    return cmd[3] if len(cmd) > 3 and cmd[2] == ENTRY_MODULE else Path(cmd[0]).name


def run_logged(cmd: Sequence[str], env: dict[str, str], log_path: Path,
               on_line: Callable[[str], None] | None = None) -> None:
    """Run a program through the one job runner (`JobProcess`): its output goes into `log_path` (and
    `on_line`), a failure raises NnUNetError naming the cause, a cancel stops its whole process group.

    A `lnsynth-error:` line from `entry` (e.g. a refused checkpoint) becomes that error.
    """
    from LNSynthLib.jobs.runner import JobProcess

    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
    reported: list[dict] = []

    def take(line: str) -> None:
        if line.startswith(ERROR_PREFIX):
            reported.append(json.loads(line[len(ERROR_PREFIX):]))
        if on_line is not None:
            on_line(line + "\n")

    job = JobProcess([], command=list(cmd), env=env, log_path=log_path, tail_lines=30, on_line=take)
    try:
        state = job.wait(poll_interval_s=0.2)
    except BaseException:   # cancelled (SIGTERM -> JobCancelled, Ctrl+C): stop nnU-Net and its workers too
        job.cancel()
        raise
    if reported:
        raise InputDataError(reported[-1]["problem"], path=reported[-1]["path"], fix=reported[-1]["fix"])
    if state.returncode != 0:
        cause, hint = failure_cause(state.log_tail, state.returncode)
        raise NnUNetError(f"{_program_name(cmd)} failed (exit code {state.returncode}): {cause}", path=log_path,
                          fix=f"{hint}; nnU-Net's whole output is in this log file")


def plan_and_preprocess(project: NnUNetProject, dataset_id: int, *, configuration: str = DEFAULT_CONFIGURATION,
                        verify: bool = True, device: str = "cpu") -> Path:
    """`nnUNetv2_plan_and_preprocess`; skipped when plans and preprocessed data are already there."""
    name = project.find_dataset(dataset_id)
    pre = project.preprocessed / name
    plans = pre / f"{DEFAULT_PLANS}.json"
    data_dir = pre / f"{DEFAULT_PLANS}_{configuration}"
    n_train = len(list((project.raw / name / "labelsTr").glob("*.nii.gz")))
    current = stamp_state(pre, project.raw / name)
    if current is False:    # planned from an earlier export of this dataset: its data would be stale
        shutil.rmtree(pre)
    elif (plans.exists() and data_dir.is_dir() and len(list(data_dir.glob("*.pkl"))) >= n_train
            and (pre / "splits_final.json").exists()):
        return pre
    n_proc = project.env(device)["nnUNet_def_n_proc"]
    # `-npfp` (fingerprint workers, also the integrity check's) defaults to 8 spawned processes, each
    # importing torch: for a few dozen cases that start-up is most of planning, so both use `-np`'s count.
    cmd = [*nnunet_command("nnUNetv2_plan_and_preprocess"), "-d", str(int(dataset_id)), "-c", configuration,
           "-np", n_proc, "-npfp", n_proc]
    if verify:
        cmd.append("--verify_dataset_integrity")
    progress = Progress("nnunet_plan", 1)
    run_logged(cmd, project.env(device), project.logs / f"plan_{name}.log")
    manifest = project.raw / name / MANIFEST   # one source case: no split (fold `all` trains on every case)
    if manifest.exists() and len({i["source_case"] for i in json.loads(manifest.read_text("utf-8"))["training"]}) > 1:
        write_splits(project.raw / name, pre)
    write_stamp(pre, project.raw / name)
    progress.update(1)
    progress.close()
    return pre


def transfer_plans(project: NnUNetProject, source_id: int, target_id: int, *,
                   configuration: str = DEFAULT_CONFIGURATION, device: str = "cpu") -> str:
    """Preprocess dataset `target_id` with the plans of `source_id` (saved as `SHARED_PLANS`); returns that name.

    nnU-Net's own route: `nnUNetv2_extract_fingerprint` (the trainer keeps a copy of it),
    `nnUNetv2_move_plans_between_datasets`, then `nnUNetv2_preprocess` with the moved plans. The
    target's data are then normalized with the source's intensity statistics and trained with the
    source's network and patch. Skipped when done for the current export and the same source plans.
    """
    source = project.preprocessed / project.find_dataset(source_id) / f"{DEFAULT_PLANS}.json"
    if not source.exists():
        raise InputDataError("the source dataset has no plans yet", path=source,
                             fix="plan and preprocess the real-case dataset first")
    name = project.find_dataset(target_id)
    pre = project.preprocessed / name
    plans = pre / f"{SHARED_PLANS}.json"
    data_dir = pre / f"{SHARED_PLANS}_{configuration}"
    origin = {"source_dataset": project.find_dataset(source_id), "source_plan_hash": plan_hash(source, configuration)}
    origin_path = pre / "lnsynth_plans_origin.json"
    n_train = len(list((project.raw / name / "labelsTr").glob("*.nii.gz")))
    current = stamp_state(pre, project.raw / name)
    same_origin = origin_path.exists() and json.loads(origin_path.read_text(encoding="utf-8")) == origin
    if current is False or (plans.exists() and not same_origin):
        shutil.rmtree(pre)
    elif (plans.exists() and data_dir.is_dir() and len(list(data_dir.glob("*.pkl"))) >= n_train
            and (pre / "splits_final.json").exists()):
        return SHARED_PLANS
    env, n_proc = project.env(device), project.env(device)["nnUNet_def_n_proc"]
    log = project.logs / f"plan_{name}.log"
    progress = Progress("nnunet_plan", 3)
    run_logged([*nnunet_command("nnUNetv2_extract_fingerprint"), "-d", str(int(target_id)), "-np", n_proc],
               env, log)
    progress.update(1)
    run_logged([*nnunet_command("nnUNetv2_move_plans_between_datasets"), "-s", str(int(source_id)),
                "-t", str(int(target_id)), "-sp", DEFAULT_PLANS, "-tp", SHARED_PLANS], env, log)
    # nnU-Net's experiment planner copies dataset.json next to the plans; preprocessing reads it from there.
    shutil.copy(project.raw / name / "dataset.json", pre / "dataset.json")
    progress.update(2)
    run_logged([*nnunet_command("nnUNetv2_preprocess"), "-d", str(int(target_id)), "-plans_name", SHARED_PLANS,
                "-c", configuration, "-np", n_proc], env, log)
    if (project.raw / name / MANIFEST).exists():
        write_splits(project.raw / name, pre)
    write_text_atomic(origin_path, json.dumps(origin, indent=2), overwrite=True)
    write_stamp(pre, project.raw / name)
    progress.update(3)
    progress.close()
    return SHARED_PLANS


def patch_label(patch_size: Sequence[int]) -> str:
    """`32x32x32`: how a patch size appears in configuration names, reports and benchmarks."""
    return "x".join(str(int(v)) for v in patch_size)


def patch_configuration(project: NnUNetProject, dataset_id: int, patch_size: Sequence[int] | None, *,
                        base: str = DEFAULT_CONFIGURATION, base_features: int | None = None,
                        plans_name: str = DEFAULT_PLANS) -> str:
    """Add a plans configuration that is `base` with another patch size and/or network width; returns its
    name (`base` when neither changes).

    Uses nnU-Net's `inherits_from`, so the spacing and preprocessed data stay those of `base`. On a
    CPU a 32³ patch makes an iteration about ten times cheaper than nnU-Net's 64³ plan for the demo's
    phantom, which is what lets a few hundred iterations fit into the demo. `base_features` scales
    every stage's feature count so that the first has that many (nnU-Net plans 32; 16 halves the
    width, about 4× fewer operations per iteration). Run after `plan_and_preprocess` (re-planning
    rewrites the plans file; this call is idempotent).
    """
    if not patch_size and not base_features:
        return base
    plans_path = project.preprocessed / project.find_dataset(dataset_id) / f"{plans_name}.json"
    if not plans_path.exists():
        raise InputDataError("no nnU-Net plans yet", path=plans_path, fix="plan and preprocess the dataset first")
    plans = json.loads(plans_path.read_text(encoding="utf-8"))
    parent = plans["configurations"].get(base)
    if parent is None:
        raise InputDataError(f"the plans have no configuration {base!r}", path=plans_path,
                             fix=f"use one of {', '.join(plans['configurations'])}")
    patch = [int(v) for v in (patch_size or parent["patch_size"])]
    strides = parent["architecture"]["arch_kwargs"]["strides"]
    downsampling = [1] * len(patch)
    for stride in strides:
        downsampling = [d * int(s) for d, s in zip(downsampling, stride, strict=True)]
    if len(patch) != len(parent["patch_size"]) or any(p % d for p, d in zip(patch, downsampling, strict=True)):
        raise InputDataError(f"patch size {patch} does not fit the planned network", path=plans_path,
                             fix=f"give {len(parent['patch_size'])} sizes, each a multiple of {downsampling}")
    if all(p == d for p, d in zip(patch, downsampling, strict=True)):   # instance norm needs two voxels there
        raise InputDataError(f"patch size {patch} leaves one voxel at the bottom of the planned network",
                             path=plans_path, fix=f"give a larger patch: twice {downsampling} along at least one axis")
    name = f"{base}_patch{patch_label(patch)}"
    wanted: dict = {"inherits_from": base, "patch_size": patch}
    if base_features:
        # nnU-Net merges an inheriting configuration shallowly: the architecture is given whole.
        architecture = copy.deepcopy(parent["architecture"])
        planned = architecture["arch_kwargs"]["features_per_stage"]
        architecture["arch_kwargs"]["features_per_stage"] = [max(1, round(f * base_features / planned[0]))
                                                             for f in planned]
        wanted["architecture"] = architecture
        name += f"_f{int(base_features)}"
    if plans["configurations"].get(name) != wanted:
        plans["configurations"][name] = wanted
        write_text_atomic(plans_path, json.dumps(plans, indent=4), overwrite=True)
    return name


def train(project: NnUNetProject, dataset_id: int, trainer: TrainerSpec, *, fold: int | str = 0,
          configuration: str = DEFAULT_CONFIGURATION, device: str = "cpu", resume: bool = True,
          on_epoch: Callable[[EpochRecord], None] | None = None, seed: int | None = None,
          plans_name: str = DEFAULT_PLANS, pretrained: Path | None = None) -> Path:
    """`nnUNetv2_train`; returns the final checkpoint. Progress lines: stage `nnunet_train`, one per epoch.

    `seed` seeds the short trainers (`real_share.seed_everything`): on a CPU, where augmentation runs in
    the training process, two runs with one seed train the same network. A resumed run is not bit-identical
    to an uninterrupted one (the random state is not in nnU-Net's checkpoint). `pretrained`: a checkpoint
    whose weights start the training (nnU-Net's `-pretrained_weights`, for fine-tuning).
    The fold folder gets `lnsynth_training.json`: trainer, seed, plans and the plan's hash (`plan_hash`).
    """
    fold_dir = project.training_dir(dataset_id, trainer, fold, configuration, plans_name)
    final = fold_dir / "checkpoint_final.pth"
    raw = project.raw / project.find_dataset(dataset_id)
    if stamp_state(fold_dir, raw) is False:
        raise InputDataError("this model was trained on an earlier export of the dataset", path=fold_dir,
                             fix="delete this training folder to train on the current export, or export "
                                 "under a new --dataset-id to keep both")
    if final.exists():
        return final
    fold_dir.mkdir(parents=True, exist_ok=True)
    write_stamp(fold_dir, raw)
    plans_path = project.preprocessed / raw.name / f"{plans_name}.json"
    record = {"trainer": trainer.name, "seed": seed, "plans": plans_name, "configuration": configuration,
              "fold": str(fold), "plan_hash": plan_hash(plans_path, configuration),
              "plan_summary": plan_summary(plans_path, configuration),
              "pretrained": None if pretrained is None else str(pretrained)}
    write_text_atomic(fold_dir / TRAINING_RECORD, json.dumps(record, indent=2), overwrite=True)
    cmd = [*nnunet_command("nnUNetv2_train"), str(int(dataset_id)), configuration, str(fold),
           "-tr", trainer.name, "-p", plans_name, "-device", device]
    started = 0
    if pretrained is not None and not any(fold_dir.glob("checkpoint_*.pth")):
        cmd += ["-pretrained_weights", str(pretrained)]
    if resume:
        from LNSynthLib.segmentation.nnunet.resume import resume_point

        checkpoint, started = resume_point(fold_dir)   # skips (and says so) checkpoints that do not load
        if checkpoint is not None:
            cmd.append("--c")
    parser = NnUNetLogParser()
    progress = Progress("nnunet_train", trainer.total_epochs, start_step=started)

    def on_line(line: str) -> None:
        record = parser.feed(line)
        if record is None:
            return
        dice = record.pseudo_dice[0] if record.pseudo_dice else None
        progress.update(record.epoch + 1, loss=record.train_loss, val_loss=record.val_loss,
                        pseudo_dice=dice, epoch_time_s=record.epoch_time_s)
        if on_epoch is not None:
            on_epoch(record)

    env = project.env(device)
    env.setdefault("nnUNet_n_proc_DA", env["LNSYNTH_NNUNET_DA_WORKERS"])
    if seed is not None:
        env[SEED_ENV] = str(int(seed))
    run_logged(cmd, env, project.logs / f"train_{project.find_dataset(dataset_id)}_"
               f"{trainer.name}_fold{fold}.log", on_line)
    progress.close(mean_validation_dice=parser.mean_validation_dice)
    if not final.exists():
        raise NnUNetError("training ended without checkpoint_final.pth", path=fold_dir,
                          fix="read the training log in the project's logs folder")
    return final


def predict(model: str | Path, input_dir: str | Path, output_dir: str | Path, *, fold: int | str | None = None,
            device: str = "cpu", checkpoint: str = "checkpoint_final.pth", tta: bool | None = None,
            log_dir: str | Path | None = None, step_size: float | None = None) -> Path:
    """Segment the `<id>_0000.nii.gz` files of `input_dir` that have no output in `output_dir` yet.

    Runs `nnUNetv2_predict` on the trained-model folder `model`, named to nnU-Net by its dataset, trainer,
    plans and configuration (`project.parse_model_dir`) in the `nnUNet_results` that holds it. Not
    `nnUNetv2_predict_from_modelfolder`, which takes the folder itself: that program always starts
    worker processes (nnunetv2 2.8.1 ignores its `-npp 0 -nps 0`), and on a CPU the sequential mode that
    `nnUNetv2_predict` runs with them is faster and needs no spawn guard. nnU-Net writes into a temporary
    folder of this run's own (`atomic.temp_folder`: no other run uses it, and the next run removes it
    when this one was killed); each finished label map is then moved into `output_dir`, so a cancelled
    run leaves no half-written file there. `log_dir` is where the log goes when the model has no project logs
    folder. Test-time mirroring defaults to on for the standard trainer and off for the short
    ones (which are not trained with it in mind and run on a CPU). `fold` None: the trained fold
    (`trained_fold`). `step_size`: the sliding-window step as a fraction of the patch; None keeps
    nnU-Net's (0.5: windows overlap by half), 1.0 tiles them (3× fewer windows on 64³ with 32³ patches).
    """
    model = Path(model).resolve()
    dataset, trainer_cls, plans, configuration = parse_model_dir(model)
    if fold is None:
        fold = trained_fold(model, checkpoint)
    if not (model / f"fold_{fold}" / checkpoint).exists():
        raise InputDataError(f"fold {fold} has no {checkpoint}", path=model / f"fold_{fold}",
                             fix="train this fold first (`lnsynth nnunet train`) or pick the trained fold")
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    images = sorted(input_dir.glob("*_0000.nii.gz"))
    if not images:
        raise InputDataError("no `<case>_0000.nii.gz` images to segment", path=input_dir,
                             fix="give an nnU-Net imagesTs-style folder, or one CT with `--ct`")
    todo = [p for p in images if not (output_dir / p.name.replace("_0000.nii.gz", ".nii.gz")).exists()]
    output_dir.mkdir(parents=True, exist_ok=True)
    sweep_leftovers(output_dir.parent)   # what a killed run left beside the output (never a live run's)
    if not todo:
        return output_dir
    env = NnUNetProject.of_model(model).env(device)
    env["nnUNet_results"] = str(model_results(model))
    progress = Progress("nnunet_predict", len(images), start_step=len(images) - len(todo))
    with temp_folder(output_dir.name, output_dir.parent) as tmp:   # this run's own: pid-tagged, swept when dead
        tmp_in, tmp_out = Path(tmp) / "in", Path(tmp) / "out"
        tmp_in.mkdir()
        for image in todo:
            os.symlink(image.resolve(), tmp_in / image.name)
        cmd = [*nnunet_command("nnUNetv2_predict"), "-i", str(tmp_in), "-o", str(tmp_out), "-d", dataset,
               "-c", configuration, "-p", plans, "-f", str(fold), "-tr", trainer_cls, "-chk", checkpoint,
               "-device", device]
        # On a CPU, nnU-Net's sequential mode (no worker processes) is faster and needs no spawn guard.
        cmd += ["-npp", "0", "-nps", "0"] if device == "cpu" else ["-npp", "2", "-nps", "2"]
        if tta is False or (tta is None and trainer_cls != STANDARD_TRAINER):
            cmd.append("--disable_tta")
        if step_size is not None:
            cmd += ["-step_size", str(step_size)]
        done = len(images) - len(todo)

        def on_line(line: str) -> None:
            nonlocal done
            # Parallel mode prints `done with <file>`, sequential mode one line per case it starts.
            if line.startswith(("done with ", "perform_everything_on_device:")):
                done += 1
                progress.update(min(done, len(images)))

        # The model project's logs folder, else `log_dir`, else next to the output: never a temporary folder.
        project_logs = NnUNetProject.of_model(model).logs
        log_dir = project_logs if project_logs.is_dir() else Path(log_dir or output_dir.parent)
        run_logged(cmd, env, log_dir / f"predict_{dataset}.log", on_line)
        for image in todo:
            name = image.name.replace("_0000.nii.gz", ".nii.gz")
            produced = tmp_out / name
            if not produced.exists():
                raise NnUNetError(f"nnU-Net wrote no prediction for {image.name}", path=tmp_out,
                                  fix="read the predict log next to the output folder")
            os.replace(produced, output_dir / name)
    progress.close()
    return output_dir
