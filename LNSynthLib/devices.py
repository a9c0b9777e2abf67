"""Which device a job runs on: one vocabulary (`auto`, `cpu`, `cuda`, `cuda:N`) for every command.

Each engine wants its own spelling, translated here and nowhere else: a torch device for
LN-DDPM (`cuda` picks the torchrun rank's GPU), `cuda`/`cpu` for nnU-Net, `gpu`/`gpu:N`/`cpu`
for TotalSegmentator; the autocast dtype follows the device. torch is imported inside the
functions, so the Slicer panel can import `DEVICE_CHOICES` for its combo box.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from LNSynthLib.errors import LNSynthError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")   # plus cuda:N; `gpu` is read as `cuda` (former TotalSegmentator word)
DEVICE_HELP = "auto (the GPU when there is one, else the CPU), cpu, cuda or cuda:N"
_DEVICE = re.compile(r"^(auto|cpu|cuda|gpu)(?::(\d+))?$")


class DeviceError(LNSynthError):
    """A device name that is not `auto|cpu|cuda|cuda:N`, or a GPU asked for where there is none."""


def normalize_device(name: str) -> str:
    """`auto`, `cpu`, `cuda` or `cuda:N` from what a user typed (`GPU`, `gpu:1` are accepted too)."""
    match = _DEVICE.match(str(name).strip().lower())
    if not match or (match.group(2) is not None and match.group(1) in ("auto", "cpu")):
        raise DeviceError(f"unknown device {name!r}", fix=f"use --device {DEVICE_HELP}")
    kind = "cuda" if match.group(1) == "gpu" else match.group(1)
    return kind if match.group(2) is None else f"{kind}:{int(match.group(2))}"


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _check_gpu(name: str) -> None:
    count = _cuda_count()
    if count == 0:
        raise DeviceError(f"--device {name} asks for a GPU, but PyTorch finds no CUDA GPU on this machine",
                          fix="use --device cpu or auto")
    index = int(name.split(":")[1]) if ":" in name else 0
    if index >= count:
        raise DeviceError(f"--device {name}: this machine has {count} CUDA GPU(s), numbered 0..{count - 1}",
                          fix=f"use --device cuda:0 .. cuda:{count - 1}, cpu or auto")


def torch_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """The torch device of this process; `auto`/`cuda` take the torchrun rank's GPU (`local_rank`)."""
    import torch

    name = normalize_device(name)
    if name == "cpu" or (name == "auto" and _cuda_count() == 0):
        return torch.device("cpu")
    if name != "auto":
        _check_gpu(name)
    if ":" in name:
        return torch.device(name)
    return torch.device("cuda", local_rank % _cuda_count())


def _engine_device(name: str) -> str:
    """`cpu` or a checked `cuda`/`cuda:N` for an engine that is not torchrun-aware (auto: GPU 0 if any)."""
    name = normalize_device(name)
    if name == "auto":
        return "cuda" if _cuda_count() else "cpu"
    if name != "cpu":
        _check_gpu(name)
    return name


def nnunet_device(name: str = "auto") -> str:
    """nnU-Net's `-device` value: `cuda` or `cpu` (nnU-Net always uses the first visible GPU)."""
    name = _engine_device(name)
    if name not in ("cpu", "cuda", "cuda:0"):
        raise DeviceError(f"--device {name}: nnU-Net runs on the first visible GPU only",
                          fix=f"use --device cuda and choose the GPU with CUDA_VISIBLE_DEVICES={name.split(':')[1]}")
    return "cpu" if name == "cpu" else "cuda"


def totalseg_device(name: str = "auto") -> str:
    """TotalSegmentator's device value: `gpu`, `gpu:N` or `cpu`."""
    return _engine_device(name).replace("cuda", "gpu")


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on GPUs (`auto`), on any device (`bf16`), or none (`off`); `amp` is `train.amp`."""
    import torch

    if amp == "bf16" or (amp == "auto" and device.type == "cuda"):
        return torch.bfloat16
    if amp not in ("auto", "off"):   # configs are checked at load (config_checks); this guards direct calls
        raise ValueError(f"train.amp must be auto, bf16 or off, got {amp!r}")
    return None
