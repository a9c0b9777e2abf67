"""`lnsynth bench <name>`: run one benchmark and write its JSON + Markdown result."""

from __future__ import annotations

import argparse
import importlib

from LNSynthLib.bench.results import DEFAULT_RESULTS_DIR

# Each module exposes `DESCRIPTION`, `add_arguments(parser)` and `run(args) -> (json_path, md_path)`.
BENCHMARKS = {
    "prepare": "LNSynthLib.bench.prepare_bench",
    "diffusion": "LNSynthLib.bench.diffusion_bench",
    "pipeline": "LNSynthLib.bench.pipeline_bench",
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="measure speed/memory/quality on this machine")
    names = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, module_name in BENCHMARKS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        bench_parser = names.add_parser(name, help=module.DESCRIPTION)
        bench_parser.add_argument("--results-dir", default=str(DEFAULT_RESULTS_DIR),
                                  help="where to write <name>.json and <name>.md")
        module.add_arguments(bench_parser)
        bench_parser.set_defaults(func=_runner(module))


def _runner(module):  # noqa: ANN001, ANN202
    def run(args: argparse.Namespace) -> int:
        json_path, md_path = module.run(args)
        print(f"results: {json_path}\n         {md_path}")
        return 0

    return run
