"""`lnsynth <command>`: entry point shared by users, the job runner and the Slicer module.

Each sub-command lives in its own module under `LNSynthLib.cli` and exposes
`register(subparsers)`, which adds a parser whose `func(args) -> int` runs the job.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Callable, Sequence

from LNSynthLib.cli.arg_types import LNSynthArgumentParser, check_outputs_apart
from LNSynthLib.errors import JobCancelled, LNSynthError

# Sub-command modules, in the order `lnsynth --help` lists them.
COMMAND_MODULES = [
    "LNSynthLib.cli.train_command",
    "LNSynthLib.cli.sample_command",
    "LNSynthLib.cli.phantom_command",
    "LNSynthLib.cli.anatomy_command",
    "LNSynthLib.cli.prepare_command",
    "LNSynthLib.cli.nnunet_command",
    "LNSynthLib.cli.evaluate_command",
    "LNSynthLib.cli.demo_command",
    "LNSynthLib.cli.bench_command",
    "LNSynthLib.cli.serve_command",
]

EXIT_CANCELLED = 130
EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = LNSynthArgumentParser(
        prog="lnsynth",
        description="Synthesize abdominal CT lymph-node data with LN-DDPM and train nnU-Net on real + synthetic data.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def cancel_on_sigterm() -> Callable[[int, object], None]:
    """A SIGTERM handler that raises JobCancelled in this process only.

    A cancel from the job runner arrives as SIGTERM; turning it into an exception lets `finally`
    blocks remove temporary files so no half-written output is left behind. Forked children
    (multiprocessing pool workers, e.g. nnU-Net's) inherit the handler; `Pool.terminate` stops
    them with SIGTERM, so in them it must end the process as SIGTERM normally does, or the pool
    waits for a worker that is busy unwinding an exception.
    """
    owner = os.getpid()

    def handler(signum: int, frame: object) -> None:
        if os.getpid() != owner:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise JobCancelled(f"stopped by signal {signum}")

    return handler


def main(argv: Sequence[str] | None = None) -> int:
    return run_guarded(lambda: _run(argv))


def run_guarded(command: Callable[[], int], prog: str = "lnsynth") -> int:
    """Run `command` as a job: SIGTERM cancels it cleanly, and errors become one line and an exit status."""
    # Installed only while the command runs: `main` is also called in-process (tests, scripts).
    from LNSynthLib.cli.streams import usable_streams

    previous = signal.signal(signal.SIGTERM, cancel_on_sigterm())
    try:
        with usable_streams():   # a closed stdout or a reader that stopped early never stops the job
            return _report_errors(command, prog)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _report_errors(command: Callable[[], int], prog: str) -> int:
    try:
        return command()
    except JobCancelled as exc:
        print(f"{prog}: cancelled ({exc})", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        print(f"{prog}: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except LNSynthError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


def _run(argv: Sequence[str] | None) -> int:
    if argv is None:   # a process of its own (`lnsynth`, `python -m LNSynthLib`), not a call from Python code
        from LNSynthLib.devices import apply_job_threads

        apply_job_threads()
    parser = build_parser()
    # Parsing is inside: bad values are UsageErrors (see cli.arg_types), reported like any other.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_extra_args", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra_args = extra
    check_outputs_apart(args)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
