"""The one bridge between Slicer's MRML scene and the library's arrays and files.

The only module of LNSynthLib that imports `slicer`, and only its Qt-free MRML classes, so it
runs inside Slicer and on the PyPI `slicer-core` wheel (CI) alike. Every function takes the
scene (or a node of it) as an argument; nothing uses `slicer.mrmlScene` or `slicer.util`.

Geometry: the library works in ITK LPS `(x, y, z)`; Slicer nodes hold RAS. LPS→RAS flips the
sign of the first two physical axes, so origin and the rows of the direction matrix are
negated component-wise (exact in floating point, no matrix products), and spacing is shared.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.geometry import Geometry, Volume

from . import terminology

_FLIP = np.array([-1.0, -1.0, 1.0])  # LPS <-> RAS, its own inverse
LABELMAP = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()

LYMPH_NODE_TERMINOLOGY = terminology.LYMPH_NODE
# Segment tag holding the label a segment stands for (vtkSegment::SetTag): names change when the user edits
# a segment's terminology or renames it, the tag does not.
LABEL_TAG = "LNSynth.label"


@dataclass
class CoreScene:
    """A scene with the module logics Slicer's application would register (for slicer-core)."""

    scene: object
    app_logic: object
    segmentations_logic: object


def create_core_scene() -> CoreScene:
    """New scene with Colors and Segmentations logics registered, as the Slicer app does at start.

    slicer-core has no application: segments need these logics (colours, terminology) to exist.
    """
    scene = slicer.vtkMRMLScene()
    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    app_logic.GetColorLogic().SetMRMLScene(scene)
    app_logic.GetColorLogic().AddDefaultColorNodes()
    color_logic = slicer.vtkMRMLColorLogic()
    color_logic.SetMRMLApplicationLogic(app_logic)
    color_logic.SetMRMLScene(scene)
    app_logic.SetModuleLogic("Colors", color_logic)
    seg_logic = slicer.vtkSlicerSegmentationsModuleLogic()
    seg_logic.SetMRMLScene(scene)
    seg_logic.SetMRMLApplicationLogic(app_logic)
    app_logic.SetModuleLogic("Segmentations", seg_logic)
    return CoreScene(scene, app_logic, seg_logic)


# ----------------------------------------------------------------------------- geometry

def geometry_to_ras(geometry: Geometry) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray]:
    """(spacing, RAS origin, 3×3 IJK→RAS direction matrix with axes as columns)."""
    origin = tuple(float(v) for v in np.asarray(geometry.origin) * _FLIP)
    directions = geometry.direction_matrix * _FLIP[:, None]
    return geometry.spacing, origin, directions


def node_geometry(node: object) -> Geometry:
    """LPS geometry of a volume node (spacing, origin, direction stored separately: exact)."""
    _refuse_transformed(node)
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASDirectionMatrix(matrix)
    directions = np.array([[matrix.GetElement(r, c) for c in range(3)] for r in range(3)])
    origin = np.asarray(node.GetOrigin(), dtype=float) * _FLIP
    return Geometry(node.GetSpacing(), tuple(origin), tuple((directions * _FLIP[:, None]).ravel()))


def set_node_geometry(node: object, geometry: Geometry) -> None:
    spacing, origin, directions = geometry_to_ras(geometry)
    matrix = vtk.vtkMatrix4x4()
    for r in range(3):
        for c in range(3):
            matrix.SetElement(r, c, float(directions[r, c]))
    node.SetIJKToRASDirectionMatrix(matrix)
    node.SetSpacing(*spacing)
    node.SetOrigin(*origin)


def ijk_to_ras_matrix(geometry: Geometry) -> vtk.vtkMatrix4x4:
    spacing, origin, directions = geometry_to_ras(geometry)
    matrix = vtk.vtkMatrix4x4()
    for r in range(3):
        for c in range(3):
            matrix.SetElement(r, c, float(directions[r, c] * spacing[c]))
        matrix.SetElement(r, 3, origin[r])
    return matrix


def _refuse_transformed(node: object) -> None:
    if node.GetParentTransformNode() is not None:
        raise InputDataError(f"node '{node.GetName()}' is under a transform, its voxels are not where its "
                             "geometry says", fix="harden the transform first (Data module: right-click the "
                             "node > Harden transform) or remove it")


# ----------------------------------------------------------------------------- volumes

