"""`lnsynth serve`: the LNSynth panel in a web browser (trame-slicer), for a GPU server.

The web app lives with the Slicer module's scene logic (`LNSynth/LNSynthModuleLib/web`); it is
imported only when the command runs, so the library itself never imports Slicer or VTK.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path

from LNSynthLib.cli import arg_types as at
from LNSynthLib.errors import InputDataError

DEFAULT_PORT = 8080
WEB_MODULE = "LNSynthModuleLib.web.serve"
WEB_EXTRA_FIX = "install the web extra: make web (or pip install '.[web]' and slicer-layer-dm --no-deps)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="the LNSynth panel in a web browser (views, brush, background jobs)")
    p.add_argument("--port", type=at.positive_int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on (default 127.0.0.1: this machine only); another host is open "
                        "to the network, without authentication unless --token is given")
    p.add_argument("--token", help="require this token on every request (open the page with ?token=...)")
    p.add_argument("--work", type=Path, default=Path("lnsynth_web"),
                   help="work folder; each session gets its own session-* folder in it (default ./lnsynth_web)")
    p.set_defaults(func=run)


def module_folder() -> Path:
    """The folder that holds `LNSynthModuleLib`: `LNSynth/` in the source tree, next to LNSynthLib when installed."""
    library = Path(__file__).resolve().parents[2]
    for folder in (library / "LNSynth", library):
        if (folder / "LNSynthModuleLib" / "web").is_dir():
            return folder
    raise InputDataError("the LNSynth web app is not next to this LNSynthLib", path=library,
                         fix="run lnsynth from the LNSynth source tree (pip install -e .)")


def load_web_app():
    """Import the web app (needs slicer-core, trame-slicer and slicer-layer-dm)."""
    for package in ("slicer", "trame_slicer", "trame_vuetify"):
        if importlib.util.find_spec(package) is None:
            raise InputDataError(f"`lnsynth serve` needs the Python package '{package}', which is not installed",
                                 fix=WEB_EXTRA_FIX)
    folder = str(module_folder())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(WEB_MODULE)


def run(args: argparse.Namespace) -> int:
    if args.token is not None and not args.token.strip():
        raise InputDataError("--token is empty", fix="give a token, e.g. --token $(openssl rand -hex 16)")
    web = load_web_app()
    return web.serve(args.work, args.port, args.host, args.token)
