"""Shared CLI options: one spelling and one choice list per flag; sampling defaults left to the LN-DDPM config."""

from __future__ import annotations

import pytest

from LNSynthLib.cli.main import build_parser
from LNSynthLib.diffusion.choices import SAMPLERS


def _sub_parser(parser, *names: str):  # noqa: ANN001, ANN202 - argparse internals
    for name in names:
        action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = action.choices[name]
    return parser


def test_sample_options_are_unset_by_default_and_keep_the_old_n(tmp_path) -> None:  # noqa: ANN001
    parser = build_parser()
    base = ["sample", "--checkpoint", "c.pt", "--cases", str(tmp_path), "--out", str(tmp_path / "o")]
    args = parser.parse_args(base)
    assert (args.samples_per_case, args.sampler, args.steps, args.eta) == (None, None, None, None)
    assert parser.parse_args([*base, "--samples-per-case", "3"]).samples_per_case == 3
    assert parser.parse_args([*base, "--n", "4"]).samples_per_case == 4     # former spelling, hidden
    assert "--n " not in _sub_parser(parser, "sample").format_help()


@pytest.mark.parametrize("command", [["sample"], ["demo"], ["run"]])
def test_sampler_choices_come_from_the_registry(command: list[str]) -> None:
    action = next(a for a in _sub_parser(build_parser(), *command)._actions if a.dest == "sampler")
    assert tuple(action.choices) == SAMPLERS and action.default is None


def test_demo_and_run_sampling_options_become_config_overrides() -> None:
    from LNSynthLib.cli.demo_command import _apply
    from LNSynthLib.pipeline import PipelineSettings, ddpm_config

    demo = PipelineSettings.demo()
    sample = ddpm_config(demo).sample
    assert (sample.sampler, sample.steps, sample.eta, sample.samples_per_case) == ("ddim", 20, 1.0, 2)
    paper = ddpm_config(PipelineSettings.paper()).sample
    assert (paper.sampler, paper.steps, paper.samples_per_case) == ("ddpm", 300, 10)

    args = build_parser().parse_args(["demo", "--out", "w", "--samples-per-case", "3", "--sampler", "dpmpp",
                                      "--steps", "7", "--ddpm-iterations", "5", "--synt-per-case", "1"])
    settings = _apply(demo, args)
    assert settings.synt_per_case == 1
    chosen = ddpm_config(settings)
    assert (chosen.sample.sampler, chosen.sample.steps, chosen.sample.samples_per_case) == ("dpmpp", 7, 3)
    assert chosen.train.iterations == 5 and chosen.train.checkpoint_every == 50   # demo overrides kept
    untouched = _apply(demo, build_parser().parse_args(["demo", "--out", "w"]))
    assert untouched.ddpm_overrides == demo.ddpm_overrides
    assert untouched.nnunet_real_share == 0.5 and untouched.nnunet_shared_plan   # the fair rule by default


def test_real_share_and_own_plans_options() -> None:
    from LNSynthLib.cli.demo_command import _apply
    from LNSynthLib.cli.main import build_parser
    from LNSynthLib.errors import UsageError
    from LNSynthLib.pipeline import PipelineSettings

    parse = build_parser().parse_args
    demo = PipelineSettings.demo()
    assert _apply(demo, parse(["demo", "--out", "w", "--nnunet-real-share", "0.33"])).nnunet_real_share == 0.33
    assert _apply(demo, parse(["demo", "--out", "w", "--nnunet-real-share", "uniform"])).nnunet_real_share is None
    assert not _apply(demo, parse(["demo", "--out", "w", "--nnunet-own-plans"])).nnunet_shared_plan
    assert _apply(demo, parse(["demo", "--out", "w", "--strategies", "real", "synt>real", "real+inct"])).strategies \
        == ("real", "synt>real", "real+inct")
    with pytest.raises(UsageError, match="not below 1"):
        parse(["demo", "--out", "w", "--nnunet-real-share", "1"])


def test_every_segmenter_setting_of_the_pipeline_is_reachable_from_run_and_demo(tmp_path) -> None:  # noqa: ANN001
    """The nnU-Net settings the synthesis benchmark varies are product settings: `lnsynth run` and `lnsynth demo`
    reach each of them, and a run without the options keeps the defaults."""
    from dataclasses import fields

    from LNSynthLib.cli.demo_command import _apply
    from LNSynthLib.cli.main import build_parser
    from LNSynthLib.errors import UsageError
    from LNSynthLib.pipeline import PipelineSettings

    parse = build_parser().parse_args
    demo = PipelineSettings.demo()
    model = tmp_path / "real_model"
    model.mkdir()
    for command in ("demo", "run"):
        args = parse([command, "--out", str(tmp_path / "w"), "--nnunet-base-features", "16", "--nnunet-fold", "all",
                      "--nnunet-step-size", "1.0", "--nnunet-seed-offset", "1", "--qc-model", str(model),
                      *(["--cases", str(tmp_path)] if command == "run" else [])])
        changed = _apply(demo, args)
        assert (changed.nnunet_base_features, changed.nnunet_fold, changed.nnunet_step_size) == (16, "all", 1.0)
        assert changed.nnunet_seed_offset == 1 and changed.qc_real_model == str(model)
    assert _apply(demo, parse(["demo", "--out", "w", "--nnunet-fold", "2"])).nnunet_fold == 2
    plain = _apply(demo, parse(["demo", "--out", "w"]))
    assert (plain.nnunet_base_features, plain.nnunet_fold, plain.nnunet_step_size, plain.nnunet_seed_offset,
            plain.qc_real_model) == (None, 0, None, 0, None)
    import argparse

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    options = {a.dest for a in commands.choices["run"]._actions}
    nnunet_fields = {f.name for f in fields(PipelineSettings) if f.name.startswith("nnunet_")} - {
        "nnunet_val_iterations", "nnunet_shared_plan"}   # fixed validation budget; --nnunet-own-plans
    assert nnunet_fields <= options, sorted(nnunet_fields - options)
    with pytest.raises(UsageError, match="not a fold"):
        parse(["demo", "--out", "w", "--nnunet-fold", "one"])
    with pytest.raises(UsageError):
        parse(["run", "--out", "w", "--qc-model", str(tmp_path / "missing")])


@pytest.mark.parametrize("command", [["train", "--cases", "{t}", "--run-dir", "{t}/run"],
                                     ["run", "--cases", "{t}", "--test-cases", "{t}", "--out", "{t}/work"]])
def test_train_and_run_require_a_config_naming_the_choices(command: list[str], tmp_path,  # noqa: ANN001
                                                           capsys: pytest.CaptureFixture) -> None:
    """Forgetting --config must not silently give the CPU-sized `tiny` model; `demo` alone defaults to it."""
    from LNSynthLib.cli.main import EXIT_USER_ERROR, main
    from LNSynthLib.diffusion.choices import BUNDLED_CONFIGS

    code = main([arg.replace("{t}", str(tmp_path)) for arg in command])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and "Traceback" not in err
    assert err.startswith("lnsynth: error: argument --config is required: tiny (CPU-sized")
    assert all(name in err for name in BUNDLED_CONFIGS) and "Fix: add --config tiny" in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "work").exists()   # nothing started
    assert "--config" not in [a for action in _sub_parser(build_parser(), "demo")._actions
                              for a in action.option_strings]
