"""Package installs from the panel: one at a time with feedback, a declined install is no error, the job
Python is probed afterwards, and the PyTorch route says what it changes in Slicer's Python.

Real processes: pip of this venv, the job-Python probe (`PythonSlicer -c` is this venv's Python here) with a
dependency made unimportable the way a quietly failed install leaves it (Slicer >= 5.12's `skip_packages`
walk logs "Failed to install %s, continuing", slicer/packaging.py).
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest
from LNSynthModuleLib import dependencies, install_gate, job_probe

REPO = Path(__file__).resolve().parents[2]
ABSENT = {"lnsynth-test-not-installed": "1.0"}   # a pinned distribution this Python lacks: `ensure` must install
BLOCKER = r"""
import importlib.abc, sys
class _Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "nibabel":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _Missing())
"""


def _gate():
    busy, shown = [], []
    return install_gate.InstallGate(busy.append, shown.append), busy, shown


def test_a_second_click_while_pip_runs_starts_no_second_install(tmp_path: Path):
    """The installers block, but pip's output lines process events: a click there re-enters the panel."""
    gate, busy, shown = _gate()
    second = []

    def install(ask) -> bool:
        pip = subprocess.Popen([sys.executable, "-m", "pip", "--version"], stdout=subprocess.PIPE, text=True)
        for _line in pip.stdout:      # slicer.util.logProcessOutput processes events per line
            assert gate.run(lambda ask: second.append(1) or True, ask=lambda text: True) is None
        return pip.wait() == 0

    assert gate.run(install, ask=lambda text: True) is True
    assert not second and install_gate.ALREADY in shown
    assert busy == [True, False] and shown[0] == install_gate.INSTALLING   # wait cursor + disabled, then restored
    assert not gate.running


def test_declining_the_install_is_not_a_failure(tmp_path: Path):
    gate, busy, shown = _gate()
    asked = []
    result = gate.run(lambda ask: dependencies.ensure(ask, tmp_path, pins=ABSENT),
                      ask=lambda text: asked.append(text) or False)
    assert result is None and shown[-1] == install_gate.DECLINED
    assert "lnsynth-test-not-installed>=1.0" in asked[0]
    assert busy[0] is True and busy[-1] is False and busy.count(True) == busy.count(False)   # no wait cursor left
    with pytest.raises(dependencies.InstallDeclined):   # was `False`, shown as "not installed" error dialog
        dependencies.ensure(lambda text: False, tmp_path, pins=ABSENT)


def test_after_an_install_the_job_python_is_probed_and_what_is_missing_is_named(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "blocker").mkdir()
    (tmp_path / "blocker" / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "blocker"))   # the probe's job Python starts with it

    def installed_quietly_incomplete(requirements, *args) -> bool:
        return True   # what a `pip_ensure(skip_packages=...)` whose sub-dependency failed reports
    with pytest.raises(dependencies.JobPackagesMissing) as raised:
        dependencies.ensure(lambda text: True, tmp_path, pins=ABSENT,
                            installers=(installed_quietly_incomplete, installed_quietly_incomplete))
    message = str(raised.value)
    assert "cannot import: nibabel" in message and "PythonSlicer -m pip install nibabel" in message
    # Nothing to install: no probe (every job click passes through here), unless asked for.
    assert dependencies.ensure(lambda text: True, tmp_path, pins={}, probe=lambda: ["never"]) is True
    with pytest.raises(dependencies.JobPackagesMissing):
        dependencies.ensure(lambda text: True, tmp_path, pins={}, probe=lambda: ["skimage"], check_always=True)
    assert "pip install scikit-image" in job_probe.missing_message(["skimage"])


def test_the_self_test_and_the_install_check_share_one_probe():
    from LNSynthModuleLib import selftest

    assert selftest.missing_job_package is job_probe.missing_job_package
    assert set(job_probe.FLOW_JOB_MODULES) < set(job_probe.JOB_MODULES)
    assert {"nnunetv2", "totalsegmentator", "LNSynthLib.segmentation.nnunet.runner"} <= set(job_probe.JOB_MODULES)


