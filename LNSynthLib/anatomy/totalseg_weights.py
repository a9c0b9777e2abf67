"""TotalSegmentator's weights on first use: downloaded by TotalSegmentator's own function, or imported from a zip.

TotalSegmentator (and its Slicer extension, which runs TotalSegmentator's command line) downloads a
task's weights on first use into its home folder (`get_totalseg_dir()`: `TOTALSEG_HOME_DIR`, else
`~/.totalsegmentator`; the models under `nnunet/results`, or `TOTALSEG_WEIGHTS_PATH`). LNSynth runs
TotalSegmentator offline (`totalseg.run_totalsegmentator` never downloads), so the panel's *Create
anatomy* gets the weights first, as its own job step with progress and Cancel:

- `download`: for each dataset the `total` task needs and lacks, TotalSegmentator's
  `libs.download_pretrained_weights(task_id)`, into TotalSegmentator's standard home (or the folder the
  user chose). Its download bar reports through LNSynth's progress lines. A download that is stopped
  (Cancel kills the process) leaves a marker beside the dataset folder; the next run removes what that
  download left before starting again, since TotalSegmentator skips any dataset folder that exists.
  Without network it fails with the offline path: the zip's address, the panel's import, or the
  weights-free coarse anatomy.
- `import`: a weights zip downloaded elsewhere, unpacked by TotalSegmentator's own
  `totalseg_import_weights` into the folder TotalSegmentator reads.

Job step: `python -m LNSynthLib.anatomy.totalseg_weights download|import ...` (imports TotalSegmentator,
hence torch: never in Slicer's process; the step builders below import nothing heavy).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from LNSynthLib.anatomy.totalseg import (
    RELEASES_URL,
    _totalseg_environment,
    missing_weights,
    required_datasets,
    weights_root,
)
from LNSynthLib.errors import InputDataError, MissingWeightsError
from LNSynthLib.jobs.step import run_step

MARKER_SUFFIX = ".lnsynth-partial"    # beside a dataset folder while LNSynth downloads or unpacks it
TMP_ZIP = "tmp_download_file.zip"     # TotalSegmentator's own download file (libs.download_url_and_unpack)
EVENT = "totalseg_weights"            # the JSON line naming where the weights are
DOWNLOAD_LABEL = "Getting TotalSegmentator weights"
IMPORT_LABEL = "Importing TotalSegmentator weights"
PANEL_IMPORT = "Advanced > Import TotalSegmentator weights (zip)"


def weights_url(version: str, folder: str) -> str:
    """Where TotalSegmentator downloads a dataset from (as `download_pretrained_weights` builds it)."""
    return f"{RELEASES_URL}/{version}/{Path(folder).name}.zip"


def _marker(target: Path) -> Path:
    return target.parent / (target.name + MARKER_SUFFIX)


def _complete(target: Path) -> bool:
    return target.is_dir() and any(target.rglob("checkpoint_final.pth"))


def _discard_interrupted(target: Path) -> bool:
    """Remove what a stopped LNSynth download or import of `target` left; True when there was something."""
    marker = _marker(target)
    if not marker.exists():
        return False
    shutil.rmtree(target, ignore_errors=True)
    (target.parent / TMP_ZIP).unlink(missing_ok=True)
    marker.unlink(missing_ok=True)
    return True


def _report(weights_dir: str | Path | None, fast: bool, **info: object) -> None:
    from LNSynthLib.jobs.progress import emit_event

    missing = [folder for _, folder, _ in missing_weights(weights_dir, fast)]
    emit_event(EVENT, path=str(weights_root(weights_dir)), missing=missing, **info)


@contextlib.contextmanager
def _download_progress(libs: object, stage: str) -> Iterator[None]:
    """TotalSegmentator's download bar (`libs.tqdm`) reported as LNSynth progress lines, for the call only."""
    from LNSynthLib.jobs.progress import Progress

    class Bar:
        def __init__(self, total: int = 0, **_: object) -> None:
            self.n = 0
            self.progress = Progress(stage, int(total or 0))

        def update(self, n: int) -> None:
            self.n += int(n)
            self.progress.update(self.n, mb=round(self.n / 1e6, 1))

        def close(self) -> None:
            self.progress.close(mb=round(self.n / 1e6, 1))

    saved = libs.tqdm
    libs.tqdm = Bar
    try:
        yield
    finally:
        libs.tqdm = saved


