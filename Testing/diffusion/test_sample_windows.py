"""Sampling windows (`sample.window`): per_node shows every node across a case's samples, case_centre does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.cases import Case, list_cases, load_case, save_case
from LNSynthLib.diffusion.sample.sampling import sample_cases
from LNSynthLib.diffusion.sample.windows import node_boxes, node_clusters, sample_window
from LNSynthLib.diffusion.train.data import CaseArrays, case_arrays, crop_case
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.masks import label_components

PATCH = (16, 16, 16)
NODES = {"near_corner": (slice(4, 8), slice(4, 8), slice(4, 8)),          # 64 voxels
         "far_corner": (slice(40, 43), slice(56, 59), slice(56, 59))}      # 27 voxels


@pytest.fixture(scope="module")
def two_node_case(phantom_cases: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A phantom case whose LN mask is two nodes 60 mm apart, further than one 16³ window."""
    root = tmp_path_factory.mktemp("two_nodes")
    case = load_case(phantom_cases / "phantom_000")
    ln = np.zeros(case.ln.shape, dtype=np.uint8)
    for box in NODES.values():
        ln[box] = 1
    save_case(Case("twonode", case.ct, case.anatomy, Volume(ln, case.ln.geometry), dict(case.meta)), root)
    return root


def nodes_seen(folder: Path, source: Path) -> set[str]:
    """Which of NODES lie inside the synthetic case's recorded window (checked against its LN mask too)."""
    synt = load_case(folder)
    start = np.array(synt.meta["window"]["start_zyx"])
    assert synt.meta["patch_start_zyx"] == list(start)
    _, _, ln = crop_case(case_arrays(source), start, PATCH)
    assert np.array_equal(synt.ln.array > 0, ln > 0), "without transforms the window's own LN mask is kept"
    seen = set()
    for name, box in NODES.items():
        low = np.array([s.start for s in box]) - start
        high = np.array([s.stop for s in box]) - start
        if np.all(low >= 0) and np.all(high <= np.array(PATCH)):
            seen.add(name)
    assert len(seen) == label_components(synt.ln.array)[1], "every node in the window is whole"
    return seen


@pytest.mark.parametrize(("rule", "expected"), [("per_node", {"near_corner", "far_corner"}),
                                                ("case_centre", {"near_corner"})])
def test_window_rule_decides_which_nodes_appear(rule: str, expected: set[str], straight_run: Path,
                                                two_node_case: Path, tmp_path: Path) -> None:
    folders = sample_cases(straight_run, two_node_case, tmp_path, samples_per_case=4, sampler="ddim", steps=1,
                           seed=3, transforms=False, device="cpu", progress=False, window=rule)
    assert len(folders) == 4
    seen: set[str] = set()
    starts = []
    for folder in folders:
        assert load_case(folder).meta["window_rule"] == rule
        seen |= nodes_seen(folder, two_node_case / "twonode")
        starts.append(tuple(load_case(folder).meta["window"]["start_zyx"]))
    assert seen == expected
    if rule == "per_node":   # the jitter gives different crops of the same cluster
        assert len(set(starts)) > 2
    else:
        assert len(set(starts)) == 1


def test_resuming_with_another_window_rule_is_refused(straight_run: Path, two_node_case: Path,
                                                      tmp_path: Path) -> None:
    from LNSynthLib.errors import LNSynthError

    sample_cases(straight_run, two_node_case, tmp_path, samples_per_case=1, sampler="ddim", steps=1,
                 transforms=False, device="cpu", progress=False, window="case_centre")
    with pytest.raises(LNSynthError):
        sample_cases(straight_run, two_node_case, tmp_path, samples_per_case=2, sampler="ddim", steps=1,
                     transforms=False, device="cpu", progress=False, window="per_node")
    assert len(list_cases(tmp_path)) == 1


def test_clusters_group_nodes_that_fit_one_window() -> None:
    ln = np.zeros((40, 40, 40), dtype=np.uint8)
    ln[2:5, 2:5, 2:5] = 1          # 27 voxels
    ln[10:12, 10:12, 10:12] = 1    # 8 voxels, fits with the first in 16³
    ln[30:36, 30:36, 30:36] = 1    # 216 voxels, far away: its own cluster, listed first (largest)
    boxes = node_boxes(ln)
    assert [int(np.prod(h - lo)) for lo, h in boxes] == [216, 27, 8]
    clusters = node_clusters(boxes, PATCH)
    assert [(c[0].tolist(), c[1].tolist()) for c in clusters] == [([30] * 3, [36] * 3), ([2] * 3, [12] * 3)]
    case = case_arrays_from(ln)
    rng = np.random.default_rng(0)
    for k in range(6):
        start, info = sample_window(case, PATCH, "per_node", k, rng)
        low, high = clusters[k % 2]
        assert info["cluster"] == k % 2 and info["clusters"] == 2
        assert np.all(np.array(start) <= low) and np.all(np.array(start) + PATCH >= high)
        assert np.all(np.array(start) >= 0) and np.all(np.array(start) + PATCH <= 40)


def case_arrays_from(ln: np.ndarray) -> CaseArrays:
    """Arrays of a case without files; the window rule needs only the LN mask and the shape."""
    return CaseArrays("synthetic_ln", np.zeros(ln.shape, np.float32), np.zeros(ln.shape, np.uint8), ln,
                      None, np.argwhere(ln > 0).astype(np.int32))  # type: ignore[arg-type]


def test_cli_window_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import argparse

    from LNSynthLib.cli import demo_command
    from LNSynthLib.cli.main import main
    from LNSynthLib.pipeline import PipelineSettings

    parser = argparse.ArgumentParser()
    demo_command.register(parser.add_subparsers())
    args = parser.parse_args(["demo", "--out", str(tmp_path / "w"), "--window", "case_centre"])
    assert demo_command._apply(PipelineSettings.demo(), args).ddpm_overrides["sample.window"] == "case_centre"
    code = main(["sample", "--checkpoint", str(tmp_path / "c.pt"), "--cases", str(tmp_path), "--out",
                 str(tmp_path / "out"), "--window", "centre"])
    assert code == 2 and "--window" in capsys.readouterr().err
