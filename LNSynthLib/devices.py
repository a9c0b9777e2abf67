"""Which device a job runs on: one vocabulary (`auto`, `cpu`, `cuda`, `cuda:N`) for every command;
and how many CPU threads a job process uses (`job_threads`, `apply_job_threads`).

Each engine wants its own spelling, translated here and nowhere else: a torch device for
LN-DDPM (`cuda` picks the torchrun rank's GPU), `cuda`/`cpu` for nnU-Net, `gpu`/`gpu:N`/`cpu`
for TotalSegmentator; the autocast dtype follows the device. torch is imported inside the
functions, so the Slicer panel can import `DEVICE_CHOICES` for its combo box.
"""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING

from LNSynthLib.errors import LNSynthError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")   # plus cuda:N; `gpu` is read as `cuda` (former TotalSegmentator word)
DEVICE_HELP = "auto (the GPU when there is one, else the CPU), cpu, cuda or cuda:N"
THREADS_ENV = "LNSYNTH_THREADS"                 # torch/OpenMP threads of a job process (unset: `job_threads`)
NNUNET_THREADS_ENV = "LNSYNTH_NNUNET_THREADS"   # the same for a CPU nnU-Net training (unset: `job_threads`)
RULE_MARK = "LNSYNTH_OMP_THREADS_BY_RULE"       # the OMP_NUM_THREADS that `apply_job_threads` set, not a user
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


def job_threads(env: str = THREADS_ENV) -> int:
    """Torch threads for a job process: `env` (or the user's OMP_NUM_THREADS) if set, else the free cores.

    Measured (`lnsynth bench threads`, AMD EPYC, 2 cores): on a loaded machine two OpenMP threads that spin
    at every barrier ran a tiny denoiser 2.8-4.6x slower than one thread (a descheduled thread stalls the
    other); with passive waiting two threads were within the noise of one. So a job takes the cores that
    the 1-minute load average leaves free (at least one), and waits passively (`apply_job_threads`).
    """
    text = os.environ.get(env, "").strip()
    if text:
        try:
            return max(1, int(text))
        except ValueError:
            raise DeviceError(f"{env}={text!r} is not a number of threads", fix=f"set {env} to e.g. 1, or unset it") \
                from None
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and omp != os.environ.get(RULE_MARK):   # the user's own OpenMP setting
        return max(1, int(omp))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):   # no load average (Windows): assume an idle machine
        load = 0.0
    return max(1, min(cores, int(cores - load + 0.5)))


def apply_job_threads(env: str = THREADS_ENV) -> int:
    """Set this job process's thread count (`job_threads`) and an OpenMP waiting that yields the core.

    OpenMP reads its variables once, when torch first loads it: set before that import they rule every
    pool (OpenMP, MKL). Threads that sleep at a barrier (`PASSIVE`) instead of spinning leave a shared core
    to whoever needs it. A value the user set is kept; one this rule set (`RULE_MARK`) is decided anew by a
    child job, whose machine load is its own. After torch's import only torch's own count can change.
    """
    threads = job_threads(env)
    if os.environ.get("OMP_NUM_THREADS", "").strip() in ("", os.environ.get(RULE_MARK)):
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = os.environ[RULE_MARK] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    return threads
