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


# === Round 2, classes 1, 2, 3 and 6 ============================================================================
# Class 3, plausible but wrong CTs: the physics a radiologist checks (HU of air, fat and soft tissue; body size;
# one DICOM series per folder). Class 2, matched by content: synthetic cases to their source case, test cases to
# training cases by their source CT. Class 1, stale state: an export rerun is the same export only when every
# input's content matches. Class 6: temporary names no lister picks up, removed by the next run; a lock per
# output folder.

def _body_ct(shape: tuple[int, int, int] = (32, 32, 32)) -> np.ndarray:
    """The bad_data CT (conftest): air around a box of fat holding soft tissue and a bone block."""
    ct = np.full(shape, -1000, np.int16)
    ct[2:30, 3:29, 3:29] = -100
    ct[8:24, 8:20, 8:20] = 40
    ct[4:28, 22:26, 14:18] = 700
    return ct


def _noisy_ct(shape: tuple[int, int, int] = (32, 32, 32)) -> np.ndarray:
    """The body CT with CT noise (sigma 8 HU), as a scanner writes it."""
    noise = np.random.default_rng(0).normal(0.0, 8.0, shape)
    return np.rint(_body_ct(shape) + noise).astype(np.int16)


def _ct_file(transform=lambda a: a, spacing: float = SPACING_MM, name: str = "ct_bad.nii.gz", padding: int | None = None,
             zoom: int = 1):
    """Setup: `{t}/<name>`, the noisy body CT after `transform` (HU), on a grid of `spacing` (header units);
    `zoom`: in-plane voxels per bad_data voxel (a 512-matrix CT's fine in-plane grid)."""
    def make(tmp: Path, data: Path) -> None:
        from LNSynthLib.volumes.geometry import Geometry, Volume
        from LNSynthLib.volumes.io import write_volume

        arr = transform(_noisy_ct().astype(np.float32))
        if zoom > 1:
            arr = np.ascontiguousarray(arr[::4].repeat(zoom, axis=1).repeat(zoom, axis=2))
        if padding is not None:   # the scanner's fill outside the round field of view
            arr[:, :2, :] = padding
        write_volume(Volume(arr.astype(np.float32), Geometry((spacing, spacing, SPACING_MM if zoom > 1 else spacing))),
                     tmp / name)
    return make


def prepare_ct(ct: str = "{t}/ct_bad.nii.gz", *extra: str) -> list[str]:
    return ["prepare", "--ct", ct, "--ln", "{d}/ln.nii.gz", "--out", "{t}/out", "--case-id", "c1",
            "--anatomy-source", "coarse", *extra]