def _image_from_array(array: np.ndarray, image: vtk.vtkImageData | None = None) -> vtk.vtkImageData:
    array = np.ascontiguousarray(array)
    if array.ndim != 3:
        raise ValueError(f"expected a 3D (z, y, x) array, got shape {array.shape}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if array.dtype == np.int64:
        array = array.astype(np.int32)
    image = image if image is not None else vtk.vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    image.AllocateScalars(numpy_support.get_vtk_array_type(array.dtype), 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = array.ravel()
    return image


def _array_from_image(image: vtk.vtkImageData) -> np.ndarray:
    dims = image.GetDimensions()
    scalars = image.GetPointData().GetScalars()
    if scalars is None or scalars.GetNumberOfComponents() != 1:
        raise InputDataError("volume has no scalar voxels", fix="select a scalar volume (CT) node")
    return numpy_support.vtk_to_numpy(scalars).reshape(dims[2], dims[1], dims[0]).copy()


def volume_to_node(volume: Volume, scene: object, name: str, node: object | None = None,
                   labelmap: bool = False) -> object:
    """Put `volume` into a (new or given) scalar/labelmap volume node at its physical place."""
    if node is None:
        node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode",
                                       scene.GenerateUniqueName(name))
    set_node_geometry(node, volume.geometry)
    node.SetAndObserveImageData(_image_from_array(volume.array))
    node.CreateDefaultDisplayNodes()
    return node


def node_to_volume(node: object) -> Volume:
    """Copy of a volume node's voxels with its LPS geometry."""
    image = node.GetImageData() if node is not None else None
    if image is None:
        raise InputDataError("no volume selected or the volume holds no voxels", fix="select a loaded CT volume")
    return Volume(_array_from_image(image), node_geometry(node))


def load_volume_file(scene: object, path: str | Path, name: str | None = None, labelmap: bool = False) -> object:
    """Read a NIfTI/NRRD file through a storage node (Slicer's own reader; no app needed)."""
    path = Path(path)
    if not path.exists():
        raise InputDataError("file not found", path=path, fix="check the path")
    node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode",
                                   scene.GenerateUniqueName(name or path.name.split(".")[0]))
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    if labelmap:
        storage.SetCenterImage(0)
    if not storage.ReadData(node):
        scene.RemoveNode(storage)
        scene.RemoveNode(node)
        raise InputDataError("cannot be read as a volume", path=path, fix="give a NIfTI, NRRD or MHA file")
    node.SetAndObserveStorageNodeID(storage.GetID())
    node.CreateDefaultDisplayNodes()
    return node


# ----------------------------------------------------------------------------- segmentations

def _oriented_image(array: np.ndarray, geometry: Geometry) -> object:
    image = slicer.vtkOrientedImageData()
    _image_from_array(array.astype(np.uint8, copy=False), image)
    image.SetImageToWorldMatrix(ijk_to_ras_matrix(geometry))
    return image


def new_segmentation_node(scene: object, name: str, geometry: Geometry | None = None) -> object:
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", scene.GenerateUniqueName(name))
    node.CreateDefaultDisplayNodes()
    node.GetSegmentation().SetSourceRepresentationName(LABELMAP)
    if geometry is not None:
        _set_reference_geometry(node, _oriented_image(np.zeros((1, 1, 1), np.uint8), geometry), shape=None)
    return node


def _set_reference_geometry(node: object, image: object, shape: tuple[int, int, int] | None) -> None:
    if shape is not None:
        image.SetExtent(0, shape[2] - 1, 0, shape[1] - 1, 0, shape[0] - 1)
    geometry_string = slicer.vtkSegmentationConverter.SerializeImageGeometry(image)
    node.GetSegmentation().SetConversionParameter(
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(), geometry_string)


