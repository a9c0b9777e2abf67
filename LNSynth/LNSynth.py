"""LNSynth: synthesize abdominal CT lymph-node training data with LN-DDPM and train nnU-Net on it.

Thin Slicer module: the widget reads and writes a parameter node and calls the logic in
`LNSynthModuleLib`; all computation runs in background `lnsynth` processes (LNSynthLib).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import qt
import slicer
import vtk
from LNSynthModuleLib import dependencies, help_text, sample_data
from LNSynthModuleLib.panel_jobs import JobPanelMixin
from LNSynthModuleLib.panel_results import SynthesisResultsMixin
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from LNSynthScene import form
from LNSynthScene.form import FROM_CHECKPOINT

ACTION_BUTTONS = ("createAnatomyButton", "groupTotalSegButton", "addTrainingCaseButton", "trainDdpmButton",
                  "synthesizeButton", "exportDatasetButton", "trainNnunetButton", "predictButton",
                  "installDependenciesButton", "importWeightsButton")


class LNSynth(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "LNSynth"
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = ["Segmentations", "SegmentEditor"]
        self.parent.contributors = ["LNSynth developers"]
        self.parent.helpText = help_text.HELP
        self.parent.acknowledgementText = help_text.ACKNOWLEDGEMENT
        slicer.app.connect("startupCompleted()", sample_data.register)


@parameterNodeWrapper
class LNSynthParameterNode:
    """Defaults, ranges and choices come from the form's one declaration (`LNSynthScene.form`), shared with the page."""

    inputVolume: vtkMRMLScalarVolumeNode
    anatomyMethod: Annotated[str, Choice(form.choices("anatomyMethod"))] = form.default("anatomyMethod")
    totalSegFile: Path
    anatomySegmentation: vtkMRMLSegmentationNode
    lymphNodeSegmentation: vtkMRMLSegmentationNode
    casesFolder: Path
    ddpmConfig: Annotated[str, Choice(form.choices("ddpmConfig"))] = form.default("ddpmConfig")
    ddpmConfigFile: Path
    ddpmIterations: Annotated[int, WithinRange(*form.value_range("ddpmIterations"))] = form.default("ddpmIterations")
    ddpmRunFolder: Path
    checkpointPath: Path
    synthesisMode: Annotated[str, Choice(form.choices("synthesisMode"))] = form.default("synthesisMode")
    inctMarginMm: Annotated[float, WithinRange(*form.value_range("inctMarginMm"))] = form.default("inctMarginMm")
    sampler: Annotated[str, Choice(form.choices("sampler"))] = form.default("sampler")
    steps: Annotated[int, WithinRange(*form.value_range("steps"))] = form.default("steps")
    numberOfSamples: Annotated[int, WithinRange(*form.value_range("numberOfSamples"))] = form.default("numberOfSamples")
    seed: Annotated[int, WithinRange(*form.value_range("seed"))] = form.default("seed")
    useTransforms: bool = form.default("useTransforms")
    pasteIntoCT: bool = form.default("pasteIntoCT")
    qualityControl: bool = form.default("qualityControl")
    nnunetDatasetFolder: Path
    nnunetEpochs: Annotated[int, WithinRange(*form.value_range("nnunetEpochs"))] = form.default("nnunetEpochs")
    nnunetIterations: Annotated[int, WithinRange(*form.value_range("nnunetIterations"))] = form.default(
        "nnunetIterations")
    nnunetPatchSize: str = form.default("nnunetPatchSize")
    nnunetModelFolder: Path
    device: Annotated[str, Choice(form.choices("device"))] = form.default("device")
    workFolder: Path
    weightsFolder: Path


def _path(value) -> Path | None:
    """Unset Path parameters read back as '.' or ''."""
    return None if value is None or str(value) in ("", ".") else Path(value)


