"""Synthesis from the panel's logic with a real tiny LN-DDPM: results aligned, cancel leaves nothing.

Slow (about 3-6 minutes on a shared 2-core machine: prepare, train, sample each start torch);
the default suite covers the same chain with real subprocesses (test_job_chain.py) and the
loading of results (test_logic.py).

A tiny checkpoint is trained in a fixture (`tiny_checkpoint` in conftest.py: `lnsynth train --config
tiny`, 2 iterations) on the real example CT with a node painted in fat; the test then runs the same
prepare → sample chain the Synthesize button starts, on a slicer-core scene.
"""

from __future__ import annotations

import time

import pytest

from LNSynthLib.anatomy.groups import LYMPH_NODE_SEGMENT_NAME

pytest.importorskip("slicer")

from LNSynthScene import mrml_bridge as mb  # noqa: E402
from LNSynthScene.logic import SynthesisSettings  # noqa: E402


@pytest.mark.slow
def test_synthesis_results_are_aligned_with_the_painted_node(scene_case, tiny_checkpoint):
    logic, ct_node, anatomy_node, ln_node, *_ = scene_case
    settings = SynthesisSettings(tiny_checkpoint, n_samples=1, steps=3, transforms=False, device="cpu")
    chain = logic.start_synthesis(ct_node, anatomy_node, ln_node, settings)
    state = chain.wait(timeout_s=300)
    assert state.succeeded, state.error
    synthetic, pasted = chain.result
    patch = mb.node_to_volume(synthetic.ct)
    assert patch.shape == (32, 32, 32) and patch.geometry.spacing == (1.0, 1.0, 1.0)
    assert -1100 <= patch.array.min() and patch.array.max() <= 400  # HU range of the model's window
    # Transforms off: the synthetic LN mask is the painted node, at the same physical place.
    synthetic_ln = mb.segment_to_mask(synthetic.segmentation, LYMPH_NODE_SEGMENT_NAME, synthetic.ct).array
    painted_on_patch = mb.segment_to_mask(ln_node, LYMPH_NODE_SEGMENT_NAME, synthetic.ct).array
    dice = 2 * (synthetic_ln & painted_on_patch).sum() / (synthetic_ln.sum() + painted_on_patch.sum())
    assert synthetic_ln.sum() > 0 and dice > 0.8
    # The pasted CT keeps the CT grid and the node where it was painted.
    assert mb.node_geometry(pasted.ct).isclose(mb.node_geometry(ct_node))
    pasted_ln = mb.segment_to_mask(pasted.segmentation, LYMPH_NODE_SEGMENT_NAME, ct_node).array
    painted = mb.segment_to_mask(ln_node, LYMPH_NODE_SEGMENT_NAME, ct_node).array
    assert (pasted_ln & painted).sum() >= 0.8 * painted.sum()
    log = chain.log_path.read_text(encoding="utf-8")
    assert "$ lnsynth prepare" in log and "$ lnsynth sample" in log


@pytest.mark.slow
def test_cancel_during_sampling_stops_the_job_and_leaves_no_files(scene_case, tiny_checkpoint, process_alive):
    logic, ct_node, anatomy_node, ln_node, *_ = scene_case
    settings = SynthesisSettings(tiny_checkpoint, n_samples=20, sampler="ddpm", transforms=False, device="cpu")
    before = mb.node_classes(logic.scene)
    chain = logic.start_synthesis(ct_node, anatomy_node, ln_node, settings)
    deadline = time.monotonic() + 240
    while chain.poll().running and not (chain.state.stage == "sample" and chain.process.state.step > 0):
        assert time.monotonic() < deadline, "sampling did not start"
        time.sleep(0.2)
    assert chain.state.running, chain.state.error
    pid = chain.process.pid   # the session's warm worker: cancelled is the request, the worker stays
    chain.cancel()
    assert chain.state.cancelled and chain.process.state.returncode == 130 and process_alive(pid)
    assert logic.warm_worker().pid == pid
    assert not chain.run_dir.exists()
    assert len(mb.segment_names(ln_node)) == 1  # the scene is as before: nothing half-loaded
    assert mb.node_classes(logic.scene) == before


@pytest.mark.slow
def test_add_case_synthesize_export_gives_a_dataset_with_the_synthetic_cases(scene_case, tiny_checkpoint, tmp_path):
    """The panel's documented order: *Add current case* (sets the cases folder), *Synthesize*, *Export dataset*
    of that folder with the panel's default paste: the nnU-Net dataset holds the synthetic cases."""
    import json

    logic, ct_node, anatomy_node, ln_node, *_ = scene_case
    cases = tmp_path / "cases"
    added = logic.start_training_case(ct_node, anatomy_node, ln_node, cases)
    assert added.wait(timeout_s=300).succeeded, added.state.error
    settings = SynthesisSettings(tiny_checkpoint, n_samples=2, steps=3, transforms=False, device="cpu")
    synthesis = logic.start_synthesis(ct_node, anatomy_node, ln_node, settings)
    assert synthesis.wait(timeout_s=600).succeeded, synthesis.state.error
    # QC off: a 2-iteration model's samples are (rightly) rejected by quality control, which would say so.
    export = logic.start_nnunet_export(tmp_path / "project", cases, paste=True, qc=False)
    state = export.wait(timeout_s=600)
    assert state.succeeded, state.error
    dataset = next((tmp_path / "project").rglob("dataset.json")).parent
    manifest = json.loads((dataset / "lnsynth_export.json").read_text(encoding="utf-8"))
    kinds = sorted((item["kind"], item["source_case"]) for item in manifest["training"])
    assert kinds == [("pasted", added.result)] * 2 + [("real", added.result)]
    assert len(list((dataset / "imagesTr").glob("*.nii.gz"))) == 3
