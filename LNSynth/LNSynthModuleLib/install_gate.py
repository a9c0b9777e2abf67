"""One package install at a time, with feedback, and a declined install that is not an error.

Slicer's installers block the GUI thread: PyTorchUtils runs light-the-torch through
`slicer.util._executePythonModule` and `pip_install` runs pip through `launchConsoleProcess`; both
process events only between pip's output lines. A click delivered there would start a second
pip in the same site-packages. The gate refuses that re-entry; while it installs, the panel shows a
wait cursor, disables its buttons and writes a status line (`set_busy`, `show`), and lifts the wait
cursor while a question is open. A "No" to the install question (`dependencies.InstallDeclined`)
ends with a status line, not an error dialog. Qt-free, so the tests drive it with real processes.
"""

from __future__ import annotations

from collections.abc import Callable

from .dependencies import InstallDeclined

INSTALLING = ("Installing Python packages for LNSynth's background jobs. Slicer may not respond for a few "
              "minutes; pip's progress is in the Python console.")
ALREADY = "An install is already running: wait for it to finish."
DECLINED = "Not installed: the install was declined. The background jobs need these packages."


class InstallGate:
    """Runs `install(ask)` once at a time; `set_busy(True/False)` and `show(text)` give the feedback."""

    def __init__(self, set_busy: Callable[[bool], None], show: Callable[[str], None]) -> None:
        self.set_busy = set_busy
        self.show = show
        self.running = False

    def run(self, install: Callable[[Callable[[str], bool]], bool], ask: Callable[[str], bool],
            needed: Callable[[], bool] = lambda: True) -> bool | None:
        """True: installed (or nothing needed); False: the installer reported failure; None: refused
        because an install is already running, or declined. Other errors propagate after the feedback ends."""
        if self.running:
            self.show(ALREADY)
            return None
        if not needed():
            return True
        self.running = True

        def asked(text: str) -> bool:
            self.set_busy(False)   # no wait cursor over a question
            try:
                return ask(text)
            finally:
                self.set_busy(True)
                self.show(INSTALLING)

        self.set_busy(True)
        self.show(INSTALLING)
        try:
            return install(asked)
        except InstallDeclined:
            self.show(DECLINED)
            return None
        finally:
            self.running = False
            self.set_busy(False)
