"""The page: axial / coronal / 3D views and a side panel with the Slicer panel's sections.

Element ids (`load-ct`, `paint`, `synthesize`, `job-progress`, ...) are stable: the browser test and
anyone scripting the page use them.
"""

from __future__ import annotations

from LNSynthLib.diffusion.choices import BUNDLED_CONFIGS
from LNSynthLib.diffusion.sample.inct_defaults import SYNTHESIS_MODES
from LNSynthLib.segmentation.nnunet.constants import STANDARD_EPOCHS

from .. import form

# Stable trigger names of the actions that take a path or a file (scripts and the tests call them by name).
PAGE_TRIGGERS = {"load_ct": "on_load_path", "upload_ct": "on_upload", "create_anatomy": "on_create_anatomy",
                 "group_totalseg": "on_group_totalseg", "train_ddpm": "on_train_ddpm", "synthesize": "on_synthesize",
                 "nnunet_train": "on_nnunet_train", "nnunet_predict": "on_nnunet_predict", "undo": "on_undo",
                 "redo": "on_redo", "layer_visible": "on_layer_visible", "layer_opacity": "on_layer_opacity",
                 "result_step": "on_result_step", "download_result": "on_download_result"}
SYNTHESIS_MODE_TITLES = {SYNTHESIS_MODES[1]: "Into this CT", SYNTHESIS_MODES[0]: "Patch"}
PATCH_ONLY = f"synthesis_mode === '{SYNTHESIS_MODES[1]}'"   # true where the patch-only controls are off

DRAWER_WIDTH = 380


