"""Bad-input table, part 3: inputs that look valid, crafted files, paths that point elsewhere, dead streams.

Rows run the real `lnsynth` command in-process through `refused` (exit 2, `lnsynth: error:` naming
the file or option and the cause, a `Fix:`, no traceback, nothing changed on disk); setups write
real files (NIfTI, checkpoints, qc.json) into the row's folder. Inputs that must be *accepted*
(a flipped but identical prediction, a plain `.nii` named `.nii.gz`, `1e-4` in YAML) and outputs
that must survive (`--overwrite` next to a user's folder, a closed stdout) have their own tests.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CT, CASES = "{d}/ct.nii.gz", "{d}/prepared"
SPACING_MM = 5.0


def sample(checkpoint: str, *extra: str) -> list[str]:
    return ["sample", "--checkpoint", checkpoint, "--cases", CASES, "--out", "{t}/synt", "--device", "cpu", *extra]


def export(*extra: str, out: str = "{t}/proj") -> list[str]:
    return ["nnunet", "export", "--cases", CASES, "--out", out, *extra]


def evaluate(pred: str = "{t}/pred") -> list[str]:
    return ["evaluate", "--out", "{t}/report", "--labels", "{t}/labels", "--pred", f"Real|-={pred}", "--device", "cpu"]


# --- real files the setups write ------------------------------------------------------------------------------

def _label_and_prediction(tmp: Path, *, origin=(0.0, 0.0, 0.0), spacing=(SPACING_MM,) * 3,
                          flip_x: bool = False, transpose_xy: bool = False) -> None:
    """labels/c1.nii.gz and pred/c1.nii.gz: the same nodes, the prediction on the grid given."""
    from LNSynthLib.volumes.geometry import Geometry, Volume
    from LNSynthLib.volumes.io import write_volume

    ln = np.zeros((16, 20, 24), np.uint8)
    ln[4:8, 5:9, 3:8] = 1
    ln[10:13, 12:15, 15:19] = 1
    write_volume(Volume(ln, Geometry((SPACING_MM,) * 3)), tmp / "labels" / "c1.nii.gz")
    pred, direction = ln, (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)
    if flip_x:   # the same voxels stored right-to-left: x runs backwards from the far end
        pred = ln[:, :, ::-1]
        origin = ((ln.shape[2] - 1) * SPACING_MM, 0.0, 0.0)
        direction = (-1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)
    if transpose_xy:   # the same voxels with x and y swapped in the array
        pred = np.ascontiguousarray(ln.transpose(0, 2, 1))
        direction = (0, 1.0, 0, 1.0, 0, 0, 0, 0, 1.0)
    write_volume(Volume(np.ascontiguousarray(pred), Geometry(spacing, origin, direction)), tmp / "pred" / "c1.nii.gz")


def prediction(**grid):
    return lambda tmp, data: _label_and_prediction(tmp, **grid)


@functools.lru_cache(maxsize=1)
def _tiny_payload() -> dict:
    """What `lnsynth train` stores for the tiny config (fresh weights): the base every crafted checkpoint edits."""
    import torch

    from LNSynthLib.diffusion.config import load_config, save_config
    from LNSynthLib.diffusion.model.network import build_denoiser

    config = load_config("tiny")
    torch.manual_seed(0)
    weights = build_denoiser(config).state_dict()
    return {"step": 3, "config_yaml": save_config(config), "model": weights, "ema": weights}


def checkpoint(edit):
    """Setup: `{t}/ck.pt`, an LNSynth-format checkpoint after `edit(payload)` (written with torch.save, as an
    attacker or a damaged copy would, not through `save_checkpoint`)."""
    def make(tmp: Path, data: Path) -> None:
        import copy

        import torch

        from LNSynthLib.diffusion.train.checkpoint import FORMAT

        payload = copy.deepcopy(_tiny_payload())
        edit(payload)
        torch.save({"format": FORMAT, **payload}, tmp / "ck.pt")
    return make


def _poison(key: str, value: float):
    def edit(payload: dict) -> None:
        name = next(n for n, t in payload[key].items() if t.is_floating_point() and t.numel() > 10)
        payload[key][name].view(-1)[:7] = value
    return edit


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


def _user_dataset(tmp: Path, data: Path) -> None:
    """A folder of the user's where the export would go: `--overwrite` must not remove it."""
    folder = tmp / "proj" / "nnUNet_raw" / "Dataset501_Real"
    folder.mkdir(parents=True)
    (folder / "dataset.json").write_text("{}")
    (folder / "my_notes.txt").write_text("three weeks of annotations")


