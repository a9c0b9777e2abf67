"""In-CT results in the scene: listed at once, loaded one at a time, shown side by side with the original.

A result is the user's full CT with the painted nodes synthesized into it. Up to 100 full-size copies
would not fit in memory and would freeze Slicer while they load, so a finished synthesis lists its
results and loads only the first; choosing another one replaces it (at most one result CT in the
scene). A result is built from the CT node the user already has: a copy of its voxels plus the small
box the job changed (`inct_job`), so loading reads no full-size file.

Qt-free: works on Slicer's scene and on a slicer-core one (tests). Slicer facts relied on (v5.10.0
and v5.12.3, `Libs/MRML`):
- `vtkMRMLLayoutNode::SlicerLayoutSideBySideView` (= 29, `Core/vtkMRMLLayoutNode.h:151`) is Red and
  Yellow, both with `orientation` Axial as an `action="default"` property
  (`Logic/vtkMRMLLayoutLogic.cxx:692` / `:693`), which is applied only to a view created by that
  layout (`:1902-1917` at v5.12.3): an existing Yellow view stays Sagittal, so its orientation is set here.
- The layout manager follows the layout node's `ViewArrangement` (`Widgets/qMRMLLayoutManager.cxx:418`
  / `:428`, `onLayoutNodeModifiedEvent`).
- The slice controller's link button sets `LinkedControl` on every slice composite node
  (`Widgets/qMRMLSliceControllerWidget.cxx:1905-1915` / `:1902-1912`); `vtkMRMLSliceLinkLogic` then copies
  a view's slice position to the views of the same orientation and view group while the user interacts,
  and copies background volumes only during a volume-selector interaction (`Logic/vtkMRMLSliceLinkLogic.cxx`
  `OnMRMLNodeModified`, `BroadcastSliceCompositeNodeEvent`), so the two backgrounds set here stay apart.
- A scalar volume display node computes its automatic window (a histogram of every voxel) only while
  `AutoWindowLevel` or `AutoThreshold` is on (`Core/vtkMRMLScalarVolumeDisplayNode.cxx:818-824` at v5.12.3,
  `:798-800` at v5.10.0); `CreateDefaultDisplayNodes` makes one with it on (`Core/vtkMRMLScalarVolumeNode.cxx:159-179`).
- `vtkMRMLSliceLogic::GetSliceCompositeNode(sliceNode)` (`Logic/vtkMRMLSliceLogic.h:355`),
  `vtkMRMLSliceNode::JumpAllSlices(scene, r, a, s, mode)` (`Core/vtkMRMLSliceNode.h:385`),
  `vtkMRMLVolumeNode::CopyOrientation` (`Core/vtkMRMLVolumeNode.h:72`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from LNSynthLib.anatomy.groups import LYMPH_NODE_SEGMENT_NAME
from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.geometry import Geometry

from . import mrml_bridge as mb
from .inct_job import MANIFEST, RESULTS_FOLDER


@dataclass(frozen=True)
class InCTEntry:
    """One result of the run, as the job listed it."""

    name: str
    change: Path | None        # the changed box on the user's grid (None: the sample changed nothing)
    changed_voxels: int


def remove_nodes(scene: object, nodes: list) -> None:
    """Remove `nodes` with their display and storage nodes (nothing of them stays in the scene)."""
    for node in nodes:
        if node is None or node.GetScene() is None:
            continue
        parts = [node.GetNthDisplayNode(i) for i in range(node.GetNumberOfDisplayNodes())]
        parts.append(node.GetStorageNode() if hasattr(node, "GetStorageNode") else None)
        scene.RemoveNode(node)
        for part in parts:
            if part is not None and part.GetScene() is not None:
                scene.RemoveNode(part)


class InCTResults:
    """The in-CT results of one synthesis run; `show(k)` loads result k in place of the one shown."""

    def __init__(self, scene: object, run_dir: str | Path, original: object) -> None:
        self.scene = scene
        self.original = original
        self.folder = Path(run_dir) / RESULTS_FOLDER
        manifest = json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))
        self.source = manifest["source"]
        self.nodes_file = self.folder / manifest["nodes"] if manifest.get("nodes") else None
        self.entries = [InCTEntry(e["name"], self.folder / e["change"] if e.get("change") else None,
                                  int(e.get("changed_voxels", 0))) for e in manifest["results"]]
        self.shown: mb.CaseNodes | None = None
        self.shown_index: int | None = None

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def show(self, index: int) -> mb.CaseNodes:
        """Load result `index` (the CT and the node's segment) and remove the one shown before."""
        entry = self.entries[index]
        if self.shown_index == index and self.shown is not None:
            return self.shown
        self.clear()
        base = self.original.GetName()
        ct = self._result_volume(f"{base} in-CT {index}", entry)
        segmentation = None
        try:
            if self.nodes_file is not None and self.nodes_file.exists():
                from LNSynthLib.volumes.io import read_volume

                segmentation = mb.new_segmentation_node(self.scene, f"{base} in-CT {index} lymph nodes")
                mb.set_segment_mask(segmentation, LYMPH_NODE_SEGMENT_NAME, read_volume(self.nodes_file),
                                    mb.LYMPH_NODE_TERMINOLOGY, color=(0.9, 0.8, 0.1))
                segmentation.SetReferenceImageGeometryParameterFromVolumeNode(ct)
        except Exception:
            remove_nodes(self.scene, [segmentation, ct])
            raise
        self.shown, self.shown_index = mb.CaseNodes(entry.name, ct, segmentation), index
        return self.shown

    def clear(self) -> None:
        """Remove the shown result's nodes (a new synthesis replaces these results, or the panel closes)."""
        if self.shown is not None:
            remove_nodes(self.scene, [self.shown.segmentation, self.shown.ct])
        self.shown, self.shown_index = None, None

    def forget(self) -> None:
        """The scene was closed (its nodes are gone with it): keep no reference to them."""
        self.shown, self.shown_index, self.original = None, None, None

    def _check_original(self) -> None:
        if self.original is None or self.original.GetScene() is None or self.original.GetImageData() is None:
            raise InputDataError("the CT these results were synthesized from is no longer in the scene",
                                 path=self.folder, fix="load that CT again and synthesize")
        geometry = mb.node_geometry(self.original)
        expected = Geometry(tuple(self.source["spacing"]), tuple(self.source["origin"]),
                            tuple(self.source["direction"]))
        shape = tuple(self.original.GetImageData().GetDimensions())[::-1]
        if shape != tuple(self.source["shape_zyx"]) or not geometry.isclose(expected):
            raise InputDataError(f"'{self.original.GetName()}' is no longer on the grid it was synthesized on",
                                 path=self.folder, fix="synthesize again from the CT as it is now")

    def _result_volume(self, name: str, entry: InCTEntry) -> object:
        """A new volume node: a copy of the original's voxels with the job's change box written in."""
        import vtk
        from vtk.util import numpy_support

        self._check_original()
        change = None
        if entry.change is not None:
            from LNSynthLib.volumes.io import read_volume

            change = read_volume(entry.change)
        node = self.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", self.scene.GenerateUniqueName(name))
        try:
            image = vtk.vtkImageData()
            image.DeepCopy(self.original.GetImageData())
            node.CopyOrientation(self.original)
            if change is not None:
                dims = image.GetDimensions()
                voxels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(dims[::-1])
                start = np.rint(mb.node_geometry(self.original).physical_to_index(
                    np.asarray(change.geometry.origin))[::-1]).astype(int)
                box = tuple(slice(int(s), int(s) + n) for s, n in zip(start, change.shape, strict=True))
                voxels[box] = change.array.astype(voxels.dtype, copy=False)
                image.Modified()
            _same_window(self.scene, self.original, node)   # before the voxels: no histogram of them
            node.SetAndObserveImageData(image)
        except Exception:
            remove_nodes(self.scene, [node])
            raise
        return node


def _same_window(scene: object, original: object, result: object) -> None:
    """The result's display node, in the original's window, so the two views compare like with like.

    Made before the result gets its voxels: `CreateDefaultDisplayNodes` would switch on the automatic
    window, whose histogram of a 512x512x300 CT took 0.75 s of the 0.9 s a result took to show.
    """
    source = original.GetDisplayNode()
    target = scene.AddNewNodeByClass("vtkMRMLScalarVolumeDisplayNode")
    if source is not None and source.IsA("vtkMRMLScalarVolumeDisplayNode"):
        target.SetAutoWindowLevel(0)
        target.SetAndObserveColorNodeID(source.GetColorNodeID())
        target.SetWindowLevel(source.GetWindow(), source.GetLevel())
    else:
        target.SetDefaultColorMap()
    result.SetAndObserveDisplayNodeID(target.GetID())


def show_side_by_side(scene: object, app_logic: object | None, original: object, result: object,
                      focus_ras: tuple[float, float, float] | None = None) -> bool:
    """Two linked axial views: the original in Red, the result in Yellow; jump to `focus_ras`.

    False when the scene has no layout or no Red/Yellow views (a scene without Slicer's views).
    """
    import slicer

    layout = scene.GetFirstNodeByClass("vtkMRMLLayoutNode")
    red = scene.GetSingletonNode("Red", "vtkMRMLSliceNode")
    yellow = scene.GetSingletonNode("Yellow", "vtkMRMLSliceNode")
    if layout is None or red is None or yellow is None:
        return False
    layout.SetViewArrangement(slicer.vtkMRMLLayoutNode.SlicerLayoutSideBySideView)
    yellow.SetOrientation(red.GetOrientation())   # an existing Yellow view keeps Sagittal otherwise
    views = {red: original, yellow: result}
    for slice_node, volume in views.items():
        composite = slicer.vtkMRMLSliceLogic.GetSliceCompositeNode(slice_node)
        if composite is None:
            return False
        composite.SetBackgroundVolumeID(volume.GetID())
        composite.SetForegroundVolumeID(None)
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):   # as the link button does
        scene.GetNthNodeByClass(i, "vtkMRMLSliceCompositeNode").SetLinkedControl(1)
    if app_logic is not None:
        app_logic.FitSliceToAll(False, False)   # keep the orientation set above
    if focus_ras is not None:
        slicer.vtkMRMLSliceNode.JumpAllSlices(scene, *focus_ras, slicer.vtkMRMLSliceNode.CenteredJumpSlice)
    return True


def node_center_ras(results: InCTResults) -> tuple[float, float, float] | None:
    """The painted nodes' centre (RAS), where the views jump to."""
    if results.nodes_file is None or not results.nodes_file.exists():
        return None
    from LNSynthLib.volumes.io import read_volume

    nodes = read_volume(results.nodes_file)
    where = np.argwhere(nodes.array > 0)
    if not len(where):
        return None
    lps = nodes.geometry.index_to_physical(where.mean(axis=0)[::-1])
    return (-float(lps[0]), -float(lps[1]), float(lps[2]))
