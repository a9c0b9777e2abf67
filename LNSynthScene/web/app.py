"""The LNSynth web app: a trame-slicer scene, its views, and the panel's actions on one `WebSession`."""

from __future__ import annotations

import functools
import traceback
from pathlib import Path

from trame.app import TrameApp

from LNSynthLib.cases import list_cases
from LNSynthLib.diffusion.sample.inct_defaults import DEFAULT_MARGIN_MM, SYNTHESIS_MODES
from LNSynthLib.errors import InputDataError, LNSynthError

from ..form import FROM_CHECKPOINT, patch_size, value_range
from ..inct_results import InCTResults
from ..logic import IN_CT, SynthesisSettings
from .jobs import JobMonitor
from .layers import layer_rows, set_layer_opacity
from .messages import page_terms
from .session import WebSession, set_layer_visible
from .ui import build_page
from .uploads import DEFAULT_MAX_UPLOAD_MB, upload_limit_text
from .viewer import Viewer, slice_view_ui


def reports_errors(method):
    """Click handlers show a user error (with its fix) in the panel instead of failing silently."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            with self.state:
                self.state.error = ""
                return method(self, *args, **kwargs)
        except LNSynthError as exc:
            with self.state:
                self.state.error = page_terms(f"error: {exc}")
        except Exception as exc:  # the page must survive any failure; the server log has the traceback
            traceback.print_exc()
            with self.state:
                self.state.error = f"error: {type(exc).__name__}: {exc}"
        return None

    return wrapper


def _show_in_3d(segmentation: object | None) -> None:
    """Lymph-node surfaces in the 3D view (small masks: cheap; the anatomy stays 2D)."""
    if segmentation is not None:
        segmentation.CreateClosedSurfaceRepresentation()


def _whole(value: object, control: str, panel_name: str) -> int:
    """A whole number within the panel's range for this control, or an error naming the control."""
    low, high = value_range(panel_name)
    text = str(value if value is not None else "").strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise InputDataError(f"{control} must be a whole number from {low:g} to {high:g}, not '{text[:20]}'",
                             fix=f"set {control}")
    return int(text)


def _number(value: object, control: str, panel_name: str) -> float:
    """A number within the panel's range for this control, or an error naming the control."""
    low, high = value_range(panel_name)
    text = str(value if value is not None else "").strip()
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not low <= number <= high:
        raise InputDataError(f"{control} must be a number from {low:g} to {high:g}, not '{text[:20]}'",
                             fix=f"set {control}")
    return number


def _note(result: object) -> str:
    """What the page says under an in-CT result (patch samples show their quality-control verdict)."""
    if result.changed_voxels is None:
        return ""
    return (f"In-CT: your CT with the painted node(s) synthesized; {result.changed_voxels} voxels changed "
            "around them, every other voxel as in the original.")


def _int_or_none(value: object) -> int | None:
    text = str(value if value is not None else "").strip()
    return int(text) if text else None