def _ct_copy(link: str | None = None):
    """Setup: `{t}/ct.nii.gz` (a valid CT), and `{t}/<link>` pointing at it."""
    def make(tmp: Path, data: Path) -> None:
        shutil.copy(data / "ct.nii.gz", tmp / "ct.nii.gz")
        if link:
            (tmp / link).symlink_to(tmp / "ct.nii.gz")
    return make


def _plain_nii(data: Path, target: Path, keep: float = 1.0) -> Path:
    """The bad_data CT as an uncompressed NIfTI under `target`'s name (`keep`: the fraction of its bytes kept)."""
    raw = gzip.decompress((data / "ct.nii.gz").read_bytes())
    target.write_bytes(raw[:int(len(raw) * keep)])
    return target


def _oblique_prediction(tmp: Path, data: Path) -> None:
    """The prediction on a grid rotated by 30 degrees: no axis permutation maps it onto the labels."""
    _label_and_prediction(tmp)
    from LNSynthLib.volumes.geometry import Geometry, Volume
    from LNSynthLib.volumes.io import read_volume, write_volume

    pred = read_volume(tmp / "pred" / "c1.nii.gz")
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    write_volume(Volume(pred.array, Geometry(pred.geometry.spacing, (0.0, 0.0, 0.0), (c, -s, 0, s, c, 0, 0, 0, 1))),
                 tmp / "pred" / "c1.nii.gz", overwrite=True)


# (id, argv, names that must appear, cause that must appear, setup(tmp_path) or None)
CASES_TABLE = [
    # class 4, results that look fine: evaluate scores only predictions on the label's grid
    ("evaluate-pred-50mm-away", evaluate(), ["pred/c1.nii.gz"], "origin", prediction(origin=(50.0, 0.0, 0.0))),
    ("evaluate-pred-half-voxel-away", evaluate(), ["pred/c1.nii.gz"], "origin", prediction(origin=(0.0, 2.5, 0.0))),
    ("evaluate-pred-other-spacing", evaluate(), ["pred/c1.nii.gz"], "spacing", prediction(spacing=(4.0, 5.0, 5.0))),
    ("evaluate-pred-oblique", evaluate(), ["pred/c1.nii.gz"], "direction", _oblique_prediction),
    # class 4: a checkpoint whose weights went NaN/inf (a diverged run) is never sampled from
    ("sample-checkpoint-nan-ema", sample("{t}/ck.pt"), ["ck.pt"], "NaN/infinite", checkpoint(_poison("ema", np.nan))),
    ("sample-checkpoint-inf-model", sample("{t}/ck.pt", "--raw-weights"), ["ck.pt"], "NaN/infinite",
     checkpoint(_poison("model", np.inf))),
    # class 5, paths and overwrite: names are names; an output never equals an input; marked folders only
    ("export-name-traversal", export("--name", "x/../../../victim"), ["--name", "victim"], "plain folder name",
     None),
    ("export-name-absolute", export("--name", "/tmp/victim"), ["--name"], "plain folder name", None),
    ("export-name-dotdot", export("--name", ".."), ["--name"], "plain folder name", None),
    ("export-overwrite-user-folder", export("--overwrite"), ["Dataset501_Real"], "not written by LNSynth",
     _user_dataset),
    ("export-out-is-cases", export(out=CASES), ["--out", "--cases"], "is also the input", None),
    ("predict-out-is-ct", ["nnunet", "predict", "--model", CASES, "--ct", "{t}/ct.nii.gz", "--out", "{t}/ct.nii.gz",
                           "--overwrite", "--device", "cpu"], ["--out", "--ct"], "is also the input", _ct_copy()),
    ("predict-out-links-to-ct", ["nnunet", "predict", "--model", CASES, "--ct", "{t}/ct.nii.gz", "--out",
                                 "{t}/link.nii.gz", "--overwrite", "--device", "cpu"], ["--out"], "is also the input",
     _ct_copy("link.nii.gz")),
    ("anatomy-out-is-ct", ["anatomy", "--ct", "{t}/ct.nii.gz", "--out", "{t}/ct.nii.gz", "--overwrite", "--method",
                           "coarse"], ["--out", "--ct"], "is also the input", _ct_copy()),
    ("prepare-out-is-dicom-folder", ["prepare", "--ct", "{d}/dicom_ok", "--ln", "{d}/ln.nii.gz", "--out",
                                     "{d}/dicom_ok", "--case-id", "c1"], ["--out", "--ct"], "is also the input", None),
    # class 7, tracebacks before: argument types, crafted checkpoints, malformed qc.json, serve --work
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
    # class 8, clean but misleading before: a truncated plain .nii named .nii.gz is still called truncated
    ("ct-plain-nii-named-gz-truncated", ["prepare", "--ct", "{t}/plain.nii.gz", "--ln", "{d}/ln.nii.gz", "--out",
                                         "{t}/out", "--case-id", "c1", "--anatomy-source", "coarse"],
     ["plain.nii.gz"], "truncated", lambda tmp, data: _plain_nii(data, tmp / "plain.nii.gz", keep=0.6)),
    ("train-set-not-yaml", ["train", "--config", "tiny", "--cases", CASES, "--run-dir", "{t}/run", "--set",
                            "train.patch_size=[32,32"], ["train.patch_size"], "not valid YAML", None),
]


