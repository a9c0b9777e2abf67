"""The work folder persists: Documents/LNSynth by default, a folder the user picks is kept in the settings file.

Real QSettings (PySide6, INI format as Slicer sets with `QSettings::setDefaultFormat(IniFormat)`), read back
by a second process the way the next Slicer session reads it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from LNSynthModuleLib import work_folder as wf

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path: Path):
    QtCore = pytest.importorskip("PySide6.QtCore")
    return QtCore.QSettings(str(tmp_path / "Slicer.ini"), QtCore.QSettings.Format.IniFormat)


def test_the_default_is_next_to_the_scene_folder_and_never_the_temporary_path(settings, tmp_path: Path):
    documents, temporary = tmp_path / "Documents", tmp_path / "tmp" / "Slicer-user"
    assert wf.work_folder(settings, documents, temporary) == documents / "LNSynth"
    # A scene saved before this change holds <temporaryPath>/LNSynth: it moves to the persistent folder.
    assert wf.resolve(temporary / "LNSynth", settings, documents, temporary) == documents / "LNSynth"
    assert wf.resolve(None, settings, documents, temporary) == documents / "LNSynth"
    assert wf.resolve(Path("."), settings, documents, temporary) == documents / "LNSynth"
    assert not wf.remember(settings, temporary / "LNSynth", temporary)   # a temporary folder is never stored
    assert settings.value(wf.SETTINGS_KEY) is None


def test_a_folder_the_user_picks_once_is_used_by_the_next_session(settings, tmp_path: Path):
    documents, temporary, chosen = tmp_path / "Documents", tmp_path / "tmp", tmp_path / "data" / "my LNSynth"
    assert wf.remember(settings, chosen, temporary)
    assert not wf.remember(settings, chosen, temporary)   # unchanged: not written again
    settings.sync()
    # The next Slicer session: another process reading the same settings file.
    code = ("import sys; from PySide6.QtCore import QSettings; "
            "s = QSettings(sys.argv[1], QSettings.Format.IniFormat); print(s.value(sys.argv[2]))")
    done = subprocess.run([sys.executable, "-c", code, settings.fileName(), wf.SETTINGS_KEY], capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == str(chosen)
    assert wf.work_folder(settings, documents, temporary) == chosen
    # A new scene (unset field) gets it; a scene with its own folder keeps its own.
    assert wf.resolve(None, settings, documents, temporary) == chosen
    assert wf.resolve(tmp_path / "other", settings, documents, temporary) == tmp_path / "other"
    assert str(chosen) in wf.describe(chosen)


def test_the_panel_takes_the_folder_from_slicers_settings_and_shows_it():
    """LNSynth.py: no `temporaryPath / "LNSynth"` default left; the settings and defaultScenePath are read;
    the folder is written to a label outside the collapsed Advanced section."""
    source = (REPO / "LNSynth" / "LNSynth.py").read_text(encoding="utf-8")
    assert 'temporaryPath) / "LNSynth"' not in source
    calls = {ast.unparse(n.func) for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call)}
    assert {"work_folder.work_folder", "work_folder.resolve", "work_folder.remember", "work_folder.describe"} <= calls
    assert "slicer.app.userSettings()" in source and "slicer.app.defaultScenePath" in source
    import xml.etree.ElementTree as ET

    root = ET.parse(REPO / "LNSynth" / "Resources" / "UI" / "LNSynth.ui").getroot()
    advanced = next(w for w in root.iter("widget") if w.get("name") == "advancedCollapsibleButton")
    assert not any(w.get("name") == "workFolderLabel" for w in advanced.iter("widget"))
    assert any(w.get("name") == "workFolderLabel" for w in root.iter("widget"))
