"""What the page's views show: the CT, or the original and the synthetic result side by side (or faded),
window/level presets, and each slice view's label (orientation, slice number) and edge letters.

Layouts: `work` (axial | coronal over 3D) and `compare` (original axial and coronal | the result's), whose
two columns are linked: scrolling, zooming or panning one view moves its partner (same grid: the
result is the original CT with the synthetic node pasted in).
"""

from __future__ import annotations

from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

WORK_LAYOUT, COMPARE_LAYOUT = "LNSynth", "LNSynth compare"
AXIAL, CORONAL = "Red", "Green"
RESULT_AXIAL, RESULT_CORONAL = "ResultAxial", "ResultCoronal"
PARTNERS = {AXIAL: RESULT_AXIAL, CORONAL: RESULT_CORONAL, RESULT_AXIAL: AXIAL, RESULT_CORONAL: CORONAL}
ORIGINAL_VIEWS, RESULT_VIEWS = (AXIAL, CORONAL), (RESULT_AXIAL, RESULT_CORONAL)
# Radiological convention (Slicer's default): the patient's right on the screen's left.
EDGE_LETTERS = {"Axial": {"left": "R", "right": "L", "top": "A", "bottom": "P"},
                "Coronal": {"left": "R", "right": "L", "top": "S", "bottom": "I"}}
# (window, level) in HU; "Auto": the volume's own automatic window.
WINDOW_PRESETS = {"Abdomen": (400.0, 40.0), "Bone": (1800.0, 400.0), "Lung": (1500.0, -600.0), "Auto": None}
DEFAULT_WINDOW = "Abdomen"
VIEW_MODES = ("ct", "side", "fade")


def layouts() -> dict[str, Layout]:
    axial, coronal = ViewLayoutDefinition.axial_view(), ViewLayoutDefinition.coronal_view()
    result_axial = ViewLayoutDefinition.slice_view("Axial", label=RESULT_AXIAL, color="#F34A33")
    result_coronal = ViewLayoutDefinition.slice_view("Coronal", label=RESULT_CORONAL, color="#6DAD4A")
    return {WORK_LAYOUT: Layout(LayoutDirection.Horizontal, [
                axial, Layout(LayoutDirection.Vertical, [coronal, ViewLayoutDefinition.threed_view()])]),
            COMPARE_LAYOUT: Layout(LayoutDirection.Horizontal, [
                Layout(LayoutDirection.Vertical, [axial, coronal]),
                Layout(LayoutDirection.Vertical, [result_axial, result_coronal])])}


def slice_view_ui(server: object, view_id: str, view: object) -> None:
    """trame-slicer's slice view gutter and slider, plus the view's label and its edge letters."""
    from trame.widgets import html
    from trame_slicer.app.ui import create_vertical_slice_view_gutter_ui

    create_vertical_slice_view_gutter_ui(server, view_id, view)
    tag = view.get_singleton_tag()
    box = ("position: absolute; color: #fff; font: 600 12px sans-serif; text-shadow: 0 0 3px #000; "
           "pointer-events: none; z-index: 2;")
    html.Div(f"{{{{ view_labels['{tag}'] || '' }}}}", id=f"view-label-{tag}", classes="view-label",
             style=box + "top: 4px; left: 44px;")
    places = {"left": "left: 44px; top: 50%;", "right": "right: 8px; top: 50%;",
              "top": "top: 22px; left: 50%;", "bottom": "bottom: 34px; left: 50%;"}
    for edge, place in places.items():
        html.Div(f"{{{{ (view_edges['{tag}'] || {{}})['{edge}'] || '' }}}}", id=f"view-edge-{tag}-{edge}",
                 classes="view-edge", style=box + place)