@pytest.mark.parametrize(("args", "names", "why", "setup"),
                         [pytest.param(*case[1:], id=case[0]) for case in CASES_TABLE])
@pytest.mark.timeout(60)
def test_bad_input_is_refused(refused, bad_data: Path, tmp_path: Path, args, names, why, setup):
    if setup is not None:
        setup(tmp_path, bad_data)
    refused(args, names, why)


# --- what must be accepted, kept or finished --------------------------------------------------------------------

@pytest.mark.parametrize("grid", [{"flip_x": True}, {"transpose_xy": True}], ids=["flipped-x", "x-y-swapped"])
def test_prediction_of_the_same_voxels_in_another_order_scores_as_itself(tmp_path: Path, grid: dict):
    """Physically identical to the labels, stored in another axis order/direction: DSC 1.0 (it was 0.0)."""
    from LNSynthLib.report.report import evaluate_predictions
    from LNSynthLib.volumes.io import read_volume

    _label_and_prediction(tmp_path, **grid)
    assert read_volume(tmp_path / "pred" / "c1.nii.gz").array.tobytes() != \
        read_volume(tmp_path / "labels" / "c1.nii.gz").array.tobytes()   # the stored arrays do differ
    per_case, summary = evaluate_predictions(tmp_path / "labels", tmp_path / "pred")
    assert per_case["c1"]["DSC"] == pytest.approx(1.0) and summary["NodeRecall"] == pytest.approx(1.0)