class LNSynthLogic(ScriptedLoadableModuleLogic):
    """The module logic (`slicer.util.getModuleLogic("LNSynth")`): the parameter node and the scene logic.

    The work itself is in `LNSynthScene.logic.SceneLogic`, which needs no Qt and is tested on slicer-core.
    """

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self._scene_logic = None

    def getParameterNode(self):
        return LNSynthParameterNode(super().getParameterNode())

    @staticmethod
    def defaultWorkFolder() -> Path:
        """The user's work folder: chosen once (Slicer's settings) or `<default scene folder>/LNSynth`."""
        from LNSynthModuleLib import work_folder

        return work_folder.work_folder(slicer.app.userSettings(), slicer.app.defaultScenePath,
                                       slicer.app.temporaryPath)

    def sceneLogic(self, work_folder: Path | None = None):
        """Scene operations and background jobs on `slicer.mrmlScene` (work folder: the panel's)."""
        from LNSynthScene.logic import SceneLogic

        work = work_folder or self.defaultWorkFolder()
        if self._scene_logic is None:
            self._scene_logic = SceneLogic(slicer.mrmlScene, work)
            self._scene_logic.results_on_demand = True   # synthesis samples listed, one loaded at a time
        self._scene_logic.work_root = Path(work)
        return self._scene_logic


