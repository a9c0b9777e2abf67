"""Run one `JobChain` at a time for a page: poll it on the server's event loop, mirror it into the state.

The chain is the panel's (`LNSynthLib.jobs.chain`): background processes, progress, Cancel and the
log tail; this only replaces the panel's QTimer with an asyncio task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from LNSynthLib.jobs.chain import JobChain

POLL_S = 0.5
LOG_LINES = 40
JOB_STARTED = "lnsynth session: job started: "   # read by the launcher: a session with a job is never idle
JOB_ENDED = "lnsynth session: job ended: "


def report(line: str) -> None:
    """A line for the server log (the launcher stamps it with the time and the session id)."""
    print(line, flush=True)


class JobMonitor:
    """Mirror the running chain into `state` (job_running, job_percent, job_text, job_log, job_done)."""

    def __init__(self, state: object, wording: Callable[[str], str] = str) -> None:
        self.state = state
        self.wording = wording   # a job's error in the page's terms (its fix names flags of the job's command)
        self.chain: JobChain | None = None
        self._task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self.chain is not None and self.chain.state.running

    def start(self, chain: JobChain, on_done: Callable[[Any], None] | None = None) -> None:
        self.chain = chain
        with self.state:
            self.state.update({"job_running": True, "job_done": False, "job_failed": False, "job_percent": 0,
                               "job_text": chain.state.text, "job_log": "", "error": ""})
        report(f"{JOB_STARTED}{chain.state.text}")
        self._task = asyncio.get_event_loop().create_task(self._watch(chain, on_done))

    def cancel(self) -> None:
        if self.chain is not None:
            self.chain.cancel()

    def stop_processes(self, grace_s: float = 2.0) -> None:
        """Kill the running step's process tree and keep its files: the session process is ending.

        Jobs run in their own process group (Cancel kills the tree), so a signal to the session alone
        would leave them running, a 2 GB nnU-Net prediction included, with no page left to show them.
        """
        if self.running and self.chain.process is not None:
            self.chain.process.cancel(grace_s)

    async def _watch(self, chain: JobChain, on_done: Callable[[Any], None] | None) -> None:
        while True:
            state = chain.poll()
            with self.state:
                self.state.job_percent = round(100 * state.fraction, 1)
                self.state.job_text = state.text
                self.state.job_log = "\n".join(state.log_tail[-LOG_LINES:])
                if not state.running:
                    self.state.job_running = False
                    self.state.job_done = True
                    self.state.job_failed = bool(state.error or state.cancelled)
                    if state.error:
                        self.state.error = self.wording(state.error)
            if not state.running:
                break
            await asyncio.sleep(POLL_S)
        outcome = "cancelled" if state.cancelled else "failed" if state.error else "succeeded"
        report(f"{JOB_ENDED}{outcome} ({state.text})")
        if state.succeeded and on_done is not None:
            with self.state:
                try:
                    on_done(chain.result)
                except Exception as exc:  # showing the result failed: say so in the page, like a failed step
                    self.state.error = f"error: the result could not be shown: {exc}"
                    self.state.job_failed = True
