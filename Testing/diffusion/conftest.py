"""Shared fixtures of the LN-DDPM process tests: small phantom cases, a micro config, one short run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from LNSynthLib.diffusion.config import LNDDPMConfig, load_config

# A few seconds per step even on a busy 2-core machine: 16³ patches, batch 2.
MICRO = {"train.patch_size": [16, 16, 16], "train.batch_size": 2, "train.iterations": 4,
         "train.checkpoint_every": 2, "train.log_every": 1}
MICRO_STEPS = 4


REFERENCE_THREADS = 1   # the torch threads of `straight_run` (and of `one_thread`)


@pytest.fixture()
def one_thread():
    """Small 3D convolutions run fastest on one thread, and far faster when the cores are shared."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(REFERENCE_THREADS)
    yield
    torch.set_num_threads(before)


def micro_config(**extra: object) -> LNDDPMConfig:
    return load_config("tiny", {**MICRO, **extra})


def micro_cli_sets() -> list[str]:
    """The MICRO overrides as `--set` arguments for the CLI."""
    args: list[str] = []
    for key, value in MICRO.items():
        args += ["--set", f"{key}={value}"]
    return args


@pytest.fixture(scope="session")
def phantom_cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three small prepared phantom cases (48×64×64 voxels, 1 mm)."""
    from LNSynthLib.jobs.progress import PROGRESS_ENV
    from LNSynthLib.phantom import write_phantom_cases

    root = tmp_path_factory.mktemp("phantom_cases")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PROGRESS_ENV, "quiet")
        write_phantom_cases(root, 3, seed=0, shape_zyx=(48, 64, 64))
    return root


@pytest.fixture(scope="session")
def straight_run(phantom_cases: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkpoint of an uninterrupted MICRO_STEPS-step run (reference for resume and DDP tests).

    Trained on `REFERENCE_THREADS` torch threads: float sums over another number of threads differ in the
    last bits, and the resume tests compare exactly, so they continue on the same count (`one_thread`).
    """
    import torch

    from LNSynthLib.diffusion.train.training import train

    run_dir = tmp_path_factory.mktemp("straight_run")
    before = torch.get_num_threads()
    torch.set_num_threads(REFERENCE_THREADS)
    try:
        return train(micro_config(), phantom_cases, run_dir, device="cpu", progress=False)
    finally:
        torch.set_num_threads(before)


def ldcond_model(overrides: dict[str, object], seed: int = 1) -> torch.nn.Module:
    """A tiny LN-DDPM whose zero-initialised layers get random weights, so every branch contributes."""
    from LNSynthLib.diffusion.model.network import build_denoiser

    torch.manual_seed(0)
    model = build_denoiser(load_config("tiny", overrides))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def transformer_deltas(model: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
    """What each LDCond transformer added to its input during one forward of the whole network."""
    from LNSynthLib.diffusion.model.local_detail import LDCondTransformer

    deltas: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: deltas.append(out - inp[0]))
             for m in model.modules() if isinstance(m, LDCondTransformer)]
    with torch.no_grad():
        model(*args)
    for h in hooks:
        h.remove()
    return deltas