class Viewer:
    """Drives the views of one page; `state` gets view_labels, view_edges and the mode of the views."""

    def __init__(self, slicer_app: object, layout_manager: object, state: object) -> None:
        self.app, self.layout_manager, self.state = slicer_app, layout_manager, state
        self.original = None   # the CT
        self.result = None     # the result shown (a SynthResult) or None
        self.original_layers: list[object] = []
        self._syncing = False
        self._observed: set[str] = set()
        layout_manager.register_layout_dict(layouts())
        layout_manager.set_layout(WORK_LAYOUT)
        state.update({"view_labels": {}, "view_edges": {}, "view_mode": "ct", "fade": 0.5,
                      "window_preset": DEFAULT_WINDOW, "window_presets": list(WINDOW_PRESETS)})
        self._observe_views()

    # ------------------------------------------------------------------ views
    def slice_view(self, tag: str):
        return self.app.view_manager.get_view(tag)

    def _observe_views(self) -> None:
        import vtk

        for tag in (*ORIGINAL_VIEWS, *RESULT_VIEWS):
            view = self.slice_view(tag)
            if view is None or tag in self._observed:
                continue
            self._observed.add(tag)
            view.get_view_node().AddObserver(vtk.vtkCommand.ModifiedEvent,
                                             lambda *_, t=tag: self._on_slice_modified(t))

    def _on_slice_modified(self, tag: str) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            if self.state.view_mode == "side":
                self._copy_slice(tag, PARTNERS[tag])
            self._update_label(tag)
            if self.state.view_mode == "side":
                self._update_label(PARTNERS[tag])
        finally:
            self._syncing = False

    def _copy_slice(self, source_tag: str, target_tag: str) -> None:
        """The partner shows the same slice, zoom and pan (linked views)."""
        source, target = self.slice_view(source_tag), self.slice_view(target_tag)
        if source is None or target is None:
            return
        src, dst = source.get_view_node(), target.get_view_node()
        if any(src.GetSliceToRAS().GetElement(i, j) != dst.GetSliceToRAS().GetElement(i, j)
               for i in range(4) for j in range(4)) or src.GetFieldOfView() != dst.GetFieldOfView():
            dst.GetSliceToRAS().DeepCopy(src.GetSliceToRAS())
            dst.SetFieldOfView(*src.GetFieldOfView())
            dst.UpdateMatrices()

    def _update_label(self, tag: str) -> None:
        view = self.slice_view(tag)
        if view is None or not view.get_background_volume_id():
            text = ""
        else:
            low, high = view.get_slice_range()
            step = view.get_slice_step() or 1.0
            number, total = round((view.get_slice_value() - low) / step) + 1, round((high - low) / step) + 1
            side = "" if self.state.view_mode == "ct" else (
                f"{self.result.name} (fade {self.state.fade:.0%})" if self.state.view_mode == "fade" else
                self.result.name if tag in RESULT_VIEWS else "original")
            text = f"{view.get_orientation()} · slice {number}/{total} · {view.get_slice_value():.1f} mm"
            text += f" · {side}" if side else ""
        labels = dict(self.state.view_labels or {})
        edges = dict(self.state.view_edges or {})
        labels[tag] = text
        edges[tag] = EDGE_LETTERS.get(view.get_orientation(), {}) if text else {}
        with self.state:
            self.state.view_labels, self.state.view_edges = labels, edges

    def update_labels(self) -> None:
        for tag in (*ORIGINAL_VIEWS, *RESULT_VIEWS):
            self._update_label(tag)

    # ------------------------------------------------------------------ what is shown
    def show_ct(self, node: object, layers: list[object]) -> None:
        """The work layout on a (new) CT: no result, its own layers."""
        self.original, self.result, self.original_layers = node, None, list(layers)
        self.set_mode("ct", reset=True)

    def show_result(self, result: object | None, layers: list[object], mode: str = "side") -> None:
        self.result, self.original_layers = result, list(layers)
        self.set_mode(mode if result is not None else "ct", reset=False)

    def set_mode(self, mode: str, reset: bool = False) -> None:
        """ct: the CT alone; side: original | result, linked; fade: the result over the original."""
        if mode not in VIEW_MODES:
            mode = "ct"
        if self.result is None:
            mode = "ct"
        self.state.view_mode = mode
        self._syncing = True   # the result views' own (default) slices must not move the original's
        try:
            self._configure(mode, reset)
        finally:
            self._syncing = False
        if mode == "side":
            for tag in ORIGINAL_VIEWS:
                self._copy_slice(tag, PARTNERS[tag])
        self.update_labels()

    def _configure(self, mode: str, reset: bool) -> None:
        self.layout_manager.set_layout(COMPARE_LAYOUT if mode == "side" else WORK_LAYOUT)
        self._observe_views()
        original_id = self.original.GetID() if self.original is not None else None
        result_id = self.result.ct.GetID() if self.result is not None else None
        for tag in ORIGINAL_VIEWS:
            view = self.slice_view(tag)
            view.set_background_volume_id(original_id)
            view.set_foreground_volume_id(result_id if mode == "fade" else None)
            view.set_foreground_opacity(float(self.state.fade) if mode == "fade" else 0.0)
        for tag in RESULT_VIEWS:
            view = self.slice_view(tag)
            if view is not None:
                view.set_background_volume_id(result_id if mode == "side" else None)
                view.set_foreground_volume_id(None)
        self._route_segmentations(mode)
        self.apply_window()
        if reset:
            for tag in ORIGINAL_VIEWS:
                self.slice_view(tag).fit_view_to_content()

    def focus(self, ras: tuple[float, float, float]) -> None:
        """Centre the original's views on `ras` (the painted node); in side-by-side the result's views follow."""
        for tag in ORIGINAL_VIEWS:
            view = self.slice_view(tag)
            if view is not None:
                view.get_view_node().JumpSliceByCentering(*ras)
        self.update_labels()

    def set_fade(self, value: float) -> None:
        for tag in ORIGINAL_VIEWS:
            if self.state.view_mode == "fade":
                self.slice_view(tag).set_foreground_opacity(float(value))
        self.update_labels()

    def _view_node_ids(self, tags) -> list[str]:
        return [self.slice_view(t).get_view_node_id() for t in tags if self.slice_view(t) is not None]

    def _route_segmentations(self, mode: str) -> None:
        """Original layers in the original views (and 3D); the result's node in the result views (or the faded)."""
        threed = [v.get_view_node_id() for v in self.app.view_manager.get_threed_views()]
        originals = self._view_node_ids(ORIGINAL_VIEWS) + threed
        for layer in self.original_layers:
            _set_view_ids(layer, originals)
        if self.result is not None:
            tags = RESULT_VIEWS if mode == "side" else ORIGINAL_VIEWS
            _set_view_ids(self.result.segmentation, self._view_node_ids(tags) + threed)
            display = self.result.segmentation.GetDisplayNode()
            if display is not None:
                display.SetVisibility(mode != "ct")

    # ------------------------------------------------------------------ window / level
    def apply_window(self, preset: str | None = None) -> None:
        """Window/level preset on the CT and the shown result (the same HU window on both sides)."""
        from trame_slicer.core.volume_window_level import VolumeWindowLevel

        preset = preset or self.state.window_preset or DEFAULT_WINDOW
        if preset not in WINDOW_PRESETS:
            preset = DEFAULT_WINDOW
        self.state.window_preset = preset
        for node in (self.original, self.result.ct if self.result is not None else None):
            if node is None:
                continue
            display = VolumeWindowLevel.get_volume_display_node(node)
            if WINDOW_PRESETS[preset] is None:
                display.AutoWindowLevelOn()
            else:
                VolumeWindowLevel.set_volume_node_window_level(node, *WINDOW_PRESETS[preset])

    def window_level(self, node: object | None = None) -> tuple[float, float] | None:
        node = node or self.original
        display = node.GetDisplayNode() if node is not None else None
        return (display.GetWindow(), display.GetLevel()) if display is not None else None


def _set_view_ids(node: object, view_node_ids: list[str]) -> None:
    for i in range(node.GetNumberOfDisplayNodes()):
        display = node.GetNthDisplayNode(i)
        if display is not None:
            display.SetViewNodeIDs(view_node_ids)
