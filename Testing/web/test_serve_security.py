"""`lnsynth serve` attacked as a hostile page would, through the real server (HTTP and the page's websocket).

Each test starts the launcher on 127.0.0.1 and opens at most two sessions (each a Slicer scene in
its own process, ~0.7 GB): upload names and sizes, paths outside the allowed folders, the Config
field, idle sessions, and the token's exposure in the log and in `ps`.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import pytest

from LNSynthLib.phantom import generate_phantom
from LNSynthLib.volumes.io import write_volume

from .conftest import Served, require_web_extra, start_server, stop_server
from .page_client import PageClient, cookie, get, open_session, post

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", re.MULTILINE)


def _log(server: Served) -> str:
    return server.log.read_text(encoding="utf-8", errors="replace")


def _wait_for(predicate, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Path]:
    """A data folder with a small CT, a secret outside it, and a text file with a `.yaml` suffix."""
    data, secret = tmp_path / "data", tmp_path / "secret"
    data.mkdir()
    secret.mkdir()
    write_volume(generate_phantom(seed=1, shape_zyx=(24, 32, 32)).ct, data / "ct.nii.gz")
    (data / "notes.yaml").write_text("db_password: hunter2\nother: [unclosed\n")
    (secret / "private.nii.gz").write_bytes((data / "ct.nii.gz").read_bytes())
    return {"data": data, "secret": secret, "work": tmp_path / "work"}


def test_a_hostile_page_cannot_write_or_read_outside_its_folders(tmp_path: Path, site):
    require_web_extra()
    server = start_server(site["work"], tmp_path / "serve.log", "--data", str(site["data"]), "--max-upload-mb", "1")
    try:
        first, second = open_session(server.url), open_session(server.url)
        ct_bytes = (site["data"] / "ct.nii.gz").read_bytes()

        async def attack() -> None:
            async with PageClient(server.url, first) as page, PageClient(server.url, second) as other:
                # Upload names: a relative and an absolute escape are written (and loaded) inside uploads/.
                assert await page.press("upload_ct", [{"name": "../../../../escaped.nii.gz", "content": ct_bytes}]) == ""
                assert page.state.status.startswith("Loaded escaped")
                escape = tmp_path / "absolute.nii.gz"
                assert await page.press("upload_ct", [{"name": str(escape), "content": ct_bytes}]) == ""
                assert not escape.exists() and not (tmp_path / "escaped.nii.gz").exists()
                # Rejected uploads leave nothing: a text file, an empty name, an upload over --max-upload-mb.
                assert "cannot be read" in await other.press("upload_ct", [{"name": "/tmp/x.txt", "content": b"hi"}])
                assert "no usable name" in await other.press("upload_ct", [{"name": "..", "content": b"hi"}])
                big = await other.press("upload_ct", [{"name": "big.nii.gz", "content": b"\0" * (2**20 + 1)}])
                assert "over this server's limit of 1 MB" in big
                # Paths: secrets, missing files, another session's upload and a symlink out all read alike.
                mine = next(site["work"].glob("session-*/uploads/escaped.nii.gz"))
                refusals = {}
                for text in ("/etc/shadow", "/etc/does-not-exist", "../../../../../../etc/passwd", "~/.bashrc",
                             str(site["secret"] / "private.nii.gz"), str(mine),
                             f"../{mine.parent.parent.name}/uploads/escaped.nii.gz"):
                    error = await other.press("load_ct", ct_path=text)
                    refusals[text] = error.replace(text, "<given>")
                assert len(set(refusals.values())) == 1, refusals
                assert "not allowed or not found" in refusals["/etc/shadow"]
                assert await other.press("load_ct", ct_path="ct.nii.gz") == ""  # the --data folder is readable
                for trigger, field, text in (("group_totalseg", "totalseg_file", "/etc/shadow"),
                                             ("synthesize", "checkpoint", "/etc/passwd"),
                                             ("nnunet_predict", "nnunet_model", "/etc"),
                                             ("nnunet_train", "nnunet_dataset", str(mine.parent)),
                                             ("create_anatomy", "weights_dir", "/root")):
                    assert "not allowed or not found" in await other.press(trigger, **{field: text}), trigger
                # The Config field: a text file is refused before any job, without quoting its lines.
                error = await other.press("train_ddpm", ddpm_config="notes.yaml", ddpm_iterations="")
                assert "not a valid config" in error and "hunter2" not in error
                assert other.state.job_log in ("", None)
            await _oversized_message_closes_only_its_connection(server.url, second)

        asyncio.run(attack())
        uploads = sorted(p.name for p in site["work"].glob("session-*/uploads/*"))
        assert uploads == ["absolute.nii.gz", "escaped.nii.gz"]
        assert len(list(site["work"].glob("session-*/uploads"))) == 1  # the other session's empty folder is gone
        assert "hunter2" not in _log(server)
    finally:
        stop_server(server.process)


async def _oversized_message_closes_only_its_connection(url: str, page: str) -> None:
    """A client that skips the page's size check: its message is refused by the header that announces it."""
    import trame_server.client

    chunk = trame_server.client.MAX_MSG_SIZE
    trame_server.client.MAX_MSG_SIZE = 2**19  # small chunks: each passes the launcher, the total must not
    try:
        async with PageClient(url, page) as rogue:
            call = asyncio.ensure_future(rogue.client.call_trigger(
                "upload_ct", [[{"name": "huge.nii.gz", "content": b"\0" * 3 * 2**20}]]))
            done, _ = await asyncio.wait([call, rogue._task], timeout=60, return_when=asyncio.FIRST_COMPLETED)
            assert rogue._task in done  # the session closed that connection
            call.cancel()
    finally:
        trame_server.client.MAX_MSG_SIZE = chunk
    async with PageClient(url, page) as again:  # the session itself lives on
        assert "not allowed or not found" in await again.press("load_ct", ct_path="huge.nii.gz")


