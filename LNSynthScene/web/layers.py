"""The overlays drawn on the CT (anatomy, painted nodes, prediction): their rows for the page's layer list.

Each row has the layer's visibility and opacity and a legend: the colour and name of every segment
that holds voxels on this CT (a coarse anatomy names 14 groups and fills a few; only those are listed).
"""

from __future__ import annotations

import numpy as np

from .. import mrml_bridge as mb


def _hex(color: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{int(round(255 * max(0.0, min(1.0, c)))):02x}" for c in color[:3])


def legend(node: object, ct_node: object | None) -> list[dict[str, str]]:
    """[{name, color}] of the segments of `node` that are not empty on the CT (all of them without a CT)."""
    segmentation = node.GetSegmentation()
    names = mb.segment_names(node)
    present = set(range(1, len(names) + 1))
    if ct_node is not None and names:
        labels = mb.segmentation_to_labels(node, dict(enumerate(names, 1)), ct_node).array
        present = {int(v) for v in np.unique(labels) if v}
    return [{"name": name, "color": _hex(segmentation.GetNthSegment(k - 1).GetColor())}
            for k, name in enumerate(names, 1) if k in present]


def set_layer_opacity(node: object, opacity: float) -> None:
    display = node.GetDisplayNode()
    if display is not None:
        display.SetOpacity(max(0.0, min(1.0, float(opacity))))


def layer_rows(layers: list[object], ct_node: object | None, cache: dict[str, list[dict]]) -> list[dict]:
    """The page's rows; legends are cached by node id and modification time (painting changes the LN layer)."""
    rows = []
    for node in layers:
        display = node.GetDisplayNode()
        key = f"{node.GetID()}:{node.GetSegmentation().GetMTime()}"
        if key not in cache:
            cache[key] = legend(node, ct_node)
        rows.append({"id": node.GetID(), "name": node.GetName(),
                     "visible": bool(display.GetVisibility()) if display is not None else False,
                     "opacity": round(display.GetOpacity(), 2) if display is not None else 1.0,
                     "legend": cache[key]})
    return rows
