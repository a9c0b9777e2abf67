"""Train/test separation: a held-out test set must share no case with the training set.

Overlap is looked for four ways: the same folder, the same case ids, the same CT under another
name (prepared cases: the same voxel array; unprepared cases: the same file bytes), and, for
prepared cases, the same source CT: one patient prepared twice (another margin or spacing gives
another prepared array) still has one source CT, recorded by `prepare` in case.json by content
(`source_ct_sha256`) and path (`ct_path`). Any overlap would score the segmenter on images it
was trained on, so it is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from LNSynthLib.errors import InputDataError

FIX = "give held-out test cases that are not among the training cases (another folder, other patients)"


def array_digest(array: np.ndarray) -> str:
    """SHA-256 of a CT's voxels as float32 whatever the stored type, so an int16 (prepared) and a float32
    copy of one CT match; converted a slab at a time (a full CT is never copied whole)."""
    digest = hashlib.sha256(f"float32{tuple(array.shape)}".encode())
    for z in range(0, array.shape[0], 16):
        digest.update(np.ascontiguousarray(array[z:z + 16], dtype=np.float32).tobytes())
    return digest.hexdigest()


def _array_digest(ct: Path) -> str:
    from LNSynthLib.volumes.io import read_volume

    return array_digest(read_volume(ct).array)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _check(train_root: Path, test_root: Path, folders: Callable[[Path], list[Path]],
           ct_digest: Callable[[Path], str | None],
           same_case: Callable[[Path, Path], bool] = lambda a, b: True) -> None:
    if train_root.resolve() == test_root.resolve():
        raise InputDataError(f"the test cases are the training cases (same folder as {train_root})", path=test_root,
                             fix=FIX)
    train, test = folders(train_root), folders(test_root)
    by_id = {f.name: f for f in train}
    same_ids = sorted(f.name for f in test if f.name in by_id and same_case(by_id[f.name], f))
    if same_ids:
        raise InputDataError(f"{len(same_ids)} test case id(s) are also training cases in {train_root}: "
                             f"{', '.join(same_ids[:10])}", path=test_root, fix=FIX)
    seen: dict[str, str] = {}
    for folder in train:
        digest = ct_digest(folder)
        if digest is not None:
            seen.setdefault(digest, folder.name)
    for folder in test:
        digest = ct_digest(folder)
        if digest is not None and digest in seen:
            raise InputDataError(f"test case {folder.name} has the same CT as training case {seen[digest]} "
                                 f"in {train_root}", path=folder, fix=FIX)


def _same_prepared_case(a: Path, b: Path) -> bool:
    """Same id means same case, except phantoms: their ids are per folder, their seed tells them apart."""
    from LNSynthLib.cases import read_meta

    metas = [read_meta(f) for f in (a, b)]
    if all(m.get("source") == "phantom" and "phantom_seed" in m for m in metas):
        return metas[0]["phantom_seed"] == metas[1]["phantom_seed"]
    return True


def _sources(folder: Path) -> set[str]:
    """What a prepared case was made from: its source CT by content and by resolved path (case.json)."""
    from LNSynthLib.cases import read_meta

    meta = read_meta(folder)
    found = set()
    if meta.get("source_ct_sha256"):
        found.add(f"content {meta['source_ct_sha256']}")
    if meta.get("ct_path") and not meta.get("synthetic"):
        found.add(f"file {meta['ct_path']}")
    return found


def check_prepared_disjoint(train_root: str | Path, test_root: str | Path) -> None:
    """Prepared training and test cases (`lnsynth prepare` folders) share no folder, case id, CT or source CT."""
    from LNSynthLib.cases import CT_FILE, list_cases

    _check(Path(train_root), Path(test_root), list_cases,
           lambda folder: _array_digest(folder / CT_FILE) if (folder / CT_FILE).exists() else None,
           _same_prepared_case)
    seen: dict[str, str] = {}
    for folder in list_cases(train_root):
        for source in _sources(folder):
            seen.setdefault(source, folder.name)
    for folder in list_cases(test_root):
        for source in sorted(_sources(folder)):
            if source in seen:
                kind, _, what = source.partition(" ")
                said = "the same source CT (same voxels)" if kind == "content" else f"the same source CT file {what}"
                raise InputDataError(f"test case {folder.name} was prepared from {said} as training case "
                                     f"{seen[source]} in {train_root}: one patient on both sides", path=folder,
                                     fix=FIX)


def check_raw_disjoint(train_root: str | Path, test_root: str | Path,
                       find_ct: Callable[[Path], Path | None]) -> None:
    """Unprepared case folders (`<case>/ct.nii.gz ...`) share no folder, case id or CT file content."""
    def folders(root: Path) -> list[Path]:
        return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []

    def digest(folder: Path) -> str | None:
        ct = find_ct(folder)
        return None if ct is None else _file_digest(ct)

    _check(Path(train_root), Path(test_root), folders, digest)