def labels_to_segmentation(labels: Volume, names: Mapping[int, str], scene: object, name: str,
                           node: object | None = None,
                           colors: Mapping[int, tuple[float, float, float]] | None = None,
                           terminologies: Mapping[str, str] | None = None) -> object:
    """One named segment per entry of `names` (label value → segment name), sharing one labelmap.

    Every named label gets a segment, also when it is empty here, so the segment list is the
    same on every case. A name for value 0 (e.g. `air` of the anatomy map) makes value 0 a
    segment too: the shared labelmap then stores `value + 1`. Segments already in `node` with
    one of these names are replaced.
    """
    node = node if node is not None else new_segmentation_node(scene, name)
    segmentation = node.GetSegmentation()
    array = np.asarray(labels.array)
    shift = 1 if 0 in names else 0
    if array.min() < 0 or array.max() > 255 - shift:
        raise InputDataError(f"label values {array.min()}..{array.max()} do not fit 0..{255 - shift}",
                             fix="give a label map with small non-negative integer labels")
    shared = _oriented_image((array.astype(np.int32) + shift).astype(np.uint8), labels.geometry)
    terminologies = dict(terminologies or {})
    for value, segment_name in sorted(names.items()):
        old = find_segment(segmentation, segment_name)
        if old:
            segmentation.RemoveSegment(old)
        segment = slicer.vtkSegment()
        segment.SetName(segment_name)
        segment.SetTag(LABEL_TAG, segment_name)
        segment.SetLabelValue(int(value) + shift)
        if colors and value in colors:
            segment.SetColor(*colors[value])
        if segment_name in terminologies:
            segment.SetTerminology(terminologies[segment_name])
        # Our names and colours are chosen, not derived from the terminology: a terminology edit keeps them.
        segment.SetNameAutoGenerated(False)
        segment.SetColorAutoGenerated(False)
        segment.AddRepresentation(LABELMAP, shared)
        segmentation.AddSegment(segment)
    _set_reference_geometry(node, _oriented_image(np.zeros((1, 1, 1), np.uint8), labels.geometry), array.shape)
    return node


def set_segment_mask(node: object, segment_name: str, mask: Volume, terminology: str | None = None,
                     color: tuple[float, float, float] | None = None) -> str:
    """Create or replace one segment from a 0/1 mask (own layer); returns its segment id."""
    segmentation = node.GetSegmentation()
    old = segmentation.GetSegmentIdBySegmentName(segment_name)
    if old:
        segmentation.RemoveSegment(old)
    segment = slicer.vtkSegment()
    segment.SetName(segment_name)
    segment.SetLabelValue(1)
    if color is not None:
        segment.SetColor(*color)
    if terminology:
        segment.SetTerminology(terminology)
    segment.AddRepresentation(LABELMAP, _oriented_image((np.asarray(mask.array) > 0).astype(np.uint8),
                                                        mask.geometry))
    segmentation.AddSegment(segment)
    if not segmentation.GetConversionParameter(
            slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName()):
        _set_reference_geometry(node, _oriented_image(np.zeros((1, 1, 1), np.uint8), mask.geometry),
                                mask.array.shape)
    return segmentation.GetSegmentIdBySegmentName(segment_name)


def find_segment(segmentation: object, label_name: str) -> str:
    """Id of the segment standing for `label_name`: the one tagged with it, else the one named so ("" if none)."""
    value = vtk.reference("")
    for i in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(i)
        if segmentation.GetSegment(segment_id).GetTag(LABEL_TAG, value) and str(value) == label_name:
            return segment_id
    return segmentation.GetSegmentIdBySegmentName(label_name) or ""


def missing_segments(node: object, names: Mapping[int, str]) -> list[str]:
    """The names of `names` (value 0 excepted) that no segment of `node` stands for."""
    segmentation = node.GetSegmentation()
    return [name for value, name in sorted(names.items()) if value != 0 and not find_segment(segmentation, name)]


def segment_names(node: object) -> list[str]:
    segmentation = node.GetSegmentation()
    return [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]


def segmentation_to_labels(node: object, names: Mapping[int, str], reference: Geometry | Volume | object,
                           shape: tuple[int, int, int] | None = None, missing_ok: bool = True) -> Volume:
    """Label map on the reference grid: voxels of segment `names[v]` get value `v` (later values win).

    `reference` is a volume node, a `Volume`, or a `Geometry` with `shape` (z, y, x).
    A segment is found by its `LABEL_TAG` (set when LNSynth made it), else by its name (case-insensitive, as
    `GetSegmentIdBySegmentName`); segments not named are ignored; voxels in no named
    segment are 0 (so a segment named for value 0 needs no export).
    """
    scene = node.GetScene()
    geometry, shape = _reference_grid(reference, shape)
    ids = vtk.vtkStringArray()
    order: list[int] = []
    segmentation = node.GetSegmentation()
    for value, segment_name in sorted(names.items()):
        if value == 0:
            continue
        segment_id = find_segment(segmentation, segment_name)
        if not segment_id:
            if missing_ok:
                continue
            raise InputDataError(f"segmentation '{node.GetName()}' has no segment named '{segment_name}'",
                                 fix=f"add a segment named '{segment_name}' (Segment Editor) or pick another "
                                     "segmentation")
        ids.InsertNextValue(segment_id)
        order.append(value)
    out = np.zeros(shape, np.uint8)
    if not order:
        return Volume(out, geometry)
    # The export adds a labelmap, its display node and a visible `<name>_ColorTable` node
    # (vtkSlicerSegmentationsModuleLogic::AddColorTableNodeForSegmentation): all of them go again.
    with temporary_nodes(scene):
        reference_node = volume_to_node(Volume(out, geometry), scene, "__lnsynth_reference__")
        labelmap_node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__lnsynth_export__")
        ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            node, ids, labelmap_node, reference_node)
        if not ok:
            raise InputDataError(f"segments of '{node.GetName()}' could not be exported",
                                 fix="check that the segmentation has a binary labelmap representation")
        exported = _array_from_image(labelmap_node.GetImageData())
    lookup = np.zeros(256, np.uint8)
    lookup[1:len(order) + 1] = order
    return Volume(lookup[exported], geometry)


