"""`python -m experiments <name> [options]`: run one experiment and write its JSON + Markdown result."""

from __future__ import annotations

import sys

from experiments import RESULTS_DIR
from LNSynthLib.cli.bench_command import run_module
from LNSynthLib.cli.main import run_guarded

# name -> (module exposing DESCRIPTION, add_arguments(parser), run(args) -> (json_path, md_path), one-line help)
EXPERIMENTS = {
    "synthesis": ("experiments.synthesis_bench",
                  "Real vs copy-paste vs LN-DDPM with 2/4 real cases, seeds, 95 % CIs (resumable; --quick)"),
    "ablation": ("experiments.ablation_bench",
                 "paper 000 Tables 1-4c in the paper's layout, one cell per setting (resumable; --quick)"),
    "samplers": ("experiments.diffusion_samplers", "few-step samplers and rectified flow vs DDPM-300 (fidelity)"),
    "pipeline": ("experiments.pipeline_bench", "Real vs Real+Synt nnU-Net over several seeds (mean ± sd)"),
    "interactive": ("experiments.interactive_bench",
                    "click → synthetic volume in a slicer-core scene: one process per step vs the warm worker"),
}
# Not listed: `python -m experiments.prepare_before_after` (prepare_case) and
# `python -m experiments.interactive_before_after` (the interactive clicks) compare two source trees.


def usage() -> str:
    lines = ["usage: python -m experiments NAME [options]   (NAME --help for its options)", "", "experiments:"]
    lines += [f"  {name:<10} {help_text}" for name, (_, help_text) in EXPERIMENTS.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in EXPERIMENTS:
        print(usage(), file=sys.stdout if argv and argv[0] in ("-h", "--help") else sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    name = argv[0]
    return run_guarded(lambda: run_module(f"python -m experiments {name}", EXPERIMENTS[name][0], argv[1:],
                                          RESULTS_DIR), prog="experiments")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
