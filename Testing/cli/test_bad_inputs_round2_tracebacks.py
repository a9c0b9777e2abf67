"""Bad-input table, round 2, class 7 (tracebacks before): argument types, crafted checkpoints, a malformed
qc.json, `serve --work` on a file, `--set` values that are not YAML, and a closed stdout.

Rows run the real `lnsynth` command in-process through `refused` (exit 2, `lnsynth: error:` naming the
file or option and the cause, a `Fix:`, no traceback, nothing changed on disk).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .round2_inputs import CASES, checkpoint, export, rows, sample


def _drop(key: str):
    return lambda payload: payload.pop(key)


def _set(key: str, value):
    return lambda payload: payload.__setitem__(key, value)


def _weights(edit):
    """Edit the EMA weights only (what `sample` loads by default)."""
    def apply(payload: dict) -> None:
        payload["ema"] = dict(payload["ema"])
        edit(payload["ema"])
    return apply


def _first(state: dict) -> str:
    return next(iter(state))


def _synthetic_folder(qc: object):
    """Setup: `{t}/synt` with one synthetic case per real case (copies of the prepared ones) and this qc.json."""
    def make(tmp: Path, data: Path) -> None:
        for case in ("case_a", "case_b"):
            target = tmp / "synt" / f"{case}_synt_0"
            shutil.copytree(data / "prepared" / case, target)
            meta = json.loads((target / "case.json").read_text())
            (target / "case.json").write_text(json.dumps({**meta, "synthetic": True, "source_case": case}))
        (tmp / "synt" / "qc.json").write_text(qc if isinstance(qc, str) else json.dumps(qc))
    return make


TABLE = [
    ("phantom-seed-negative", ["phantom", "--out", "{t}/ph", "--seed", "-1"], ["--seed"], "not a seed", None),
    ("phantom-seed-too-big", ["phantom", "--out", "{t}/ph", "--seed", str(2**40)], ["--seed"], "not a seed", None),
    ("sample-seed-negative", sample("{d}/a_file", "--seed", "-5"), ["--seed"], "not a seed", None),
    ("demo-seed-negative", ["demo", "--out", "{t}/demo", "--seed", "-1"], ["--seed"], "not a seed", None),
    ("export-dataset-id-0", export("--dataset-id", "0"), ["--dataset-id"], "dataset id", None),
    ("export-dataset-id-1000", export("--dataset-id", "1000"), ["--dataset-id"], "dataset id", None),
    ("sample-checkpoint-no-config", sample("{t}/ck.pt"), ["ck.pt"], "lacks `config_yaml`",
     checkpoint(_drop("config_yaml"))),
    ("sample-checkpoint-no-ema", sample("{t}/ck.pt"), ["ck.pt"], "lacks `ema`", checkpoint(_drop("ema"))),
    ("sample-checkpoint-config-not-yaml", sample("{t}/ck.pt"), ["ck.pt"], "not a valid LN-DDPM config",
     checkpoint(_set("config_yaml", "network: [unclosed"))),
    ("sample-checkpoint-config-unknown-key", sample("{t}/ck.pt"), ["ck.pt"], "not a valid LN-DDPM config",
     checkpoint(_set("config_yaml", "network:\n  wings: 2\n"))),
    ("sample-checkpoint-step-text", sample("{t}/ck.pt"), ["ck.pt"], "`step` is a str",
     checkpoint(_set("step", "three"))),
    ("sample-checkpoint-weight-missing", sample("{t}/ck.pt"), ["ck.pt"], "do not fit its own config",
     checkpoint(_weights(lambda s: s.pop(_first(s))))),
    ("sample-checkpoint-weight-other-shape", sample("{t}/ck.pt"), ["ck.pt"], "do not fit its own config",
     checkpoint(_weights(lambda s: s.__setitem__(_first(s), s[_first(s)].reshape(-1)[:3].clone())))),
    ("sample-checkpoint-weight-not-tensor", sample("{t}/ck.pt"), ["ck.pt"], "not a tensor",
     checkpoint(_weights(lambda s: s.__setitem__(_first(s), [1.0, 2.0])))),
    ("export-qc-verdict-not-object", export("--synthetic", "{t}/synt"), ["qc.json"], "passed: true|false",
     _synthetic_folder({"samples": {"case_a_synt_0": True}})),
    ("export-qc-passed-text", export("--synthetic", "{t}/synt"), ["qc.json"], "passed: true|false",
     _synthetic_folder({"samples": {"case_a_synt_0": {"passed": "yes"}}})),
    ("export-qc-not-json", export("--synthetic", "{t}/synt"), ["qc.json"], "cannot be read",
     _synthetic_folder('{"samples": {')),
    ("serve-work-is-a-file", ["serve", "--work", "{d}/a_file"], ["--work", "a_file"], "is a file", None),
    ("train-set-not-yaml", ["train", "--config", "tiny", "--cases", CASES, "--run-dir", "{t}/run", "--set",
                            "train.patch_size=[32,32"], ["train.patch_size"], "not valid YAML", None),
]


@pytest.mark.parametrize(("args", "names", "why", "setup"), rows(TABLE))
@pytest.mark.timeout(60)
def test_bad_input_is_refused(refused, bad_data: Path, tmp_path: Path, args, names, why, setup):
    if setup is not None:
        setup(tmp_path, bad_data)
    refused(args, names, why)


@pytest.mark.parametrize("stdout", ["closed", "reader-gone"])
def test_job_finishes_when_stdout_is_closed(tmp_path: Path, stdout: str):
    """`lnsynth phantom ... >&-` and `... | head -c 1`: the cases are written and the exit code is 0."""
    out = tmp_path / "ph"
    args = [sys.executable, "-m", "LNSynthLib", "phantom", "--out", str(out), "--cases", "2", "--shape", "48", "64",
            "64"]
    env = {**os.environ, "LNSYNTH_PROGRESS": "json"}
    if stdout == "closed":
        proc = subprocess.Popen(args, stdout=None, stderr=subprocess.PIPE, text=True, env=env,
                                preexec_fn=lambda: os.close(1))
    else:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        proc.stdout.read(1)
        proc.stdout.close()   # the reader stops after one character, as `head -c 1` does
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert sorted(p.name for p in out.iterdir()) == ["phantom_000", "phantom_001"]
