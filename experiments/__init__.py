"""Research experiments on LNSynth: the questions the product must answer, not the product itself.

Run from the repository root as `python -m experiments <name> [options]` (`python -m experiments --help` lists
them). This package is not part of the wheel or the Slicer extension; it imports the library, never the
other way round. Results are written to `experiments/results/` unless `--results-dir` says otherwise.
"""

from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