def build_page(server: object, app: object, layout_manager: object) -> object:
    """Build the page on `server`; `app` provides the click handlers (see app.LNSynthWebApp)."""
    from trame.widgets import html
    from trame.widgets import vuetify3 as v
    from trame_vuetify.ui.vuetify3 import SinglePageWithDrawerLayout

    for name, method in PAGE_TRIGGERS.items():
        server.controller.trigger(name)(getattr(app, method))
    busy = ("job_running",)
    dense = {"density": "compact", "hide_details": True, "classes": "mb-2"}

    def section(title: str):
        panel = v.VExpansionPanel(title=title)
        return panel

    with SinglePageWithDrawerLayout(server, width=DRAWER_WIDTH) as layout:
        layout.title.set_text("LNSynth")
        layout.root.theme = "dark"
        with layout.toolbar:
            v.VSpacer()
            v.VSelect(label="Window", v_model=("window_preset", "Abdomen"), items=("window_presets", []),
                      id="window-preset", style="max-width: 140px", density="compact", hide_details=True,
                      classes="mr-2")
            with v.VBtnToggle(v_model=("view_mode", "ct"), mandatory=True, density="compact", classes="mr-2",
                              id="view-mode", divided=True, variant="outlined"):
                v.VBtn("CT", value="ct", id="view-ct", size="small")
                v.VBtn("Side by side", value="side", id="view-side", size="small", disabled=("!results.length",))
                v.VBtn("Fade", value="fade", id="view-fade", size="small", disabled=("!results.length",))
            v.VSlider(v_model=("fade", 0.5), min=0, max=1, step=0.05, id="fade", v_show="view_mode === 'fade'",
                      label="Original → result", density="compact", hide_details=True, classes="mr-2",
                      style="max-width: 240px")
            v.VCheckbox(label="3D volume rendering", v_model=("volume_rendering", False), id="volume-rendering",
                        density="compact", hide_details=True, classes="mr-4", style="max-width: 220px")
            v.VSelect(label="Device", v_model=("device", form.default("device")), items=("devices", form.choices("device")),
                      id="device", style="max-width: 140px", **dense)
        with layout.drawer, html.Div(classes="pa-2"):
            _job_card(v, html, app)
            with v.VExpansionPanels(v_model=("open_sections", [0, 1, 2, 3, 4, 5]), multiple=True):
                with section("1. Load a CT"), v.VExpansionPanelText():
                    v.VTextField(label="CT file on the server", v_model=("ct_path", ""), id="ct-path", **dense)
                    v.VBtn("Load", click=app.on_load_path, id="load-ct", disabled=busy, block=True, classes="mb-2")
                    v.VFileInput(label=("'or upload a CT (at most ' + max_upload_text + ')'",), id="upload-ct",
                                 density="compact", hide_details=True, change=_upload_handler(server, app),
                                 disabled=busy)
                with section("2. Anatomy"), v.VExpansionPanelText():
                    v.VSelect(label="Method", v_model=("anatomy_method", form.default("anatomyMethod")), items=("anatomy_methods",
                              form.choices("anatomyMethod")), id="anatomy-method", **dense)
                    v.VTextField(label="TotalSegmentator weights folder (optional)", v_model=("weights_dir", ""),
                                 **dense)
                    v.VBtn("Create anatomy", click=app.on_create_anatomy, id="create-anatomy", disabled=busy,
                           block=True, classes="mb-2")
                    v.VTextField(label="or a TotalSegmentator `total` file", v_model=("totalseg_file", ""),
                                 id="totalseg-file", **dense)
                    v.VBtn("Group file", click=app.on_group_totalseg, id="group-totalseg", disabled=busy, block=True)
                with section("3. Lymph nodes"), v.VExpansionPanelText():
                    with html.Div(classes="d-flex ga-1 mb-2"):
                        v.VBtn("Paint", click=app.on_paint, id="paint", disabled=busy,
                               color=("brush_mode === 'paint' ? 'primary' : ''",))
                        v.VBtn("Erase", click=app.on_erase, id="erase", disabled=busy,
                               color=("brush_mode === 'erase' ? 'primary' : ''",))
                        v.VBtn("Stop", click=app.on_brush_off, id="brush-off")
                        v.VBtn("Undo", click=app.on_undo, id="undo", disabled=("!can_undo || job_running",))
                        v.VBtn("Redo", click=app.on_redo, id="redo", disabled=("!can_redo || job_running",))
                    v.VSlider(label="Brush (mm)", v_model=("brush_diameter", 8.0), min=1, max=40, step=1,
                              thumb_label=True, id="brush-size", **dense)
                    v.VCheckbox(label="Sphere brush", v_model=("brush_sphere", True), id="brush-sphere", **dense)
                    html.Div("Painted: {{ painted_voxels }} voxels", id="painted-voxels", classes="text-caption")
                    html.Div("Mean of the painted region: {{ painted_hu }} HU", id="painted-hu", v_show="painted_hu",
                             classes="text-caption")
                    html.Div("{{ paint_warning }}", id="paint-warning", v_show="paint_warning",
                             classes="text-warning text-body-2", style="white-space: pre-wrap")
                with section("4. LN-DDPM training"), v.VExpansionPanelText():
                    v.VBtn("Add current case", click=app.on_add_case, id="add-case", disabled=busy, block=True,
                           classes="mb-2")
                    html.Div("Training cases: {{ training_cases }}", classes="text-caption mb-2")
                    v.VCombobox(label="Config (or a YAML file on the server)",
                                v_model=("ddpm_config", form.default("ddpmConfig")),
                                items=("configs", list(BUNDLED_CONFIGS)), id="ddpm-config", **dense)
                    v.VTextField(label="Iterations (blank: the config's)", v_model=("ddpm_iterations", ""),
                                 id="ddpm-iterations", **dense)
                    v.VBtn("Train LN-DDPM", click=app.on_train_ddpm, id="train-ddpm", disabled=busy, block=True)
                with section("5. Synthesis"), v.VExpansionPanelText():
                    _synthesis_mode(v, html, dense)
                    v.VTextField(label="Checkpoint (.pt on the server)", v_model=("checkpoint", ""), id="checkpoint",
                                 **dense)
                    v.VSelect(label="Sampler", v_model=("sampler", form.default("sampler")),
                              items=("samplers", form.choices("sampler")), id="sampler", **dense)
                    with html.Div(classes="d-flex ga-1"):
                        v.VTextField(label="Steps", v_model=("steps", ""), id="steps", **dense)
                        v.VTextField(label="Samples", v_model=("n_samples", form.default("numberOfSamples")),
                                     id="n-samples", **dense)
                        v.VTextField(label="Seed", v_model=("seed", form.default("seed")), id="seed", **dense)
                    v.VCheckbox(label="Transform the nodes", v_model=("transforms", form.default("useTransforms")),
                                id="transforms", disabled=(PATCH_ONLY,), **dense)
                    v.VCheckbox(label="Quality control: drop synthetic pairs unlike real data",
                                v_model=("qc", form.default("qualityControl")), id="qc", disabled=(PATCH_ONLY,),
                                **dense)
                    v.VBtn("Synthesize", click=app.on_synthesize, id="synthesize", disabled=busy, block=True,
                           classes="mb-2")
                    _results(v, html, server, app)
                with section("6. nnU-Net"), v.VExpansionPanelText():
                    v.VBtn("Export dataset", click=app.on_nnunet_export, id="nnunet-export", disabled=busy,
                           block=True, classes="mb-2")
                    v.VCheckbox(label="Export the synthetic nodes pasted into their CT",
                                v_model=("paste", form.default("pasteIntoCT")), id="paste", **dense)
                    v.VTextField(label="Dataset folder", v_model=("nnunet_dataset", ""), id="nnunet-dataset", **dense)
                    with html.Div(classes="d-flex ga-1"):
                        v.VTextField(label="Epochs", v_model=("nnunet_epochs", form.default("nnunetEpochs")),
                                     id="nnunet-epochs", **dense)
                        v.VTextField(label="Iterations", v_model=("nnunet_iterations",
                                                                  form.default("nnunetIterations")),
                                     id="nnunet-iterations", **dense)
                        v.VTextField(label="Patch Z Y X", v_model=("nnunet_patch", ""), id="nnunet-patch",
                                     placeholder="planned", persistent_placeholder=True, **dense)
                    html.Div(f"Epochs × Iterations of a short run (minutes on a CPU). {STANDARD_EPOCHS} epochs is "
                             "nnU-Net's standard trainer (250 iterations each, Iterations unused: days on a CPU). "
                             "With one painted CT every case trains (no validation split). "
                             "Patch blank: nnU-Net's plan; a smaller one (e.g. 64 64 64: multiples of the plan's downsampling) makes a CPU run "
                             "several times shorter.",
                             id="nnunet-hint", classes="text-caption mb-2")
                    v.VBtn("Train nnU-Net", click=app.on_nnunet_train, id="nnunet-train", disabled=busy, block=True,
                           classes="mb-2")
                    v.VTextField(label="Model folder", v_model=("nnunet_model", ""), id="nnunet-model", **dense)
                    v.VBtn("Apply to this CT", click=app.on_nnunet_predict, id="nnunet-predict", disabled=busy,
                           block=True)
            _layers(v, html)
            _scene_list(v, html)
        with layout.content:
            layout_manager.initialize_layout_grid(layout)
    return layout