def test_plain_nii_named_nii_gz_is_read(bad_data: Path, tmp_path: Path, capsys):
    """ITK reads an uncompressed NIfTI whatever its name; it was refused as "truncated"."""
    from LNSynthLib.cli.main import main

    ct = _plain_nii(bad_data, tmp_path / "ct_plain.nii.gz")
    code = main(["prepare", "--ct", str(ct), "--ln", str(bad_data / "ln.nii.gz"), "--out", str(tmp_path / "out"),
                 "--case-id", "c1", "--anatomy-source", "coarse"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "c1" / "case.json").is_file()


def _without_file_permission_override() -> None:
    """preexec_fn: as root, give up the capabilities that read any file (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH),
    so file permissions apply to the command as they do to a user."""
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):   # PR_CAPBSET_DROP: gone from the bounding set, so from the exec'd program too
        if libc.prctl(24, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_unreadable_file_is_not_called_missing(bad_data: Path, tmp_path: Path):
    """A CT without read permission: "cannot be read (Permission denied)", not ITK's "file doesn't exist"."""
    ct, ln = tmp_path / "ct.nii.gz", tmp_path / "ln.nii.gz"
    shutil.copy(bad_data / "ct.nii.gz", ct)
    shutil.copy(bad_data / "ln.nii.gz", ln)
    ct.chmod(0o000)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "LNSYNTH_PROGRESS": "quiet"}
    res = subprocess.run([sys.executable, "-m", "LNSynthLib", "prepare", "--ct", str(ct), "--ln", str(ln),
                          "--out", str(tmp_path / "out"), "--case-id", "c1", "--anatomy-source", "coarse"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
                         preexec_fn=_without_file_permission_override)
    ct.chmod(0o644)
    assert res.returncode == 2, res.stderr
    assert "cannot be read (Permission denied)" in res.stderr and "Fix:" in res.stderr, res.stderr
    assert "not found" not in res.stderr and "t exist" not in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists()


def test_overwrite_replaces_a_dataset_the_export_wrote(bad_data: Path, tmp_path: Path, capsys):
    """The marker rule refuses only foreign folders: a second export with --overwrite replaces the first."""
    from LNSynthLib.atomic import OUTPUT_MARKER
    from LNSynthLib.cli.main import main

    base = ["nnunet", "export", "--cases", str(bad_data / "prepared"), "--out", str(tmp_path / "proj")]
    assert main(base) == 0, capsys.readouterr().err
    dataset = tmp_path / "proj" / "nnUNet_raw" / "Dataset501_Real"
    assert (dataset / OUTPUT_MARKER).is_file()
    assert main([*base, "--train-margin-mm", "30"]) == 2   # other settings: refused without --overwrite
    assert main([*base, "--train-margin-mm", "30", "--overwrite"]) == 0, capsys.readouterr().err
    manifest = json.loads((dataset / "lnsynth_export.json").read_text())
    assert manifest["settings"]["train_margin_mm"] == 30.0


def test_generated_case_never_replaces_a_users_folder(bad_data: Path, tmp_path: Path):
    """`sample --overwrite` and copy-paste write through `write_case_folder`: an unmarked folder stays."""
    from LNSynthLib.cases import load_case, write_case_folder
    from LNSynthLib.errors import OutputExistsError

    case = load_case(bad_data / "prepared" / "case_a")
    mine = tmp_path / "case_a_synt_0"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="not written by LNSynth"):
        write_case_folder(case, mine, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["case_a_synt_0"] and (mine / "notes.txt").read_text() == "mine"
    ours = tmp_path / "case_a_synt_1"
    write_case_folder(case, ours, overwrite=False)
    write_case_folder(case, ours, overwrite=True)    # its own output: replaced
    assert load_case(ours).ct.shape == case.ct.shape


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


def test_yaml_exponent_without_a_dot_is_a_number(tmp_path: Path):
    """YAML 1.1 reads `1e-4` as a string: config files, --set values and a checkpoint's config accept it."""
    from LNSynthLib.cli.train_command import parse_overrides
    from LNSynthLib.diffusion.config import load_config, read_yaml

    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ntrain:\n  lr: 1e-4\n  betas: [0.9, 999e-3]\n  ema_decay: 9.95E-1\n")
    config = load_config(path)
    assert (config.train.lr, config.train.betas, config.train.ema_decay) == (1e-4, (0.9, 0.999), 0.995)
    assert load_config("tiny", parse_overrides(["train.lr=2e-5"])).train.lr == 2e-5
    assert read_yaml("a: '1e-4'\nb: e5\nc: 1_000\n") == {"a": "1e-4", "b": "e5", "c": 1000}   # strings stay strings