def test_sessions_end_when_idle_and_the_log_says_so(tmp_path: Path):
    require_web_extra()
    server = start_server(tmp_path / "work", tmp_path / "serve.log", "--idle-minutes", "0.1", "--max-sessions", "1")
    try:
        start = get(server.url, "/")   # the start page: a GET starts nothing, its button POSTs
        assert start.status == 200 and 'id=\'new-session\'' in start.body and "started for" not in _log(server)
        visit = post(server.url, "/")
        page, sessions = visit.getheader("Location"), cookie(visit, "lnsynth_sessions")
        sid = page.split("/")[2]
        assert f"session {sid} started for local: {page}" in _log(server)
        for foreign in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}, {"Origin": "null"}):
            assert post(server.url, "/", foreign).status == 403, foreign   # not from another site's page

        async def hold_open() -> None:
            async with PageClient(server.url, page) as client:
                await asyncio.sleep(9)  # longer than the idle limit (6 s), with the page open
                assert client.state.status.startswith(f"Session address {page}")
                assert get(server.url, page).status == 200
                full = post(server.url, "/", {"Cookie": sessions})  # over --max-sessions: this browser's list
                assert full.status == 503 and f"Your sessions:\n  {page}" in full.body
                assert "Your sessions" not in post(server.url, "/").body  # another browser sees no addresses
                assert page in get(server.url, "/", {"Cookie": sessions}).body and page not in get(server.url, "/").body
                assert page in get(server.url, "/sessions", {"Cookie": sessions}).body
                assert "no open session" in get(server.url, "/sessions").body
        asyncio.run(hold_open())
        _wait_for(lambda: f"session {sid} ended" in _log(server), 60, "the idle session to end")
        log = _log(server)
        assert re.search(rf"session {sid} ended: (exit status 0|killed by signal SIGTERM).*idle for", log), log
        assert get(server.url, page).status == 404
        assert list((tmp_path / "work").glob("session-*")) == []  # it did nothing: its empty folder is removed
        lines = [line for line in log.splitlines() if line.strip()]
        assert all(TIMESTAMP.match(line) for line in lines if "lnsynth serve: http" in line or "session " in line)
        assert re.search(r"GET /s/\S+/index.html 200", log)  # access lines
    finally:
        stop_server(server.process)


