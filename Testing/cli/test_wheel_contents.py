"""What a user installs: the wheel holds the library, its data files and the web app, never the experiments.

Built from a copy of the checkout (setuptools writes `build/` and `*.egg-info` beside the sources), without
build isolation, so no package is downloaded.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from LNSynthLib.cli.bench_command import shipped_bench_files

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "LNSynthLib", "LNSynthScene", "experiments", "LNSynth")


def test_the_wheel_ships_the_library_and_web_app_without_the_experiments(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("lnsynth-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "LNSynthLib/cli/main.py" in names and "LNSynthLib/diffusion/configs/tiny.yaml" in names
    assert "LNSynthLib/anatomy/label_groups.json" in names
    assert not [n for n in names if n.startswith("experiments/")]
    # the scene package with the web app (`lnsynth serve` imports it by name), not the Qt panel
    assert "LNSynthScene/logic.py" in names and "LNSynthScene/web/app.py" in names
    assert "LNSynthScene/web/launcher.py" in names
    assert not [n for n in names if n.startswith(("LNSynth/", "LNSynthModuleLib/"))]
    bench = {n.split("/")[-1] for n in names if n.startswith("LNSynthLib/bench/")}
    assert bench <= shipped_bench_files(), sorted(bench - shipped_bench_files())
