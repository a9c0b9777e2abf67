"""Every command's and benchmark's `--help` renders: argparse formats help strings with `%`, so a
literal percent sign in a help text breaks `--help` only when it is asked for."""

from __future__ import annotations

import argparse

import pytest

from experiments import RESULTS_DIR
from experiments.__main__ import EXPERIMENTS
from LNSynthLib.cli.bench_command import BENCHMARKS, benchmark_parser
from LNSynthLib.cli.main import build_parser


def _subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _subcommands(sub, (*prefix, name))
    return found


@pytest.mark.parametrize("command", _subcommands(build_parser()), ids=lambda c: " ".join(c) or "lnsynth")
def test_help_renders(command: tuple[str, ...]) -> None:
    parser = build_parser()
    for name in command:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    assert parser.format_help().startswith("usage:")


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_help_renders(name: str) -> None:
    parser, _ = benchmark_parser(f"lnsynth bench {name}", BENCHMARKS[name][0])
    assert f"lnsynth bench {name}" in parser.format_help() and "lnsynth_bench_results" in parser.format_help()


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_experiment_help_renders(name: str) -> None:
    parser, _ = benchmark_parser(f"python -m experiments {name}", EXPERIMENTS[name][0], RESULTS_DIR)
    assert f"python -m experiments {name}" in parser.format_help() and str(RESULTS_DIR) in parser.format_help()
