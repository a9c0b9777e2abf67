"""What a page may name on the server and write there (no trame, no Slicer: milliseconds).

Every input below is what a hostile page could send; the served app is checked end to end with
the same inputs in test_serve_security.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from LNSynthLib.errors import InputDataError, UsageError
from LNSynthScene.web.paths import NOT_ALLOWED, ServerPaths, check_data_roots
from LNSynthScene.web.uploads import discard_upload, safe_upload_name, write_upload


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A work folder with this session and another one, a data folder, and secrets elsewhere."""
    work, data, secret = tmp_path / "work", tmp_path / "data", tmp_path / "secret"
    mine, other = work / "session-a", work / "session-b"
    for folder in (mine / "uploads", other / "uploads", data / "sub", secret):
        folder.mkdir(parents=True)
    for path in (mine / "uploads" / "mine.nii.gz", other / "uploads" / "theirs.nii.gz", data / "ct.nii.gz",
                 secret / "key.nii.gz"):
        path.write_bytes(b"\0" * 8)
    (secret / "password.yaml").write_text("db_password: hunter2\n")
    (data / "escape.nii.gz").symlink_to(secret / "key.nii.gz")
    os.mkfifo(data / "pipe.nii.gz")
    return {"work": work, "data": data, "secret": secret, "mine": mine, "other": other}


def _refusal(paths: ServerPaths, text: str, **kwargs) -> str:
    with pytest.raises(InputDataError) as caught:
        paths.resolve(text, "CT file", **kwargs)
    return str(caught.value)


def test_paths_inside_the_roots_resolve(layout):
    paths = ServerPaths(layout["mine"], [layout["data"]])
    assert paths.file("ct.nii.gz", "CT file") == layout["data"] / "ct.nii.gz"
    assert paths.file(str(layout["data"] / "sub" / ".." / "ct.nii.gz"), "CT file") == layout["data"] / "ct.nii.gz"
    assert paths.file("uploads/mine.nii.gz", "CT file") == layout["mine"] / "uploads" / "mine.nii.gz"
    assert paths.folder("sub", "folder") == layout["data"] / "sub"
    assert paths.optional_folder("  ", "folder") is None


def test_every_path_outside_the_roots_gets_the_same_message(layout):
    """No existence oracle: a secret file, a missing one, another session's, a link out, a pipe read alike."""
    paths = ServerPaths(layout["mine"], [layout["data"]])
    hostile = ["/etc/shadow", "/etc/does-not-exist", "../../../../../../etc/passwd", "~/.bashrc",
               str(layout["secret"] / "key.nii.gz"), str(layout["secret"] / "missing.nii.gz"),
               str(layout["other"] / "uploads" / "theirs.nii.gz"), "../session-b/uploads/theirs.nii.gz",
               "escape.nii.gz", "pipe.nii.gz", "sub", "nothing-here.nii.gz", "ct.nii.gz\0.txt", "x" * 5000]
    messages = {_refusal(paths, text).replace(text[:200], "<given>") for text in hostile}
    assert len(messages) == 1, messages
    message = messages.pop()
    assert NOT_ALLOWED in message and "cannot be read" not in message
    assert str(layout["secret"]) not in message and "/root" not in message


def test_a_folder_field_refuses_files_and_outside_folders_alike(layout):
    paths = ServerPaths(layout["mine"], [layout["data"]])
    for text in ("ct.nii.gz", "/etc", str(layout["other"]), "..", str(layout["work"])):
        assert NOT_ALLOWED in _refusal(paths, text, folder=True)


def test_config_field_takes_a_bundled_name_or_a_valid_yaml_inside_the_roots(layout):
    """The Config field never hands a file to `lnsynth train` that would quote its lines in the job log."""
    from LNSynthLib.diffusion.config import CONFIG_DIR

    (layout["data"] / "mine.yaml").write_text((CONFIG_DIR / "tiny.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (layout["data"] / "notes.yaml").write_text("db_password: hunter2\nother: [unclosed\n")
    (layout["data"] / "notes.txt").write_text("db_password: hunter2\n")
    paths = ServerPaths(layout["mine"], [layout["data"]])
    assert paths.config("tiny") == "tiny"
    assert paths.config("mine.yaml") == str(layout["data"] / "mine.yaml")
    for text in ("notes.yaml", "notes.txt", str(layout["secret"] / "password.yaml"), "/etc/passwd"):
        with pytest.raises(InputDataError) as caught:
            paths.config(text)
        assert "hunter2" not in str(caught.value) and "db_password" not in str(caught.value)


def test_data_folders_must_exist_and_stay_apart_from_the_work_folder(layout, tmp_path):
    assert check_data_roots([layout["data"], layout["data"]], layout["work"]) == (layout["data"].resolve(),)
    for bad in (tmp_path, layout["work"], layout["mine"], tmp_path / "missing"):
        with pytest.raises(UsageError):
            check_data_roots([bad], layout["work"])


@pytest.mark.parametrize("name, kept", [("ct.nii.gz", "ct.nii.gz"), ("../../../x.nii.gz", "x.nii.gz"),
                                        ("/etc/cron.d/job", "job"), ("C:\\fakepath\\ct.nrrd", "ct.nrrd"),
                                        (" ct .nii.gz ", "ct .nii.gz")])
def test_upload_names_keep_only_their_base_name(name, kept):
    assert safe_upload_name(name) == kept


@pytest.mark.parametrize("name", ["", ".", "..", "../..", "uploads/", "/", None, "a\nb", "a\0b", "x" * 300])
def test_upload_names_without_a_usable_base_name_are_refused(name):
    with pytest.raises(InputDataError):
        safe_upload_name(name)


def test_uploads_stay_in_their_folder_are_capped_and_removed_when_rejected(tmp_path: Path):
    folder = tmp_path / "work" / "session-a" / "uploads"
    escape = tmp_path / "pwned.txt"
    path = write_upload([{"name": "../../../pwned.txt", "content": b"x"}], folder, 1024)
    assert path == folder / "pwned.txt" and not escape.exists()
    absolute = write_upload([{"name": str(escape), "content": [b"a", b"b"]}], folder, 1024)
    assert absolute == folder / "pwned-1.txt" and absolute.read_bytes() == b"ab" and not escape.exists()
    for files, message in (([{"name": "big.nii.gz", "content": b"\0" * 1025}], "over this server's limit"),
                           ([{"name": "empty.nii.gz", "content": b""}], "empty"),
                           ([{"name": "a", "content": b"1"}, {"name": "b", "content": b"2"}], "2 files"),
                           ([], "nothing was uploaded")):
        with pytest.raises(InputDataError, match=message):
            write_upload(files, folder, 1024)
    assert sorted(p.name for p in folder.iterdir()) == ["pwned-1.txt", "pwned.txt"]
    discard_upload(path, folder)
    discard_upload(absolute, folder)
    assert not folder.exists() and folder.parent.is_dir()
