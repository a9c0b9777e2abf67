"""`lnsynth serve`: the LNSynth panel in a web browser (trame-slicer), for a GPU server.

The web app lives with the Slicer module's scene logic (`LNSynth/LNSynthModuleLib/web`); it is
imported only when the command runs, so the library itself never imports Slicer or VTK.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path

from LNSynthLib.cli import arg_types as at
from LNSynthLib.errors import InputDataError

DEFAULT_PORT = 8080
DEFAULT_MAX_SESSIONS = 8   # each session is a Slicer scene in its own process (a few hundred MB)
WEB_MODULES = {False: "LNSynthModuleLib.web.launcher", True: "LNSynthModuleLib.web.serve"}
TOKEN_ENV = "LNSYNTH_SERVE_TOKEN"  # how the launcher hands the token to its session processes
WEB_EXTRA_FIX = "install the web extra: make web (or pip install '.[web]' and slicer-layer-dm --no-deps)"


def _work_folder(text: str) -> Path:
    """`--work`: a folder (new or existing) that can be written, never a file (every visit would fail)."""
    return Path(at.output_dir(text))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="the LNSynth panel in a web browser (views, brush, background jobs)")
    p.add_argument("--port", type=at.positive_int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on (default 127.0.0.1: this machine only); another host is open "
                        "to the network, without authentication unless --token is given")
    p.add_argument("--token", help="require this token on every request (open the page with ?token=...)")
    p.add_argument("--work", type=_work_folder, default=Path("lnsynth_web"),
                   help="work folder; each session gets its own session-* folder in it (default ./lnsynth_web)")
    p.add_argument("--max-sessions", type=at.positive_int, default=DEFAULT_MAX_SESSIONS,
                   help=f"browser sessions open at once (each its own process and work folder; "
                        f"default {DEFAULT_MAX_SESSIONS})")
    p.add_argument("--single-session", action="store_true", help=argparse.SUPPRESS)  # one app (the launcher's child)
    p.set_defaults(func=run)


def module_folder() -> Path:
    """The folder that holds `LNSynthModuleLib`: `LNSynth/` in the source tree, next to LNSynthLib when installed."""
    library = Path(__file__).resolve().parents[2]
    for folder in (library / "LNSynth", library):
        if (folder / "LNSynthModuleLib" / "web").is_dir():
            return folder
    raise InputDataError("the LNSynth web app is not next to this LNSynthLib", path=library,
                         fix="run lnsynth from the LNSynth source tree (pip install -e .)")


def load_web_app(single_session: bool):
    """Import the web app (needs slicer-core, trame-slicer and slicer-layer-dm)."""
    for package in ("slicer", "trame_slicer", "trame_vuetify"):
        if importlib.util.find_spec(package) is None:
            raise InputDataError(f"`lnsynth serve` needs the Python package '{package}', which is not installed",
                                 fix=WEB_EXTRA_FIX)
    folder = str(module_folder())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(WEB_MODULES[single_session])


def run(args: argparse.Namespace) -> int:
    if args.token is not None and not args.token.strip():
        raise InputDataError("--token is empty", fix="give a token, e.g. --token $(openssl rand -hex 16)")
    token = args.token or (os.environ.get(TOKEN_ENV) if args.single_session else None)
    if args.single_session:
        return load_web_app(True).serve(args.work, args.port, args.host, token)
    return load_web_app(False).run(args.work, args.port, args.host, token, args.max_sessions)
