"""One app process per browser session behind one port: `lnsynth serve` itself.

trame shares one state and one scene among every page connected to a server, so two tabs on one
app would edit the same nodes and work folder. The launcher gives each visit of `/` its own app
process (`lnsynth serve --single-session` on a free local port, with its own `session-*` folder)
and proxies `/s/<id>/...` (HTTP and the websocket) to it; reloading `/s/<id>/` returns to it.
Sessions live as long as the server (a closed tab's jobs keep running and its page can be reopened),
so their number is capped: a visit of `/` beyond `max_sessions` live sessions is answered 503.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from . import auth

START_TIMEOUT_S = 180
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length",
               "content-encoding", "proxy-connection", "te", "trailer"}


@dataclass
class Session:
    port: int
    process: asyncio.subprocess.Process


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Launcher:
    def __init__(self, work: Path, token: str | None, max_sessions: int) -> None:
        self.work, self.token, self.max_sessions = Path(work), token, max_sessions
        self.sessions: dict[str, Session] = {}

    def live_sessions(self) -> int:
        """Sessions whose process still runs (ended ones are forgotten)."""
        self.sessions = {sid: s for sid, s in self.sessions.items() if s.process.returncode is None}
        return len(self.sessions)

    async def start_session(self) -> str:
        """Start an app process and wait until it listens; returns the session id."""
        port = _free_port()
        args = [sys.executable, "-m", "LNSynthLib", "serve", "--single-session", "--host", "127.0.0.1",
                "--port", str(port), "--work", str(self.work)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.token:
            env["LNSYNTH_SERVE_TOKEN"] = self.token
        process = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.STDOUT, env=env)
        try:
            await asyncio.wait_for(self._wait_listening(process), START_TIMEOUT_S)
        except (asyncio.TimeoutError, RuntimeError):
            if process.returncode is None:
                process.terminate()
            raise
        asyncio.get_running_loop().create_task(self._forward_output(process))
        session_id = secrets.token_urlsafe(8)
        self.sessions[session_id] = Session(port, process)
        return session_id

    async def _wait_listening(self, process: asyncio.subprocess.Process) -> None:
        while line := await process.stdout.readline():
            text = line.decode(errors="replace")
            sys.stdout.write(text)
            if text.startswith("lnsynth serve: http://"):
                return
        raise RuntimeError("the session process ended before listening (see the output above)")

    async def _forward_output(self, process: asyncio.subprocess.Process) -> None:
        while line := await process.stdout.readline():
            sys.stdout.write(line.decode(errors="replace"))
            sys.stdout.flush()

    def stop_all(self) -> None:
        for session in self.sessions.values():
            if session.process.returncode is None:
                session.process.send_signal(signal.SIGTERM)

    # ------------------------------------------------------------------ HTTP
    async def new_session(self, request):
        from aiohttp import web

        if self.live_sessions() >= self.max_sessions:
            raise web.HTTPServiceUnavailable(
                text=f"lnsynth serve: {self.max_sessions} sessions are open, the limit of this server; reopen "
                     "one of them (its /s/<id>/ address) or restart the server with a higher --max-sessions\n")
        session_id = await self.start_session()
        return web.Response(status=302, headers={"Location": f"/s/{session_id}/index.html"})

    async def proxy(self, request):
        from aiohttp import ClientSession, web

        session = self.sessions.get(request.match_info["sid"])
        if session is None or session.process.returncode is not None:
            raise web.HTTPNotFound(text="lnsynth serve: this session has ended; open / for a new one\n")
        url = f"http://127.0.0.1:{session.port}/{request.match_info['tail']}"
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._proxy_websocket(request, url.replace("http://", "ws://", 1))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with ClientSession(auto_decompress=True) as client, client.request(
                request.method, url, params=request.query, headers=headers, data=await request.read(),
                allow_redirects=False) as answer:
            body = await answer.read()
            out = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
            return web.Response(body=body, status=answer.status, headers=out)

    async def _proxy_websocket(self, request, url: str):
        from aiohttp import ClientSession, WSMsgType, web

        browser = web.WebSocketResponse(max_msg_size=0)
        await browser.prepare(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() == "cookie"}
        async with ClientSession() as client, client.ws_connect(url, headers=headers, max_msg_size=0) as app:

            async def pump(source, target) -> None:
                async for message in source:
                    if message.type == WSMsgType.TEXT:
                        await target.send_str(message.data)
                    elif message.type == WSMsgType.BINARY:
                        await target.send_bytes(message.data)
                    else:
                        break

            tasks = [asyncio.ensure_future(pump(browser, app)), asyncio.ensure_future(pump(app, browser))]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
        await browser.close()
        return browser


def run(work: str | Path, port: int, host: str, token: str | None,
        max_sessions: int) -> int:
    """Serve the launcher until Ctrl+C / SIGTERM; session processes are stopped with it."""
    from aiohttp import web

    auth.warn(host, token)
    launcher = Launcher(Path(work), token, max_sessions)
    app = web.Application(middlewares=[auth.token_middleware(token)] if token else [])
    app.router.add_get("/", launcher.new_session)
    app.router.add_route("*", "/s/{sid}/{tail:.*}", launcher.proxy)

    async def cleanup(_app) -> None:
        launcher.stop_all()
        for session in launcher.sessions.values():
            await session.process.wait()

    app.on_shutdown.append(cleanup)
    query = f"?{auth.TOKEN_PARAM}={token}" if token else ""

    async def announce(_app) -> None:
        print(f"lnsynth serve: http://{host}:{port}/{query}  (each visit of / opens its own session in "
              f"{Path(work).resolve()}/session-*)", flush=True)

    app.on_startup.append(announce)
    web.run_app(app, host=host, port=port, print=None)
    return 0