class LNSynthWebApp(TrameApp):
    """One scene, one session folder; `lnsynth serve` runs one per browser session."""

    def __init__(self, work_root: str | Path, server: object = None, data_roots: tuple[Path, ...] = (),
                 max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 2**20, address: str | None = None,
                 folder: str | Path | None = None) -> None:
        super().__init__(server)
        from trame_slicer import module as trame_slicer_module
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories
        from undo_stack import UndoStack

        self.server.enable_module(trame_slicer_module)
        self.slicer = SlicerApp()
        register_rca_factories(self.slicer.view_manager, self.server, slice_view_ui_f=slice_view_ui)
        self.layout_manager = LayoutManager(self.slicer.scene, self.slicer.view_manager, self.server)
        self.viewer = Viewer(self.slicer, self.layout_manager, self.state)
        self.session = WebSession(self.slicer.scene, work_root, data_roots=data_roots,
                                  max_upload_bytes=max_upload_bytes, folder=folder)
        self.jobs = JobMonitor(self.state, page_terms)
        self.undo = UndoStack()   # the brush strokes (and erasures) of this page
        self.editor.set_undo_stack(self.undo)
        self.undo.index_changed.connect(self._on_stroke)
        self._legends: dict[str, list[dict]] = {}
        self.state.update({"trame__title": "LNSynth", "status": self._welcome(address),
                           "max_upload_bytes": max_upload_bytes, "max_upload_text": upload_limit_text(max_upload_bytes),
                           "error": "", "job_running": False, "job_done": False, "job_failed": False,
                           "job_percent": 0, "job_text": "", "job_log": "", "brush_mode": "",
                           "painted_voxels": 0, "painted_hu": "", "paint_warning": "", "can_undo": False,
                           "can_redo": False, "training_cases": 0, "scene_rows": [], "layers": [], "results": [],
                           "result_index": 0, "result_file": "result.zip",
                           "session_folder": str(self.session.folder)})
        self.state.change("brush_diameter", "brush_sphere")(self._on_brush_settings)
        self.state.change("volume_rendering")(self._on_volume_rendering)
        self.state.change("window_preset")(lambda window_preset, **_: self.viewer.apply_window(window_preset))
        self.state.change("fade")(lambda fade, **_: self.viewer.set_fade(fade))
        self.state.change("view_mode")(lambda view_mode, **_: self._on_view_mode(view_mode))
        self.state.change("result_index")(lambda result_index, **_: self._show_result(result_index))
        self._painted_changed = False
        if self.session.reopened:
            self._restore()
        self.ui = build_page(self.server, self, self.layout_manager)

    # ------------------------------------------------------------------ shared
    def _welcome(self, address: str | None) -> str:
        """The first status line: where this session can be reopened and which folders it may read."""
        reopen = f"Session address {address} (reopen it to come back). " if address else ""
        if self.session.reopened:
            reopen += (f"Reopened: the files of this session are kept in {self.session.folder} (runs, cases, "
                       "checkpoints, uploads; name them in the fields below). ")
        return f"{reopen}Files this page can read: {self.session.paths.where()}"

    def _restore(self) -> None:
        """A reopened session: the CT, anatomy, painted nodes and paths it had noted come back."""
        try:
            restored = self.session.restore()
        except LNSynthError as exc:
            self.state.error = page_terms(f"error: the earlier scene could not be restored: {exc}")
            return
        if self.session.nodes.ct is not None:
            self._show(self.session.nodes.ct)
            self.viewer.original_layers = list(self.session.layers)
        for key in ("checkpoint", "nnunet_dataset", "nnunet_model"):
            value = getattr(self.session.nodes, key)
            if value is not None:
                self.state[key] = str(value)
        self._refresh(f"{self.state.status} Restored: {restored or 'nothing (no CT was loaded)'}.")

    def _remember_paint(self) -> None:
        """Painted strokes go to the session folder when a job starts or the brush stops (not per stroke)."""
        if self._painted_changed:
            self._painted_changed = False
            self.session.remember_painted()

    @property
    def editor(self):
        return self.slicer.segmentation_editor

    def _refresh(self, status: str | None = None) -> None:
        if status is not None:
            self.state.status = status
        self.state.scene_rows = self.session.scene_rows()
        self._refresh_paint()
        self._refresh_layers()
        self.state.training_cases = len(list_cases(self.session.cases_root)) if self.session.cases_root.is_dir() \
            else 0

    def _refresh_paint(self) -> None:
        voxels, mean = self.session.painted()
        self.state.painted_voxels = voxels
        self.state.painted_hu = "" if mean is None else f"{mean:.0f}"
        self.state.paint_warning = self.session.paint_warning()
        self.state.can_undo, self.state.can_redo = self.undo.can_undo(), self.undo.can_redo()

    def _on_stroke(self, *_) -> None:
        """A stroke was painted, erased, undone or redone: the counts, the HU check and Undo/Redo follow."""
        self._painted_changed = True
        with self.state:
            self._refresh_paint()

    def _refresh_layers(self) -> None:
        self.state.layers = layer_rows(self.session.layers, self.session.nodes.ct, self._legends)

    def _show(self, volume_node: object) -> None:
        """Slice views show the CT (work layout); the 3D view renders it only on request (costly without a GPU)."""
        self._shown = volume_node
        self.viewer.show_ct(volume_node, self.session.layers)
        self.state.results, self.state.result_index = [], 0
        self._on_volume_rendering()
        self.slicer.display_manager.reset_views()
        self.viewer.update_labels()

    def _on_volume_rendering(self, **_) -> None:
        node = getattr(self, "_shown", None)
        if node is None:
            return
        if self.state.volume_rendering:
            self.slicer.display_manager.show_volume(node)
        else:
            display = self.slicer.volume_rendering.get_vr_display_node(node)
            if display is not None:
                display.SetVisibility(False)

    def _start(self, chain, on_done=None) -> None:
        self.on_brush_off()
        self._remember_paint()
        self._refresh(chain.state.text)
        self.jobs.start(chain, lambda result: self._finished(on_done, result))

    def _finished(self, on_done, result) -> None:
        try:
            if on_done is not None:
                on_done(result)
        finally:
            self._refresh()

    @reports_errors
    def on_cancel(self) -> None:
        self.jobs.cancel()
        self.state.status = "Cancelled."

    # ------------------------------------------------------------------ 1) load
    @reports_errors
    def on_load_path(self) -> None:
        self._loaded(self.session.load_ct(self.state.ct_path))

    @reports_errors
    def on_upload(self, files: list[dict]) -> None:
        self._loaded(self.session.load_upload(files))

    def _loaded(self, node: object) -> None:
        self.editor.deactivate_effect()
        self._show(node)
        self._refresh(f"Loaded {node.GetName()}")

    # ------------------------------------------------------------------ 2) anatomy
    @reports_errors
    def on_create_anatomy(self) -> None:
        chain = self.session.start_anatomy(self.state.anatomy_method, self.state.device, self.state.weights_dir)
        self._start(chain, self._anatomy_ready)

    @reports_errors
    def on_group_totalseg(self) -> None:
        self._anatomy_ready(self.session.anatomy_from_totalseg_file(self.state.totalseg_file))

    def _anatomy_ready(self, node: object) -> None:
        self.session.set_anatomy(node)
        self.viewer.original_layers = list(self.session.layers)
        self._refresh(f"Anatomy ready: {node.GetName()}")

    # ------------------------------------------------------------------ overlays (layers)
    def on_layer_visible(self, node_id: str, visible: bool) -> None:
        node = self._layer(node_id)
        if node is not None:
            set_layer_visible(node, bool(visible))
            self._refresh_layers()

    def on_layer_opacity(self, node_id: str, opacity: float) -> None:
        node = self._layer(node_id)
        if node is not None:
            set_layer_opacity(node, float(opacity))
            self._refresh_layers()

    def _layer(self, node_id: object):
        """A layer of this CT by its id (ids come from the page: only this CT's layers are accepted)."""
        return next((n for n in self.session.layers if n.GetID() == str(node_id)), None)

    # ------------------------------------------------------------------ views
    def _on_view_mode(self, mode: str) -> None:
        if self.viewer.result is None and mode != "ct":
            self.state.view_mode = "ct"
            return
        self.viewer.set_mode(mode)

    # ------------------------------------------------------------------ 3) brush
    @reports_errors
    def on_paint(self) -> None:
        self._brush("paint")

    @reports_errors
    def on_erase(self) -> None:
        self._brush("erase")

    def _brush(self, mode: str) -> None:
        from trame_slicer.segmentation import SegmentationEffectErase, SegmentationEffectPaint

        node, segment_id = self.session.lymph_node_segment()
        if self.editor.active_segmentation_node is not node:
            self.editor.set_active_segmentation(node, self.session.nodes.ct)
            self.editor.set_surface_representation_enabled(False)  # no surface rebuild per stroke
        self.editor.set_active_segment_id(segment_id)
        self.editor.set_active_effect_type(SegmentationEffectPaint if mode == "paint" else SegmentationEffectErase)
        self.state.brush_mode = mode
        self._on_brush_settings()
        if self.viewer.state.view_mode != "ct":   # paint on the CT itself, not beside a result
            self.viewer.set_mode("ct")
        self.viewer.original_layers = list(self.session.layers)
        self._refresh(f"{mode.capitalize()}: drag on a slice view")

    @reports_errors
    def on_undo(self) -> None:
        if self.undo.can_undo():
            self.undo.undo()
        self._refresh("Undone" if self.state.painted_voxels or self.undo.can_redo() else None)

    @reports_errors
    def on_redo(self) -> None:
        if self.undo.can_redo():
            self.undo.redo()
        self._refresh("Redone")

    def on_brush_off(self) -> None:
        if self.state.brush_mode:
            self.editor.deactivate_effect()
            self.state.brush_mode = ""
            _show_in_3d(self.session.nodes.lymph_nodes)
            self._remember_paint()
            self._refresh("Brush off")

    def _on_brush_settings(self, **_) -> None:
        from trame_slicer.segmentation import AbstractSegmentationEffectBrush, BrushDiameterMode

        effect = self.editor.active_effect
        if isinstance(effect, AbstractSegmentationEffectBrush):
            effect.set_brush_diameter(float(self.state.brush_diameter), BrushDiameterMode.Absolute)
            effect.set_use_sphere_brush(bool(self.state.brush_sphere))

    # ------------------------------------------------------------------ 4) LN-DDPM
    @reports_errors
    def on_add_case(self) -> None:
        self._start(self.session.start_training_case(), lambda case: self._refresh(f"Training case added: {case}"))

    @reports_errors
    def on_train_ddpm(self) -> None:
        chain = self.session.start_ddpm_training(self.state.ddpm_config, _int_or_none(self.state.ddpm_iterations),
                                                 self.state.device)
        self._start(chain, self._checkpoint_ready)

    def _checkpoint_ready(self, checkpoint) -> None:
        self.session.set_checkpoint(checkpoint)
        if checkpoint:
            self.state.checkpoint = str(checkpoint)
            self.state.status = f"LN-DDPM checkpoint: {checkpoint}"

    # ------------------------------------------------------------------ 5) synthesis
    @reports_errors
    def on_synthesize(self) -> None:
        s = self.state
        if s.synthesis_mode not in SYNTHESIS_MODES:
            raise InputDataError(f"unknown synthesis mode '{str(s.synthesis_mode)[:20]}'",
                                 fix="choose Into this CT or Patch (section 5)")
        in_ct = s.synthesis_mode == IN_CT
        settings = SynthesisSettings(checkpoint=str(s.checkpoint or "").strip(),
                                     n_samples=int(s.n_samples), seed=int(s.seed),
                                     sampler=None if s.sampler == FROM_CHECKPOINT else s.sampler,
                                     steps=_int_or_none(s.steps), transforms=bool(s.transforms),
                                     device=s.device, paste_into_ct=bool(s.paste), qc=bool(s.qc),
                                     mode=s.synthesis_mode, inct_margin_mm=_number(
                                         s.inct_margin_mm, "Margin (section 5)", "inctMarginMm")
                                     if in_ct else DEFAULT_MARGIN_MM)
        self._start(self.session.start_synthesis(settings), self._synthetic_ready)

    def _synthetic_ready(self, loaded: object) -> None:
        """Patch samples (every one loaded) or in-CT results (loaded one at a time), shown side by side."""
        if isinstance(loaded, InCTResults):
            results = self.session.set_inct_results(loaded)
            status = (f"{len(results)} in-CT result(s): your CT with the painted node(s) synthesized into it, "
                      "side by side with the original (linked views); outside the margin the CT is unchanged.")
        else:
            results = self.session.set_results(loaded)
            for result in results:
                _show_in_3d(result.segmentation)
            status = f"{len(results)} synthetic sample(s) in the full CT, side by side with the original."
        self.state.results = [{"index": k, "name": r.name, "label": r.label, "passed": r.qc_passed,
                               "reasons": "; ".join(r.qc_reasons), "note": _note(r)} for k, r in enumerate(results)]
        rejected = sum(r.qc_passed is False for r in results)
        if rejected:
            status += (f" Quality control rejected {rejected} of {len(results)}: they are marked, and the "
                       "nnU-Net export leaves them out.")
        self.state.result_index = 0
        self._show_result(0, force=True)
        self._refresh(status)

    def _show_result(self, index: object, force: bool = False) -> None:
        results = self.session.results
        if not results:
            return
        index = min(max(int(index or 0), 0), len(results) - 1)
        if not force and self.viewer.result is results[index] and results[index].ct is not None:
            return
        shown = self.session.result(index)   # an in-CT result replaces the one in the scene
        for result in results:
            set_layer_visible(result.segmentation, result is shown)
        self.state.result_file = f"{shown.name}.zip"
        self.viewer.show_result(shown, self.session.layers,
                                self.state.view_mode if self.state.view_mode != "ct" else "side")
        focus = self.session.focus_ras()
        if focus is not None:
            self.viewer.focus(focus)

    def on_result_step(self, step: int) -> None:
        if self.session.results:
            self.state.result_index = (int(self.state.result_index) + int(step)) % len(self.session.results)

    def on_download_result(self):
        """The shown sample as a zip of its full CT and node mask (NIfTI), sent to the browser."""
        try:
            name, data = self.session.write_result(int(self.state.result_index or 0))
        except LNSynthError as exc:
            with self.state:
                self.state.error = page_terms(f"error: {exc}")
            return None
        with self.state:
            self.state.status = f"Downloading {name} ({len(data) / 2**20:.1f} MB): ct.nii.gz and ln.nii.gz"
        return self.server.protocol.addAttachment(memoryview(data))

    # ------------------------------------------------------------------ 6) nnU-Net
    @reports_errors
    def on_nnunet_export(self) -> None:
        chain = self.session.start_nnunet_export(bool(self.state.paste), qc=bool(self.state.qc), overwrite=True)
        self.state.nnunet_dataset = str(self.session.nodes.nnunet_dataset)
        self._start(chain, lambda _: self._refresh(f"nnU-Net dataset: {self.session.nodes.nnunet_dataset}"))

    @reports_errors
    def on_nnunet_train(self) -> None:
        chain = self.session.start_nnunet_train(self.state.nnunet_dataset or None,
                                                _whole(self.state.nnunet_epochs, "Epochs (section 6)", "nnunetEpochs"),
                                                _whole(self.state.nnunet_iterations, "Iterations (section 6)",
                                                       "nnunetIterations"), self.state.device,
                                                patch_size(self.state.nnunet_patch, "section 6"))
        self._start(chain, self._model_ready)

    def _model_ready(self, model_dir) -> None:
        if model_dir:
            self.session.set_nnunet_model(model_dir)
            self.state.nnunet_model = str(model_dir)
            self.state.status = f"nnU-Net model: {model_dir}"

    @reports_errors
    def on_nnunet_predict(self) -> None:
        chain = self.session.start_nnunet_predict(self.state.nnunet_model or None, self.state.device)
        self._start(chain, self._prediction_ready)

    def _prediction_ready(self, node: object) -> None:
        self.session.set_prediction(node)
        self.viewer.original_layers = list(self.session.layers)
        self.viewer.set_mode(self.state.view_mode)
        self._refresh(f"Prediction: {node.GetName()}")
