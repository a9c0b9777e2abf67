"""prepare_case end to end on the real CT with painted nodes and on phantom files; phantom prepared cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from LNSynthLib.anatomy.groups import NUM_LABELS
from LNSynthLib.anatomy.lymph_nodes import lymph_node_components
from LNSynthLib.cases import list_cases, load_case
from LNSynthLib.errors import InputDataError, OutputExistsError
from LNSynthLib.phantom import generate_phantom, write_phantom_cases
from LNSynthLib.prepare import prepare_case
from LNSynthLib.volumes.geometry import Volume
from LNSynthLib.volumes.io import read_volume, write_volume
from LNSynthLib.volumes.preprocess import PreprocessSettings


def test_real_ct_with_totalseg_labels(tmp_path, painted_example, example_totalseg):
    folder = prepare_case(painted_example["ct"], painted_example["ln"], tmp_path, "real_001",
                          anatomy_path=example_totalseg, settings=PreprocessSettings.test())
    case = load_case(folder)
    assert case.meta["anatomy_source"] == "totalseg" and case.meta["anatomy_coarse"] is False
    assert case.ct.geometry.spacing == (1.0, 1.0, 1.0)
    assert case.ct.shape == case.anatomy.shape == case.ln.shape
    assert case.anatomy.geometry == case.ct.geometry == case.ln.geometry
    assert int(case.anatomy.array.max()) < NUM_LABELS and case.ct.array.min() < -500   # HU kept on disk
    # The crop is the LN box + 5 cm, so far smaller than the 3 mm source volume's extent along z.
    src = read_volume(painted_example["ln"])
    before = lymph_node_components(src)
    after = case.meta["nodes"]
    assert len(after) == len(before) == 3
    for a, b in zip(before, after, strict=True):
        assert np.allclose(a.centroid_lps, b["centroid_lps"], atol=1.0)   # nodes stay at their physical place
    zs = [c for c in case.meta["crop_box_zyx"][0]]
    assert zs[1] - zs[0] < src.shape[0]


def test_coarse_source_is_flagged_and_existing_output_refused(tmp_path, painted_example):
    folder = prepare_case(painted_example["ct"], painted_example["ln"], tmp_path, "c1", anatomy_source="coarse",
                          settings=PreprocessSettings.test(margin_mm=20.0))
    meta = json.loads((folder / "case.json").read_text(encoding="utf-8"))
    assert meta["anatomy_coarse"] is True and "coarse" in meta["anatomy_warning"]
    with pytest.raises(OutputExistsError) as err:
        prepare_case(painted_example["ct"], painted_example["ln"], tmp_path, "c1", anatomy_source="coarse")
    assert "c1" in str(err.value)
    prepare_case(painted_example["ct"], painted_example["ln"], tmp_path, "c1", anatomy_source="coarse",
                 settings=PreprocessSettings.test(margin_mm=20.0), overwrite=True)


def test_bad_inputs_name_the_file(tmp_path, painted_example, example_totalseg):
    ln = read_volume(painted_example["ln"])
    empty = write_volume(Volume(np.zeros_like(ln.array), ln.geometry), tmp_path / "empty_ln.nii.gz")
    with pytest.raises(InputDataError) as err:
        prepare_case(painted_example["ct"], empty, tmp_path / "out", "x", anatomy_path=example_totalseg)
    assert "empty_ln.nii.gz" in str(err.value)
    with pytest.raises(InputDataError) as err:
        prepare_case(painted_example["ln"], painted_example["ln"], tmp_path / "out", "x", anatomy_source="coarse")
    assert "ln.nii.gz" in str(err.value) and "Hounsfield" in str(err.value)
    with pytest.raises(InputDataError, match="needs a label file"):
        prepare_case(painted_example["ct"], painted_example["ln"], tmp_path / "out", "x", anatomy_source="file")
    with pytest.raises(InputDataError, match="makes the anatomy itself"):   # totalseg = run it, one meaning
        prepare_case(painted_example["ct"], painted_example["ln"], tmp_path / "out", "x",
                     anatomy_path=example_totalseg, anatomy_source="totalseg")
    assert not (tmp_path / "out" / "x").exists()


def test_phantom_files_prepare_like_a_real_ct(tmp_path):
    p = generate_phantom(seed=4, shape_zyx=(40, 64, 64), spacing_xyz=(1.5, 1.5, 2.0), n_nodes=3)
    ct = write_volume(p.ct, tmp_path / "ct.nrrd")
    ln = write_volume(p.ln, tmp_path / "ln.mha")
    ts = write_volume(p.totalseg, tmp_path / "ts.nii.gz")
    folder = prepare_case(ct, ln, tmp_path / "prep", "ph", anatomy_path=ts, anatomy_source="file",
                          labels_kind="totalseg")
    case = load_case(folder)
    assert case.ct.geometry.spacing == (1.0, 1.0, 1.0)
    assert len(case.meta["nodes"]) == len(p.nodes)
    # Anatomy from the written TotalSegmentator-style labels matches the phantom's own map after resampling.
    assert np.isin(np.unique(case.anatomy.array), np.unique(p.anatomy.array)).all()


def test_write_phantom_cases_gives_ready_prepared_cases(tmp_path):
    folders = write_phantom_cases(tmp_path, 2, seed=10, shape_zyx=(48, 64, 64), spacing_xyz=(1.0, 1.0, 1.5))
    assert [f.name for f in folders] == ["phantom_000", "phantom_001"] == [f.name for f in list_cases(tmp_path)]
    case = load_case(folders[1])
    assert case.meta["phantom_seed"] == 11 and case.meta["source"] == "phantom"
    assert case.ct.geometry.spacing == (1.0, 1.0, 1.0) and case.ct.shape[0] == 72
    assert case.ln.array.sum() > 0 and set(np.unique(case.ln.array)) == {0, 1}
    with pytest.raises(OutputExistsError):
        write_phantom_cases(tmp_path, 1)
