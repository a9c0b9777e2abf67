"""The headless script under plain Python (as CI has no Slicer): one command, errors, the pipeline plan."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "LNSynth" / "Scripts" / "lnsynth_headless.py"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_one_command_runs_through_the_job_runner(tmp_path: Path):
    done = _run("--work", str(tmp_path), "--run", "--", "bench", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[100.0%] done" in done.stdout
    logs = list((tmp_path / ".lnsynth_headless").glob("run-*.log"))
    assert len(logs) == 1 and "usage: lnsynth bench" in logs[0].read_text()


def test_failing_command_reports_the_cli_error(tmp_path: Path):
    done = _run("--work", str(tmp_path), "--run", "--", "no-such-command", cwd=tmp_path)
    assert done.returncode == 1
    assert "no-such-command failed (exit code 2)" in done.stderr and "invalid choice" in done.stderr


def test_missing_arguments_are_explained(tmp_path: Path):
    done = _run(cwd=tmp_path)
    assert done.returncode == 2 and "give --cases and --work" in done.stderr


def test_pipeline_plan_follows_the_cli_contract(tmp_path: Path):
    spec = importlib.util.spec_from_file_location("lnsynth_headless", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = module.build_parser().parse_args(["--cases", "C", "--work", str(tmp_path), "--set",
                                             "train.iterations=2", "--n", "3", "--no-transforms"])
    steps = module.plan(args)
    assert [s.args[:2] for s in steps] == [["train", "--config"], ["sample", "--checkpoint"],
                                          ["nnunet", "export"], ["nnunet", "train"]]
    assert steps[0].args[steps[0].args.index("--set") + 1] == "train.iterations=2"
    sample = steps[1].args
    assert sample[sample.index("--checkpoint") + 1] == str(tmp_path / "ln_ddpm" / "checkpoint.pt")
    assert sample[sample.index("--n") + 1] == "3" and "--no-transforms" in sample
    skip = module.plan(module.build_parser().parse_args(["--cases", "C", "--work", "W", "--checkpoint", "x.pt",
                                                         "--skip-nnunet"]))
    assert [s.args[0] for s in skip] == ["sample"]


@pytest.mark.slow
def test_headless_pipeline_on_phantom_cases(tmp_path: Path):
    """Slow (minutes): phantom cases → tiny LN-DDPM → synthetic cases → nnU-Net dataset → short nnU-Net."""
    cases = tmp_path / "cases"
    done = subprocess.run([sys.executable, "-m", "LNSynthLib", "phantom", "--out", str(cases), "--cases", "2",
                           "--shape", "64", "80", "80"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    work = tmp_path / "work"
    done = subprocess.run([sys.executable, str(SCRIPT), "--cases", str(cases), "--work", str(work), "--set",
                           "train.iterations=2", "--set", "train.batch_size=1", "--n", "1", "--steps", "3",
                           "--device", "cpu", "--nnunet-epochs", "1", "--nnunet-iterations", "2"],
                          capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (work / "ln_ddpm" / "checkpoint.pt").is_file()
    assert len(list((work / "synthetic").glob("*_synt_0/case.json"))) == 2
    assert len(list((work / "nnunet_dataset" / "nnUNet_raw").glob("*/dataset.json"))) == 1
    assert list((work / "nnunet_dataset").rglob("checkpoint_final.pth"))
    for label in ("Training LN-DDPM", "Sampling synthetic cases", "Exporting the nnU-Net dataset",
                  "Training nnU-Net"):
        assert f"== {label}" in done.stdout
    model_dir = [line.split("model_dir=")[1].split(",")[0] for line in done.stdout.splitlines()
                 if line.startswith("result:") and "model_dir=" in line]
    assert len(model_dir) == 1
    _predict_through_the_panel_logic(Path(model_dir[0]), cases, tmp_path)


def _predict_through_the_panel_logic(model_dir: Path, cases: Path, tmp_path: Path) -> None:
    """The trained model segments a CT in a slicer-core scene; the result lands on the CT grid."""
    pytest.importorskip("slicer")
    from LNSynthModuleLib.logic import LNSynthLogic

    from LNSynthLib import mrml_bridge as mb

    core = mb.create_core_scene()
    ct_node = mb.load_volume_file(core.scene, sorted(cases.glob("*/ct.nii.gz"))[0], "phantom CT")
    chain = LNSynthLogic(core.scene, tmp_path / "panel").start_nnunet_predict(ct_node, model_dir, "cpu")
    state = chain.wait(timeout_s=900)
    assert state.succeeded, state.error
    mask = mb.segment_to_mask(chain.result, "lymph node", ct_node)
    assert mask.shape == mb.node_to_volume(ct_node).shape
