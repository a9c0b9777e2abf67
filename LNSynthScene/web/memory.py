"""What a session works on, kept in its folder, so a reopened session (after a crash or an idle end) comes
back to it: the CT's path, its anatomy and painted nodes as label files, the checkpoint and nnU-Net folders.

The scene lives in the session process only; a crash loses it. The folder keeps `session.json` and the
`scene/` label files, written when they change (a CT loaded, an anatomy made, a job started, the brush
stopped), never per stroke. The paths in it are read back through the page's `ServerPaths`: a reopened
session reads nothing the page could not name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from LNSynthLib.volumes.geometry import Volume

MEMORY_FILE = "session.json"
SCENE_FOLDER = "scene"
ANATOMY_FILE = "anatomy.nii.gz"
NODES_FILE = "lymph_nodes.nii.gz"
PATH_KEYS = ("ct", "checkpoint", "nnunet_dataset", "nnunet_model")


class SessionMemory:
    """`session.json` of one session folder: `note` what changed, `read` it back."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / MEMORY_FILE

    def read(self) -> dict:
        """The last notes ({} when there are none or the file is unreadable: a reopen then starts empty)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def note(self, **fields: object) -> None:
        """Merge `fields` (a path as text; None forgets it) and write the file whole (a crash mid-write keeps
        the previous one)."""
        data = {**self.read(), **{k: (None if v is None else str(v)) for k, v in fields.items()}}
        temporary = self.path.with_name(f".{MEMORY_FILE}.tmp")
        temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(temporary, self.path)

    def save_labels(self, name: str, labels: Volume) -> Path:
        """Write a label map (anatomy or nodes) into `scene/`; returns its path."""
        from LNSynthLib.volumes.io import write_volume

        path = self.folder / SCENE_FOLDER / name
        write_volume(labels, path, overwrite=True)
        return path

    def labels(self, key: str) -> Volume | None:
        """The label file noted under `key`, if it is still in this folder's `scene/`."""
        from LNSynthLib.volumes.io import read_volume

        text = self.read().get(key)
        if not text:
            return None
        path = Path(text)
        scene = (self.folder / SCENE_FOLDER).resolve()
        if path.resolve().parent != scene or not path.is_file():
            return None
        return read_volume(path)
