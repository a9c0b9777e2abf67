"""Small decisions of the panel, kept out of the widget so the tests run them here (no Slicer application).

- The LN-DDPM run folder the panel names itself follows the chosen config; one the user chose stays.
- The log box is rewritten only when the job printed something, and keeps the reader's place.
- An nnU-Net dataset already in the project folder is replaced only after asking.
"""

from __future__ import annotations

from pathlib import Path

from LNSynthLib.segmentation.nnunet.project import NnUNetProject

AUTO_RUN_PREFIX = "ln_ddpm_"


def auto_run_folder(work: Path, config: str) -> Path:
    """The panel's own name for a config's LN-DDPM run folder: `<work>/ln_ddpm_<config name>`."""
    return Path(work) / f"{AUTO_RUN_PREFIX}{Path(str(config)).stem or 'config'}"


def ddpm_run_folder(current: Path | None, work: Path, config: str) -> Path:
    """The run folder for *Train LN-DDPM* with `config`.

    A folder the panel named (`<work>/ln_ddpm_*`) belongs to the config it was named after: with another
    config it would hold "a checkpoint of a different model configuration" and the training would
    fail, so the name follows the config (and switching back resumes the first one). A folder the
    user chose is theirs and stays.
    """
    if current is None or (Path(current).parent == Path(work) and Path(current).name.startswith(AUTO_RUN_PREFIX)):
        return auto_run_folder(work, config)
    return Path(current)


def _read(obj: object, name: str) -> object:
    """A Qt property: an attribute in PythonQt (Slicer), a getter method in PySide (the tests)."""
    value = getattr(obj, name)
    return value() if callable(value) else value


def refresh_log(edit: object, lines: list[str], shown: str | None) -> str:
    """Show `lines` in the QPlainTextEdit `edit` when they differ from `shown`; returns what is shown.

    Rewriting the box every poll threw the reader back twice a second. Now nothing is touched while the
    job prints nothing; otherwise a reader at the bottom follows the new lines and any other scroll
    position is kept.
    """
    text = "\n".join(lines)
    if text == shown:
        return text
    bar = edit.verticalScrollBar()
    position, bottom = _read(bar, "value"), _read(bar, "maximum")
    follow = position >= bottom
    edit.setPlainText(text)
    bar.setValue(_read(bar, "maximum") if follow else min(position, _read(bar, "maximum")))
    return text


def existing_datasets(project_dir: Path | None) -> list[Path]:
    """nnU-Net datasets an export already wrote into the project folder (`nnUNet_raw/Dataset*/dataset.json`)."""
    if project_dir is None:
        return []
    return [d for d in NnUNetProject(project_dir).datasets() if (d / "dataset.json").is_file()]


def replace_question(datasets: list[Path]) -> str:
    return (f"The nnU-Net project already holds {', '.join(d.name for d in datasets)}.\n\nReplace it with this "
            "export (this session's real and synthetic cases)? If the cases and settings are the same, nothing "
            "is rewritten. A model trained on the old dataset stays in the project's results folder.")
