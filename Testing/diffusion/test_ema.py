"""EMA cadence: the `paper` config's Medical Diffusion schedule and `tiny`'s every-step warm-up, by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from LNSynthLib.diffusion.config import load_config
from LNSynthLib.diffusion.train.ema import BLEND, COPY, EMA


def _scalar_model(value: float) -> nn.Module:
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(value)
    return model


def _run(ema: EMA, model: nn.Module, raw_weights: list[float]) -> list[float]:
    """Set the raw weight to raw_weights[n-1] as optimizer step n would, update the EMA, record it."""
    seen = []
    for step, value in enumerate(raw_weights, start=1):
        with torch.no_grad():
            model.weight.fill_(value)
        ema.update(model, step)
        seen.append(float(ema.model.weight))
    return seen


def test_medical_diffusion_cadence_copies_then_blends_every_nth_step() -> None:
    # every 2 steps from (0-based) step 4, decay 0.5: touches after steps 1, 3, 5, 7;
    # 1 and 3 copy the raw weight, 5 and 7 blend: 0.5*3 + 0.5*5 = 4, 0.5*4 + 0.5*7 = 5.5
    model = _scalar_model(0.0)
    ema = EMA(model, decay=0.5, warmup=False, every=2, start=4)
    assert _run(ema, model, [1, 2, 3, 4, 5, 6, 7]) == [1.0, 1.0, 3.0, 3.0, 4.0, 4.0, 5.5]


def test_tiny_cadence_blends_every_step_with_warm_up() -> None:
    # warm-up decay (1+n)/(10+n): n=1 -> 2/11, n=2 -> 3/12; start weight 0, raw weights 1, 2
    model = _scalar_model(0.0)
    tiny = load_config("tiny").train
    ema = EMA(model, tiny.ema_decay, warmup=tiny.ema_warmup, every=tiny.ema_every, start=tiny.ema_start)
    first = (1 - 2 / 11) * 1.0
    second = 3 / 12 * first + (1 - 3 / 12) * 2.0
    assert _run(ema, model, [1, 2]) == pytest.approx([first, second], rel=1e-6)
    assert ema.current_decay(1789) < 0.995 and ema.current_decay(1790) == 0.995


def test_paper_config_uses_medical_diffusion_trainer_cadence() -> None:
    train = load_config("paper").train
    assert (train.ema_decay, train.ema_every, train.ema_start, train.ema_warmup) == (0.995, 10, 2000, False)
    ema = EMA(_scalar_model(0.0), train.ema_decay, warmup=train.ema_warmup, every=train.ema_every,
              start=train.ema_start)
    # Medical Diffusion: after optimizer step n its counter is n-1; touched when (n-1) % 10 == 0, copies below 2000
    assert [ema.action(n) for n in (1, 2, 10, 11, 1991, 2000, 2001, 2002, 2011)] == \
        [COPY, None, None, COPY, COPY, None, BLEND, None, BLEND]
    assert ema.current_decay(2001) == 0.995


def test_paper_is_fp32_and_paper_bf16_differs_only_in_precision() -> None:
    paper, bf16 = load_config("paper").to_dict(), load_config("paper-bf16").to_dict()
    assert paper["train"]["amp"] == "off" and bf16["train"]["amp"] == "auto"
    paper["train"].pop("amp"), bf16["train"].pop("amp"), paper.pop("name"), bf16.pop("name")
    assert paper == bf16


def test_paper_md_has_a_row_for_every_paper_config_value() -> None:
    """configs/PAPER.md compares each `paper` value with its source; a new config key needs its row."""
    from LNSynthLib.diffusion.config import CONFIG_DIR

    table = (CONFIG_DIR / "PAPER.md").read_text(encoding="utf-8")
    config = load_config("paper").to_dict()
    keys = [f"{section}.{key}" for section, values in config.items() if isinstance(values, dict) for key in values]
    assert len(keys) > 30
    missing = [key for key in keys if f"| `{key}` |" not in table]
    assert not missing, missing
