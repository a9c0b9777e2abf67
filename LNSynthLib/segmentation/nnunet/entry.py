"""`python -m LNSynthLib.segmentation.nnunet.entry PROGRAM ARGS...`: an nnU-Net program, run safely.

LNSynth starts nnU-Net's programs through this module instead of their console scripts, so that
in the nnU-Net process (and in worker processes it forks or spawns, which re-import this module
as `__mp_main__`):
- every `torch.load` is weights-only (`safe_checkpoints`): a malicious checkpoint runs no code;
- the trainer writes its checkpoints atomically (temporary file, fsync, rename), so a SIGTERM
  during `save_checkpoint` leaves the previous checkpoint instead of a truncated one (not patched,
  and the trainer not imported, in planning/preprocessing processes, which save no checkpoint).
A refused checkpoint ends the program with one `lnsynth-error: {json}` line and exit code 2;
`runner.run_logged` turns that line back into the project's error.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import entry_points

from LNSynthLib import safe_checkpoints
from LNSynthLib.errors import LNSynthError
from LNSynthLib.jobs.parent_watch import stop_with_parent
from LNSynthLib.safe_checkpoints import ERROR_PREFIX
from LNSynthLib.segmentation.nnunet.resume import atomic_save_checkpoint

ERROR_EXIT = 2


PROGRAM_ENV = "LNSYNTH_NNUNET_PROGRAM"   # the program being run, inherited by the workers it spawns
NO_TRAINER_PROGRAMS = frozenset({"nnUNetv2_plan_and_preprocess", "nnUNetv2_extract_fingerprint",
                                 "nnUNetv2_move_plans_between_datasets",
                                 "nnUNetv2_plan_experiment", "nnUNetv2_preprocess"})


def _this_program() -> str | None:
    """The nnU-Net program of this process: from the environment (workers) or the command line (the parent)."""
    if os.environ.get(PROGRAM_ENV):
        return os.environ[PROGRAM_ENV]
    return sys.argv[1] if __name__ == "__main__" and len(sys.argv) > 1 else None


def install(program: str | None = None) -> None:
    """Safe loading and atomic checkpoint writes for this process (idempotent).

    Planning and preprocessing save no checkpoint, so their processes and spawned workers skip the
    trainer import (about twice the import time of what those workers need); unknown programs get both.
    """
    safe_checkpoints.install()
    if program in NO_TRAINER_PROGRAMS:
        return
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    if not getattr(nnUNetTrainer.save_checkpoint, "lnsynth_atomic", False):
        nnUNetTrainer.save_checkpoint = atomic_save_checkpoint(nnUNetTrainer.save_checkpoint)


def report_error(exc: LNSynthError) -> None:
    """One machine-readable line for the parent process (see `runner.run_logged`)."""
    payload = {"problem": exc.problem, "path": None if exc.path is None else str(exc.path), "fix": exc.fix}
    print(ERROR_PREFIX + json.dumps(payload), flush=True)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m LNSynthLib.segmentation.nnunet.entry PROGRAM [ARGS...]", file=sys.stderr)
        return ERROR_EXIT
    program, args = argv[0], argv[1:]
    found = list(entry_points(group="console_scripts", name=program))
    if not found or not found[0].value.startswith("nnunetv2."):
        print(f"{program} is not an nnU-Net v2 program of this Python environment", file=sys.stderr)
        return ERROR_EXIT
    sys.argv = [program, *args]
    os.environ[PROGRAM_ENV] = program   # for the workers nnU-Net spawns (they re-import this module)
    try:
        result = found[0].load()()
    except LNSynthError as exc:
        report_error(exc)
        return ERROR_EXIT
    return int(result or 0) if isinstance(result, int) else 0


install(_this_program())   # at import, so spawned workers (which import this module as __mp_main__) are covered too

if __name__ == "__main__":
    stop_with_parent()   # the front end or the pipeline died without stopping nnU-Net: stop too
    raise SystemExit(main(sys.argv[1:]))
