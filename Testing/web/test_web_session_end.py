"""A session process told to stop (SIGTERM: idle, or `lnsynth serve` stopping) takes its running job with it.

Jobs run in their own process group, so that signal alone would leave them running with no page to show them
(a 2 GB nnU-Net prediction kept a core busy for 20 minutes after its session had ended). The handler the session
installs kills the job's processes, keeps its files, and the session still dies of SIGTERM, as the launcher logs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SESSION = r'''
import sys, time
from types import SimpleNamespace
from LNSynthLib.jobs.chain import JobChain, Step
from LNSynthScene.web.jobs import JobMonitor
from LNSynthScene.web.serve import end_jobs_with_the_session

run = sys.argv[1]
__import__("pathlib").Path(run).mkdir()
(__import__("pathlib").Path(run) / "partial.txt").write_text("what the job wrote so far")
sleeper = [sys.executable, "-c", "import subprocess, sys, time; "
           "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
           "print('grandchild', child.pid, flush=True); time.sleep(300)"]
monitor = JobMonitor(SimpleNamespace())
monitor.chain = JobChain([Step("a long job", [], command=sleeper)], run)
stopped = []
logic = SimpleNamespace(stop_warm_worker=lambda: stopped.append(True))
end_jobs_with_the_session(SimpleNamespace(jobs=monitor, session=SimpleNamespace(logic=logic)))
while not any(line.startswith("grandchild") for line in monitor.chain.poll().log_tail):
    time.sleep(0.1)
print("job", monitor.chain.process.process.pid, flush=True)
print([line for line in monitor.chain.state.log_tail if line.startswith("grandchild")][0], flush=True)
time.sleep(300)
'''


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z")


@pytest.mark.skipif(os.name == "nt", reason="process groups and SIGTERM are POSIX")
def test_a_stopped_session_takes_its_job_processes_with_it(tmp_path: Path):
    pytest.importorskip("trame", reason="the web extra is not installed")
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'LNSynth'}{os.pathsep}{REPO}"}
    session = subprocess.Popen([sys.executable, "-c", SESSION, str(tmp_path / "run")], stdout=subprocess.PIPE,
                               text=True, env=env)
    try:
        job = int(session.stdout.readline().split()[1])
        grandchild = int(session.stdout.readline().split()[1])
        assert _alive(job) and _alive(grandchild)
        session.send_signal(signal.SIGTERM)
        assert session.wait(timeout=30) == -signal.SIGTERM   # it still dies of the signal (the launcher's log)
        deadline = time.monotonic() + 15
        while (_alive(job) or _alive(grandchild)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(job) and not _alive(grandchild)
        assert (tmp_path / "run" / "partial.txt").is_file()   # the job's files stay (a reopened session finds them)
    finally:
        if session.poll() is None:
            session.kill()
