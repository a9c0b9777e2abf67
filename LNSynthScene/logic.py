"""What the LNSynth panel does, without any GUI: scene ⇄ files and background `lnsynth` jobs.

The widget only calls these methods; they never open dialogs (errors are raised as
`LNSynthError` with the fix). Everything heavy runs as a `JobChain` of `lnsynth` commands
in separate processes, so the same code serves the panel (polled by a QTimer), the headless
script and the tests (`wait()`), and works on slicer-core without the Slicer application.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from LNSynthLib.anatomy.groups import LABEL_NAMES, LYMPH_NODE_SEGMENT_NAME
from LNSynthLib.cases import ANATOMY_FILE, CT_FILE, LN_FILE, list_cases, read_meta
from LNSynthLib.diffusion.sample.inct_defaults import SYNTHESIS_MODES
from LNSynthLib.errors import InputDataError
from LNSynthLib.jobs.chain import JobChain, Step, python_executable
from LNSynthLib.jobs.results import result_path
from LNSynthLib.jobs.warm_client import WarmWorker
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.grid import resample_onto
from LNSynthLib.volumes.io import read_volume, write_volume
from LNSynthLib.volumes.preprocess import TRAIN_MARGIN_MM

from . import mrml_bridge as mb
from . import terminology
from .job_args import IN_CT, PATCH, SynthesisSettings, nnunet_train_args, sample_args  # noqa: F401 - re-exported

ANATOMY_NAMES: dict[int, str] = dict(enumerate(LABEL_NAMES))
ANATOMY_TERMINOLOGY: dict[str, str] = {name: terminology.entry(name) for name in LABEL_NAMES}
HIDDEN_ANATOMY = ("air",)  # shown would hide the whole view


def _anatomy_colors() -> dict[int, tuple[float, float, float]]:
    """Distinct, stable colours per anatomy label (tab20-like palette, body in fat yellow)."""
    palette = [(0.55, 0.55, 0.55), (0.93, 0.84, 0.55), (0.80, 0.40, 0.35), (0.60, 0.30, 0.55),
               (0.85, 0.55, 0.25), (0.35, 0.55, 0.80), (0.45, 0.70, 0.40), (0.90, 0.35, 0.35),
               (0.40, 0.40, 0.85), (0.95, 0.95, 0.85), (0.70, 0.50, 0.30), (0.35, 0.75, 0.75),
               (0.75, 0.75, 0.30), (0.60, 0.80, 0.95)]
    return {v: palette[v % len(palette)] for v in ANATOMY_NAMES}




class SceneLogic:
    """Scene-side operations of the module; `scene` is Slicer's scene or a slicer-core one."""

    def __init__(self, scene: object, work_root: str | Path, python: str | None = None) -> None:
        self.scene = scene
        self.work_root = Path(work_root)
        self.python = python or python_executable()
        # The panel lists synthesis samples and loads one at a time (bounded memory, no freeze);
        # the web page's viewer takes every sample at once.
        self.results_on_demand = False
        self._warm: WarmWorker | None = None
        self.use_warm_worker = True   # False: every step its own process (as long jobs always are)

    def warm_worker(self) -> WarmWorker | None:
        """The session's warm job process (started by the first synthesis, kept for the next ones).

        It ends with this logic: its stdin closes when the logic is dropped or Slicer exits.
        """
        if not self.use_warm_worker:
            return None
        if self._warm is None:
            self._warm = WarmWorker(python=self.python)
        return self._warm

    def stop_warm_worker(self) -> None:
        if self._warm is not None:
            self._warm.stop()
            self._warm = None

    # ------------------------------------------------------------------ runs and files
    def new_run_dir(self, kind: str) -> Path:
        """Fresh folder for one job's inputs and outputs (`<work>/<kind>-<time>`), never reused."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for i in range(1000):
            run = self.work_root / (f"{kind}-{stamp}" + (f"-{i}" if i else ""))
            if not run.exists():
                run.mkdir(parents=True)
                return run
        raise InputDataError("cannot create a fresh run folder", path=self.work_root,
                             fix="clean up old runs in the work folder")

    def log_path(self, run_dir: Path) -> Path:
        return self.work_root / "logs" / f"{run_dir.name}.log"

    def chain(self, steps: list[Step], run_dir: Path, on_success=None, **options) -> JobChain:
        """`options`: JobChain's `resume_folder` (trainings) and `scene_bound` (results load into the scene)."""
        return JobChain(steps, run_dir, log_path=self.log_path(run_dir), python=self.python,
                        on_success=on_success, **options)

    # ------------------------------------------------------------------ anatomy
    def anatomy_from_labels(self, labels: Volume, name: str, node: object | None = None) -> object:
        """Show a 14-label anatomy map as a segmentation (air hidden)."""
        node = mb.labels_to_segmentation(labels, ANATOMY_NAMES, self.scene, name, node=node,
                                         colors=_anatomy_colors(), terminologies=ANATOMY_TERMINOLOGY)
        display = node.GetDisplayNode()
        for hidden in HIDDEN_ANATOMY:
            segment_id = node.GetSegmentation().GetSegmentIdBySegmentName(hidden)
            if display is not None and segment_id:
                display.SetSegmentVisibility(segment_id, False)
        return node

    def anatomy_from_totalseg_file(self, ct_node: object, totalseg_path: str | Path) -> object:
        """Group an existing TotalSegmentator `total` label file into the anatomy segmentation.

        The file must hold this CT's voxels (the library's grid rule: another axis order or direction
        is reoriented exactly); a file on another grid is refused rather than silently resampled.
        """
        from LNSynthLib.anatomy.build import anatomy_from_labels

        ct = mb.node_to_volume(ct_node)
        try:
            anatomy = anatomy_from_labels(read_volume(totalseg_path), ct, "totalseg", path=totalseg_path)
        except InputDataError as exc:
            raise InputDataError(exc.problem, path=exc.path, fix="give the TotalSegmentator `total` output of "
                                 "this CT (or put it on the CT's grid first: lnsynth anatomy --anatomy-source "
                                 "file --resample-labels)") from None
        return self.anatomy_from_labels(anatomy, f"{ct_node.GetName()} anatomy")

    def start_anatomy(self, ct_node: object, method: str = "totalseg", device: str = "auto",
                      weights_dir: str | Path | None = None) -> JobChain:
        """`lnsynth anatomy` in the background; on success the anatomy segmentation appears."""
        ct = mb.node_to_volume(ct_node)
        run = self.new_run_dir("anatomy")
        write_volume(ct, run / CT_FILE)
        out = run / "anatomy.nii.gz"
        args = ["anatomy", "--ct", str(run / CT_FILE), "--out", str(out), "--anatomy-source", method,
                "--device", device]
        if weights_dir:
            args += ["--weights-dir", str(weights_dir)]
        name = f"{ct_node.GetName()} anatomy"

        def load() -> object:
            node = self.anatomy_from_labels(read_volume(out), name)
            node.SetReferenceImageGeometryParameterFromVolumeNode(ct_node)
            (run / CT_FILE).unlink(missing_ok=True)
            return node

        if method != "totalseg":
            return self.chain([Step("Coarse anatomy", args)], run, on_success=load, scene_bound=True)
        from LNSynthLib.anatomy.totalseg_weights import download_step

        # The weights on first use (TotalSegmentator's own download, into its home), then TotalSegmentator.
        return self.chain([download_step(self.python, weights_dir), Step("TotalSegmentator", args)], run,
                          on_success=load, scene_bound=True)

    def start_weights_import(self, zip_path: str | Path, weights_dir: str | Path | None = None) -> JobChain:
        """Unpack a TotalSegmentator weights zip (the offline path) where TotalSegmentator reads it;
        `chain.result` is that folder."""
        from LNSynthLib.anatomy.totalseg_weights import EVENT, import_step

        run = self.new_run_dir("totalseg-weights")
        chain = self.chain([import_step(self.python, zip_path, weights_dir)], run)
        chain.on_success = lambda: next((e["path"] for e in chain.state.events if e.get("stage") == EVENT), None)
        return chain

    # ------------------------------------------------------------------ lymph nodes
    def lymph_node_segmentation(self, ct_node: object, node: object | None = None) -> tuple[object, str]:
        """Given or new segmentation with a `lymph node` segment (standard terminology); returns (node, id)."""
        if node is None:
            node = mb.new_segmentation_node(self.scene, f"{ct_node.GetName()} lymph nodes")
            node.SetReferenceImageGeometryParameterFromVolumeNode(ct_node)
        segmentation = node.GetSegmentation()
        segment_id = segmentation.GetSegmentIdBySegmentName(LYMPH_NODE_SEGMENT_NAME)
        if not segment_id:
            ct = mb.node_to_volume(ct_node)
            segment_id = mb.set_segment_mask(node, LYMPH_NODE_SEGMENT_NAME,
                                             Volume(np.zeros(ct.shape, np.uint8), ct.geometry),
                                             mb.LYMPH_NODE_TERMINOLOGY, color=(0.9, 0.8, 0.1))
        return node, segment_id

    def add_sphere(self, node: object, ct_node: object, center_lps: tuple[float, float, float],
                   radius_mm: float) -> int:
        """Paint a ball into the lymph-node segment (tests, demos); returns the voxels added."""
        ct = mb.node_to_volume(ct_node)
        mask = mb.segment_to_mask(node, LYMPH_NODE_SEGMENT_NAME, ct).array
        zyx = np.stack(np.meshgrid(*[np.arange(n) for n in ct.shape], indexing="ij"), axis=-1)
        points = ct.geometry.index_to_physical(zyx[..., ::-1].reshape(-1, 3)).reshape(*ct.shape, 3)
        ball = np.linalg.norm(points - np.asarray(center_lps), axis=-1) <= radius_mm
        added = int((ball & (mask == 0)).sum())
        mb.set_segment_mask(node, LYMPH_NODE_SEGMENT_NAME, Volume((mask > 0) | ball, ct.geometry),
                            mb.LYMPH_NODE_TERMINOLOGY, color=(0.9, 0.8, 0.1))
        return added

    # ------------------------------------------------------------------ synthesis
    def export_inputs(self, ct_node: object, anatomy_node: object, ln_node: object, folder: Path) -> dict:
        """Write the CT, its 14-label anatomy and LN mask (all on the CT grid) for `lnsynth prepare`."""
        ct = mb.node_to_volume(ct_node)
        absent = mb.missing_segments(anatomy_node, ANATOMY_NAMES)
        if absent:   # e.g. another tool's segmentation: a partial anatomy would condition the synthesis wrongly
            raise InputDataError(f"anatomy segmentation '{anatomy_node.GetName()}' has no segment for "
                                 f"{', '.join(absent)}",
                                 fix="create the anatomy with Create anatomy (or group a TotalSegmentator file), "
                                     "or pick the segmentation LNSynth made")
        anatomy = mb.segmentation_to_labels(anatomy_node, ANATOMY_NAMES, ct)
        if not (anatomy.array > 0).any():
            raise InputDataError(f"anatomy segmentation '{anatomy_node.GetName()}' is empty on this CT",
                                 fix="create the anatomy first (Create anatomy)")
        ln = mb.segment_to_mask(ln_node, LYMPH_NODE_SEGMENT_NAME, ct)
        if not ln.array.any():
            raise InputDataError(f"the '{LYMPH_NODE_SEGMENT_NAME}' segment of '{ln_node.GetName()}' is empty",
                                 fix="paint at least one lymph node (Edit lymph nodes)")
        paths = {"ct": folder / CT_FILE, "anatomy": folder / ANATOMY_FILE, "ln": folder / LN_FILE}
        write_volume(ct, paths["ct"], stored=True)   # the job reads it moments later: no deflate in the click
        write_volume(anatomy, paths["anatomy"])
        write_volume(ln, paths["ln"])
        return paths

    def run_with_inputs(self, kind: str, ct_node: object, anatomy_node: object,
                        ln_node: object) -> tuple[Path, dict]:
        """A fresh run folder holding the exported inputs of `lnsynth prepare` (removed again on error)."""
        run = self.new_run_dir(kind)
        try:
            return run, self.export_inputs(ct_node, anatomy_node, ln_node, run / "input")
        except Exception:
            shutil.rmtree(run, ignore_errors=True)
            raise

    def prepare_args(self, inputs: dict, out: Path, case_id: str, margin_mm: float) -> list[str]:
        """`lnsynth prepare` on files written by `export_inputs` (the CLI's own preparation)."""
        return ["prepare", "--ct", str(inputs["ct"]), "--ln", str(inputs["ln"]), "--anatomy", str(inputs["anatomy"]),
                "--anatomy-source", "file", "--labels-kind", "anatomy14", "--out", str(out), "--case-id", case_id,
                "--margin-mm", f"{margin_mm:g}"]

    # ------------------------------------------------------------------ LN-DDPM training
    def start_training_case(self, ct_node: object, anatomy_node: object, ln_node: object,
                            cases_root: str | Path) -> JobChain:
        """Prepare the current CT, anatomy and nodes as a training case (paper margins) in `cases_root`.

        `chain.result` is the new case id (the CT's name, made unique in the folder).
        """
        cases_root = Path(cases_root)
        run, inputs = self.run_with_inputs("training-case", ct_node, anatomy_node, ln_node)
        base = _safe_id(ct_node.GetName())
        case_id = next(name for name in (f"{base}_{i}" if i else base for i in range(10000))
                       if not (cases_root / name).exists())
        args = self.prepare_args(inputs, cases_root, case_id, TRAIN_MARGIN_MM)

        def done() -> str:
            shutil.rmtree(run / "input", ignore_errors=True)
            return case_id

        return self.chain([Step("Preparing the training case", args)], run, on_success=done)

    def start_ddpm_training(self, cases_root: str | Path, run_dir: str | Path, config: str,
                            iterations: int | None = None, device: str = "auto") -> JobChain:
        """`lnsynth train` in the background; clicking again resumes `run_dir`. Result: the checkpoint path."""
        if not list_cases(Path(cases_root)):
            raise InputDataError("no prepared training cases", path=cases_root,
                                 fix="add the current case first (Add current case)")
        if not config:
            raise InputDataError("no LN-DDPM config chosen", fix="pick tiny, paper, or a YAML config file")
        args = ["train", "--config", str(config), "--cases", str(cases_root), "--run-dir", str(run_dir),
                "--device", device]
        if iterations:
            args += ["--set", f"train.iterations={int(iterations)}"]
        chain = self.start_command("Training LN-DDPM", args, "ln-ddpm-train")
        chain.resume_folder = Path(run_dir)   # `lnsynth train` resumes there: never deleted on cancel
        chain.on_success = lambda: result_path(chain.state.events, "checkpoint")
        return chain

    def start_synthesis(self, ct_node: object, anatomy_node: object, ln_node: object,
                        settings: SynthesisSettings) -> JobChain:
        """prepare → sample in the background; on success the synthetic cases appear in the scene.

        Patch mode: `chain.result` is the list of loaded `CaseNodes` (+ pasted CT nodes). In-CT mode:
        a third step puts the nodes back into the user's CT grid, and `chain.result` is an
        `InCTResults` with the first result loaded (the others are listed, loaded on demand).
        """
        checkpoint = Path(settings.checkpoint)
        if not checkpoint.is_file():
            raise InputDataError("LN-DDPM checkpoint not found", path=checkpoint,
                                 fix="train one (`lnsynth train`) or pick an existing .pt file in Advanced")
        if settings.mode not in SYNTHESIS_MODES:
            raise InputDataError(f"unknown synthesis mode {settings.mode!r}", fix=f"use one of {SYNTHESIS_MODES}")
        run, inputs = self.run_with_inputs("synthesis", ct_node, anatomy_node, ln_node)
        case_id = _safe_id(ct_node.GetName())
        # In-CT: the model's window needs real context all round the node, hence the training margin.
        prepare = self.prepare_args(inputs, run / "cases", case_id,
                                    TRAIN_MARGIN_MM if settings.mode == IN_CT else settings.margin_mm)
        # Warm steps: a second click reuses the session's worker (imports and model already loaded).
        steps = [Step("Preparing the case", prepare, weight=1.0, warm=True),
                 Step("Sampling LN-DDPM", sample_args(settings, run / "cases", run / "synthetic"),
                      weight=4.0 * settings.n_samples, warm=True)]
        if settings.mode == IN_CT:
            from . import inct_job

            steps.append(Step("Placing the nodes into the CT", [], weight=1.0, warm=True,
                              command=[self.python, "-m", inct_job.__name__, "--run", str(run), "--case-id", case_id]))
            return self.chain(steps, run, on_success=lambda: self.load_inct(run, ct_node), scene_bound=True,
                              env=_module_path_env(), worker=self.warm_worker())
        if settings.paste_into_ct:   # in the job: Slicer's GUI thread only copies the CT and writes a box
            from LNSynthLib.segmentation import paste_results

            steps.append(Step("Pasting the samples into the CT", [], weight=0.5 * settings.n_samples, warm=True,
                              command=[self.python, "-m", paste_results.__name__, "--synthetic", str(run / "synthetic"),
                                       "--ct", str(inputs["ct"]), "--ln", str(inputs["ln"]),
                                       "--out", str(run / "pasted")]))
        return self.chain(steps, run, on_success=lambda: self.load_patch_results(
            run, ct_node, inputs["ln"] if settings.paste_into_ct else None), scene_bound=True,
            worker=self.warm_worker())

    def load_inct(self, run: Path, ct_node: object) -> object:
        """The run's in-CT results, listed, with the first one loaded (`InCTResults`)."""
        from .inct_results import InCTResults

        results = InCTResults(self.scene, run, ct_node)
        if not results.entries:
            raise InputDataError("in-CT sampling wrote no result", path=run, fix="see the log in the work folder")
        results.show(0)
        return results

    def load_patch_results(self, run: Path, ct_node: object, source_ln: Path | None = None) -> object:
        """The run's samples: with `results_on_demand` (the panel) a `PatchResults` listing them, the first
        one loaded; else every sample loaded (`load_synthetic`)."""
        from .synthesis_results import PASTED_FOLDER, PatchResults

        results = PatchResults(self.scene, run / "synthetic", ct_node, run / PASTED_FOLDER, source_ln)
        if not self.results_on_demand:
            return results.load_all()
        results.show(0)
        return results

    def load_synthetic(self, synthetic_root: Path, ct_node: object, source_ln: Path | None = None,
                       pasted_dir: Path | None = None) -> list:
        """Load every synthetic case folder; with `source_ln` (or the job's `pasted_dir`), also each
        sample pasted into the CT. The panel loads them one at a time instead (`load_patch_results`)."""
        from .synthesis_results import PatchResults

        return PatchResults(self.scene, synthetic_root, ct_node, pasted_dir, source_ln).load_all()

    # ------------------------------------------------------------------ nnU-Net
    def start_command(self, label: str, args: list[str], kind: str, on_success=None) -> JobChain:
        """Any other `lnsynth` command as one background step in its own run folder."""
        run = self.new_run_dir(kind)
        return self.chain([Step(label, [a.replace("{run}", str(run)) for a in args])], run,
                          on_success=None if on_success is None else (lambda: on_success(run)))

    def start_nnunet_export(self, project_dir: str | Path, cases_root: str | Path | None = None,
                            synthetic_root: str | Path | None = None, paste: bool = False,
                            qc: bool = True, overwrite: bool = False) -> JobChain:
        """`lnsynth nnunet export`: real + synthetic prepared cases → an nnU-Net v2 project folder.

        `overwrite`: replace a dataset an earlier export left there with other cases or settings (the
        panel asks first); without it such a second export is refused.

        Without `cases_root`, the cases made by this session's synthesis runs (in the work
        folder) are gathered into the export's run folder first. With `cases_root` (the training
        cases of *Add current case*) and no `synthetic_root`, this session's synthetic cases are
        gathered: without them the dataset the panel calls "real + synthetic" would be real-only.
        """
        run = self.new_run_dir("nnunet-export")
        if cases_root is None:
            cases_root, synthetic_root = self.gather_session_cases(run)
        elif synthetic_root is None:
            synthetic_root = self.gather_session_synthetic(run)
        args = ["nnunet", "export", "--cases", str(cases_root), "--out", str(project_dir)]
        if synthetic_root is not None:
            per_source = _synthetic_per_source(Path(synthetic_root))
            # Balanced: as many per real case as the least-sampled real case of this export has.
            real = {folder.name for folder in list_cases(Path(cases_root))}
            counts = [n for source, n in per_source.items() if source in real] or list(per_source.values())
            args += ["--synthetic", str(synthetic_root), "--synt-per-case", str(min(counts, default=1))]
        if paste:
            args.append("--paste")
        args.append("--qc" if qc else "--no-qc")
        if overwrite:
            args.append("--overwrite")
        return self.chain([Step("Exporting the nnU-Net dataset", args)], run)

    def gather_session_cases(self, run: Path) -> tuple[Path, Path | None]:
        """Copy the prepared real and synthetic case folders of finished synthesis runs into `run`.

        The runs' quality-control verdicts (qc.json) are merged into the gathered folder's qc.json.
        """
        real = run / "cases"
        self._gather("cases", real)
        if not real.is_dir():
            shutil.rmtree(run, ignore_errors=True)
            raise InputDataError("no prepared cases in this session's work folder", path=self.work_root,
                                 fix="run Synthesize first or choose a folder of prepared cases")
        return real, self.gather_session_synthetic(run)

    def gather_session_synthetic(self, run: Path) -> Path | None:
        """Copy the synthetic cases of finished synthesis runs into `run/synthetic` (None: there are none),
        with the runs' quality-control verdicts merged into its qc.json."""
        from LNSynthLib.qc.verdicts import merge_qc_files

        synthetic = run / "synthetic"
        runs = self._gather("synthetic", synthetic)
        if not synthetic.is_dir():
            return None
        merge_qc_files([source / "synthetic" for source in runs], synthetic)
        return synthetic

    def _gather(self, kind: str, target: Path) -> list[Path]:
        """Copy the `kind` case folders of this session's synthesis runs into `target`; returns the runs."""
        runs = sorted(self.work_root.glob("synthesis-*"))
        for source in runs:
            if not (source / kind).is_dir():
                continue
            for folder in list_cases(source / kind):
                if not (target / folder.name).exists():
                    shutil.copytree(folder, target / folder.name)
        return runs

    def start_nnunet_train(self, dataset_dir: str | Path, epochs: int, device: str = "auto", *,
                           iterations: int = 30, patch_size: Sequence[int] | None = None) -> JobChain:
        """`lnsynth nnunet train` in the background; `chain.result` is the trained model folder.

        `patch_size` (Z, Y, X): instead of nnU-Net's planned patch (`--patch-size`; a smaller patch makes
        CPU runs short).
        """
        args = nnunet_train_args(dataset_dir, epochs, iterations, device, patch_size)
        chain = self.start_command("Training nnU-Net", args, "nnunet-train")
        chain.resume_folder = Path(dataset_dir)   # `lnsynth nnunet train` resumes there (--c)
        chain.on_success = lambda: result_path(chain.state.events, "model_dir")
        return chain

    def start_nnunet_predict(self, ct_node: object, model_dir: str | Path, device: str = "auto") -> JobChain:
        """`lnsynth nnunet predict` on the current CT; the LN prediction appears as a segmentation."""
        ct = mb.node_to_volume(ct_node)
        run = self.new_run_dir("nnunet-predict")
        write_volume(ct, run / CT_FILE)
        out = run / "prediction.nii.gz"
        args = ["nnunet", "predict", "--model", str(model_dir), "--ct", str(run / CT_FILE), "--out", str(out),
                "--device", device]

        def load() -> object:
            node = mb.new_segmentation_node(self.scene, f"{ct_node.GetName()} nnU-Net lymph nodes")
            mb.set_segment_mask(node, LYMPH_NODE_SEGMENT_NAME, resample_onto(read_volume(out), ct, "nearest"),
                                mb.LYMPH_NODE_TERMINOLOGY, color=(0.9, 0.3, 0.1))
            node.SetReferenceImageGeometryParameterFromVolumeNode(ct_node)
            return node

        return self.chain([Step("nnU-Net prediction", args)], run, on_success=load, scene_bound=True)


def _module_path_env() -> dict[str, str]:
    """PYTHONPATH for a job step run as `-m LNSynthScene.<module>` (the folder holding this package)."""
    import os

    here = str(Path(__file__).resolve().parents[1])
    return {"PYTHONPATH": os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)}


def _synthetic_per_source(synthetic_root: Path) -> dict[str, int]:
    """How many synthetic cases each source case has (from their case.json)."""
    counts: dict[str, int] = {}
    for folder in list_cases(synthetic_root):
        source = read_meta(folder).get("source_case", "")
        counts[source] = counts.get(source, 0) + 1
    return counts


def _safe_id(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_")
    return cleaned or "case"
