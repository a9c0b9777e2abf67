"""One recipe per output folder at a time: a lock per output folder, and what the folder's writers make.

A command that writes many files into one folder over a long time (`lnsynth sample` into its
`--out`, `nnunet export` beside its dataset) claims the folder first with its *recipe*: what the
output is made from (inputs by content hash, settings, code version). Claims go through two
hidden files in the folder:
- `.lnsynth.lock`: held exclusively for the few milliseconds of a claim, so two commands started
  at the same instant cannot both find the folder free;
- `.lnsynth.writers`: every writer holds a shared lock on it until it finishes (the kernel drops it
  when the process dies, even by SIGKILL), so "is anyone writing here now?" has a true answer.
The recipe of the writers is kept in `.lnsynth_recipe.json`. A second writer with the same recipe
(another shard of the same sampling) may join; one with another recipe is refused while the first
is alive. `exclusive` claims admit no second writer at all. A claim also removes what killed
writers left in the folder (`atomic.sweep_leftovers`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from LNSynthLib.atomic import sweep_leftovers, write_text_atomic
from LNSynthLib.errors import OutputExistsError

LOCK_FILE = ".lnsynth.lock"
WRITERS_FILE = ".lnsynth.writers"
RECIPE_FILE = ".lnsynth_recipe.json"
CLAIM_FILES = (LOCK_FILE, WRITERS_FILE, RECIPE_FILE)

_HELD: dict[str, Claim] = {}   # this process's claims, by folder: a new claim of the same folder replaces one


def code_version() -> str:
    """The code a recipe was made with: the package version (a format change bumps it)."""
    from LNSynthLib import __version__

    return f"lnsynth {__version__}"


def content_digest(*paths: str | Path) -> str:
    """SHA-256 over the bytes of `paths` (files; a missing one counts as absent): inputs by content, not name."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            with open(path, "rb") as fh:
                digest.update(b"file\0")
                while chunk := fh.read(1 << 22):
                    digest.update(chunk)
        except FileNotFoundError:
            digest.update(b"absent\0")
    return digest.hexdigest()


class Claim:
    """A held claim on an output folder; `release()` (or the end of the process) gives it up."""

    def __init__(self, key: str, fd: int) -> None:
        self.key, self._fd = key, fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)   # drops the shared lock
            self._fd = None
        if _HELD.get(self.key) is self:
            del _HELD[self.key]

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)


def _read_recipe(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def _differences(held: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    keys = sorted(set(held) | set(wanted))
    return [k for k in keys if held.get(k) != wanted.get(k)]


def _names(output: str) -> tuple[str, str, str]:
    if not output:
        return CLAIM_FILES
    return tuple(name.replace(".lnsynth", f".lnsynth-{output}", 1) for name in CLAIM_FILES)


def claim_output_folder(folder: str | Path, recipe: dict[str, Any], command: str, *,
                        exclusive: bool = False, output: str = "") -> Claim:
    """Claim `folder` for writing outputs made by `recipe`; refuse while a live writer makes something else.

    Returns the `Claim` (hold it until the writing is done). `recipe` must be JSON data; it is
    compared key by key, and the refusal names the keys that differ. `output` names one output
    inside `folder` (an nnU-Net dataset in nnUNet_raw) when the claim is for that output only.
    """
    folder = Path(folder)
    lock_file, writers_file, recipe_file = _names(output)
    folder.mkdir(parents=True, exist_ok=True)
    held = _HELD.pop(str(folder.resolve() / output), None)
    if held is not None:   # this process finished with the folder (an earlier call that failed)
        held.release()
    recipe = {**recipe, "code": code_version()}
    guard = os.open(folder / lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)   # short: only while the claim is decided
        writers = os.open(folder / writers_file, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            try:
                fcntl.flock(writers, fcntl.LOCK_EX | fcntl.LOCK_NB)
                alone = True
            except BlockingIOError:
                alone = False
            record = _read_recipe(folder / recipe_file)
            if not alone:
                others = record or {}
                if exclusive or others.get("recipe") != recipe:
                    differ = _differences(others.get("recipe") or {}, recipe)
                    what = "" if exclusive else f" with another {', '.join(differ)}"
                    raise OutputExistsError(
                        f"another `{others.get('command', 'lnsynth')}` is writing "
                        f"{'it' if output else 'into this folder'}{what}; two runs would mix their outputs",
                        path=folder / output if output else folder,
                        fix="wait until it has finished, or write into another output folder"
                            + ("" if exclusive else " (shards of one run need the same checkpoint and settings)"))
            else:
                sweep_leftovers(folder)   # nobody is writing: whatever a killed writer left goes
                if (record or {}).get("recipe") != recipe or record.get("command") != command:
                    write_text_atomic(folder / recipe_file, json.dumps({"command": command, "pid": os.getpid(),
                                                                        "recipe": recipe}, indent=2), overwrite=True)
            fcntl.flock(writers, fcntl.LOCK_SH)
        except BaseException:
            os.close(writers)
            raise
    finally:
        os.close(guard)
    claim = Claim(str(folder.resolve() / output), writers)
    _HELD[claim.key] = claim
    return claim
