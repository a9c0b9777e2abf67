"""What a page may name on the server: its own session folder and the data folders the admin lists.

A page is reachable over a network, so every path it sends is untrusted. Each one is resolved
(symbolic links and `..` followed) and must land inside one of the roots; anything else, and
anything missing or of the wrong kind, gets the same message, so the page cannot probe which
files exist elsewhere on the server (no existence oracle). Other sessions' folders are never
roots: the work folder itself is not one, only this session's folder inside it.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from pathlib import Path

from LNSynthLib.cli.serve_command import check_data_roots  # noqa: F401  (the --data rule, kept with the CLI)
from LNSynthLib.diffusion.choices import BUNDLED_CONFIGS
from LNSynthLib.errors import ConfigError, InputDataError

NOT_ALLOWED = "not allowed or not found on the server"
CONFIG_SUFFIXES = (".yaml", ".yml")
CHECKPOINT_SUFFIXES = (".pt", ".pth")


def _kind_ok(path: Path, folder: bool) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISDIR(mode) if folder else stat.S_ISREG(mode)


class ServerPaths:
    """Resolve page-given paths inside `roots` (the session folder first, then the data folders)."""

    def __init__(self, session_folder: str | Path, data_roots: Sequence[str | Path] = ()) -> None:
        self.roots = (Path(session_folder).resolve(), *(Path(r).resolve() for r in data_roots))

    def where(self) -> str:
        """The roots, for the page's hints."""
        return ", ".join(str(r) for r in self.roots)

    def refused(self, what: str, text: str) -> InputDataError:
        """The one message for a path outside the roots, missing, or of the wrong kind."""
        return InputDataError(f"{what} '{text}': {NOT_ALLOWED}",
                              fix=f"give a file or folder inside this session's folder or a data folder of "
                                  f"this server: {self.where()}")

    def resolve(self, text: object, what: str, *, folder: bool = False,
                suffixes: tuple[str, ...] = ()) -> Path:
        """The resolved path of `text` if it lies inside a root and is a regular file (or a folder)."""
        raw = str(text if text is not None else "").strip()
        if not raw:
            raise InputDataError(f"no {what} given", fix=f"type a path inside {self.where()}")
        if "\0" in raw or len(raw) > 4096:
            raise self.refused(what, raw[:200])
        given = Path(raw)  # no `~` expansion: the server user's home is not the page's business
        candidates = [given] if given.is_absolute() else [root / given for root in self.roots]
        for candidate in candidates:
            try:
                path = candidate.resolve(strict=True)
            except (OSError, RuntimeError):
                continue
            if (any(path.is_relative_to(root) for root in self.roots) and _kind_ok(path, folder)
                    and (not suffixes or path.name.lower().endswith(suffixes))):
                return path
        raise self.refused(what, raw)

    def file(self, text: object, what: str, suffixes: tuple[str, ...] = ()) -> Path:
        return self.resolve(text, what, suffixes=suffixes)

    def folder(self, text: object, what: str) -> Path:
        return self.resolve(text, what, folder=True)

    def optional_folder(self, text: object, what: str) -> Path | None:
        return self.folder(text, what) if str(text or "").strip() else None

    def config(self, text: object) -> str:
        """A bundled LN-DDPM config name, or a YAML file inside the roots that is a valid config.

        The file is checked here, so a bad one is reported without its lines: `lnsynth train`
        would quote the offending line in the job log.
        """
        name = str(text or "").strip()
        if name in BUNDLED_CONFIGS:
            return name
        path = self.file(name, "LN-DDPM config", CONFIG_SUFFIXES)
        from LNSynthLib.diffusion.config import load_config  # YAML and dataclasses only (no torch)

        try:
            load_config(path)
        except (ConfigError, OSError, ValueError, TypeError):
            raise InputDataError(f"LN-DDPM config '{name}' is not a valid config file",
                                 fix=f"pick one of {', '.join(BUNDLED_CONFIGS)}, or check the file on the server "
                                     "with `lnsynth train --config <file>`") from None
        return str(path)