def _write_series(folder: Path, ct: np.ndarray, series: str, description: str, spacing_z: float = 2.0) -> None:
    """One CT series (SimpleITK's DICOM writer) into `folder`, files named after the series."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(ct)
    image.SetSpacing((0.8, 0.8, spacing_z))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(ct.shape[0]):
        s = image[:, :, k]
        for tag, value in (("0008|0060", "CT"), ("0020|000e", series), ("0020|000d", "1.2.826.0.1.3680043.2.1125.9"),
                           ("0008|103e", description), ("0020|0011", series.rsplit(".", 1)[-1]),
                           ("0020|0037", "1\\0\\0\\0\\1\\0"), ("0008|0018", f"{series}.{k + 1}"),
                           ("0020|0013", str(k + 1)),
                           ("0020|0032", "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, k))))),
                           ("0028|1052", "0"), ("0028|1053", "1")):
            s.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{series.rsplit('.', 1)[-1]}_{k:03d}.dcm"))
        writer.Execute(s)


def _dicom_series(*kinds: str):
    """Setup: `{t}/dicom` holding one series per entry of `kinds` (soft/bone kernel reconstructions, a scout)."""
    def make(tmp: Path, data: Path) -> None:
        ct = _body_ct((5, 32, 32))
        for n, kind in enumerate(kinds, start=2):
            slices = ct[:1] if kind == "scout" else ct
            _write_series(tmp / "dicom", slices, f"1.2.826.0.1.3680043.2.1125.1.{n}", kind,
                          spacing_z=1.0 if kind == "bone" else 2.0)
    return make


def _prepared(root: Path, case: str, ct: np.ndarray, *, margin_mm: float = 20.0, ct_name: str | None = None,
              data: Path) -> Path:
    """A real `prepare_case` of `ct` (with bad_data's nodes and anatomy map, rolled with the CT)."""
    from LNSynthLib.prepare import prepare_case
    from LNSynthLib.volumes.geometry import Geometry, Volume
    from LNSynthLib.volumes.io import read_volume, write_volume
    from LNSynthLib.volumes.preprocess import PreprocessSettings

    ct_path = root.parent / (ct_name or f"{root.name}_{case}_ct.nii.gz")
    write_volume(Volume(ct, Geometry((SPACING_MM,) * 3)), ct_path, overwrite=True)
    shift = int(np.argmax(ct[:, 16, 16] != -1000)) - 2   # the rolled CT rolls its labels too
    anatomy = read_volume(data / "anatomy14.nii.gz")
    ln = read_volume(data / "ln.nii.gz")
    labels = {}
    for name, vol in (("anatomy", anatomy), ("ln", ln)):
        path = root.parent / f"{root.name}_{case}_{name}.nii.gz"
        write_volume(Volume(np.roll(vol.array, shift, axis=0), vol.geometry), path, overwrite=True)
        labels[name] = path
    return prepare_case(ct_path, labels["ln"], root, case, anatomy_path=labels["anatomy"],
                        settings=PreprocessSettings(margin_mm=margin_mm, spacing=SPACING_MM))


def _other_patient(shift: int = 1) -> np.ndarray:
    return np.roll(_body_ct(), shift, axis=0)   # another body: the same shapes a voxel lower


def _synthetic_from(source_root: Path, target: Path, pairs: dict[str, str]) -> None:
    """`target/<made_from>_synt_0` for each `named: made_from`: a copy of `made_from` that names `named` as source."""
    for named, made_from in pairs.items():
        folder = target / f"{named}_synt_0"
        shutil.copytree(source_root / made_from, folder)
        meta = json.loads((folder / "case.json").read_text())
        (folder / "case.json").write_text(json.dumps({**meta, "synthetic": True, "source_case": named}))


def _samples_of_other_folder(tmp: Path, data: Path) -> None:
    """{t}/cases_b: other patients under bad_data's ids; {t}/synt: samples made from bad_data's cases."""
    for case, shift in (("case_a", 1), ("case_b", 2)):
        _prepared(tmp / "cases_b", case, _other_patient(shift), data=data)
    _synthetic_from(data / "prepared", tmp / "synt", {"case_a": "case_a", "case_b": "case_b"})


def _sample_of_the_other_case(tmp: Path, data: Path) -> None:
    """{t}/cases: case_a and case_b are two patients; {t}/synt holds a sample of case_b that says case_a."""
    _prepared(tmp / "cases", "case_a", _body_ct(), data=data)
    _prepared(tmp / "cases", "case_b", _other_patient(2), data=data)
    _synthetic_from(tmp / "cases", tmp / "synt", {"case_a": "case_b", "case_b": "case_b"})


def _same_patient_again(how: str):
    """{t}/test: bad_data's patient (case_a's CT) prepared once more as `held_out`: with another margin from the
    same file, from a copy of the file, or from a float32 copy."""
    def make(tmp: Path, data: Path) -> None:
        from LNSynthLib.prepare import prepare_case
        from LNSynthLib.volumes.io import read_volume, write_volume
        from LNSynthLib.volumes.preprocess import PreprocessSettings

        ct = data / "ct.nii.gz"
        if how == "copy":
            ct = Path(shutil.copy(ct, tmp / "renamed_scan.nii.gz"))
        elif how == "float32":
            vol = read_volume(ct)
            ct = write_volume(type(vol)(vol.array.astype(np.float32), vol.geometry), tmp / "scan_f32.nrrd")
        prepare_case(ct, data / "ln.nii.gz", tmp / "test", "held_out", anatomy_path=data / "anatomy14.nii.gz",
                     settings=PreprocessSettings(margin_mm=10.0, spacing=SPACING_MM))
    return make


def _exported_then(change):
    """Setup: a finished export of `{t}/cases` (+ `{t}/test`) into {t}/proj, then `change(tmp, data)`."""
    def make(tmp: Path, data: Path) -> None:
        from LNSynthLib.cli.main import main

        for case, ct in (("case_a", _body_ct()), ("case_b", _other_patient(2))):
            _prepared(tmp / "cases", case, ct, data=data)
        _prepared(tmp / "test", "t1", _other_patient(3), data=data)
        assert main(["nnunet", "export", "--cases", str(tmp / "cases"), "--test-cases", str(tmp / "test"),
                     "--out", str(tmp / "proj")]) == 0
        change(tmp, data)
    return make


def _other_test_folder(tmp: Path, data: Path) -> None:
    _prepared(tmp / "test2", "t1", _other_patient(4), data=data)   # the same id, another patient


def _other_cases_same_ids(tmp: Path, data: Path) -> None:
    for case, shift in (("case_a", 5), ("case_b", 6)):
        _prepared(tmp / "cases2", case, _other_patient(shift), data=data)


def _case_prepared_again(tmp: Path, data: Path) -> None:
    """case_b of {t}/cases prepared again (another margin) in place: the same id, other voxels."""
    shutil.rmtree(tmp / "cases" / "case_b")
    _prepared(tmp / "cases", "case_b", _other_patient(2), margin_mm=10.0, data=data)


def _test_case_edited(tmp: Path, data: Path) -> None:
    """The test case's LN mask replaced (a corrected annotation): same id, same CT, other labels."""
    from LNSynthLib.volumes.io import read_volume, write_volume

    ln = read_volume(tmp / "test" / "t1" / "ln.nii.gz")
    ln.array[...] = 0
    ln.array[2:4, 2:4, 2:4] = 1
    write_volume(ln, tmp / "test" / "t1" / "ln.nii.gz", overwrite=True)


EXPORTED = ["nnunet", "export", "--out", "{t}/proj"]

ROUND2_MORE = [
    # class 3: HU scale and units (the issue's +1024 and cm spacing; -1024, slope applied twice, micrometres)
    ("ct-hu-plus-1024", prepare_ct(), ["ct_bad.nii.gz"], "look offset",
     _ct_file(lambda a: a + 1024, padding=-2000)),
    ("ct-hu-minus-1024", prepare_ct(), ["ct_bad.nii.gz"], "look offset or scaled", _ct_file(lambda a: a - 1024)),
    ("ct-hu-slope-twice", prepare_ct(), ["ct_bad.nii.gz"], "look offset or scaled", _ct_file(lambda a: a * 2)),
    ("ct-hu-plus-1024-no-padding", prepare_ct(), ["ct_bad.nii.gz"], "hounsfield", _ct_file(lambda a: a + 1024)),
    ("ct-spacing-in-cm", prepare_ct(), ["ct_bad.nii.gz"], "spacing looks given in cm",
     _ct_file(spacing=SPACING_MM / 10)),
    ("ct-spacing-in-cm-fine-matrix", prepare_ct(), ["ct_bad.nii.gz"], "spacing looks given in cm",
     _ct_file(spacing=0.015 * 5, zoom=15)),   # 390 voxels of 0.75 mm across, written as 0.075 (cm): "29 mm"
    ("ct-spacing-in-cm-wide-patient", prepare_ct(), ["ct_bad.nii.gz"], "spacing looks given in cm",
     _ct_file(spacing=0.15, zoom=15)),        # 390 voxels of 1.5 mm (a 585 mm patient) in cm: "58 mm"
    ("ct-spacing-in-micrometres", prepare_ct(), ["ct_bad.nii.gz"], "spacing looks given in micrometres",
     _ct_file(spacing=SPACING_MM * 1000)),
    # class 3: a DICOM folder with several series is not read as its first one
    ("dicom-two-reconstructions", prepare_ct("{t}/dicom"), ["dicom", "soft", "bone"], "2 DICOM series",
     _dicom_series("soft", "bone")),
    ("dicom-scout-and-axial", prepare_ct("{t}/dicom"), ["dicom", "scout"], "2 DICOM series",
     _dicom_series("scout", "axial")),
    ("dicom-three-series-anatomy", ["anatomy", "--ct", "{t}/dicom", "--out", "{t}/a.nii.gz", "--method", "coarse"],
     ["dicom"], "3 DICOM series", _dicom_series("soft", "bone", "lung")),
    # class 2: synthetic cases belong to their source case by content, not by id
    ("export-samples-of-another-folder",
     ["nnunet", "export", "--cases", "{t}/cases_b", "--out", "{t}/proj", "--synthetic", "{t}/synt",
      "--synt-per-case", "1"], ["case_a_synt_0"], "not made from", _samples_of_other_folder),
    ("export-paste-samples-of-another-folder",
     ["nnunet", "export", "--cases", "{t}/cases_b", "--out", "{t}/proj", "--synthetic", "{t}/synt",
      "--synt-per-case", "1", "--paste"], ["case_a_synt_0"], "not made from", _samples_of_other_folder),
    ("export-sample-of-the-other-case",
     ["nnunet", "export", "--cases", "{t}/cases", "--out", "{t}/proj", "--synthetic", "{t}/synt",
      "--synt-per-case", "1", "--strategy", "synt"], ["case_a_synt_0"], "not made from", _sample_of_the_other_case),
    # class 2: one patient on both sides of the train/test split, whatever the margin, file name or type
    ("leak-same-patient-other-margin", export("--test-cases", "{t}/test"), ["held_out"], "same source CT",
     _same_patient_again("margin")),
    ("leak-same-patient-copied-file", export("--test-cases", "{t}/test"), ["held_out"], "same source CT",
     _same_patient_again("copy")),
    ("leak-same-patient-float32-nrrd", export("--test-cases", "{t}/test"), ["held_out"], "same source CT",
     _same_patient_again("float32")),
    # class 1: an export rerun over a finished dataset is "the same" only when every input's content matches
    ("export-rerun-other-test-folder",
     [*EXPORTED, "--cases", "{t}/cases", "--test-cases", "{t}/test2"], ["Dataset501_Real"], "other cases",
     _exported_then(_other_test_folder)),
    ("export-rerun-other-cases-same-ids",
     [*EXPORTED, "--cases", "{t}/cases2", "--test-cases", "{t}/test"], ["Dataset501_Real"], "other cases",
     _exported_then(_other_cases_same_ids)),
    ("export-rerun-case-prepared-again",
     [*EXPORTED, "--cases", "{t}/cases", "--test-cases", "{t}/test"], ["Dataset501_Real"], "other cases",
     _exported_then(_case_prepared_again)),
    ("export-rerun-test-labels-edited",
     [*EXPORTED, "--cases", "{t}/cases", "--test-cases", "{t}/test"], ["Dataset501_Real"], "other cases",
     _exported_then(_test_case_edited)),
]


@pytest.mark.parametrize(("args", "names", "why", "setup"),
                         [pytest.param(*case[1:], id=case[0]) for case in ROUND2_MORE])
@pytest.mark.timeout(300)   # the first export of a session imports nnU-Net
def test_round2_bad_input_is_refused(refused, bad_data: Path, tmp_path: Path, args, names, why, setup):
    setup(tmp_path, bad_data)
    refused(args, names, why)


# --- class 6: a lock per output folder; temporary names no lister picks up and the next run removes -----------

HOLDER = """
import signal, sys
from LNSynthLib.output_claims import claim_output_folder
signal.alarm(120)   # never outlives the test
folder, recipe, command, exclusive, output = sys.argv[1:6]
claim_output_folder(folder, {"checkpoint_sha256": recipe}, command, exclusive=exclusive == "1", output=output)
print("held", flush=True)
sys.stdin.read()    # until the test closes the pipe (or kills it)
"""
_HOLDERS: list[subprocess.Popen] = []


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "LNSYNTH_PROGRESS": "quiet"}


