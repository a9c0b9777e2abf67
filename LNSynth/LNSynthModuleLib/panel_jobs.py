"""The LNSynth widget's background-job and install handling (a mixin of `LNSynthWidget`).

Qt and Slicer are imported inside the methods: this file is imported when Slicer loads the module,
and the start-up test imports it without Qt. The decisions themselves are Qt-free and tested
(`job_guard`, `install_gate`, `panel_rules`); this file only connects them to Slicer's dialogs.

Slicer facts relied on (v5.10.0 and v5.12.3):
- `slicer.util.confirmYesNoDisplay(text, windowTitle)` returns True in testing mode without a dialog.
- `slicer.app.setOverrideCursor` / `restoreOverrideCursor`, as `slicer.util.tryWithErrorDisplay(waitCursor=True)`.
- `qSlicerMainWindow::closeEvent` asks its own exit question and closes unless the event is ignored; an
  event filter on the main window sees the QCloseEvent first.
- `ScriptedLoadableModuleWidget.onReload` calls `slicer.util.reloadScriptedModule`, which reloads only
  LNSynth.py and calls the old widget's `cleanup()`; `LNSynthModuleLib` stays imported.
"""

from __future__ import annotations

from pathlib import Path

from . import job_guard, panel_rules

# What the panel does with each button's result (the same after a reload hands a running job over).
DONE_HANDLERS = {"createAnatomyButton": "_setAnatomy", "addTrainingCaseButton": "_caseAdded",
                 "trainDdpmButton": "_setCheckpoint", "synthesizeButton": "_showSynthetic",
                 "trainNnunetButton": "_setModel", "importWeightsButton": "_weightsImported"}


class JobPanelMixin:
    """Start, follow, cancel, keep and hand over background jobs; needs `self.ui`, `actionButtons`."""

    actionButtons: tuple[str, ...] = ()

    def _initJobs(self) -> None:
        import qt

        self._job = None
        self._jobButton = None
        self._jobButtonText = ""
        self._jobDone = None
        self._lastLog = None
        self._shownLog = None
        self._reloading = False
        self._closeGuard = None
        self._timer = qt.QTimer()
        self._timer.setInterval(500)
        self._timer.connect("timeout()", self.onPollJob)

    def _ask(self, text: str) -> bool:
        import slicer

        return bool(slicer.util.confirmYesNoDisplay(text, windowTitle="LNSynth"))

    # ------------------------------------------------------------------ guards: exit, reload, scene close
    def _installJobGuards(self) -> None:
        """Refuse the main window's close while a job runs and the user wants it; follow a reload's job."""
        import qt
        import slicer

        window = slicer.util.mainWindow()
        if window is not None:
            self._closeGuard = job_guard.close_guard(
                qt.QObject, qt.QEvent, lambda: job_guard.exit_allowed(self._job, self._ask, self._jobButtonText))
            window.installEventFilter(self._closeGuard)
        handed = job_guard.take_over()
        if handed is not None:
            chain, button_name = handed
            self.startJob(chain, button_name)

    def _releaseJobs(self) -> None:
        """`cleanup()`: a reload asks whether to keep the job; any other unload (exit) stops it."""
        import slicer

        if self._closeGuard is not None and slicer.util.mainWindow() is not None:
            slicer.util.mainWindow().removeEventFilter(self._closeGuard)
        self._timer.stop()
        if self._reloading and self._jobButton is not None:
            job_guard.on_reload(self._job, self._jobButton.objectName, self._ask, self._jobButtonText)
        else:
            job_guard.stop_on_unload(self._job)

    def _onSceneClose(self) -> None:
        if not job_guard.running(self._job):
            return
        if job_guard.on_scene_close(self._job, self._ask, self._jobButtonText):
            if self._job.scene_bound:
                self._jobDone = self._resultsLeftOnDisk
        else:
            self.onPollJob()

    def _resultsLeftOnDisk(self, run_dir) -> None:
        self.ui.statusLabel.text = job_guard.results_left_on_disk(run_dir)

    # ------------------------------------------------------------------ jobs
    def startJob(self, chain, button_name: str) -> None:
        button = getattr(self.ui, button_name)
        handler = DONE_HANDLERS.get(button_name)
        self._job, self._jobButton = chain, button
        self._jobDone = getattr(self, handler) if handler else None
        self._lastLog = chain.log_path
        self._jobButtonText = button.text
        for name in self.actionButtons:
            getattr(self.ui, name).enabled = False
        button.enabled = True
        button.text = "Cancel"
        self.ui.progressBar.setVisible(True)
        self.ui.progressBar.value = 0
        self.ui.statusLabel.text = chain.state.text
        self._shownLog = panel_rules.refresh_log(self.ui.logTextEdit, [], None)
        self._timer.start()

    def _startWith(self, message: str, button_name: str, start) -> None:
        """Packages first (no wait cursor: the install asks), then `start(engine)` writes the job's inputs
        under a wait cursor (the CT is written in the GUI thread) and the panel follows the job."""
        import slicer

        with slicer.util.tryWithErrorDisplay(message):
            engine = self.jobEngine()
        if engine is None:   # declined, or an install is running: the status line says so
            return
        with slicer.util.tryWithErrorDisplay(message, waitCursor=True):
            self.startJob(start(engine), button_name)

    def _toggleOrCancel(self, button) -> bool:
        """True when the click was on the running job's button (Cancel, after asking)."""
        if self._job is not None and self._jobButton is button:
            if job_guard.confirm_cancel(self._job, self._ask, self._jobButtonText):
                self.onPollJob()
            return True
        return False

    def onPollJob(self) -> None:
        job = self._job
        if job is None:
            self._timer.stop()
            return
        state = job.poll()
        self.ui.progressBar.value = int(round(100 * state.fraction))
        self.ui.statusLabel.text = state.text
        self._shownLog = panel_rules.refresh_log(self.ui.logTextEdit, state.log_tail[-40:], self._shownLog)
        if state.running:
            return
        self._timer.stop()
        self._job = None
        self._jobButton.text = self._jobButtonText
        self.ui.progressBar.setVisible(False)
        if self._parameterNode is None:   # the scene was closed while the job ran on
            self.initializeParameterNode()
        self._updateButtons()
        if state.error:
            import slicer

            self.ui.statusLabel.text = "Failed: see the log (Show log)."
            slicer.util.errorDisplay(state.error, windowTitle="LNSynth")
        elif state.succeeded and self._jobDone is not None:
            self._jobDone(job.result)

    def onShowLog(self) -> None:
        import qt

        if self._lastLog and Path(self._lastLog).is_file():
            qt.QDesktopServices.openUrl(qt.QUrl.fromLocalFile(str(self._lastLog)))
        else:
            self.ui.statusLabel.text = f"No job log yet (logs go to {self._workFolder() / 'logs'})."

    # ------------------------------------------------------------------ installs
    def _installBusy(self, busy: bool) -> None:
        """Wait cursor and disabled buttons while packages install (re-enabled as the parameters allow)."""
        import qt
        import slicer

        if busy:
            slicer.app.setOverrideCursor(qt.Qt.WaitCursor)
            for name in self.actionButtons:
                getattr(self.ui, name).enabled = False
        else:
            slicer.app.restoreOverrideCursor()
            self.ui.installDependenciesButton.enabled = True
            self._updateButtons()
        slicer.app.processEvents()   # the status line and cursor show before the blocking install

    def _showStatus(self, text: str) -> None:
        import slicer

        self.ui.statusLabel.text = text
        slicer.app.processEvents()
