"""One app process per browser session behind one port: `lnsynth serve` itself.

trame shares one state and one scene among every page connected to a server, so two tabs on one
app would edit the same nodes and work folder. The launcher gives each visit of `/` its own app
process (`lnsynth serve --single-session` on a free local port, with its own `session-*` folder)
and proxies `/s/<id>/...` (HTTP and the websocket) to it; reloading `/s/<id>/` returns to it.
`/` is a page listing the user's sessions with a button that starts a new one (a POST: a state
change never rides on a GET another site could send). A session ends when it has had no page open
and no job running for `idle_s`, or when its process dies (a crash); its folder stays, and its
address then offers to reopen it: a new process on the same folder and address (POST
`/s/<id>/reopen`). The number of live sessions is capped (in all, and per token): a start beyond
a cap is answered 503 with the addresses of the user's own sessions, which `/sessions` also lists.
Every line of the log has a timestamp; session starts, reopenings, exits (with their status) and
requests are logged, the token never.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from LNSynthLib.cli.serve_command import (
    DEFAULT_IDLE_MINUTES,
    DEFAULT_MAX_SESSIONS_PER_USER,
    DEFAULT_MAX_UPLOAD_MB,
    TOKEN_ENV,
)

from . import auth
from .jobs import JOB_ENDED, JOB_STARTED
from .launcher_pages import Listed, ended_page, start_page

START_TIMEOUT_S = 180
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length",
               "content-encoding", "proxy-connection", "te", "trailer"}
SESSIONS_COOKIE = "lnsynth_sessions"   # the ids of the sessions this browser opened (for the 503's list)
COOKIE_SESSIONS_KEPT = 16
CROSS_SITE = ("cross-site", "same-site")  # Sec-Fetch-Site of a request another site's page made
FRAME_OVERHEAD = 2**20
ENDED_KEPT = 200   # ended sessions remembered for their reopen button (their folders stay either way)


def log(line: str) -> None:
    """One line of the server log, with the local time."""
    sys.stdout.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line.rstrip()}\n")
    sys.stdout.flush()


def exit_text(returncode: int) -> str:
    """`exit status 0` or `killed by signal SIGSEGV (11)`: what the log says about an ended session."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "signal"
    return f"killed by signal {name} ({-returncode})"


