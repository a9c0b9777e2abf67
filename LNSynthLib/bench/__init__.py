"""Benchmarks: `lnsynth bench <name>` measures on the current machine and writes JSON + Markdown."""
