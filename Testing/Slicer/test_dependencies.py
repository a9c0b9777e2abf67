"""Dependency check of the Slicer module: pins come from the one pin file, exact versions are compared."""

from __future__ import annotations

from pathlib import Path

from LNSynthModuleLib import dependencies

REPO = Path(__file__).resolve().parents[2]


def test_pins_are_read_from_the_project_pin_file():
    assert dependencies.REQUIREMENTS_FILE == REPO / "LNSynthLib" / "requirements.txt"
    pins = dependencies.read_pins()
    assert {"torch", "monai", "nnunetv2", "totalsegmentator", "SimpleITK"} <= set(pins)
    assert all(v[0].isdigit() for v in pins.values())


def test_installed_environment_satisfies_its_pins_and_a_wrong_pin_is_reported(tmp_path: Path):
    pins = dependencies.read_pins()
    assert dependencies.missing(pins) == []  # the project venv has every pinned version
    wrong = {"numpy": "0.0.1", "surely-not-installed-lnsynth-pkg": "1.0"}
    assert dependencies.missing(wrong) == ["numpy==0.0.1", "surely-not-installed-lnsynth-pkg==1.0"]
    pin_file = tmp_path / "requirements.txt"
    pin_file.write_text("# comment\ntorch==2.1.0  # cuda build\nmonai[nibabel]==1.3.0\nloose>=1\n")
    assert dependencies.read_pins(pin_file) == {"torch": "2.1.0", "monai": "1.3.0"}


def test_torch_goes_first_and_by_its_own_route():
    torch, others = dependencies.split_torch(["monai==1.6.1", "torch==2.14.1", "torchvision==0.29.1"])
    assert torch == ["torch==2.14.1", "torchvision==0.29.1"] and others == ["monai==1.6.1"]


def test_nothing_to_install_means_no_question():
    asked = []
    assert dependencies.ensure(lambda text: asked.append(text) or False, pins={"numpy": __import__("numpy").__version__})
    assert asked == []
