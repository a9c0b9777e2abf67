"""A running job is stopped only after asking: Cancel, scene close/load, module reload, application exit.

Real job processes (a parent and a grandchild, like nnU-Net), a real slicer-core scene whose StartCloseEvent
drives the scene-close question, and a real Qt main window (PySide6, offscreen) whose close the guard refuses.
The user's answer is what the panel's Yes/No dialog would return.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.jobs.chain import JobChain, Step

pytest.importorskip("slicer")

from LNSynthModuleLib import job_guard  # noqa: E402

from LNSynthScene.logic import SceneLogic  # noqa: E402

TRAINING_SCRIPT = r"""
import json, pathlib, subprocess, sys, time
run = pathlib.Path(sys.argv[1]); run.mkdir(parents=True, exist_ok=True)
(run / "checkpoint.pt").write_text("iteration 100")
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
(run / "child.pid").write_text(str(child.pid))
for i in range(int(sys.argv[2])):
    print(json.dumps({"stage": "train", "step": i, "total": 1000, "eta_s": 50}), flush=True)
    time.sleep(0.05)
child.kill()
"""


def _training(tmp_path: Path, steps: int = 2400) -> tuple[JobChain, Path]:
    """A training-like job: checkpoints in its own folder (resume_folder), a grandchild, progress lines."""
    resume = tmp_path / "ln_ddpm_tiny"
    run = tmp_path / "work" / "ln-ddpm-train-1"
    run.mkdir(parents=True)
    chain = JobChain([Step("Training LN-DDPM", [], command=[sys.executable, "-c", TRAINING_SCRIPT, str(resume),
                                                            str(steps)])], run, resume_folder=resume)
    deadline = time.monotonic() + 60
    while not (resume / "child.pid").exists() and time.monotonic() < deadline:
        chain.poll()
        time.sleep(0.05)
    return chain, resume


def _answers(*replies: bool):
    asked: list[str] = []

    def ask(text: str) -> bool:
        asked.append(text)
        return replies[len(asked) - 1]

    return ask, asked


def test_cancel_asks_and_a_stopped_training_keeps_its_run_folder(tmp_path: Path, process_alive):
    chain, resume = _training(tmp_path)
    pid, child = chain.process.process.pid, int((resume / "child.pid").read_text())
    ask, asked = _answers(False, True)
    assert not job_guard.confirm_cancel(chain, ask, "Train LN-DDPM")       # "No": nothing happens
    assert chain.poll().running and process_alive(pid)
    assert job_guard.confirm_cancel(chain, ask, "Train LN-DDPM")           # "Yes": stopped
    assert len(asked) == 2 and str(resume) in asked[0] and "click Train LN-DDPM again to resume" in asked[0]
    time.sleep(0.2)
    assert chain.state.cancelled and not process_alive(pid) and not process_alive(child)
    assert (resume / "checkpoint.pt").read_text() == "iteration 100"       # the training's folder stays
    assert not chain.run_dir.exists()                                       # the job's scratch folder goes


def test_scene_close_asks_and_a_kept_training_runs_on_through_a_real_scene_clear(core, tmp_path: Path, process_alive):
    chain, resume = _training(tmp_path, steps=30)
    ask, asked = _answers(True)
    kept = []
    tag = core.scene.AddObserver(core.scene.StartCloseEvent,
                                 lambda caller, event: kept.append(job_guard.on_scene_close(chain, ask)))
    core.scene.Clear(0)   # File > Close Scene and loading a scene both fire StartCloseEvent
    core.scene.RemoveObserver(tag)
    assert kept == [True] and "Keep it running?" in asked[0] and "needs nothing from the scene" in asked[0]
    assert chain.poll().running and process_alive(chain.process.process.pid)
    state = chain.wait(timeout_s=60)
    assert state.succeeded and (resume / "checkpoint.pt").exists()


def test_scene_close_stop_answer_stops_the_job(core, tmp_path: Path, process_alive):
    chain, resume = _training(tmp_path)
    pid = chain.process.process.pid
    ask, asked = _answers(False)
    tag = core.scene.AddObserver(core.scene.StartCloseEvent, lambda caller, event: job_guard.on_scene_close(chain, ask))
    core.scene.Clear(0)
    core.scene.RemoveObserver(tag)
    time.sleep(0.2)
    assert chain.state.cancelled and not process_alive(pid) and (resume / "checkpoint.pt").exists()


def test_a_kept_job_whose_results_belong_in_the_closed_scene_leaves_them_in_its_run_folder(core, tmp_path: Path):
    from LNSynthScene import mrml_bridge as mb

    logic = SceneLogic(core.scene, tmp_path / "work")
    run = logic.new_run_dir("anatomy")
    loaded = []

    def load() -> object:   # what a scene-bound job does on success: add nodes to the scene
        loaded.append(mb.new_segmentation_node(core.scene, "anatomy"))
        return loaded[-1]

    chain = logic.chain([Step("Coarse anatomy", [], command=[sys.executable, "-c", "import time; time.sleep(1.5)"])],
                        run, on_success=load, scene_bound=True)
    ask, asked = _answers(True)
    tag = core.scene.AddObserver(core.scene.StartCloseEvent, lambda caller, event: job_guard.on_scene_close(chain, ask))
    core.scene.Clear(0)
    core.scene.RemoveObserver(tag)
    assert str(run) in asked[0]
    state = chain.wait(timeout_s=60)
    assert state.succeeded and chain.result == run and run.is_dir() and not loaded
    assert str(run) in job_guard.results_left_on_disk(chain.result)


def test_the_panels_jobs_say_whether_they_resume_or_load_into_the_scene(core, tmp_path: Path, example_ct):
    from LNSynthLib.cases import Case, save_case
    from LNSynthLib.volumes.geometry import Volume
    from LNSynthLib.volumes.io import read_volume
    from LNSynthScene import mrml_bridge as mb

    logic = SceneLogic(core.scene, tmp_path / "work")
    ct_node = mb.load_volume_file(core.scene, example_ct, "example CT")
    anatomy = logic.start_anatomy(ct_node, "coarse", "cpu")
    assert anatomy.scene_bound and anatomy.resume_folder is None
    anatomy.cancel()
    ct = read_volume(example_ct)
    ln = np.zeros(ct.shape, np.uint8)
    ln[40:44, 40:44, 40:44] = 1
    save_case(Case("case", ct, Volume(np.ones(ct.shape, np.uint8), ct.geometry), Volume(ln, ct.geometry),
                   {"synthetic": False}), tmp_path / "cases")
    training = logic.start_ddpm_training(tmp_path / "cases", tmp_path / "ln_ddpm_tiny", "tiny", device="cpu")
    assert training.resume_folder == tmp_path / "ln_ddpm_tiny" and not training.scene_bound
    assert "is kept" in job_guard.question(training, job_guard.EXIT)
    training.cancel()
    nnunet = logic.start_nnunet_train(tmp_path / "project", 5, "cpu")
    assert nnunet.resume_folder == tmp_path / "project"
    nnunet.cancel()


def test_a_reload_hands_a_kept_job_to_the_reloaded_panel(tmp_path: Path, process_alive):
    chain, resume = _training(tmp_path)
    ask, asked = _answers(True, False)
    assert job_guard.on_reload(chain, "trainDdpmButton", ask, "Train LN-DDPM")
    assert "reloaded panel follows it" in asked[0]
    assert job_guard.take_over() == (chain, "trainDdpmButton") and job_guard.take_over() is None
    assert chain.poll().running
    assert not job_guard.on_reload(chain, "trainDdpmButton", ask)      # "No": stopped, nothing handed over
    assert chain.state.cancelled and job_guard.take_over() is None
    assert job_guard.stop_on_unload(None) is False


def test_closing_the_main_window_asks_and_can_be_refused(tmp_path: Path, process_alive):
    QtWidgets = pytest.importorskip("PySide6.QtWidgets")
    from PySide6.QtCore import QEvent, QObject

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    window = QtWidgets.QMainWindow()
    window.show()
    chain, resume = _training(tmp_path)
    pid = chain.process.process.pid
    replies, asked = [False, True], []

    def ask(text: str) -> bool:
        asked.append(text)
        return replies[len(asked) - 1]

    guard = job_guard.close_guard(QObject, QEvent, lambda: job_guard.exit_allowed(chain, ask, "Train LN-DDPM"))
    window.installEventFilter(guard)
    assert window.close() is False                  # "No": the exit is cancelled, as Slicer's own "Cancel exit"
    assert window.isVisible() and chain.poll().running and process_alive(pid)
    assert "Stop it and exit Slicer?" in asked[0] and str(resume) in asked[0]
    assert window.close() is True and not window.isVisible()
    time.sleep(0.2)
    assert chain.state.cancelled and not process_alive(pid) and (resume / "checkpoint.pt").exists()
    window.show()
    assert window.close() is True and len(asked) == 2   # no job: no question
    window.removeEventFilter(guard)
    app.processEvents()
