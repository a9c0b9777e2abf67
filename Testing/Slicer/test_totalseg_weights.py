"""TotalSegmentator weights on first use (issue 21, row 4): the panel's anatomy job gets them first, with
TotalSegmentator's own download function, progress and Cancel, into TotalSegmentator's home; offline, a
precise message and the zip import.

The download cannot reach GitHub here. TotalSegmentator's URL is fixed in its code, but it downloads with
`requests`, which honours the standard proxy and CA-bundle variables: the tests put a local proxy on
127.0.0.1 in the job's environment that answers for github.com over TLS (a certificate made here) and
serves a small weights zip. So the real `download_pretrained_weights` runs in the real job process,
unchanged; the network-blocked tests point the proxy at a closed port.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("totalsegmentator")

from LNSynthLib.anatomy import totalseg_weights as tw  # noqa: E402
from LNSynthLib.anatomy.totalseg import missing_weights, required_datasets, weights_root  # noqa: E402
from LNSynthLib.jobs.chain import JobChain, python_executable  # noqa: E402

TASK_ID, FOLDER, VERSION = required_datasets(fast=True)[0]
URL_PATH = f"/wasserth/TotalSegmentator/releases/download/{VERSION}/{FOLDER}.zip"
TRAINER = "nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres"


def weights_zip(size: int = 2_000_000, folder: str = FOLDER) -> bytes:
    """A zip laid out as TotalSegmentator's release zips are (an incompressible checkpoint of `size` bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{folder}/{TRAINER}/dataset.json", json.dumps({"labels": {"background": 0}}))
        archive.writestr(f"{folder}/{TRAINER}/plans.json", json.dumps({"plans_name": "nnUNetPlans"}))
        archive.writestr(f"{folder}/{TRAINER}/fold_0/checkpoint_final.pth", os.urandom(size))
    return buffer.getvalue()


