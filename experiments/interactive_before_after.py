"""Same-run comparison of `python -m experiments interactive` between two source trees (before vs after a change).

    python -m experiments.interactive_before_after --before /tmp/base --ct CT --totalseg LABELS
        [--mode in-ct|patch] [--clicks 3] [--rounds 1] [--checkpoint CKPT]

Each run is the whole interactive benchmark (one process per step, then the warm worker) in a fresh `python`
whose working folder and PYTHONPATH are one tree, so its job processes and warm worker import that tree too.
Runs alternate before/after so both see the same machine load, recorded with each run; both sample from one
checkpoint (without `--checkpoint`, the benchmark's tiny one is trained once, here). Writes
`interactive_before_after[_patch].{json,md}` in the results folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from experiments import RESULTS_DIR
from LNSynthLib.bench.results import markdown_table, write_results

AFTER = Path(__file__).resolve().parents[1]


def _tree_env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def _check_tree(tree: Path) -> None:
    """The run meant for `tree` must import LNSynthLib and LNSynthScene from it (cwd first on sys.path)."""
    out = subprocess.run([sys.executable, "-c", "import LNSynthLib, LNSynthScene; "
                          "print(LNSynthLib.__file__); print(LNSynthScene.__file__)"],
                         env=_tree_env(tree), cwd=tree, capture_output=True, text=True, check=True).stdout
    for line in out.split():
        if tree.resolve() not in Path(line).resolve().parents:
            raise RuntimeError(f"the run meant for {tree} imports {line}")


def _run(tree: Path, args: argparse.Namespace, checkpoint: Path, out: Path) -> dict:
    command = [sys.executable, "-m", "experiments", "interactive", "--ct", str(Path(args.ct).resolve()),
               "--totalseg", str(Path(args.totalseg).resolve()), "--checkpoint", str(checkpoint),
               "--clicks", str(args.clicks), "--mode", args.mode, "--steps", str(args.steps),
               "--threads", str(args.threads), "--results-dir", str(out)]
    proc = subprocess.run(command, env=_tree_env(tree), cwd=tree, capture_output=True, text=True, check=False,
                          encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"the interactive benchmark in {tree} failed:\n{proc.stderr[-3000:]}")
    return json.loads((out / "interactive.json").read_text(encoding="utf-8"))["results"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="source tree of the baseline")
    parser.add_argument("--before-name", help="what the baseline is (e.g. its commit), for the result text")
    parser.add_argument("--after", type=Path, default=AFTER)
    parser.add_argument("--ct", required=True)
    parser.add_argument("--totalseg", required=True)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--mode", choices=("in-ct", "patch"), default="in-ct")
    parser.add_argument("--clicks", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="before/after pairs, interleaved")
    parser.add_argument("--note", default="", help="a line about the machine (CPU kind, other work running)")
    parser.add_argument("--results-dir", default=RESULTS_DIR)
    args = parser.parse_args(argv)
    for tree in (args.before, args.after):
        _check_tree(tree)
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="lnsynth_interactive_ab_") as tmp:
        root = Path(tmp)
        checkpoint = args.checkpoint
        if checkpoint is None:
            from experiments.interactive_bench import _tiny_checkpoint

            checkpoint = _tiny_checkpoint(args.ct, args.totalseg, root / "train")
        for i in range(args.rounds):
            for name, tree in (("before", args.before), ("after", args.after)):
                runs[name].append(_run(tree, args, Path(checkpoint).resolve(), root / f"{name}{i}"))
    name = "interactive_before_after" + ("" if args.mode == "in-ct" else "_" + args.mode.replace("-", ""))
    results = {"runs": runs, "mode": args.mode, "clicks": args.clicks, "steps": args.steps, "threads": args.threads,
               "before_tree": str(args.before), "before_name": args.before_name, "note": args.note}
    for path in write_results(name, results, _body(runs, args), args.results_dir):
        print(path)


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _body(runs: dict[str, list[dict]], args: argparse.Namespace) -> str:
    def clicks(name: str, key: str) -> str:
        return ", ".join(f"{t:.2f}" for r in runs[name] for t in (r[key] if isinstance(r[key], list) else [r[key]]))

    later = {n: [t for r in rs for t in r["warm_s"][1:]] for n, rs in runs.items()}
    rows = [["warm worker, later clicks (the 2nd click on)", f"{statistics.median(later['before']):.2f}",
             f"{statistics.median(later['after']):.2f}", ", ".join(f"{t:.2f}" for t in later["before"]),
             ", ".join(f"{t:.2f}" for t in later["after"])],
            ["warm worker, first click (starts it)", f"{_median(runs['before'], 'warm_first_s'):.2f}",
             f"{_median(runs['after'], 'warm_first_s'):.2f}", clicks("before", "warm_first_s"),
             clicks("after", "warm_first_s")],
            ["one process per step", f"{_median(runs['before'], 'cold_median_s'):.2f}",
             f"{_median(runs['after'], 'cold_median_s'):.2f}", clicks("before", "cold_s"), clicks("after", "cold_s")]]
    last = {n: rs[-1]["warm_clicks"][-1] for n, rs in runs.items()}
    steps = [*last["after"]["steps_s"], "loading into the scene"]

    def seconds(click: dict, step: str) -> float:
        return click["load_results_s"] if step == "loading into the scene" else click["steps_s"].get(step, float("nan"))

    breakdown = [[step, f"{seconds(last['before'], step):.2f}", f"{seconds(last['after'], step):.2f}"]
                 for step in steps]
    loads = {n: ", ".join(f"{r['load_before']:.1f}-{r['load_after']:.1f}" for r in rs) for n, rs in runs.items()}
    return (f"`python -m experiments interactive` (mode {args.mode}, 1 sample, DPM-Solver++ {args.steps} steps, "
            f"{args.threads} torch thread(s), CPU) in two source trees, {args.rounds} interleaved round(s) of "
            f"{args.clicks} clicks per way; before = {args.before_name or args.before}, after = this tree. "
            "Seconds from the click to the synthetic volume in a slicer-core scene.\n\n"
            + markdown_table(["way", "before, median (s)", "after, median (s)", "before, each", "after, each"], rows)
            + "\n\nThe last warm click, step by step (s; the step's process time in the worker, and the rest: "
              "exporting the inputs, the chain's polling and loading the result into the scene):\n\n"
            + markdown_table(["step", "before", "after"], breakdown)
            + f"\n\nLoad average over each run (start-end), before: {loads['before']}; after: {loads['after']}. "
              f"{args.note}\n")


if __name__ == "__main__":
    main()
