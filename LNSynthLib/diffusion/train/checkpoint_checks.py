"""What an LN-DDPM checkpoint must hold before anything uses it, and what training may never store.

`load_checkpoint` runs `check_checkpoint` on every file it reads: a crafted or damaged checkpoint
(a missing `config_yaml`, weights that do not fit its config, NaN/inf weights) is refused with the
project's error instead of a traceback, and `sample` never turns non-finite weights into all-NaN
CTs. Training stops on a non-finite loss (`check_finite_losses`) and `save_checkpoint` refuses
non-finite weights (`check_finite_weights`), so a diverged run never replaces its last good
checkpoint. A resumed run must use the settings its checkpoint was trained with
(`check_same_recipe`): the optimizer state restores the stored learning rate, so a changed
`train.lr` would otherwise be written into config.yaml but never used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from LNSynthLib.errors import ConfigError, InputDataError

CHECKPOINT_FIX = "the file is damaged or not written by `lnsynth train`; use another checkpoint or train again"
# What sampling needs; resuming needs the rest of what `lnsynth train` writes.
REQUIRED = {"step": int, "config_yaml": str, "model": dict, "ema": dict}
RESUME_REQUIRED = {"optimizer": dict, "data_rng": dict, "noise_rng": torch.Tensor, "rng": dict, "loss_history": list}
# Config keys a resumed run may change: how long, how often it logs/saves, compilation, and sampling.
# train.batch_size is per process: its rule is the global batch (`training._check_same_global_batch`).
RESUME_MAY_CHANGE = ("train.iterations", "train.log_every", "train.checkpoint_every", "train.compile",
                     "train.batch_size", "sample.")
DIVERGED_FIX = ("lower train.lr (e.g. --set train.lr=1e-4) and train in a new --run-dir; the run folder keeps its "
                "last finite checkpoint, if it has one")


def _refuse(problem: str, path: str | Path) -> InputDataError:
    return InputDataError(problem, path=path, fix=CHECKPOINT_FIX)


def _check_keys(payload: dict[str, Any], required: dict[str, type], path: str | Path) -> None:
    for key, kind in required.items():
        if key not in payload:
            raise _refuse(f"checkpoint lacks `{key}`", path)
        value = payload[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _refuse(f"checkpoint's `{key}` is a {type(value).__name__}, not a {kind.__name__}", path)


def non_finite_count(state: dict[str, Any]) -> int:
    """NaN/inf values among the floating-point tensors of a state dict."""
    return sum(int((~torch.isfinite(t)).sum()) for t in state.values()
               if isinstance(t, torch.Tensor) and t.is_floating_point())


def _check_weights(state: dict[str, Any], expected: dict[str, torch.Size] | None, key: str,
                   path: str | Path) -> None:
    """`state` holds tensors with the names and shapes of the config's denoiser, all finite."""
    wrong = [name for name, t in state.items() if not isinstance(t, torch.Tensor)]
    if wrong:
        raise _refuse(f"checkpoint's `{key}` holds {type(state[wrong[0]]).__name__} for {wrong[0]}, not a tensor",
                      path)
    if expected is not None:
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        other = [n for n in expected if n in state and tuple(state[n].shape) != tuple(expected[n])]
        if missing or extra or other:
            what = (f"lacks {missing[0]}" if missing else f"has {extra[0]}, unknown to" if extra else
                    f"has {other[0]} of shape {tuple(state[other[0]].shape)}, not {tuple(expected[other[0]])} in")
            raise _refuse(f"checkpoint's `{key}` weights do not fit its own config: it {what} the network "
                          f"({len(missing)} missing, {len(extra)} unknown, {len(other)} of another shape)", path)
    bad = non_finite_count(state)
    if bad:
        raise InputDataError(f"checkpoint's `{key}` weights hold {bad} NaN/infinite values (the training run "
                             "diverged); sampling from it would give NaN images", path=path, fix=DIVERGED_FIX)


def _expected_shapes(config: Any) -> dict[str, torch.Size] | None:  # noqa: ANN401 - LNDDPMConfig
    """Names and shapes of the config's denoiser, built on the meta device (no memory, no time)."""
    from LNSynthLib.diffusion.model.network import build_denoiser

    with torch.device("meta"):
        return {name: t.shape for name, t in build_denoiser(config).state_dict().items()}


def check_checkpoint(payload: dict[str, Any], path: str | Path) -> None:
    """Refuse a checkpoint that sampling or resuming could not use as it is (InputDataError naming `path`)."""
    import yaml

    from LNSynthLib.diffusion.config import config_from_dict, read_yaml

    _check_keys(payload, REQUIRED, path)
    if payload["step"] < 0:
        raise _refuse(f"checkpoint's step is {payload['step']}", path)
    try:
        config = config_from_dict(read_yaml(payload["config_yaml"]))
    except (yaml.YAMLError, ConfigError) as exc:
        problem = exc.problem if isinstance(exc, ConfigError) else " ".join(str(exc).split())[:200]
        raise _refuse(f"checkpoint's stored config is not a valid LN-DDPM config ({problem})", path) from None
    expected = _expected_shapes(config)
    for key in ("model", "ema"):
        _check_weights(payload[key], expected, key, path)


def check_resumable(payload: dict[str, Any], path: str | Path) -> None:
    """The parts only resuming reads (optimizer, random streams, loss history) are there."""
    _check_keys(payload, RESUME_REQUIRED, path)


def check_same_recipe(stored: Any, config: Any, path: str | Path) -> None:  # noqa: ANN401 - LNDDPMConfig
    """A resumed run trains with its checkpoint's settings; any other value (lr, betas, EMA, ...) is refused."""
    old, new = _flat(stored.to_dict()), _flat(config.to_dict())
    changed = [k for k in new if old.get(k) != new[k] and not k.startswith(RESUME_MAY_CHANGE)]
    if changed:
        shown = "; ".join(f"{k}: {old.get(k)!r} in the checkpoint, {new[k]!r} now" for k in changed[:3])
        raise InputDataError(f"the run folder's checkpoint was trained with other settings ({shown}); resuming "
                             "would mix two recipes in one run", path=path,
                             fix="resume with the checkpoint's settings (its config.yaml), or train the new "
                                 "settings in a new --run-dir")


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


def check_finite_losses(rows: list[tuple[int, float]]) -> None:
    """Stop training at the first NaN/inf loss: every later step and checkpoint would be garbage."""
    import math

    for step, loss in rows:
        if not math.isfinite(loss):
            raise ConfigError(f"training diverged: the loss is {loss} at step {step}; stopped without saving "
                              "this state", fix=DIVERGED_FIX)


def check_finite_weights(payload: dict[str, Any], path: str | Path) -> None:
    """Never write a checkpoint with NaN/inf weights (the previous one is kept)."""
    for key in ("model", "ema"):
        state = payload.get(key)
        bad = non_finite_count(state) if isinstance(state, dict) else 0
        if bad:
            raise ConfigError(f"training diverged: the `{key}` weights hold {bad} NaN/infinite values at step "
                              f"{payload.get('step')}; this checkpoint was not written", path=path,
                              fix=DIVERGED_FIX)