def _hold(folder: Path, recipe: str, command: str, exclusive: bool = False, output: str = "") -> subprocess.Popen:
    """A real second process that holds a claim on `folder` (as a running `sample` shard or export does)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), recipe, command, "1" if exclusive else "0",
                             output], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env())
    assert proc.stdout.readline().strip() == "held"
    _HOLDERS.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _stop_holders():
    yield
    while _HOLDERS:
        proc = _HOLDERS.pop()
        proc.kill()
        proc.wait()


def _shard_running_with_another_checkpoint(tmp: Path, data: Path) -> None:
    checkpoint(lambda payload: None)(tmp, data)   # a valid tiny checkpoint at {t}/ck.pt
    _hold(tmp / "synt", "sha256-of-another-checkpoint", "lnsynth sample")


def _export_running(tmp: Path, data: Path) -> None:
    _hold(tmp / "proj" / "nnUNet_raw", "another-export", "lnsynth nnunet export", exclusive=True,
          output="Dataset501_Real")


ROUND2_CONCURRENT = [
    ("sample-shard-beside-another-checkpoint", sample("{t}/ck.pt", "--shard", "1/2"), ["synt"],
     "another `lnsynth sample`", _shard_running_with_another_checkpoint),
    ("sample-beside-another-checkpoint-overwrite", sample("{t}/ck.pt", "--overwrite"), ["synt"],
     "another `lnsynth sample`", _shard_running_with_another_checkpoint),
    ("export-beside-a-running-export", export(), ["Dataset501_Real"], "another `lnsynth nnunet export`",
     _export_running),
]


@pytest.mark.parametrize(("args", "names", "why", "setup"),
                         [pytest.param(*case[1:], id=case[0]) for case in ROUND2_CONCURRENT])
@pytest.mark.timeout(120)
def test_round2_concurrent_writer_is_refused(refused, bad_data: Path, tmp_path: Path, args, names, why, setup):
    setup(tmp_path, bad_data)
    refused(args, names, why)
    assert not list((tmp_path / "synt").glob("*_synt_*")) if (tmp_path / "synt").exists() else True


def test_shards_of_one_recipe_share_a_folder_and_a_killed_writer_frees_it(tmp_path: Path):
    """Same recipe: joins. Another recipe: refused while the writer lives; free once it is killed (SIGKILL)."""
    from LNSynthLib.errors import OutputExistsError
    from LNSynthLib.output_claims import claim_output_folder

    out = tmp_path / "synt"
    holder = _hold(out, "A", "lnsynth sample")
    claim_output_folder(out, {"checkpoint_sha256": "A"}, "lnsynth sample").release()   # another shard of it
    with pytest.raises(OutputExistsError, match="another `lnsynth sample`.*checkpoint_sha256"):
        claim_output_folder(out, {"checkpoint_sha256": "B"}, "lnsynth sample")
    holder.kill()
    holder.wait()
    with claim_output_folder(out, {"checkpoint_sha256": "B"}, "lnsynth sample"):   # and now B holds it
        late = subprocess.run([sys.executable, "-c", HOLDER, str(out), "A", "lnsynth sample", "0", ""], input="",
                              capture_output=True, text=True, env=_env(), timeout=60)
        assert late.returncode != 0 and "another `lnsynth sample`" in late.stderr, late.stderr
    assert not [p for p in out.iterdir() if not p.name.startswith(".lnsynth")]


def _killed_writer(folder: Path, scratch: Path | None = None) -> None:
    """A real process killed (SIGKILL) in the middle of atomic writes: its temporary file and scratch folder stay."""
    code = ("import os, signal, sys\n"
            "from LNSynthLib.atomic import atomic_path, temp_folder\n"
            "scratch = temp_folder('lnsynth_ts')\n"
            "open(os.path.join(scratch.name, 'total.nii.gz'), 'wb').write(b'x' * 4096)\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'y' * 4096)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    env = _env() if scratch is None else {**_env(), "TMPDIR": str(scratch)}
    res = subprocess.run([sys.executable, "-c", code, str(folder / "ct.nii.gz")], env=env, timeout=60)
    assert res.returncode == -9


def test_prepare_removes_what_a_killed_prepare_left(bad_data: Path, tmp_path: Path):
    """Killed mid-write, `prepare` left a temporary CT in the case folder and a scratch folder in TMPDIR
    (122-141 MB for a real CT); the next prepare removes both, and keeps a live writer's."""
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    scratch.mkdir()
    _killed_writer(out / "c1", scratch)
    _killed_writer(out / "c0", scratch)
    left = sorted(p.name for p in [*(out / "c1").iterdir(), *(out / "c0").iterdir(), *scratch.iterdir()])
    assert len(left) == 4 and all(".lnstmp-" in name for name in left), left
    live = _hold(tmp_path / "busy", "x", "lnsynth prepare")   # a live process's temporary file is not touched
    from LNSynthLib.atomic import temp_prefix

    live_tmp = out / "c1" / (temp_prefix("ln.nii.gz").replace(f"-{os.getpid()}-", f"-{live.pid}-") + "abcdefgh.tmp")
    live_tmp.write_bytes(b"z")
    res = subprocess.run([sys.executable, "-m", "LNSynthLib", *[a.format(d=bad_data, t=tmp_path) for a in prepare_ct(
        "{d}/ct.nii.gz")]], env={**_env(), "TMPDIR": str(scratch)}, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (out / "c1").iterdir()) == sorted(["anatomy.nii.gz", "case.json", "ct.nii.gz",
                                                                     "ln.nii.gz", live_tmp.name])
    assert list((out / "c0").iterdir()) == [] and list(scratch.iterdir()) == []


