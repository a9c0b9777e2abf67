"""`lnsynth bench diffusion --quick` through the real CLI: valid JSON and Markdown with every part."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from LNSynthLib.bench.diffusion_bench import PeakRSS, count_flops, measure_matmul
from LNSynthLib.diffusion.config import load_config

REPO = Path(__file__).resolve().parents[2]


def test_bench_quick_writes_json_and_markdown(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "LNSynthLib", "bench", "diffusion", "--quick", "--config", "tiny",
           "--sizes", "8", "16", "--forward-only", "8", "--estimate-size", "32", "--threads", "1",
           "--results-dir", str(tmp_path), "--note", "test run"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads((tmp_path / "diffusion.json").read_text(encoding="utf-8"))
    res = payload["results"]
    assert payload["benchmark"] == "diffusion" and payload["machine"]["logical_cores"] >= 1
    assert res["network"]["variant"] == "ln_ddpm" and res["matmul"]["fp32_gflops"] > 0
    sizes = [(r["size"], "forward_backward" in r) for r in res["steps"]]
    assert sizes == [(8, True), (16, True), (8, False)]
    for row in res["steps"]:
        assert row["forward"]["min_s"] > 0 and row["forward"]["gflops_per_s"] > 0
        assert row["forward"]["peak_memory_gib"] > 0
    big, small = res["steps"][1]["flops"], res["steps"][0]["flops"]
    assert 6 < big["forward"] / small["forward"] < 10          # ~8× the voxels
    assert big["forward_backward"] > 2 * big["forward"]
    assert res["growth"]["voxel_ratio"] == 8.0
    est = res["gpu_estimate"]
    assert est["size"] == 32 and est["assumed_sustained_tflops"] == pytest.approx(989 * 0.4)
    assert est["forward_s"] == pytest.approx(est["flops"]["forward"] / 395.6e12)
    assert "sampler_comparison" not in res                       # one home: `lnsynth bench samplers`
    md = (tmp_path / "diffusion.md").read_text(encoding="utf-8")
    for part in ("(a, c) Step time", "(d) Growth", "Estimate for an H100", "`lnsynth bench samplers`", "test run"):
        assert part in md


def test_flop_count_matches_a_real_run() -> None:
    """The meta-device count matches counting during a real forward (no hidden compute skipped).

    Only attention may differ slightly: on meta tensors SDPA takes the math path, on CPU the
    fused kernel, and the counter's formulas for the two are not identical.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from LNSynthLib.bench.diffusion_bench import _inputs
    from LNSynthLib.diffusion.model.network import build_denoiser

    cfg = load_config("tiny")
    counted = count_flops(cfg, 16, 1)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        build_denoiser(cfg)(*_inputs(16, 1, "cpu"))
    assert counted["forward"] == pytest.approx(counter.get_total_flops(), rel=0.02)


def test_matmul_and_rss_helpers() -> None:
    assert measure_matmul(torch.device("cpu"), 128, repeats=2) > 0.01
    with PeakRSS() as rss:
        block = torch.ones(64, 2**20)   # 256 MiB
        block += 1
    assert rss.peak - rss.start > 128 * 2**20



def test_sampler_comparison_on_a_checkpoint(straight_run: Path, phantom_cases: Path, one_thread: None) -> None:
    """The comparison on the short run of the process tests: every sampler row has time and fidelity."""
    from LNSynthLib.bench.diffusion_samplers import compare_samplers

    chosen = [("ddim", 4, 1.0), ("dpmpp", 4, 0.0)]
    res = compare_samplers(straight_run, phantom_cases, n_cases=1, samplers=chosen)
    assert res["status"] == "run" and res["n_samples"] == 1 and res["process"] == "ddpm"
    assert [(r["sampler"], r["steps"]) for r in res["samplers"]] == [(s, n) for s, n, _ in chosen]
    for row in res["samplers"]:
        assert row["wall_s"] > 0 and row["n_regions"] > 0 and row["texture_std_ratio"] > 0
        assert -1.0 <= row["pearson_r"] <= 1.0


def test_judge_applies_the_issue_rule() -> None:
    from LNSynthLib.bench.diffusion_samplers import judge

    ref = {"wall_s": 100.0, "steps": 300, "pearson_r": 0.98, "ln_fat_contrast_hu": 90.0}
    rows = [dict(ref), {"wall_s": 2.0, "steps": 4, "pearson_r": 0.975, "ln_fat_contrast_hu": 81.0},
            {"wall_s": 2.0, "steps": 4, "pearson_r": 0.965, "ln_fat_contrast_hu": 90.0},
            {"wall_s": 2.0, "steps": 4, "pearson_r": 0.98, "ln_fat_contrast_hu": 79.0},
            {"wall_s": 2.0, "steps": 4, "pearson_r": 0.98, "ln_fat_contrast_hu": None}]
    judge(rows, rows[0])
    assert [r["passes"] for r in rows] == [True, True, False, False, False]
    assert rows[1]["time_ratio"] == 0.02 and rows[1]["nfe_reduction"] == 75


def test_bench_samplers_quick_trains_both_processes(tmp_path: Path) -> None:
    """`lnsynth bench samplers --quick`: a DDPM and an rflow checkpoint trained here, one table with the rule.

    20 s on a busy 2-core machine (16³, 20 iterations each, T = 50, one condition).
    """
    cmd = [sys.executable, "-m", "LNSynthLib", "bench", "samplers", "--quick", "--threads", "1",
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
