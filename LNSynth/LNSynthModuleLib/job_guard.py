"""Ask before a running job is stopped: on Cancel, scene close or load, module reload and application exit.

A job stopped unasked loses hours (an LN-DDPM or nnU-Net training) or the samples made so far. Slicer
gives a module no way to veto a scene close (StartCloseEvent is a notification) or a reload
(`reloadScriptedModule` calls `cleanup()`), but the main window's close can be refused: an event
filter that ignores the QCloseEvent keeps the window open, as `qSlicerMainWindow::closeEvent` itself
does with `event->ignore()` when the user cancels its own exit question. So:

- Cancel button: "Stop it?" - Stop cancels, else nothing happens.
- Scene close / load: "Keep it running?" - a kept training runs on (its result needs no scene); a kept
  job whose results belong in the closed scene leaves them in its run folder and says where.
- Module reload: "Keep it running?" - the reloaded panel follows the kept job (`take_over`).
- Exit (main window close): "Stop it and exit?" - otherwise the exit is cancelled.

Trainings write into `chain.resume_folder`, which a stop never deletes; the next click resumes there.
Every decision is a plain function of the chain and the user's answer (`ask(text) -> bool`), so the
tests run them on real processes; the panel passes Slicer's confirmation dialog as `ask`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from LNSynthLib.jobs.chain import JobChain

CANCEL, SCENE_CLOSE, RELOAD, EXIT = "cancel", "scene", "reload", "exit"

# A job kept through a module reload, for the reloaded widget (this module is not reloaded with LNSynth.py).
_handed_over: dict[str, object] = {}


def running(chain: JobChain | None) -> bool:
    return chain is not None and chain.state.running


def what_is_lost(chain: JobChain, button_text: str = "") -> str:
    """What stopping this job costs, in the user's terms."""
    if chain.resume_folder is not None:
        again = f"click {button_text} again" if button_text else "start it again"
        return (f"Its run folder {chain.resume_folder} is kept: {again} to resume from its last "
                "checkpoint (the progress since then is lost).")
    return "What it has made so far is deleted."


def question(chain: JobChain, event: str, button_text: str = "") -> str:
    """The text of the confirmation for `event` (one of CANCEL, SCENE_CLOSE, RELOAD, EXIT)."""
    job = chain.state.label or "A job"
    progress = f" ({int(round(100 * chain.state.fraction))} %)" if chain.state.fraction else ""
    lost = what_is_lost(chain, button_text)
    if event == CANCEL:
        return f"Stop {job}{progress}?\n\n{lost}"
    if event == SCENE_CLOSE:
        kept = ("It needs nothing from the scene and can finish." if not chain.scene_bound else
                f"Its results stay in its run folder ({chain.run_dir}) instead of appearing in the new scene.")
        return (f"{job}{progress} is running and the scene is being closed.\n\nKeep it running? {kept}\n\n"
                f"If you stop it: {lost}")
    if event == RELOAD:
        return (f"{job}{progress} is running and LNSynth is being reloaded.\n\nKeep it running? The "
                f"reloaded panel follows it.\n\nIf you stop it: {lost}")
    if event == EXIT:
        return f"{job}{progress} is running. Stop it and exit Slicer?\n\n{lost}"
    raise ValueError(f"unknown event {event!r}")


def confirm_cancel(chain: JobChain | None, ask: Callable[[str], bool], button_text: str = "") -> bool:
    """The Cancel button: True (and the job stopped) when the user confirms."""
    if not running(chain):
        return False
    if not ask(question(chain, CANCEL, button_text)):
        return False
    chain.cancel()
    return True


def on_scene_close(chain: JobChain | None, ask: Callable[[str], bool], button_text: str = "") -> bool:
    """Scene close or load: True when the job runs on (asked first); False when there is none or it was stopped.

    A kept job whose results belong in the closed scene no longer loads them: `chain.result` is then
    its run folder, where they are.
    """
    if not running(chain):
        return False
    if ask(question(chain, SCENE_CLOSE, button_text)):
        if chain.scene_bound:
            run_dir = chain.run_dir
            chain.on_success = lambda: run_dir
        return True
    chain.cancel()
    return False


def on_reload(chain: JobChain | None, button_name: str, ask: Callable[[str], bool], button_text: str = "") -> bool:
    """Module reload: True when the job is handed to the reloaded panel, False when stopped or none."""
    if not running(chain):
        return False
    if ask(question(chain, RELOAD, button_text)):
        _handed_over["job"] = (chain, button_name)
        return True
    chain.cancel()
    return False


def take_over() -> tuple[JobChain, str] | None:
    """The job a reloaded panel should follow (chain, button name), once."""
    handed = _handed_over.pop("job", None)
    if handed is None or not running(handed[0]):
        return None
    return handed


def exit_allowed(chain: JobChain | None, ask: Callable[[str], bool], button_text: str = "") -> bool:
    """Application exit: True when Slicer may close (no job, or the user chose to stop it)."""
    if not running(chain):
        return True
    if not ask(question(chain, EXIT, button_text)):
        return False
    chain.cancel()
    return True


def stop_on_unload(chain: JobChain | None) -> bool:
    """The module is unloaded without a question being possible (`slicer.util.exit()`, a scripted unload):
    stop the job; a training's `resume_folder` stays. True when a job was stopped."""
    if not running(chain):
        return False
    chain.cancel()
    return True


def close_guard(qobject_class: type, qevent_class: type, allowed: Callable[[], bool]) -> object:
    """An event filter for the main window that refuses its close while `allowed()` is False.

    `qobject_class`/`qevent_class` are `qt.QObject`/`qt.QEvent` in Slicer (PythonQt); the filter
    subclasses QObject as SampleData's `TextEditFinishEventFilter` does. The close event is ignored
    *and* consumed: an event filter that only returned True would leave the event accepted, and the
    window would close anyway.
    """

    class CloseGuard(qobject_class):
        def eventFilter(self, watched, event):  # noqa: N802 (Qt's name)
            if event.type() == qevent_class.Close and not allowed():
                event.ignore()
                return True
            return False

    return CloseGuard()


def results_left_on_disk(run_dir: str | Path) -> str:
    """Status line for a job that finished after its scene was closed."""
    return f"Finished after the scene was closed: the results are in {run_dir}."
