"""`--config paper` means one anatomy guard in `lnsynth run`, `lnsynth train` and `python -m experiments ablation`.

Training cases must hold anatomy as the paper run makes it (TotalSegmentator, abdominal label filter,
the full-resolution model when TotalSegmentator ran here), read from each case.json; the user opts
out with `--allow-other-anatomy` (and `--allow-coarse-anatomy` for the coarse map).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.__main__ import main as run_experiment
from LNSynthLib.anatomy.provenance import FULL_RESOLUTION_MODEL, anatomy_mismatches, check_training_anatomy
from LNSynthLib.cases import META_FILE
from LNSynthLib.cli.main import EXIT_USER_ERROR, build_parser, main
from LNSynthLib.errors import InputDataError
from LNSynthLib.pipeline import PipelineSettings
from LNSynthLib.prepare import prepare_case
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import write_volume
from LNSynthLib.volumes.preprocess import PreprocessSettings

from .test_label_filter import _synthetic_scan


def _prepare(root: Path, raw: Path, name: str, shift: float, label_filter: str) -> Path:
    ct, ts, ln = _synthetic_scan()
    folder = raw / name
    folder.mkdir(parents=True)
    # 2.5 mm voxels: the 40-voxel body is 100 mm across, an abdomen's size for prepare's physics check
    paths = {kind: write_volume(Volume(array, Geometry((2.5, 2.5, 2.5))), folder / f"{kind}.nii.gz")
             for kind, array in (("ct", ct + shift), ("seg", ts), ("ln", ln))}
    return prepare_case(paths["ct"], paths["ln"], root, name, anatomy_source="file", anatomy_path=paths["seg"],
                        labels_kind="totalseg", label_filter=label_filter,
                        settings=PreprocessSettings.test(margin_mm=40.0))


@pytest.fixture()
def roots(tmp_path: Path) -> dict[str, Path]:
    """`unfiltered`: one case grouped with filter none (`lnsynth prepare`'s default); `paper`: filter abdominal."""
    raw = tmp_path / "raw"
    _prepare(tmp_path / "unfiltered", raw, "plain_1", 0.0, "none")
    _prepare(tmp_path / "paper", raw, "abd_1", 3.0, "abdominal")
    _prepare(tmp_path / "test", raw, "test_1", 9.0, "abdominal")
    return {name: tmp_path / name for name in ("unfiltered", "paper", "test")}


def _set_meta(folder: Path, **changes: object) -> None:
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    meta.update(changes)
    (folder / META_FILE).write_text(json.dumps(meta), encoding="utf-8")


def test_case_record_decides_what_a_paper_run_accepts(roots: dict[str, Path]) -> None:
    assert anatomy_mismatches(roots["paper"], "abdominal", True) == {}   # a label file: no model to check
    assert anatomy_mismatches(roots["unfiltered"], "abdominal", True) == {"plain_1": "label filter none, not abdominal"}
    assert anatomy_mismatches(roots["unfiltered"], "none", False) == {}
    _set_meta(roots["paper"] / "abd_1", totalseg_model="fast 3 mm")       # TotalSegmentator ran here, fast
    assert anatomy_mismatches(roots["paper"], "abdominal", True) == \
        {"abd_1": f"TotalSegmentator fast 3 mm, not {FULL_RESOLUTION_MODEL}"}
    assert anatomy_mismatches(roots["paper"], "abdominal", False) == {}
    _set_meta(roots["paper"] / "abd_1", totalseg_model=FULL_RESOLUTION_MODEL)
    assert anatomy_mismatches(roots["paper"], "abdominal", True) == {}
    _set_meta(roots["paper"] / "abd_1", anatomy_source=None)             # prepared before the record existed
    assert anatomy_mismatches(roots["paper"], "abdominal", True) == {"abd_1": "anatomy source not recorded"}
    # Demo and tiny settings check nothing; paper settings refuse, and opt out with the flag's setting.
    check_training_anatomy(roots["unfiltered"], PipelineSettings.demo())
    with pytest.raises(InputDataError, match="plain_1: label filter none, not abdominal"):
        check_training_anatomy(roots["unfiltered"], PipelineSettings.paper())
    check_training_anatomy(roots["unfiltered"], PipelineSettings.paper(allow_other_anatomy=True))


@pytest.mark.parametrize("command", ["run", "train", "bench"])
def test_every_paper_command_refuses_unfiltered_cases_before_any_work(
        command: str, roots: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    cases, test = str(roots["unfiltered"]), str(roots["test"])
    argv = {"run": ["run", "--config", "paper", "--cases", cases, "--test-cases", test, "--out", str(out)],
            "train": ["train", "--config", "paper", "--cases", cases, "--run-dir", str(out)],
            "bench": ["ablation", "--config", "paper", "--cases", cases, "--test-cases", test,
                      "--work", str(out), "--results-dir", str(tmp_path / "results")]}[command]
    # the ablation experiment (python -m experiments ablation) shares the guard and the error contract
    code = (run_experiment if command == "bench" else main)([*argv, "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and "Traceback" not in err, err
    assert "1 training case(s) hold anatomy a --config paper run does not make (plain_1: label filter none, " \
           "not abdominal)" in err
    assert "lnsynth prepare --label-filter abdominal --full-resolution" in err and "--allow-other-anatomy" in err
    assert not out.exists()   # refused before anything was written


def test_opt_outs_and_user_yaml_reach_the_settings(tmp_path: Path) -> None:
    from LNSynthLib.cli.demo_command import user_settings
    from LNSynthLib.cli.train_command import check_paper_anatomy

    parser = build_parser()
    base = ["run", "--cases", str(tmp_path), "--test-cases", str(tmp_path), "--out", str(tmp_path / "w")]
    paper = user_settings(parser.parse_args([*base, "--config", "paper"]))
    assert (paper.allow_coarse_anatomy, paper.allow_other_anatomy) == (False, False)
    opted = user_settings(parser.parse_args([*base, "--config", "paper", "--allow-other-anatomy"]))
    assert (opted.allow_coarse_anatomy, opted.allow_other_anatomy) == (False, True)
    assert user_settings(parser.parse_args([*base, "--config", "tiny"])).allow_other_anatomy is True
    # train: the guard follows the config; tiny trains on anything
    args = parser.parse_args(["train", "--config", "tiny", "--cases", str(tmp_path), "--run-dir", str(tmp_path)])
    check_paper_anatomy("tiny", str(tmp_path / "nothing"), args)
