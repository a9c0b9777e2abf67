"""A Table 1 / Table 2 row for any variant from `lnsynth run`: `--set`, paper sizes for every config but tiny,
nnU-Net's standard trainer from the command line, rows labelled with the variant."""

from __future__ import annotations

from pathlib import Path

import pytest

from LNSynthLib.cli.main import EXIT_USER_ERROR, build_parser, main
from LNSynthLib.diffusion.choices import VARIANT_LABELS, VARIANTS, method_label


def _run(tmp_path: Path, *extra: str) -> list[str]:
    return ["run", "--out", str(tmp_path / "w"), "--cases", str(tmp_path), "--test-cases", str(tmp_path), *extra]


def test_set_and_user_yaml_give_paper_sized_variant_runs(tmp_path: Path) -> None:
    from LNSynthLib.cli.demo_command import user_settings
    from LNSynthLib.pipeline import PipelineSettings, ddpm_config

    parser = build_parser()
    med = user_settings(parser.parse_args(_run(tmp_path, "--config", "paper", "--set", "network.variant=med_ddpm",
                                               "--strategies", "synt", "real+synt")))
    assert med.ddpm_overrides == {"network.variant": "med_ddpm"} and ddpm_config(med).network.variant == "med_ddpm"
    assert (med.nnunet_epochs, med.synt_per_case, med.qc, med.strategies) == (None, 10, False, ("synt", "real+synt"))
    own = tmp_path / "own.yaml"
    own.write_text("network:\n  variant: conditional\n", encoding="utf-8")
    mine = user_settings(parser.parse_args(_run(tmp_path, "--config", str(own))))
    paper = PipelineSettings.paper(ddpm_config=str(own))
    assert mine == paper and mine.nnunet_epochs is None     # no 3-epoch nnU-Net for a user YAML
    assert (paper.nnunet_shared_plan, paper.nnunet_real_share) == (False, None)   # nnU-Net as paper 000 used it
    tiny = user_settings(parser.parse_args(_run(tmp_path, "--config", "tiny", "--nnunet-epochs", "standard")))
    assert tiny.nnunet_epochs is None and tiny.nnunet_patch_size == (32, 32, 32)
    assert user_settings(parser.parse_args(_run(tmp_path, "--config", "tiny", "--nnunet-epochs", "4"))).nnunet_epochs == 4


def test_bad_set_is_refused_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(_run(tmp_path, "--config", "paper", "--set", "network.variant=pix2pix"))
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and "pix2pix" in err and "Traceback" not in err
    assert not (tmp_path / "w").exists()


def test_rows_are_labelled_with_the_variant() -> None:
    assert set(VARIANT_LABELS) == set(VARIANTS)
    assert method_label("ln_ddpm") == "LN-DDPM" and method_label("med_ddpm", {"train.iterations": 9}) == "Med-DDPM"
    assert method_label("ln_ddpm", {"network.attention_mode": "GA", "network.variant": "ln_ddpm",
                                    "sample.steps": 5}) == "LN-DDPM (attention_mode=GA)"


def test_evaluate_labels_rows_with_the_runs_variant(tmp_path: Path) -> None:
    """`lnsynth evaluate` reads the LN-DDPM run's config.yaml (as training writes it) for the row label."""
    from LNSynthLib.cli.evaluate_command import run_method
    from LNSynthLib.diffusion.config import load_config, save_config
    from LNSynthLib.diffusion.train.training import _batch_comment

    run = tmp_path / "ln_ddpm"
    run.mkdir()
    assert run_method(run) == "LN-DDPM" and run_method(None) == "LN-DDPM"   # no config.yaml: the default
    config = load_config("tiny", {"network.variant": "med_ddpm"})
    (run / "config.yaml").write_text(_batch_comment(1, 1) + save_config(config), encoding="utf-8")
    assert run_method(run) == "Med-DDPM"
