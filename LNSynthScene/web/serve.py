"""Start the web app (what `lnsynth serve` runs once its arguments are checked)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from . import auth
from .uploads import DEFAULT_MAX_UPLOAD_MB

MESSAGE_OVERHEAD = 2**20  # the page's other fields around an uploaded file


def render_window_class() -> str:
    """VTK's render window class here (vtkEGLRenderWindow off-screen without X, vtkXOpenGLRenderWindow with)."""
    from vtkmodules.vtkRenderingCore import vtkRenderWindow

    window = vtkRenderWindow()
    window.SetOffScreenRendering(1)
    return window.GetClassName()


def cap_websocket_messages(max_bytes: int) -> None:
    """Refuse websocket messages over `max_bytes` (an upload is one message) before allocating them.

    wslink lets an authenticated client announce messages of up to 4 GB and allocates them at
    once; the page's own check stops honest browsers, this stops the others.
    """
    from wslink import chunking, protocol

    class CappedUnChunker(chunking.UnChunker):
        def set_max_message_size(self, size: int) -> None:
            super().set_max_message_size(min(size, max_bytes))

    protocol.UnChunker = CappedUnChunker


def end_jobs_with_the_session(app: object) -> None:
    """On SIGTERM (idle end, the launcher stopping) the session's job processes and warm worker end with it,
    their files kept; the session then dies of that signal as before (the launcher logs it)."""
    import signal

    def handler(signum: int, _frame: object) -> None:
        try:
            app.jobs.stop_processes()
            app.session.logic.stop_warm_worker()
        finally:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, handler)


def serve(work: str | Path, port: int, host: str = "127.0.0.1", token: str | None = None,
          data_roots: tuple[Path, ...] = (), max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB,
          address: str | None = None, folder: str | Path | None = None) -> int:
    """Serve until stopped; prints the URL (never the token) once listening. `folder`: an ended session's
    folder, reopened by the launcher."""
    if not os.environ.get("DISPLAY"):  # no X server: go straight to EGL instead of failing on X first
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import vtkmodules.vtkRenderingOpenGL2  # noqa: F401  (the OpenGL factory for the views)
    from trame.app import get_server

    from .app import LNSynthWebApp

    auth.warn(host, token)
    max_upload_bytes = max_upload_mb * 2**20
    cap_websocket_messages(max_upload_bytes + MESSAGE_OVERHEAD)
    server = get_server("lnsynth", client_type="vue3")
    if token:
        auth.protect(server, token)
    app = LNSynthWebApp(work, server=server, data_roots=data_roots, max_upload_bytes=max_upload_bytes,
                        address=address, folder=folder)
    query = f"?{auth.TOKEN_PARAM}=<token>" if token else ""

    def ready(**_) -> None:
        end_jobs_with_the_session(app)   # once listening: after the server's own set-up
        print(f"lnsynth serve: http://{host}:{server.port}/{query}  (session folder {app.session.folder}; "
              f"rendering with {render_window_class()})", flush=True)

    server.controller.on_server_ready.add(ready)
    server.start(port=port, host=host, open_browser=False, show_connection_info=False, timeout=0,
                 disable_logging=True)
    sys.stdout.flush()
    return 0