class LNSynthWidget(JobPanelMixin, SynthesisResultsMixin, ScriptedLoadableModuleWidget, VTKObservationMixin):
    actionButtons = ACTION_BUTTONS

    def __init__(self, parent=None) -> None:
        from LNSynthModuleLib.install_gate import InstallGate

        self._initJobs()
        self._installGate = InstallGate(self._installBusy, self._showStatus)
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._pathEdits = {}

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LNSynth.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.ui.progressBar.setVisible(False)
        self.logic = LNSynthLogic()
        problem = dependencies.slicer_version_problem(slicer.app.majorVersion, slicer.app.minorVersion)
        if problem:
            self.ui.statusLabel.text = problem
            uiWidget.enabled = False
            return
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        for button, handler in (("createAnatomyButton", self.onCreateAnatomy), ("groupTotalSegButton", self.onGroupTotalSeg),
                                ("editLymphNodesButton", self.onEditLymphNodes),
                                ("addTrainingCaseButton", self.onAddTrainingCase), ("trainDdpmButton", self.onTrainDdpm),
                                ("synthesizeButton", self.onSynthesize), ("exportDatasetButton", self.onExportDataset),
                                ("trainNnunetButton", self.onTrainNnunet), ("predictButton", self.onPredict),
                                ("installDependenciesButton", self.onInstallDependencies),
                                ("importWeightsButton", self.onImportWeights),
                                ("showLogButton", self.onShowLog)):
            getattr(self.ui, button).connect("clicked(bool)", handler)
        # ctkPathLineEdit emits currentPathChanged only for acceptable (non-empty) text, so clearing a field
        # would keep the old path: watch the line edit's text as well.
        for edit in slicer.util.findChildren(uiWidget, className="ctkPathLineEdit"):
            name = edit.property("SlicerParameterName")
            if name:
                self._pathEdits[name] = edit
                line = slicer.util.findChildren(edit, className="QLineEdit")[0]
                line.connect("textChanged(QString)", lambda text, n=name: self._onPathText(n, text))
        self._setupResults()
        self.initializeParameterNode()
        self._installJobGuards()

    def cleanup(self) -> None:
        self._releaseJobs()
        self.removeObservers()

    def onReload(self) -> None:
        """A reload asks whether to keep a running job (exit stops it): `cleanup()` needs to know which."""
        self._reloading = True
        ScriptedLoadableModuleWidget.onReload(self)

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)

    def onSceneStartClose(self, caller, event) -> None:
        self._onSceneClose()   # asks: keep the job running, or stop it
        self._dropResults(remove=False)   # the close removes their nodes
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        p = self._parameterNode
        if not p.inputVolume:
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if first and not first.IsA("vtkMRMLLabelMapVolumeNode"):
                p.inputVolume = first
        from LNSynthModuleLib import work_folder

        resolved = work_folder.resolve(_path(p.workFolder), slicer.app.userSettings(), slicer.app.defaultScenePath,
                                       slicer.app.temporaryPath)
        if _path(p.workFolder) != resolved:   # unset, or the temporary folder of an older scene
            p.workFolder = resolved

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateButtons)
            self._updateButtons()

    def _onPathText(self, name: str, text: str) -> None:
        """An emptied path field unsets its parameter."""
        p = self._parameterNode
        if p and not text.strip() and _path(getattr(p, name)) is not None:
            setattr(p, name, Path())

    def _blankUnsetPaths(self) -> None:
        """Unset Path parameters are written to the field as '.'; show them empty."""
        p = self._parameterNode
        for name, edit in self._pathEdits.items():
            if p and _path(getattr(p, name)) is None and edit.currentPath not in ("",):
                edit.currentPath = ""

    def _updateButtons(self, caller=None, event=None) -> None:
        from LNSynthModuleLib import work_folder

        qt.QTimer.singleShot(0, self._blankUnsetPaths)  # after the GUI connectors wrote the values
        p = self._parameterNode
        if p is not None and _path(p.workFolder) is not None:   # the user's choice, for every later scene
            work_folder.remember(slicer.app.userSettings(), _path(p.workFolder), slicer.app.temporaryPath)
            self.ui.workFolderLabel.text = work_folder.describe(_path(p.workFolder))
        self._updateSynthesisMode()
        if self._job is not None:
            return
        has_ct = bool(p and p.inputVolume)
        has_case = bool(has_ct and p.anatomySegmentation and p.lymphNodeSegmentation)
        cases = self._trainingCases() if p else []
        self.ui.createAnatomyButton.enabled = has_ct
        self.ui.groupTotalSegButton.enabled = has_ct and _path(p.totalSegFile) is not None
        self.ui.editLymphNodesButton.enabled = has_ct
        self.ui.addTrainingCaseButton.enabled = has_case
        self.ui.trainDdpmButton.enabled = bool(cases)
        self.ui.synthesizeButton.enabled = bool(has_case and _path(p.checkpointPath))
        self.ui.exportDatasetButton.enabled = bool(p and _path(p.nnunetDatasetFolder))
        self.ui.trainNnunetButton.enabled = bool(p and _path(p.nnunetDatasetFolder))
        self.ui.predictButton.enabled = bool(has_ct and _path(p.nnunetModelFolder))
        self.ui.importWeightsButton.enabled = self.ui.installDependenciesButton.enabled = True
        self.ui.trainingCasesLabel.text = (f"{len(cases)} case(s): " + ", ".join(cases[:6])
                                           + (" ..." if len(cases) > 6 else "")) if cases else "no training cases yet"

    # ------------------------------------------------------------------ logic and dependencies
    def _workFolder(self) -> Path:
        return _path(self._parameterNode.workFolder) or self.logic.defaultWorkFolder()

    def _casesFolder(self) -> Path:
        return _path(self._parameterNode.casesFolder) or self._workFolder() / "cases"

    def _trainingCases(self) -> list[str]:
        from LNSynthLib.cases import list_cases

        return [c.name for c in list_cases(self._casesFolder())] if self._casesFolder().is_dir() else []

    def engine(self):
        """Scene logic for what runs inside Slicer (needs only what Slicer bundles)."""
        return self.logic.sceneLogic(self._workFolder())

    def _ensurePackages(self, check_always: bool = False) -> bool | None:
        """The jobs' packages, installed after asking (one install at a time, with feedback); None: declined."""
        def confirm(text):
            return slicer.util.confirmOkCancelDisplay(text, "LNSynth")

        return self._installGate.run(
            lambda ask: dependencies.ensure(ask, self._workFolder(), check_always=check_always), confirm,
            needed=lambda: check_always or bool(dependencies.missing(dependencies.read_pins())))

    def jobEngine(self):
        """Scene logic for actions that start background jobs: their Python packages first (after asking).
        None when the install was declined or another one runs (the status line says so)."""
        ok = self._ensurePackages()
        if ok is None:
            return None
        if not ok:
            raise RuntimeError("The background jobs' Python packages are not installed (Advanced > Install "
                               "Python dependencies).")
        return self.engine()

    def onInstallDependencies(self) -> None:
        with slicer.util.tryWithErrorDisplay("Installing Python dependencies failed."):
            ok = self._ensurePackages(check_always=True)
            if ok is None:
                return
            older = dependencies.older_than_tested(dependencies.read_pins())
            self.ui.statusLabel.text = ("All Python dependencies are installed." if ok else "Not installed.") + (
                "\nOlder than tested (kept): " + "; ".join(older) if older else "")

    # ------------------------------------------------------------------ 1) anatomy
    def onCreateAnatomy(self) -> None:
        if self._toggleOrCancel(self.ui.createAnatomyButton):
            return
        p = self._parameterNode
        self._startWith("Could not start the anatomy segmentation.", "createAnatomyButton",
                        lambda e: e.start_anatomy(p.inputVolume, p.anatomyMethod, p.device, _path(p.weightsFolder)))

    def onGroupTotalSeg(self) -> None:
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay("Could not group the TotalSegmentator file.", waitCursor=True):
            self._setAnatomy(self.engine().anatomy_from_totalseg_file(p.inputVolume, _path(p.totalSegFile)))

    def onImportWeights(self) -> None:
        """The offline path: a TotalSegmentator weights zip, unpacked by TotalSegmentator's own import (a job)."""
        if self._toggleOrCancel(self.ui.importWeightsButton):
            return
        p = self._parameterNode
        path = qt.QFileDialog.getOpenFileName(slicer.util.mainWindow(), "TotalSegmentator weights (zip)", "",
                                              "Zip files (*.zip)")
        if not path:
            return
        self._startWith("Could not import the TotalSegmentator weights.", "importWeightsButton",
                        lambda e: e.start_weights_import(path, _path(p.weightsFolder)))

    def _weightsImported(self, folder) -> None:
        self.ui.statusLabel.text = f"TotalSegmentator weights imported into {folder}; Create anatomy can run offline."

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
            editor = slicer.util.getModuleWidget("SegmentEditor").editor
            editor.setSegmentationNode(node)
            editor.setSourceVolumeNode(p.inputVolume)
            editor.setCurrentSegmentID(segment_id)
            editor.setActiveEffectByName("Paint")

    # ------------------------------------------------------------------ 3) LN-DDPM training
    def onAddTrainingCase(self) -> None:
        if self._toggleOrCancel(self.ui.addTrainingCaseButton):
            return
        p = self._parameterNode
        cases = self._casesFolder()

        def start(engine):
            p.casesFolder = cases
            return engine.start_training_case(p.inputVolume, p.anatomySegmentation, p.lymphNodeSegmentation, cases)

        self._startWith("Could not add the training case.", "addTrainingCaseButton", start)

    def _caseAdded(self, case) -> None:
        self.ui.statusLabel.text = f"Training case added: {case}"

    def onTrainDdpm(self) -> None:
        if self._toggleOrCancel(self.ui.trainDdpmButton):
            return
        from LNSynthModuleLib.panel_rules import ddpm_run_folder

        p = self._parameterNode
        config = str(_path(p.ddpmConfigFile) or "") if p.ddpmConfig == "file" else p.ddpmConfig

        def start(engine):
            p.ddpmRunFolder = run_dir = ddpm_run_folder(_path(p.ddpmRunFolder), self._workFolder(), config)
            return engine.start_ddpm_training(self._casesFolder(), run_dir, config,
                                              iterations=p.ddpmIterations or None, device=p.device)

        self._startWith("Could not start LN-DDPM training.", "trainDdpmButton", start)

    def _setCheckpoint(self, checkpoint) -> None:
        if checkpoint:
            self._parameterNode.checkpointPath = Path(checkpoint)
            self.ui.statusLabel.text = f"LN-DDPM checkpoint: {checkpoint}"

    # ------------------------------------------------------------------ 4) synthesis
    def onSynthesize(self) -> None:
        if self._toggleOrCancel(self.ui.synthesizeButton):
            return
        from LNSynthScene.logic import SynthesisSettings

        p = self._parameterNode
        settings = SynthesisSettings(checkpoint=_path(p.checkpointPath), n_samples=p.numberOfSamples,
                                     sampler=None if p.sampler == FROM_CHECKPOINT else p.sampler,
                                     steps=p.steps or None, seed=p.seed, transforms=p.useTransforms,
                                     device=p.device, paste_into_ct=p.pasteIntoCT, qc=p.qualityControl,
                                     mode=p.synthesisMode, inct_margin_mm=p.inctMarginMm)
        self._startWith("Could not start the synthesis.", "synthesizeButton", lambda e: e.start_synthesis(
            p.inputVolume, p.anatomySegmentation, p.lymphNodeSegmentation, settings))

    # ------------------------------------------------------------------ 5) nnU-Net
    def onExportDataset(self) -> None:
        if self._toggleOrCancel(self.ui.exportDatasetButton):
            return
        from LNSynthModuleLib.panel_rules import existing_datasets, replace_question

        p = self._parameterNode
        present = existing_datasets(_path(p.nnunetDatasetFolder))   # a second export: replace only after asking
        if present and not self._ask(replace_question(present)):
            self.ui.statusLabel.text = "Export not started: the dataset already there is kept."
            return
        self._startWith("Could not export the nnU-Net dataset.", "exportDatasetButton", lambda e: e.start_nnunet_export(
            _path(p.nnunetDatasetFolder), _path(p.casesFolder), paste=p.pasteIntoCT, qc=p.qualityControl,
            overwrite=bool(present)))

    def onTrainNnunet(self) -> None:
        if self._toggleOrCancel(self.ui.trainNnunetButton):
            return
        p = self._parameterNode
        self._startWith("Could not start nnU-Net training.", "trainNnunetButton", lambda e: e.start_nnunet_train(
            _path(p.nnunetDatasetFolder), p.nnunetEpochs, p.device, iterations=p.nnunetIterations,
            patch_size=form.patch_size(p.nnunetPatchSize, "nnU-Net section")))

    def _setModel(self, model_dir) -> None:
        if model_dir:
            self._parameterNode.nnunetModelFolder = Path(model_dir)

    def onPredict(self) -> None:
        if self._toggleOrCancel(self.ui.predictButton):
            return
        p = self._parameterNode
        self._startWith("Could not start nnU-Net prediction.", "predictButton", lambda e: e.start_nnunet_predict(
            p.inputVolume, _path(p.nnunetModelFolder), p.device))


