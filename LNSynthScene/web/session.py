"""One browser session's work: its own work folder, its nodes, and the panel's actions on `SceneLogic`.

No trame here: every action is a call into the panel's scene logic (`LNSynthScene.logic`), so the
web app and the Slicer panel share one implementation of every step; this class only remembers which
nodes the session works on (the panel keeps them in its parameter node).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from LNSynthLib.anatomy.groups import LYMPH_NODE_SEGMENT_NAME
from LNSynthLib.errors import InputDataError
from LNSynthLib.jobs.chain import JobChain

from .. import mrml_bridge as mb
from ..inct_results import InCTResults
from ..logic import SceneLogic, SynthesisSettings
from .memory import ANATOMY_FILE, NODES_FILE, SessionMemory
from .paths import CHECKPOINT_SUFFIXES, ServerPaths
from .uploads import DEFAULT_MAX_UPLOAD_MB, discard_upload, write_upload


def set_layer_visible(node: object | None, visible: bool) -> None:
    """Show or hide a segmentation (or volume) node in every view."""
    if node is None:
        return
    display = node.GetDisplayNode()
    if display is not None:
        display.SetVisibility(bool(visible))


def new_session_folder(work_root: str | Path) -> Path:
    """A fresh `<work>/session-<time>-<pid>-<n>` folder: sessions never share a folder."""
    root = Path(work_root)
    stamp = f"session-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    for i in range(1000):
        folder = root / f"{stamp}-{i}"
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    raise InputDataError("cannot create a session folder", path=root, fix="clean up old sessions")


def reopened_folder(work_root: str | Path, folder: str | Path) -> Path:
    """An ended session's folder, to go on working in it: only an existing `session-*` folder of `work_root`
    (the launcher names it; still checked, the folder becomes a readable root of the page)."""
    root, path = Path(work_root).resolve(), Path(folder).resolve()
    if path.parent != root or not path.name.startswith("session-") or not path.is_dir():
        raise InputDataError("not a session folder of this server", path=folder,
                             fix="reopen a session from the list at / (or /sessions)")
    return path


@dataclass
class SynthResult:
    """One synthetic sample as the page shows it: the full CT with the node pasted, and its QC verdict."""

    name: str                 # the sample's case folder (`<case>_synt_<k>`, in-CT `<case>_inct_<k>`)
    ct: object | None         # the CT with the synthetic node in it (the original CT's grid); in-CT: None
    segmentation: object | None   # until loaded (one in-CT result is in the scene at a time)
    patch: object | None      # the sampled patch's own nodes (hidden: the pasted CT holds it)
    qc_passed: bool | None    # None: not scored (Quality control off, or in-CT: no quality control)
    qc_reasons: tuple[str, ...] = ()
    changed_voxels: int | None = None   # in-CT: the voxels of the user's CT the synthesis changed

    @property
    def label(self) -> str:
        if self.changed_voxels is not None:
            return f"{self.name} (in the CT: {self.changed_voxels} voxels changed)"
        verdict = {None: "not scored", True: "QC passed"}.get(self.qc_passed, "rejected by quality control")
        return f"{self.name} ({verdict})"


@dataclass
class SessionNodes:
    """What the panel's parameter node holds: the nodes and paths the next action uses."""

    ct: object | None = None
    anatomy: object | None = None
    lymph_nodes: object | None = None
    checkpoint: Path | None = None
    nnunet_dataset: Path | None = None
    nnunet_model: Path | None = None


