"""Background `lnsynth` steps run one after another, polled without blocking (a QTimer in Slicer).

A chain owns one run folder: when it is cancelled or a step fails, the whole process tree is
stopped and the run folder is deleted, so no partial output is left. A training writes into a
folder of its own (`resume_folder`), which is never deleted: the next run resumes from it. The
log goes to a separate file that survives, so a failure can still be diagnosed.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from LNSynthLib.jobs.runner import JobProcess
from LNSynthLib.jobs.warm_client import WarmRequest, WarmWorker


@dataclass
class Step:
    """One `python -m LNSynthLib <args>` call; `weight` is its share of the progress bar.

    `command` replaces the whole command line (e.g. `torchrun ...`), keeping progress and cancel.
    `warm`: run by the chain's warm worker when it has one (a short step of an interactive job whose
    imports and model load would cost more than its work); `command` is then `[python, "-m", module, ...]`.
    """

    label: str
    args: list[str]
    weight: float = 1.0
    command: list[str] | None = None
    warm: bool = False

    def module_and_args(self) -> tuple[str, list[str]]:
        """What `python -m` runs for this step: `LNSynthLib <args>`, or the module of `command`."""
        if self.command is None:
            return "LNSynthLib", list(self.args)
        if len(self.command) < 3 or self.command[1] != "-m":
            raise ValueError(f"a warm step runs `python -m module ...`, not {self.command}")
        return self.command[2], list(self.command[3:])


@dataclass
class ChainState:
    running: bool = True
    fraction: float = 0.0
    label: str = ""
    stage: str = ""
    eta_s: float | None = None
    succeeded: bool = False
    cancelled: bool = False
    error: str = ""
    step_index: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    log_tail: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """One status line for the progress bar."""
        if self.cancelled:
            return "Cancelled"
        if self.error:
            return "Failed"
        if self.succeeded:
            return "Done"
        eta = "" if self.eta_s is None else f", about {format_seconds(self.eta_s)} left in this step"
        stage = f" ({self.stage})" if self.stage and self.stage != self.label else ""
        return f"{self.label}{stage}{eta}"


def python_executable() -> str:
    """Python that runs `lnsynth` jobs: Slicer's own (PythonSlicer) inside Slicer, else this one."""
    return shutil.which("PythonSlicer") or sys.executable


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class JobChain:
    """Run `steps` in sequence; `on_success()` runs once (in `poll()`) after the last step succeeds."""

    def __init__(self, steps: Sequence[Step], run_dir: str | Path, *, log_path: str | Path | None = None,
                 python: str | None = None, env: dict[str, str] | None = None,
                 on_success: Callable[[], Any] | None = None, keep_run_dir_on_failure: bool = False,
                 resume_folder: str | Path | None = None, scene_bound: bool = False,
                 worker: WarmWorker | None = None) -> None:
        """`resume_folder`: where a training keeps its checkpoints (kept on cancel, resumed next time);
        `scene_bound`: `on_success` loads results into the scene the job was started from;
        `worker`: the session's warm worker, which runs the steps marked `warm`."""
        if not steps:
            raise ValueError("a job chain needs at least one step")
        self.steps = list(steps)
        self.run_dir = Path(run_dir)
        self.log_path = Path(log_path) if log_path else None
        self.python = python
        self.env = env
        self.on_success = on_success
        self.result: Any = None
        self.keep_run_dir_on_failure = keep_run_dir_on_failure
        self.resume_folder = Path(resume_folder) if resume_folder else None
        self.scene_bound = scene_bound
        self.worker = worker
        self.state = ChainState(label=self.steps[0].label)
        self.started_at = time.monotonic()
        self.step_seconds: list[tuple[str, float]] = []   # (label, wall seconds) of each finished step
        self._step_started = self.started_at
        self._total_weight = sum(s.weight for s in self.steps)
        self._done_weight = 0.0
        self._index = 0
        self.process: JobProcess | WarmRequest | None = None
        self._start_current()

    def _start_current(self) -> None:
        step = self.steps[self._index]
        self._step_started = time.monotonic()
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write("$ " + " ".join(step.command or ["lnsynth", *step.args]) + "\n")
        if step.warm and self.worker is not None and not self.worker.busy:   # busy: another chain's step
            module, args = step.module_and_args()
            self.process = self.worker.submit(args, module=module, env=self.env, log_path=self.log_path)
        else:
            self.process = JobProcess(step.args, python=self.python, env=self.env, log_path=self.log_path,
                                      command=step.command)
        self.state.label = step.label
        self.state.step_index = self._index

    def poll(self) -> ChainState:
        """Advance the chain; never blocks. Call until `state.running` is False."""
        if not self.state.running or self.process is None:
            return self.state
        job = self.process.poll()
        step = self.steps[self._index]
        self.state.stage = job.stage
        self.state.eta_s = job.eta_s
        self.state.events = job.events
        self.state.log_tail = job.log_tail
        self.state.fraction = (self._done_weight + step.weight * job.fraction) / self._total_weight
        if job.running:
            return self.state
        if job.returncode != 0:
            tail = "\n".join(job.log_tail[-15:])
            self.state.error = f"{step.label} failed (exit code {job.returncode}).\n{tail}".strip()
            self._finish(remove_outputs=not self.keep_run_dir_on_failure)
            return self.state
        self._done_weight += step.weight
        self.step_seconds.append((step.label, time.monotonic() - self._step_started))
        self._index += 1
        if self._index < len(self.steps):
            self._start_current()
            return self.state
        self.state.fraction = 1.0
        try:
            if self.on_success is not None:
                self.result = self.on_success()
            self.state.succeeded = True
        except Exception as exc:  # loading results failed: report it like a failed step
            self.state.error = f"results could not be loaded: {exc}"
        self._finish(remove_outputs=False)
        return self.state

    def wait(self, timeout_s: float | None = None, interval_s: float = 0.2) -> ChainState:
        """Block until done (headless scripts and tests; the GUI polls instead)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.poll().running:
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                raise TimeoutError(f"job chain still running after {timeout_s} s; cancelled")
            time.sleep(interval_s)
        return self.state

    def cancel(self) -> None:
        """Kill the running step's process tree and delete the run folder (never `resume_folder`)."""
        if not self.state.running:
            return
        if self.process is not None:
            self.process.cancel()
        self.state.cancelled = True
        self._finish(remove_outputs=True)

    def _finish(self, remove_outputs: bool) -> None:
        self.state.running = False
        if remove_outputs and self.run_dir.exists():
            shutil.rmtree(self.run_dir, ignore_errors=True)
