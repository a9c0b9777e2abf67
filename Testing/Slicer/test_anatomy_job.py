"""'Create anatomy' from the panel's logic: `lnsynth anatomy` in the background, shown as 14 segments."""

from __future__ import annotations

import numpy as np
import pytest

from LNSynthLib.anatomy.groups import LABEL_NAMES

pytest.importorskip("slicer")

from LNSynthScene import mrml_bridge as mb  # noqa: E402
from LNSynthScene.logic import SceneLogic  # noqa: E402


@pytest.mark.slow
def test_coarse_anatomy_job_adds_the_anatomy_segmentation(core, tmp_path, example_ct):
    """Slow: the job starts torch-free but still a fresh Python (~10 s idle, ~30 s on a busy 2-core machine)."""
    logic = SceneLogic(core.scene, tmp_path / "work")
    ct_node = mb.load_volume_file(core.scene, example_ct, "example CT")
    chain = logic.start_anatomy(ct_node, method="coarse", device="cpu")
    assert chain.steps[0].args[chain.steps[0].args.index("--device") + 1] == "cpu"  # one device vocabulary
    state = chain.wait(timeout_s=300)
    assert state.succeeded, state.error
    node = chain.result
    assert mb.segment_names(node) == LABEL_NAMES
    labels = mb.segmentation_to_labels(node, dict(enumerate(LABEL_NAMES)), ct_node)
    ct = mb.node_to_volume(ct_node).array
    assert labels.shape == ct.shape
    assert np.mean(ct[labels.array == 0]) < -500  # air is air
    assert np.mean(ct[labels.array == LABEL_NAMES.index("bones")]) > 150
    assert not (chain.run_dir / "ct.nii.gz").exists()  # the CT copy is removed, the anatomy map kept
    assert (chain.run_dir / "anatomy.nii.gz").exists()
