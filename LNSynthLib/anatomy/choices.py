"""The anatomy vocabulary (`anatomy.build` gives each word its meaning), declared once.

The CLI builds its argparse choices from these tuples and the Slicer panel fills its combo box
from them. This module imports nothing, so Slicer can load the panel's module at start-up without
SimpleITK and scipy (which `anatomy.build` needs for the work itself).
"""

from __future__ import annotations

ANATOMY_SOURCES = ("auto", "file", "totalseg", "coarse")
LABEL_KINDS = ("auto", "totalseg", "anatomy14")
SOURCES = LABEL_KINDS[1:]   # kinds of a label file once known
# Former words, still accepted: prepare's `anatomy14` (a 14-label file), `run-totalseg`; anatomy's `labels`.
OLD_SOURCES = {"anatomy14": ("file", "anatomy14"), "run-totalseg": ("totalseg", "auto"), "labels": ("file", "auto")}