def offline_error(task_id: int, folder: str, version: str, root: Path, reason: str) -> MissingWeightsError:
    url = weights_url(version, folder)
    return MissingWeightsError(
        f"cannot download the TotalSegmentator weights for Task {task_id} from {url}: {reason}",
        path=root,
        fix=(f"without network: download {url} on a computer with internet, then import the zip in the LNSynth "
             f"panel ({PANEL_IMPORT}) or with TotalSegmentator's `totalseg_import_weights -i <zip>` "
             f"(with TOTALSEG_WEIGHTS_PATH={root}); it is unpacked into {root}. "
             f"Or choose the anatomy method 'coarse' (no weights, a coarser anatomy)"))


def _reason(exc: BaseException) -> str:
    import requests

    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        return f"the server answered {exc.response.status_code} {exc.response.reason}"
    if isinstance(exc, requests.exceptions.Timeout):
        return "the connection timed out"
    inner = getattr(exc.args[0], "reason", None) if exc.args else None   # urllib3's MaxRetryError.reason
    text = f"{type(inner).__name__}: {inner}" if inner is not None else f"{type(exc).__name__}: {exc}"
    return f"no network connection ({text.splitlines()[0][:240]})"


def ensure_weights(weights_dir: str | Path | None = None, fast: bool = True) -> list[int]:
    """Download the datasets the `total` task lacks with TotalSegmentator's `download_pretrained_weights`
    into TotalSegmentator's home (or `weights_dir`); returns the task ids downloaded ([]: all present)."""
    import requests

    root = weights_root(weights_dir)
    for _, folder, _ in required_datasets(fast):
        if _discard_interrupted(root / folder):
            print(f"removed an interrupted download of {root / folder}")
    missing = missing_weights(weights_dir, fast)
    for _, folder, _ in missing:
        if (root / folder).exists():   # TotalSegmentator would skip it: never delete what LNSynth did not make
            raise MissingWeightsError(f"{root / folder} holds no complete TotalSegmentator model "
                                      "(no checkpoint_final.pth)", path=root / folder,
                                      fix="delete that folder, then Create anatomy again (it is downloaded again), "
                                          f"or import its zip ({PANEL_IMPORT})")
    if not missing:
        print(f"TotalSegmentator weights present in {root}")
        _report(weights_dir, fast, downloaded=[])
        return []
    done = []
    with _totalseg_environment(weights_dir):
        from totalsegmentator import libs

        for i, (task_id, folder, version) in enumerate(missing, 1):
            target = root / folder
            target.parent.mkdir(parents=True, exist_ok=True)
            _marker(target).write_text(weights_url(version, folder), encoding="utf-8")
            print(f"downloading {weights_url(version, folder)} into {target.parent}", flush=True)
            try:
                with _download_progress(libs, f"downloading TotalSegmentator weights, Task {task_id} "
                                              f"({i} of {len(missing)})"):
                    libs.download_pretrained_weights(task_id)
            except requests.exceptions.RequestException as exc:
                _discard_interrupted(target)
                raise offline_error(task_id, folder, version, root, _reason(exc)) from None
            if not _complete(target):
                _discard_interrupted(target)
                raise MissingWeightsError(f"the download of Task {task_id} holds no {folder}/…/checkpoint_final.pth",
                                          path=root, fix=f"import the zip by hand ({PANEL_IMPORT})")
            _marker(target).unlink(missing_ok=True)
            done.append(task_id)
    _report(weights_dir, fast, downloaded=done)
    return done


