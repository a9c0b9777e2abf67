"""Fixtures for the Slicer suites: a real MRML scene from the slicer-core wheel (no Slicer app).

The module folder `LNSynth/` goes on sys.path as Slicer puts it there, so `LNSynthModuleLib`
imports the same way in tests and in Slicer.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

MODULE_DIR = Path(__file__).resolve().parents[2] / "LNSynth"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))


@pytest.fixture
def core():
    """Fresh scene with the Colors and Segmentations logics registered."""
    pytest.importorskip("slicer", reason="slicer-core is not installed (pip install slicer-core)")
    from LNSynthLib.mrml_bridge import create_core_scene

    core = create_core_scene()
    yield core
    core.scene.Clear(1)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


@pytest.fixture
def process_alive():
    """`process_alive(pid)`: True while the process runs (zombies count as gone)."""
    return _process_alive
