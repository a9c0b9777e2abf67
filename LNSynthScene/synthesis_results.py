"""Patch-mode synthesis results in the scene: listed at once, loaded one at a time.

A synthesis makes up to 100 samples. Each is a small patch (its CT and lymph-node mask at its
physical place) and, with *Paste into CT*, the full CT with the patch blended in. Loading all of
them used to paste each one in Slicer's GUI thread (three full-grid resamplings and a float32 copy
of the CT per sample) and keep every pasted CT: a freeze of minutes and gigabytes on a real CT.
Now the job pastes (`LNSynthLib.segmentation.paste_results` writes, per sample, the box of the CT
grid the paste changed and the pasted mask cropped to its nodes), and `PatchResults.show(k)` loads
sample k only, in place of the one shown before: its patch, and its pasted CT built from the CT node
the user already has (one copy at the CT's own voxel type plus the box). Memory: one pasted CT,
whatever the number of samples.

The same interface as the in-CT results (`names`, `entries`, `show`, `clear`, `forget`, `original`,
`folder`), so the panel lists and switches both alike. Qt-free: Slicer's scene or a slicer-core one.

Slicer facts relied on (v5.10.0 and v5.12.3, `Libs/MRML/Core`): `vtkMRMLVolumeNode::CopyOrientation`
copies spacing, origin and IJK-to-RAS directions (`vtkMRMLVolumeNode.h:72`); the pasted CT gets the
original's window through `inct_results._same_window` (its display node made before its voxels, so no
automatic-window histogram of a whole CT is computed; the source lines are in `inct_results`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from LNSynthLib.anatomy.groups import LYMPH_NODE_SEGMENT_NAME
from LNSynthLib.cases import CT_FILE, LN_FILE, list_cases
from LNSynthLib.errors import InputDataError
from LNSynthLib.segmentation.paste_results import MANIFEST
from LNSynthLib.volumes.geometry import Geometry, Volume

from . import mrml_bridge as mb
from .inct_results import _same_window
from .inct_results import remove_nodes as _remove

PASTED_FOLDER = "pasted"   # <run>/pasted: what the job's paste step wrote
LN_COLOR = (0.9, 0.8, 0.1)


@dataclass(frozen=True)
class PatchEntry:
    """One sample of the run: its case folder and, when pasted, the job's box and mask."""

    name: str
    folder: Path
    change: Path | None          # the pasted values on the CT grid's changed box (None: not pasted)
    ln: Path | None              # the pasted lymph-node mask, cropped to its nodes
    changed_voxels: int


