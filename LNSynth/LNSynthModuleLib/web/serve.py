"""Start the web app (what `lnsynth serve` runs once its arguments are checked)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from . import auth


def render_window_class() -> str:
    """VTK's render window class here (vtkEGLRenderWindow off-screen without X, vtkXOpenGLRenderWindow with)."""
    from vtkmodules.vtkRenderingCore import vtkRenderWindow

    window = vtkRenderWindow()
    window.SetOffScreenRendering(1)
    return window.GetClassName()


def serve(work: str | Path, port: int, host: str = "127.0.0.1", token: str | None = None) -> int:
    """Serve until stopped; prints the URL (with the token) once listening."""
    if not os.environ.get("DISPLAY"):  # no X server: go straight to EGL instead of failing on X first
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (the OpenGL factory for the views)
    from trame.app import get_server

    from .app import LNSynthWebApp

    auth.warn(host, token)
    server = get_server("lnsynth", client_type="vue3")
    if token:
        auth.protect(server, token)
    app = LNSynthWebApp(work, server=server)
    query = f"?{auth.TOKEN_PARAM}={token}" if token else ""

    def ready(**_) -> None:
        print(f"lnsynth serve: http://{host}:{server.port}/{query}  (session folder {app.session.folder}; "
              f"rendering with {render_window_class()})", flush=True)

    server.controller.on_server_ready.add(ready)
    server.start(port=port, host=host, open_browser=False, show_connection_info=False, timeout=0,
                 disable_logging=True)
    sys.stdout.flush()
    return 0