def _synthesis_mode(v, html, dense: dict) -> None:
    """In-CT (the panel's default): the painted nodes synthesized into this CT; Patch: paper 000's patches."""
    with v.VBtnToggle(v_model=("synthesis_mode", form.default("synthesisMode")), mandatory=True, divided=True,
                      variant="outlined", density="compact", id="synthesis-mode", classes="mb-2"):
        for mode, title in SYNTHESIS_MODE_TITLES.items():
            v.VBtn(title, value=mode, id=f"synthesis-mode-{mode}", size="small")
    v.VTextField(label="Margin around each node (mm), generated with it", id="inct-margin",
                 v_model=("inct_margin_mm", form.default("inctMarginMm")), disabled=(f"!({PATCH_ONLY})",), **dense)
    html.Div("Into this CT: your CT comes back with the painted node(s) synthesized into it; every voxel "
             "beyond the margin stays as it is. Patch: a generated patch pasted into the CT (paper 000).",
             id="synthesis-mode-hint", classes="text-caption mb-2")


def _results(v, html, server: object, app: object) -> None:
    """Browse the samples of the last synthesis (QC verdict on each), download the one shown."""
    download = server.controller.trigger_name(app.on_download_result)
    with html.Div(v_show="results.length", id="results"):
        with html.Div(classes="d-flex ga-1 align-center"):
            v.VBtn("‹", click="trigger('result_step', [-1])", id="result-prev", size="small")
            v.VSelect(label="Sample", v_model=("result_index", 0), items=("results",), item_title="label",
                      item_value="index", id="result-select", density="compact", hide_details=True)
            v.VBtn("›", click="trigger('result_step', [1])", id="result-next", size="small")
        html.Div("{{ results[result_index] ? (results[result_index].note ? results[result_index].note : "
                 "results[result_index].passed === false ? 'Rejected by quality "
                 "control: ' + results[result_index].reasons : (results[result_index].passed ? 'Quality control "
                 "passed' : 'Not scored (Quality control off)')) : '' }}", id="result-qc",
                 classes=("results[result_index] && results[result_index].passed === false ? "
                          "'text-error text-body-2 my-1' : 'text-caption my-1'",))
        v.VBtn("Download this sample (CT + node mask, NIfTI)", id="download-result", block=True, size="small",
               click=f"utils.download(result_file, trigger('{download}'), 'application/zip')")


