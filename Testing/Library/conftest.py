"""Fixtures for the data-side tests: the real example CT with nodes painted into it, written as real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from LNSynthLib.anatomy.build import anatomy_from_labels
from LNSynthLib.phantom.painted import paint_nodes_near_vessels
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.io import read_volume, write_volume


@pytest.fixture(scope="session")
def example_ct_volume(example_ct: Path) -> Volume:
    return read_volume(example_ct)


@pytest.fixture(scope="session")
def example_anatomy(example_ct_volume: Volume, example_totalseg: Path) -> Volume:
    return anatomy_from_labels(read_volume(example_totalseg), example_ct_volume, "totalseg")


@pytest.fixture(scope="session")
def painted_example(tmp_path_factory, example_ct_volume: Volume, example_anatomy: Volume) -> dict[str, Path]:
    """Real CT with three soft-tissue spheres in fat near the aorta, and their LN mask, as NIfTI files."""
    ct, ln = paint_nodes_near_vessels(example_ct_volume, example_anatomy, n_nodes=3, radius_mm=7.0, seed=0)
    folder = tmp_path_factory.mktemp("painted")
    return {"ct": write_volume(ct, folder / "ct_nodes.nii.gz"), "ln": write_volume(ln, folder / "ln.nii.gz")}
