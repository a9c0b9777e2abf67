"""No silent coarse anatomy: a paper-config run refuses it unless asked, every report names each case's source."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.cli.main import EXIT_USER_ERROR, build_parser, main
from LNSynthLib.prepare import prepare_case
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import write_volume
from LNSynthLib.volumes.preprocess import PreprocessSettings

from .test_label_filter import _synthetic_scan


@pytest.fixture()
def case_roots(tmp_path: Path) -> dict[str, Path]:
    """Training cases `coarse_1` (coarse anatomy) and `ts_1` (a TotalSegmentator file), test case `test_1`."""
    ct, ts, ln = _synthetic_scan()
    settings = PreprocessSettings.test(margin_mm=40.0)
    for name, shift, source in (("coarse_1", 0.0, "coarse"), ("ts_1", 5.0, "file"), ("test_1", 9.0, "file")):
        raw = tmp_path / "raw" / name
        raw.mkdir(parents=True)
        paths = {kind: write_volume(Volume(array, Geometry((1.0, 1.0, 1.0))), raw / f"{kind}.nii.gz")
                 for kind, array in (("ct", ct + shift), ("seg", ts), ("ln", ln))}
        root = tmp_path / ("test" if name.startswith("test") else "train")
        prepare_case(paths["ct"], paths["ln"], root, name, anatomy_source=source, settings=settings,
                     anatomy_path=paths["seg"] if source == "file" else None, labels_kind="totalseg")
    return {"train": tmp_path / "train", "test": tmp_path / "test"}


def test_paper_run_refuses_coarse_training_cases(case_roots: dict[str, Path], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    work = tmp_path / "work"
    code = main(["run", "--config", "paper", "--cases", str(case_roots["train"]), "--test-cases",
                 str(case_roots["test"]), "--out", str(work), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and "Traceback" not in err
    assert err.startswith(f"lnsynth: error: {case_roots['train']}: 1 training case(s) have the weights-free coarse "
                          "anatomy (4 of 14 labels), not TotalSegmentator's: coarse_1;")
    assert "Fix: prepare them with TotalSegmentator weights" in err and "--allow-coarse-anatomy" in err
    assert not work.exists()   # refused before anything was written


def test_opting_in_and_non_paper_configs_allow_coarse_anatomy(tmp_path: Path) -> None:
    from LNSynthLib.cli.demo_command import user_settings

    parser = build_parser()
    base = ["run", "--cases", str(tmp_path), "--test-cases", str(tmp_path), "--out", str(tmp_path / "w")]
    assert user_settings(parser.parse_args([*base, "--config", "paper"])).allow_coarse_anatomy is False
    assert user_settings(parser.parse_args([*base, "--config", "paper-bf16"])).allow_coarse_anatomy is False
    opted = user_settings(parser.parse_args([*base, "--config", "paper", "--allow-coarse-anatomy"]))
    assert opted.allow_coarse_anatomy is True and opted.ddpm_config == "paper"
    assert user_settings(parser.parse_args([*base, "--config", "tiny"])).allow_coarse_anatomy is True


def test_report_states_each_cases_anatomy_source(case_roots: dict[str, Path], tmp_path: Path) -> None:
    labels, pred = tmp_path / "labelsTs", tmp_path / "pred"
    labels.mkdir()
    _, _, ln = _synthetic_scan()
    write_volume(Volume(ln, Geometry((1.0, 1.0, 1.0))), labels / "test_1.nii.gz")
    shutil.copytree(labels, pred)
    out = tmp_path / "report"
    assert main(["evaluate", "--out", str(out), "--labels", str(labels), "--pred", f"Real|-={pred}",
                 "--real", str(case_roots["train"]), "--test-cases", str(case_roots["test"]),
                 "--device", "cpu"]) == 0
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "## Anatomy of the cases" in text
    assert "Training cases: 2, coarse anatomy: 1." in text and "Test cases: 1, coarse anatomy: 0." in text
    assert "| coarse_1 | coarse | - | - |" in text and "| ts_1 | totalseg | none | - |" in text
    assert "| test_1 | totalseg | none | - |" in text
    sources = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["anatomy_sources"]
    assert {case: info["source"] for case, info in sources["Training"].items()} == \
        {"coarse_1": "coarse", "ts_1": "totalseg"}
    assert np.array_equal(sorted(sources["Test"]), ["test_1"])
