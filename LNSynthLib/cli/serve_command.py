"""`lnsynth serve`: the LNSynth panel in a web browser (trame-slicer), for a GPU server.

The web app lives in the scene package shared with the Slicer panel (`LNSynthScene.web`, installed
with this library); it is imported by name only when the command runs, so the library itself never
imports Slicer or VTK.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path

from LNSynthLib.cli import arg_types as at
from LNSynthLib.errors import InputDataError, UsageError

DEFAULT_PORT = 8080
DEFAULT_MAX_SESSIONS = 8   # each session is a Slicer scene in its own process (a few hundred MB)
DEFAULT_MAX_SESSIONS_PER_USER = 3  # per token: one user cannot take every session of the server
DEFAULT_MAX_UPLOAD_MB = 2048  # a CT is tens to hundreds of MB; an upload is held in memory once
DEFAULT_IDLE_MINUTES = 30.0   # a session with no open page and no running job ends after this
WEB_MODULES = {False: "LNSynthScene.web.launcher", True: "LNSynthScene.web.serve"}
TOKEN_ENV = "LNSYNTH_SERVE_TOKEN"  # the token from the environment (and how the launcher hands it on)
MIN_TOKEN_CHARS = 16
TOKEN_FIX = "e.g. openssl rand -hex 16 > token && chmod 600 token, then --token-file token"
WEB_EXTRA_FIX = "install the web extra: make web (or pip install '.[web]' and slicer-layer-dm --no-deps)"


def _work_folder(text: str) -> Path:
    """`--work`: a folder (new or existing) that can be written, never a file (every visit would fail)."""
    return Path(at.output_dir(text))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="the LNSynth panel in a web browser (views, brush, background jobs)")
    p.add_argument("--port", type=at.positive_int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on (default 127.0.0.1: this machine only); another host is open "
                        "to the network, without authentication unless a token is given")
    p.add_argument("--token-file", type=Path,
                   help=f"require a token from this file on every request (open the page with ?token=...): one "
                        f"`token` or `user token` a line, a user's sessions open only with their token; or set "
                        f"{TOKEN_ENV}")
    p.add_argument("--token", help=f"the token itself (visible to every local user in `ps`: prefer --token-file "
                                   f"or {TOKEN_ENV})")
    p.add_argument("--work", type=_work_folder, default=Path("lnsynth_web"),
                   help="work folder; each session gets its own session-* folder in it (default ./lnsynth_web)")
    p.add_argument("--data", type=Path, action="append", default=[], metavar="FOLDER",
                   help="a folder of images the pages may read by path (repeat for several); otherwise a page "
                        "reads only its own session folder (uploads and results)")
    p.add_argument("--max-sessions", type=at.positive_int, default=DEFAULT_MAX_SESSIONS,
                   help=f"browser sessions open at once (each its own process and work folder; "
                        f"default {DEFAULT_MAX_SESSIONS})")
    p.add_argument("--max-sessions-per-user", type=at.positive_int, default=DEFAULT_MAX_SESSIONS_PER_USER,
                   help=f"sessions one token may have open at once (default {DEFAULT_MAX_SESSIONS_PER_USER}); "
                        "a token file may give each user a token of their own")
    p.add_argument("--max-upload-mb", type=at.positive_int, default=DEFAULT_MAX_UPLOAD_MB,
                   help=f"largest CT a page may upload, in MB (default {DEFAULT_MAX_UPLOAD_MB})")
    p.add_argument("--idle-minutes", type=at.positive_float, default=DEFAULT_IDLE_MINUTES,
                   help=f"end a session after this long with no page open and no job running "
                        f"(default {DEFAULT_IDLE_MINUTES:g}); its folder stays")
    p.add_argument("--single-session", action="store_true", help=argparse.SUPPRESS)  # one app (the launcher's child)
    p.add_argument("--session-address", help=argparse.SUPPRESS)  # the launcher's /s/<id>/ address of that app
    p.add_argument("--session-folder", type=Path, help=argparse.SUPPRESS)  # an ended session's folder, reopened
    p.set_defaults(func=run)


def check_data_roots(folders: Iterable[str | Path], work: str | Path) -> tuple[Path, ...]:
    """The admin's `--data` folders, resolved; refused when missing or overlapping the work folder.

    A data folder that holds the work folder (or lies inside it) would hand every session the
    other sessions' uploads and results.
    """
    work_root = Path(work).resolve()
    roots = []
    for folder in folders:
        root = Path(folder).expanduser().resolve()
        if not root.is_dir():
            raise UsageError("--data folder not found", path=folder, fix="give an existing folder of images")
        if work_root.is_relative_to(root) or root.is_relative_to(work_root):
            raise UsageError(f"--data folder overlaps the work folder {work_root}", path=folder,
                             fix="keep the data folders and --work apart (sessions must not read each other's files)")
        roots.append(root)
    return tuple(dict.fromkeys(roots))


def load_web_app(single_session: bool):
    """Import the web app (needs slicer-core, trame-slicer and slicer-layer-dm)."""
    for package in ("LNSynthScene", "slicer", "trame_slicer", "trame_vuetify"):
        if importlib.util.find_spec(package) is None:
            raise InputDataError(f"`lnsynth serve` needs the Python package '{package}', which is not installed",
                                 fix=WEB_EXTRA_FIX)
    return importlib.import_module(WEB_MODULES[single_session])


def _token_file_lines(path: Path) -> dict[str, str]:
    """{token: user} from a token file: one `token` or `user token` a line (# starts a comment)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputDataError(f"the token file cannot be read ({exc.__class__.__name__})", path=path,
                             fix=TOKEN_FIX) from None
    tokens: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) > 2:
            raise InputDataError(f"line {number} of the token file is not `token` or `user token`", path=path,
                                 fix=TOKEN_FIX)
        user, token = (f"user{len(tokens) + 1}", words[0]) if len(words) == 1 else words
        if token in tokens:
            raise InputDataError(f"line {number} of the token file repeats a token", path=path, fix=TOKEN_FIX)
        tokens[token] = user
    if not tokens:
        raise InputDataError("the token file holds no token", path=path, fix=TOKEN_FIX)
    return tokens


