"""The Slicer module's dependency rule: never change a package Slicer (or the PyTorch extension) installed.

Facts from Slicer's source (tags v5.10.0, v5.12.0; main 583e9b37): `slicer.packaging` exists from 5.12
and is imported by nothing at start-up (`Base/Python/slicer/packaging.py`); `pip_ensure(requirements,
constraints=None, skip_packages=None, prompt_install=True, prompt_restart=True, requester=None,
skip_in_testing=True, show_progress=True)`; 5.10 has only `slicer.util.pip_install(requirements)` taking
a list of pip arguments. SlicerPyTorch e1c85cc: `installTorch(self, askConfirmation=False,
forceComputationBackend=None, torchVersionRequirement=None, torchvisionVersionRequirement=None)`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from LNSynthModuleLib import dependencies

REPO = Path(__file__).resolve().parents[2]
PIP_ENSURE_KEYWORDS = {"constraints", "skip_packages", "prompt_install", "prompt_restart", "requester",
                       "skip_in_testing", "show_progress"}
INSTALL_TORCH_KEYWORDS = {"askConfirmation", "forceComputationBackend", "torchVersionRequirement",
                          "torchvisionVersionRequirement"}


def test_pins_are_read_from_the_project_pin_file(tmp_path: Path):
    assert dependencies.REQUIREMENTS_FILE == REPO / "LNSynthLib" / "requirements.txt"
    pins = dependencies.read_pins()
    assert {"torch", "torchvision", "monai", "nnunetv2", "totalsegmentator", "SimpleITK"} <= set(pins)
    pin_file = tmp_path / "requirements.txt"
    pin_file.write_text("# comment\ntorch==2.1.0  # cuda build\nmonai[nibabel]==1.3.0\nloose>=1\n")
    assert dependencies.read_pins(pin_file) == {"torch": "2.1.0", "monai": "1.3.0"}


def test_an_installed_package_at_any_version_is_never_asked_for_again():
    pins = {"numpy": "99.0", "torch": "2.14.1", "SimpleITK": "2.5.7", "monai": "1.6.1"}
    slicer_5_10 = {"numpy": "2.0.2", "torch": "2.14.1+cu126", "simpleitk": "2.5.2"}  # bundled + PyTorch ext.
    assert dependencies.missing(pins, slicer_5_10) == ["monai>=1.6.1"]
    assert dependencies.older_than_tested(pins, slicer_5_10) == ["numpy: 2.0.2 < 99.0", "SimpleITK: 2.5.2 < 2.5.7"]
    assert dependencies.missing(dependencies.read_pins()) == []  # this venv has everything


def test_constraints_hold_every_installed_distribution_and_pip_obeys_them(tmp_path: Path):
    path = dependencies.write_constraints(tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert f"numpy=={numpy.__version__}" in lines
    assert len(lines) > 50
    # pip itself refuses to move numpy away from the constrained version (nothing is installed: dry run).
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "-c", str(path),
                           f"numpy!={numpy.__version__}"], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0, done.stdout
    assert "ResolutionImpossible" in done.stderr


def test_torch_goes_first_and_skipped_packages_stay_out():
    torch, others = dependencies.split_torch(["monai>=1.6.1", "torch>=2.14.1", "torchvision>=0.29.1"])
    assert torch == ["torch>=2.14.1", "torchvision>=0.29.1"] and others == ["monai>=1.6.1"]
    deps = dependencies.dependencies_without_skipped("totalsegmentator")
    assert deps and not {dependencies._name(d) for d in deps} & set(dependencies.SKIPPED_PACKAGES)
    steps = dependencies.install_steps(["monai>=1.6.1", "totalsegmentator>=2.18.0"], Path("c.txt"))
    assert steps[0] == ["-c", "c.txt", "monai>=1.6.1"]
    assert steps[1] == ["--no-deps", "-c", "c.txt", "totalsegmentator>=2.18.0"]
    assert "fury" not in " ".join(steps[2]())


def test_minimum_slicer_version_is_checked():
    assert dependencies.slicer_version_problem(5, 8, (3, 9)).startswith("LNSynth needs 3D Slicer 5.10")
    assert dependencies.slicer_version_problem(5, 10, (3, 12)) is None
    assert dependencies.slicer_version_problem(6, 0, (3, 12)) is None


def test_restart_is_offered_only_for_changed_imported_packages():
    before = {"numpy": "2.0.2", "monai": "1.6.1"}
    assert dependencies.updated_imported(before, {"numpy": "2.4.6", "monai": "1.6.1"}) == ["numpy: 2.0.2 -> 2.4.6"]
    assert dependencies.updated_imported(before, {"numpy": "2.0.2", "nibabel": "5.4.2"}) == []


def _calls(name: str) -> list[ast.Call]:
    tree = ast.parse(Path(dependencies.__file__).read_text(encoding="utf-8"))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", None) == name]


@pytest.mark.parametrize(("function", "allowed"), [("pip_ensure", PIP_ENSURE_KEYWORDS),
                                                   ("installTorch", INSTALL_TORCH_KEYWORDS)])
def test_slicer_and_pytorch_extension_calls_use_their_real_signatures(function, allowed):
    calls = _calls(function)
    assert calls, f"{function} is not called"
    for call in calls:
        assert {k.arg for k in call.keywords} <= allowed
    if function == "installTorch":
        assert {k.arg for k in calls[0].keywords} >= {"torchVersionRequirement", "torchvisionVersionRequirement"}


def test_slicer_packaging_is_imported_explicitly():
    """`getattr(slicer, "packaging")` is None until someone imports the submodule."""
    tree = ast.parse(Path(dependencies.__file__).read_text(encoding="utf-8"))
    imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "slicer.packaging" in imports


def test_slicer_5_10_route_honours_environment_markers_of_a_fresh_install(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch):
    """`dependencies_without_skipped` reads the metadata of a distribution pip installed a moment ago (real
    dist-info on sys.path) and keeps only what applies to this Python: markers are evaluated, not dropped."""
    info = tmp_path / "lnsynth_marker_probe-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: lnsynth-marker-probe\nVersion: 1.0\n"
        'Requires-Dist: requests==2.27.1; python_version < "3.10"\n'
        'Requires-Dist: pywin32>=300; sys_platform == "lnsynth-nowhere"\n'
        'Requires-Dist: nibabel>=2.3.0; python_version >= "3.9"\n'
        "Requires-Dist: fury; python_version >= '3.9'\n"
        'Requires-Dist: pytest; extra == "test"\n'
        "Requires-Dist: monai[nibabel]>=1.3\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))   # after the process started, as pip_install leaves it
    assert dependencies.dependencies_without_skipped("lnsynth-marker-probe") == ["nibabel>=2.3.0", "monai[nibabel]>=1.3"]


def test_the_5_12_install_asks_in_lnsynths_words_and_never_twice():
    """`pip_ensure(prompt_install=False)` after LNSynth's own question: a "No" there is a plain decline
    (pip_ensure's own prompt raised `RuntimeError("User declined package installation")`, packaging.py:444)."""
    calls = _calls("pip_ensure")
    assert calls and all(any(k.arg == "prompt_install" and ast.unparse(k.value) == "False" for k in c.keywords)
                         for c in calls)
    torch = _calls("installTorch")
    assert all(any(k.arg == "askConfirmation" and ast.unparse(k.value) == "False" for k in c.keywords) for c in torch)