def test_tokens_come_from_a_file_never_show_and_bind_each_users_sessions(tmp_path: Path):
    require_web_extra()
    alice, bob = "short-9f3", "b" * 32
    (tmp_path / "tokens").write_text(f"# user token\nalice {alice}\nbob {bob}\n")
    server = start_server(tmp_path / "work", tmp_path / "serve.log", "--token-file", str(tmp_path / "tokens"),
                          "--max-sessions-per-user", "1")
    try:
        assert get(server.url, "/").status == 403 and post(server.url, "/").status == 403
        page = open_session(server.url, f"/?token={alice}")
        session_pids = [p for p in os.listdir("/proc") if p.isdigit() and _parent(p) == server.process.pid]
        assert session_pids
        for pid in [str(server.process.pid), *session_pids]:
            assert alice not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        assert get(server.url, page, {"Cookie": f"lnsynth_token={alice}"}).status == 200
        # Bob cannot open Alice's session (answered as if it did not exist); Alice is at her cap of 1.
        assert get(server.url, page, {"Cookie": f"lnsynth_token={bob}"}).status == 404
        again = post(server.url, "/", {"Cookie": f"lnsynth_token={alice}"})
        assert again.status == 503 and f"Your sessions:\n  {page}" in again.body
        log = _log(server)
        assert alice not in log and bob not in log and "?token=<token>" in log
        assert "the token of alice has only 9 characters" in log and "token of bob" not in log
        assert "started for alice" in log

        async def alice_page() -> str:  # the launcher hands the session its owner's token, however it was given
            async with PageClient(server.url, page, alice) as client:
                return client.state.status
        assert asyncio.run(alice_page()).startswith(f"Session address {page}")
        # A session that crashes (as the nnU-Net import did: SIGSEGV) is logged with its signal.
        os.kill(int(session_pids[0]), signal.SIGSEGV)
        _wait_for(lambda: "ended: killed by signal SIGSEGV (11)" in _log(server), 30, "the crash to be logged")
        assert get(server.url, page, {"Cookie": f"lnsynth_token={alice}"}).status == 404
    finally:
        stop_server(server.process)
    server = start_server(tmp_path / "work2", tmp_path / "serve2.log", "--token", "x" * 32)
    try:
        assert "visible to every user of this machine" in _log(server) and "x" * 32 not in _log(server)
    finally:
        stop_server(server.process)


def _parent(pid: str) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def test_token_file_lines_and_their_errors(tmp_path: Path, monkeypatch):
    """One `token` or `user token` a line; the errors never repeat a token."""
    import argparse

    from LNSynthLib.cli.serve_command import TOKEN_ENV, read_tokens, token_warnings
    from LNSynthLib.errors import InputDataError

    def tokens(text: str | None, token: str | None = None) -> dict[str, str]:
        path = None
        if text is not None:
            path = tmp_path / "tokens"
            path.write_text(text)
        return read_tokens(argparse.Namespace(token_file=path, token=token))

    assert tokens("a" * 20 + "\n\n# comment\nbob " + "b" * 20 + "  # his\n") == {"a" * 20: "user1", "b" * 20: "bob"}
    for text, message in (("", "no token"), ("a b c\n", "line 1"), ("x secret1\ny secret1\n", "repeats")):
        with pytest.raises(InputDataError, match=message) as caught:
            tokens(text)
        assert "secret1" not in str(caught.value)
    monkeypatch.setenv(TOKEN_ENV, " from-env ")
    assert tokens(None) == {"from-env": "user1"}
    assert token_warnings({"from-env": "user1"}, False)[0].count("from-env") == 0


