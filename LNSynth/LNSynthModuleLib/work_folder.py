"""Where the panel keeps the user's work: a persistent folder, chosen once, remembered in Slicer's settings.

Cases, LN-DDPM runs and checkpoints, synthetic data and logs are hours of work, so they must not
live in Slicer's temporary path (`QDir::tempPath()/Slicer-<user>`), which the operating system may
clear. The default is `<Slicer's default scene folder>/LNSynth`, as ScreenCapture defaults to
`defaultScenePath/SlicerCapture`; the default scene folder is the user's Documents folder unless they
changed it in Slicer's settings. A folder the user picks is stored under `LNSynth/WorkFolder` in
Slicer's user settings (`slicer.app.userSettings()`), so every later scene and session uses it.

Qt-free: `settings` is any object with QSettings' `value(key)` / `setValue(key, value)`.
"""

from __future__ import annotations

from pathlib import Path

SETTINGS_KEY = "LNSynth/WorkFolder"
FOLDER_NAME = "LNSynth"


def default_work_folder(scene_folder: str | Path) -> Path:
    """The work folder when the user never chose one: next to Slicer's default scene folder."""
    return Path(scene_folder) / FOLDER_NAME


def is_temporary(folder: str | Path | None, temporary_path: str | Path) -> bool:
    """True for a folder inside Slicer's temporary path (the default of LNSynth before this module)."""
    if folder is None or str(folder) in ("", "."):
        return False
    try:
        Path(folder).resolve().relative_to(Path(temporary_path).resolve())
    except ValueError:
        return False
    return True


def stored_work_folder(settings: object) -> Path | None:
    """The folder the user chose (Slicer's settings), or None."""
    value = settings.value(SETTINGS_KEY)
    return Path(str(value)) if value not in (None, "", ".") else None


def work_folder(settings: object, scene_folder: str | Path, temporary_path: str | Path) -> Path:
    """The folder to use: the user's choice unless it is a temporary one, else the persistent default."""
    stored = stored_work_folder(settings)
    if stored is not None and not is_temporary(stored, temporary_path):
        return stored
    return default_work_folder(scene_folder)


def resolve(current: str | Path | None, settings: object, scene_folder: str | Path,
            temporary_path: str | Path) -> Path:
    """What the panel's Work folder field should hold: its own value unless unset or in the temporary path
    (a scene saved before this change), then the remembered or default folder."""
    if current is not None and str(current) not in ("", ".") and not is_temporary(current, temporary_path):
        return Path(current)
    return work_folder(settings, scene_folder, temporary_path)


def remember(settings: object, folder: str | Path | None, temporary_path: str | Path) -> bool:
    """Store the user's folder for later scenes and sessions; True when the setting changed.

    Temporary folders are never remembered: they are what this module moves the work away from.
    """
    if folder is None or str(folder) in ("", ".") or is_temporary(folder, temporary_path):
        return False
    if stored_work_folder(settings) == Path(folder):
        return False
    settings.setValue(SETTINGS_KEY, str(folder))
    return True


def describe(folder: Path) -> str:
    """The panel's line that says where the work goes."""
    return f"Work folder: {folder} (cases, LN-DDPM runs, synthetic data, logs; change it in Advanced)"