class PatchResults:
    """The samples of one patch-mode synthesis; `show(k)` loads sample k in place of the one shown.

    `pasted_dir`: the job's paste step output (`paste_results`). Without it but with `source_ln`, a
    sample is pasted when it is loaded (on its box only).
    """

    def __init__(self, scene: object, synthetic_root: str | Path, original: object,
                 pasted_dir: str | Path | None = None, source_ln: str | Path | None = None) -> None:
        self.scene = scene
        self.original = original
        self.folder = Path(synthetic_root)
        self.source_ln = Path(source_ln) if source_ln else None
        self.source: dict | None = None
        pasted: dict[str, dict] = {}
        manifest = Path(pasted_dir) / MANIFEST if pasted_dir else None
        if manifest is not None and manifest.is_file():
            data = json.loads(manifest.read_text(encoding="utf-8"))
            self.source = data["source"]
            pasted = {e["name"]: e for e in data["results"]}
        folders = list_cases(self.folder)
        if not folders:
            raise InputDataError("sampling wrote no synthetic case", path=self.folder,
                                 fix="see the log in the work folder")
        self.entries: list[PatchEntry] = []
        for folder in folders:
            e = pasted.get(folder.name, {})
            self.entries.append(PatchEntry(
                folder.name, folder, Path(pasted_dir) / e["ct"] if e.get("ct") else None,
                Path(pasted_dir) / e["ln"] if e.get("ln") else None, int(e.get("changed_voxels", 0))))
        self.shown: mb.CaseNodes | None = None       # the pasted CT when pasted, else the patch
        self.shown_index: int | None = None
        self.shown_nodes: list[mb.CaseNodes] = []

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    @property
    def pasted(self) -> bool:
        return self.source is not None or self.source_ln is not None

    @property
    def nodes_file(self) -> Path | None:
        """The shown sample's lymph-node mask, pasted or the patch's own (where the views jump to)."""
        if self.shown_index is None:
            return None
        entry = self.entries[self.shown_index]
        return entry.ln or entry.folder / LN_FILE

    def show(self, index: int) -> mb.CaseNodes:
        """Load sample `index` and remove the one shown before; returns the pasted CT's nodes
        (the patch's when not pasted)."""
        if self.shown_index == index and self.shown is not None:
            return self.shown
        self.clear()
        self.shown_nodes = self.load(index)
        self.shown, self.shown_index = self.shown_nodes[-1], index
        return self.shown

    def load(self, index: int) -> list[mb.CaseNodes]:
        """Sample `index` into the scene (kept until removed): its patch, and its pasted CT when pasted."""
        entry = self.entries[index]
        base = self.original.GetName()
        loaded = [mb.load_case_folder(self.scene, entry.folder, None, LYMPH_NODE_SEGMENT_NAME,
                                      name_prefix=f"{base} synthetic {index}")]
        try:
            if self.pasted:
                loaded.append(self._pasted_nodes(index, f"{base} + synthetic {index}"))
        except Exception:
            _remove(self.scene, [n for case in loaded for n in (case.segmentation, case.ct)])
            raise
        return loaded

    def load_all(self) -> list[mb.CaseNodes]:
        """Every sample (patch, then pasted), as `SceneLogic.load_synthetic` returned them."""
        return [nodes for k in range(len(self.entries)) for nodes in self.load(k)]

    def clear(self) -> None:
        """Remove the shown sample's nodes."""
        _remove(self.scene, [n for case in self.shown_nodes for n in (case.segmentation, case.ct)])
        self.shown, self.shown_index, self.shown_nodes = None, None, []

    def forget(self) -> None:
        """The scene was closed (its nodes are gone with it): keep no reference to them."""
        self.shown, self.shown_index, self.shown_nodes, self.original = None, None, [], None

    # ------------------------------------------------------------------ the pasted CT
    def _pasted_box(self, index: int) -> tuple[Volume, Volume | None]:
        """(pasted values on the changed box, pasted LN mask cropped to its nodes) of sample `index`."""
        from LNSynthLib.volumes.io import read_volume

        entry = self.entries[index]
        if entry.change is not None:
            return read_volume(entry.change), read_volume(entry.ln) if entry.ln is not None else None
        from LNSynthLib.segmentation.paste_results import paste_sample

        sample = paste_sample(mb.node_to_volume(self.original), read_volume(self.source_ln),
                              read_volume(entry.folder / CT_FILE), read_volume(entry.folder / LN_FILE))
        return sample.ct_box, sample.ln

    def _check_original(self) -> None:
        if self.original is None or self.original.GetScene() is None or self.original.GetImageData() is None:
            raise InputDataError("the CT these samples were synthesized from is no longer in the scene",
                                 path=self.folder, fix="load that CT again and synthesize")
        if self.source is None:
            return
        expected = Geometry(tuple(self.source["spacing"]), tuple(self.source["origin"]),
                            tuple(self.source["direction"]))
        shape = tuple(self.original.GetImageData().GetDimensions())[::-1]
        if shape != tuple(self.source["shape_zyx"]) or not mb.node_geometry(self.original).isclose(expected):
            raise InputDataError(f"'{self.original.GetName()}' is no longer on the grid it was synthesized on",
                                 path=self.folder, fix="synthesize again from the CT as it is now")

    def _pasted_nodes(self, index: int, name: str) -> mb.CaseNodes:
        import vtk
        from vtk.util import numpy_support

        self._check_original()
        box, ln = self._pasted_box(index)
        node = self.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", self.scene.GenerateUniqueName(name))
        segmentation = None
        try:
            image = vtk.vtkImageData()
            image.DeepCopy(self.original.GetImageData())
            node.CopyOrientation(self.original)
            dims = image.GetDimensions()
            voxels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(dims[::-1])
            start = np.rint(mb.node_geometry(self.original).physical_to_index(
                np.asarray(box.geometry.origin))[::-1]).astype(int)
            where = tuple(slice(int(s), int(s) + n) for s, n in zip(start, box.shape, strict=True))
            values = box.array
            if np.issubdtype(voxels.dtype, np.integer):   # the CT's own type: rounded, half the memory of float32
                info = np.iinfo(voxels.dtype)
                values = np.clip(np.rint(values), info.min, info.max)
            voxels[where] = values.astype(voxels.dtype, copy=False)
            image.Modified()
            _same_window(self.scene, self.original, node)   # before the voxels: no histogram of a whole CT
            node.SetAndObserveImageData(image)
            segmentation = mb.new_segmentation_node(self.scene, f"{name} segmentation")
            mask = ln if ln is not None else Volume(np.zeros((1, 1, 1), np.uint8), box.geometry)
            mb.set_segment_mask(segmentation, LYMPH_NODE_SEGMENT_NAME, mask, mb.LYMPH_NODE_TERMINOLOGY,
                                color=LN_COLOR)
            segmentation.SetReferenceImageGeometryParameterFromVolumeNode(node)
        except Exception:
            _remove(self.scene, [segmentation, node])
            raise
        return mb.CaseNodes(f"{self.entries[index].name}_pasted", node, segmentation)

