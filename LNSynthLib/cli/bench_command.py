"""`lnsynth bench <name>`: measure this machine (preparation, the denoiser, a GPU) and write JSON + Markdown.

These are machine checks a user runs on their own hardware. The research experiments (synthesis, ablation,
samplers, pipeline seeds) live in the repository's `experiments/` package, which does not ship, and reuse
`run_module` below for the same options and result line.

Benchmark modules import torch, MONAI or nnU-Net at module level; importing them only when
their benchmark is chosen keeps every other `lnsynth` command (and `lnsynth --help`) fast.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from pathlib import Path

from LNSynthLib.cli.arg_types import LNSynthArgumentParser
from LNSynthLib.jobs.results import emit_result

# In the folder the command runs from: a result belongs to the machine and the user, never to the package.
DEFAULT_RESULTS_DIR = Path("lnsynth_bench_results")

# name -> (module exposing DESCRIPTION, add_arguments(parser), run(args) -> (json_path, md_path), one-line help)
BENCHMARKS = {
    "prepare": ("LNSynthLib.bench.prepare_bench", "preprocessing of the real example CT and a 512x512x300 phantom"),
    "diffusion": ("LNSynthLib.bench.diffusion_bench",
                  "LN-DDPM denoiser step time, GFLOP/s, memory, GPU estimate"),
    "gpu": ("LNSynthLib.bench.gpu_bench", "CUDA GPU at 128³: step time/memory (fp32, bf16, checkpointing, compile, "
                                          "channels_last), sampling time; --cpu-smoke without a GPU"),
    "threads": ("LNSynthLib.bench.threads_bench", "tiny denoiser forward at 32³ by thread count and OpenMP waiting, "
                                                  "idle and beside a busy process; the jobs' thread rule"),
}


def shipped_bench_files() -> set[str]:
    """The files of `LNSynthLib/bench/` that ship: the machine checks above and their results writer."""
    return {"__init__.py", "results.py"} | {f"{module.rsplit('.', 1)[1]}.py" for module, _ in BENCHMARKS.values()}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="measure speed and memory on this machine")
    names = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, (module_name, help_text) in BENCHMARKS.items():
        # add_help=False: `--help` and the benchmark's options stay unparsed here (main() hands
        # them over as `extra_args`) and go to the benchmark's own parser built in _run.
        bench_parser = names.add_parser(name, help=help_text, add_help=False)
        bench_parser.set_defaults(func=_run, bench_name=name, bench_module=module_name, takes_extra_args=True)


def benchmark_parser(prog: str, module_name: str,
                     results_dir: Path = DEFAULT_RESULTS_DIR) -> tuple[argparse.ArgumentParser, object]:
    module = importlib.import_module(module_name)
    parser = LNSynthArgumentParser(prog=prog, description=module.DESCRIPTION)
    parser.add_argument("--results-dir", default=str(results_dir),
                        help=f"where to write <name>.json and <name>.md (default: {results_dir})")
    module.add_arguments(parser)
    return parser, module


def run_module(prog: str, module_name: str, argv: Sequence[str], results_dir: Path = DEFAULT_RESULTS_DIR) -> int:
    """Parse `argv` with the module's own options, run it and announce the two result files."""
    parser, module = benchmark_parser(prog, module_name, results_dir)
    json_path, md_path = module.run(parser.parse_args(list(argv)))
    emit_result("benchmark", json_path, markdown=str(md_path))
    print(f"results: {json_path}\n         {md_path}")
    return 0


def _run(args: argparse.Namespace) -> int:
    return run_module(f"lnsynth bench {args.bench_name}", args.bench_module, args.extra_args)
