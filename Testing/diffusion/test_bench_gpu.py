"""`lnsynth bench gpu`: refuses without CUDA (exit 2, no traceback); `--cpu-smoke` runs every item on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from LNSynthLib.bench.gpu_bench import SAMPLE_ITEMS, TRAIN_ITEMS

REPO = Path(__file__).resolve().parents[2]


def _bench(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "LNSynthLib", "bench", "gpu", "--results-dir", str(tmp_path), *extra]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_refuses_without_cuda(tmp_path: Path) -> None:
    done = _bench(tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("lnsynth: error: `lnsynth bench gpu` measures a CUDA GPU, and PyTorch finds none")
    assert "Fix: run it on a machine with a CUDA GPU, or add --cpu-smoke" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())


def test_cpu_smoke_runs_every_item(tmp_path: Path) -> None:
    """Every training variant (incl. torch.compile, traced with the eager backend) and every sampler runs.

    12 s of CPU time (about a minute while the 2-core machine was shared by four other jobs).
    """
    done = _bench(tmp_path, "--cpu-smoke", "--repeats", "1", "--note", "smoke test")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (tmp_path / "gpu.json").exists()          # a CPU smoke never replaces a GPU result
    res = json.loads((tmp_path / "gpu_cpu_smoke.json").read_text(encoding="utf-8"))["results"]
    assert res["cpu_smoke"] and res["device"] == "cpu" and res["patch_size"] == [8, 8, 8]
    assert [r["item"] for r in res["training"]] == [label for label, _ in TRAIN_ITEMS]
    for row in res["training"]:
        assert "error" not in row and "skipped" not in row, row
        assert row["median_s"] > 0 and row["peak_memory_gib"] > 0 and row["fits_24gb"]
    assert [(r["sampler"], r["steps"]) for r in res["sampling"]] == [(s, min(n, 10)) for s, n in SAMPLE_ITEMS]
    assert all(r["seconds"] > 0 for r in res["sampling"]), res["sampling"]
    md = (tmp_path / "gpu_cpu_smoke.md").read_text(encoding="utf-8")
    for part in ("| bf16 + gradient checkpointing |", "| bf16 + torch.compile |", "| rflow-4 | 4 |", "smoke test",
                 "torch.compile backend eager"):
        assert part in md


def test_budget_skips_items_and_records_them(tmp_path: Path) -> None:
    done = _bench(tmp_path, "--cpu-smoke", "--budget-s", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    res = json.loads((tmp_path / "gpu_cpu_smoke.json").read_text(encoding="utf-8"))["results"]
    assert all(r["skipped"].startswith("time budget") for r in res["training"] + res["sampling"])
    assert "time budget (--budget-s) used up" in (tmp_path / "gpu_cpu_smoke.md").read_text(encoding="utf-8")
