"""One browser session's work: its own work folder, its nodes, and the panel's actions on `SceneLogic`.

No trame here: every action is a call into the panel's scene logic (`LNSynthModuleLib.logic`), so the
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
from ..logic import SceneLogic, SynthesisSettings
from .paths import CHECKPOINT_SUFFIXES, ServerPaths
from .uploads import DEFAULT_MAX_UPLOAD_MB, discard_upload, write_upload


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
                 data_roots: Sequence[str | Path] = (), max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 2**20) -> None:
        self.folder = new_session_folder(work_root)
        self.paths = ServerPaths(self.folder, data_roots)
        self.max_upload_bytes = max_upload_bytes
        self.logic = SceneLogic(scene, self.folder, python=python)
        self.nodes = SessionNodes()

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
        self.nodes.ct, self.nodes.anatomy, self.nodes.lymph_nodes = node, None, None
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
        self.nodes.anatomy = self.logic.anatomy_from_totalseg_file(self.require_ct(), totalseg)
        return self.nodes.anatomy

    def set_anatomy(self, node: object) -> None:
        self.nodes.anatomy = node

    # ------------------------------------------------------------------ lymph nodes
    def lymph_node_segment(self) -> tuple[object, str]:
        """The session's LN segmentation and its `lymph node` segment id (created when missing)."""
        node, segment_id = self.logic.lymph_node_segmentation(self.require_ct(), self.nodes.lymph_nodes)
        self.nodes.lymph_nodes = node
        return node, segment_id

    def painted_voxels(self) -> int:
        if self.nodes.lymph_nodes is None or self.nodes.ct is None:
            return 0
        ct = mb.node_to_volume(self.nodes.ct)
        return int(mb.segment_to_mask(self.nodes.lymph_nodes, LYMPH_NODE_SEGMENT_NAME, ct).array.sum())

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

    def start_synthesis(self, settings: SynthesisSettings) -> JobChain:
        checkpoint = self.paths.file(settings.checkpoint, "LN-DDPM checkpoint", CHECKPOINT_SUFFIXES)
        return self.logic.start_synthesis(*self.require_inputs(), dataclasses.replace(settings, checkpoint=checkpoint))

    # ------------------------------------------------------------------ nnU-Net
    def start_nnunet_export(self, paste: bool, qc: bool = True) -> JobChain:
        self.nodes.nnunet_dataset = self.folder / "nnunet"
        return self.logic.start_nnunet_export(self.nodes.nnunet_dataset, paste=paste, qc=qc)

    def start_nnunet_train(self, dataset: str | None, epochs: int, iterations: int, device: str) -> JobChain:
        dataset_dir = self.paths.folder(dataset, "nnU-Net dataset folder") if dataset else self.nodes.nnunet_dataset
        if dataset_dir is None:
            raise InputDataError("no nnU-Net dataset", fix="export one first (Export dataset) or give its folder")
        return self.logic.start_nnunet_train(dataset_dir, epochs, device, iterations=iterations)

    def start_nnunet_predict(self, model: str | None, device: str) -> JobChain:
        model_dir = self.paths.folder(model, "nnU-Net model folder") if model else self.nodes.nnunet_model
        if model_dir is None:
            raise InputDataError("no nnU-Net model", fix="train one first (Train nnU-Net) or give its folder")
        return self.logic.start_nnunet_predict(self.require_ct(), model_dir, device)

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
