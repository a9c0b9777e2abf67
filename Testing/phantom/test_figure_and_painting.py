"""Nodes painted into the real CT sit in fat near the arteries; the README figure renders; big phantoms work."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from LNSynthLib.anatomy.groups import LABEL_NAMES
from LNSynthLib.anatomy.lymph_nodes import lymph_node_components
from LNSynthLib.phantom import generate_phantom
from LNSynthLib.phantom.figure import comparison_figure
from LNSynthLib.volumes.io import read_volume


def test_painted_nodes_in_fat_near_arteries(painted_example, example_anatomy):
    ln = read_volume(painted_example["ln"])
    ct = read_volume(painted_example["ct"])
    mask = ln.array > 0
    assert len(lymph_node_components(ln)) == 3
    assert np.all(example_anatomy.array[ndimage.binary_dilation(mask)] == LABEL_NAMES.index("body"))
    arteries = example_anatomy.array == LABEL_NAMES.index("arteries")
    dist = ndimage.distance_transform_edt(~arteries, sampling=ct.geometry.spacing[::-1])
    assert dist[mask].min() < 30.0
    assert 0 < float(np.median(ct.array[mask])) < 80      # soft tissue, unlike the fat around it


def test_comparison_figure_writes_png(tmp_path):
    a = generate_phantom(seed=0, shape_zyx=(32, 64, 64))
    b = generate_phantom(seed=1, shape_zyx=(32, 64, 64), spacing_xyz=(2.0, 2.0, 3.0))
    png = comparison_figure((a.ct, a.anatomy, a.ln), (b.ct, b.anatomy, b.ln), tmp_path / "fig.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


@pytest.mark.slow
def test_full_size_phantom_512x512x300():
    p = generate_phantom(seed=0, shape_zyx=(300, 512, 512), spacing_xyz=(0.8, 0.8, 1.5))
    assert p.ct.shape == (300, 512, 512)
    assert len(p.nodes) >= 3
    assert all(5.0 <= n.short_axis_mm <= 25.0 for n in p.nodes)
    assert len(np.unique(p.anatomy.array)) == 14
