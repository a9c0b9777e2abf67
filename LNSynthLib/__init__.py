"""LNSynth engine: plain Python, importable and testable without Slicer."""

__version__ = "0.1.0"
