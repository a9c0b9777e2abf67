"""Every evaluation report says how sure it is: differences to Real with a 95 % CI, counts and a sentence.

Real label maps are written to tmp_path and scored through `lnsynth evaluate`, as a user runs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.cli.main import main
from LNSynthLib.metrics.bootstrap import node_recall_difference, paired_bootstrap
from LNSynthLib.report.confidence import FEW_CASES
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import write_volume

SHAPE = (24, 24, 24)


def _ball(centre: tuple[int, int, int], radius: float) -> np.ndarray:
    zz, yy, xx = np.indices(SHAPE)
    return ((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2) <= radius**2


def _write_cases(root: Path, n_cases: int) -> dict[str, Path]:
    """Labels with two nodes per case; Real finds both exactly, `Missed` loses the second node in even cases."""
    folders = {name: root / name for name in ("labels", "real", "missed", "same")}
    geometry = Geometry((1.0, 1.0, 1.0))
    for i in range(n_cases):
        first, second = _ball((7, 7, 7 + i % 3), 3), _ball((16, 16, 15), 2.5 + (i % 4) * 0.3)
        label = (first | second).astype(np.uint8)
        missed = (first | (second if i % 2 else False)).astype(np.uint8)
        for name, array in (("labels", label), ("real", label), ("missed", missed), ("same", label)):
            write_volume(Volume(array, geometry), folders[name] / f"case_{i:02d}.nii.gz")
    return folders


def _evaluate(folders: dict[str, Path], out: Path, capsys: pytest.CaptureFixture) -> tuple[dict, str, str]:
    code = main(["evaluate", "--out", str(out), "--labels", str(folders["labels"]), "--device", "cpu",
                 "--pred", f"Real|-={folders['real']}", "--pred", f"Real + Synt|LN-DDPM={folders['missed']}",
                 "--pred", f"Copy|paste={folders['same']}"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return metrics, (out / "report.md").read_text(encoding="utf-8"), printed


def test_report_and_terminal_give_the_difference_ci_and_counts(tmp_path: Path, capsys) -> None:
    n = 12
    metrics, report, printed = _evaluate(_write_cases(tmp_path, n), tmp_path / "report", capsys)
    rows = {(r["strategy"], r["metric"]): r for r in metrics["differences_vs_real"]}
    assert set(rows) == {("Real + Synt", "DSC"), ("Real + Synt", "NodeRecall"), ("Copy", "DSC"), ("Copy", "NodeRecall")}
    # The figures are the paired bootstrap of the per-case metrics the report scored.
    per_case = metrics["segmentation_per_case"]
    real, synt = per_case["Real | -"], per_case["Real + Synt | LN-DDPM"]
    cases = sorted(real)
    expected = paired_bootstrap([real[c]["DSC"] for c in cases], [synt[c]["DSC"] for c in cases])
    dsc = rows[("Real + Synt", "DSC")]
    assert (dsc["estimate"], dsc["low"], dsc["high"]) == pytest.approx((expected.estimate, expected.low, expected.high))
    assert dsc["n_cases"] == n and dsc["n_nodes"] == 2 * n and dsc["n_seeds"] == 1
    assert dsc["estimate"] < 0 and dsc["significant"] and dsc["high"] < 0
    nr = rows[("Real + Synt", "NodeRecall")]
    expected_nr = node_recall_difference([real[c]["nodes_found"] for c in cases],
                                         [synt[c]["nodes_found"] for c in cases], [2] * n)
    assert nr["estimate"] == pytest.approx(-0.25) == pytest.approx(expected_nr.estimate)   # 6 of 24 nodes lost
    assert nr["significant"] and nr["n_nodes"] == 2 * n
    same = rows[("Copy", "DSC")]
    assert (same["estimate"], same["low"], same["high"], same["significant"]) == (0.0, 0.0, 0.0, False)
    # The report's section, table and sentences; the terminal prints the same sentences.
    assert "## How sure is this" in report
    assert f"| Real + Synt | LN-DDPM | DSC | {dsc['estimate']:+.4f} | [{dsc['low']:+.4f}, {dsc['high']:+.4f}] | {n} | " \
           f"{2 * n} | 1 | yes |" in report
    assert "worse than Real" in dsc["sentence"] and "shows no difference" in same["sentence"]
    assert dsc["sentence"] in report and dsc["sentence"] in printed
    assert "One seed" in dsc["sentence"] and f"fewer than {FEW_CASES}" not in dsc["sentence"]
    # The best strategy by DSC, against Real with its CI, in the report and on the terminal (the demo's last word):
    # Copy equals Real, LN-DDPM is worse, so the pick is Copy and the sentence says it does not show a gain.
    best = "Best strategy here: Copy (paste), DSC +0.000 vs Real (95 % CI +0.000 to +0.000); its interval includes 0"
    assert best in report and best in printed and "Picked on the test cases that score it" in printed
    from LNSynthLib.report.confidence import best_strategy

    worse = [r for r in metrics["differences_vs_real"] if r["strategy"] == "Real + Synt"]
    assert "no strategy beat Real here" in best_strategy(worse)   # the best of worse ones is not called a gain


def test_two_test_cases_cannot_show_a_difference(tmp_path: Path, capsys) -> None:
    metrics, report, printed = _evaluate(_write_cases(tmp_path, 2), tmp_path / "report", capsys)
    dsc = next(r for r in metrics["differences_vs_real"] if r["strategy"] == "Real + Synt" and r["metric"] == "DSC")
    assert dsc["low"] < 0 <= dsc["high"] and not dsc["significant"] and dsc["n_cases"] == 2
    assert "cannot show a difference" in dsc["sentence"] and f"±{dsc['half_width']:.2f}" in dsc["sentence"]
    assert f"fewer than {FEW_CASES} test cases" in dsc["sentence"]
    assert "cannot show a difference" in printed and "| no |" in report


def test_without_a_real_strategy_the_report_says_so(tmp_path: Path, capsys) -> None:
    folders = _write_cases(tmp_path, 2)
    code = main(["evaluate", "--out", str(tmp_path / "r"), "--labels", str(folders["labels"]), "--device", "cpu",
                 "--pred", f"Synt|LN-DDPM={folders['missed']}"])
    printed = capsys.readouterr().out
    assert code == 0 and "no Real strategy" in printed
    assert "How sure is this" not in (tmp_path / "r" / "report.md").read_text(encoding="utf-8")
