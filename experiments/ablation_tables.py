"""Paper 000's Tables 1, 2, 3 and 4a-c in the paper's layout, each paper row with our row beneath it.

Our rows come from the grid's cells (`ablation_grid.py`, metrics averaged over seeds) and, for
Table 1, from the generation metrics of each model's synthetic set. A row the project does not
reproduce (the five out-of-scope baselines) shows only the paper's numbers; a cell that was not
run says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from LNSynthLib.metrics.segmentation import METRIC_NAMES
from LNSynthLib.report import paper000
from LNSynthLib.report.tables import markdown

NOT_RUN = "not run"
OUT_OF_SCOPE = "out of scope (not implemented)"
TABLE2_CELLS = {("Real", "-"): "real", ("Synt", "LN-DDPM"): "conditioning-ln_ddpm",
                ("Synt", "Med-DDPM"): "conditioning-med_ddpm", ("Real + Synt", "Med-DDPM"): "realsynt-med_ddpm"}
TABLE3_CELLS = ("conditioning-gscond_ln_only", "conditioning-conditional", "conditioning-ln_ddpm")
TABLE4B_CELLS = ("transforms-off", "conditioning-ln_ddpm")
TABLE4C_CELLS = ("conditioning-ln_ddpm", "attention-LA", "attention-GA")
TABLE1_CELLS = {"Med-DDPM": "conditioning-med_ddpm", "LN-DDPM": "conditioning-ln_ddpm"}


def cell_means(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """cell name -> segmentation metrics averaged over its seeds, with `seeds` (e.g. "0,1")."""
    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["cell"]["name"] for r in results):
        mine = [r for r in results if r["cell"]["name"] == name]
        out[name] = {m: _mean([r["segmentation"].get(m) for r in mine]) for m in METRIC_NAMES}
        out[name]["seeds"] = ",".join(str(r["seed"]) for r in mine)
        out[name]["multiple"] = mine[0]["cell"]["multiple"]
    return out


def _mean(values: list[float | None]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def _pair(keys: list[str], paper: dict[str, Any], ours: dict[str, Any] | None, metrics: Sequence[str],
          why_not: str = NOT_RUN, ours_label: str = "ours") -> list[list[Any]]:
    """The paper's row, then ours (or why there is none) beneath it."""
    rows = [[*keys, "paper", *[paper.get(m, float("nan")) for m in metrics]]]
    if ours is None:
        rows.append([*[""] * len(keys), why_not, *[""] * len(metrics)])
    else:
        rows.append([*[""] * len(keys), ours_label, *[ours.get(m, float("nan")) for m in metrics]])
    return rows


def table1(generation: dict[str, dict[str, Any]]) -> str:
    """Table 1: generation metrics per method; `generation` maps a method to its evaluate_generation result."""
    rows: list[list[Any]] = []
    for paper in paper000.TABLE1:
        method = paper["method"]
        why = OUT_OF_SCOPE if method in paper000.OUT_OF_SCOPE else NOT_RUN
        ours = generation.get(method)
        label = f"ours ({ours.get('samples', '')})" if ours else "ours"
        rows += _pair([method], paper, ours, paper000.GENERATION_METRICS, why, label)
    headers = ["Method", "Source", "MSE ↓", "PSNR ↑", "MS-SSIM ↑", "LPIPS ↓", "NodeRecall_synt ↑"]
    return markdown(headers, rows)


def table2(means: dict[str, dict[str, Any]], base_multiple: int) -> str:
    """Table 2: Real, then Synt and Real + Synt per method (our Real + Synt LN-DDPM is the base multiple's cell)."""
    cells = {**TABLE2_CELLS, ("Real + Synt", "LN-DDPM"): f"multiple-{base_multiple}x"}
    rows: list[list[Any]] = []
    for paper in paper000.TABLE2:
        key = (paper["strategy"], paper["method"])
        why = OUT_OF_SCOPE if paper["method"] in paper000.OUT_OF_SCOPE else NOT_RUN
        rows += _pair([paper["strategy"], paper["method"]], paper, means.get(cells.get(key, "")), METRIC_NAMES, why)
    return markdown(["Strategy", "Method", "Source", *_seg_headers()], rows)


def table3(means: dict[str, dict[str, Any]]) -> str:
    """Table 3: the three conditioning components integrated progressively (Synt-only)."""
    rows: list[list[Any]] = []
    for paper, cell in zip(paper000.TABLE3, TABLE3_CELLS, strict=True):
        keys = ["✓" if paper[k] else "" for k in ("gscond_ln", "gscond_as", "ldcond")]
        rows += _pair(keys, paper, means.get(cell), METRIC_NAMES)
    return markdown(["GSCond w/ LN mask", "GSCond w/ AS", "LDCond", "Source", *_seg_headers()], rows)


def table4a(means: dict[str, dict[str, Any]], multiples: Sequence[int]) -> str:
    """Table 4a: 5×, 10×, 20× on Real + Synt; at CPU size our multiples stand in by position."""
    rows: list[list[Any]] = []
    for paper, ours_multiple in zip(paper000.TABLE4A, multiples, strict=True):
        rows += _pair([f"{paper['multiple']}×"], paper, means.get(f"multiple-{ours_multiple}x"), METRIC_NAMES,
                      ours_label=f"ours ({ours_multiple}×)")
    return markdown(["#Synt", "Source", *_seg_headers()], rows)


def table4b(means: dict[str, dict[str, Any]]) -> str:
    rows: list[list[Any]] = []
    for paper, cell in zip(paper000.TABLE4B, TABLE4B_CELLS, strict=True):
        rows += _pair(["✓" if paper["transforms"] else "✗"], paper, means.get(cell), METRIC_NAMES)
    return markdown(["Trans.", "Source", *_seg_headers()], rows)


def table4c(means: dict[str, dict[str, Any]]) -> str:
    rows: list[list[Any]] = []
    for paper, cell in zip(paper000.TABLE4C, TABLE4C_CELLS, strict=True):
        rows += _pair([paper["mode"]], paper, means.get(cell), METRIC_NAMES)
    return markdown(["Mode", "Source", *_seg_headers()], rows)


def _seg_headers() -> list[str]:
    arrows = {"ASSD": "ASSD (mm) ↓"}
    return [arrows.get(m, f"{m} ↑") for m in METRIC_NAMES]


def paper_tables(results: Sequence[dict[str, Any]], generation: dict[str, dict[str, Any]], base_multiple: int,
                 multiples: Sequence[int]) -> str:
    """Every table of paper 000 as markdown sections, in the paper's order."""
    means = cell_means(results)
    sections = [("Table 1: generation (all samples of each model's synthetic set; NodeRecall_synt by the Real "
                 "nnU-Net)", table1(generation)),
                (f"Table 2: segmentation under each training strategy (ours: {base_multiple}× synthetic)",
                 table2(means, base_multiple)),
                ("Table 3: conditioning signals and mechanisms (Synt)", table3(means)),
                ("Table 4a: number of synthetic images (Real + Synt)", table4a(means, multiples)),
                ("Table 4b: condition transforms at sampling (Synt)", table4b(means)),
                ("Table 4c: attention mode in the spatial transformer (Synt)", table4c(means))]
    return "\n\n".join(f"### {title}\n\n{body}" for title, body in sections)