def test_hidden_leftover_case_folder_is_no_case(bad_data: Path, tmp_path: Path, capsys):
    """A writer killed between writing a case and renaming it leaves a complete hidden case folder: no lister
    (export, train, sample) takes it for a case."""
    from LNSynthLib.atomic import temp_prefix
    from LNSynthLib.cases import list_cases
    from LNSynthLib.cli.main import main

    cases = tmp_path / "cases"
    shutil.copytree(bad_data / "prepared", cases)
    shutil.copytree(cases / "case_a", cases / (temp_prefix("case_c") + "case"))
    shutil.copytree(cases / "case_a", cases / ".case_d.tmp-4194000")     # the name before the tag
    assert [p.name for p in list_cases(cases)] == ["case_a", "case_b"]
    assert main(["nnunet", "export", "--cases", str(cases), "--out", str(tmp_path / "proj")]) == 0, \
        capsys.readouterr().err
    manifest = json.loads((tmp_path / "proj" / "nnUNet_raw" / "Dataset501_Real" / "lnsynth_export.json").read_text())
    assert [i["case_id"] for i in manifest["training"]] == ["case_a", "case_b"]


def test_generated_case_write_removes_a_killed_writers_case_folder(bad_data: Path, tmp_path: Path):
    """A complete case a killed `sample` left under its temporary name goes when the next case is written."""
    from LNSynthLib.atomic import temp_prefix
    from LNSynthLib.cases import load_case, write_case_folder

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / (temp_prefix("case_a_synt_0").replace(f"-{os.getpid()}-", f"-{dead.stdout.strip()}-")
                           + "case")
    shutil.copytree(bad_data / "prepared" / "case_a", leftover)
    write_case_folder(load_case(bad_data / "prepared" / "case_a"), tmp_path / "case_a_synt_1", overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case_a_synt_1"]


# --- what must be accepted: real CTs in the physics rules, an export rerun of the same content ----------------

@pytest.mark.parametrize("variant", ["noisy", "air-clipped-with-padding", "small-child-0.5mm"])
def test_plausible_ct_is_prepared(bad_data: Path, tmp_path: Path, capsys, variant: str):
    """The physics rules pass real-looking CTs: noise, air clipped at -1024 with -3024 padding, a small body."""
    transform, spacing, padding = {"noisy": (lambda a: a, SPACING_MM, None),
                                   "air-clipped-with-padding": (lambda a: np.maximum(a, -1024), SPACING_MM, -3024),
                                   "small-child-0.5mm": (lambda a: a, 3.5, None)}[variant]
    _ct_file(transform, spacing=spacing, padding=padding)(tmp_path, bad_data)
    from LNSynthLib.cli.main import main

    args = [a.format(d=bad_data, t=tmp_path) for a in prepare_ct()]
    if spacing != SPACING_MM:
        args += ["--resample-labels"]
    assert main(args) == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "c1" / "case.json").is_file()


def test_export_rerun_of_the_same_content_is_kept_and_overwrite_redoes_it(bad_data: Path, tmp_path: Path, capsys):
    """Same content: nothing rewritten. Other content under the same ids with --overwrite: the images are new."""
    from LNSynthLib.cli.main import main

    _exported_then(lambda tmp, data: None)(tmp_path, bad_data)
    dataset = tmp_path / "proj" / "nnUNet_raw" / "Dataset501_Real"
    image = dataset / "imagesTs" / "t1_0000.nii.gz"
    before = (image.stat().st_mtime_ns, image.read_bytes())
    base = ["nnunet", "export", "--cases", str(tmp_path / "cases"), "--out", str(tmp_path / "proj")]
    assert main([*base, "--test-cases", str(tmp_path / "test")]) == 0, capsys.readouterr().err
    assert (image.stat().st_mtime_ns, image.read_bytes()) == before
    _other_test_folder(tmp_path, bad_data)
    assert main([*base, "--test-cases", str(tmp_path / "test2"), "--overwrite"]) == 0, capsys.readouterr().err
    assert image.read_bytes() != before[1]
