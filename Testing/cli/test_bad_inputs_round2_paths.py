"""Bad-input table, round 2, class 5 (paths and overwrite): names are names, an output never equals an
input, and `--overwrite` removes only folders the project marked as its own.

Rows run the real `lnsynth` command in-process through `refused` (exit 2, `lnsynth: error:` naming the
file or option and the cause, a `Fix:`, no traceback, nothing changed on disk).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from .round2_inputs import CASES, export, rows


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


def _predict_into(out: str) -> list[str]:
    return ["nnunet", "predict", "--model", CASES, "--ct", "{t}/ct.nii.gz", "--out", out, "--overwrite", "--device",
            "cpu"]


TABLE = [
    ("export-name-traversal", export("--name", "x/../../../victim"), ["--name", "victim"], "plain folder name",
     None),
    ("export-name-absolute", export("--name", "/tmp/victim"), ["--name"], "plain folder name", None),
    ("export-name-dotdot", export("--name", ".."), ["--name"], "plain folder name", None),
    ("export-overwrite-user-folder", export("--overwrite"), ["Dataset501_Real"], "not written by LNSynth",
     _user_dataset),
    ("export-out-is-cases", export(out=CASES), ["--out", "--cases"], "is also the input", None),
    ("predict-out-is-ct", _predict_into("{t}/ct.nii.gz"), ["--out", "--ct"], "is also the input", _ct_copy()),
    ("predict-out-links-to-ct", _predict_into("{t}/link.nii.gz"), ["--out"], "is also the input",
     _ct_copy("link.nii.gz")),
    ("anatomy-out-is-ct", ["anatomy", "--ct", "{t}/ct.nii.gz", "--out", "{t}/ct.nii.gz", "--overwrite", "--method",
                           "coarse"], ["--out", "--ct"], "is also the input", _ct_copy()),
    ("prepare-out-is-dicom-folder", ["prepare", "--ct", "{d}/dicom_ok", "--ln", "{d}/ln.nii.gz", "--out",
                                     "{d}/dicom_ok", "--case-id", "c1"], ["--out", "--ct"], "is also the input", None),
]


@pytest.mark.parametrize(("args", "names", "why", "setup"), rows(TABLE))
@pytest.mark.timeout(60)
def test_bad_input_is_refused(refused, bad_data: Path, tmp_path: Path, args, names, why, setup):
    if setup is not None:
        setup(tmp_path, bad_data)
    refused(args, names, why)


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
