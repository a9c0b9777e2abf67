"""`python -m experiments synthesis`: strategy list, table/CI logic and the estimate (fast); the quick run end to end (slow)."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from experiments import synthesis_grid as grid
from LNSynthLib.pipeline import PIPELINE_STRATEGIES, PipelineSettings
from LNSynthLib.report.confidence import metric_difference


def _case(dsc: float, found: int, nodes: int = 2) -> dict:
    return {"DSC": dsc, "Recall": dsc, "Precision": 0.9, "ASSD": 1.0 - dsc, "NodeRecall": found / nodes,
            "nodes_found": found, "nodes_total": nodes}


def _marker(dscs: list[float], found: list[int]) -> dict:
    per_case = {f"case_{i}": _case(d, f) for i, (d, f) in enumerate(zip(dscs, found, strict=True))}
    summary = {m: float(np.mean([c[m] for c in per_case.values()])) for m in grid.REPORTED}
    return {"summary": summary, "per_case": per_case}


def test_every_strategy_names_a_pipeline_strategy_or_says_why_not() -> None:
    names = [f.name for f in fields(PipelineSettings)]
    reasons = {s.key: grid.unsupported(s, PIPELINE_STRATEGIES, names) for s in grid.STRATEGIES}
    assert reasons == {s.key: None for s in grid.STRATEGIES}
    # An unknown pipeline strategy or setting is named in the reason, not run.
    assert "real+other" in grid.unsupported(grid.Strategy("x", "X", "x", "real+other"), PIPELINE_STRATEGIES, names)
    assert "qc" in grid.unsupported(grid.BY_KEY["ddpm10_qc"], ("real+synt",), [n for n in names if n != "qc"])
    shared = [n for n in names if n != "nnunet_shared_plan"]
    assert "nnunet_shared_plan" in grid.unsupported(grid.BY_KEY["ddpm10_ownplan"], PIPELINE_STRATEGIES, shared)


def test_each_factor_changes_one_thing_of_the_ln_ddpm_row() -> None:
    base = grid.BY_KEY[grid.LN_DDPM_KEY]
    for key in grid.FACTORS:
        factor = grid.BY_KEY[key]
        a = grid.replace_settings(PipelineSettings.demo(), base.settings_changes())
        f = grid.replace_settings(PipelineSettings.demo(), factor.settings_changes())
        changed = {x.name for x in fields(PipelineSettings) if getattr(a, x.name) != getattr(f, x.name)}
        changed |= {"synthetic"} if factor.synthetic != base.synthetic else set()
        changed -= {"strategies"}   # the pretrain-then-fine-tune row is another pipeline strategy, nothing else
        assert len(changed) == (0 if factor.pipeline_strategy != base.pipeline_strategy else 1), (key, changed)
        assert factor.synt_per_case == base.synt_per_case


def test_quality_control_only_where_the_strategy_asks_for_it() -> None:
    # The pipeline filters by default; the strategies compared without the filter must turn it off.
    assert PipelineSettings().qc is True
    assert {s.key for s in grid.STRATEGIES if s.settings_changes()["qc"]} == {"ddpm10_qc"}


def test_groups_share_one_pipeline_call() -> None:
    members = [s for s in grid.STRATEGIES if s.group == "ddpm10"]
    assert [s.key for s in members] == ["ddpm10", "ddpm10_pasted"]
    assert grid.group_settings(members) == {"strategies": ("real+synt",), "synt_per_case": 10, "paste_variant": True,
                                           "qc": False}
    # The pasted row asked for alone (its unpasted twin already finished) runs the same pipeline call.
    assert grid.group_settings(members[1:]) == grid.group_settings(members)
    rows = [{"strategy": "Real + Synt", "method": "LN-DDPM"}, {"strategy": "Real + Synt", "method": "LN-DDPM (pasted)"}]
    assert grid.pick_row(members[0], rows) is rows[0] and grid.pick_row(members[1], rows) is rows[1]
    only = [{"strategy": "Real + copy-paste", "method": "nodes pasted"}]
    assert grid.pick_row(grid.BY_KEY["copypaste"], only) is only[0]
    settings = grid.replace_settings(PipelineSettings.demo(), grid.group_settings(members))
    assert settings.paste_variant and settings.synt_per_case == 10
    with pytest.raises(KeyError, match="no_such"):
        grid.replace_settings(PipelineSettings.demo(), {"no_such": 1})


def test_summary_gives_mean_sd_over_seeds_and_the_hierarchical_ci() -> None:
    real = {s: _marker([0.5, 0.6, 0.7, 0.5], [1, 2, 2, 1]) for s in range(3)}
    better = {s: _marker([0.7, 0.8, 0.9, 0.7], [2, 2, 2, 2]) for s in range(3)}
    noisy = {0: _marker([0.4, 0.9, 0.6, 0.5], [1, 2, 2, 1]), 1: _marker([0.6, 0.5, 0.7, 0.4], [1, 2, 2, 1])}
    summary = grid.summarize({"real": real, "ddpm5": better, "synt": noisy})
    assert summary["real"]["vs_real"] == {}
    dsc = summary["ddpm5"]["metrics"]["DSC"]
    assert dsc["mean"] == pytest.approx(0.775) and dsc["sd"] == 0.0 and dsc["n_seeds"] == 3
    diff = summary["ddpm5"]["vs_real"]["DSC"]
    assert diff["estimate"] == pytest.approx(0.2) and diff["low"] == pytest.approx(0.2) and diff["significant"]
    assert diff["n_seeds"] == 3 and diff["n_cases"] == 12 and diff["n_nodes"] == 24
    assert summary["ddpm5"]["vs_real"]["NodeRecall"]["estimate"] == pytest.approx(2 / 8)
    # Only the seeds both finished are paired (0 and 1), and the interval is the same bootstrap as the report's.
    expected = metric_difference([real[0]["per_case"], real[1]["per_case"]],
                                 [noisy[0]["per_case"], noisy[1]["per_case"]], "DSC")
    got = summary["synt"]["vs_real"]["DSC"]
    assert (got["low"], got["high"], got["n_seeds"]) == (expected.low, expected.high, 2) and not got["significant"]
    table = grid.results_table(summary)
    assert "| Real + LN-DDPM 5× | 3 | 0.775 ± 0.000 |" in table and "+0.200 [+0.200, +0.200] **(sig.)**" in table
    lines = grid.significance_sentences(summary, "2 cases")
    assert any("Real + LN-DDPM 5×" in line and "significant for DSC +0.200" in line and "(better)" in line
               for line in lines)
    assert any("Synt only" in line and "no metric differs significantly" in line for line in lines)


def test_full_run_estimate_adds_the_measured_unit_costs() -> None:
    costs = {"ddpm_s_per_iteration": 0.5, "sampling_s_per_sample": 4.0, "nnunet_s_per_iteration": 0.6,
             "nnunet_run_overhead_s": 20.0, "predict_s_per_case": 1.5}
    plan = {"ddpm_iterations": 1000, "samples": 100, "nnunet_iterations": 2000, "nnunet_runs": 10, "predictions": 50}
    assert grid.estimate_full_run(costs, plan) == {"ln_ddpm": 500.0, "sampling": 400.0, "nnunet_training": 1200.0,
                                                   "nnunet_overhead": 200.0, "prediction": 75.0, "total": 2375.0}


def test_budget_of_quick_and_overrides() -> None:
    from experiments.synthesis_bench import FULL, QUICK, budget

    args = argparse.Namespace(quick=True, regimes=None, seeds=None, strategies=None, test_cases=None)
    assert budget(args) == QUICK and len(QUICK["regimes"]) == 1 and len(QUICK["seeds"]) <= 2
    assert FULL["regimes"] == (2, 4) and len(FULL["seeds"]) >= 5 and FULL["test_cases"] >= 10
    assert set(FULL["strategies"]) == set(grid.PRIMARY) | set(grid.FACTORS)
    # Real, copy-paste, LN-DDPM 10x and in-CT 10x on all 5 seeds, the 5 factors on 2: 2 x (4 x 5 + 5 x 2) trainings.
    assert FULL["secondary_seeds"] == 2 and grid.planned_runs(FULL) == 2 * (4 * 5 + 5 * 2)
    assert grid.planned_runs({**FULL, "secondary_seeds": None}) == 2 * 9 * 5
    variants = [grid.BY_KEY["synt"]]
    assert grid.runs_on_seed(variants, 1, 2) and not grid.runs_on_seed(variants, 2, 2)
    assert grid.runs_on_seed([grid.BY_KEY["ddpm10"], grid.BY_KEY["ddpm10_pasted"]], 4, 2)   # a primary member
    assert grid.runs_on_seed(variants, 4, None)
    args = argparse.Namespace(quick=False, regimes=[4], seeds=[3], strategies=["real", "synt"], test_cases=12)
    b = budget(args)
    assert (b["regimes"], b["seeds"], b["strategies"], b["test_cases"]) == ((4,), (3,), ("real", "synt"), 12)
    assert b["secondary_seeds"] is None   # what is named explicitly runs on every seed named


@pytest.mark.slow
def test_quick_bench_runs_end_to_end_and_resumes(tmp_path: Path, capsys) -> None:
    """Real LN-DDPM, sampling, nnU-Net with plateau stopping and evaluation; a rerun trains nothing again."""
    from experiments.__main__ import main

    argv = ["synthesis", "--quick", "--strategies", "real", "ddpm5", "--test-cases", "2",
            "--work", str(tmp_path / "work"), "--results-dir", str(tmp_path / "results"), "--device", "cpu"]
    assert main(argv) == 0
    payload = json.loads((tmp_path / "results" / "synthesis_quick.json").read_text(encoding="utf-8"))["results"]
    summary = payload["summary"]["2"]
    assert set(summary) == {"real", "ddpm5"}
    diff = summary["ddpm5"]["vs_real"]["DSC"]
    assert diff["n_cases"] == 2 and diff["n_seeds"] == 1 and diff["low"] <= diff["estimate"] <= diff["high"]
    ddpm = payload["ln_ddpm"]["regime2_seed0"]
    assert ddpm["iterations"] >= 100 and ddpm["samples"] == 10 and "pearson_r" in ddpm["fidelity"]
    markers = sorted(p.name for p in (tmp_path / "work" / "regime2" / "seed0").glob("done_*.json"))
    assert markers == ["done_ddpm5.json", "done_real.json"]
    marker = json.loads((tmp_path / "work" / "regime2" / "seed0" / "done_real.json").read_text(encoding="utf-8"))
    assert marker["plateau"]["rule"]["patience"] == 2 and marker["nnunet_epochs_run"] >= 1
    md = (tmp_path / "results" / "synthesis_quick.md").read_text(encoding="utf-8")
    assert "ΔDSC vs Real" in md and "full-run estimate" in md.lower() and "synthesis_quick_curves.png" in md
    assert (tmp_path / "results" / "synthesis_quick_curves.png").exists()
    out = capsys.readouterr().out
    assert "bench synthesis [1/2]" in out and "ETA" in out
    assert main(argv) == 0   # resumes: every marker is there, nothing is trained again
    out = capsys.readouterr().out
    assert "[2/2]" in out and "ETA n/a" in out


def test_markdown_costs_and_estimate_from_markers(tmp_path: Path) -> None:
    from experiments.synthesis_bench import FULL, QUICK
    from experiments.synthesis_report import (
        IDLE_COSTS,
        costs_and_estimate,
        curves_figure,
        render_markdown,
    )

    epochs = [{"epoch": i, "train_loss": 1.0 - 0.1 * i, "val_loss": 1.0 - 0.05 * i} for i in range(3)]
    plateau = {"epochs_run": 3, "reason": "max_epochs", "epochs": epochs}
    stages = {"nnunet": 100.0, "evaluate": 20.0}
    real, synt = _marker([0.5, 0.6, 0.7], [1, 2, 2]), _marker([0.6, 0.7, 0.7], [2, 2, 2])
    common = {"plateau": plateau, "stages_s": stages, "nnunet_train_s": 60.0, "nnunet_epochs_run": 3,
              "group_wall_s": 130.0}
    runs = {2: {"real": {0: {**real, **common, "predict_s_per_case": 2.0}}, "ddpm5": {0: {**synt, **common}}}}
    ddpm = {(2, 0): {"iterations": 100, "passed": True, "train_s": 100 * IDLE_COSTS['ddpm_s_per_iteration'] * 4,
                     "sampling_s": 50.0, "samples": 10, "rounds": [{"train_s": 100 * IDLE_COSTS['ddpm_s_per_iteration'] * 4,
                                                                    "seconds": 8.0}],
                     "fidelity": {"pearson_r": 0.97, "ln_fat_contrast_hu": 76.0, "target_ln_fat_contrast_hu": 97.0},
                     "sampler": "ddim-20 (eta 1.0)", "prediction": "v"}}
    costs, estimate = costs_and_estimate(QUICK, runs, ddpm, FULL)
    assert costs["sampling_s_per_sample"] == 5.0 and costs["predict_s_per_case"] == 2.0
    iters = 2 * (QUICK["nnunet_iterations"] + QUICK["nnunet_val_iterations"]) * 3
    assert costs["nnunet_s_per_iteration"] == pytest.approx(120.0 / iters, abs=1e-3)
    assert costs["nnunet_run_overhead_s"] == pytest.approx((240 - 120) / 2 - 2.0 * QUICK["test_cases"])
    assert estimate["plan"]["ddpm_iterations"] == 10 * FULL["ddpm_check_every"]   # 100 measured, rounded up to a check
    slowdown = estimate["slowdown_vs_idle"]
    assert slowdown["ddpm_s_per_iteration"] == pytest.approx(4.0)
    assert slowdown["sampling_s_per_sample"] == pytest.approx(5.0 / IDLE_COSTS["sampling_s_per_sample"], abs=0.01)
    seconds, idle = estimate["seconds"], estimate["seconds_idle"]
    assert idle["ln_ddpm"] == pytest.approx(seconds["ln_ddpm"] / 4, abs=0.1)
    assert idle["prediction"] == pytest.approx(seconds["prediction"] / slowdown["nnunet_s_per_iteration"], abs=0.1)
    assert idle["total"] == pytest.approx(sum(v for k, v in idle.items() if k != "total"), abs=0.1)
    summaries = {2: grid.summarize(runs[2])}
    args = argparse.Namespace(quick=True)
    md = render_markdown(args, QUICK, {"copypaste": "not yet"}, ddpm, summaries, runs, costs, estimate, 600.0, 1.0,
                         3 * 3600)
    assert "Real + copy-paste 10×: not yet" in md and "| Real + LN-DDPM 5× | 1 |" in md and "0.97" in md
    assert "idle 2-core machine" in md and "max_epochs" in md
    png = curves_figure(runs, tmp_path / "missing_loss.csv", tmp_path / "curves.png")
    assert png.exists() and png.stat().st_size > 1000


def test_report_names_its_options_and_the_wall_span_over_invocations() -> None:
    from experiments.synthesis_report import command_line, wall_span_s

    args = argparse.Namespace(quick=False, regimes=[2], seeds=[0, 1], strategies=["real", "ddpm10"], test_cases=None,
                              report_only=True)
    assert command_line(args) == "python -m experiments synthesis --regimes 2 --seeds 0 1 --strategies real ddpm10 --report-only"
    assert command_line(argparse.Namespace(quick=True)) == "python -m experiments synthesis --quick"
    ddpm = {(2, 0): {"started_at": 100.0}, (2, 1): {"started_at": 250.0}}
    runs = {2: {"real": {0: {"finished_at": 300.0}, 1: {"finished_at": 900.0}}, "ddpm10": {0: {"finished_at": 400.0}}}}
    assert wall_span_s(ddpm, runs) == 800.0
    assert wall_span_s({(2, 0): {}}, runs) is None   # records written before the span was kept


def test_quality_control_table_counts_rejections_per_rule() -> None:
    from experiments.synthesis_report import qc_table

    qc = {(2, 1): {"n_rejected": 3, "n_samples": 20, "removed_by_rule": {"ln_hu": 2, "node_recall": 1}, "real_model": "m"},
          (2, 0): {"n_rejected": 0, "n_samples": 20, "removed_by_rule": {"ln_hu": 0, "node_recall": 0}, "real_model": None}}
    table = qc_table(qc)
    assert "| regime | seed | rejected | ln_hu | node_recall | Real model used |" in table
    assert table.index("| 2 | 0 | 0 / 20 | 0 | 0 | no |") < table.index("| 2 | 1 | 3 / 20 | 2 | 1 | yes |")
    assert qc_table({}) == ""


def test_ln_ddpm_is_also_compared_with_copy_paste_directly() -> None:
    real = {s: _marker([0.5, 0.6, 0.7, 0.5], [1, 2, 2, 1]) for s in range(2)}
    copy_paste = {s: _marker([0.6, 0.7, 0.8, 0.6], [2, 2, 2, 1]) for s in range(2)}
    ddpm = {s: _marker([0.5, 0.6, 0.7, 0.5], [1, 2, 2, 1]) for s in range(2)}
    summary = grid.summarize({"real": real, "copypaste": copy_paste, "ddpm10": ddpm})
    assert "vs_copypaste" not in summary["copypaste"] and "vs_copypaste" not in summary["real"]
    versus = summary["ddpm10"]["vs_copypaste"]["DSC"]
    assert versus["estimate"] == pytest.approx(-0.1) and versus["significant"] and versus["n_cases"] == 8
    assert summary["ddpm10"]["vs_real"]["DSC"]["estimate"] == pytest.approx(0.0)
    table = grid.copy_paste_table(summary)
    assert "| Real + LN-DDPM 10× | 2 | -0.100 [-0.100, -0.100] **(sig.)** |" in table
    lines = grid.significance_sentences(summary, "2 cases", "vs_copypaste", "Real + copy-paste")
    assert lines == [line for line in lines if "vs Real + copy-paste" in line] and len(lines) == 1
    assert "(worse)" in lines[0]
    assert grid.copy_paste_table(grid.summarize({"real": real, "ddpm10": ddpm})) == ""


def test_report_only_of_a_folder_without_runs_writes_nothing(tmp_path: Path) -> None:
    """A wrong --work is refused instead of replacing the results with empty tables."""
    from experiments.__main__ import main

    results = tmp_path / "results"
    results.mkdir()
    (results / "synthesis.md").write_text("earlier results", encoding="utf-8")
    argv = ["synthesis", "--report-only", "--work", str(tmp_path / "nothing"), "--results-dir", str(results)]
    assert main(argv) != 0
    assert (results / "synthesis.md").read_text(encoding="utf-8") == "earlier results"


def test_reading_rule_names_only_differences_beyond_the_real_vs_real_spread() -> None:
    from experiments import synthesis_sections as S

    real = {0: _marker([0.5, 0.6, 0.7, 0.5], [1, 2, 2, 1])}
    rerun = {0: _marker([0.6, 0.7, 0.8, 0.6], [1, 2, 2, 1])}          # the same data trained again: +0.100
    small = {0: _marker([0.55, 0.65, 0.75, 0.55], [1, 2, 2, 1])}      # +0.050: within that spread
    large = {0: _marker([0.8, 0.9, 0.9, 0.8], [2, 2, 2, 1])}          # +0.275: beyond it
    runs = {2: {"real": real, "real_rerun": rerun, "ddpm10": small, "inct10": large}}
    lines = S.can_and_cannot_show({2: grid.summarize(runs[2])}, runs)
    assert lines[0].startswith("**What this run can and cannot show.**")
    (regime,) = [line for line in lines if line.startswith("- 2 real cases")]
    assert "moved DSC by +0.100" in regime and "LN-DDPM in-CT 10× (+0.275)" in regime and "LN-DDPM 10×" not in regime
    assert S.can_and_cannot_show({2: grid.summarize({"real": real, "ddpm10": small})},
                                 {2: {"real": real, "ddpm10": small}}) == []   # no rerun: no rule to state
