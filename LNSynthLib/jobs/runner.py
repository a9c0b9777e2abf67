"""Run an `lnsynth` command as a separate OS process and follow its JSON-lines progress.

Used by the Slicer module (polled from a QTimer, so the GUI never blocks) and by tests.
The child starts in its own session, so `cancel()` can stop the whole process tree
(nnU-Net and torchrun start grandchildren) with one signal to the process group.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from LNSynthLib.jobs.parent_watch import parent_env
from LNSynthLib.jobs.progress import PROGRESS_ENV
from LNSynthLib.jobs.results import result_path


@dataclass
class JobState:
    """What a caller needs to draw a progress bar and decide what to do next."""

    running: bool = True
    returncode: int | None = None
    stage: str = ""
    step: int = 0
    total: int = 0
    eta_s: float | None = None
    last: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    log_tail: list[str] = field(default_factory=list)
    cancelled: bool = False

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.step / self.total)


class JobProcess:
    """One background `python -m LNSynthLib <args>` process."""

    def __init__(self, args: Sequence[str], *, python: str | None = None, cwd: str | Path | None = None,
                 env: dict[str, str] | None = None, log_path: str | Path | None = None,
                 tail_lines: int = 200, command: Sequence[str] | None = None,
                 on_line: Callable[[str], None] | None = None) -> None:
        """Start `python -m LNSynthLib <args>`; `command` replaces that whole command line
        (e.g. `torchrun ...`, an nnU-Net program) and keeps the same progress handling.
        `on_line` sees every output line (in `poll`, on the caller's thread)."""
        self.args = [str(a) for a in args]
        if command is None:
            command = [python or sys.executable, "-m", "LNSynthLib", *self.args]
        command = [str(c) for c in command]
        child_env = job_env(env)
        self._log = open(log_path, "a", encoding="utf-8") if log_path else None  # noqa: SIM115
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.state = JobState()
        self._tail_lines = tail_lines
        self._on_line = on_line
        self.process = subprocess.Popen(
            command, cwd=cwd, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            # UTF-8 whatever the parent's locale: Slicer (and VTK) set the C locale, whose codec is ASCII.
            stdin=subprocess.DEVNULL, encoding="utf-8", errors="replace", bufsize=1,
            start_new_session=(os.name != "nt"),
            # Windows: no console window per job (Slicer's own launchConsoleProcess hides it too).
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def poll(self) -> JobState:
        """Drain the lines that arrived since the last call; never blocks."""
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is None:
                continue
            self._take_line(line)
        if self.state.running and self.process.poll() is not None and not self._reader.is_alive():
            # Drain once more: the reader may have queued lines after the first loop.
            while not self._lines.empty():
                line = self._lines.get_nowait()
                if line is not None:
                    self._take_line(line)
            self.state.running = False
            self.state.returncode = self.process.returncode
            if self._log:
                self._log.close()
        return self.state

    def _take_line(self, line: str) -> None:
        if self._log:
            self._log.write(line + "\n")
            self._log.flush()
        if self._on_line is not None:
            self._on_line(line)
        record_line(self.state, line, self._tail_lines)

    def wait(self, timeout_s: float | None = None, poll_interval_s: float = 0.1) -> JobState:
        """Block until the job ends (for scripts and tests; the GUI polls instead)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.poll().running:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {' '.join(self.args)} still running after {timeout_s} s")
            time.sleep(poll_interval_s)
        return self.state

    def cancel(self, grace_s: float = 5.0) -> None:
        """Stop the job and every process it started: SIGTERM to the group, SIGKILL after `grace_s`
        (on Windows `taskkill /F /T` both times)."""
        if self.process.poll() is not None:
            return
        self.state.cancelled = True
        _signal_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(self.process.pid, _kill_signal())
            self.process.wait()
        # Grandchildren that ignored SIGTERM still belong to the group.
        _signal_group(self.process.pid, _kill_signal())

    def result_events(self, stage: str = "result") -> list[dict[str, Any]]:
        return [e for e in self.state.events if e.get("stage") == stage]

    def result(self, kind: str | None = None) -> Path | None:
        """Path the command announced as its result (`jobs.results`), or None."""
        return result_path(self.state.events, kind)


def record_line(state: JobState, line: str, tail_lines: int) -> None:
    """Take one output line of a job into its state: a progress record, or a line of the log tail."""
    record = _parse_progress(line)
    if record is None:
        state.log_tail.append(line)
        del state.log_tail[: -tail_lines]
        return
    state.last = record
    state.events.append(record)
    if "step" in record and "total" in record:
        state.stage = str(record.get("stage", ""))
        state.step = int(record["step"])
        state.total = int(record["total"])
        state.eta_s = record.get("eta_s")


def job_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a job process: JSON progress, UTF-8 output, this library importable, and this
    process named as its parent (the job stops if this process dies without stopping it: `parent_watch`)."""
    child_env = dict(os.environ)
    child_env.update(env or {})
    child_env.update(parent_env())
    child_env[PROGRESS_ENV] = "json"
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    child_env["PYTHONIOENCODING"] = "utf-8"  # the child writes what the reader decodes
    repo_root = str(Path(__file__).resolve().parents[2])
    child_env["PYTHONPATH"] = os.pathsep.join(p for p in (repo_root, child_env.get("PYTHONPATH")) if p)
    return child_env


def _parse_progress(line: str) -> dict[str, Any] | None:
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and "stage" in record else None


def _kill_signal() -> int:
    """SIGKILL, read when needed: Python on Windows has none (`_signal_group` uses `taskkill /F` there)."""
    return getattr(signal, "SIGKILL", signal.SIGTERM)


def _signal_group(pid: int, sig: int) -> None:
    if os.name == "nt":
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(pid)], capture_output=True, check=False)
        return
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
