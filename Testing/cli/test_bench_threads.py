"""`lnsynth bench threads` through the real CLI: every (load, setting) timed, JSON and Markdown with the machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow   # four fresh processes that each import torch: a minute on a shared 2-core machine
def test_bench_threads_writes_each_load_and_setting(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "LNSynthLib", "bench", "threads", "--size", "8", "--repeats", "1", "--rounds", "1",
           "--settings", "1 thread", "rule", "--results-dir", str(tmp_path)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads((tmp_path / "threads.json").read_text(encoding="utf-8"))
    rows = payload["results"]["rows"]
    assert payload["machine"]["processor"] and payload["machine"]["logical_cores"] >= 1
    assert [(r["load"], r["setting"]) for r in rows] == [("idle", "1 thread"), ("idle", "rule"),
                                                         ("busy (1 spinning)", "1 thread"),
                                                         ("busy (1 spinning)", "rule")]
    assert all(r["errors"] == [] and r["median_s"] > 0 and r["threads"] >= 1 for r in rows)
    assert rows[0]["threads"] == 1 and rows[0]["vs_1_thread"] == 1.0
    assert "| busy (1 spinning) | rule |" in (tmp_path / "threads.md").read_text(encoding="utf-8")
