"""Headless LNSynth on a whole dataset: train LN-DDPM → sample → nnU-Net export → nnU-Net train.

    Slicer --no-main-window --python-script LNSynth/Scripts/lnsynth_headless.py --cases ROOT --work DIR
    python LNSynth/Scripts/lnsynth_headless.py --cases ROOT --work DIR          (same, without Slicer)
    python LNSynth/Scripts/lnsynth_headless.py --run -- sample --checkpoint ...  (any one lnsynth command)

Every step is a background `lnsynth` process through the same job chain as the Slicer panel
(progress lines, Ctrl+C / SIGTERM cancels the whole process tree and removes the step's
partial output). The lnsynth commands resume on their own (training from its rolling
checkpoint, sampling skips complete case folders), so rerunning the same line resumes.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
for root in (HERE.parents[1], HERE.parents[2]):  # installed: next to the module; source tree: repo root
    if (root / "LNSynthLib").is_dir() and str(root) not in sys.path:
        sys.path.insert(0, str(root))
if str(HERE.parents[1]) not in sys.path:
    sys.path.insert(0, str(HERE.parents[1]))  # LNSynthModuleLib

from LNSynthModuleLib.jobs import JobChain, Step, python_executable  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lnsynth_headless", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=Path, help="folder of prepared real cases (lnsynth prepare)")
    parser.add_argument("--work", type=Path, help="output folder: LN-DDPM run, synthetic cases, nnU-Net dataset")
    parser.add_argument("--config", default="tiny", help="LN-DDPM config: tiny, paper or a YAML file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--checkpoint", type=Path, help="use this LN-DDPM checkpoint instead of training one")
    parser.add_argument("--n", type=int, default=5, help="synthetic samples per real case")
    parser.add_argument("--sampler", default="ddim")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-transforms", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--nnunet-epochs", type=int, default=5)
    parser.add_argument("--nnunet-iterations", type=int, help="iterations per nnU-Net epoch (short trainer)")
    parser.add_argument("--skip-nnunet", action="store_true", help="stop after sampling")
    parser.add_argument("--run", action="store_true", help="run the one lnsynth command given after -- and exit")
    return parser


def plan(args: argparse.Namespace) -> list[Step]:
    """The whole dataset pipeline as lnsynth steps."""
    work = args.work
    steps: list[Step] = []
    checkpoint = args.checkpoint or work / "ln_ddpm" / "checkpoint.pt"  # `lnsynth train` writes it there
    if args.checkpoint is None:
        train = ["train", "--config", args.config, "--cases", str(args.cases), "--run-dir", str(work / "ln_ddpm"),
                 "--device", args.device]
        for override in args.set:
            train += ["--set", override]
        steps.append(Step("Training LN-DDPM", train, weight=10.0))
    sample = ["sample", "--checkpoint", str(checkpoint), "--cases", str(args.cases), "--out",
              str(work / "synthetic"), "--n", str(args.n), "--sampler", args.sampler, "--steps", str(args.steps),
              "--seed", str(args.seed), "--device", args.device]
    if args.no_transforms:
        sample.append("--no-transforms")
    steps.append(Step("Sampling synthetic cases", sample, weight=5.0))
    if not args.skip_nnunet:
        steps.append(Step("Exporting the nnU-Net dataset", ["nnunet", "export", "--cases", str(args.cases),
                                                            "--synthetic", str(work / "synthetic"), "--out",
                                                            str(work / "nnunet_dataset")]))
        nnunet_train = ["nnunet", "train", "--dataset", str(work / "nnunet_dataset"), "--epochs",
                        str(args.nnunet_epochs), "--device", args.device]
        if args.nnunet_iterations:
            nnunet_train += ["--iterations", str(args.nnunet_iterations)]
        steps.append(Step("Training nnU-Net", nnunet_train, weight=10.0))
    return steps


def run_steps(steps: list[Step], run_dir: Path, log_path: Path | None = None) -> int:
    """Run the steps with a one-line progress display; Ctrl+C / SIGTERM cancel the whole tree."""
    chain = JobChain(steps, run_dir, log_path=log_path, python=python_executable())
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: chain.cancel())
    last = ""
    try:
        while chain.poll().running:
            line = f"[{100 * chain.state.fraction:5.1f}%] {chain.state.text}"
            if line != last:
                print(line, flush=True)
                last = line
            time.sleep(0.5)
    except KeyboardInterrupt:
        chain.cancel()
    finally:
        signal.signal(signal.SIGTERM, previous)
    state = chain.state
    if state.cancelled:
        print("cancelled", file=sys.stderr)
        return 130
    if state.error:
        print(state.error, file=sys.stderr)
        return 1
    for event in state.events:  # what the command announced (dataset folder, model_dir, ...)
        if event.get("stage") == "result" or "result" in event:
            print("result: " + ", ".join(f"{k}={v}" for k, v in event.items() if k != "stage"), flush=True)
    print("[100.0%] done", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[argv.index("--") + 1:] if "--" in argv else []
    args = build_parser().parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if args.run:
        if not command:
            print("--run needs an lnsynth command after --", file=sys.stderr)
            return 2
        scratch = (args.work or Path.cwd()) / ".lnsynth_headless"
        scratch.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return run_steps([Step(command[0], command)], scratch / f"run-{stamp}", scratch / f"run-{stamp}.log")
    if args.cases is None or args.work is None:
        print("give --cases and --work (or --run -- <lnsynth command>)", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    for step in plan(args):
        print(f"== {step.label}: lnsynth {' '.join(step.args)}", flush=True)
        # Each step's run folder is a scratch folder: the lnsynth commands write their real
        # outputs atomically under --work and resume on their own.
        code = run_steps([step], args.work / ".scratch" / step.args[0], args.work / "logs" / f"{step.args[0]}.log")
        if code != 0:
            return code
    return 0


def _exit(code: int) -> None:
    try:
        import slicer

        if hasattr(slicer, "app"):  # inside Slicer: leave the application with the job's status
            slicer.util.exit(code)
            return
    except ImportError:
        pass
    sys.exit(code)


if __name__ == "__main__":
    _exit(main(sys.argv[1:]))
