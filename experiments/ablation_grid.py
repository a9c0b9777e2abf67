"""The experiment grid of paper 000 (Tables 1-4) plus the choices the paper leaves open, and its resume logic.

A cell is one nnU-Net training on real and/or synthetic data from one LN-DDPM setting. The
grid varies one factor at a time around the base setting (LN-DDPM, 10× synthetic cases per
real case, condition transforms on, LD, max gate, all transformers), like the paper's tables:

- real (Table 2 row 1): real cases only; its model also scores Table 1's NodeRecall_synt
- conditioning (Table 3, Table 2's Synt rows): conditional, gscond_ln_only, ln_ddpm, med_ddpm (Synt-only);
  mask_guided, edge_guided (paper 002)
- multiple (Table 4a, Table 2's Real + Synt LN-DDPM row at 10×): 5×, 10×, 20×, trained on Real + Synt as
  paper 000 §5.3.2 does ("using both real and synthetic data")
- realsynt-med_ddpm (Table 2): Med-DDPM's Real + Synt row
- transforms (Table 4b): on / off
- attention (Table 4c): LD, LA, GA
- ld_gate and placement (not in the paper): max / fraction / nearest, all / middle

Cells that share an LN-DDPM setting share its trained model (`model_key`). Each finished cell
writes `cells/<name>/result.json` (atomically); a rerun skips those, so an interrupted grid
continues where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from LNSynthLib.atomic import write_text_atomic
from LNSynthLib.bench.results import markdown_table
from LNSynthLib.diffusion.choices import ATTENTION_MODES, LD_GATES, LDCOND_PLACEMENTS

BASE_VARIANT = "ln_ddpm"
BASE_MULTIPLE = 10
PAPER_MULTIPLES = (5, 10, 20)                         # paper 000 Table 4a
CONDITIONING = ("conditional", "gscond_ln_only", "ln_ddpm", "med_ddpm", "mask_guided", "edge_guided")
GROUP_TITLES = {"table2": "Real, and Med-DDPM's Real + Synt (Table 2)",
                "conditioning": "Conditioning, Synt-only (Table 3; Med-DDPM: Table 2; mask/edge-guided: paper 002)",
                "multiple": "Synthetic cases per real case, Real + Synt (Table 4a)",
                "transforms": "Condition transforms (Table 4b)", "attention": "LDCond attention (Table 4c)",
                "ld_gate": "LD gate rule (not in the paper)", "placement": "LDCond placement (not in the paper)"}


@dataclass(frozen=True)
class Cell:
    """One nnU-Net training: the LN-DDPM overrides, the synthetic multiple, the transforms switch, the strategy."""

    name: str
    group: str
    setting: str
    overrides: dict[str, Any] = field(default_factory=dict)
    multiple: int = BASE_MULTIPLE
    transforms: bool = True
    strategy: str = "synt"    # pipeline strategy: synt, real+synt, or real (no LN-DDPM)

    @property
    def model_key(self) -> str:
        """Cells with the same LN-DDPM overrides share one trained model."""
        if not self.overrides:
            return "base"
        return "_".join(f"{k.split('.')[-1]}-{v}" for k, v in sorted(self.overrides.items()))


def full_grid(multiples: tuple[int, ...] = PAPER_MULTIPLES, base_multiple: int = BASE_MULTIPLE) -> list[Cell]:
    """Every cell, one factor varied at a time; the Synt base cell appears once (as conditioning ln_ddpm)."""
    cells = [Cell("real", "table2", "Real", {}, 0, strategy="real")]
    cells += [Cell(f"conditioning-{v}", "conditioning", v,
                   {} if v == BASE_VARIANT else {"network.variant": v}, base_multiple) for v in CONDITIONING]
    cells += [Cell(f"multiple-{m}x", "multiple", f"{m}×", {}, m, strategy="real+synt") for m in multiples]
    cells += [Cell("realsynt-med_ddpm", "table2", "Med-DDPM (Real + Synt)", {"network.variant": "med_ddpm"},
                   base_multiple, strategy="real+synt")]
    cells += [Cell("transforms-off", "transforms", "off", {}, base_multiple, transforms=False)]
    cells += [Cell(f"attention-{m}", "attention", m, {"network.attention_mode": m}, base_multiple)
              for m in ATTENTION_MODES if m != "LD"]
    cells += [Cell(f"ld_gate-{g}", "ld_gate", g, {"network.ld_gate": g}, base_multiple) for g in LD_GATES if g != "max"]
    cells += [Cell(f"placement-{p}", "placement", p, {"network.ldcond_placement": p}, base_multiple)
              for p in LDCOND_PLACEMENTS if p != "all"]
    return cells


def select_cells(grid: list[Cell], names: list[str] | None) -> list[Cell]:
    """The named cells (all when `names` is None), in grid order; an unknown name is a usage error."""
    if not names:
        return grid
    known = {c.name: c for c in grid}
    unknown = [n for n in names if n not in known]
    if unknown:
        from LNSynthLib.errors import UsageError

        raise UsageError(f"unknown ablation cells {unknown}", fix=f"choose from {', '.join(known)}")
    return [c for c in grid if c.name in names]


def result_path(work: Path, cell: Cell, seed: int) -> Path:
    return Path(work) / "cells" / f"{cell.name}_seed{seed}" / "result.json"


def run_grid(cells: list[Cell], seeds: list[int], work: Path,
             run_cell: Callable[[Cell, int, Path], dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Run every (cell, seed) whose result.json is missing or records another cell; returns all results and the
    names run now (a result of an older grid, e.g. a Synt-only `multiple-5x`, is not taken for the new cell)."""
    results, ran = [], []
    for cell in cells:
        for seed in seeds:
            path = result_path(work, cell, seed)
            if not path.is_file() or json.loads(path.read_text(encoding="utf-8")).get("cell") != asdict(cell):
                metrics = run_cell(cell, seed, path.parent)
                record = {"cell": asdict(cell), "seed": seed, **metrics}
                write_text_atomic(path, json.dumps(record, indent=2, default=str), overwrite=True)
                ran.append(f"{cell.name}_seed{seed}")
            results.append(json.loads(path.read_text(encoding="utf-8")))
    return results, ran