def test_a_crashed_session_is_reopened_on_its_folder_and_a_new_one_can_start(tmp_path: Path, site):
    """A session process killed by SIGSEGV (as the nnU-Net import once did): its address says how it ended and
    offers a button that reopens it on its folder at the same address (a POST, refused from another site), with
    its files there; `/` and `/sessions` list it; another session can still be started."""
    require_web_extra()
    server = start_server(site["work"], tmp_path / "serve.log", "--data", str(site["data"]), "--max-sessions", "1")
    try:
        visit = post(server.url, "/")
        page, sessions = visit.getheader("Location"), cookie(visit, "lnsynth_sessions")
        sid = page.split("/")[2]
        ct_bytes = (site["data"] / "ct.nii.gz").read_bytes()

        async def upload() -> str:
            async with PageClient(server.url, page) as client:
                assert await client.press("upload_ct", [{"name": "mine.nii.gz", "content": ct_bytes}]) == ""
                return client.state.session_folder
        folder = Path(asyncio.run(upload()))
        assert (folder / "uploads" / "mine.nii.gz").is_file()
        (pid,) = [p for p in os.listdir("/proc") if p.isdigit() and _parent(p) == server.process.pid]
        os.kill(int(pid), signal.SIGSEGV)
        _wait_for(lambda: f"session {sid} ended: killed by signal SIGSEGV (11)" in _log(server), 30, "the crash")

        ended = get(server.url, page, {"Cookie": sessions})
        assert ended.status == 404 and "killed by signal SIGSEGV (11)" in ended.body and folder.name in ended.body
        assert f"action='/s/{sid}/reopen'" in ended.body and "Reopen this session" in ended.body
        listed = get(server.url, "/sessions", {"Cookie": sessions}).body
        assert f"{page} ended (killed by signal SIGSEGV (11))" in listed
        assert f"/s/{sid}/reopen" in get(server.url, "/", {"Cookie": sessions}).body
        assert post(server.url, f"/s/{sid}/reopen", {"Cookie": sessions, "Sec-Fetch-Site": "cross-site"}).status == 403
        assert post(server.url, "/s/unknown/reopen").status == 404

        again = post(server.url, f"/s/{sid}/reopen", {"Cookie": sessions})
        assert again.status == 303 and again.getheader("Location") == page
        assert f"session {sid} reopened for local: {page}" in _log(server) and f"folder {folder})" in _log(server)
        assert post(server.url, f"/s/{sid}/reopen", {"Cookie": sessions}).getheader("Location") == page  # no second

        async def reopened() -> None:
            async with PageClient(server.url, page) as client:
                assert client.state.session_folder == str(folder)
                assert f"Reopened: the files of this session are kept in {folder}" in client.state.status
                assert "Restored: the CT mine." in client.state.status   # the CT it had loaded comes back
                assert await client.press("load_ct", ct_path="uploads/mine.nii.gz") == ""   # its files are there
                assert client.state.status.startswith("Loaded mine")   # a second copy of the restored CT
        asyncio.run(reopened())
        assert post(server.url, "/").status == 503   # --max-sessions 1: the reopened one counts
        # When it ends again (here: stopped), a new session starts in a folder of its own.
        os.kill(int(next(p for p in os.listdir("/proc") if p.isdigit() and _parent(p) == server.process.pid)),
                signal.SIGTERM)
        _wait_for(lambda: _log(server).count(f"session {sid} ended") == 2, 30, "the reopened session to end")
        fresh = post(server.url, "/")
        assert fresh.status == 303 and fresh.getheader("Location") != page
        folders = set(site["work"].glob("session-*"))
        assert len(folders) == 2 and folder in folders and (folder / "uploads" / "mine.nii.gz").is_file()
    finally:
        stop_server(server.process)
