"""`lnsynth run --strategies`: the pipeline trains the Synt-only strategy of paper 000 Tables 3-4 when asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from LNSynthLib.pipeline import (
    PIPELINE_STRATEGIES,
    Layout,
    PipelineSettings,
    _with_user_cases,
    export_strategy_dataset,
    run_pipeline,
    selected_datasets,
)


def exported_cases(dataset_dir: Path, folder: str) -> list[str]:
    return sorted(p.name.removesuffix("_0000.nii.gz") for p in (dataset_dir / folder).glob("*_0000.nii.gz"))


def test_synt_strategy_exports_only_synthetic_training_cases(phantom_root: Path, phantom_test_root: Path,
                                                            synthetic_root: Path, tmp_path: Path) -> None:
    layout = _with_user_cases(Layout(tmp_path), phantom_root, phantom_test_root)
    layout.synthetic.symlink_to(synthetic_root, target_is_directory=True)
    settings = PipelineSettings.demo(strategies=("synt", "real"), synt_per_case=2)
    rows = selected_datasets(settings)
    assert [row.name for row in rows] == ["Real", "Synt"]
    real_dir, synt_dir = (export_strategy_dataset(layout, settings, row) for row in rows)

    synt_train = exported_cases(synt_dir, "imagesTr")
    assert len(synt_train) == 4 * 2 and all("_synt_" in name for name in synt_train)
    assert sorted(p.name.removesuffix(".nii.gz") for p in (synt_dir / "labelsTr").glob("*.nii.gz")) == synt_train
    assert json.loads((synt_dir / "dataset.json").read_text())["numTraining"] == 8
    real_train = exported_cases(real_dir, "imagesTr")
    assert len(real_train) == 4 and not any("_synt_" in name for name in real_train)
    # both hold the same real held-out test cases
    assert exported_cases(synt_dir, "imagesTs") == exported_cases(real_dir, "imagesTs") and \
        len(exported_cases(synt_dir, "imagesTs")) == 2


def test_default_strategies_and_the_pasted_row() -> None:
    assert PIPELINE_STRATEGIES == ("real", "real+copypaste", "real+synt", "synt", "real+inct", "synt>real")
    assert [r.name for r in selected_datasets(PipelineSettings.demo())] == ["Real", "RealSynt"]
    paper = PipelineSettings.paper(strategies=("real", "real+synt", "synt"))
    assert [r.name for r in selected_datasets(paper)] == ["Real", "RealSynt", "RealSyntPasted", "Synt"]


def test_copy_paste_strategy_exports_real_plus_as_many_copy_paste_cases_as_real_synt(
        phantom_root: Path, phantom_test_root: Path, tmp_path: Path) -> None:
    layout = _with_user_cases(Layout(tmp_path), phantom_root, phantom_test_root)
    settings = PipelineSettings.demo(strategies=("real+copypaste", "real"), synt_per_case=2)
    rows = selected_datasets(settings)
    assert [row.name for row in rows] == ["Real", "RealCopyPaste"]   # Real first: QC needs its model
    dataset_dir = export_strategy_dataset(layout, settings, rows[1])
    train = exported_cases(dataset_dir, "imagesTr")
    assert len(train) == 4 + 4 * 2 and sum("_copypaste_" in name for name in train) == 4 * 2
    assert len(list((layout.copy_paste).iterdir())) == 4 * 2
    assert exported_cases(dataset_dir, "imagesTs") == exported_cases(export_strategy_dataset(layout, settings, rows[0]),
                                                                     "imagesTs")


def test_an_unknown_strategy_stops_before_anything_is_written(tmp_path: Path) -> None:
    from LNSynthLib.errors import InputDataError

    with pytest.raises(InputDataError, match="strategies"):
        run_pipeline(tmp_path / "work", PipelineSettings.demo(strategies=("synthetic",)))
    assert not (tmp_path / "work").exists()


def test_cli_strategies_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import argparse

    from LNSynthLib.cli import demo_command
    from LNSynthLib.cli.main import main

    parser = argparse.ArgumentParser()
    demo_command.register(parser.add_subparsers())
    args = parser.parse_args(["run", "--out", str(tmp_path / "w"), "--strategies", "synt", "real", "synt"])
    assert demo_command._apply(PipelineSettings.demo(), args).strategies == ("synt", "real")
    code = main(["run", "--out", str(tmp_path / "w"), "--strategies", "synthetic"])
    assert code == 2 and "--strategies" in capsys.readouterr().err
