"""`python -m experiments samplers`: few-step samplers and rectified flow judged against DDPM at equal fidelity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_sampler_comparison_on_a_checkpoint(straight_run: Path, phantom_cases: Path, one_thread: None) -> None:
    """The comparison on the short run of the process tests: every sampler row has time and fidelity."""
    from experiments.diffusion_samplers import compare_samplers

    chosen = [("ddim", 4, 1.0), ("dpmpp", 4, 0.0)]
    res = compare_samplers(straight_run, phantom_cases, n_cases=1, samplers=chosen)
    assert res["status"] == "run" and res["n_samples"] == 1 and res["process"] == "ddpm"
    assert [(r["sampler"], r["steps"]) for r in res["samplers"]] == [(s, n) for s, n, _ in chosen]
    for row in res["samplers"]:
        assert row["wall_s"] > 0 and row["n_regions"] > 0 and row["texture_std_ratio"] > 0
        assert -1.0 <= row["pearson_r"] <= 1.0


def test_judge_applies_the_issue_rule() -> None:
    from experiments.diffusion_samplers import judge

    ref = {"wall_s": 100.0, "steps": 300, "pearson_r": 0.98, "ln_fat_contrast_hu": 90.0}
    rows = [dict(ref), {"wall_s": 2.0, "steps": 4, "pearson_r": 0.975, "ln_fat_contrast_hu": 81.0},
            {"wall_s": 2.0, "steps": 4, "pearson_r": 0.965, "ln_fat_contrast_hu": 90.0},
            {"wall_s": 2.0, "steps": 4, "pearson_r": 0.98, "ln_fat_contrast_hu": 79.0},
            {"wall_s": 2.0, "steps": 4, "pearson_r": 0.98, "ln_fat_contrast_hu": None}]
    judge(rows, rows[0])
    assert [r["passes"] for r in rows] == [True, True, False, False, False]
    assert rows[1]["time_ratio"] == 0.02 and rows[1]["nfe_reduction"] == 75


def test_bench_samplers_quick_trains_both_processes(tmp_path: Path) -> None:
    """`python -m experiments samplers --quick`: a DDPM and an rflow checkpoint trained here, one table with the rule.

    20 s on a busy 2-core machine (16³, 20 iterations each, T = 50, one condition).
    """
    cmd = [sys.executable, "-m", "experiments", "samplers", "--quick", "--threads", "1",
           "--results-dir", str(tmp_path), "--note", "test run"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    res = json.loads((tmp_path / "samplers.json").read_text(encoding="utf-8"))["results"]
    assert [(r["process"], r["sampler"], r["steps"]) for r in res["samplers"]] == [
        ("ddpm", "ddpm", 50), ("ddpm", "dpmpp", 4), ("rflow", "rflow", 4)]
    assert res["samplers"][0]["passes"] and res["samplers"][0]["time_ratio"] == 1.0
    assert res["checkpoints"]["rflow"]["overrides"]["diffusion.process"] == "rflow"
    assert res["checkpoints"]["ddpm"]["overrides"]["train.iterations"] == 20 == \
        res["checkpoints"]["rflow"]["overrides"]["train.iterations"]
    assert res["rflow"]["prediction"] == "velocity" and res["ddpm"]["prediction"] == "v"
    md = (tmp_path / "samplers.md").read_text(encoding="utf-8")
    assert "| rflow: rflow-4 | 4 |" in md and "fidelity rule" in md and "test run" in md
