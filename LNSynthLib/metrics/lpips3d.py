"""3D LPIPS (paper 000 §4.4.1): distance between deep features of a 3D ResNet (MedicalNet).

LPIPS = Σ_layers mean_voxels ‖f̂_l(x) − f̂_l(y)‖², with f̂ the feature maps unit-normalised over
channels. 2D LPIPS learns per-channel weights on top; none exist for 3D MedicalNet, so all
channels weigh the same (as in MONAI's perceptual loss with MedicalNet). The weights are the
user's file: nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from LNSynthLib.errors import InputDataError, MissingWeightsError

MEDICALNET_FILES = {10: "resnet_10_23dataset.pth", 18: "resnet_18_23dataset.pth", 34: "resnet_34_23dataset.pth",
                    50: "resnet_50_23dataset.pth"}
MEDICALNET_SOURCE = ("MedicalNet's model zoo (https://github.com/Tencent/MedicalNet, 'pretrain' archive linked "
                     "from its README)")

FeatureNet = Callable[[torch.Tensor], Sequence[torch.Tensor]]


def _normalize(feature: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return feature / (torch.sqrt(torch.sum(feature * feature, dim=1, keepdim=True)) + eps)


def lpips_3d(x: torch.Tensor, y: torch.Tensor, features: FeatureNet) -> torch.Tensor:
    """LPIPS of each pair in the batch: `x`, `y` are (B, 1, D, H, W); returns (B,)."""
    total = torch.zeros(x.shape[0], dtype=torch.float32, device=x.device)
    for fx, fy in zip(features(x), features(y), strict=True):
        diff = (_normalize(fx) - _normalize(fy)) ** 2
        total = total + diff.sum(dim=1).mean(dim=tuple(range(1, diff.dim() - 1))).float()
    return total


class ResNetStages(nn.Module):
    """The feature maps after the stem and each of the four stages of a MONAI 3D ResNet."""

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.resnet = resnet

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        r = self.resnet
        x = r.act(r.bn1(r.conv1(x)))
        out = [x]
        if not r.no_max_pool:
            x = r.maxpool(x)
        for layer in (r.layer1, r.layer2, r.layer3, r.layer4):
            x = layer(x)
            out.append(x)
        return out


def medicalnet_resnet(depth: int = 10) -> nn.Module:
    """MONAI ResNet with MedicalNet's layout (shortcut type and downsample bias per depth)."""
    from monai.networks.nets import resnet
    from monai.networks.nets.resnet import get_medicalnet_pretrained_resnet_args

    if depth not in MEDICALNET_FILES:
        raise InputDataError(f"MedicalNet ResNet depth {depth} is not supported", fix="use 10, 18, 34 or 50")
    bias_downsample, shortcut_type = get_medicalnet_pretrained_resnet_args(depth)
    factory = getattr(resnet, f"resnet{depth}")
    return factory(spatial_dims=3, n_input_channels=1, feed_forward=False, shortcut_type=shortcut_type,
                   bias_downsample=bias_downsample)


def load_medicalnet_features(weights: str | Path | None, depth: int = 10, *, purpose: str = "LPIPS",
                             option: str = "--lpips-weights") -> ResNetStages:
    """Feature net for LPIPS or FID from a MedicalNet checkpoint file (or a folder holding it); loaded weights-only.

    `purpose` and `option` only word the error, so the user learns which metric needs the file and
    which option takes it.
    """
    expected = MEDICALNET_FILES.get(depth, f"resnet_{depth}_23dataset.pth")
    path = Path(weights) if weights is not None else None
    if path is not None and path.is_dir():
        path = path / expected
    if path is None or not path.is_file():
        raise MissingWeightsError(
            f"{purpose} needs the MedicalNet 3D ResNet-{depth} weights file {expected}", path=path,
            fix=f"download {expected} from {MEDICALNET_SOURCE} and pass its path with {option} "
                "(a file or the folder holding it); nothing is downloaded at run time")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else payload
    state = {k.removeprefix("module."): v for k, v in state.items()}
    net = medicalnet_resnet(depth)
    missing, unexpected = net.load_state_dict(state, strict=False)
    used = [k for k in net.state_dict() if k not in missing]
    if not used or any(k.startswith(("conv1", "layer1")) for k in missing):
        raise InputDataError(f"{path.name} does not hold a MedicalNet ResNet-{depth} "
                             f"({len(missing)} weights missing, {len(unexpected)} unexpected)", path=path,
                             fix=f"give {expected} from {MEDICALNET_SOURCE} (the ResNet-{depth} file)")
    return ResNetStages(net).eval()


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Per-volume zero mean / unit variance, the input MedicalNet was trained on."""
    dims = tuple(range(1, x.dim()))
    return (x - x.mean(dim=dims, keepdim=True)) / (x.std(dim=dims, keepdim=True) + 1e-6)
