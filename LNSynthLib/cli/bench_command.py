"""`lnsynth bench <name>`: run one benchmark and write its JSON + Markdown result.

Benchmark modules import torch, MONAI or nnU-Net at module level; importing them only when
their benchmark is chosen keeps every other `lnsynth` command (and `lnsynth --help`) fast.
"""

from __future__ import annotations

import argparse
import importlib

from LNSynthLib.bench.results import DEFAULT_RESULTS_DIR
from LNSynthLib.cli.arg_types import LNSynthArgumentParser
from LNSynthLib.jobs.results import emit_result

# name -> (module exposing DESCRIPTION, add_arguments(parser), run(args) -> (json_path, md_path), one-line help)
BENCHMARKS = {
    "prepare": ("LNSynthLib.bench.prepare_bench", "preprocessing of the real example CT and a 512x512x300 phantom"),
    "diffusion": ("LNSynthLib.bench.diffusion_bench",
                  "LN-DDPM denoiser step time, GFLOP/s, memory, GPU estimate"),
    "samplers": ("LNSynthLib.bench.diffusion_samplers", "few-step samplers and rectified flow vs DDPM-300 (fidelity)"),
    "gpu": ("LNSynthLib.bench.gpu_bench", "CUDA GPU at 128³: step time/memory (fp32, bf16, checkpointing, compile, "
                                          "channels_last), sampling time; --cpu-smoke without a GPU"),
    "pipeline": ("LNSynthLib.bench.pipeline_bench", "Real vs Real+Synt nnU-Net over several seeds (mean ± sd)"),
    "synthesis": ("LNSynthLib.bench.synthesis_bench",
                  "Real vs copy-paste vs LN-DDPM with 2/4 real cases, seeds, 95 %% CIs (resumable; --quick)"),
    "ablation": ("LNSynthLib.bench.ablation_bench",
                 "ablation grid of paper 000 Tables 3-4: Synt-only nnU-Net per LN-DDPM setting (resumable)"),
}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="measure speed/memory/quality on this machine")
    names = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, (module_name, help_text) in BENCHMARKS.items():
        # add_help=False: `--help` and the benchmark's options stay unparsed here (main() hands
        # them over as `extra_args`) and go to the benchmark's own parser built in _run.
        bench_parser = names.add_parser(name, help=help_text, add_help=False)
        bench_parser.set_defaults(func=_run, bench_name=name, bench_module=module_name, takes_extra_args=True)


def benchmark_parser(name: str, module_name: str) -> tuple[argparse.ArgumentParser, object]:
    module = importlib.import_module(module_name)
    parser = LNSynthArgumentParser(prog=f"lnsynth bench {name}", description=module.DESCRIPTION)
    parser.add_argument("--results-dir", default=str(DEFAULT_RESULTS_DIR),
                        help="where to write <name>.json and <name>.md")
    module.add_arguments(parser)
    return parser, module


def _run(args: argparse.Namespace) -> int:
    parser, module = benchmark_parser(args.bench_name, args.bench_module)
    bench_args = parser.parse_args(args.extra_args)
    json_path, md_path = module.run(bench_args)
    emit_result("benchmark", json_path, markdown=str(md_path))
    print(f"results: {json_path}\n         {md_path}")
    return 0
