"""Generation metrics: hand-computed MSE/PSNR, MS-SSIM scale handling, LPIPS maths with a small random net."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from LNSynthLib.errors import MissingWeightsError
from LNSynthLib.metrics import generation as gm
from LNSynthLib.metrics.lpips3d import load_medicalnet_features, lpips_3d, medicalnet_resnet


def test_mse_and_psnr_in_the_paper_window():
    real = np.full((4, 4, 4), -120.0)            # -> 0 after windowing
    synt = np.full((4, 4, 4), 60.0)              # -> 0.5
    a, b = gm.to_unit(real), gm.to_unit(synt)
    assert gm.mse(a, b) == pytest.approx(0.25)
    assert gm.psnr(a, b) == pytest.approx(10 * math.log10(1 / 0.25))
    assert gm.psnr(a, a) == math.inf
    assert gm.to_unit(np.array([-1000.0, 1000.0])).tolist() == [0.0, 1.0]   # clipped to the window


def test_msssim_scales_fit_the_patch_and_say_so():
    assert gm.msssim_setup((128, 128, 128)).kernel_size == 7 and len(gm.msssim_setup((128,) * 3).weights) == 5
    small = gm.msssim_setup((32, 32, 32))
    assert len(small.weights) == 3 and "reduced" in small.note and sum(small.weights) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    a = rng.random((32, 32, 32)).astype(np.float32)
    same, note = gm.ms_ssim_3d(a, a)
    assert same == pytest.approx(1.0, abs=1e-4) and "3 scale" in note
    noisy, _ = gm.ms_ssim_3d(a, np.clip(a + rng.normal(0, 0.3, a.shape), 0, 1).astype(np.float32))
    assert noisy < 0.9


class _TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv3d(1, 4, 3, padding=1)
        self.b = nn.Conv3d(4, 6, 3, padding=1, stride=2)

    def forward(self, x):
        fa = torch.relu(self.a(x))
        return [fa, torch.relu(self.b(fa))]


def test_lpips_equals_the_formula_with_a_random_feature_net():
    net = _TwoLayer().eval()
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(2, 1, 8, 8, 8, generator=g), torch.rand(2, 1, 8, 8, 8, generator=g)
    with torch.no_grad():
        got = lpips_3d(x, y, net)
        expected = torch.zeros(2)
        for fx, fy in zip(net(x), net(y), strict=True):
            nx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            ny = fy / (fy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            expected += ((nx - ny) ** 2).sum(1).flatten(1).mean(1)
        assert torch.allclose(got, expected, atol=1e-6)
        assert torch.allclose(lpips_3d(x, x, net), torch.zeros(2))
        assert (got > 0).all()


def test_lpips_from_a_medicalnet_layout_file(tmp_path):
    # A randomly initialised MedicalNet-layout ResNet-10 saved as MedicalNet does ({"state_dict": module.*}).
    net = medicalnet_resnet(10)
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}},
               tmp_path / "resnet_10_23dataset.pth")
    features = load_medicalnet_features(tmp_path)        # the folder is enough
    rng = np.random.default_rng(0)
    a = rng.random((16, 16, 16)).astype(np.float32)
    assert gm.lpips(a, a, features) == pytest.approx(0.0, abs=1e-6)
    assert gm.lpips(a, rng.random((16, 16, 16)).astype(np.float32), features) > 0


def test_missing_lpips_weights_name_the_file_and_the_source(tmp_path):
    with pytest.raises(MissingWeightsError) as err:
        load_medicalnet_features(tmp_path)
    message = str(err.value)
    assert "resnet_10_23dataset.pth" in message and "MedicalNet" in message and "--lpips-weights" in message
    with pytest.raises(MissingWeightsError):
        load_medicalnet_features(None)


def test_node_recall_synt_and_organ_dice():
    ln = np.zeros((10, 10, 10), np.uint8)
    ln[1:3, 1:3, 1:3] = 1
    ln[6:8, 6:8, 6:8] = 1
    pred = np.zeros_like(ln)
    pred[1:3, 1:3, 1:3] = 1
    assert gm.node_recall_synt({"a": pred, "b": ln}, {"a": ln, "b": ln}) == pytest.approx(3 / 4)
    other = np.zeros_like(ln)   # case b: one node, found; listed first, it is still scored against its own mask
    other[6:8, 6:8, 6:8] = 1
    assert gm.node_recall_synt({"b": other, "a": pred}, {"a": ln, "b": other}) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="other cases"):
        gm.node_recall_synt({"a": pred}, {"b": ln})
    labels = np.zeros((4, 4, 4), np.uint8)
    labels[:2] = 2
    guess = np.zeros_like(labels)
    guess[:1] = 2
    assert gm.organ_dice(guess, labels, [2, 5], ["liver", "spleen"]) == {"liver": pytest.approx(2 * 16 / 48)}
