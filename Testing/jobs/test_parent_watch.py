"""A job whose front end is killed outright (no handler runs) stops by itself, its process group with it.

Real processes: a front-end process starts a long `lnsynth phantom` job through `JobProcess`, then is
SIGKILLed; the job must be gone within seconds, as after Cancel. A job started from a shell (no parent
named) and a program under another parent are not watched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from LNSynthLib.jobs.parent_watch import PARENT_ENV, stop_with_parent

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(os.name == "nt", reason="process groups and getppid watching are POSIX")

FRONT_END = textwrap.dedent("""
    import sys, time
    from LNSynthLib.jobs.runner import JobProcess
    job = JobProcess(["phantom", "--out", sys.argv[1], "--cases", "500", "--shape", "48", "64", "64"])
    print(job.pid, flush=True)
    while True:
        job.poll()
        time.sleep(0.2)
""")


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return False


def test_a_job_stops_when_its_front_end_is_killed(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    front = subprocess.Popen([sys.executable, "-c", FRONT_END, str(tmp_path / "phantoms")], stdout=subprocess.PIPE,
                             text=True, env=env, cwd=tmp_path)
    try:
        job_pid = int(front.stdout.readline())
        deadline = time.monotonic() + 120
        while not list((tmp_path / "phantoms").glob("phantom_*")) and time.monotonic() < deadline:
            time.sleep(0.5)   # the job is at work (imports done, cases being written)
        assert _alive(job_pid), "the job ended before its front end was killed"
        front.send_signal(signal.SIGKILL)
        front.wait(timeout=30)
        assert _wait_gone(job_pid, 30), "the job outlived its killed front end"
    finally:
        if front.poll() is None:
            front.kill()
        if _alive(job_pid):
            os.killpg(job_pid, signal.SIGKILL)
    written = sorted((tmp_path / "phantoms").glob("phantom_*"))
    assert 0 < len(written) < 500   # stopped mid-way, not run to the end
    assert not list((tmp_path / "phantoms").rglob("*.tmp*"))   # stopped as by Cancel: no half-written file


def test_nothing_is_watched_without_the_parent_or_under_another_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PARENT_ENV, raising=False)
    assert stop_with_parent() is None                          # typed in a shell
    monkeypatch.setenv(PARENT_ENV, str(os.getppid() + 1))       # named parent is not ours (e.g. under torchrun)
    assert stop_with_parent() is None
    # named parent is the real one: a watcher runs (in a child process, so this test process is never watched)
    script = ("import time; from LNSynthLib.jobs.parent_watch import stop_with_parent; "
              "w = stop_with_parent(0.05); time.sleep(0.3); print(w is not None and w.daemon and w.is_alive())")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO), PARENT_ENV: str(os.getpid())})
    assert done.stdout.strip() == "True", done.stderr[-2000:]
