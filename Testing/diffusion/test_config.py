"""LN-DDPM config validation at load time: every bad value stops `load_config` with a ConfigError."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from LNSynthLib.cli.main import EXIT_USER_ERROR, main
from LNSynthLib.diffusion import choices
from LNSynthLib.diffusion.config import CONFIG_DIR, load_config
from LNSynthLib.errors import ConfigError, InputDataError

REPO = Path(__file__).resolve().parents[2]

# The four values the issue found accepted by load_config and failing later in five validators.
BAD_VALUES = [
    ("train.amp", "fp16", "auto, bf16, off"),
    ("diffusion.loss", "huber", "l1, l2, mse"),
    ("sample.sampler", "euler", "ddpm, ddim, dpmpp, rflow"),
    ("diffusion.schedule", "sigmoid", "cosine, linear"),
]


@pytest.mark.parametrize("key,value,allowed", BAD_VALUES)
def test_cli_train_rejects_bad_enumerated_value(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                key: str, value: str, allowed: str) -> None:
    code = main(["train", "--config", "tiny", "--cases", str(tmp_path), "--run-dir", str(tmp_path / "run"),
                 "--set", f"{key}={value}"])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert err.startswith(f"lnsynth: error: {CONFIG_DIR / 'tiny.yaml'}: {key} = '{value}' is not allowed; "
                          f"allowed values: {allowed}")
    assert f"Fix: set {key} to one of {allowed}" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()   # stopped before any work


def test_cli_subprocess_prints_no_traceback(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "LNSynthLib", "train", "--config", "tiny", "--cases", str(tmp_path), "--run-dir",
                          str(tmp_path / "run"), "--set", "sample.sampler=euler"],
                         cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == EXIT_USER_ERROR, out.stderr
    assert "sample.sampler = 'euler' is not allowed; allowed values: ddpm, ddim, dpmpp, rflow" in out.stderr
    assert "Traceback" not in out.stderr


# Values that need a partner value to form a valid config (config_checks._check_process).
PARTNERS = {("diffusion.process", "rflow"): {"sample.sampler": "rflow"},
            ("sample.sampler", "rflow"): {"diffusion.process": "rflow"}}


def test_every_choice_table_is_checked() -> None:
    for key, allowed in choices.CONFIG_CHOICES.items():
        for value in allowed:
            assert load_config("tiny", {key: value, **PARTNERS.get((key, value), {})}).get(key) == value
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config("tiny", {key: "no-such-value"})


@pytest.mark.parametrize("key,value,expected", [
    ("train.batch_size", 0, r"train\.batch_size = 0 is out of range; it must be finite and >= 1"),
    ("train.lr", 0.0, r"train\.lr = 0\.0 is out of range; it must be finite and > 0"),
    ("train.lr", float("nan"), r"train\.lr = nan is out of range"),
    ("train.lr", float("inf"), r"train\.lr = inf is out of range"),
    ("diffusion.timesteps", 0, r"diffusion\.timesteps = 0 is out of range"),
    ("train.iterations", -5, r"train\.iterations = -5 is out of range"),
    ("train.patch_size", [32, 0, 32], r"train\.patch_size = \(32, 0, 32\) is out of range"),
    ("train.patch_size", [30, 32, 32], r"must be divisible by 4"),
    ("train.patch_size", [32, 32], r"expected a list of 3 numbers"),
    ("sample.steps", 0, r"sample\.steps = 0 is out of range"),
    ("sample.eta", 1.5, r"sample\.eta = 1\.5 is out of range; it must be finite and >= 0 and <= 1"),
    ("sample.samples_per_case", 0, r"sample\.samples_per_case = 0 is out of range"),
    ("train.ema_decay", 2, r"train\.ema_decay = 2\.0 is out of range"),
    ("train.ema_every", 0, r"train\.ema_every = 0 is out of range; it must be finite and >= 1"),
    ("train.ema_start", -1, r"train\.ema_start = -1 is out of range; it must be finite and >= 0"),
    ("train.ema_warmup", "no", r"train\.ema_warmup = 'no' has the wrong type; expected true or false"),
    ("train.batch_size", 2.5, r"train\.batch_size = 2\.5 has the wrong type; expected a whole number"),
    ("train.batch_size", True, r"has the wrong type; expected a whole number"),
    ("train.lr", "fast", r"train\.lr = 'fast' has the wrong type; expected a number"),
    ("train.compile", "yes", r"expected true or false"),
    ("sample.sampler", 3, r"sample\.sampler = 3 has the wrong type; expected a word"),
    ("network.norm_groups", 3, r"must all be multiples of network\.norm_groups = 3"),
    ("train.bogus", 1, r"unknown config key train\.bogus"),
])
def test_ranges_and_types(key: str, value: object, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        load_config("tiny", {key: value})
    assert info.value.path == CONFIG_DIR / "tiny.yaml" and info.value.fix


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  iterations: [1, 2\n  lr: 1e-3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid YAML") as info:
        load_config(bad)
    assert info.value.path == bad and "line" in str(info.value)


@pytest.mark.parametrize("text,expected", [
    ("just a string\n", "holds a str, not a mapping"),
    ("- 1\n- 2\n", "holds a list, not a mapping"),
    ("train: 5\n", "train must be a mapping"),
])
def test_yaml_that_is_not_a_mapping(tmp_path: Path, text: str, expected: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=expected):
        load_config(bad)


def test_yaml_off_and_ints_are_read_as_meant() -> None:
    from LNSynthLib.cli.train_command import parse_overrides

    config = load_config("tiny", parse_overrides(["train.amp=off", "train.lr=1", "train.patch_size=[16,16,16]"]))
    assert config.train.amp == "off" and config.train.lr == 1.0 and isinstance(config.train.lr, float)
    assert config.train.patch_size == (16, 16, 16)


def test_config_error_is_an_input_error_and_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="config not found") as info:
        load_config(tmp_path / "none.yaml")
    assert isinstance(info.value, ConfigError) and info.value.path == tmp_path / "none.yaml"


def test_bundled_configs_are_valid() -> None:
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        assert load_config(path).validate(path)
    from LNSynthLib.diffusion.choices import BUNDLED_CONFIGS

    assert tuple(sorted(BUNDLED_CONFIGS)) == tuple(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
