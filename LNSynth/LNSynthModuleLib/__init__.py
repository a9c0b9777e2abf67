"""Logic of the LNSynth Slicer module, importable without the Slicer application (tests use slicer-core)."""