# ---------------------------------------------------------------------------- PyTorch route (row 10)
def _pytorch_extension(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The PyTorch extension's module with `installTorch`'s real signature (SlicerPyTorch e1c85cc, :194)."""
    calls: list[dict] = []

    class PyTorchUtilsLogic:
        def installTorch(self, askConfirmation=False, forceComputationBackend=None, torchVersionRequirement=None,
                         torchvisionVersionRequirement=None):
            calls.append({"askConfirmation": askConfirmation, "torch": torchVersionRequirement,
                          "torchvision": torchvisionVersionRequirement})
            return types.ModuleType("torch")

    monkeypatch.setitem(sys.modules, "PyTorchUtils", types.SimpleNamespace(PyTorchUtilsLogic=PyTorchUtilsLogic))
    return calls


def test_where_torch_is_there_torchvision_goes_in_with_pip_and_torch_is_kept(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch):
    import slicer.util

    extension_calls = _pytorch_extension(monkeypatch)
    installed = dependencies.installed_versions()
    assert "torch" in installed   # this venv, like a Slicer where the PyTorch extension installed torch
    pins = dependencies.read_pins()
    pip_runs = []

    def pip_install(args):   # slicer.util.pip_install runs `python -m pip install <args>`; offline dry run here
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", *args],
                              capture_output=True, text=True, timeout=300)
        pip_runs.append(done)

    monkeypatch.setattr(slicer.util, "pip_install", pip_install, raising=False)
    asked = []
    requirement = [f"torchvision>={pins['torchvision']}"]
    assert dependencies.install_torch(requirement, pins, lambda text: asked.append(text) or True,
                                      dependencies.write_constraints(tmp_path), installed)
    assert not extension_calls   # light-the-torch (and its pip<26.1) never comes in
    assert f"torch {installed['torch']} and every package Slicer already has is kept" in asked[0]
    assert pip_runs[0].returncode == 0, pip_runs[0].stderr
    assert "Would install" not in pip_runs[0].stdout   # torch and pip stay as they are


@pytest.mark.parametrize(("pip", "downgrade"), [("26.1.1", True), ("25.1.1", False)])
def test_where_torch_is_missing_the_one_question_names_what_light_the_torch_changes(tmp_path: Path, pip: str,
                                                                                   downgrade: bool,
                                                                                   monkeypatch: pytest.MonkeyPatch):
    """Slicer 5.12.3 ships pip 26.1.1, 5.10.0 pip 25.1.1 (SuperBuild/External_python-pip.cmake:30)."""
    extension_calls = _pytorch_extension(monkeypatch)
    installed = {"pip": pip, "numpy": "2.4.6"}
    pins = dependencies.read_pins()
    requirements = [f"torch>={pins['torch']}", f"torchvision>={pins['torchvision']}"]
    asked = []
    with pytest.raises(dependencies.InstallDeclined):
        dependencies.install_torch(requirements, pins, lambda text: asked.append(text) or False, tmp_path / "c.txt",
                                   installed)
    assert not extension_calls
    assert "adds light-the-torch" in asked[0]
    assert (f"replaces Slicer's pip {pip} with an older pip" in asked[0]) is downgrade
    assert dependencies.install_torch(requirements, pins, lambda text: True, tmp_path / "c.txt", installed)
    assert extension_calls == [{"askConfirmation": False, "torch": f"=={pins['torch']}",
                                "torchvision": f"=={pins['torchvision']}"}]   # asked once, by LNSynth
    assert dependencies.light_the_torch_changes({**installed, "light-the-torch": "0.8.1"}) == []


def test_the_panel_no_longer_claims_that_nothing_of_slicer_changes():
    from LNSynthModuleLib import help_text

    module = help_text.HELP   # the module's help, as LNSynth.py hands it to Slicer
    assert "help_text.HELP" in (REPO / "LNSynth" / "LNSynth.py").read_text(encoding="utf-8")
    ui = (REPO / "LNSynth" / "Resources" / "UI" / "LNSynth.ui").read_text(encoding="utf-8")
    assert "never changed" not in module
    assert "light-the-torch" in module and "older one" in module
    assert "replace Slicer's pip with an older one" in ui