def render_table(results: list[dict[str, Any]], metric_names: tuple[str, ...]) -> str:
    """Markdown shaped like Tables 3-4: one block per group, base row first, metrics mean over seeds."""
    blocks = []
    base = [r for r in results if r["cell"]["name"] == f"conditioning-{BASE_VARIANT}"]
    for group, title in GROUP_TITLES.items():
        rows = [r for r in results if r["cell"]["group"] == group]
        if not rows:
            continue
        if group not in ("conditioning", "multiple", "table2"):
            rows = [{**r, "cell": {**r["cell"], "setting": _base_label(group, r["cell"]["multiple"])}}
                    for r in base] + rows
        settings = list(dict.fromkeys(r["cell"]["setting"] for r in rows))
        table = []
        for setting in settings:
            mine = [r for r in rows if r["cell"]["setting"] == setting]
            table.append([setting, ",".join(str(r["seed"]) for r in mine),
                          *[_mean([r["segmentation"].get(m) for r in mine]) for m in metric_names]])
        blocks.append(f"### {title}\n\n" + markdown_table(["Setting", "Seeds", *metric_names], table))
    return "\n\n".join(blocks)


def _base_label(group: str, multiple: int) -> str:
    return {"multiple": f"{multiple}× (base)", "transforms": "on (base)", "attention": "LD (base)",
            "ld_gate": "max (base)", "placement": "all (base)"}.get(group, "base")


def _mean(values: list[float | None]) -> float | str:
    import math

    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else "n/a"