class WebSession:
    """The panel's actions for one session; each `start_*` returns the running `JobChain`.

    Every path the page names goes through `self.paths`: only this session's folder and the
    server's data folders (`lnsynth serve --data`) can be read.
    """

    def __init__(self, scene: object, work_root: str | Path, python: str | None = None,
                 data_roots: Sequence[str | Path] = (), max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 2**20,
                 folder: str | Path | None = None) -> None:
        """`folder`: an ended session's folder to reopen (its files stay usable), else a new one."""
        self.folder = reopened_folder(work_root, folder) if folder else new_session_folder(work_root)
        self.reopened = folder is not None
        self.memory = SessionMemory(self.folder)   # what a reopened session comes back to
        self._remembered_anatomy: object | None = None
        self.paths = ServerPaths(self.folder, data_roots)
        self.max_upload_bytes = max_upload_bytes
        self.logic = SceneLogic(scene, self.folder, python=python)
        self.nodes = SessionNodes()
        self.layers: list[object] = []        # segmentations drawn on the current CT (anatomy, nodes, prediction)
        self.results: list[SynthResult] = []  # the last synthesis of the current CT
        self.inct: InCTResults | None = None  # in-CT mode: those results, loaded one at a time
        self._synthesis_run: Path | None = None

    @property
    def scene(self) -> object:
        return self.logic.scene

    @property
    def cases_root(self) -> Path:
        return self.folder / "cases"

    def require_ct(self) -> object:
        if self.nodes.ct is None:
            raise InputDataError("no CT loaded", fix="load a CT first (Load CT: a file path on the server or upload)")
        return self.nodes.ct

    # ------------------------------------------------------------------ load
    def load_ct(self, path: str | Path, name: str | None = None) -> object:
        """Load a CT (NIfTI/NRRD...) as the session's CT; a new CT starts a new anatomy and LN segmentation."""
        path = self.paths.file(path, "CT file")
        stem = path.name.split(".")[0]
        node = mb.load_volume_file(self.scene, path, name or stem)
        for layer in self.layers:
            set_layer_visible(layer, False)   # the old CT's overlays would be drawn, misaligned, on the new one
        self.drop_results()
        self.layers = []
        self.nodes.ct, self.nodes.anatomy, self.nodes.lymph_nodes = node, None, None
        self.memory.note(ct=path, anatomy=None, lymph_nodes=None)
        return node

    @property
    def upload_folder(self) -> Path:
        return self.folder / "uploads"

    def load_upload(self, files: list[dict] | None) -> object:
        """Write an uploaded CT (base name only, size-capped) and load it; a file that fails is removed."""
        path = None
        try:
            path = write_upload(files, self.upload_folder, self.max_upload_bytes)
            return self.load_ct(path)
        except BaseException:
            discard_upload(path, self.upload_folder)
            raise

    # ------------------------------------------------------------------ anatomy
    def start_anatomy(self, method: str, device: str, weights_dir: str | None) -> JobChain:
        weights = self.paths.optional_folder(weights_dir, "TotalSegmentator weights folder")
        return self.logic.start_anatomy(self.require_ct(), method, device, weights)

    def anatomy_from_totalseg_file(self, path: str | Path) -> object:
        totalseg = self.paths.file(path, "TotalSegmentator file")
        self.set_anatomy(self.logic.anatomy_from_totalseg_file(self.require_ct(), totalseg))
        return self.nodes.anatomy

    def set_anatomy(self, node: object, remember: bool = True) -> None:
        """The CT's anatomy; an earlier one (coarse, then a TotalSegmentator file) is hidden, not stacked.

        `remember`: its labels go to the session folder, for a reopened session.
        """
        from ..logic import ANATOMY_NAMES

        old = self.nodes.anatomy
        if old is not None and old is not node and old in self.layers:
            set_layer_visible(old, False)
            self.layers.remove(old)
        self.nodes.anatomy = node
        self.add_layer(node)
        if remember and self.nodes.ct is not None and self._remembered_anatomy is not node:
            self._remembered_anatomy = node
            labels = mb.segmentation_to_labels(node, ANATOMY_NAMES, self.nodes.ct)
            self.memory.note(anatomy=self.memory.save_labels(ANATOMY_FILE, labels))

    def remember_painted(self) -> None:
        """The painted nodes to the session folder (a job starts, the brush stops), for a reopened session."""
        if self.nodes.lymph_nodes is None or self.nodes.ct is None:
            return
        mask = mb.segment_to_mask(self.nodes.lymph_nodes, LYMPH_NODE_SEGMENT_NAME, self.nodes.ct)
        self.memory.note(lymph_nodes=self.memory.save_labels(NODES_FILE, mask))

    def restore(self) -> str:
        """Back to what the session noted before it ended: its CT, anatomy, painted nodes, checkpoint and
        nnU-Net folders (each path read through `self.paths`, like one typed into the page). Returns what came back."""
        notes = self.memory.read()
        anatomy, nodes = self.memory.labels("anatomy"), self.memory.labels("lymph_nodes")
        restored = []
        if notes.get("ct"):
            ct = self.load_ct(notes["ct"])
            restored.append(f"the CT {ct.GetName()}")
            shape = tuple(ct.GetImageData().GetDimensions())[::-1]
            if anatomy is not None and anatomy.shape == shape:
                node = self.logic.anatomy_from_labels(anatomy, f"{ct.GetName()} anatomy")
                self.set_anatomy(node, remember=False)
                restored.append(f"its anatomy ({len(mb.segment_names(node))} groups)")
            if nodes is not None and nodes.shape == shape and nodes.array.any():
                segmentation, _ = self.logic.lymph_node_segmentation(ct)
                mb.set_segment_mask(segmentation, LYMPH_NODE_SEGMENT_NAME, nodes, mb.LYMPH_NODE_TERMINOLOGY,
                                    color=(0.9, 0.8, 0.1))
                self.nodes.lymph_nodes = segmentation
                self.add_layer(segmentation)
                restored.append(f"{int((nodes.array > 0).sum())} painted voxels")
            self.memory.note(anatomy=notes.get("anatomy") if anatomy is not None else None,
                             lymph_nodes=notes.get("lymph_nodes") if nodes is not None else None)
        if notes.get("checkpoint"):
            self.set_checkpoint(self.paths.file(notes["checkpoint"], "LN-DDPM checkpoint", CHECKPOINT_SUFFIXES))
            restored.append("the checkpoint")
        for key, what in (("nnunet_dataset", "nnU-Net dataset folder"), ("nnunet_model", "nnU-Net model folder")):
            if notes.get(key):
                setattr(self.nodes, key, self.paths.folder(notes[key], what))
                restored.append(what.removesuffix(" folder"))
        return ", ".join(restored)

    def add_layer(self, node: object) -> None:
        if node is not None and node not in self.layers:
            self.layers.append(node)

    # ------------------------------------------------------------------ lymph nodes
    def lymph_node_segment(self) -> tuple[object, str]:
        """The session's LN segmentation and its `lymph node` segment id (created when missing)."""
        node, segment_id = self.logic.lymph_node_segmentation(self.require_ct(), self.nodes.lymph_nodes)
        self.nodes.lymph_nodes = node
        self.add_layer(node)
        return node, segment_id

    def painted_voxels(self) -> int:
        return self.painted()[0]

    def painted(self) -> tuple[int, float | None]:
        """(voxels, mean HU) of the painted lymph-node segment on the CT; (0, None) before any paint."""
        if self.nodes.lymph_nodes is None or self.nodes.ct is None:
            return 0, None
        ct = mb.node_to_volume(self.nodes.ct)
        mask = mb.segment_to_mask(self.nodes.lymph_nodes, LYMPH_NODE_SEGMENT_NAME, ct).array > 0
        n = int(mask.sum())
        return n, (float(ct.array[mask].mean()) if n else None)

    def paint_warning(self) -> str:
        """A warning when the painted region's mean HU is not a lymph node's (fat, vessel with contrast, bone).

        Quality control takes its node HU band from the painted nodes themselves, so it would not catch it.
        """
        from LNSynthLib.phantom.parameters import NODE_HU_RANGE

        n, mean = self.painted()
        lo, hi = NODE_HU_RANGE
        if not n or lo <= mean <= hi:
            return ""
        what = "fat" if mean < -30 else "not soft tissue" if mean < lo else "denser than a node"
        return (f"The painted region averages {mean:.0f} HU ({what}); lymph nodes are {lo:.0f}-{hi:.0f} HU. "
                "Paint on the node itself (Window: Abdomen shows it), or Undo the stroke.")

    # ------------------------------------------------------------------ LN-DDPM
    def require_inputs(self) -> tuple[object, object, object]:
        ct = self.require_ct()
        if self.nodes.anatomy is None:
            raise InputDataError("no anatomy for this CT", fix="create the anatomy first (Create anatomy)")
        if self.nodes.lymph_nodes is None:
            raise InputDataError("no lymph nodes painted", fix="paint at least one node (Paint)")
        return ct, self.nodes.anatomy, self.nodes.lymph_nodes

    def start_training_case(self) -> JobChain:
        return self.logic.start_training_case(*self.require_inputs(), self.cases_root)

    def start_ddpm_training(self, config: str, iterations: int | None, device: str) -> JobChain:
        config = self.paths.config(config)
        run_dir = self.folder / f"ln_ddpm_{Path(config).stem or 'config'}"
        return self.logic.start_ddpm_training(self.cases_root, run_dir, config, iterations or None, device)

    def set_checkpoint(self, checkpoint: str | Path | None) -> None:
        self.nodes.checkpoint = Path(checkpoint) if checkpoint else None
        self.memory.note(checkpoint=self.nodes.checkpoint)

    def set_nnunet_model(self, model_dir: str | Path) -> None:
        self.nodes.nnunet_model = Path(model_dir)
        self.memory.note(nnunet_model=self.nodes.nnunet_model)

    def start_synthesis(self, settings: SynthesisSettings) -> JobChain:
        """Synthesis; in-CT mode (the panel's default) returns the user's CT with the painted nodes synthesized
        into it, patch mode pastes every sample into the CT, so the page shows either in the full CT."""
        checkpoint = self.paths.file(settings.checkpoint, "LN-DDPM checkpoint", CHECKPOINT_SUFFIXES)
        chain = self.logic.start_synthesis(*self.require_inputs(), dataclasses.replace(
            settings, checkpoint=checkpoint, paste_into_ct=True))
        self._synthesis_run = chain.run_dir
        return chain

    def drop_results(self) -> None:
        """An earlier synthesis: patch samples hidden (still in the scene), the in-CT result shown removed."""
        for result in self.results:
            set_layer_visible(result.segmentation, False)
            set_layer_visible(result.patch, False)
        if self.inct is not None:
            self.inct.clear()
        self.results, self.inct = [], None

    def set_inct_results(self, results: InCTResults) -> list[SynthResult]:
        """The in-CT results of the finished synthesis (`SceneLogic.load_inct`: listed, the first loaded)."""
        self.drop_results()
        self.inct = results
        self.results = [SynthResult(e.name, None, None, None, None, changed_voxels=e.changed_voxels)
                        for e in results.entries]
        return self.results

    def result(self, index: int) -> SynthResult:
        """Result `index` with its nodes in the scene; an in-CT result is loaded in place of the one shown
        (a full-size copy of the CT each: one at a time, as in the panel)."""
        if not 0 <= index < len(self.results):
            raise InputDataError("no synthetic result to show", fix="run Synthesize first (section 5)")
        result = self.results[index]
        if self.inct is not None:
            shown = self.inct.show(index)
            for other in self.results:
                other.ct = other.segmentation = None
            result.ct, result.segmentation = shown.ct, shown.segmentation
        return result

    def focus_ras(self) -> tuple[float, float, float] | None:
        """Where the views jump to for an in-CT result: the painted nodes' centre (RAS)."""
        from ..inct_results import node_center_ras

        return node_center_ras(self.inct) if self.inct is not None else None

    def set_results(self, loaded: list) -> list[SynthResult]:
        """The samples of the finished synthesis (patch and pasted nodes, as `load_synthetic` returns them)."""
        from LNSynthLib.qc.verdicts import read_qc

        self.drop_results()   # an earlier synthesis of this CT
        qc = read_qc(self._synthesis_run / "synthetic") if self._synthesis_run else None
        verdicts = qc["samples"] if qc else {}
        patches = {case.case_id: case for case in loaded if not case.case_id.endswith("_pasted")}
        self.results = []
        for case in loaded:
            if not case.case_id.endswith("_pasted"):
                continue
            name = case.case_id.removesuffix("_pasted")
            verdict = verdicts.get(name)
            patch = patches.get(name)
            if patch is not None:
                set_layer_visible(patch.segmentation, False)   # the pasted CT's segmentation shows the same node
            self.results.append(SynthResult(name, case.ct, case.segmentation, patch.ct if patch else None,
                                            None if verdict is None else bool(verdict["passed"]),
                                            tuple(verdict.get("reasons", ())) if verdict else ()))
        return self.results

    def write_result(self, index: int) -> tuple[str, bytes]:
        """(file name, zip bytes) of sample `index`: its full CT and lymph-node mask as a NIfTI pair."""
        import io
        import zipfile

        from LNSynthLib.cases import CT_FILE, LN_FILE
        from LNSynthLib.volumes.io import write_volume

        if not 0 <= index < len(self.results):
            raise InputDataError("no synthetic result to download", fix="run Synthesize first (section 5)")
        result = self.result(index)
        ct = mb.node_to_volume(result.ct)
        folder = self.folder / "downloads" / result.name
        write_volume(ct, folder / CT_FILE)
        write_volume(mb.segment_to_mask(result.segmentation, LYMPH_NODE_SEGMENT_NAME, ct), folder / LN_FILE)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:   # .nii.gz is compressed already
            for name in (CT_FILE, LN_FILE):
                archive.write(folder / name, f"{result.name}/{name}")
        return f"{result.name}.zip", buffer.getvalue()

    # ------------------------------------------------------------------ nnU-Net
    def start_nnunet_export(self, paste: bool, qc: bool = True, overwrite: bool = False) -> JobChain:
        """Export this session's cases; `overwrite`: a new export replaces the session's earlier dataset."""
        self.nodes.nnunet_dataset = self.folder / "nnunet"
        self.memory.note(nnunet_dataset=self.nodes.nnunet_dataset)
        return self.logic.start_nnunet_export(self.nodes.nnunet_dataset, paste=paste, qc=qc, overwrite=overwrite)

    def start_nnunet_train(self, dataset: str | None, epochs: int, iterations: int, device: str,
                           patch_size: Sequence[int] | None = None) -> JobChain:
        dataset_dir = self.paths.folder(dataset, "nnU-Net dataset folder") if dataset else self.nodes.nnunet_dataset
        if dataset_dir is None:
            raise InputDataError("no nnU-Net dataset", fix="export one first (Export dataset) or give its folder")
        return self.logic.start_nnunet_train(dataset_dir, epochs, device, iterations=iterations,
                                             patch_size=patch_size)

    def start_nnunet_predict(self, model: str | None, device: str) -> JobChain:
        model_dir = self.paths.folder(model, "nnU-Net model folder") if model else self.nodes.nnunet_model
        if model_dir is None:
            raise InputDataError("no nnU-Net model", fix="train one first (Train nnU-Net) or give its folder")
        return self.logic.start_nnunet_predict(self.require_ct(), model_dir, device)

    def set_prediction(self, node: object) -> None:
        self.add_layer(node)

    # ------------------------------------------------------------------ what the scene holds
    def scene_rows(self) -> list[dict[str, str]]:
        """Volumes and segmentations of the scene, with segment names (shown in the panel)."""
        rows = []
        for cls, kind in (("vtkMRMLScalarVolumeNode", "volume"), ("vtkMRMLSegmentationNode", "segmentation")):
            for i in range(self.scene.GetNumberOfNodesByClass(cls)):
                node = self.scene.GetNthNodeByClass(i, cls)
                if node.GetHideFromEditors() or node.IsA("vtkMRMLLabelMapVolumeNode"):
                    continue
                detail = ""
                if kind == "segmentation":
                    detail = ", ".join(mb.segment_names(node))
                else:
                    detail = "×".join(str(n) for n in node.GetImageData().GetDimensions()) if node.GetImageData() else ""
                rows.append({"id": node.GetID(), "name": node.GetName(), "kind": kind, "detail": detail})
        return rows
