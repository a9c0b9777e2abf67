"""`lnsynth serve` access rules and sessions over plain HTTP (no browser): the token is required on
every request when given, a non-local host is warned about, and each session started (the start page's
button: a POST) gets its own session folder.
"""

from __future__ import annotations

import http.client
import urllib.parse
from pathlib import Path

from .conftest import require_web_extra, start_server, stop_server
from .page_client import cookie as token_cookie


def _get(url: str, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> http.client.HTTPResponse:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=180)
    connection.request(method, path, body=b"" if method == "POST" else None, headers=headers or {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def _websocket_upgrade(url: str, path: str, headers: dict[str, str] | None = None) -> int:
    """Status of a websocket handshake (101 = accepted)."""
    upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **(headers or {})}
    return _get(url, path, upgrade).status


def test_exposure_warning_names_the_risk():
    require_web_extra()
    from LNSynthScene.web.auth import exposure_warning

    assert exposure_warning("127.0.0.1", None) is None
    assert "NO authentication" in exposure_warning("0.0.0.0", None)
    assert "needs the token" in exposure_warning("0.0.0.0", "s3cret")


def test_token_is_required_on_every_request_and_sessions_get_their_own_folder_up_to_the_limit(tmp_path: Path):
    require_web_extra()
    server = start_server(tmp_path / "work", tmp_path / "serve.log", "--host", "0.0.0.0", "--token", "s3cret",
                          "--max-sessions", "2")
    try:
        log = server.log.read_text(encoding="utf-8")
        assert "every request needs the token" in log
        url = server.url.replace("0.0.0.0", "127.0.0.1")
        # Refused: no token, a wrong token, on the launcher and on a session's page and websocket.
        assert _get(url, "/").status == 403
        assert _get(url, "/?token=wrong", method="POST").status == 403
        assert list((tmp_path / "work").glob("session-*")) == []
        # Accepted: the token in the query shows the start page (no session yet) and sets the cookie ...
        start = _get(url, "/?token=s3cret")
        assert start.status == 200 and list((tmp_path / "work").glob("session-*")) == []
        cookie = token_cookie(start, "lnsynth_token")
        # ... whose button (a POST with the cookie) opens a session.
        first = _get(url, "/", {"Cookie": cookie}, "POST")
        assert first.status == 303 and first.getheader("Location").startswith("/s/")
        page = first.getheader("Location")
        assert _get(url, page).status == 403
        assert _get(url, page, {"Cookie": "lnsynth_token=wrong"}).status == 403
        assert _get(url, page, {"Cookie": cookie}).status == 200
        ws = page.replace("index.html", "ws")
        assert _websocket_upgrade(url, ws) == 403
        assert _websocket_upgrade(url, ws, {"Cookie": cookie}) == 101
        # A second visit (another tab) is another app process with another work folder.
        second = _get(url, "/", {"Cookie": cookie}, "POST")
        assert second.status == 303 and second.getheader("Location") != page
        folders = sorted((tmp_path / "work").glob("session-*"))
        assert len(folders) == 2 and folders[0] != folders[1]
        # A third tab is over the limit: refused with the fix, no process or folder started; the open ones stay.
        third = _get(url, "/", {"Cookie": cookie}, "POST")
        assert third.status == 503
        assert len(list((tmp_path / "work").glob("session-*"))) == 2
        assert _get(url, page, {"Cookie": cookie}).status == 200
    finally:
        stop_server(server.process)


def test_serve_without_the_web_extra_says_how_to_install(tmp_path: Path, monkeypatch, capsys):
    """The error contract when trame-slicer is missing (simulated: the import lookup fails)."""
    import importlib.util

    from LNSynthLib.cli.main import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "trame_slicer" else real(name, *a))
    assert main(["serve", "--work", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "lnsynth: error:" in err and "trame_slicer" in err and "make web" in err
