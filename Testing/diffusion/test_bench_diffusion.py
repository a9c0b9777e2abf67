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
    assert "sampler_comparison" not in res                       # one home: `python -m experiments samplers`
    md = (tmp_path / "diffusion.md").read_text(encoding="utf-8")
    for part in ("(a, c) Step time", "(d) Growth", "Estimate for an H100", "`python -m experiments samplers`", "test run"):
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

