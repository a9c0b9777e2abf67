"""The headless script under plain Python (as CI has no Slicer): one command, errors, the pipeline plan."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "LNSynth" / "Scripts" / "lnsynth_headless.py"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def slicer_script_argv(script: Path, slicer_args: list[str]) -> list[str]:
    """`sys.argv` of a `Slicer --python-script SCRIPT ...` run, as Slicer builds it.

    Unknown options pass through in order (ctkCommandLineParser non-strict mode, ctkCommandLineParser.cpp
    :572-582); `--` is Slicer's ignore-rest flag (qSlicerCoreCommandOptions.cxx "ignore-rest", short name
    "-"): it is consumed and every later argument passes through (ctkCommandLineParser.cpp:406-413); argv is
    `[script, *unparsed]` (qSlicerCoreApplication.cxx, "Set 'argv' so that python script ...").
    """
    rest = list(slicer_args)
    if "--" in rest:
        i = rest.index("--")
        rest = rest[:i] + rest[i + 1:]
    return [str(script), *rest]


def _run_as_slicer_would(slicer_args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    argv = slicer_script_argv(SCRIPT, slicer_args)
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=120, cwd=cwd, **kwargs)


@pytest.mark.parametrize("args", [["--run", "--", "bench", "--help"], ["bench", "--help"], ["--", "bench", "--help"]])
def test_one_command_with_the_argv_slicer_passes(tmp_path: Path, args: list[str]):
    done = _run_as_slicer_would(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[100.0%] done" in done.stdout
    logs = list((tmp_path / "logs").glob("bench-*.log"))
    assert len(logs) == 1 and "usage: lnsynth bench" in logs[0].read_text(encoding="utf-8")


def test_failing_command_reports_the_cli_error(tmp_path: Path):
    done = _run_as_slicer_would(["--run", "--", "no-such-command"], tmp_path)
    assert done.returncode == 1
    assert "no-such-command failed (exit code 2)" in done.stderr and "invalid choice" in done.stderr


def test_missing_command_is_explained(tmp_path: Path):
    done = _run_as_slicer_would([], tmp_path)
    assert done.returncode == 2 and "usage: lnsynth_headless.py" in done.stderr


def test_an_exception_in_the_script_still_exits_non_zero(tmp_path: Path):
    """Slicer's --python-script does not exit by itself: the script must, also when it fails."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = _run_as_slicer_would(["phantom", "--out", str(blocker / "x")], tmp_path)
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "NotADirectoryError" in done.stderr


def test_ctrl_c_stops_the_job_even_with_sigint_at_its_default(tmp_path: Path, process_alive):
    """Slicer resets SIGINT to SIG_DFL; the script installs its own handler and cancels the job's group."""
    wrapper = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
               f"sys.argv = {slicer_script_argv(SCRIPT, ['phantom', '--out', str(tmp_path / 'out'), '--cases', '40'])!r}; "
               "runpy.run_path(sys.argv[0], run_name='__main__')")
    proc = subprocess.Popen([sys.executable, "-c", wrapper], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)
    children: list[int] = []
    deadline = time.monotonic() + 60
    while not children and time.monotonic() < deadline:
        time.sleep(0.5)
        children = [int(p) for p in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                                     text=True).stdout.split()]
    assert children, "the job process did not start"
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    time.sleep(1)
    assert not any(process_alive(pid) for pid in children)


@pytest.mark.slow
def test_headless_pipeline_on_phantom_cases(tmp_path: Path):
    """Slow (minutes): phantom cases → tiny LN-DDPM → synthetic cases → nnU-Net dataset → short nnU-Net."""
    cases = tmp_path / "cases"
    done = subprocess.run([sys.executable, "-m", "LNSynthLib", "phantom", "--out", str(cases), "--cases", "2",
                           "--shape", "64", "80", "80"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    test_cases = tmp_path / "test_cases"   # held out: other seeds (the same cases are refused as leakage)
    done = subprocess.run([sys.executable, "-m", "LNSynthLib", "phantom", "--out", str(test_cases), "--cases", "1",
                           "--seed", "10", "--shape", "64", "80", "80"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    work = tmp_path / "work"
    done = subprocess.run([sys.executable, str(SCRIPT), "run", "--cases", str(cases), "--test-cases", str(test_cases),
                           "--out", str(work), "--config", "tiny", "--ddpm-iterations", "2", "--samples-per-case", "1", "--synt-per-case", "1",
                           "--device", "cpu", "--nnunet-epochs", "1", "--nnunet-iterations", "2"],
                          capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[100.0%] done" in done.stdout and list(work.rglob("checkpoint.pt"))
    assert "result: report " in done.stdout
    finals = sorted(work.rglob("checkpoint_final.pth"))
    assert finals, "no nnU-Net model was trained"
    model_dir = [str(finals[0].parent.parent)]  # <model_dir>/fold_0/checkpoint_final.pth
    _predict_through_the_panel_logic(Path(model_dir[0]), cases, tmp_path)


def _predict_through_the_panel_logic(model_dir: Path, cases: Path, tmp_path: Path) -> None:
    """The trained model segments a CT in a slicer-core scene; the result lands on the CT grid."""
    pytest.importorskip("slicer")
    from LNSynthScene import mrml_bridge as mb
    from LNSynthScene.logic import SceneLogic

    core = mb.create_core_scene()
    ct_node = mb.load_volume_file(core.scene, sorted(cases.glob("*/ct.nii.gz"))[0], "phantom CT")
    before = mb.node_classes(core.scene)
    chain = SceneLogic(core.scene, tmp_path / "panel").start_nnunet_predict(ct_node, model_dir, "cpu")
    state = chain.wait(timeout_s=900)
    assert state.succeeded, state.error
    added = mb.node_classes(core.scene)
    added.subtract(before)
    assert +added == {"vtkMRMLSegmentationNode": 1, "vtkMRMLSegmentationDisplayNode": 1}
    mask = mb.segment_to_mask(chain.result, "lymph node", ct_node)
    assert mask.shape == mb.node_to_volume(ct_node).shape
