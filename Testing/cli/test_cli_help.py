"""Every command's and benchmark's `--help` renders: argparse formats help strings with `%`, so a
literal percent sign in a help text breaks `--help` only when it is asked for."""

from __future__ import annotations

import argparse

import pytest

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
    parser, _ = benchmark_parser(name, BENCHMARKS[name][0])
    assert f"lnsynth bench {name}" in parser.format_help()
