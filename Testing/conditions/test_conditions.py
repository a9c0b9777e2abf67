"""Condition transforms: per-node affine/elastic shape changes, node removal, organ-overlap rejection."""

from __future__ import annotations

import numpy as np
import pytest

from LNSynthLib.conditions.transforms import organ_mask, transform_ln_mask
from LNSynthLib.volumes.masks import label_components

SHAPE = (40, 40, 40)


def ball(center: tuple[int, int, int], radius: float) -> np.ndarray:
    zz, yy, xx = np.indices(SHAPE)
    return ((zz - center[0]) ** 2 + (yy - center[1]) ** 2 + (xx - center[2]) ** 2) < radius**2


@pytest.fixture()
def scene() -> tuple[np.ndarray, np.ndarray]:
    anatomy = np.ones(SHAPE, np.uint8)            # body everywhere ...
    anatomy[:, :, 30:] = 2                         # ... and an organ (liver) slab at x >= 30
    anatomy[:2] = 0                                # air at the top
    ln = np.zeros(SHAPE, np.uint8)
    for c in [(10, 10, 10), (25, 25, 24), (30, 10, 18)]:   # node 2 lies 2-3 voxels from the organ
        ln[ball(c, 3.2)] = 1
    return ln, anatomy


def test_anatomy_kept_and_seeded(scene: tuple[np.ndarray, np.ndarray]) -> None:
    ln, anatomy = scene
    anatomy_before = anatomy.copy()
    a, info_a = transform_ln_mask(ln, anatomy, np.random.default_rng(3))
    b, info_b = transform_ln_mask(ln, anatomy, np.random.default_rng(3))
    c, _ = transform_ln_mask(ln, anatomy, np.random.default_rng(4))
    assert np.array_equal(anatomy, anatomy_before)
    assert a.shape == ln.shape and a.dtype == np.uint8 and set(np.unique(a)) <= {0, 1}
    assert np.array_equal(a, b) and info_a == info_b
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, ln)


def test_transformed_nodes_never_enter_organs(scene: tuple[np.ndarray, np.ndarray]) -> None:
    ln, anatomy = scene
    organs = organ_mask(anatomy)
    assert organs.sum() == (anatomy >= 2).sum()       # organs = every label except air and body
    for seed in range(12):
        for p_affine in (1.0, 0.0):
            new, info = transform_ln_mask(ln, anatomy, np.random.default_rng(seed), p_affine=p_affine,
                                          p_elastic=1.0 - p_affine, p_remove=0.0)
            assert not (new.astype(bool) & organs).any()
            assert info["nodes_out"] == 3, "nodes must not merge or vanish"
            assert {n["op"] for n in info["nodes"]} == {"affine" if p_affine else "elastic"}
            for node in info["nodes"]:
                assert 0.3 < node["voxels_after"] / node["voxels_before"] < 3.0


def test_rejected_everywhere_keeps_the_original_node() -> None:
    anatomy = np.full(SHAPE, 5, np.uint8)
    node = ball((20, 20, 20), 3.0)
    anatomy[node] = 1                               # the node's own voxels are body, the rest an organ
    ln = node.astype(np.uint8)
    new, info = transform_ln_mask(ln, anatomy, np.random.default_rng(0), p_affine=1.0, p_elastic=0.0,
                                  max_tries=4)
    record = info["nodes"][0]
    assert record["accepted"] is False and record["tries"] == 4
    assert np.array_equal(new, ln)


def test_removal_only_with_several_nodes(scene: tuple[np.ndarray, np.ndarray]) -> None:
    ln, anatomy = scene
    new, info = transform_ln_mask(ln, anatomy, np.random.default_rng(0), p_affine=0.0, p_elastic=0.0,
                                  p_remove=1.0)
    assert info["removed"] in (1, 2, 3) and info["nodes_out"] == 2
    labels, _ = label_components(ln)
    assert np.array_equal(new.astype(bool), (labels > 0) & (labels != info["removed"]))
    single = ball((20, 20, 15), 3.0).astype(np.uint8)
    kept, info = transform_ln_mask(single, anatomy, np.random.default_rng(0), p_affine=0.0, p_elastic=0.0,
                                   p_remove=1.0)
    assert info["removed"] is None and np.array_equal(kept, single)


def test_no_transform_is_identity_and_bad_arguments_raise(scene: tuple[np.ndarray, np.ndarray]) -> None:
    ln, anatomy = scene
    same, info = transform_ln_mask(ln, anatomy, np.random.default_rng(0), p_affine=0, p_elastic=0, p_remove=0)
    assert np.array_equal(same, ln) and all(n["op"] == "none" for n in info["nodes"])
    empty, info = transform_ln_mask(np.zeros(SHAPE, np.uint8), anatomy, np.random.default_rng(0))
    assert not empty.any() and info["nodes_in"] == 0
    with pytest.raises(ValueError):
        transform_ln_mask(ln, anatomy, np.random.default_rng(0), p_affine=0.8, p_elastic=0.8)
    with pytest.raises(ValueError):
        transform_ln_mask(ln, anatomy[:-1], np.random.default_rng(0))
