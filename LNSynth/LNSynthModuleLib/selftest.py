"""The panel's whole flow on data it makes, for Slicer's self-test and the slicer-core test suite alike.

Phantom CT → coarse anatomy (background job) → a node painted in fat → the case added as a training
case → a short tiny LN-DDPM training (background job) → synthesis → the painted node must be the
lymph-node segment of the synthetic case. The phantom comes from the library (no download), the
anatomy from the weights-free coarse method, so it runs offline in a few minutes on a CPU.
"""

from __future__ import annotations

import time
import unittest
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from LNSynthLib.anatomy.groups import LABEL_NAMES, LYMPH_NODE_SEGMENT_NAME
from LNSynthLib.jobs.chain import ChainState, JobChain
from LNSynthScene import mrml_bridge as mb
from LNSynthScene.logic import ANATOMY_NAMES, SceneLogic, SynthesisSettings

from .job_probe import FLOW_JOB_MODULES, missing_job_package  # noqa: F401 (the probe's home is job_probe)

PHANTOM_SHAPE_ZYX = (48, 80, 80)
NODE_RADIUS_MM = 6.0
TRAINING_ITERATIONS = 8
SAMPLER_STEPS = 3


def skip_message(package: str) -> str:
    return (f"LNSynth self-test skipped: its background jobs need Python packages that are not installed here "
            f"(first missing: {package}). Install them from the LNSynth panel (Advanced > Install Python "
            "dependencies), then run the self-test again.")


def skip_unless_job_packages(test: unittest.TestCase, python: str | None = None) -> None:
    """Skip `test` with a clear message where the job packages are missing (e.g. on the extension factory,
    where PyTorch is not installed): that is not a failure of the module."""
    package = missing_job_package(python)
    if package:
        test.skipTest(skip_message(package))


@dataclass
class FlowReport:
    """What the flow produced and how long each stage took (seconds)."""

    painted_voxels: int = 0
    dice: float = 0.0
    synthetic_cases: int = 0
    checkpoint: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    added_nodes: dict[str, dict[str, int]] = field(default_factory=dict)


def fat_center(anatomy: np.ndarray, ct_hu: np.ndarray, min_depth_voxels: float = 4) -> np.ndarray:
    """(z, y, x) of a fat voxel deep inside the `body` label (1), where a new node can be painted."""
    fat = (anatomy == LABEL_NAMES.index("body")) & (ct_hu > -150) & (ct_hu < -50)
    depth = ndimage.distance_transform_edt(anatomy == LABEL_NAMES.index("body"))
    candidates = np.argwhere(fat & (depth >= min_depth_voxels))
    if not len(candidates):
        raise AssertionError("no deep fat voxel in this CT")
    return candidates[len(candidates) // 2]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    total = int(a.sum() + b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def _finished(chain: JobChain, wait: Callable[[JobChain], ChainState], what: str) -> object:
    state = wait(chain)
    if not state.succeeded:
        raise AssertionError(f"{what} failed: {state.error or 'cancelled'}")
    return chain.result


def run_flow(scene: object, work: Path, wait: Callable[[JobChain], ChainState],
             progress: Callable[[str], object] = print, device: str = "cpu") -> FlowReport:
    """Run the flow in `scene` with `work` as the panel's work folder; `wait(chain)` blocks until it ends."""
    from LNSynthLib.phantom import generate_phantom

    report = FlowReport()
    logic = SceneLogic(scene, work)
    clock, nodes = time.monotonic(), mb.node_classes(scene)

    def lap(stage: str) -> None:
        nonlocal clock, nodes
        report.seconds[stage] = round(time.monotonic() - clock, 1)
        now = mb.node_classes(scene)
        report.added_nodes[stage] = {k: v for k, v in (now - nodes).items()}
        if nodes - now:
            raise AssertionError(f"{stage} removed nodes: {dict(nodes - now)}")
        clock, nodes = time.monotonic(), now
        progress(f"LNSynth self-test: {stage} done ({report.seconds[stage]} s)")

    phantom = generate_phantom(seed=0, shape_zyx=PHANTOM_SHAPE_ZYX)
    ct_node = mb.volume_to_node(phantom.ct, scene, "LNSynth self-test CT")
    lap("load CT")
    anatomy_node = _finished(logic.start_anatomy(ct_node, "coarse", device), wait, "coarse anatomy")
    lap("anatomy")

    ct = mb.node_to_volume(ct_node)
    labels = mb.segmentation_to_labels(anatomy_node, ANATOMY_NAMES, ct).array
    center = fat_center(labels, ct.array)
    ln_node, _ = logic.lymph_node_segmentation(ct_node)
    center_lps = tuple(ct.geometry.index_to_physical(center[::-1].astype(float)))
    report.painted_voxels = logic.add_sphere(ln_node, ct_node, center_lps, NODE_RADIUS_MM)
    lap("paint")

    cases = work / "cases"
    _finished(logic.start_training_case(ct_node, anatomy_node, ln_node, cases), wait, "adding the training case")
    lap("training case")
    report.checkpoint = str(_finished(logic.start_ddpm_training(cases, work / "ln_ddpm", "tiny",
                                                                iterations=TRAINING_ITERATIONS, device=device),
                                      wait, "LN-DDPM training"))
    lap("LN-DDPM training")

    settings = SynthesisSettings(Path(report.checkpoint), n_samples=1, steps=SAMPLER_STEPS, transforms=False,
                                 device=device, paste_into_ct=False)
    loaded = _finished(logic.start_synthesis(ct_node, anatomy_node, ln_node, settings), wait, "synthesis")
    lap("synthesis")
    report.synthetic_cases = len(loaded)
    result = loaded[0]
    if not np.isfinite(mb.node_to_volume(result.ct).array).all():
        raise AssertionError("the synthetic CT has non-finite voxels")
    painted = mb.segment_to_mask(ln_node, LYMPH_NODE_SEGMENT_NAME, result.ct).array
    synthetic = mb.segment_to_mask(result.segmentation, LYMPH_NODE_SEGMENT_NAME, result.ct).array
    report.dice = dice(painted, synthetic)
    return report
