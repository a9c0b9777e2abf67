"""The LNSynth web app: a trame-slicer scene, its views, and the panel's actions on one `WebSession`."""

from __future__ import annotations

import functools
import traceback
from pathlib import Path

from trame.app import TrameApp

from LNSynthLib.cases import list_cases
from LNSynthLib.errors import LNSynthError

from ..logic import SynthesisSettings
from .jobs import JobMonitor
from .session import WebSession
from .ui import FROM_CHECKPOINT, build_page
from .uploads import DEFAULT_MAX_UPLOAD_MB, upload_limit_text

LAYOUT_ID = "LNSynth"


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
                self.state.error = f"error: {exc}"
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


def _int_or_none(value: object) -> int | None:
    text = str(value if value is not None else "").strip()
    return int(text) if text else None


class LNSynthWebApp(TrameApp):
    """One scene, one session folder; `lnsynth serve` runs one per browser session."""

    def __init__(self, work_root: str | Path, server: object = None, data_roots: tuple[Path, ...] = (),
                 max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 2**20, address: str | None = None) -> None:
        super().__init__(server)
        from trame_slicer import module as trame_slicer_module
        from trame_slicer.core import LayoutManager, SlicerApp
        from trame_slicer.rca_view import register_rca_factories
        from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

        self.server.enable_module(trame_slicer_module)
        self.slicer = SlicerApp()
        register_rca_factories(self.slicer.view_manager, self.server)
        self.layout_manager = LayoutManager(self.slicer.scene, self.slicer.view_manager, self.server)
        views = Layout(LayoutDirection.Horizontal, [
            ViewLayoutDefinition.axial_view(),
            Layout(LayoutDirection.Vertical, [ViewLayoutDefinition.coronal_view(),
                                              ViewLayoutDefinition.threed_view()])])
        self.layout_manager.register_layout_dict({LAYOUT_ID: views})
        self.layout_manager.set_layout(LAYOUT_ID)
        self.session = WebSession(self.slicer.scene, work_root, data_roots=data_roots,
                                  max_upload_bytes=max_upload_bytes)
        self.jobs = JobMonitor(self.state)
        self.state.update({"trame__title": "LNSynth", "status": self._welcome(address),
                           "max_upload_bytes": max_upload_bytes, "max_upload_text": upload_limit_text(max_upload_bytes),
                           "error": "", "job_running": False, "job_done": False, "job_failed": False,
                           "job_percent": 0, "job_text": "", "job_log": "", "brush_mode": "",
                           "painted_voxels": 0, "training_cases": 0, "scene_rows": [],
                           "session_folder": str(self.session.folder)})
        self.state.change("brush_diameter", "brush_sphere")(self._on_brush_settings)
        self.state.change("volume_rendering")(self._on_volume_rendering)
        self.ui = build_page(self.server, self, self.layout_manager)

    # ------------------------------------------------------------------ shared
    def _welcome(self, address: str | None) -> str:
        """The first status line: where this session can be reopened and which folders it may read."""
        reopen = f"Session address {address} (reopen it to come back). " if address else ""
        return f"{reopen}Files this page can read: {self.session.paths.where()}"

    @property
    def editor(self):
        return self.slicer.segmentation_editor

    def _refresh(self, status: str | None = None) -> None:
        if status is not None:
            self.state.status = status
        self.state.scene_rows = self.session.scene_rows()
        self.state.painted_voxels = self.session.painted_voxels()
        self.state.training_cases = len(list_cases(self.session.cases_root)) if self.session.cases_root.is_dir() \
            else 0

    def _show(self, volume_node: object) -> None:
        """Slice views show the volume; the 3D view renders it only on request (costly without a GPU)."""
        self._shown = volume_node
        display = self.slicer.display_manager
        display.show_volume_in_slice_background(volume_node)
        display.show_volume_in_slice_foreground(None)
        self._on_volume_rendering()
        display.reset_views()

    def _on_volume_rendering(self, **_) -> None:
        node = getattr(self, "_shown", None)
        if node is None:
            return
        if self.state.volume_rendering:
            self.slicer.display_manager.show_volume(node)
        else:
            self.slicer.display_manager.hide_volume(node)
            self.slicer.display_manager.show_volume_in_slice_background(node)

    def _start(self, chain, on_done=None) -> None:
        self.on_brush_off()
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
        self._refresh(f"Anatomy ready: {node.GetName()}")

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
        self._refresh(f"{mode.capitalize()}: drag on a slice view")

    def on_brush_off(self) -> None:
        if self.state.brush_mode:
            self.editor.deactivate_effect()
            self.state.brush_mode = ""
            _show_in_3d(self.session.nodes.lymph_nodes)
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
        settings = SynthesisSettings(checkpoint=str(s.checkpoint or "").strip(),
                                     n_samples=int(s.n_samples), seed=int(s.seed),
                                     sampler=None if s.sampler == FROM_CHECKPOINT else s.sampler,
                                     steps=_int_or_none(s.steps), transforms=bool(s.transforms),
                                     device=s.device, paste_into_ct=bool(s.paste), qc=bool(s.qc))
        self._start(self.session.start_synthesis(settings), self._synthetic_ready)

    def _synthetic_ready(self, loaded: list) -> None:
        for case in loaded:
            _show_in_3d(case.segmentation)
        if loaded:
            self._show(loaded[0].ct)
        self._refresh(f"{len(loaded)} synthetic volume(s) added to the scene.")

    # ------------------------------------------------------------------ 6) nnU-Net
    @reports_errors
    def on_nnunet_export(self) -> None:
        chain = self.session.start_nnunet_export(bool(self.state.paste), qc=bool(self.state.qc))
        self.state.nnunet_dataset = str(self.session.nodes.nnunet_dataset)
        self._start(chain, lambda _: self._refresh(f"nnU-Net dataset: {self.session.nodes.nnunet_dataset}"))

    @reports_errors
    def on_nnunet_train(self) -> None:
        chain = self.session.start_nnunet_train(self.state.nnunet_dataset or None, int(self.state.nnunet_epochs),
                                                int(self.state.nnunet_iterations), self.state.device)
        self._start(chain, self._model_ready)

    def _model_ready(self, model_dir) -> None:
        if model_dir:
            self.session.nodes.nnunet_model = Path(model_dir)
            self.state.nnunet_model = str(model_dir)
            self.state.status = f"nnU-Net model: {model_dir}"

    @reports_errors
    def on_nnunet_predict(self) -> None:
        chain = self.session.start_nnunet_predict(self.state.nnunet_model or None, self.state.device)
        self._start(chain, lambda node: self._refresh(f"Prediction: {node.GetName()}"))
