"""PAPER.md states the one-line decisions the paper leaves open, and they are the code's values."""

from __future__ import annotations

import inspect
from pathlib import Path

from LNSynthLib.diffusion.config import load_config
from LNSynthLib.metrics.generation import msssim_setup
from LNSynthLib.report.paper000 import OUT_OF_SCOPE

PAPER_MD = Path(__file__).resolve().parents[2] / "LNSynthLib" / "diffusion" / "configs" / "PAPER.md"


def test_paper_md_decisions_match_the_code() -> None:
    text = PAPER_MD.read_text(encoding="utf-8")
    kernel = msssim_setup((128, 128, 128)).kernel_size
    assert f"**MS-SSIM window: {kernel} voxels**" in text
    net = load_config("paper").network
    heads, head_dim, width = net.transformer_heads, net.transformer_head_dim, net.channels[-2]
    assert f"chosen {heads} heads × {head_dim} = {heads * head_dim}** (" in text and f"against {width} channels" in text
    assert "**LPIPS layers: the stem and all four stages" in text
    from LNSynthLib.metrics.lpips3d import ResNetStages
    assert inspect.getsource(ResNetStages.forward).count("out.append") == 1   # stem, then each stage in a loop
    assert '**"Local attention" (Table 4c LA): AMBIGUOUS in 000**' in text
    assert all(name in text for name in OUT_OF_SCOPE) and "**Baselines out of scope:**" in text
    assert "| quality control of synthetic pairs | off (`PipelineSettings.paper().qc`)" in text
