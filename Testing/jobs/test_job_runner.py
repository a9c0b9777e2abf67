"""The job runner on real subprocesses: progress parsing, failure exit codes, process-tree cancel."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

from LNSynthLib.atomic import atomic_path, write_text_atomic
from LNSynthLib.errors import OutputExistsError
from LNSynthLib.jobs import JobProcess
from LNSynthLib.jobs.progress import Progress


def test_progress_json_lines_carry_stage_step_total_eta(capsys) -> None:
    with Progress("train", total=3, mode="json", min_interval_s=0.0) as progress:
        for step in range(1, 4):
            time.sleep(0.1)
            progress.update(step, loss=0.5 / step)
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    import json

    records = [json.loads(line) for line in lines]
    assert records[0]["step"] == 0 and records[0]["eta_s"] is None
    assert [r["step"] for r in records[1:4]] == [1, 2, 3]
    assert records[1]["eta_s"] > 0 and records[3]["eta_s"] == 0
    assert abs(records[2]["loss"] - 0.25) < 1e-9
    assert records[-1]["done"] is True


def test_bench_help_runs_as_background_job() -> None:
    job = JobProcess(["bench", "--help"])
    state = job.wait(timeout_s=60)
    assert state.returncode == 0
    assert any("BENCHMARK" in line for line in state.log_tail)


def test_user_error_exit_code_and_message(tmp_path: Path) -> None:
    job = JobProcess(["no-such-command"])
    state = job.wait(timeout_s=60)
    assert state.returncode == 2
    assert any("invalid choice" in line for line in state.log_tail)


def _spawn_tree_script(tmp_path: Path) -> Path:
    """A script that starts a grandchild and writes an output atomically, slowly."""
    script = tmp_path / "slow_job.py"
    script.write_text(textwrap.dedent(f"""
        import json, signal, subprocess, sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from LNSynthLib.atomic import atomic_path
        from LNSynthLib.errors import JobCancelled
        def stop(signum, frame):
            raise JobCancelled("term")
        signal.signal(signal.SIGTERM, stop)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        print(json.dumps({{"stage": "grandchild", "pid": child.pid}}), flush=True)
        try:
            with atomic_path({str(tmp_path / 'out.txt')!r}) as tmp:
                tmp.write_text("partial")
                for step in range(1000):
                    print(json.dumps({{"stage": "work", "step": step, "total": 1000}}), flush=True)
                    time.sleep(0.05)
        except JobCancelled:
            sys.exit(130)
    """))
    return script


def test_cancel_kills_process_tree_and_leaves_no_partial_file(tmp_path: Path) -> None:
    script = _spawn_tree_script(tmp_path)
    job = JobProcess([], command=[sys.executable, str(script)])
    deadline = time.monotonic() + 30
    while job.poll().step < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    grandchild = job.result_events("grandchild")[0]["pid"]
    assert job.state.stage == "work" and job.state.step >= 3
    job.cancel(grace_s=5)
    state = job.wait(timeout_s=10)
    assert state.cancelled and state.returncode == 130
    time.sleep(0.2)
    assert not _alive(grandchild), "grandchild survived the cancel"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slow_job.py"], "partial output left behind"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie whose parent died is reaped by init; treat it as gone
        return Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").split()[2] != "Z"
    except OSError:
        return False


def test_atomic_write_refuses_to_overwrite_and_cleans_up_on_error(tmp_path: Path) -> None:
    target = write_text_atomic(tmp_path / "a.json", "{}")
    try:
        write_text_atomic(target, "new")
    except OutputExistsError as exc:
        assert str(target) in str(exc) and "--overwrite" in str(exc)
    else:
        raise AssertionError("existing file was overwritten")
    assert target.read_text(encoding="utf-8") == "{}"
    try:
        with atomic_path(tmp_path / "b.nii.gz") as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    except RuntimeError:
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
