"""The panel renders offscreen from the .ui (PySide6 look-alikes for Slicer widgets) into a PNG."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_panel_renders_every_section(tmp_path: Path):
    pytest.importorskip("PySide6.QtUiTools")
    out = tmp_path / "panel.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, str(REPO / "Testing" / "Slicer" / "render_panel.py"), "--out", str(out),
                           "--icon", str(tmp_path / "icon.png")], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""  # no unexpected Qt warnings
    from PySide6.QtGui import QImage

    image = QImage(str(out))
    assert image.width() >= 800 and image.height() > 1200  # 2x rendering of a 440-px wide panel
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 50  # widgets and text, not a blank page
    icon = QImage(str(tmp_path / "icon.png"))
    assert (icon.width(), icon.height()) == (128, 128)
