"""The Slicer panel's defaults and limits, read from its one declaration (`LNSynthParameterNode` in LNSynth.py).

The page cannot import LNSynth.py (it needs Slicer's Qt); it reads the class's source instead, so a
default changed in the panel changes the page too: Epochs 5 × Iterations 30 for nnU-Net (a short CPU
run; 1000 epochs is nnU-Net's standard trainer, days on a CPU), 4 samples, the `tiny` config, and the
in-CT mode with its margin. A default the panel names from `inct_defaults` (the one home of the in-CT
defaults, torch-free) is read through that module, so neither front end declares it again.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from LNSynthLib.diffusion.sample import inct_defaults

MODULE_FILE = Path(__file__).resolve().parents[2] / "LNSynth.py"
PARAMETER_CLASS = "LNSynthParameterNode"


@dataclass(frozen=True)
class PanelValue:
    default: object
    low: float | None = None     # WithinRange(low, high) of the panel's spin box
    high: float | None = None


def _shared_names() -> dict[str, object]:
    """The constants a panel default may name: those of `inct_defaults` (no torch, no Qt)."""
    return {name: value for name, value in vars(inct_defaults).items() if name.isupper()}


def _default(value: ast.expr) -> object:
    """A literal, or an expression of `inct_defaults` constants (`SYNTHESIS_MODES[1]`, `DEFAULT_MARGIN_MM`)."""
    try:
        return ast.literal_eval(value)
    except ValueError:
        pass
    names = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
    shared = _shared_names()
    if not names <= shared.keys() or any(isinstance(n, ast.Call | ast.Attribute) for n in ast.walk(value)):
        raise ValueError(ast.unparse(value))
    return eval(compile(ast.Expression(value), "<panel default>", "eval"), {"__builtins__": {}}, shared)  # noqa: S307


def _within_range(annotation: ast.expr) -> tuple[float | None, float | None]:
    """(low, high) of `Annotated[int, WithinRange(low, high)]`; (None, None) for other annotations."""
    if isinstance(annotation, ast.Subscript) and isinstance(annotation.slice, ast.Tuple):
        for item in annotation.slice.elts[1:]:
            if isinstance(item, ast.Call) and getattr(item.func, "id", "") == "WithinRange":
                low, high = (ast.literal_eval(a) for a in item.args[:2])
                return low, high
    return None, None


@lru_cache(maxsize=1)
def panel_values(module_file: Path = MODULE_FILE) -> dict[str, PanelValue]:
    """{parameter name: its literal default and range} of the panel's parameter node class."""
    tree = ast.parse(module_file.read_text(encoding="utf-8"))
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == PARAMETER_CLASS), None)
    if cls is None:
        raise RuntimeError(f"{module_file} declares no {PARAMETER_CLASS}")
    values = {}
    for item in cls.body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.value is not None:
            try:
                default = _default(item.value)
            except ValueError:   # a name (e.g. FROM_CHECKPOINT): the page has its own copy of those lists
                continue
            values[item.target.id] = PanelValue(default, *_within_range(item.annotation))
    return values


def panel_default(name: str) -> object:
    return panel_values()[name].default


def panel_range(name: str) -> tuple[float, float]:
    value = panel_values()[name]
    if value.low is None or value.high is None:
        raise KeyError(f"the panel's {name} has no range")
    return value.low, value.high
