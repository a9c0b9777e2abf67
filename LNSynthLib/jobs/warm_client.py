"""The session's side of a warm worker (`jobs/warm_worker.py`): start it, send it job steps, follow them.

`WarmWorker.submit` returns a `WarmRequest` that a `JobChain` polls exactly like a `JobProcess` (state,
progress, log tail, result, cancel), so the panel and the web page keep their progress bar, Cancel and
error messages. A worker that died (a crash, or a kill after a cancel that was not honoured in time)
fails its request with a message that says so, and the next request starts a fresh worker.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from LNSynthLib.jobs.results import result_path
from LNSynthLib.jobs.runner import JobState, _kill_signal, _parse_progress, job_env, record_line
from LNSynthLib.jobs.warm_worker import DONE, READY

WORKER_MODULE = "LNSynthLib.jobs.warm_worker"


class WarmWorker:
    """One long-lived job process of a session; one request at a time."""

    def __init__(self, python: str | None = None, env: dict[str, str] | None = None,
                 tail_lines: int = 200) -> None:
        self.python = python or sys.executable
        self.env = env
        self.tail_lines = tail_lines
        self.process: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._ids = itertools.count(1)
        self.current: WarmRequest | None = None
        self.starts = 0   # processes started so far: 1 while the same worker serves every request

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.alive else None

    @property
    def busy(self) -> bool:
        """A request is running: another job step starts its own process instead of waiting."""
        return self.current is not None and self.current.poll().running

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _start(self) -> None:
        self._lines = queue.Queue()
        self.process = subprocess.Popen(
            [self.python, "-m", WORKER_MODULE], env=job_env(self.env), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, encoding="utf-8", errors="replace", bufsize=1,
            start_new_session=(os.name != "nt"), creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        self.starts += 1
        lines = self._lines
        threading.Thread(target=self._read, args=(self.process, lines), daemon=True).start()

    @staticmethod
    def _read(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def submit(self, args: Sequence[str], *, module: str = "LNSynthLib", env: dict[str, str] | None = None,
               cwd: str | Path | None = None, log_path: str | Path | None = None) -> WarmRequest:
        """Run `python -m <module> <args>` in the worker (started now if it is not running)."""
        if self.busy:
            raise RuntimeError("the warm worker is still running a request")
        if not self.alive:
            self._start()
        request = {"id": next(self._ids), "module": module, "argv": [str(a) for a in args],
                   "env": dict(env or {}), "cwd": str(cwd) if cwd else None}
        assert self.process is not None and self.process.stdin is not None
        self.current = WarmRequest(self, request, log_path)
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):   # died between the check and the write: the request reports it
            pass
        return self.current

    def stop(self, grace_s: float = 5.0) -> None:
        """End the worker: stdin closed (it exits after its request), killed if it does not within `grace_s`."""
        if self.process is None:
            return
        if self.current is not None and self.current.poll().running:
            self.current.cancel(grace_s)
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.close()
                self.process.wait(timeout=grace_s)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, _kill_signal()) if os.name != "nt" else self.process.kill()
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()


class WarmRequest:
    """One job step run by a `WarmWorker`; the same surface as `JobProcess` for `JobChain`."""

    def __init__(self, worker: WarmWorker, request: dict[str, Any], log_path: str | Path | None) -> None:
        self.worker = worker
        self.id = request["id"]
        self.args = request["argv"]
        self.state = JobState()
        self.ready = False   # the worker's imports were done before this request (a warm start)
        self._log = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
        self._lines = worker._lines
        self._process = worker.process

    @property
    def pid(self) -> int | None:
        """The worker process running this request."""
        return None if self._process is None else self._process.pid

    def poll(self) -> JobState:
        """Drain the lines that arrived since the last call; never blocks."""
        while self.state.running:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is None:   # the worker's output ended: it died
                self._end(self._death_code(), self._death_message())
                break
            record = _parse_progress(line)
            if record is not None and record.get("stage") == READY:
                self.ready = True
                continue
            if record is not None and record.get("stage") == DONE and record.get("id") == self.id:
                self._end(int(record.get("returncode", 1)))
                break
            if self._log:
                self._log.write(line + "\n")
                self._log.flush()
            record_line(self.state, line, self.worker.tail_lines)
        return self.state

    def _death_code(self) -> int:
        assert self._process is not None
        try:
            return self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return -int(_kill_signal())

    def _death_message(self) -> str:
        code = self._death_code()
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
        return (f"the synthesis worker process {how} during this step; "
                "a new one starts with the next request (nothing of this step was kept)")

    def _end(self, returncode: int, message: str | None = None) -> None:
        if message:
            self.state.log_tail.append(message)
            if self._log:
                self._log.write(message + "\n")
        self.state.running = False
        self.state.returncode = returncode if returncode != 0 or message is None else 1
        if self._log:
            self._log.close()
            self._log = None

    def wait(self, timeout_s: float | None = None, poll_interval_s: float = 0.05) -> JobState:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.poll().running:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"warm request {' '.join(self.args)} still running after {timeout_s} s")
            time.sleep(poll_interval_s)
        return self.state

    def cancel(self, grace_s: float = 5.0) -> None:
        """SIGTERM cancels the request and keeps the worker; one that does not answer in `grace_s` is killed."""
        if not self.poll().running:
            return
        self.state.cancelled = True
        assert self._process is not None
        try:
            os.kill(self._process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.wait(timeout_s=grace_s)
        except TimeoutError:
            self.worker.kill()   # a hung worker is replaced by the next request
            self.wait(timeout_s=grace_s)

    def result_events(self, stage: str = "result") -> list[dict[str, Any]]:
        return [e for e in self.state.events if e.get("stage") == stage]

    def result(self, kind: str | None = None) -> Path | None:
        return result_path(self.state.events, kind)