class GitHubProxy:
    """An HTTP proxy on 127.0.0.1 that answers CONNECT github.com:443 itself, over TLS with its own certificate,
    and serves `payload` at TotalSegmentator's weights URL (`delay_s` between 64 kB chunks)."""

    def __init__(self, folder: Path, payload: bytes, delay_s: float = 0.0) -> None:
        if shutil.which("openssl") is None:
            pytest.skip("openssl is needed to make the proxy's certificate")
        self.cert, self.key = folder / "github.pem", folder / "github.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
                        "-out", str(self.cert), "-days", "2", "-subj", "/CN=github.com",
                        "-addext", "subjectAltName=DNS:github.com"], check=True, capture_output=True)
        self.payload, self.delay_s, self.requests = payload, delay_s, []
        proxy = self

        class Inner(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                proxy.requests.append(self.path)
                if self.path != URL_PATH:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(proxy.payload)))
                self.end_headers()
                for start in range(0, len(proxy.payload), 65536):
                    self.wfile.write(proxy.payload[start:start + 65536])
                    self.wfile.flush()
                    time.sleep(proxy.delay_s)

            def log_message(self, *args):
                pass

        class Connect(http.server.BaseHTTPRequestHandler):
            def do_CONNECT(self):
                if not self.path.startswith("github.com:"):
                    self.send_error(403)
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(proxy.cert, proxy.key)
                with contextlib_suppress():
                    with context.wrap_socket(self.connection, server_side=True) as tls:
                        Inner(tls, self.client_address, self.server)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Connect)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def environment(self) -> dict[str, str]:
        url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return {"HTTPS_PROXY": url, "https_proxy": url, "REQUESTS_CA_BUNDLE": str(self.cert), "NO_PROXY": "",
                "no_proxy": ""}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def contextlib_suppress():
    import contextlib

    return contextlib.suppress(ssl.SSLError, ConnectionError, OSError)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh user: HOME in tmp_path, no TotalSegmentator variables (its standard home is ~/.totalsegmentator)."""
    for name in ("TOTALSEG_HOME_DIR", "TOTALSEG_WEIGHTS_PATH", "HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                 "all_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    (tmp_path / "user").mkdir()
    return tmp_path / "user" / ".totalsegmentator"


def _run(step, run_dir: Path, timeout_s: float = 300):
    chain = JobChain([step], run_dir, python=python_executable())
    return chain, chain.wait(timeout_s=timeout_s)


def test_the_weights_go_to_totalsegmentators_standard_home(home):
    from totalsegmentator.config import get_totalseg_dir, get_weights_dir

    assert weights_root(None) == Path(get_weights_dir()) == home / "nnunet" / "results"
    assert Path(get_totalseg_dir()) == home
    assert [(t, f) for t, f, _ in missing_weights(None)] == [(TASK_ID, FOLDER)]


def test_without_network_the_job_fails_with_the_offline_path(home, tmp_path, monkeypatch):
    """Network blocked (the proxy is a closed port): the real job process ends with a message that names the
    zip's address, the panel's import, the folder it goes to and the coarse method, and leaves nothing behind."""
    closed = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("HTTPS_PROXY", closed)
    monkeypatch.setenv("https_proxy", closed)
    chain, state = _run(tw.download_step(python_executable()), tmp_path / "run")
    assert not state.succeeded and not state.cancelled
    error = state.error
    root = home / "nnunet" / "results"
    for expected in (f"cannot download the TotalSegmentator weights for Task {TASK_ID}", f"https://github.com{URL_PATH}",
                     "no network connection", tw.PANEL_IMPORT, f"it is unpacked into {root}", "'coarse'"):
        assert expected in error, expected
    assert not (root / FOLDER).exists() and not list(root.glob(f"*{tw.MARKER_SUFFIX}"))
    assert not (root / tw.TMP_ZIP).exists()
    config = json.loads((home / "config.json").read_text())
    assert config["send_usage_stats"] is False


def test_the_download_runs_totalsegmentators_function_with_progress_and_cancel(home, tmp_path, monkeypatch,
                                                                               process_alive):
    """A slow download shows progress in MB and is cancelled mid-way (the process tree is gone); the next run
    discards what was left, downloads again through TotalSegmentator's function, and the model is complete."""
    payload = weights_zip()
    proxy = GitHubProxy(tmp_path, payload, delay_s=0.25)
    try:
        for name, value in proxy.environment().items():
            monkeypatch.setenv(name, value)
        root = home / "nnunet" / "results"
        chain = JobChain([tw.download_step(python_executable())], tmp_path / "run1", python=python_executable())
        deadline = time.monotonic() + 120
        while chain.poll().running and not (chain.state.stage.startswith("downloading") and
                                            0 < chain.state.fraction < 0.5):
            assert time.monotonic() < deadline, chain.state.log_tail
            time.sleep(0.05)
        assert f"Task {TASK_ID} (1 of 1)" in chain.state.stage
        assert any(e.get("mb", 0) > 0 for e in chain.state.events)
        pid = chain.process.process.pid
        chain.cancel()
        assert chain.state.cancelled and not process_alive(pid)
        assert not tw._complete(root / FOLDER) and tw._marker(root / FOLDER).exists()   # left by the kill
        # A stopped unpacking would leave a partial dataset folder too, which TotalSegmentator would skip:
        (root / FOLDER / TRAINER).mkdir(parents=True, exist_ok=True)
        (root / FOLDER / TRAINER / "plans.json").write_text("{}")

        proxy.delay_s = 0.0
        chain, state = _run(tw.download_step(python_executable()), tmp_path / "run2")
        assert state.succeeded, state.error
        assert "removed an interrupted download" in "\n".join(state.log_tail)
        checkpoint = root / FOLDER / TRAINER / "fold_0" / "checkpoint_final.pth"
        assert checkpoint.read_bytes() == zipfile.ZipFile(io.BytesIO(payload)).read(
            f"{FOLDER}/{TRAINER}/fold_0/checkpoint_final.pth")
        assert missing_weights(None) == [] and not tw._marker(root / FOLDER).exists()
        assert not (root / tw.TMP_ZIP).exists()
        assert proxy.requests.count(URL_PATH) == 2
        event = next(e for e in state.events if e.get("stage") == tw.EVENT)
        assert event["path"] == str(root) and event["downloaded"] == [TASK_ID] and event["missing"] == []

        chain, state = _run(tw.download_step(python_executable()), tmp_path / "run3")   # present: nothing to do
        assert state.succeeded and proxy.requests.count(URL_PATH) == 2
    finally:
        proxy.close()


def test_a_model_folder_lnsynth_did_not_make_is_named_not_deleted(home, tmp_path):
    root = home / "nnunet" / "results"
    (root / FOLDER / "mine").mkdir(parents=True)
    chain, state = _run(tw.download_step(python_executable()), tmp_path / "run")
    assert f"{root / FOLDER} holds no complete TotalSegmentator model" in state.error
    assert (root / FOLDER / "mine").is_dir()


def test_a_weights_zip_is_imported_with_totalsegmentators_import_where_it_reads(home, tmp_path):
    """The offline path: the zip unpacked by TotalSegmentator's `totalseg_import_weights`, in a job."""
    from totalsegmentator.config import get_weights_dir

    archive = tmp_path / f"{FOLDER}.zip"
    archive.write_bytes(weights_zip(1000))
    chain, state = _run(tw.import_step(python_executable(), archive), tmp_path / "run")
    assert state.succeeded, state.error
    assert missing_weights(None) == []
    assert (Path(get_weights_dir()) / FOLDER / TRAINER / "fold_0" / "checkpoint_final.pth").is_file()
    assert not list(weights_root(None).glob(f"*{tw.MARKER_SUFFIX}"))

    other = tmp_path / "other.zip"
    other.write_bytes(weights_zip(1000, folder="Dataset298_TotalSegmentator_total_6mm_1559subj"))
    shutil.rmtree(weights_root(None) / FOLDER)
    chain, state = _run(tw.import_step(python_executable(), other), tmp_path / "run2")
    assert f"but the anatomy still needs Task {TASK_ID}" in state.error   # the zip was not the one needed

    wrong = tmp_path / "photos.zip"
    with zipfile.ZipFile(wrong, "w") as z:
        z.writestr("holiday.jpg", b"x")
    chain, state = _run(tw.import_step(python_executable(), wrong), tmp_path / "run3")
    assert "holds no TotalSegmentator v2 model" in state.error
    assert not (weights_root(None) / "holiday.jpg").exists()   # refused before anything was unpacked


