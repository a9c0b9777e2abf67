"""Render the LNSynth panel from its .ui offscreen (no Slicer): Resources/panel.png and the module icon.

    QT_QPA_PLATFORM=offscreen python Testing/Slicer/render_panel.py [--out Resources/panel.png] [--icon PATH]

Slicer/CTK classes are replaced by plain Qt look-alikes (collapsible sections become group
boxes, node selectors combo boxes, path editors a line edit with a browse button) and filled
with example values, showing the panel while a synthesis runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QFile, QPointF, QRectF, Qt, qInstallMessageHandler  # noqa: E402
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPainterPath, QPen, QRadialGradient  # noqa: E402
from PySide6.QtUiTools import QUiLoader  # noqa: E402
from PySide6.QtWidgets import (  # noqa: E402
    QApplication,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QToolButton,
    QWidget,
)

REPO = Path(__file__).resolve().parents[2]
UI_FILE = REPO / "LNSynth" / "Resources" / "UI" / "LNSynth.ui"

EXAMPLE_NODES = {
    "inputVolumeSelector": "abdomen CT",
    "anatomySegmentationSelector": "abdomen CT anatomy",
    "lymphNodeSegmentationSelector": "abdomen CT lymph nodes",
}
EXAMPLE_PATHS = {
    "totalSegFilePathLineEdit": "",
    "checkpointPathLineEdit": "~/LNSynth/ln_ddpm_tiny/checkpoint.pt",
    "ddpmConfigFilePathLineEdit": "",
    "ddpmRunFolderPathLineEdit": "~/LNSynth/ln_ddpm_tiny",
    "casesFolderPathLineEdit": "~/LNSynth/cases",
    "datasetFolderPathLineEdit": "~/LNSynth/nnunet_dataset",
    "modelFolderPathLineEdit": "",
    "workFolderPathLineEdit": "/tmp/Slicer/LNSynth",
    "weightsFolderPathLineEdit": "~/.totalsegmentator",
}


class PathEdit(QWidget):
    """ctkPathLineEdit look-alike."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("(not set)")
        button = QToolButton(self)
        button.setText("...")
        layout.addWidget(self.edit, 1)
        layout.addWidget(button)


class Loader(QUiLoader):
    """Creates Qt look-alikes for the Slicer/CTK classes the .ui names."""

    PLACEHOLDERS = {"ctkCollapsibleButton": QGroupBox, "qMRMLNodeComboBox": QComboBox,
                    "ctkPathLineEdit": PathEdit, "qMRMLWidget": QWidget}

    def createWidget(self, class_name: str, parent: QWidget | None = None, name: str = "") -> QWidget:
        if class_name in self.PLACEHOLDERS:
            widget = self.PLACEHOLDERS[class_name](parent)
            widget.setObjectName(name)
            widget.setProperty("slicerClass", class_name)
            return widget
        if class_name not in self.availableWidgets():
            widget = QWidget(parent)
            widget.setObjectName(name)
            return widget
        return super().createWidget(class_name, parent, name)


def _quiet(mode, context, message: str) -> None:
    """Drop the look-alikes' expected warnings (CTK-only properties, Slicer-only signals)."""
    if not message.startswith(("Designer:", "QObject::connect")):
        print(message, file=sys.stderr)


def load_panel() -> QWidget:
    qInstallMessageHandler(_quiet)
    loader = Loader()
    ui = QFile(str(UI_FILE))
    if not ui.open(QFile.ReadOnly):
        raise SystemExit(f"cannot open {UI_FILE}")
    panel = loader.load(ui)
    ui.close()
    if panel is None:
        raise SystemExit(f"{UI_FILE}: {loader.errorString()}")
    return panel


