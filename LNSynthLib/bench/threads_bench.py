"""`lnsynth bench threads`: a tiny denoiser forward by thread count and OpenMP waiting, idle and under load.

A job process shares the machine with Slicer, other jobs and CI. Each setting runs in a fresh
process (OpenMP reads its variables once, at torch's import): 1 and 2 threads with OpenMP's
default waiting (spin, then sleep) and with `OMP_WAIT_POLICY=PASSIVE`, and what `apply_job_threads`
(the rule every job process follows) chooses. Every setting is timed with the machine as it is
("idle", its load average recorded beside it) and beside `--busy` processes that each spin one core
for the whole measurement. Settings alternate within each load, so a drift of the machine's own
load reaches them alike; the ratio to 1 thread of the same load is the figure to read.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from LNSynthLib.bench.results import markdown_table, write_results

DESCRIPTION = "tiny denoiser forward at 32³: 1 vs 2 threads, OpenMP spin vs passive, the jobs' rule; idle and busy"
RULE = "rule"
# label -> environment of the measuring process (RULE: none; the process applies the jobs' rule itself)
SETTINGS: dict[str, dict[str, str]] = {
    "1 thread": {"OMP_NUM_THREADS": "1"},
    "2 threads": {"OMP_NUM_THREADS": "2"},
    "2 threads, passive": {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"},
    RULE: {},
}
CLEARED = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "LNSYNTH_THREADS")
WORKER = "import sys; from LNSynthLib.bench.threads_bench import worker; worker(sys.argv[1])"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=int, default=32, help="cubic patch size (default 32)")
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards per process (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="processes per setting and load (default 2)")
    parser.add_argument("--busy", type=int, default=1, help="spinning processes of the busy load (default 1)")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS), metavar="SETTING",
                        help=f"which settings to time (default all: {', '.join(SETTINGS)})")
    parser.add_argument("--note", default="", help="free text stored with the results")


def worker(spec: str) -> None:
    """In a fresh process: median seconds of a no-grad tiny denoiser forward; prints one JSON line."""
    options = json.loads(spec)
    if options["rule"]:
        from LNSynthLib.devices import apply_job_threads

        apply_job_threads()
    import torch

    from LNSynthLib.diffusion.config import load_config
    from LNSynthLib.diffusion.model.network import build_denoiser

    torch.manual_seed(0)
    model = build_denoiser(load_config("tiny")).eval()
    size = int(options["size"])
    x = torch.randn(1, 1, size, size, size)
    anatomy = torch.randint(0, 14, (1, 1, size, size, size))
    ln = (torch.rand(1, 1, size, size, size) > 0.97).float()
    t = torch.tensor([10])
    times = []
    with torch.no_grad():
        for i in range(int(options["repeats"]) + 1):
            start = time.perf_counter()
            model(x, t, anatomy, ln)
            if i:   # the first forward allocates and picks kernels
                times.append(time.perf_counter() - start)
    print(json.dumps({"threads": torch.get_num_threads(), "median_s": statistics.median(times),
                      "min_s": min(times), "wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}))


def _measure(setting: str, size: int, repeats: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(SETTINGS[setting])
    spec = json.dumps({"rule": setting == RULE, "size": size, "repeats": repeats})
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    done = subprocess.run([sys.executable, "-c", WORKER, spec], capture_output=True, text=True, env=env,
                          timeout=900)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or [f"exit {done.returncode}"], "load_1min": load}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "load_1min": load}


@contextmanager
def _spinning(count: int) -> Iterator[None]:
    """`count` processes that each keep one core busy until the block ends."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(1.0 if spinners else 0.0)   # running before the first measurement starts
        yield
    finally:
        for process in spinners:
            process.kill()
            process.wait()


def measure(size: int, repeats: int, rounds: int, busy: int,
            settings: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per (load, setting): medians over `rounds` processes, alternating settings within a load."""
    settings = settings or list(SETTINGS)
    rows = []
    for load, spinners in (("idle", 0), (f"busy ({busy} spinning)", busy)):
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in settings}
        with _spinning(spinners):
            for _ in range(rounds):
                for name in settings:
                    runs[name].append(_measure(name, size, repeats))
        for name, results in runs.items():
            good = [r for r in results if "error" not in r]
            rows.append({"load": load, "setting": name, "threads": good[0]["threads"] if good else None,
                         "median_s": statistics.median(r["median_s"] for r in good) if good else None,
                         "load_1min": [r["load_1min"] for r in results],
                         "errors": [r["error"] for r in results if "error" in r]})
    for row in rows:
        base = next((r["median_s"] for r in rows if r["load"] == row["load"] and r["setting"] == "1 thread"), None)
        row["vs_1_thread"] = row["median_s"] / base if row["median_s"] and base else None
    return rows


def run(args: argparse.Namespace) -> tuple[Path, Path]:
    rows = measure(args.size, args.repeats, args.rounds, args.busy, args.settings)
    table = markdown_table(["load", "setting", "threads", "forward median (s)", "vs 1 thread", "load avg (1 min)"],
                           [[r["load"], r["setting"], r["threads"], r["median_s"], r["vs_1_thread"],
                             ", ".join(f"{v:.1f}" for v in r["load_1min"] if v is not None)] for r in rows])
    body = (f"Tiny LN-DDPM denoiser, one no-grad forward at {args.size}³, batch 1; median of {args.repeats} "
            f"forwards per process, median over {args.rounds} processes per setting. `rule` is what a job process "
            f"chooses (`LNSynthLib.devices.apply_job_threads`).\n\n{table}\n")
    if args.note:
        body += f"\nNote: {args.note}\n"
    results = {"size": args.size, "repeats": args.repeats, "rounds": args.rounds, "busy": args.busy,
               "note": args.note, "rows": rows}
    return write_results("threads", results, body, args.results_dir)