@dataclass
class Session:
    sid: str
    port: int
    process: asyncio.subprocess.Process
    owner: str = ""              # the token that opened it ("" without tokens): only it reopens the session
    folder: Path | None = None
    last_active: float = field(default_factory=time.monotonic)
    sockets: int = 0
    job_running: bool = False
    stop_reason: str = ""
    ended: str = ""              # how its process ended (the exit status and why), once it has

    @property
    def address(self) -> str:
        return f"/s/{self.sid}/index.html"

    def listed(self) -> Listed:
        return Listed(self.address, f"/s/{self.sid}/reopen", self.ended, self.folder.name if self.folder else "")

    def idle_for(self) -> float:
        """Seconds since the last request or open page; 0 while a page is open or a job runs."""
        if self.sockets or self.job_running:
            return 0.0
        return time.monotonic() - self.last_active


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Launcher:
    def __init__(self, work: Path, tokens: dict[str, str], max_sessions: int, data_roots: tuple[Path, ...] = (),
                 max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB, idle_s: float = DEFAULT_IDLE_MINUTES * 60,
                 max_per_user: int = DEFAULT_MAX_SESSIONS_PER_USER) -> None:
        self.work, self.tokens, self.max_sessions = Path(work), tokens, max_sessions
        self.data_roots, self.max_upload_mb, self.idle_s = data_roots, max_upload_mb, idle_s
        self.max_per_user = max_per_user
        self.sessions: dict[str, Session] = {}
        self.ended: dict[str, Session] = {}   # ended sessions whose folder stays: their address offers a reopen

    def live_sessions(self) -> int:
        """Sessions whose process still runs (ended ones are forgotten)."""
        self.sessions = {sid: s for sid, s in self.sessions.items() if s.process.returncode is None}
        return len(self.sessions)

    def redact(self, text: str) -> str:
        for token in self.tokens:
            text = text.replace(token, "<token>")
        return text

    def user(self, token: str) -> str:
        return self.tokens.get(token, "local")

    async def start_session(self, owner: str = "", sid: str | None = None, folder: Path | None = None) -> str:
        """Start an app process for the user of token `owner` and wait until it listens; returns its id.

        `sid` and `folder`: reopen an ended session, at its address, on its folder.
        """
        port, sid = _free_port(), sid or secrets.token_urlsafe(12)
        args = [sys.executable, "-m", "LNSynthLib", "serve", "--single-session", "--host", "127.0.0.1",
                "--port", str(port), "--work", str(self.work), "--max-upload-mb", str(self.max_upload_mb),
                "--session-address", f"/s/{sid}/index.html"]
        if folder is not None:
            args += ["--session-folder", str(folder)]
        for root in self.data_roots:
            args += ["--data", str(root)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop(TOKEN_ENV, None)
        if owner:
            env[TOKEN_ENV] = owner  # the environment, not the command line: `ps` shows arguments
        process = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.STDOUT, env=env)
        session = Session(sid, port, process, owner)
        try:
            await asyncio.wait_for(self._wait_listening(session), START_TIMEOUT_S)
        except (asyncio.TimeoutError, RuntimeError):
            if process.returncode is None:
                process.terminate()
            raise
        loop = asyncio.get_running_loop()
        loop.create_task(self._forward_output(session))
        loop.create_task(self._watch_exit(session))
        session.last_active = time.monotonic()  # idle from now, not from the process start
        self.sessions[sid] = session
        log(f"session {sid} {'reopened' if folder else 'started'} for {self.user(owner)}: {session.address} "
            f"(pid {process.pid}, folder {session.folder})")
        return sid

    def _session_line(self, session: Session, text: str) -> None:
        if not text.strip():
            return
        if text.startswith(JOB_STARTED):
            session.job_running = True
        elif text.startswith(JOB_ENDED):
            session.job_running, session.last_active = False, time.monotonic()
        log(f"[{session.sid}] {self.redact(text)}")

    async def _wait_listening(self, session: Session) -> None:
        while line := await session.process.stdout.readline():
            text = line.decode(errors="replace")
            self._session_line(session, text)
            if text.startswith("lnsynth serve: http://"):
                if "(session folder " in text:
                    session.folder = Path(text.split("(session folder ", 1)[1].split(";", 1)[0])
                return
        raise RuntimeError("the session process ended before listening (see the output above)")

    async def _forward_output(self, session: Session) -> None:
        while line := await session.process.stdout.readline():
            self._session_line(session, line.decode(errors="replace"))

    async def _watch_exit(self, session: Session) -> None:
        """Log how a session ended (a crash included) and remove its folder if it stayed empty."""
        returncode = await session.process.wait()
        reason = f" ({session.stop_reason})" if session.stop_reason else ""
        session.ended = f"{exit_text(returncode)}{reason}"
        log(f"session {session.sid} ended: {session.ended}; folder {session.folder}")
        if session.folder is not None:
            try:
                session.folder.rmdir()  # only when empty: a visit that did nothing leaves nothing behind
                log(f"session {session.sid}: removed its empty folder")
            except OSError:
                pass
            if session.folder.is_dir() and self.sessions.get(session.sid, session) is session:
                self.ended[session.sid] = session   # its address now offers to reopen it
                for old in list(self.ended)[:-ENDED_KEPT]:
                    del self.ended[old]

    def stop_idle(self) -> list[str]:
        """Stop the sessions idle for longer than `idle_s`; returns their ids."""
        stopped = []
        for session in list(self.sessions.values()):
            idle = session.idle_for()
            if session.process.returncode is None and not session.stop_reason and idle > self.idle_s:
                session.stop_reason = f"idle for {idle / 60:.1f} min: no page open, no job running"
                session.process.send_signal(signal.SIGTERM)
                stopped.append(session.sid)
        return stopped

    async def reap_idle(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, max(self.idle_s / 4, 0.5)))
            self.stop_idle()

    def stop_all(self) -> None:
        for session in self.sessions.values():
            if session.process.returncode is None:
                session.stop_reason = session.stop_reason or "server stopping"
                session.process.send_signal(signal.SIGTERM)

    # ------------------------------------------------------------------ HTTP
    def _mine(self, request, among: dict[str, Session] | None = None) -> list[Session]:
        """Live sessions (or those of `among`) of this request's token, or without tokens those this browser
        opened (its cookie)."""
        self.live_sessions()
        among = self.sessions if among is None else among
        if self.tokens:
            return [s for s in among.values() if s.owner == request.get(auth.REQUEST_TOKEN)]
        ids = request.cookies.get(SESSIONS_COOKIE, "").split(".")
        return [among[sid] for sid in ids if sid in among]

    def _owned(self, request, session: Session | None) -> Session | None:
        """`session` if this request's token opened it (another user's is treated as absent)."""
        if session is not None and auth.matching_token(request.get(auth.REQUEST_TOKEN, ""), [session.owner]) is None:
            return None
        return session

    @staticmethod
    def _listed(sessions: list[Session]) -> str:
        lines = [f"  {session.address}\n" for session in sessions]
        return "Your sessions:\n" + "".join(lines) if lines else ""

    async def home(self, request):
        """`/`: the user's sessions (open ones, ended ones to reopen) and the button that starts a new one."""
        from aiohttp import web

        listed = [s.listed() for s in (*self._mine(request), *self._mine(request, self.ended))]
        return web.Response(text=start_page(listed), content_type="text/html")

    @staticmethod
    def _refuse_cross_site(request) -> None:
        """A session is started or reopened only from this server's own page, never by another site's."""
        from urllib.parse import urlsplit

        from aiohttp import web

        origin = request.headers.get("Origin", "")
        foreign = origin and origin != "null" and urlsplit(origin).netloc != request.host
        if request.headers.get("Sec-Fetch-Site", "") in CROSS_SITE or foreign or origin == "null":
            raise web.HTTPForbidden(text="lnsynth serve: a session is started only from this server's own page "
                                         "(open / and press the button), not from another site's page\n")

    def _check_caps(self, request) -> None:
        from aiohttp import web

        mine = self._mine(request)
        if self.tokens and len(mine) >= self.max_per_user:
            raise web.HTTPServiceUnavailable(
                text=f"lnsynth serve: you have {len(mine)} sessions open, the limit per user of this server; "
                     f"reopen one of them, or close its page and wait {self.idle_s / 60:g} min until it ends\n"
                     f"{self._listed(mine)}")
        if self.live_sessions() >= self.max_sessions:
            raise web.HTTPServiceUnavailable(
                text=f"lnsynth serve: {self.max_sessions} sessions are open, the limit of this server; reopen "
                     f"one of yours, or wait until idle ones end (after {self.idle_s / 60:g} min without a page) "
                     f"or ask the admin for a higher --max-sessions\n{self._listed(mine)}")

    def _opened(self, request, sid: str):
        """303 to the session's page, its id added to this browser's list of sessions."""
        from aiohttp import web

        response = web.Response(status=303, headers={"Location": self.sessions[sid].address})
        kept = [s.sid for s in (*self._mine(request), *self._mine(request, self.ended)) if s.sid != sid]
        response.set_cookie(SESSIONS_COOKIE, ".".join([*kept[-(COOKIE_SESSIONS_KEPT - 1):], sid]), httponly=True,
                            samesite="Strict", path="/")
        return response

    async def new_session(self, request):
        """POST `/` (the start page's button): a new session, then its page."""
        self._refuse_cross_site(request)
        self._check_caps(request)
        return self._opened(request, await self.start_session(request.get(auth.REQUEST_TOKEN, "")))

    async def reopen(self, request):
        """POST `/s/<id>/reopen`: an ended session of this user starts again on its folder, at its address."""
        from aiohttp import web

        self._refuse_cross_site(request)
        sid = request.match_info["sid"]
        live = self._owned(request, self.sessions.get(sid))
        if live is not None and live.process.returncode is None:
            return self._opened(request, sid)   # running already (another tab reopened it)
        ended = self._owned(request, self.ended.get(sid))
        if ended is None or ended.folder is None or not ended.folder.is_dir():
            raise web.HTTPNotFound(text="lnsynth serve: no ended session of yours at this address; open / for "
                                        "your sessions\n")
        self._check_caps(request)
        del self.ended[sid]   # a second click while it starts finds nothing to reopen
        try:
            await self.start_session(ended.owner, sid, ended.folder)
        except BaseException:
            self.ended[sid] = ended
            raise
        return self._opened(request, sid)

    async def list_sessions(self, request):
        """`/sessions`: the live sessions of this user (their token, or this browser's cookie) to reopen."""
        from aiohttp import web

        mine = self._mine(request)
        ended = "".join(f"  {s.address} ended ({s.ended}); reopen it from that address or from /\n"
                        for s in self._mine(request, self.ended))
        text = self._listed(mine) + (f"Ended sessions (their files are kept):\n{ended}" if ended else "")
        return web.Response(text=text or "lnsynth serve: you have no open session; open / for one\n")

    async def proxy(self, request):
        from aiohttp import ClientSession, web

        sid = request.match_info["sid"]
        session = self._owned(request, self.sessions.get(sid))  # another user's: answered as if absent
        if session is None or session.process.returncode is not None:
            ended = self._owned(request, self.ended.get(sid))
            if ended is not None and request.method == "GET" and request.headers.get("Upgrade", "") == "":
                raise web.HTTPNotFound(text=ended_page(ended.listed()), content_type="text/html")
            raise web.HTTPNotFound(text="lnsynth serve: this session has ended (its files stay in its folder on "
                                        "the server); open / for a new one\n")
        session.last_active = time.monotonic()
        url = f"http://127.0.0.1:{session.port}/{request.match_info['tail']}"
        if request.headers.get("Upgrade", "").lower() == "websocket":
            session.sockets += 1
            try:
                return await self._proxy_websocket(request, url.replace("http://", "ws://", 1), session.owner)
            finally:
                session.sockets -= 1
                session.last_active = time.monotonic()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with ClientSession(auto_decompress=True) as client, client.request(
                request.method, url, params=request.query, headers=headers, data=await request.read(),
                allow_redirects=False) as answer:
            body = await answer.read()
            out = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
            return web.Response(body=body, status=answer.status, headers=out)

    async def _proxy_websocket(self, request, url: str, owner: str):
        from aiohttp import ClientSession, WSMsgType, web

        # A browser's frames are wslink chunks; none may exceed an upload (the session refuses more anyway).
        browser = web.WebSocketResponse(max_msg_size=self.max_upload_mb * 2**20 + FRAME_OVERHEAD)
        await browser.prepare(request)
        # The launcher checked the token (query, cookie or header): it hands the session its owner's token.
        headers = {"Cookie": f"{auth.TOKEN_COOKIE}={owner}"} if owner else {}
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