def test_the_panels_anatomy_job_gets_the_weights_first_and_coarse_needs_none(scene_case, tmp_path):
    logic, ct_node, *_ = scene_case
    chains = {}
    for method, weights_dir in (("totalseg", None), ("totalseg", tmp_path / "weights"), ("coarse", None)):
        chain = logic.start_anatomy(ct_node, method, "cpu", weights_dir)
        chain.cancel()
        chains[(method, weights_dir)] = chain
    first = chains[("totalseg", None)].steps
    assert [s.label for s in first] == [tw.DOWNLOAD_LABEL, "TotalSegmentator"]
    assert first[0].command == [logic.python, "-m", tw.__name__, "download"]
    chosen = chains[("totalseg", tmp_path / "weights")].steps[0].command
    assert chosen[-2:] == ["--weights-dir", str(tmp_path / "weights")]
    assert [s.label for s in chains[("coarse", None)].steps] == ["Coarse anatomy"]


def test_the_panels_import_reports_where_the_weights_went(core, home, tmp_path):
    from LNSynthScene.logic import SceneLogic

    logic = SceneLogic(core.scene, tmp_path / "work")
    archive = tmp_path / f"{FOLDER}.zip"
    archive.write_bytes(weights_zip(1000))
    chain = logic.start_weights_import(archive)
    state = chain.wait(timeout_s=300)
    assert state.succeeded, state.error
    assert chain.result == str(home / "nnunet" / "results")


def test_the_panels_import_button_starts_the_import_job_and_reports_the_folder():
    """Wiring of the offline path in the panel (LNSynth.py needs Slicer's Qt to import: read it)."""
    import ast

    from LNSynthModuleLib.panel_jobs import DONE_HANDLERS

    repo = Path(__file__).resolve().parents[2]
    source = (repo / "LNSynth" / "LNSynth.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    functions = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    handler = ast.unparse(functions["onImportWeights"])
    assert "self._toggleOrCancel(self.ui.importWeightsButton)" in handler          # Cancel while it runs
    assert "qt.QFileDialog.getOpenFileName(" in handler and "*.zip" in handler
    assert ("self._startWith('Could not import the TotalSegmentator weights.', 'importWeightsButton', "
            "lambda e: e.start_weights_import(path, _path(p.weightsFolder)))") in handler
    assert DONE_HANDLERS["importWeightsButton"] == "_weightsImported" and "_weightsImported" in functions
    buttons = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "ACTION_BUTTONS")
    assert "importWeightsButton" in ast.literal_eval(buttons)                    # disabled while a job runs
    assert "('importWeightsButton', self.onImportWeights)" in ast.unparse(functions["setup"])
    ui = (repo / "LNSynth" / "Resources" / "UI" / "LNSynth.ui").read_text(encoding="utf-8")
    assert '<widget class="QPushButton" name="importWeightsButton">' in ui


def test_the_panel_builds_the_weights_jobs_without_importing_totalsegmentator_or_torch(tmp_path):
    """In Slicer's process only the step builders run: with TotalSegmentator, torch and the other job packages
    unimportable, Create anatomy (TotalSegmentator) and the zip import still build and start their jobs."""
    import sys
    import textwrap

    pytest.importorskip("slicer")
    repo = Path(__file__).resolve().parents[2]
    script = textwrap.dedent('''
        import sys
        BLOCKED = {"torch", "monai", "nnunetv2", "nibabel", "totalsegmentator", "skimage", "matplotlib", "yaml"}

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{name} is not bundled with Slicer")
                return None

        sys.meta_path.insert(0, Block())
        sys.path[:0] = [sys.argv[1] + "/LNSynth", sys.argv[1]]
        from pathlib import Path
        from LNSynthScene import mrml_bridge as mb
        from LNSynthScene.logic import SceneLogic
        from LNSynthLib.phantom import generate_phantom

        core = mb.create_core_scene()
        logic = SceneLogic(core.scene, Path(sys.argv[2]))
        ct_node = mb.volume_to_node(generate_phantom(seed=1, shape_zyx=(20, 32, 32)).ct, core.scene, "CT")
        for chain in (logic.start_anatomy(ct_node, "totalseg", "cpu"), logic.start_weights_import(sys.argv[2] + "/w.zip")):
            chain.cancel()
            print([s.label for s in chain.steps])
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        print("LEAKED", leaked)
        sys.exit(1 if leaked else 0)
    ''')
    done = subprocess.run([sys.executable, "-c", script, str(repo), str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"['{tw.DOWNLOAD_LABEL}', 'TotalSegmentator']" in done.stdout and f"['{tw.IMPORT_LABEL}']" in done.stdout
