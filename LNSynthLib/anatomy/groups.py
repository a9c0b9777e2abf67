"""The 14-label anatomy map that conditions LN-DDPM, built from TotalSegmentator `total` classes.

The grouping lives in `label_groups.json` (data, reviewed with its reasons), and class ids are
looked up by name in the installed TotalSegmentator at run time, so a TotalSegmentator release
that renumbers classes cannot silently shift the groups.

`label_filter` (`LABEL_FILTERS`, also in `label_groups.json`): `none` groups every listed class
(today's default); `abdominal` is paper 000's filtering to abdominal labels, where thoracic, neck
and head classes are dropped and become body/air by the thresholding rule like any unlabelled voxel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from LNSynthLib.anatomy.body import AIR_THRESHOLD_HU, body_mask

NUM_LABELS = 14
LYMPH_NODE_SEGMENT_NAME = "lymph node"
LABEL_GROUPS_FILE = Path(__file__).with_name("label_groups.json")
AIR, BODY = 0, 1   # `totalseg_to_anatomy` writes them as False/True of a bool array viewed as uint8
LABEL_FILTERS = ("none", "abdominal")    # label_groups.json "label_filters"; paper pipeline: abdominal


@dataclass(frozen=True)
class LabelGroup:
    value: int
    name: str
    classes: tuple[str, ...]
    why: str


@lru_cache(maxsize=1)
def _load(path: str) -> tuple[LabelGroup, ...]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    groups = tuple(LabelGroup(int(g["value"]), str(g["name"]), tuple(g["classes"]), str(g["why"]))
                   for g in data["labels"])
    values = [g.value for g in groups]
    if values != list(range(NUM_LABELS)):
        raise ValueError(f"{path}: labels must be 0..{NUM_LABELS - 1} in order, got {values}")
    seen: dict[str, str] = {}
    for g in groups:
        for cls in g.classes:
            if cls in seen:
                raise ValueError(f"{path}: class {cls!r} is in both {seen[cls]!r} and {g.name!r}")
            seen[cls] = g.name
    return groups


def load_label_groups() -> list[LabelGroup]:
    """The 14 label groups (value, name, TotalSegmentator class names, reason)."""
    return list(_load(str(LABEL_GROUPS_FILE)))


LABEL_NAMES: list[str] = [g.name for g in load_label_groups()]


TOTALSEG_CLASSES_FILE = Path(__file__).with_name("totalseg_classes.json")


def totalseg_class_ids() -> dict[str, int]:
    """TotalSegmentator `total` class name -> id, as the pinned TotalSegmentator defines them.

    Read from data, not from the package, so grouping also runs where TotalSegmentator is not
    installed (inside Slicer's process).
    """
    classes = json.loads(TOTALSEG_CLASSES_FILE.read_text(encoding="utf-8"))["total"]
    return {name: int(idx) for idx, name in classes.items()}


def dropped_classes(label_filter: str = "none") -> tuple[str, ...]:
    """TotalSegmentator classes that `label_filter` leaves to the thresholding rule (body/air)."""
    filters = json.loads(LABEL_GROUPS_FILE.read_text(encoding="utf-8"))["label_filters"]
    if label_filter not in LABEL_FILTERS or label_filter not in filters:
        raise ValueError(f"label_filter must be one of {LABEL_FILTERS}, got {label_filter!r}")
    return tuple(filters[label_filter]["drop"])


@lru_cache(maxsize=len(LABEL_FILTERS))
def totalseg_lookup(label_filter: str = "none") -> np.ndarray:
    """Lookup table: TotalSegmentator id -> anatomy label (255 = not grouped or dropped by the filter)."""
    ids = totalseg_class_ids()
    grouped = {cls for group in load_label_groups() for cls in group.classes}
    drop = set(dropped_classes(label_filter))
    if drop - grouped:
        raise ValueError(f"{LABEL_GROUPS_FILE}: filter {label_filter!r} drops classes no group lists: "
                         f"{sorted(drop - grouped)}")
    table = np.full(max(ids.values()) + 1, 255, dtype=np.uint8)
    for group in load_label_groups():
        for cls in group.classes:
            if cls not in ids:
                raise ValueError(f"{LABEL_GROUPS_FILE}: {cls!r} is not a TotalSegmentator 'total' class")
            if cls not in drop:
                table[ids[cls]] = group.value
    return table


def totalseg_to_anatomy(ts_labels: np.ndarray, ct_hu: np.ndarray, label_filter: str = "none") -> np.ndarray:
    """Group a TotalSegmentator `total` label map into the 14-label map (uint8, same shape).

    Organ groups win; voxels no group covers (or whose class `label_filter` drops) become `body`
    inside the body outline, `air` outside it or where the CT holds gas.
    """
    ts_labels = np.asarray(ts_labels)
    if ts_labels.shape != np.shape(ct_hu):
        raise ValueError(f"label map {ts_labels.shape} and CT {np.shape(ct_hu)} differ in shape")
    table = totalseg_lookup(label_filter)
    if ts_labels.size and int(ts_labels.max()) >= table.size:
        raise ValueError(f"label value {int(ts_labels.max())} is not a TotalSegmentator 'total' class id")
    if ts_labels.size and int(ts_labels.min()) < 0:
        raise ValueError("label map holds negative values")
    if not np.issubdtype(ts_labels.dtype, np.unsignedinteger):
        ts_labels = ts_labels.astype(np.uint16)   # small index type: no 8-byte copy of a large volume
    body = body_mask(ct_hu)   # before the grouped copy exists: the body mask's label volume is the memory peak
    grouped = table[ts_labels]
    # BODY (1) inside the body where the CT holds no gas, else AIR (0): the complement of `air_mask`, written
    # as one comparison and one AND into the output itself (no further whole-volume temporaries).
    out = np.greater_equal(ct_hu, AIR_THRESHOLD_HU)
    out &= body
    del body
    out = out.view(np.uint8)
    np.copyto(out, grouped, where=grouped != 255)
    return out