def _layers(v, html) -> None:
    """The overlays of this CT: visibility, opacity and a legend each."""
    with v.VCard(classes="mt-2 pa-2", variant="outlined", id="layers", v_show="layers.length"):
        html.Div("Overlays", classes="text-subtitle-2")
        with html.Div(v_for="layer in layers", key="layer.id", classes="layer mb-1",
                      __properties=[("data_name", "data-name")], data_name=("layer.name",)):
            with html.Div(classes="d-flex align-center ga-1"):
                v.VCheckbox(model_value=("layer.visible",), label=("layer.name",), classes="layer-visible",
                            density="compact", hide_details=True,
                            update_modelValue="trigger('layer_visible', [layer.id, $event])")
                v.VSlider(model_value=("layer.opacity",), min=0, max=1, step=0.1, classes="layer-opacity",
                          density="compact", hide_details=True, style="max-width: 110px",
                          update_modelValue="trigger('layer_opacity', [layer.id, $event])")
            with html.Div(classes="d-flex flex-wrap ga-1 legend"):
                html.Span("{{ item.name }}", v_for="item in layer.legend", key="item.name",
                          classes="legend-item text-caption px-1",
                          style=("{'border-left': '10px solid ' + item.color}",))


def _upload_handler(server: object, app: object) -> str:
    """Send the chosen file, unless it is over the server's limit (the server refuses it too)."""
    trigger = server.controller.trigger_name(app.on_upload)
    return ("$event.target.files && $event.target.files[0] && $event.target.files[0].size > max_upload_bytes "
            "? (error = 'error: the file is over the upload limit of this server (' + max_upload_text + ')') "
            f": trigger('{trigger}', [$event.target.files])")


def _job_card(v, html, app) -> None:
    with v.VCard(classes="mb-2 pa-2", variant="outlined"):
        html.Div("{{ status }}", id="status", classes="text-body-2 mb-1")
        html.Div("{{ error }}", id="error", classes="text-error text-body-2 mb-1", v_show="error",
                 style="white-space: pre-wrap")
        with html.Div(v_show="job_running || job_done", id="job"):
            v.VProgressLinear(model_value=("job_percent", 0), height=18, id="job-progress",
                              color=("job_running ? 'primary' : (job_failed ? 'error' : 'success')",))
            html.Div("{{ job_text }}", id="job-text", classes="text-caption")
            v.VBtn("Cancel", click=app.on_cancel, id="job-cancel", v_show="job_running", size="small",
                   color="warning", classes="my-1")
            html.Pre("{{ job_log }}", id="job-log", style="font-size: 10px; max-height: 160px; overflow: auto; "
                     "white-space: pre-wrap")


def _scene_list(v, html) -> None:
    with v.VCard(classes="mt-2 pa-2", variant="outlined", id="scene-list"):
        html.Div("Scene", classes="text-subtitle-2")
        html.Div("{{ row.kind }}: {{ row.name }} ({{ row.detail }})", v_for="row in scene_rows", key="row.id",
                 classes="text-caption scene-row", __properties=[("data_name", "data-name")],
                 data_name=("row.name",))
