"""A training run folder is LNSynth's own before LNSynth writes into it.

`lnsynth train` writes `config.yaml`, `loss.csv` and `loss.png` next to its checkpoint, replacing
them on every save. Pointed at a folder that already holds such files of the user's (their own
config, another tool's loss log), it would overwrite them. A run folder is therefore marked with
`lnsynth_run.json` when LNSynth starts using it; an unmarked folder holding one of these names
(and no LNSynth checkpoint) is refused. Resuming removes the temporary files of a run that was
killed while writing (SIGKILL leaves no chance to clean up).
"""

from __future__ import annotations

import json
from pathlib import Path

from LNSynthLib.atomic import write_text_atomic
from LNSynthLib.diffusion.train.checkpoint import CHECKPOINT_NAME
from LNSynthLib.errors import OutputExistsError

RUN_FILES = ("config.yaml", "loss.csv", "loss.png")
RUN_MARKER = "lnsynth_run.json"


def claim_run_dir(run_dir: str | Path, *, write_marker: bool = True) -> Path:
    """Refuse a folder whose run-file names belong to someone else; mark it as an LNSynth run folder.

    `write_marker` is False in the other processes of a DDP run: only the main one writes and cleans.
    """
    run_dir = Path(run_dir)
    marker = run_dir / RUN_MARKER
    if marker.is_file() or (run_dir / CHECKPOINT_NAME).exists():
        # Marked, or a run of an earlier version (a foreign checkpoint.pt is refused when it is loaded).
        for name in (CHECKPOINT_NAME, *RUN_FILES) if write_marker else ():   # main process only
            for leftover in run_dir.glob(f".{name}.*.tmp*"):   # a run killed mid-write (SIGKILL)
                leftover.unlink()
        return run_dir
    foreign = [name for name in RUN_FILES if (run_dir / name).exists()]
    if foreign:
        raise OutputExistsError(
            f"the run folder holds {', '.join(foreign)} not written by `lnsynth train`; training would "
            "overwrite them", path=run_dir,
            fix="choose a new or empty --run-dir (training writes checkpoint.pt, config.yaml, loss.csv and "
                "loss.png there), or move those files away")
    if write_marker:
        write_text_atomic(marker, json.dumps({"written_by": "lnsynth train",
                                              "files": [CHECKPOINT_NAME, *RUN_FILES]}), overwrite=True)
    return run_dir
