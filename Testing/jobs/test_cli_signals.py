"""SIGTERM handling of `lnsynth`: a cancel in the CLI process, a plain stop in forked pool workers."""

from __future__ import annotations

import multiprocessing
import signal
import time

import pytest

from LNSynthLib.cli.main import cancel_on_sigterm, main
from LNSynthLib.errors import JobCancelled


def _sleep() -> None:
    time.sleep(60)


def test_the_handler_cancels_the_process_that_installed_it():
    with pytest.raises(JobCancelled, match="signal 15"):
        cancel_on_sigterm()(signal.SIGTERM, None)


def test_a_forked_worker_stops_on_sigterm_instead_of_raising():
    """Pool.terminate sends SIGTERM; a worker that raised instead could leave the pool waiting forever."""
    previous = signal.signal(signal.SIGTERM, cancel_on_sigterm())
    try:
        worker = multiprocessing.get_context("fork").Process(target=_sleep)
        worker.start()
        time.sleep(0.2)
        worker.terminate()
        worker.join(timeout=10)
        assert worker.exitcode == -signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_main_restores_the_previous_handler(capsys):
    before = signal.getsignal(signal.SIGTERM)
    assert main(["nnunet", "predict", "--model", "/nonexistent", "--input", "/nonexistent", "--out",
                 "/nonexistent/o", "--device", "cpu"]) == 2
    assert signal.getsignal(signal.SIGTERM) is before
    assert "trained-model folder" in capsys.readouterr().err
