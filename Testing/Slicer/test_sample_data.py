"""Sample data registration against SampleData's real signature (Slicer v5.10.0 SampleData.py:510-515)."""

from __future__ import annotations

import inspect
import sys
import types
from pathlib import Path

import pytest

pytest.importorskip("slicer")


def register_custom_sample_data_source(category="Custom", sampleName=None, uris=None, fileNames=None,
                                       nodeNames=None, customDownloader=None, thumbnailFileName=None,
                                       loadFileTypes=None, loadFiles=None, loadFileProperties=None, checksums=None,
                                       loadFileType=None):
    """Slicer's signature; records what it was given."""
    register_custom_sample_data_source.calls.append(inspect.getcallargs(
        register_custom_sample_data_source.original, category, sampleName, uris, fileNames, nodeNames,
        customDownloader, thumbnailFileName, loadFileTypes, loadFiles, loadFileProperties, checksums, loadFileType))


def test_the_abdominal_ct_sample_is_slicers_panoramix_with_our_icon(monkeypatch):
    register_custom_sample_data_source.calls = []
    register_custom_sample_data_source.original = register_custom_sample_data_source
    module = types.ModuleType("SampleData")
    module.SampleDataLogic = type("SampleDataLogic", (), {
        "registerCustomSampleDataSource": staticmethod(register_custom_sample_data_source)})
    monkeypatch.setitem(sys.modules, "SampleData", module)
    from LNSynthModuleLib import sample_data

    sample_data.register()
    (call,) = register_custom_sample_data_source.calls
    digest = "146af87511520c500a3706b7b2bfb545f40d5d04dd180be3a7a2c6940e447433"  # SampleData.py:656 (v5.10.0)
    assert call["uris"].endswith("SHA256/" + digest) and call["checksums"] == "SHA256:" + digest
    assert call["category"] == "LNSynth" and call["fileNames"] == "Panoramix-cropped.nrrd"
    assert Path(call["thumbnailFileName"]).is_file()
