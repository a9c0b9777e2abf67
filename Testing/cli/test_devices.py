"""One device vocabulary (`auto|cpu|cuda|cuda:N`) and its translation for torch, nnU-Net and TotalSegmentator."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from LNSynthLib import devices
from LNSynthLib.cli.main import EXIT_USER_ERROR, main
from LNSynthLib.devices import (
    DeviceError,
    autocast_dtype,
    nnunet_device,
    normalize_device,
    torch_device,
    totalseg_device,
)

NO_GPU = not torch.cuda.is_available()


@pytest.mark.parametrize("text,expected", [("auto", "auto"), ("CPU", "cpu"), ("cuda", "cuda"), ("cuda:1", "cuda:1"),
                                           ("gpu", "cuda"), ("gpu:2", "cuda:2"), (" cuda:03 ", "cuda:3")])
def test_normalize(text: str, expected: str) -> None:
    assert normalize_device(text) == expected


@pytest.mark.parametrize("text", ["tpu", "cpu:1", "auto:0", "cuda:x", "cuda:", ""])
def test_unknown_names_are_refused(text: str) -> None:
    with pytest.raises(DeviceError, match="unknown device") as info:
        normalize_device(text)
    assert "cuda:N" in info.value.fix


@pytest.mark.skipif(not NO_GPU, reason="needs a machine without a CUDA GPU")
def test_cpu_machine() -> None:
    assert torch_device("auto") == torch.device("cpu") and torch_device("cpu", local_rank=3).type == "cpu"
    assert nnunet_device("auto") == "cpu" and totalseg_device("auto") == "cpu"
    for resolve in (torch_device, nnunet_device, totalseg_device):
        with pytest.raises(DeviceError, match="no CUDA GPU") as info:
            resolve("cuda")
        assert info.value.fix == "use --device cpu or auto"


def test_gpu_names_for_each_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The translation on a (simulated) 2-GPU machine: the engines' own spellings."""
    monkeypatch.setattr(devices, "_cuda_count", lambda: 2)
    assert torch_device("auto", local_rank=1) == torch.device("cuda", 1)    # torchrun rank's GPU
    assert torch_device("cuda", local_rank=3) == torch.device("cuda", 1)
    assert torch_device("cuda:0", local_rank=1) == torch.device("cuda", 0)
    assert nnunet_device("auto") == nnunet_device("cuda:0") == "cuda"
    assert totalseg_device("auto") == "gpu" and totalseg_device("gpu:1") == "gpu:1"
    with pytest.raises(DeviceError, match="numbered 0..1"):
        torch_device("cuda:2")
    with pytest.raises(DeviceError, match="first visible GPU") as info:
        nnunet_device("cuda:1")
    assert "CUDA_VISIBLE_DEVICES=1" in info.value.fix


def test_autocast_follows_amp_and_device() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("auto", cuda) is torch.bfloat16
    assert autocast_dtype("bf16", cpu) is torch.bfloat16 and autocast_dtype("off", cuda) is None


def test_cli_device_option_is_validated(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["train", "--config", "tiny", "--cases", str(tmp_path), "--run-dir", str(tmp_path / "run"),
                 "--device", "tpu"])
    assert code == EXIT_USER_ERROR   # a usage error like every other bad argument (cli.arg_types)
    assert "'tpu' is not a device; use auto" in capsys.readouterr().err


@pytest.mark.skipif(not NO_GPU, reason="needs a machine without a CUDA GPU")
@pytest.mark.parametrize("command", ["train", "sample", "nnunet predict"])
def test_cli_cuda_without_gpu_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture, command: str) -> None:
    import numpy as np

    from LNSynthLib.volumes.geometry import Geometry, Volume
    from LNSynthLib.volumes.io import write_volume

    write_volume(Volume(np.zeros((4, 4, 4), np.float32), Geometry((1.0, 1.0, 1.0))), tmp_path / "ct.nii.gz")
    argv = {"train": ["train", "--config", "tiny", "--cases", str(tmp_path), "--run-dir", str(tmp_path / "run")],
            "sample": ["sample", "--checkpoint", str(tmp_path / "c.pt"), "--cases", str(tmp_path), "--out",
                       str(tmp_path / "out")],
            "nnunet predict": ["nnunet", "predict", "--model", str(tmp_path), "--ct", str(tmp_path / "ct.nii.gz"),
                               "--out", str(tmp_path / "seg.nii.gz")]}[command]
    code = main([*argv, "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR and "Traceback" not in err
    assert "--device cuda asks for a GPU, but PyTorch finds no CUDA GPU on this machine" in err
    assert "Fix: use --device cpu or auto" in err
