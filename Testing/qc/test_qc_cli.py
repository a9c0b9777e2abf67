"""`--qc` on the command line: one switch from `cli/options.py`, its defaults per command, and a real export."""

from __future__ import annotations

import json

import pytest

from LNSynthLib.cli.main import EXIT_USER_ERROR, build_parser, main
from LNSynthLib.qc import score_synthetic


def test_qc_defaults_sample_off_export_run_and_demo_on(tmp_path) -> None:
    parser = build_parser()
    sample = ["sample", "--checkpoint", "c.pt", "--cases", str(tmp_path), "--out", str(tmp_path / "o")]
    export = ["nnunet", "export", "--cases", str(tmp_path), "--out", str(tmp_path / "p")]
    run = ["run", "--out", str(tmp_path / "w"), "--config", "tiny"]
    demo = ["demo", "--out", str(tmp_path / "w")]
    assert [parser.parse_args(c).qc for c in (sample, export, run, demo)] == [False, True, None, True]   # run: config
    assert [parser.parse_args([*c, "--no-qc"]).qc for c in (export, run, demo)] == [False, False, False]
    assert parser.parse_args([*sample, "--qc", "--qc-model", str(tmp_path)]).qc_model == str(tmp_path)


def test_run_and_demo_pass_qc_to_the_pipeline_settings(tmp_path) -> None:
    from LNSynthLib.cli.demo_command import _apply, user_settings
    from LNSynthLib.pipeline import PipelineSettings

    parser = build_parser()
    assert PipelineSettings().qc and PipelineSettings.demo().qc
    assert PipelineSettings.paper().qc is False          # paper 000 filters no synthetic pair: 10x stays 10x
    assert _apply(PipelineSettings.demo(), parser.parse_args(["demo", "--out", "w", "--no-qc"])).qc is False
    run = ["run", "--out", "w", "--config"]
    assert user_settings(parser.parse_args([*run, "paper"])).qc is False
    assert user_settings(parser.parse_args([*run, "paper-bf16"])).qc is False
    assert user_settings(parser.parse_args([*run, "tiny"])).qc is True
    assert user_settings(parser.parse_args([*run, "paper", "--qc"])).qc is True   # asked for


def test_qc_model_without_qc_is_refused_before_sampling(tmp_path, capsys: pytest.CaptureFixture) -> None:
    code = main(["sample", "--checkpoint", str(tmp_path / "none.pt"), "--cases", str(tmp_path), "--out",
                 str(tmp_path / "o"), "--qc-model", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and "--qc-model" in err and "Fix: add --qc" in err
    assert not (tmp_path / "o").exists()


def test_export_command_leaves_rejected_samples_out_unless_no_qc(data, tmp_path) -> None:
    train, synt = data
    score_synthetic(train, synt)
    base = ["nnunet", "export", "--cases", str(train), "--synthetic", str(synt), "--out", str(tmp_path / "p")]
    assert main([*base, "--dataset-id", "502"]) == 0
    assert main([*base, "--dataset-id", "503", "--no-qc"]) == 0
    counts = {p.name: json.loads((p / "dataset.json").read_text(encoding="utf-8"))["numTraining"]
              for p in sorted((tmp_path / "p" / "nnUNet_raw").glob("Dataset*"))}   # not the exports' lock files
    assert counts == {"Dataset502_RealSynt": 3 + 3, "Dataset503_RealSynt": 3 + 6}
