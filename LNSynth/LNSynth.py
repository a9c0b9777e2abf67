"""LNSynth: synthesize abdominal CT lymph-node training data with LN-DDPM and train nnU-Net on it.

Thin Slicer module: the widget reads and writes a parameter node and calls the logic in
`LNSynthModuleLib`; all computation runs in background `lnsynth` processes (LNSynthLib).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import qt
import slicer
import vtk
from LNSynthModuleLib import dependencies
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

ACTION_BUTTONS = ("createAnatomyButton", "groupTotalSegButton", "synthesizeButton", "exportDatasetButton",
                  "trainNnunetButton", "predictButton", "installDependenciesButton")


class LNSynth(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "LNSynth"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["LNSynth developers"]
        self.parent.helpText = """
Synthesize realistic abdominal CT patches with lymph nodes (LN-DDPM) and use them to train nnU-Net.
<ol>
<li><b>Input &amp; anatomy</b>: pick a CT; <i>Create anatomy</i> runs TotalSegmentator in the background (or the
weights-free coarse fallback), or group an existing TotalSegmentator file. The 14 anatomy groups appear as a
segmentation.</li>
<li><b>Lymph nodes</b>: create or pick a segmentation with a <i>lymph node</i> segment and paint existing or new
nodes in the Segment Editor.</li>
<li><b>Synthesis</b>: choose the LN-DDPM checkpoint, sampler, steps and number of samples, then
<i>Synthesize</i>. The job runs in its own process (Cancel stops it and leaves no partial files); synthetic patches
appear at their physical place with their lymph-node segmentation, optionally pasted into the CT.</li>
<li><b>nnU-Net</b>: export a dataset from real + synthetic cases, train in the background and segment lymph nodes
in the current CT.</li>
</ol>
The same steps run headless: <code>Slicer --no-main-window --python-script lnsynth_headless.py</code> or the
<code>lnsynth</code> command line.
"""
        self.parent.acknowledgementText = """
Implements LN-DDPM from Yongrui Yu, Hanyu Chen, Zitian Zhang, Qiong Xiao, Wenhui Lei, Linrui Dai, Yu Fu, Hui Tan,
Guan Wang, Peng Gao, Xiaofan Zhang: "CT Synthesis with Conditional Diffusion Models for Abdominal Lymph Node
Segmentation". The comparison variants (conditional, mask-guided and edge-guided DDPM) follow Yan Zhuang, Benjamin
Hou, Tejas Sudharshan Mathai, Pritam Mukherjee, Boah Kim, Ronald M. Summers: "Semantic Image Synthesis for Abdominal
CT". Uses TotalSegmentator, MONAI and nnU-Net v2.
"""


@parameterNodeWrapper
class LNSynthParameterNode:
    inputVolume: vtkMRMLScalarVolumeNode
    anatomyMethod: Annotated[str, Choice(["totalseg", "coarse"])] = "totalseg"
    totalSegFile: Path
    anatomySegmentation: vtkMRMLSegmentationNode
    lymphNodeSegmentation: vtkMRMLSegmentationNode
    checkpointPath: Path
    sampler: Annotated[str, Choice(["ddim", "ddpm", "dpmpp"])] = "ddim"
    steps: Annotated[int, WithinRange(1, 1000)] = 20
    numberOfSamples: Annotated[int, WithinRange(1, 100)] = 4
    seed: Annotated[int, WithinRange(0, 999999)] = 0
    useTransforms: bool = True
    pasteIntoCT: bool = True
    casesFolder: Path
    nnunetDatasetFolder: Path
    nnunetEpochs: Annotated[int, WithinRange(1, 1000)] = 5
    nnunetIterations: Annotated[int, WithinRange(1, 250)] = 30
    nnunetModelFolder: Path
    device: Annotated[str, Choice(["auto", "cpu", "cuda"])] = "auto"
    workFolder: Path
    weightsFolder: Path


def _path(value) -> Path | None:
    """Unset Path parameters read back as '.' or ''."""
    return None if value is None or str(value) in ("", ".") else Path(value)


class LNSynthParameterLogic(ScriptedLoadableModuleLogic):
    """Only the parameter node lives here; the work is in `LNSynthModuleLib.logic`."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.moduleName = "LNSynth"

    def getParameterNode(self):
        return LNSynthParameterNode(super().getParameterNode())


class LNSynthWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._engine = None
        self._job = None
        self._jobButton = None
        self._jobButtonText = ""
        self._jobDone = None
        self._timer = qt.QTimer()
        self._timer.setInterval(500)
        self._timer.connect("timeout()", self.onPollJob)

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LNSynth.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.ui.progressBar.setVisible(False)
        self.parameterLogic = LNSynthParameterLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.createAnatomyButton.connect("clicked(bool)", self.onCreateAnatomy)
        self.ui.groupTotalSegButton.connect("clicked(bool)", self.onGroupTotalSeg)
        self.ui.editLymphNodesButton.connect("clicked(bool)", self.onEditLymphNodes)
        self.ui.synthesizeButton.connect("clicked(bool)", self.onSynthesize)
        self.ui.exportDatasetButton.connect("clicked(bool)", self.onExportDataset)
        self.ui.trainNnunetButton.connect("clicked(bool)", self.onTrainNnunet)
        self.ui.predictButton.connect("clicked(bool)", self.onPredict)
        self.ui.installDependenciesButton.connect("clicked(bool)", self.onInstallDependencies)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.cancelJob()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event) -> None:
        self.cancelJob()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.parameterLogic.getParameterNode())
        p = self._parameterNode
        if not p.inputVolume:
            p.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
        if _path(p.workFolder) is None:
            p.workFolder = Path(slicer.app.temporaryPath) / "LNSynth"

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
            self._updateButtons()

    def _updateButtons(self, caller=None, event=None) -> None:
        if self._job is not None:
            return
        p = self._parameterNode
        has_ct = bool(p and p.inputVolume)
        self.ui.createAnatomyButton.enabled = has_ct
        self.ui.groupTotalSegButton.enabled = has_ct and _path(p.totalSegFile) is not None
        self.ui.editLymphNodesButton.enabled = has_ct
        self.ui.synthesizeButton.enabled = bool(has_ct and p.anatomySegmentation and p.lymphNodeSegmentation
                                                and _path(p.checkpointPath))
        self.ui.exportDatasetButton.enabled = bool(p and _path(p.nnunetDatasetFolder))
        self.ui.trainNnunetButton.enabled = bool(p and _path(p.nnunetDatasetFolder))
        self.ui.predictButton.enabled = bool(has_ct and _path(p.nnunetModelFolder))

    # ------------------------------------------------------------------ engine and dependencies
    def engine(self):
        """The scene logic, created on first use after the Python dependencies are there."""
        if self._engine is None:
            if not dependencies.ensure(lambda text: slicer.util.confirmOkCancelDisplay(text, "LNSynth")):
                raise RuntimeError("LNSynth's Python dependencies are not installed (Advanced > Install Python "
                                   "dependencies, or `PythonSlicer -m pip install -r LNSynthLib/requirements.txt`).")
            from LNSynthModuleLib.logic import LNSynthLogic

            self._engine = LNSynthLogic(slicer.mrmlScene, _path(self._parameterNode.workFolder)
                                        or Path(slicer.app.temporaryPath) / "LNSynth")
        self._engine.work_root = _path(self._parameterNode.workFolder) or self._engine.work_root
        return self._engine

    def onInstallDependencies(self) -> None:
        with slicer.util.tryWithErrorDisplay("Installing Python dependencies failed.", waitCursor=True):
            ok = dependencies.ensure(lambda text: slicer.util.confirmOkCancelDisplay(text, "LNSynth"))
            self.ui.statusLabel.text = "All Python dependencies are installed." if ok else "Not installed."

    # ------------------------------------------------------------------ background jobs
    def startJob(self, chain, button, onDone=None) -> None:
        self._job, self._jobButton, self._jobDone = chain, button, onDone
        self._jobButtonText = button.text
        for name in ACTION_BUTTONS:
            getattr(self.ui, name).enabled = False
        button.enabled = True
        button.text = "Cancel"
        self.ui.progressBar.setVisible(True)
        self.ui.progressBar.value = 0
        self.ui.statusLabel.text = chain.state.text
        self._timer.start()

    def _toggleOrCancel(self, button) -> bool:
        """True when the click was a Cancel of the running job."""
        if self._job is not None and self._jobButton is button:
            self.cancelJob()
            return True
        return False

    def cancelJob(self) -> None:
        if self._job is None:
            return
        self._job.cancel()
        self.onPollJob()

    def onPollJob(self) -> None:
        job = self._job
        if job is None:
            self._timer.stop()
            return
        state = job.poll()
        self.ui.progressBar.value = int(round(100 * state.fraction))
        self.ui.statusLabel.text = state.text
        if state.running:
            return
        self._timer.stop()
        self._job = None
        self._jobButton.text = self._jobButtonText
        self.ui.progressBar.setVisible(False)
        self._updateButtons()
        if state.error:
            self.ui.statusLabel.text = "Failed: see the log in " + str(job.log_path or job.run_dir)
            slicer.util.errorDisplay(state.error, windowTitle="LNSynth")
        elif state.succeeded and self._jobDone is not None:
            self._jobDone(job.result)

    # ------------------------------------------------------------------ 1) anatomy
    def onCreateAnatomy(self) -> None:
        if self._toggleOrCancel(self.ui.createAnatomyButton):
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not start the anatomy segmentation."):
            chain = self.engine().start_anatomy(p.inputVolume, p.anatomyMethod, p.device, _path(p.weightsFolder))
            self.startJob(chain, self.ui.createAnatomyButton, self._setAnatomy)

    def onGroupTotalSeg(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not group the TotalSegmentator file.", waitCursor=True):
            self._setAnatomy(self.engine().anatomy_from_totalseg_file(p.inputVolume, _path(p.totalSegFile)))

    def _setAnatomy(self, node) -> None:
        self._parameterNode.anatomySegmentation = node
        self.ui.statusLabel.text = f"Anatomy ready: {node.GetName()}"

    # ------------------------------------------------------------------ 2) lymph nodes
    def onEditLymphNodes(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not open the Segment Editor."):
            node, segment_id = self.engine().lymph_node_segmentation(p.inputVolume, p.lymphNodeSegmentation)
            p.lymphNodeSegmentation = node
            slicer.util.selectModule("SegmentEditor")
            editor = slicer.modules.SegmentEditorWidget.editor
            editor.setSegmentationNode(node)
            editor.setSourceVolumeNode(p.inputVolume)
            editor.setCurrentSegmentID(segment_id)

    # ------------------------------------------------------------------ 3) synthesis
    def onSynthesize(self) -> None:
        if self._toggleOrCancel(self.ui.synthesizeButton):
            return
        from LNSynthModuleLib.logic import SynthesisSettings

        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not start the synthesis."):
            settings = SynthesisSettings(checkpoint=_path(p.checkpointPath), n_samples=p.numberOfSamples,
                                         sampler=p.sampler, steps=p.steps, seed=p.seed,
                                         transforms=p.useTransforms, device=p.device, paste_into_ct=p.pasteIntoCT)
            chain = self.engine().start_synthesis(p.inputVolume, p.anatomySegmentation, p.lymphNodeSegmentation,
                                                  settings)
            self.startJob(chain, self.ui.synthesizeButton, self._showSynthetic)

    def _showSynthetic(self, loaded) -> None:
        if loaded:
            slicer.util.setSliceViewerLayers(background=loaded[0].ct, fit=True)
        self.ui.statusLabel.text = f"{len(loaded)} synthetic volume(s) added to the scene."

    # ------------------------------------------------------------------ 4) nnU-Net
    def onExportDataset(self) -> None:
        if self._toggleOrCancel(self.ui.exportDatasetButton):
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not export the nnU-Net dataset."):
            chain = self.engine().start_nnunet_export(_path(p.nnunetDatasetFolder), _path(p.casesFolder),
                                                      paste=p.pasteIntoCT)
            self.startJob(chain, self.ui.exportDatasetButton)

    def onTrainNnunet(self) -> None:
        if self._toggleOrCancel(self.ui.trainNnunetButton):
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not start nnU-Net training."):
            chain = self.engine().start_nnunet_train(_path(p.nnunetDatasetFolder), p.nnunetEpochs, p.device,
                                                     iterations=p.nnunetIterations)
            self.startJob(chain, self.ui.trainNnunetButton, self._setModel)

    def _setModel(self, model_dir) -> None:
        if model_dir:
            self._parameterNode.nnunetModelFolder = Path(model_dir)

    def onPredict(self) -> None:
        if self._toggleOrCancel(self.ui.predictButton):
            return
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not start nnU-Net prediction."):
            chain = self.engine().start_nnunet_predict(p.inputVolume, _path(p.nnunetModelFolder), p.device)
            self.startJob(chain, self.ui.predictButton)


class LNSynthTest(ScriptedLoadableModuleTest):
    """Runs inside a real Slicer: the same flow as the slicer-core tests, through the module's logic.

    Set LNSYNTH_TEST_CT / LNSYNTH_TEST_TOTALSEG to the example CT and its TotalSegmentator labels
    and LNSYNTH_TEST_CHECKPOINT to a trained checkpoint to also run a synthesis.
    """

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_LNSynth_flow()

    def test_LNSynth_flow(self):
        import numpy as np
        from LNSynthModuleLib.logic import LNSynthLogic, SynthesisSettings
        from scipy import ndimage

        from LNSynthLib import mrml_bridge as mb
        from LNSynthLib.anatomy.groups import LABEL_NAMES

        ct_path, ts_path = os.environ.get("LNSYNTH_TEST_CT"), os.environ.get("LNSYNTH_TEST_TOTALSEG")
        if not (ct_path and ts_path):
            self.delayDisplay("LNSYNTH_TEST_CT / LNSYNTH_TEST_TOTALSEG not set: flow test skipped")
            return
        logic = LNSynthLogic(slicer.mrmlScene, Path(slicer.app.temporaryPath) / "LNSynthTest")
        ct_node = mb.load_volume_file(slicer.mrmlScene, ct_path, "example CT")
        anatomy = logic.anatomy_from_totalseg_file(ct_node, ts_path)
        self.assertEqual(mb.segment_names(anatomy), LABEL_NAMES)
        ct = mb.node_to_volume(ct_node)
        labels = mb.segmentation_to_labels(anatomy, dict(enumerate(LABEL_NAMES)), ct).array
        depth = ndimage.distance_transform_edt(labels == 1)
        center = np.argwhere(depth >= 4)[0]
        ln_node, _ = logic.lymph_node_segmentation(ct_node)
        self.assertGreater(logic.add_sphere(ln_node, ct_node, tuple(ct.geometry.index_to_physical(
            center[::-1].astype(float))), 6.0), 0)
        checkpoint = os.environ.get("LNSYNTH_TEST_CHECKPOINT")
        if not checkpoint:
            self.delayDisplay("LNSYNTH_TEST_CHECKPOINT not set: synthesis skipped")
            return
        chain = logic.start_synthesis(ct_node, anatomy, ln_node, SynthesisSettings(Path(checkpoint), n_samples=1,
                                                                                   steps=5))
        while chain.poll().running:
            slicer.app.processEvents()
            qt.QThread.msleep(200)
        self.assertTrue(chain.state.succeeded, chain.state.error)
        self.assertGreaterEqual(len(chain.result), 1)
        logging.info("LNSynth flow test passed")
        self.delayDisplay("Test passed")
