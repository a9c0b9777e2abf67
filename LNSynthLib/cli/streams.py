"""A closed or vanished stdout/stderr never stops a job: its outputs are files, the printing is a courtesy.

Started with stdout closed (`lnsynth ... >&-`), Python sets `sys.stdout` to None and the first
progress line fails; piped into a reader that stops early (`| head -1`), the next write raises
BrokenPipeError halfway through the work. `usable_streams` gives the command streams that go to
/dev/null instead in both cases, so the job finishes and its exit code tells how it went.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

GONE = frozenset({errno.EPIPE, errno.EBADF})


def _devnull() -> TextIO:
    return open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - lives as long as the stream it replaces


class _Tolerant(io.TextIOBase):
    """A text stream that switches to /dev/null the first time its target has gone away."""

    def __init__(self, target: TextIO) -> None:
        self._target = target

    def _gone(self) -> None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            # The interpreter flushes the original stream at exit: point its descriptor at /dev/null too.
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, self._target.fileno())
            os.close(fd)
        self._target = _devnull()

    def _call(self, name: str, *args: Any) -> Any:  # noqa: ANN401 - whatever the stream returns
        try:
            return getattr(self._target, name)(*args)
        except OSError as exc:
            if exc.errno not in GONE:
                raise
            self._gone()
            return getattr(self._target, name)(*args)

    def write(self, text: str) -> int:
        self._call("write", text)
        return len(text)

    def flush(self) -> None:
        self._call("flush")

    def isatty(self) -> bool:
        try:
            return self._target.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return self._target.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 - the target's own attributes (buffer, ...)
        return getattr(self._target, name)


@contextlib.contextmanager
def usable_streams() -> Iterator[None]:
    """While the command runs, sys.stdout/sys.stderr are never None and never raise for a gone reader."""
    saved = sys.stdout, sys.stderr
    sys.stdout = _Tolerant(sys.stdout if sys.stdout is not None else _devnull())
    sys.stderr = _Tolerant(sys.stderr if sys.stderr is not None else _devnull())
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
        sys.stdout, sys.stderr = saved
