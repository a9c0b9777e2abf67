"""A job stops when the front end that started it dies without stopping it (a crash, SIGKILL).

A front end stops its jobs when it closes (Cancel, the web session's SIGTERM handler, Slicer's exit
question), but a process killed outright runs no handler: its job would run on, orphaned, for as long as
an nnU-Net training takes, writing into a folder that a reopened session may start the same job in.
`JobProcess` names its own pid in `PARENT_ENV`; the job's entry calls `stop_with_parent()`, whose daemon
thread checks every second that the job's parent is still that process and otherwise sends SIGTERM to
the job's process group: the same stop as Cancel, so the job leaves no half-written file. Without
`PARENT_ENV` (a command typed in a shell, nohup), or where the entry's parent is not the process the
variable names (a program under torchrun inherits it), nothing is watched.
"""

from __future__ import annotations

import os
import signal
import threading
import time

PARENT_ENV = "LNSYNTH_PARENT_PID"
CHECK_S = 1.0


def parent_env() -> dict[str, str]:
    """What `JobProcess` adds to a job's environment: this process is the job's parent."""
    return {PARENT_ENV: str(os.getpid())}


def _stop_own_group() -> None:
    """SIGTERM to the job and everything it started (its process group, when it leads one)."""
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpgrp(), signal.SIGTERM)
    else:
        os.kill(os.getpid(), signal.SIGTERM)


def stop_with_parent(check_s: float = CHECK_S) -> threading.Thread | None:
    """Watch the parent named in `PARENT_ENV`; returns the watching thread, or None when nothing is watched."""
    text = os.environ.get(PARENT_ENV, "")
    if os.name == "nt" or not text.isdigit() or os.getppid() != int(text):
        return None
    parent = int(text)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(check_s)
        _stop_own_group()

    thread = threading.Thread(target=watch, name="lnsynth-parent-watch", daemon=True)
    thread.start()
    return thread
