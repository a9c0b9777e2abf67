"""A sampling job imports the MONAI blocks it uses, not the whole of MONAI, and never nnU-Net.

`import monai` runs MONAI's package-wide import (every submodule: seconds); `monai_parts` imports
only the block modules. The job runs for real in a fresh interpreter, which then lists what it
imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Whole packages a sampling job has no use for; `monai` itself is the package-wide import.
NOT_IMPORTED = ("nnunetv2", "monai", "monai.transforms", "monai.data", "monai.apps.datasets", "monai.metrics",
                "monai.losses", "monai.bundle", "monai.networks.nets.ahnet")

REPORT = """
import atexit, json, sys
atexit.register(lambda: print("MODULES " + json.dumps(sorted(sys.modules))))
from LNSynthLib.cli.main import main
raise SystemExit(main(sys.argv[1:]))
"""


def _job_modules(args: list[str]) -> set[str]:
    env = {**os.environ, "LNSYNTH_PROGRESS": "quiet", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", REPORT, *args], capture_output=True, encoding="utf-8", errors="replace", env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES ")))


def test_a_sampling_job_imports_only_the_monai_blocks(straight_run: Path, phantom_cases: Path,
                                                      tmp_path: Path) -> None:
    modules = _job_modules(["sample", "--checkpoint", str(straight_run), "--cases", str(phantom_cases),
                            "--out", str(tmp_path / "out"), "--samples-per-case", "1", "--steps", "2",
                            "--shard", "0/3", "--device", "cpu"])
    assert list((tmp_path / "out").iterdir()), "the job wrote no case"
    assert "monai.networks.nets.diffusion_model_unet" in modules   # the blocks did come from MONAI
    assert sorted(set(NOT_IMPORTED) & modules) == []


def test_monai_imported_in_full_later_finds_the_same_blocks() -> None:
    code = ("from LNSynthLib.diffusion.model.network import DiffusionUNetResnetBlock\n"
            "import monai, sys\n"
            "from monai.networks.nets.diffusion_model_unet import DiffusionUNetResnetBlock as full\n"
            "print(full is DiffusionUNetResnetBlock, 'monai.transforms' in sys.modules, monai.__version__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, encoding="utf-8", errors="replace",
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    same, full, version = done.stdout.split()
    assert (same, full) == ("True", "True") and version[0].isdigit()
