"""Bad-input table, round 2, class 6 (concurrency and leftovers): a lock per output folder, and temporary
names that no lister picks up and that the next run removes.

Rows run the real `lnsynth` command in-process through `refused` (exit 2, `lnsynth: error:` naming the
folder and the cause, a `Fix:`, no traceback, nothing changed on disk) while a real second process holds
the folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from .round2_inputs import (
    SPACING_MM,
    export,
    lnsynth_env,
    prepare_ct,
    rows,
    run_lnsynth,
    sample,
    valid_checkpoint,
)

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


def _hold(folder: Path, recipe: str, command: str, exclusive: bool = False, output: str = "") -> subprocess.Popen:
    """A real second process that holds a claim on `folder` (as a running `sample` shard or export does)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), recipe, command, "1" if exclusive else "0",
                             output], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=lnsynth_env())
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
    valid_checkpoint(tmp, data)
    _hold(tmp / "synt", "sha256-of-another-checkpoint", "lnsynth sample")


def _export_running(tmp: Path, data: Path) -> None:
    _hold(tmp / "proj" / "nnUNet_raw", "another-export", "lnsynth nnunet export", exclusive=True,
          output="Dataset501_Real")


def _inct_running(tmp: Path, data: Path) -> None:
    valid_checkpoint(tmp, data)
    _hold(tmp / "synt", "sha256-of-another-checkpoint", "lnsynth sample --mode in-ct", exclusive=True)


def _inct_running_same_checkpoint(tmp: Path, data: Path) -> None:
    """An in-CT run of the very same checkpoint: no shards in in-CT mode, so even that one is not joined."""
    valid_checkpoint(tmp, data)
    from LNSynthLib.diffusion.sample.provenance import file_sha256

    _hold(tmp / "synt", file_sha256(tmp / "ck.pt"), "lnsynth sample --mode in-ct", exclusive=True)


def _patch_sampler_running(tmp: Path, data: Path) -> None:
    valid_checkpoint(tmp, data)
    _hold(tmp / "synt", "sha256-of-another-checkpoint", "lnsynth sample")


TABLE = [
    ("sample-shard-beside-another-checkpoint", sample("{t}/ck.pt", "--shard", "1/2"), ["synt"],
     "another `lnsynth sample`", _shard_running_with_another_checkpoint),
    ("sample-beside-another-checkpoint-overwrite", sample("{t}/ck.pt", "--overwrite"), ["synt"],
     "another `lnsynth sample`", _shard_running_with_another_checkpoint),
    # the in-CT sampler takes the same lock: no second writer of any kind while it runs, and it joins no one
    ("sample-inct-beside-a-running-inct", sample("{t}/ck.pt", "--mode", "in-ct"), ["synt"],
     "another `lnsynth sample --mode in-ct`", _inct_running),
    ("sample-inct-beside-the-same-inct", sample("{t}/ck.pt", "--mode", "in-ct"), ["synt"],
     "another `lnsynth sample --mode in-ct`", _inct_running_same_checkpoint),
    ("sample-inct-beside-a-patch-sampler", sample("{t}/ck.pt", "--mode", "in-ct"), ["synt"],
     "another `lnsynth sample`", _patch_sampler_running),
    ("sample-patch-beside-a-running-inct", sample("{t}/ck.pt"), ["synt"], "another `lnsynth sample --mode in-ct`",
     _inct_running),
    ("export-beside-a-running-export", export(), ["Dataset501_Real"], "another `lnsynth nnunet export`",
     _export_running),
]


@pytest.mark.parametrize(("args", "names", "why", "setup"), rows(TABLE))
@pytest.mark.timeout(120)
def test_concurrent_writer_is_refused(refused, bad_data: Path, tmp_path: Path, args, names, why, setup):
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
                              capture_output=True, text=True, env=lnsynth_env(), timeout=60)
        assert late.returncode != 0 and "another `lnsynth sample`" in late.stderr, late.stderr
    assert not [p for p in out.iterdir() if not p.name.startswith(".lnsynth")]


