"""Drive a served page without a browser: plain HTTP to the launcher, and trame's own Python client on a
session's websocket (the state updates and named triggers the page's buttons send).

A hostile client needs no browser either: these helpers send exactly what one could.
"""

from __future__ import annotations

import asyncio
import http.client
import time
import urllib.parse
from collections.abc import Callable

WSLINK_SECRET = "wslink-secret"   # trame's default websocket key (the page's JS sends the same)
PENDING = "(pending)"
READ_FIELDS = ("status", "error", "job_log", "session_folder")


def get(url: str, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> http.client.HTTPResponse:
    """One GET (or `method`); the body is read into `response.body`."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=180)
    connection.request(method, path, body=b"" if method == "POST" else None, headers=headers or {})
    response = connection.getresponse()
    response.body = response.read().decode(errors="replace")
    connection.close()
    return response


def cookie(response: http.client.HTTPResponse, name: str) -> str:
    """`name=value` of one cookie the response sets (the launcher sets the token's and the sessions')."""
    found = [c.split(";")[0] for c in response.headers.get_all("Set-Cookie") or [] if c.startswith(f"{name}=")]
    assert found, (name, response.headers.get_all("Set-Cookie"))
    return found[0]


def post(url: str, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    """One POST with an empty form, as the launcher's buttons send (same origin)."""
    return get(url, path, headers, "POST")


def open_session(url: str, path: str = "/", headers: dict[str, str] | None = None) -> str:
    """Press the start page's button (POST `/`) and return the session's page address `/s/<id>/index.html`."""
    response = post(url, path, headers)
    assert response.status == 303, (response.status, response.body)
    return response.getheader("Location")


class PageClient:
    """trame's Python client on one session page: `set` fields, `press` a named trigger, read `state`."""

    def __init__(self, url: str, page: str, token: str | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        query = f"?token={urllib.parse.quote(token)}" if token else ""  # trame's client sends no cookie
        self.ws_url = f"ws://{parts.hostname}:{parts.port}{page.rsplit('/', 1)[0]}/ws{query}"
        self.client = None
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> PageClient:
        from trame_server.client import Client, ConnectionStatus

        self.client = Client()
        self._task = asyncio.ensure_future(self.client.connect(self.ws_url, secret=WSLINK_SECRET))
        deadline = time.monotonic() + 60
        while self.client.connected != ConnectionStatus.CONNECTED:
            if self._task.done():
                self._task.result()  # raises why the connection failed
                raise ConnectionError("the page's websocket closed")
            assert time.monotonic() < deadline, "the page's websocket did not connect"
            await asyncio.sleep(0.1)
        await self.load_state()
        return self

    async def load_state(self) -> None:
        """The page's whole state, as the browser asks for it once connected (`trame.state.get`)."""
        answer = (await (await self.client._session.call("trame.state.get"))).get("state", {})
        with self.state:  # only the fields the tests read (each is sent back to the server once)
            self.state.update({key: answer.get(key) for key in READ_FIELDS})

    async def __aexit__(self, *exc) -> None:
        await self.client.disconnect()
        if self._task is not None:
            await asyncio.wait([self._task], timeout=10)

    @property
    def state(self):
        return self.client.state

    async def set(self, **values: object) -> None:
        with self.state:
            self.state.update(values)
        await asyncio.sleep(0.3)  # the update is sent by a task: let it go out before the next call

    async def until(self, predicate: Callable[[object], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.state):
            assert time.monotonic() < deadline, "the page did not answer in time"
            await asyncio.sleep(0.1)

    async def press(self, trigger: str, *args: object, **fields: object) -> str:
        """Set `fields`, call the trigger like the page's button does; returns the page's error text."""
        await self.set(error=PENDING, **fields)
        await self.client.call_trigger(trigger, list(args))  # answered after the handler's state updates
        await asyncio.sleep(0.2)
        await self.until(lambda s: s.error != PENDING)
        return str(self.state.error)