def zip_datasets(zip_path: str | Path) -> list[str]:
    """The dataset folders a TotalSegmentator weights zip holds (each with a checkpoint_final.pth)."""
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise InputDataError("weights zip not found", path=zip_path, fix="choose the downloaded .zip file")
    if not zipfile.is_zipfile(zip_path):
        raise InputDataError("is not a zip file", path=zip_path,
                             fix="choose a TotalSegmentator weights zip (e.g. Dataset297_…zip)")
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
    folders = sorted({Path(n).parts[0] for n in names if Path(n).name == "checkpoint_final.pth"})
    if not folders or not all(f.startswith("Dataset") for f in folders):
        raise InputDataError("holds no TotalSegmentator v2 model (a Dataset… folder with checkpoint_final.pth)",
                             path=zip_path,
                             fix="choose a TotalSegmentator weights zip (e.g. Dataset297_…zip)")
    return folders


def import_weights(zip_path: str | Path, weights_dir: str | Path | None = None, fast: bool = True) -> list[str]:
    """Unpack a weights zip with TotalSegmentator's `totalseg_import_weights` into the folder TotalSegmentator
    reads; returns the dataset folders imported. Raises when the `total` task still lacks a dataset."""
    from LNSynthLib.jobs.progress import Progress

    zip_path = Path(zip_path).resolve()
    folders = zip_datasets(zip_path)
    root = weights_root(weights_dir)
    root.mkdir(parents=True, exist_ok=True)
    with Progress(f"unpacking {zip_path.name} into {root}", 1) as progress, _totalseg_environment(weights_dir):
        from totalsegmentator.bin import totalseg_import_weights

        for folder in folders:
            _marker(root / folder).write_text(str(zip_path), encoding="utf-8")
        argv = sys.argv
        sys.argv = ["totalseg_import_weights", "-i", str(zip_path)]
        try:
            totalseg_import_weights.main()
        finally:
            sys.argv = argv
        for folder in folders:
            _marker(root / folder).unlink(missing_ok=True)
        progress.update()
    still = missing_weights(weights_dir, fast)
    _report(weights_dir, fast, imported=folders)
    if still:
        names = ", ".join(f"Task {tid} ({weights_url(version, folder)})" for tid, folder, version in still)
        raise MissingWeightsError(f"imported {', '.join(folders)}, but the anatomy still needs {names}",
                                  path=root, fix="import that zip too")
    return folders


# ----------------------------------------------------------------------------- job steps (nothing heavy imported)

def _options(weights_dir: str | Path | None, fast: bool) -> list[str]:
    return (["--weights-dir", str(weights_dir)] if weights_dir else []) + ([] if fast else ["--full-resolution"])


def download_step(python: str, weights_dir: str | Path | None = None, fast: bool = True, weight: float = 1.0):
    """The job step that gets the weights (nothing to do, in a few seconds, when they are there)."""
    from LNSynthLib.jobs.chain import Step

    return Step(DOWNLOAD_LABEL, [], weight=weight,
                command=[python, "-m", __name__, "download", *_options(weights_dir, fast)])


def import_step(python: str, zip_path: str | Path, weights_dir: str | Path | None = None, fast: bool = True):
    from LNSynthLib.jobs.chain import Step

    return Step(IMPORT_LABEL, [], command=[python, "-m", __name__, "import", str(zip_path),
                                           *_options(weights_dir, fast)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="LNSynthLib.anatomy.totalseg_weights", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    download = commands.add_parser("download", help="download the missing weights (TotalSegmentator's own function)")
    imported = commands.add_parser("import", help="unpack a weights zip (TotalSegmentator's totalseg_import_weights)")
    imported.add_argument("zip", help="a TotalSegmentator weights zip, e.g. Dataset297_…zip")
    for sub in (download, imported):
        sub.add_argument("--weights-dir", default=None,
                         help="TotalSegmentator home to use (default: TOTALSEG_HOME_DIR, else ~/.totalsegmentator)")
        sub.add_argument("--full-resolution", action="store_true", help="the 1.5 mm models (default: the fast 3 mm)")
    args = parser.parse_args(argv)
    fast = not args.full_resolution
    def step() -> str | None:
        if args.command == "download":
            ensure_weights(args.weights_dir, fast)
            return None
        return (f"imported {', '.join(import_weights(args.zip, args.weights_dir, fast))} into "
                f"{weights_root(args.weights_dir)}")

    return run_step(step)


if __name__ == "__main__":
    raise SystemExit(main())