@pytest.mark.slow   # two real samplers (about a minute on 2 cores); the rows above hold the lock with a stand-in
def test_two_inct_runs_into_one_folder_the_second_is_refused(bad_data: Path, tmp_path: Path):
    """Two real `lnsynth sample --mode in-ct` processes into one --out: the second is refused while the first
    writes (it used to write beside it)."""
    from LNSynthLib.prepare import prepare_case
    from LNSynthLib.volumes.geometry import Volume
    from LNSynthLib.volumes.io import read_volume, write_volume
    from LNSynthLib.volumes.preprocess import PreprocessSettings

    for name in ("ct", "ln", "anatomy14"):   # bad_data's CT in a 48-voxel field: room for the 32-voxel window
        vol = read_volume(bad_data / f"{name}.nii.gz")
        write_volume(Volume(np.pad(vol.array, 8, constant_values=-1000 if name == "ct" else 0), vol.geometry),
                     tmp_path / f"{name}.nii.gz")
    for case in ("case_a", "case_b"):
        prepare_case(tmp_path / "ct.nii.gz", tmp_path / "ln.nii.gz", tmp_path / "cases", case,
                     anatomy_path=tmp_path / "anatomy14.nii.gz",
                     settings=PreprocessSettings(margin_mm=80.0, spacing=SPACING_MM))
    valid_checkpoint(tmp_path, bad_data)
    args = [a.format(d=bad_data, t=tmp_path) for a in sample("{t}/ck.pt", "--mode", "in-ct")]
    args[args.index("--cases") + 1] = str(tmp_path / "cases")
    first = subprocess.Popen([sys.executable, "-m", "LNSynthLib", *args], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env=lnsynth_env(OMP_NUM_THREADS="1"))
    _HOLDERS.append(first)
    recipe = tmp_path / "synt" / ".lnsynth_recipe.json"
    deadline = time.monotonic() + 90
    while not (recipe.exists() and "in-ct" in recipe.read_text()):
        assert first.poll() is None and time.monotonic() < deadline, first.stderr.read() if first.poll() else "slow"
        time.sleep(0.2)
    second = run_lnsynth(args, bad_data, tmp_path, timeout=120)
    assert first.poll() is None, "the first run ended before the second was tried"
    assert second.returncode == 2, second.stderr
    assert "another `lnsynth sample --mode in-ct` is writing into this folder" in second.stderr, second.stderr
    assert "Fix:" in second.stderr and "Traceback" not in second.stderr


def _killed_writer(folder: Path, scratch: Path | None = None) -> None:
    """A real process killed (SIGKILL) in the middle of atomic writes: its temporary file and scratch folder stay."""
    code = ("import os, signal, sys\n"
            "from LNSynthLib.atomic import atomic_path, temp_folder\n"
            "scratch = temp_folder('lnsynth_ts')\n"
            "open(os.path.join(scratch.name, 'total.nii.gz'), 'wb').write(b'x' * 4096)\n"
            "with atomic_path(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'y' * 4096)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    env = lnsynth_env() if scratch is None else lnsynth_env(TMPDIR=str(scratch))
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
        "{d}/ct.nii.gz")]], env=lnsynth_env(TMPDIR=str(scratch)), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (out / "c1").iterdir()) == sorted(["anatomy.nii.gz", "case.json", "ct.nii.gz",
                                                                     "ln.nii.gz", live_tmp.name])
    assert list((out / "c0").iterdir()) == [] and list(scratch.iterdir()) == []


def test_predict_removes_what_a_killed_predict_left(bad_data: Path, tmp_path: Path, capsys):
    """A killed `nnunet predict` left its scratch folder (nnU-Net's inputs and outputs) beside --out under a name
    of its own process; the next run into that folder removes it, and keeps a live run's."""
    from LNSynthLib.atomic import temp_prefix
    from LNSynthLib.cli.main import main

    model = tmp_path / "results" / "Dataset001_Done" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    (model / "fold_0").mkdir(parents=True)
    (model / "plans.json").write_text("{}")
    (model / "fold_0" / "checkpoint_final.pth").write_bytes(b"")
    (tmp_path / "images").mkdir()
    shutil.copy(bad_data / "ct.nii.gz", tmp_path / "images" / "c1_0000.nii.gz")
    (tmp_path / "pred").mkdir()
    (tmp_path / "pred" / "c1.nii.gz").write_bytes(b"done")   # every case predicted: nnU-Net is not started
    code = ("import os, signal, sys\n"
            "from LNSynthLib.atomic import temp_folder\n"
            "scratch = temp_folder('pred', sys.argv[1])\n"
            "os.makedirs(os.path.join(scratch.name, 'out'))\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=lnsynth_env(), timeout=60)
    assert res.returncode == -9
    live_pid = os.getppid()   # a live process other than this one: its scratch folder stays
    live_scratch = tmp_path / (temp_prefix("pred").replace(f"-{os.getpid()}-", f"-{live_pid}-") + "abcdefgh")
    (live_scratch / "out").mkdir(parents=True)
    assert len([p for p in tmp_path.iterdir() if ".lnstmp-" in p.name]) == 2
    assert main(["nnunet", "predict", "--model", str(model), "--input", str(tmp_path / "images"), "--out",
                 str(tmp_path / "pred"), "--device", "cpu"]) == 0, capsys.readouterr().err
    assert [p for p in tmp_path.iterdir() if ".lnstmp-" in p.name] == [live_scratch]


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
