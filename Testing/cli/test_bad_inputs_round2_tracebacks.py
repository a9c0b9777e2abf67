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

from .round2_inputs import CASES, anatomy_of, checkpoint, export, predict_ct, prepare_ct, rows, sample


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


HUGE_XYZ = (20000, 20000, 12000)   # int16: 8.7 TiB, more memory than any machine has


def _huge_nifti(tmp: Path, data: Path) -> None:
    """{t}/huge.nii: a complete NIfTI whose header says HUGE_XYZ int16 voxels, as a sparse file (the disk holds
    its header only)."""
    import nibabel
    import numpy as np

    header = nibabel.Nifti1Header()
    header.set_data_dtype(np.int16)
    header.set_data_shape(HUGE_XYZ)
    header.set_zooms((0.5, 0.5, 0.5))
    header.set_sform(np.diag([-0.5, -0.5, 0.5, 1.0]), code=1)
    header["vox_offset"] = 352
    with open(tmp / "huge.nii", "wb") as fh:
        fh.write(header.binaryblock + b"\0" * (352 - len(header.binaryblock)))
        fh.truncate(352 + 2 * HUGE_XYZ[0] * HUGE_XYZ[1] * HUGE_XYZ[2])


def _huge_nrrd_header(tmp: Path, data: Path) -> None:
    """{t}/huge.nhdr: a detached NRRD header of HUGE_XYZ voxels (a typo in `sizes`); its data file is small."""
    (tmp / "huge.raw").write_bytes(b"\0" * 64)
    (tmp / "huge.nhdr").write_text(
        "NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\n"
        f"sizes: {' '.join(map(str, HUGE_XYZ))}\nspace directions: (0.5,0,0) (0,0.5,0) (0,0,0.5)\n"
        "kinds: domain domain domain\nendian: little\nencoding: raw\nspace origin: (0,0,0)\ndata file: huge.raw\n")


def _train_set(*sets: str) -> list[str]:
    args = ["train", "--config", "tiny", "--cases", CASES, "--run-dir", "{t}/run"]
    for item in sets:
        args += ["--set", item]
    return args


def _config_breaking_the_network(payload: dict) -> None:
    payload["config_yaml"] = payload["config_yaml"].replace("transformer_resolution_divisor: 4",
                                                            "transformer_resolution_divisor: 3")


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
    ("train-set-not-yaml", _train_set("train.patch_size=[32,32"), ["train.patch_size"], "not valid YAML", None),
    # inputs too large for memory: refused from the header, with what they would need, before anything is read
    ("ct-too-large-for-memory", prepare_ct("{t}/huge.nii"), ["huge.nii"], "GiB to read", _huge_nifti),
    ("ct-too-large-for-memory-predict", predict_ct("{t}/huge.nii"), ["huge.nii"], "too large for the memory",
     _huge_nifti),
    ("ct-too-large-nrrd-header-anatomy", anatomy_of("{t}/huge.nhdr"), ["huge.nhdr", "20000 x 20000 x 12000"],
     "too large for the memory", _huge_nrrd_header),
    ("ln-too-large-for-memory", ["prepare", "--ct", "{d}/ct.nii.gz", "--ln", "{t}/huge.nii", "--out", "{t}/out",
                                 "--case-id", "c1", "--anatomy-source", "coarse"], ["huge.nii"],
     "too large for the memory", _huge_nifti),
    # config values that pass the type and range checks but not the network's rules: refused at load
    ("train-set-attention-not-a-level", _train_set("network.transformer_resolution_divisor=3"),
     ["network.transformer_resolution_divisor"], "not a level of the U-Net", None),
    ("train-set-one-level-unet", _train_set("network.channels=[8]"), ["network.transformer_resolution_divisor"],
     "not a level of the U-Net", None),
    ("train-set-head-dim-plain-attention", _train_set("network.variant=conditional", "network.transformer_head_dim=12"),
     ["network.transformer_head_dim"], "does not divide the 32 channels", None),
    ("train-set-anatomy-labels-2", _train_set("network.anatomy_labels=2"), ["network.anatomy_labels"],
     "fewer than the 14 labels", None),
    ("train-set-patch-not-divisible", _train_set("train.patch_size=[30,32,32]"), ["train.patch_size"],
     "must be divisible by 4", None),
    ("train-set-channels-0", _train_set("network.channels=[0,16,32]"), ["network.channels"], "out of range", None),
    ("sample-checkpoint-config-breaks-network", sample("{t}/ck.pt"), ["ck.pt", "network.transformer_resolution_divisor"],
     "not a level of the U-Net", checkpoint(_config_breaking_the_network)),
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


def test_memory_limit_of_the_process_counts(tmp_path: Path):
    """Under `ulimit -v` (an address-space limit, as a job scheduler sets) the memory check counts that limit,
    not the machine's free memory: a 4 GiB CT is refused there, with what it needs."""
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, resource.RLIM_INFINITY))\n"
            "from LNSynthLib.volumes.memory import available_memory, check_fits_in_memory\n"
            "assert available_memory() < 3 * 2**30, available_memory()\n"
            "check_fits_in_memory((1024, 1024, 2048), 2, sys.argv[1])\n")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ct.nii.gz")], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert res.returncode == 1 and "InputDataError" in res.stderr, res.stderr
    assert "1024 x 1024 x 2048 voxels of 2 bytes need 4.0 GiB to read" in res.stderr, res.stderr
