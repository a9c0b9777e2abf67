"""Bad-input table, round 2, class 4 (results that look fine): `evaluate` scores a prediction only on its
label's grid, and a checkpoint whose weights went NaN/inf (a diverged run) is never sampled from.

Rows run the real `lnsynth` command in-process through `refused` (exit 2, `lnsynth: error:` naming the
file or option and the cause, a `Fix:`, no traceback, nothing changed on disk).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .round2_inputs import SPACING_MM, checkpoint, rows, sample


def evaluate(pred: str = "{t}/pred") -> list[str]:
    return ["evaluate", "--out", "{t}/report", "--labels", "{t}/labels", "--pred", f"Real|-={pred}", "--device", "cpu"]


def _label_and_prediction(tmp: Path, *, origin=(0.0, 0.0, 0.0), spacing=(SPACING_MM,) * 3,
                          flip_x: bool = False, transpose_xy: bool = False) -> None:
    """labels/c1.nii.gz and pred/c1.nii.gz: the same nodes, the prediction on the grid given."""
    from LNSynthLib.volumes.geometry import Geometry, Volume
    from LNSynthLib.volumes.io import write_volume

    ln = np.zeros((16, 20, 24), np.uint8)
    ln[4:8, 5:9, 3:8] = 1
    ln[10:13, 12:15, 15:19] = 1
    write_volume(Volume(ln, Geometry((SPACING_MM,) * 3)), tmp / "labels" / "c1.nii.gz")
    pred, direction = ln, (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)
    if flip_x:   # the same voxels stored right-to-left: x runs backwards from the far end
        pred = ln[:, :, ::-1]
        origin = ((ln.shape[2] - 1) * SPACING_MM, 0.0, 0.0)
        direction = (-1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)
    if transpose_xy:   # the same voxels with x and y swapped in the array
        pred = np.ascontiguousarray(ln.transpose(0, 2, 1))
        direction = (0, 1.0, 0, 1.0, 0, 0, 0, 0, 1.0)
    write_volume(Volume(np.ascontiguousarray(pred), Geometry(spacing, origin, direction)), tmp / "pred" / "c1.nii.gz")


def prediction(**grid):
    return lambda tmp, data: _label_and_prediction(tmp, **grid)


def _oblique_prediction(tmp: Path, data: Path) -> None:
    """The prediction on a grid rotated by 30 degrees: no axis permutation maps it onto the labels."""
    _label_and_prediction(tmp)
    from LNSynthLib.volumes.geometry import Geometry, Volume
    from LNSynthLib.volumes.io import read_volume, write_volume

    pred = read_volume(tmp / "pred" / "c1.nii.gz")
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    write_volume(Volume(pred.array, Geometry(pred.geometry.spacing, (0.0, 0.0, 0.0), (c, -s, 0, s, c, 0, 0, 0, 1))),
                 tmp / "pred" / "c1.nii.gz", overwrite=True)


def _poison(key: str, value: float):
    def edit(payload: dict) -> None:
        name = next(n for n, t in payload[key].items() if t.is_floating_point() and t.numel() > 10)
        payload[key][name].view(-1)[:7] = value
    return edit


TABLE = [
    ("evaluate-pred-50mm-away", evaluate(), ["pred/c1.nii.gz"], "origin", prediction(origin=(50.0, 0.0, 0.0))),
    ("evaluate-pred-half-voxel-away", evaluate(), ["pred/c1.nii.gz"], "origin", prediction(origin=(0.0, 2.5, 0.0))),
    ("evaluate-pred-other-spacing", evaluate(), ["pred/c1.nii.gz"], "spacing", prediction(spacing=(4.0, 5.0, 5.0))),
    ("evaluate-pred-oblique", evaluate(), ["pred/c1.nii.gz"], "direction", _oblique_prediction),
    ("sample-checkpoint-nan-ema", sample("{t}/ck.pt"), ["ck.pt"], "NaN/infinite", checkpoint(_poison("ema", np.nan))),
    ("sample-checkpoint-inf-model", sample("{t}/ck.pt", "--raw-weights"), ["ck.pt"], "NaN/infinite",
     checkpoint(_poison("model", np.inf))),
]


@pytest.mark.parametrize(("args", "names", "why", "setup"), rows(TABLE))
@pytest.mark.timeout(60)
def test_bad_input_is_refused(refused, bad_data: Path, tmp_path: Path, args, names, why, setup):
    setup(tmp_path, bad_data)
    refused(args, names, why)


@pytest.mark.parametrize("grid", [{"flip_x": True}, {"transpose_xy": True}], ids=["flipped-x", "x-y-swapped"])
def test_prediction_of_the_same_voxels_in_another_order_scores_as_itself(tmp_path: Path, grid: dict):
    """Physically identical to the labels, stored in another axis order/direction: DSC 1.0 (it was 0.0)."""
    from LNSynthLib.report.report import evaluate_predictions
    from LNSynthLib.volumes.io import read_volume

    _label_and_prediction(tmp_path, **grid)
    assert read_volume(tmp_path / "pred" / "c1.nii.gz").array.tobytes() != \
        read_volume(tmp_path / "labels" / "c1.nii.gz").array.tobytes()   # the stored arrays do differ
    per_case, summary = evaluate_predictions(tmp_path / "labels", tmp_path / "pred")
    assert per_case["c1"]["DSC"] == pytest.approx(1.0) and summary["NodeRecall"] == pytest.approx(1.0)
