"""The LNSynth widget's synthesis results (a mixin of `LNSynthWidget`): patch samples, or in-CT results
listed in the panel and loaded one at a time, side by side with the original CT.

Qt and Slicer are imported inside the methods (this file is imported at Slicer's start-up and by the
start-up test without Qt). The decisions are in `inct_results` (tested on slicer-core).

Slicer facts relied on (v5.10.0 and v5.12.3): `slicer.app.applicationLogic()` is the scene's
`vtkSlicerApplicationLogic` (a `vtkMRMLApplicationLogic`: `FitSliceToAll`); a scene close removes every
node, so after `StartCloseEvent` the results only drop their references.
"""

from __future__ import annotations

from LNSynthLib.diffusion.sample.inct_defaults import SYNTHESIS_MODES

IN_CT = SYNTHESIS_MODES[1]   # `logic` is not imported here: it loads SimpleITK, too slow for Slicer's start-up

PATCH_ONLY_WIDGETS = ("transformsCheckBox", "pasteCheckBox", "qcCheckBox")   # `lnsynth sample --mode patch` options
IN_CT_ONLY_WIDGETS = ("inctMarginSpinBox",)


class SynthesisResultsMixin:
    """Needs `self.ui`, `self._parameterNode`, `self.engine()`."""

    _inctResults = None

    def _setupResults(self) -> None:
        self.ui.synthesisResultComboBox.connect("activated(int)", self.onSynthesisResultChosen)
        self._listResults(None)

    def _updateSynthesisMode(self) -> None:
        """Patch-only options are greyed out in in-CT mode, and the margin in patch mode."""
        p = self._parameterNode
        in_ct = bool(p and p.synthesisMode == IN_CT)
        for name in PATCH_ONLY_WIDGETS:
            getattr(self.ui, name).enabled = not in_ct
        for name in IN_CT_ONLY_WIDGETS:
            getattr(self.ui, name).enabled = in_ct

    def _showSynthetic(self, loaded) -> None:
        """The synthesis job's result: in-CT results (the first one shown), or the patch samples."""
        import slicer

        from LNSynthScene.inct_results import InCTResults
        from LNSynthScene.synthesis_results import PatchResults

        if isinstance(loaded, (InCTResults, PatchResults)):   # listed, one loaded at a time
            self._dropResults(remove=True)   # a new synthesis replaces the results shown before
            self._inctResults = loaded
            self._listResults(loaded)
            self._showResult(0)
            return
        if loaded:
            slicer.util.setSliceViewerLayers(background=loaded[0].ct, fit=True)
        self.ui.statusLabel.text = f"{len(loaded)} synthetic volume(s) added to the scene."

    def onSynthesisResultChosen(self, index: int) -> None:
        """Load the chosen result in place of the one shown (one result CT in memory at a time)."""
        import slicer

        if self._inctResults is None or index < 0:
            return
        with slicer.util.tryWithErrorDisplay("Could not load the in-CT result.", waitCursor=True):
            self._showResult(index)

    def _showResult(self, index: int) -> None:
        import slicer

        from LNSynthScene.inct_results import InCTResults, node_center_ras, show_side_by_side

        results = self._inctResults
        shown = results.show(index)
        show_side_by_side(slicer.mrmlScene, slicer.app.applicationLogic(), results.original, shown.ct,
                          node_center_ras(results))
        self.ui.synthesisResultComboBox.currentIndex = index
        entry = results.entries[index]
        kind = "In-CT result" if isinstance(results, InCTResults) else "Synthetic sample"
        self.ui.statusLabel.text = (f"{kind} {index + 1} of {len(results.entries)}: {shown.ct.GetName()} "
                                    f"({entry.changed_voxels} voxels changed), right of the original; "
                                    f"the views are linked. Files: {results.folder}")

    def _listResults(self, results) -> None:
        combo = self.ui.synthesisResultComboBox
        combo.clear()
        for name in results.names if results is not None else []:
            combo.addItem(name)
        combo.enabled = results is not None and len(results.names) > 1

    def _dropResults(self, remove: bool) -> None:
        """Forget the listed results; `remove`: also take the shown one out of the scene (else the scene
        is closing and removes it itself)."""
        if self._inctResults is not None:
            if remove:
                self._inctResults.clear()
            else:
                self._inctResults.forget()
        self._inctResults = None
        self._listResults(None)