def fill_example(panel: QWidget) -> None:
    """Sections titled, selectors and paths filled, a synthesis shown half-way."""
    for box in panel.findChildren(QGroupBox):
        collapsed = bool(box.property("collapsed"))
        title = str(box.property("text") or box.objectName()).replace("&", "&&")  # no mnemonic
        box.setTitle(("▸ " if collapsed else "▾ ") + title)
        if collapsed:
            for child in box.findChildren(QWidget):
                child.setVisible(False)
            box.setFlat(True)
            box.setFixedHeight(22)
    for combo in panel.findChildren(QComboBox):
        if combo.property("slicerClass") == "qMRMLNodeComboBox":
            combo.addItem(EXAMPLE_NODES.get(combo.objectName(), "None"))
    for edit in panel.findChildren(PathEdit):
        edit.edit.setText(EXAMPLE_PATHS.get(edit.objectName(), ""))
    synthesize = panel.findChild(QWidget, "synthesizeButton")
    synthesize.setText("Cancel")
    for name in ("createAnatomyButton", "groupTotalSegButton", "addTrainingCaseButton", "trainDdpmButton",
                 "exportDatasetButton", "trainNnunetButton", "predictButton", "installDependenciesButton"):
        panel.findChild(QWidget, name).setEnabled(False)
    panel.findChild(QWidget, "trainingCasesLabel").setText("2 case(s): abdomen_CT, abdomen_CT_1")
    panel.findChild(QWidget, "progressBar").setValue(46)
    panel.findChild(QWidget, "statusLabel").setText(
        "Sampling LN-DDPM (sample), about 1 min 10 s left in this step")
    panel.findChild(QWidget, "logTextEdit").setPlainText(
        "$ lnsynth prepare --ct .../input/ct.nii.gz --ln .../input/ln.nii.gz --margin-mm 50\n"
        "$ lnsynth sample --checkpoint ~/LNSynth/ln_ddpm_tiny/checkpoint.pt --n 4 --seed 0 --device auto\n"
        "sampling abdomen_CT: 2/4 samples (DDIM, 20 steps from the checkpoint)")


def render_panel(out: Path, width: int = 440, scale: float = 2.0) -> Path:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    panel = load_panel()
    fill_example(panel)
    panel.resize(width, 100)
    panel.adjustSize()
    panel.resize(width, panel.minimumSizeHint().height() + 8)
    image = QImage(int(width * scale), int(panel.height() * scale), QImage.Format_ARGB32)
    image.setDevicePixelRatio(scale)
    image.fill(QColor("white"))
    panel.render(image)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out)):
        raise SystemExit(f"could not write {out}")
    return out


def render_icon(out: Path, size: int = 128) -> Path:
    """Module icon: an axial CT slice with liver, spine, a bright lymph node and a sparkle (synthesis)."""
    QApplication.instance() or QApplication(sys.argv[:1])
    image = QImage(size, size, QImage.Format_ARGB32)
    image.fill(Qt.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.Antialiasing)
    s = size / 128.0
    gradient = QRadialGradient(QPointF(64 * s, 64 * s), 60 * s)
    gradient.setColorAt(0.0, QColor(90, 90, 90))
    gradient.setColorAt(1.0, QColor(30, 30, 30))
    p.setBrush(QBrush(gradient))
    p.setPen(QPen(QColor(220, 220, 220), 4 * s))
    p.drawEllipse(QRectF(8 * s, 18 * s, 112 * s, 92 * s))
    p.setPen(Qt.NoPen)
    p.setBrush(QColor(200, 200, 200))
    p.drawEllipse(QRectF(56 * s, 78 * s, 16 * s, 14 * s))  # vertebra
    p.setBrush(QColor(150, 90, 80))
    p.drawEllipse(QRectF(24 * s, 36 * s, 34 * s, 28 * s))  # liver
    p.setBrush(QColor(235, 200, 40))
    p.drawEllipse(QRectF(70 * s, 48 * s, 22 * s, 18 * s))  # lymph node
    star = QPainterPath()
    cx, cy, r = 100 * s, 26 * s, 14 * s
    star.moveTo(cx, cy - r)
    for dx, dy in ((0.25, -0.25), (1, 0), (0.25, 0.25), (0, 1), (-0.25, 0.25), (-1, 0), (-0.25, -0.25), (0, -1)):
        star.lineTo(cx + dx * r, cy + dy * r)
    p.setBrush(QColor(90, 200, 255))
    p.drawPath(star)
    p.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "Resources" / "panel.png")
    parser.add_argument("--icon", type=Path, help="also draw the module icon to this PNG")
    args = parser.parse_args(argv)
    print(render_panel(args.out))
    if args.icon:
        print(render_icon(args.icon))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
