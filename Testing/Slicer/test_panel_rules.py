"""The panel's small decisions: the LN-DDPM run folder follows the config, the log box keeps the reader's place."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from LNSynthModuleLib import panel_rules

REPO = Path(__file__).resolve().parents[2]


def test_the_panels_run_folder_follows_the_config_and_the_users_folder_stays(tmp_path: Path):
    work = tmp_path / "LNSynth"
    tiny = panel_rules.ddpm_run_folder(None, work, "tiny")
    assert tiny == work / "ln_ddpm_tiny"
    tiny.mkdir(parents=True)
    (tiny / "checkpoint.pt").write_text("tiny model")   # a first training filled it
    # Config changed to paper: a new folder (the tiny checkpoint would make the training fail), ...
    assert panel_rules.ddpm_run_folder(tiny, work, "paper") == work / "ln_ddpm_paper"
    # ... a YAML file gets its own, and back to tiny resumes the first one.
    assert panel_rules.ddpm_run_folder(work / "ln_ddpm_paper", work, "/cfg/my_model.yaml") == work / "ln_ddpm_my_model"
    assert panel_rules.ddpm_run_folder(work / "ln_ddpm_my_model", work, "tiny") == tiny
    mine = tmp_path / "experiments" / "run-3"
    assert panel_rules.ddpm_run_folder(mine, work, "paper") == mine   # chosen by the user: theirs


def test_the_train_button_asks_the_rule_for_its_folder():
    tree = ast.parse((REPO / "LNSynth" / "LNSynth.py").read_text(encoding="utf-8"))
    calls = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, "id", None) == "ddpm_run_folder"]
    assert calls == ["ddpm_run_folder(_path(p.ddpmRunFolder), self._workFolder(), config)"]


@pytest.fixture
def log_box():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    QtWidgets = pytest.importorskip("PySide6.QtWidgets")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    edit = QtWidgets.QPlainTextEdit()
    edit.setReadOnly(True)
    edit.resize(400, 110)   # the panel's log box is 110 px high
    edit.show()
    app.processEvents()
    yield edit, app
    edit.close()


def test_the_log_box_keeps_the_readers_place_and_follows_only_at_the_bottom(log_box):
    edit, app = log_box
    lines = [f"epoch {i}: loss {1 / (i + 1):.3f}" for i in range(40)]
    shown = panel_rules.refresh_log(edit, lines, None)
    app.processEvents()
    bar = edit.verticalScrollBar()
    assert bar.maximum() > 10 and bar.value() == bar.maximum()      # a new job's box shows its last line
    bar.setValue(5)                                                  # the reader scrolls up to read
    edit.selectAll()
    assert panel_rules.refresh_log(edit, lines, shown) == shown      # the 500 ms poll, nothing new printed
    assert bar.value() == 5 and edit.textCursor().hasSelection()     # untouched: place and selection kept
    shown = panel_rules.refresh_log(edit, lines[1:] + ["epoch 40: loss 0.024"], shown)
    app.processEvents()
    assert bar.value() == 5                                          # new lines: the reader stays where they were
    bar.setValue(bar.maximum())
    shown = panel_rules.refresh_log(edit, lines[2:] + ["epoch 40", "epoch 41"], shown)
    app.processEvents()
    assert bar.value() == bar.maximum() and edit.toPlainText().endswith("epoch 41")   # at the bottom: follows


def test_the_panel_polls_the_log_through_the_rule():
    source = (REPO / "LNSynth" / "LNSynthModuleLib" / "panel_jobs.py").read_text(encoding="utf-8")
    assert "refresh_log(self.ui.logTextEdit, state.log_tail[-40:], self._shownLog)" in source
    assert "setPlainText" not in source
