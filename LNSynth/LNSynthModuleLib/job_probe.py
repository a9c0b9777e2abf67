"""Can the job Python import what the jobs need? Asked of that Python itself, in one short process.

The jobs run in PythonSlicer, not in Slicer's process, and a package can be missing there although
the installer said it was done: on Slicer >= 5.12 `pip_ensure(skip_packages=...)` installs the
dependencies one by one and only logs a warning when one fails (`slicer/packaging.py`,
"Failed to install %s, continuing"). So after an install, and before the self-test, one
`PythonSlicer -c` probe imports the modules the jobs import first and names every package missing.
Imports only the standard library and LNSynthLib's torch-free job runner, so Slicer's process stays light.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import LNSynthLib
from LNSynthLib.jobs.chain import python_executable

# What the self-test flow's jobs import first (anatomy, prepare, LN-DDPM network, training with its
# loss plot, sampling): importing them in the job Python names the package that is missing there.
FLOW_JOB_MODULES = ("LNSynthLib.cli.main", "LNSynthLib.anatomy.build", "LNSynthLib.prepare",
                    "LNSynthLib.diffusion.model.network", "LNSynthLib.diffusion.train.training",
                    "LNSynthLib.diffusion.sample.sampling", "yaml", "matplotlib")
# Every button's job: the flow's, plus nnU-Net (export, train, predict; the trainers module imports nnU-Net's
# trainer and what it needs) and TotalSegmentator (anatomy).
JOB_MODULES = (*FLOW_JOB_MODULES, "LNSynthLib.segmentation.nnunet.runner",
               "LNSynthLib.segmentation.nnunet.trainers.lnsynth_trainers", "nnunetv2", "totalsegmentator",
               "totalsegmentator.map_tasks_config", "nibabel", "skimage")
LIBRARY_ROOT = Path(LNSynthLib.__file__).resolve().parents[1]   # the folder holding LNSynthLib
PROBE_EXIT = 3
# Import name -> the distribution pip installs it from, where they differ.
DISTRIBUTIONS = {"yaml": "PyYAML", "skimage": "scikit-image"}
_PROBE = """
import importlib, sys
missing = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name not in missing:
            missing.append(exc.name)
print("\\n".join(missing))
sys.exit(3 if missing else 0)
"""


def missing_job_packages(modules: tuple[str, ...] = JOB_MODULES, python: str | None = None,
                         timeout_s: float = 600) -> list[str]:
    """The top-level packages the job Python (PythonSlicer in Slicer) cannot import, in the order found.

    Raises when the job Python cannot even load LNSynthLib (the module's files are broken).
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(LIBRARY_ROOT), os.environ.get("PYTHONPATH"))
                                                        if p)}
    done = subprocess.run([python or python_executable(), "-c", _PROBE, *modules], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s,
                          creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    names = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    if done.returncode == PROBE_EXIT and names:
        broken = [n for n in names if n.split(".")[0] == "LNSynthLib"]
        if broken:
            raise RuntimeError(f"the job Python cannot load {broken[0]} from {LIBRARY_ROOT}")
        return [n.split(".")[0] for n in names if n]
    if done.returncode != 0:
        raise RuntimeError(f"the job Python cannot load LNSynthLib ({LIBRARY_ROOT}):\n{done.stderr[-3000:]}")
    return []


def missing_job_package(python: str | None = None, timeout_s: float = 600) -> str | None:
    """The first package the self-test flow's jobs cannot import in the job Python, or None."""
    names = missing_job_packages(FLOW_JOB_MODULES, python, timeout_s)
    return names[0] if names else None


def missing_message(names: list[str]) -> str:
    """What the panel says when the probe finds packages missing after an install."""
    listed = " ".join(dict.fromkeys(DISTRIBUTIONS.get(n, n) for n in names))
    return (f"The installation finished, but the background jobs cannot import: {', '.join(dict.fromkeys(names))}. "
            "A dependency failed to install (see the Python console). Install it by hand, then restart Slicer:\n"
            f"PythonSlicer -m pip install {listed}")