def access_logger():
    """aiohttp access lines with the time, the client, the path (never the query: it may hold the token)."""
    from aiohttp.abc import AbstractAccessLogger

    class AccessLogger(AbstractAccessLogger):
        def log(self, request, response, time_s: float) -> None:
            log(f"{request.remote} {request.method} {request.path} {response.status} "
                f"{response.body_length}B {time_s * 1000:.0f}ms")

        @property
        def enabled(self) -> bool:
            return True

    return AccessLogger


def run(work: str | Path, port: int, host: str, tokens: dict[str, str], max_sessions: int, *,
        data_roots: tuple[Path, ...] = (), max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB,
        idle_s: float = DEFAULT_IDLE_MINUTES * 60, max_per_user: int = DEFAULT_MAX_SESSIONS_PER_USER,
        warnings: tuple[str, ...] = ()) -> int:
    """Serve the launcher until Ctrl+C / SIGTERM; session processes are stopped with it.

    `warnings` (about the token) go to the log first, stamped like every other line.
    """
    import logging

    from aiohttp import web

    for line in (auth.exposure_warning(host, bool(tokens)), *warnings):
        if line:
            log(line)
    launcher = Launcher(Path(work), tokens, max_sessions, data_roots, max_upload_mb, idle_s, max_per_user)
    app = web.Application(middlewares=[auth.token_middleware(list(tokens))] if tokens else [])
    app.router.add_get("/", launcher.home)
    app.router.add_post("/", launcher.new_session)
    app.router.add_get("/sessions", launcher.list_sessions)
    app.router.add_post("/s/{sid}/reopen", launcher.reopen)
    app.router.add_route("*", "/s/{sid}/{tail:.*}", launcher.proxy)

    async def cleanup(_app) -> None:
        launcher.stop_all()
        for session in launcher.sessions.values():
            await session.process.wait()
        log("lnsynth serve: stopped")

    app.on_shutdown.append(cleanup)
    query = f"?{auth.TOKEN_PARAM}=<token>" if tokens else ""

    async def announce(_app) -> None:
        asyncio.get_running_loop().create_task(launcher.reap_idle())
        data = ", ".join(str(r) for r in data_roots) or "none (pages read only their own session folder)"
        log(f"lnsynth serve: http://{host}:{port}/{query}  (/ lists your sessions; its button opens a new one in "
            f"{Path(work).resolve()}/session-*; data folders: {data}; sessions end after "
            f"{idle_s / 60:g} min idle; {len(tokens)} token(s))")

    app.on_startup.append(announce)
    logging.getLogger("aiohttp.access").setLevel(logging.INFO)
    web.run_app(app, host=host, port=port, print=None, access_log_class=access_logger())
    return 0
