"""Markdown tables shaped like the papers' (Table 2 of paper 000: strategy × method × metrics)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from LNSynthLib.metrics.segmentation import METRIC_NAMES
from LNSynthLib.report import paper000

# nnU-Net, 88 real training cases; Real+Synt at 10x (paper 000 Table 2, the rows this project reproduces)
PAPER_000_TABLE2 = [row for row in paper000.TABLE2 if row["method"] in ("-", "LN-DDPM")]


def fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def table2(rows: Sequence[dict[str, Any]]) -> str:
    """Rows with `strategy`, `method` and the six metrics; ASSD in mm."""
    headers = ["Strategy", "Method", "DSC ↑", "IoU ↑", "Recall ↑", "Precision ↑", "ASSD (mm) ↓", "NodeRecall ↑"]
    body = [[r["strategy"], r["method"], *[r.get(m, float("nan")) for m in METRIC_NAMES]] for r in rows]
    return markdown(headers, body)


def aggregation_table(rows: Sequence[dict[str, Any]]) -> str:
    """How each row's figures were aggregated: pooled vs per-case NodeRecall, node counts, empty predictions."""
    headers = ["Strategy", "Method", "NodeRecall (pooled)", "NodeRecall (case mean)", "nodes found", "cases",
               "empty predictions"]
    body = [[r["strategy"], r["method"], r.get("NodeRecall", float("nan")),
             r.get("NodeRecall_case_mean", float("nan")), f"{r.get('nodes_found', 0)}/{r.get('nodes_total', 0)}",
             r.get("cases", "n/a"), r.get("empty_predictions", "n/a")] for r in rows]
    return markdown(headers, body)


def generation_table(rows: Sequence[dict[str, Any]]) -> str:
    """Paper 000 Table 1's columns, then paper 002's SSIM and FID."""
    headers = ["Method", "MSE ↓", "PSNR ↑", "MS-SSIM ↑", "LPIPS ↓", "NodeRecall_synt ↑", "SSIM ↑", "FID ↓",
               "pairs"]
    keys = ["MSE", "PSNR", "MS-SSIM", "LPIPS", "NodeRecall_synt", "SSIM", "FID", "pairs"]
    return markdown(headers, [[r.get("method", "LN-DDPM"), *[r.get(k, float("nan")) for k in keys]] for r in rows])


def organ_dice_table(organ_dice: dict[str, float], cases: dict[str, int]) -> str:
    """Paper 002's per-organ Dice (Tables 1-2) as one row per organ group, with the number of images."""
    return markdown(["Organ", "Dice ↑", "images"], [[name, value, cases.get(name, "n/a")]
                                                    for name, value in organ_dice.items()])
