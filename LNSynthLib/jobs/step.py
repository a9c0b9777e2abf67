"""The tail of every `python -m` job step: the project's error as one line on stderr and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

from LNSynthLib.errors import LNSynthError

STEP_ERROR_EXIT = 2   # the exit code `lnsynth` gives a user error (cli.main.EXIT_USER_ERROR)


def run_step(step: Callable[[], str | None]) -> int:
    """Run `step`, print what it returns; a project error becomes `lnsynth: error: ...` and exit code 2."""
    try:
        message = step()
    except LNSynthError as exc:
        print(f"lnsynth: error: {exc}", file=sys.stderr)
        return STEP_ERROR_EXIT
    if message:
        print(message)
    return 0
