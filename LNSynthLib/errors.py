"""Errors a user can act on: each names the file (when there is one) and the fix."""

from __future__ import annotations

from pathlib import Path


class LNSynthError(Exception):
    """Base class for problems caused by input or environment, not by a bug.

    The CLI prints these without a traceback, so the message must say what is
    wrong, which file it concerns and what to do about it.
    """

    def __init__(self, problem: str, *, path: str | Path | None = None, fix: str | None = None) -> None:
        self.problem = problem
        self.path = Path(path) if path is not None else None
        self.fix = fix
        parts = [f"{self.path}: {problem}" if self.path is not None else problem]
        if fix:
            parts.append(f"Fix: {fix}")
        super().__init__("\n".join(parts))


class InputDataError(LNSynthError):
    """A CT, mask or label file is missing, unreadable or inconsistent."""


class ConfigError(InputDataError):
    """An LN-DDPM config file or `--set` value is malformed, of the wrong type or out of range."""


class MissingWeightsError(LNSynthError):
    """Model weights needed offline (TotalSegmentator, LPIPS feature net) are absent."""


class OutputExistsError(LNSynthError):
    """Refuse to replace a file the user already has."""


class OutputWriteError(LNSynthError):
    """An output could not be written completely (disk full, file-size or quota limit); nothing was kept."""


class UsageError(LNSynthError):
    """A command-line value is malformed or out of range (found while parsing, before any work)."""


class JobCancelled(Exception):
    """Raised inside a job when the user asked it to stop."""
