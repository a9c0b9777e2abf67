"""Fixtures of the web app tests: a real `lnsynth serve` process, headless Chromium, phantom data.

The browser tests skip with the reason when the web extra (make web) or Chromium and its driver
(apt-get install chromium chromium-driver) are missing; no browser is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WEB_PACKAGES = ("slicer", "trame_slicer", "trame_vuetify", "selenium")
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER = "chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,900")
SERVER_START_S = 120


def missing_web_packages() -> list[str]:
    return [name for name in WEB_PACKAGES if importlib.util.find_spec(name) is None]


def require_web_extra() -> None:
    missing = missing_web_packages()
    if missing:
        pytest.skip(f"the web extra is not installed (missing {', '.join(missing)}): run `make web`",
                    allow_module_level=True)


def browser_paths() -> tuple[str, str]:
    chromium = next((path for name in CHROMIUM if (path := shutil.which(name))), None)
    driver = shutil.which(CHROMEDRIVER)
    if not chromium or not driver:
        pytest.skip("Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
                    allow_module_level=True)
    return chromium, driver


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    url: str
    work: Path
    process: subprocess.Popen
    log: Path

    def session_folder(self) -> Path:
        folders = sorted(self.work.glob("session-*"))
        assert len(folders) == 1, folders
        return folders[0]


def start_server(work: Path, log: Path, *extra: str) -> Served:
    """`lnsynth serve` in its own process group; returns once it prints its URL."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    out = open(log, "w", encoding="utf-8")  # noqa: SIM115 (kept open for the process)
    process = subprocess.Popen([sys.executable, "-m", "LNSynthLib", "serve", "--port", str(port), "--work", str(work),
                                *extra], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                               start_new_session=True)
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        if "lnsynth serve: http://" in text:
            url = "http://" + text.split("lnsynth serve: http://", 1)[1].split()[0]
            return Served(url, work, process, log)
        if process.poll() is not None:
            break
        time.sleep(0.5)
    stop_server(process)
    raise AssertionError("lnsynth serve did not start:\n" + log.read_text(encoding="utf-8", errors="replace")[-4000:])


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    require_web_extra()
    server = start_server(tmp_path / "work", tmp_path / "serve.log")
    yield server
    stop_server(server.process)


@pytest.fixture
def browser(tmp_path: Path):
    """Headless Chromium driven through the system chromedriver (fresh profile, no network)."""
    require_web_extra()
    chromium, driver_path = browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def lnsynth(*args: object, timeout: float = 600) -> None:
    env = {**os.environ, "LNSYNTH_PROGRESS": "quiet", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "LNSynthLib", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)
    assert done.returncode == 0, f"lnsynth {args[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def phantom_case(tmp_path_factory) -> Path:
    """One small prepared phantom case (48×64×64 voxels, 1 mm): its ct.nii.gz is what the page loads."""
    root = tmp_path_factory.mktemp("web_phantom")
    lnsynth("phantom", "--out", root / "cases", "--cases", 1, "--shape", 48, 64, 64)
    return root / "cases" / "phantom_000"


@pytest.fixture(scope="module")
def tiny_checkpoint(phantom_case: Path, tmp_path_factory) -> Path:
    """A 2-iteration `tiny` LN-DDPM on 16³ patches: enough to run the synthesis chain end to end."""
    run = tmp_path_factory.mktemp("web_tiny") / "run"
    lnsynth("train", "--config", "tiny", "--cases", phantom_case.parent, "--run-dir", run, "--set",
            "train.iterations=2", "--set", "train.batch_size=1", "--set", "train.patch_size=[16,16,16]",
            "--device", "cpu")
    assert (run / "checkpoint.pt").is_file()
    return run / "checkpoint.pt"
