"""Who may use a served app: local-only by default, a shared token on every request when exposed.

Kept here rather than trame-server's own secret (wslink's `authKey`): that key guards the WebSocket
only, not the HTTP requests of the page, its uploads and downloads, and it is one key for every client,
while the launcher gives each user's sessions to that user's own token.
"""

from __future__ import annotations

import hmac
import sys
from collections.abc import Collection

TOKEN_PARAM = "token"
TOKEN_COOKIE = "lnsynth_token"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
REQUEST_TOKEN = "lnsynth_token"   # the aiohttp request key the middleware fills


def exposure_warning(host: str, token: object) -> str | None:
    """The line printed when the app listens beyond this machine (None when it does not)."""
    if host in LOCAL_HOSTS:
        return None
    if token:
        return (f"lnsynth serve: listening on {host}: every request needs the token "
                f"(open the URL with ?{TOKEN_PARAM}=<token>; it is then kept in a cookie).")
    return (f"lnsynth serve: WARNING: listening on {host} with NO authentication: anyone who can reach this "
            "port can see the scans and run jobs on this server. Give a token (--token-file or "
            "LNSYNTH_SERVE_TOKEN) to require one.")


def given_token(request: object) -> str:
    """Token from the query, the cookie or an `Authorization: Bearer` header (in that order)."""
    auth = request.headers.get("Authorization", "")
    return (request.query.get(TOKEN_PARAM) or request.cookies.get(TOKEN_COOKIE)
            or (auth[7:] if auth.startswith("Bearer ") else ""))


def matching_token(given: str, tokens: Collection[str]) -> str | None:
    """The token `given` is (each compared in constant time), or None."""
    found = None
    for token in tokens:
        if hmac.compare_digest(given.encode(), token.encode()):
            found = token
    return found


def token_middleware(tokens: str | Collection[str]):
    """aiohttp middleware: every HTTP request and the websocket need one of `tokens`; a query token sets the
    cookie. The token given is kept in `request[REQUEST_TOKEN]` (whose sessions these are)."""
    from aiohttp import web

    tokens = (tokens,) if isinstance(tokens, str) else tuple(tokens)

    @web.middleware
    async def require_token(request, handler):
        token = matching_token(given_token(request), tokens)
        if token is None:
            raise web.HTTPForbidden(text="lnsynth serve: this server needs a token: open it as "
                                         f"http://<host>:<port>/?{TOKEN_PARAM}=<token>\n")
        request[REQUEST_TOKEN] = token
        response = await handler(request)
        if request.query.get(TOKEN_PARAM) and not isinstance(response, web.WebSocketResponse):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
        return response

    return require_token


def protect(server: object, token: str) -> None:
    """Install the token check on a trame server before it starts listening."""

    def bind(wslink_server: object) -> None:
        wslink_server.app.middlewares.append(token_middleware(token))

    server.controller.on_server_bind.add(bind)


def warn(host: str, token: object) -> None:
    line = exposure_warning(host, token)
    if line:
        print(line, file=sys.stderr, flush=True)