def segment_to_mask(node: object, segment_name: str, reference: Geometry | Volume | object,
                    shape: tuple[int, int, int] | None = None) -> Volume:
    """0/1 mask of one named segment on the reference grid (error naming the fix when absent)."""
    return segmentation_to_labels(node, {1: segment_name}, reference, shape, missing_ok=False)


def _reference_grid(reference: Geometry | Volume | object,
                    shape: tuple[int, int, int] | None) -> tuple[Geometry, tuple[int, int, int]]:
    if isinstance(reference, Volume):
        return reference.geometry, reference.shape
    if isinstance(reference, Geometry):
        if shape is None:
            raise ValueError("a Geometry reference needs the grid shape (z, y, x)")
        return reference, tuple(shape)  # type: ignore[return-value]
    image = reference.GetImageData()
    if image is None:
        raise InputDataError("reference volume holds no voxels", fix="select a loaded CT volume")
    dims = image.GetDimensions()
    return node_geometry(reference), (dims[2], dims[1], dims[0])


# ----------------------------------------------------------------------------- prepared cases

@dataclass
class CaseNodes:
    """Nodes of one case folder loaded into the scene."""

    case_id: str
    ct: object
    segmentation: object


def load_case_folder(scene: object, folder: str | Path, anatomy_names: Mapping[int, str] | None,
                     ln_segment_name: str, name_prefix: str | None = None,
                     anatomy_colors: Mapping[int, tuple[float, float, float]] | None = None) -> CaseNodes:
    """Load `<folder>/{ct,ln[,anatomy]}.nii.gz` as a CT volume + one segmentation at their physical place.

    The segmentation holds the lymph-node segment (standard terminology) and, when
    `anatomy_names` is given and the file exists, the anatomy segments.
    """
    from LNSynthLib.cases import ANATOMY_FILE, CT_FILE, LN_FILE
    from LNSynthLib.volumes.io import read_volume

    folder = Path(folder)
    for required in (CT_FILE, LN_FILE):
        if not (folder / required).exists():
            raise InputDataError(f"case folder has no {required}", path=folder,
                                 fix="point to a complete case folder written by `lnsynth prepare` or "
                                     "`lnsynth sample`")
    prefix = name_prefix or folder.name
    ct = read_volume(folder / CT_FILE)
    ct_node = volume_to_node(ct, scene, prefix)
    segmentation = new_segmentation_node(scene, f"{prefix} segmentation")
    if anatomy_names and (folder / ANATOMY_FILE).exists():
        labels_to_segmentation(read_volume(folder / ANATOMY_FILE), anatomy_names, scene, "", node=segmentation,
                               colors=anatomy_colors)
    set_segment_mask(segmentation, ln_segment_name, read_volume(folder / LN_FILE), LYMPH_NODE_TERMINOLOGY,
                     color=(0.9, 0.8, 0.1))
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(ct_node)
    return CaseNodes(folder.name, ct_node, segmentation)


def node_classes(scene: object) -> Counter:
    """How many nodes of each class the scene holds (to check that an action adds only what it should)."""
    return Counter(scene.GetNthNode(i).GetClassName() for i in range(scene.GetNumberOfNodes()))


def node_ids(scene: object) -> set[str]:
    """IDs of every node in the scene."""
    return {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}


@contextmanager
def temporary_nodes(scene: object) -> Iterator[None]:
    """Every node added to the scene inside the block is removed when it ends, also on error."""
    before = node_ids(scene)
    try:
        yield
    finally:
        added = [scene.GetNodeByID(i) for i in node_ids(scene) - before]
        for node in sorted((n for n in added if n is not None), key=lambda n: n.IsA("vtkMRMLDisplayNode"),
                           reverse=True):  # display nodes first, then what they showed
            if node.GetScene() is not None:
                scene.RemoveNode(node)
