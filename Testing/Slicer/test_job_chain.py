"""Job chain of the module on real subprocesses: progress across steps, failure text, cancel of a tree."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest

from LNSynthLib.jobs.chain import JobChain, Step, format_seconds

STEP_SCRIPT = r"""
import json, sys, time, pathlib
out, n = pathlib.Path(sys.argv[1]), int(sys.argv[2])
for i in range(n + 1):
    print(json.dumps({"stage": "work", "step": i, "total": n, "eta_s": (n - i) * 0.01}), flush=True)
    time.sleep(0.01)
out.write_text("done")
"""

TREE_SCRIPT = r"""
import json, os, subprocess, sys, time, pathlib
run = pathlib.Path(sys.argv[1])
(run / "partial.tmp").write_text("half")
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
(run / "child.pid").write_text(str(child.pid))
print(json.dumps({"stage": "sample", "step": 1, "total": 10, "eta_s": 99}), flush=True)
time.sleep(120)
"""


def _py(script: str, *args: object) -> list[str]:
    return [sys.executable, "-c", script, *map(str, args)]


def test_two_steps_report_progress_and_run_on_success(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    steps = [Step("first", [], command=_py(STEP_SCRIPT, run / "a.txt", 5)),
             Step("second", [], weight=3.0, command=_py(STEP_SCRIPT, run / "b.txt", 5))]
    chain = JobChain(steps, run, log_path=tmp_path / "logs" / "run.log",
                     on_success=lambda: (run / "a.txt").read_text(encoding="utf-8") + (run / "b.txt").read_text(encoding="utf-8"))
    fractions, labels = [], set()
    while chain.poll().running:
        fractions.append(chain.state.fraction)
        labels.add(chain.state.label)
        time.sleep(0.02)
    assert chain.state.succeeded and chain.result == "donedone" and chain.state.fraction == 1.0
    assert labels >= {"first", "second"}
    assert fractions == sorted(fractions) and all(0 <= f <= 1 for f in fractions)
    log = (tmp_path / "logs" / "run.log").read_text(encoding="utf-8")
    records = [json.loads(line) for line in log.splitlines() if line.startswith('{"stage"')]
    assert log.count("$ ") == 2 and len(records) == 12 and records[-1]["step"] == 5


def test_failed_step_reports_its_error_and_removes_the_run_folder(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "input.nii.gz").write_text("x")
    fail = "import sys; print('lnsynth: error: ct.nii.gz: not a CT', file=sys.stderr); sys.exit(2)"
    chain = JobChain([Step("Preparing the case", [], command=_py(fail))], run).wait(timeout_s=60)
    assert not chain.succeeded and "Preparing the case failed (exit code 2)" in chain.error
    assert "ct.nii.gz: not a CT" in chain.error  # the CLI's message reaches the user
    assert not run.exists()


def test_cancel_kills_the_process_tree_and_leaves_no_partial_files(tmp_path: Path, process_alive):
    run = tmp_path / "run"
    run.mkdir()
    chain = JobChain([Step("Sampling", [], command=_py(TREE_SCRIPT, run))], run)
    deadline = time.monotonic() + 30
    while chain.poll().stage != "sample" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert chain.state.stage == "sample" and chain.state.text.startswith("Sampling (sample)")
    child_pid = int((run / "child.pid").read_text(encoding="utf-8"))
    parent_pid = chain.process.process.pid
    chain.cancel()
    time.sleep(0.2)
    assert chain.state.cancelled and not chain.state.running and chain.state.text == "Cancelled"
    assert not process_alive(parent_pid) and not process_alive(child_pid)
    assert not run.exists()


def test_cancel_works_where_python_has_no_sigkill(tmp_path: Path, process_alive, monkeypatch: pytest.MonkeyPatch):
    """Python on Windows has no `signal.SIGKILL`: Cancel, scene close and exit must not raise after the kill
    (else the chain is never marked cancelled and the next poll shows a "Failed" dialog)."""
    monkeypatch.delattr(signal, "SIGKILL")
    run = tmp_path / "run"
    run.mkdir()
    chain = JobChain([Step("Sampling", [], command=_py(TREE_SCRIPT, run))], run)
    deadline = time.monotonic() + 30
    while chain.poll().stage != "sample" and time.monotonic() < deadline:
        time.sleep(0.05)
    child_pid = int((run / "child.pid").read_text(encoding="utf-8"))
    parent_pid = chain.process.process.pid
    chain.cancel()
    time.sleep(0.2)
    state = chain.poll()  # what the panel's timer does next
    assert state.cancelled and not state.running and not state.error and state.text == "Cancelled"
    assert not process_alive(parent_pid) and not process_alive(child_pid)
    assert not run.exists()


def test_format_seconds():
    assert format_seconds(42) == "42 s" and format_seconds(125) == "2 min 05 s"
    assert format_seconds(7260) == "2 h 01 min"
