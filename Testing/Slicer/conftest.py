"""Fixtures for the Slicer suites: a real MRML scene from the slicer-core wheel (no Slicer app)."""

from __future__ import annotations

import pytest


@pytest.fixture
def core():
    """Fresh scene with the Colors and Segmentations logics registered."""
    pytest.importorskip("slicer", reason="slicer-core is not installed (pip install slicer-core)")
    from LNSynthLib.mrml_bridge import create_core_scene

    core = create_core_scene()
    yield core
    core.scene.Clear(1)
