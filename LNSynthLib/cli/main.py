"""`lnsynth <command>`: entry point shared by users, the job runner and the Slicer module.

Each sub-command lives in its own module under `LNSynthLib.cli` and exposes
`register(subparsers)`, which adds a parser whose `func(args) -> int` runs the job.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence

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
]

EXIT_CANCELLED = 130
EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lnsynth",
        description="Synthesize abdominal CT lymph-node data with LN-DDPM and train nnU-Net on real + synthetic data.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _raise_cancelled(signum: int, frame: object) -> None:
    raise JobCancelled(f"stopped by signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    # A cancel from the job runner arrives as SIGTERM; turning it into an exception lets
    # `finally` blocks remove temporary files so no half-written output is left behind.
    signal.signal(signal.SIGTERM, _raise_cancelled)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_extra_args", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra_args = extra
    try:
        return int(args.func(args) or 0)
    except JobCancelled as exc:
        print(f"lnsynth: cancelled ({exc})", file=sys.stderr)
        return EXIT_CANCELLED
    except KeyboardInterrupt:
        print("lnsynth: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except LNSynthError as exc:
        print(f"lnsynth: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
