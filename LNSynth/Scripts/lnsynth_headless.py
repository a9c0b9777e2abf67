"""Run an `lnsynth` command as a background job with Slicer's Python: progress, Ctrl+C, exit status.

    PythonSlicer <scripts>/lnsynth_headless.py run --config paper --cases C --test-cases T --out W
    Slicer --no-main-window --python-script <scripts>/lnsynth_headless.py run --config paper --cases C --test-cases T --out W
    python LNSynth/Scripts/lnsynth_headless.py demo --out demo          (source tree, any Python)

`<scripts>` is `LNSynth/Scripts` in the source tree and
`<extension>/lib/Slicer-X.Y/qt-scripted-modules/Scripts` in an installed extension. The whole
pipeline is `lnsynth run` (the same code as the command line); any other command works too
(`sample ...`, `nnunet train ...`). `--run` before the command and a `--` separator are accepted and
dropped: Slicer consumes `--` itself ("ignore the rest") and hands the script what follows it, which
is also how to pass an option Slicer would otherwise take (`Slicer --python-script ... -- sample --help`).

The command runs in its own process group through the panel's job chain: Ctrl+C and SIGTERM stop
the whole process tree (also under Slicer, which resets SIGINT to its default), the exit status is
the command's, and under Slicer the application exits with it, also when this script fails.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
for root in (HERE.parents[1], HERE.parents[2]):  # installed: next to the module; source tree: repo root
    if (root / "LNSynthLib").is_dir() and str(root) not in sys.path:
        sys.path.insert(0, str(root))

from LNSynthLib.jobs.chain import JobChain, Step, python_executable  # noqa: E402
from LNSynthLib.jobs.results import result_event  # noqa: E402

USAGE = "usage: lnsynth_headless.py [--run] [--] <lnsynth command> [arguments]   (e.g. run --cases C ...)"


def command_of(argv: list[str]) -> list[str]:
    """The lnsynth command line in `argv`, without the optional `--run` and `--`."""
    rest = list(argv)
    while rest and rest[0] in ("--run", "--"):
        rest.pop(0)
    return rest


def work_folder(command: list[str]) -> Path:
    """Where logs go: the command's own output folder when it names one, else the current folder."""
    for flag in ("--out", "--run-dir", "--work"):
        if flag in command[:-1]:
            return Path(command[command.index(flag) + 1])
    return Path.cwd()


def run_command(command: list[str]) -> int:
    """Run one lnsynth command with a one-line progress display; Ctrl+C / SIGTERM cancel the tree."""
    logs = work_folder(command) / "logs"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    # The command writes its own outputs atomically and resumes on its own; the chain's run folder
    # is only a name here (never created), so cancelling removes nothing of the command's.
    chain = JobChain([Step(command[0], command)], logs / f".headless-{stamp}",
                     log_path=logs / f"{command[0]}-{stamp}.log", python=python_executable())
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in handlers:  # Python handlers: Slicer leaves SIGINT at SIG_DFL, which would orphan the job
        signal.signal(sig, lambda *_: chain.cancel())
    last = ""
    try:
        while chain.poll().running:
            line = f"[{100 * chain.state.fraction:5.1f}%] {chain.state.text}"
            if line != last:
                print(line, flush=True)
                last = line
            time.sleep(0.5)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    state = chain.state
    print(f"log: {chain.log_path}", flush=True)
    if state.cancelled:
        print("cancelled", file=sys.stderr)
        return 130
    if state.error:
        print(state.error, file=sys.stderr)
        return 1
    result = result_event(state.events)  # what the command made (checkpoint, dataset, model_dir, ...)
    if result is not None:
        print(f"result: {result['kind']} {result['path']}", flush=True)
    print("[100.0%] done", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    command = command_of(sys.argv[1:] if argv is None else argv)
    if not command or command[0].startswith("-"):
        print(USAGE, file=sys.stderr)
        return 2
    return run_command(command)


def _exit(code: int) -> None:
    """Leave with `code`: under Slicer through the application (--python-script does not exit by itself)."""
    try:
        import slicer
    except ImportError:
        slicer = None
    if slicer is not None and getattr(slicer, "app", None) is not None:
        slicer.util.exit(code)
        return
    sys.exit(code)


if __name__ == "__main__":
    status = 1
    try:
        status = main(sys.argv[1:])
    except SystemExit as exc:  # argparse and friends
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        _exit(status)
