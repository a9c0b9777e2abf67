"""A job process takes the cores the machine's load leaves free, waits passively, and keeps a user's setting."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from LNSynthLib import devices
from LNSynthLib.devices import (
    NNUNET_THREADS_ENV,
    RULE_MARK,
    THREADS_ENV,
    DeviceError,
    apply_job_threads,
    job_threads,
)

SETTINGS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", RULE_MARK, THREADS_ENV, NNUNET_THREADS_ENV)


@pytest.fixture()
def machine(monkeypatch: pytest.MonkeyPatch):
    """A machine of `cores` cores at 1-minute load `load`, with no thread setting in the environment."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)

    def set_machine(cores: int, load: float) -> None:
        monkeypatch.setattr(devices.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
        monkeypatch.setattr(devices.os, "getloadavg", lambda: (load, load, load))

    return set_machine


@pytest.mark.parametrize("cores,load,threads", [(2, 0.1, 2), (2, 0.6, 1), (2, 1.2, 1), (2, 11.0, 1),
                                                (16, 3.2, 13), (16, 0.0, 16)])
def test_the_free_cores_by_load(machine, cores: int, load: float, threads: int) -> None:
    machine(cores, load)
    assert job_threads() == threads


def test_a_setting_wins_over_the_load(machine, monkeypatch: pytest.MonkeyPatch) -> None:
    machine(16, 0.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert job_threads() == 3
    monkeypatch.setenv(NNUNET_THREADS_ENV, "0")
    assert job_threads(NNUNET_THREADS_ENV) == 1 and job_threads() == 3
    monkeypatch.setenv(THREADS_ENV, "two")
    with pytest.raises(DeviceError, match=THREADS_ENV):
        job_threads()


def test_a_value_the_rule_set_is_decided_anew_in_a_child(machine, monkeypatch: pytest.MonkeyPatch) -> None:
    machine(2, 5.0)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv(RULE_MARK, "2")    # inherited from a parent job that found the machine idle
    monkeypatch.delitem(sys.modules, "torch", raising=False)   # as at a job's start: torch not yet imported
    assert apply_job_threads() == 1
    assert (os.environ["OMP_NUM_THREADS"], os.environ["OMP_WAIT_POLICY"]) == ("1", "PASSIVE")


PROBE = """
import os, sys
sys.argv = ["lnsynth", "bench", "threads", "--help"]
from LNSynthLib.cli.main import main
try:
    main()
except SystemExit:
    pass
print("THREADS", os.environ["OMP_NUM_THREADS"], os.environ["OMP_WAIT_POLICY"], "torch" in sys.modules)
"""


def test_a_job_process_sets_the_rule_before_torch_loads() -> None:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, encoding="utf-8", errors="replace",
                          env={**env, THREADS_ENV: "1"}, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "THREADS 1 PASSIVE False"