def read_tokens(args: argparse.Namespace) -> dict[str, str]:
    """{token: user} from --token-file, --token or the environment (in that order); empty: no token."""
    if args.token_file is not None:
        return _token_file_lines(args.token_file)
    if args.token is not None:
        if not args.token.strip():
            raise InputDataError("--token is empty", fix=TOKEN_FIX)
        return {args.token.strip(): "user1"}
    token = os.environ.get(TOKEN_ENV, "").strip()
    return {token: "user1"} if token else {}


def token_warnings(tokens: dict[str, str], from_command_line: bool) -> list[str]:
    """Lines the launcher prints about weak or exposed tokens (naming the user, never the token)."""
    lines = [f"lnsynth serve: WARNING: the token of {user} has only {len(token)} characters; anyone who can "
             f"reach the port can guess a short one. Use at least {MIN_TOKEN_CHARS} random characters ({TOKEN_FIX})."
             for token, user in tokens.items() if len(token) < MIN_TOKEN_CHARS]
    if tokens and from_command_line:
        lines.append("lnsynth serve: WARNING: --token is visible to every user of this machine (`ps`); "
                     f"use --token-file or {TOKEN_ENV} instead.")
    return lines


def run(args: argparse.Namespace) -> int:
    tokens = read_tokens(args)
    if args.single_session:  # the launcher's child: the one token of its user, from the environment
        return load_web_app(True).serve(args.work, args.port, args.host, next(iter(tokens), None),
                                        tuple(args.data), args.max_upload_mb, args.session_address,
                                        args.session_folder)
    data = check_data_roots(args.data, args.work)
    web = load_web_app(False)
    warnings = token_warnings(tokens, args.token is not None and args.token_file is None)
    return web.run(args.work, args.port, args.host, tokens, args.max_sessions, data_roots=data,
                   max_upload_mb=args.max_upload_mb, idle_s=args.idle_minutes * 60,
                   max_per_user=args.max_sessions_per_user, warnings=tuple(warnings))
