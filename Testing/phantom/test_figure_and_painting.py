"""Nodes painted into the real CT sit in fat near the arteries; the README and realism figures render; big phantoms work."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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


def test_realism_figure_from_the_cli(tmp_path, shared_data, example_ct, example_totalseg):
    """`lnsynth phantom --realism-figure`: phantom vs both real CTs at one window, as a user runs it."""
    hires = shared_data / "dcmqi_ct3slice"
    if not (hires / "liver_spine_seg.nrrd").exists():
        pytest.skip(f"{hires} not found")
    env = {**os.environ, "LNSYNTH_PROGRESS": "json"}
    res = subprocess.run([sys.executable, "-m", "LNSynthLib", "phantom", "--realism-figure", "fig.png",
                          "--realism-shape", "48", "160", "160", "--seed", "1", "--real-ct", str(example_ct),
                          "--real-labels", str(example_totalseg), "--real-hires-ct", str(hires),
                          "--real-hires-labels", str(hires / "liver_spine_seg.nrrd")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    event = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")][-1]
    assert (event["kind"], event["path"]) == ("figure", "fig.png")
    data = (tmp_path / "fig.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 100_000


def test_realism_figure_missing_real_ct_is_a_user_error(tmp_path):
    """No real CT ships with the package: the figure names the options it lacks, then a missing file by name."""
    base = [sys.executable, "-m", "LNSynthLib", "phantom", "--realism-figure", "fig.png", "--realism-shape", "32", "64",
            "64"]
    res = subprocess.run(base, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "--real-ct, --real-labels, --real-hires-ct, --real-hires-labels not given" in res.stderr
    nope = str(tmp_path / "nope.nii.gz")
    res = subprocess.run([*base, "--real-ct", nope, "--real-labels", nope, "--real-hires-ct", nope,
                          "--real-hires-labels", nope], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert "nope.nii.gz" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "fig.png").exists()


@pytest.mark.slow
def test_full_size_phantom_512x512x300():
    p = generate_phantom(seed=0, shape_zyx=(300, 512, 512), spacing_xyz=(0.8, 0.8, 1.5))
    assert p.ct.shape == (300, 512, 512)
    assert len(p.nodes) >= 3
    assert all(5.0 <= n.short_axis_mm <= 25.0 for n in p.nodes)
    assert all(0.25 <= n.volume_mm3 / 1000 <= 5.3 for n in p.nodes)   # real node volumes (0.3–4.8 cm³)
    assert len(np.unique(p.anatomy.array)) == 14