class LNSynthTest(ScriptedLoadableModuleTest):
    """The panel's whole flow on a phantom CT it makes: coarse anatomy, a painted node, a short tiny
    LN-DDPM training in the background, synthesis, and the painted node found in the result.

    The same flow (`LNSynthModuleLib.selftest.run_flow`) runs in the test suite on slicer-core. A few
    minutes on a CPU; the background jobs need the job packages (Advanced > Install Python dependencies):
    where they are missing (e.g. on the extension factory) the test is skipped with a message saying so.
    """

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        """Reload and Test and the SelfTests module call this directly, outside unittest's runner, where a
        skip would count as a failure: show the reason instead."""
        import unittest

        self.setUp()
        try:
            self.test_LNSynth_flow()
        except unittest.SkipTest as skipped:
            logging.warning(str(skipped))
            self.delayDisplay(str(skipped))

    def test_LNSynth_flow(self):
        import tempfile

        from LNSynthModuleLib.selftest import run_flow, skip_unless_job_packages

        skip_unless_job_packages(self)

        def wait(chain):
            while chain.poll().running:
                slicer.app.processEvents()
                qt.QThread.msleep(200)
            return chain.state

        with tempfile.TemporaryDirectory(dir=slicer.app.temporaryPath) as work:
            report = run_flow(slicer.mrmlScene, Path(work), wait=wait, progress=self.delayDisplay)
        logging.info(f"LNSynth self-test: {report}")
        self.assertGreater(report.dice, 0.8)
        self.delayDisplay("Test passed")
