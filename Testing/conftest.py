"""Fixtures shared by all suites: the real example data in ../shared/data (skipped when absent), the example CT
with nodes painted into it and tiny bad-input data, written as real files."""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from LNSynthLib.anatomy.build import anatomy_from_labels
from LNSynthLib.phantom.painted import paint_nodes_near_vessels
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.io import read_volume, write_volume
from LNSynthLib.volumes.preprocess import PreprocessSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LNSYNTH_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
SLOW_TIMEOUT_S = 7200


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow end-to-end runs get two hours instead of the default per-test limit of pyproject.toml."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


# --- Parallel runs (pytest-xdist; `make test` runs `-n 2`) -----------------------------------------------------
def pytest_configure(config: pytest.Config) -> None:
    """In an xdist worker: the cores shared out among the workers, as OpenMP threads (passive) for torch here and
    for the job processes the tests start (the jobs' thread rule reads OMP_NUM_THREADS). Two workers of two
    spinning threads each on two cores run several times slower (`lnsynth bench threads`)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        threads = max(1, len(os.sched_getaffinity(0)) // workers)
        os.environ.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)


# A worker runs a whole test file at a time, so a module-scoped fixture (a trained model, a served app) is built
# once. A session fixture is built once in each worker that uses it: the files that name one of these costly
# ones (a real nnU-Net run, minutes) go to one worker together.
SHARED_BUILDS = ("nnunet_run",)
_SCOPES: dict[str, str] = {}


def xdist_scope(nodeid: str, root: Path) -> str:
    """The unit of work of a test under pytest-xdist: its file, or the shared build that its file uses."""
    file = nodeid.split("::", 1)[0]
    if file not in _SCOPES:
        try:
            text = (root / file).read_text(encoding="utf-8")
        except OSError:
            text = ""
        uses = [name for name in SHARED_BUILDS if re.search(rf"\b{name}\b", text)]
        _SCOPES[file] = f"{file.rsplit('/', 1)[0]}:{uses[0]}" if uses else file
    return _SCOPES[file]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):  # noqa: ANN001, ANN201 - xdist's types
    """With xdist's default `--dist load`: work units of xdist_scope instead of single tests."""
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedBuildScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid, config.rootpath)

    return SharedBuildScheduling(config, log)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real example CTs; tests that need it skip with a message when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real example data not found at {SHARED_DATA} (set LNSYNTH_SHARED_DATA to its folder)")
    return SHARED_DATA


def _shared_file(folder: Path, relative: str) -> Path:
    path = folder / relative
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def example_ct(shared_data: Path) -> Path:
    return _shared_file(shared_data, "totalseg_example/example_ct.nii.gz")


@pytest.fixture(scope="session")
def example_totalseg(shared_data: Path) -> Path:
    return _shared_file(shared_data, "totalseg_example/example_seg_total.nii.gz")


# --- The real example CT and its anatomy, with nodes painted into it --------------------------------------

@pytest.fixture(scope="session")
def example_ct_volume(example_ct: Path) -> Volume:
    return read_volume(example_ct)


@pytest.fixture(scope="session")
def example_anatomy(example_ct_volume: Volume, example_totalseg: Path) -> Volume:
    return anatomy_from_labels(read_volume(example_totalseg), example_ct_volume, "totalseg")


@pytest.fixture(scope="session")
def painted_example(tmp_path_factory, example_ct_volume: Volume, example_anatomy: Volume) -> dict[str, Path]:
    """Real CT with three soft-tissue spheres in fat near the aorta, and their LN mask, as NIfTI files."""
    ct, ln = paint_nodes_near_vessels(example_ct_volume, example_anatomy, n_nodes=3, radius_mm=7.0, seed=0)
    folder = tmp_path_factory.mktemp("painted")
    return {"ct": write_volume(ct, folder / "ct_nodes.nii.gz"), "ln": write_volume(ln, folder / "ln.nii.gz")}


# --- Tiny bad-input data for the bad-input tables (test_bad_inputs_*.py) -------------------------------------

SPACING_MM = 5.0   # 32 voxels = 160 mm: room for a "node" longer than any lymph node


def _body_ct(shape: tuple[int, int, int] = (32, 32, 32)) -> np.ndarray:
    """Air around a box of fat holding soft tissue and a bone block: passes every CT check."""
    ct = np.full(shape, -1000, np.int16)
    ct[2:30, 3:29, 3:29] = -100
    ct[8:24, 8:20, 8:20] = 40
    ct[4:28, 22:26, 14:18] = 700
    return ct


def _nodes(shape: tuple[int, int, int] = (32, 32, 32)) -> np.ndarray:
    ln = np.zeros(shape, np.uint8)
    ln[10:13, 10:13, 10:13] = 1
    ln[18:20, 14:16, 12:15] = 1
    return ln


def _write_dicom(folder: Path, ct: np.ndarray, slices: list[int]) -> Path:
    """A CT series written with SimpleITK's DICOM writer, one file per slice index in `slices`."""
    import SimpleITK as sitk

    folder.mkdir(parents=True)
    image = sitk.GetImageFromArray(ct)
    image.SetSpacing((0.8, 0.8, 2.0))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    series = "1.2.826.0.1.3680043.2.1125.1.42"
    for k in slices:
        s = image[:, :, k]
        for tag, value in (("0008|0060", "CT"), ("0020|000e", series), ("0020|000d", series + ".9"),
                           ("0020|0037", "1\\0\\0\\0\\1\\0"), ("0008|0008", "ORIGINAL\\PRIMARY\\AXIAL"),
                           ("0008|0018", f"{series}.{k + 1}"), ("0020|0013", str(k + 1)),
                           ("0020|0032", "\\".join(map(str, image.TransformIndexToPhysicalPoint((0, 0, k))))),
                           ("0028|1052", "0"), ("0028|1053", "1")):
            s.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{k:03d}.dcm"))
        writer.Execute(s)
    return folder


@pytest.fixture(scope="session")
def bad_data(tmp_path_factory) -> Path:
    """Valid and broken inputs, each a real file: CTs, LN masks, anatomy maps, DICOM series, prepared cases."""
    import nibabel
    import SimpleITK as sitk

    from LNSynthLib.prepare import prepare_case

    d = tmp_path_factory.mktemp("bad_inputs")
    geo = Geometry((SPACING_MM,) * 3)
    ct = _body_ct()

    def vol(name: str, arr: np.ndarray, geometry: Geometry = geo) -> None:
        write_volume(Volume(arr, geometry), d / name)

    vol("ct.nii.gz", ct)
    vol("ln.nii.gz", _nodes())
    vol("ln_other_shape.nii.gz", _nodes((30, 32, 32)))
    vol("ln_other_spacing.nii.gz", _nodes(), Geometry((4.0, 5.0, 5.0)))
    vol("ln_other_origin.nii.gz", _nodes(), Geometry((SPACING_MM,) * 3, (40.0, 0.0, 0.0)))
    vol("ln_empty.nii.gz", np.zeros_like(_nodes()))
    air = np.zeros_like(_nodes())
    air[0:2, 0:3, 0:3] = 1
    vol("ln_in_air.nii.gz", air)
    two = _nodes()
    two[18:20, 14:16, 12:15] = 2
    vol("ln_two_labels.nii.gz", two)
    neg = _nodes().astype(np.int16) * -1
    vol("ln_negative.nii.gz", neg)
    frac = _nodes().astype(np.float32) * 0.3
    frac[18:20, 14:16, 12:15] = 0.7
    vol("ln_fractions.nii.gz", frac)
    rod = np.zeros_like(_nodes())
    rod[2:30, 15, 15] = 1            # 140 mm long
    vol("ln_rod.nii.gz", rod)
    speckle = np.zeros_like(_nodes())
    speckle[4:28:2, 5:27:2, 5:27:2] = 1   # 1452 single-voxel "nodes"
    vol("ln_speckle.nii.gz", speckle)
    blocks = np.zeros_like(_nodes())
    for z in range(4, 28, 4):
        for y in range(5, 27, 4):
            blocks[z:z + 2, y:y + 2, 5:27] = 1   # 36 rods of 110 mm: 18% of the body
    vol("ln_bulky.nii.gz", blocks)
    totalseg_like = np.where(ct > -500, (np.arange(ct.size).reshape(ct.shape) % 117) + 1, 0).astype(np.uint8)
    vol("ln_totalseg_map.nii.gz", totalseg_like)
    vol("ln_4d.nii.gz", _nodes())  # replaced below by a real 4D file
    sitk.WriteImage(sitk.JoinSeries([sitk.GetImageFromArray(_nodes())] * 2), str(d / "ln_4d.nii.gz"))

    anatomy = np.where(ct > -500, 1, 0).astype(np.uint8)
    anatomy[8:24, 8:20, 8:20] = 13
    anatomy[4:28, 22:26, 14:18] = 11
    vol("anatomy14.nii.gz", anatomy)
    stray = anatomy.copy()
    stray[20:22, 10:12, 10:12] = 77
    vol("anatomy_stray.nii.gz", stray)
    vol("anatomy_negative.nii.gz", anatomy.astype(np.int16) - 3)
    vol("anatomy_float.nii.gz", anatomy.astype(np.float32) + 0.5)
    vol("anatomy_other_shape.nii.gz", anatomy[:30])

    mr = (ct.astype(np.float32) + 1000.0) * 0.4  # positive values only, like an MR
    vol("mr.nii.gz", mr)
    vol("labelmap_u8.nii.gz", anatomy)
    vol("zeros.nii.gz", np.zeros_like(ct))
    vol("constant.nii.gz", np.full_like(ct, -1000))
    vol("huge.nii.gz", ct.astype(np.float32) * 100.0)
    vol("png_like.nii.gz", ((ct.astype(np.float32) + 1000) / 1700 * 255).clip(0, 255).astype(np.uint8))
    sitk.WriteImage(sitk.GetImageFromArray(ct[16]), str(d / "slice_2d.nii.gz"))
    sitk.WriteImage(sitk.JoinSeries([sitk.GetImageFromArray(ct)] * 2), str(d / "series_4d.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(np.stack([ct] * 3, axis=-1), isVector=True), str(d / "rgb.nrrd"))
    for name, bad in (("nan", np.nan), ("inf", np.inf)):
        arr = ct.astype(np.float32)
        arr[15, 15, 15] = bad
        # RAS affine of ITK's LPS identity grid, so only the voxel values differ from ct.nii.gz
        nibabel.save(nibabel.Nifti1Image(np.transpose(arr, (2, 1, 0)), np.diag([-SPACING_MM, -SPACING_MM,
                                                                                SPACING_MM, 1.0])),
                     str(d / f"ct_{name}.nii.gz"))
    arr = ct.astype(np.float32)
    arr[15, 15, 15] = np.nan
    vol("ct_nan.nrrd", arr)
    whole = (d / "ct.nii.gz").read_bytes()
    (d / "truncated.nii.gz").write_bytes(whole[: len(whole) // 2])
    (d / "text.nii.gz").write_text("patient CT, see PACS\n")
    (d / "empty.nii.gz").write_bytes(b"")
    (d / "no_dicom").mkdir()
    (d / "no_dicom" / "notes.txt").write_text("nothing here")

    dicom_ct = _body_ct((5, 32, 32))
    _write_dicom(d / "dicom_ok", dicom_ct, [0, 1, 2, 3, 4])
    _write_dicom(d / "dicom_1slice", dicom_ct, [2])
    _write_dicom(d / "dicom_gap", dicom_ct, [0, 1, 3, 4])

    for case in ("case_a", "case_b"):
        prepare_case(d / "ct.nii.gz", d / "ln.nii.gz", d / "prepared", case, anatomy_path=d / "anatomy14.nii.gz",
                     settings=PreprocessSettings(margin_mm=20.0, spacing=5.0))
    test = d / "test_same_ids"
    shutil.copytree(d / "prepared" / "case_b", test / "case_b")
    copy = d / "test_same_ct"
    shutil.copytree(d / "prepared" / "case_a", copy / "held_out_1")
    raw = d / "raw"
    for case in ("p1", "p2"):
        (raw / case).mkdir(parents=True)
        shutil.copy(d / "ct.nii.gz", raw / case / "ct.nii.gz")
        shutil.copy(d / "ln.nii.gz", raw / case / "ln.nii.gz")
    (d / "raw_test" / "p9").mkdir(parents=True)
    shutil.copy(d / "ct.nii.gz", d / "raw_test" / "p9" / "ct.nii.gz")
    shutil.copy(d / "ln.nii.gz", d / "raw_test" / "p9" / "ln.nii.gz")
    (d / "predict_in").mkdir()
    shutil.copy(d / "mr.nii.gz", d / "predict_in" / "scan_0000.nii.gz")
    (d / "a_file").write_text("not a folder")
    return d


def _snapshot(*roots: Path) -> dict[str, tuple]:
    """Every path under `roots` with its type, size and modification time (pipes are not opened)."""
    state = {}
    for root in roots:
        for path in [root, *root.rglob("*")]:
            st = path.lstat()
            state[str(path)] = (stat.S_IFMT(st.st_mode), st.st_size if stat.S_ISREG(st.st_mode) else 0,
                                st.st_mtime_ns if stat.S_ISREG(st.st_mode) else 0)
    return state


@pytest.fixture
def refused(bad_data: Path, tmp_path: Path, capsys) -> Callable[..., str]:
    """Run `lnsynth ARGS` in-process ({d}: bad_data, {t}: this test's folder); assert the project's clean refusal.

    Exit code 2, `lnsynth: error:` naming `names` (file or option) and `Fix:`, no traceback, and
    nothing under either folder added, removed or modified. Returns stderr.
    """
    from LNSynthLib.cli.main import main

    def run(args: list[str], names: list[str], why: str) -> str:
        argv = [a.format(d=bad_data, t=tmp_path) for a in args]
        before = _snapshot(bad_data, tmp_path)
        try:
            code = main(argv)
        except SystemExit as exc:   # argparse's own exit (before parse errors became UsageErrors)
            code = exc.code
        err = capsys.readouterr().err
        assert code == 2, f"exit code {code}, stderr:\n{err}"
        assert "lnsynth: error:" in err and "Fix:" in err and "Traceback" not in err, err
        for name in names:
            assert name.format(d=bad_data, t=tmp_path) in err, f"{name!r} not named in:\n{err}"
        without_paths = err.replace(str(bad_data), "<d>").replace(str(tmp_path), "<t>")  # file names are no cause
        assert why.lower() in without_paths.lower(), f"cause {why!r} not in:\n{err}"
        assert _snapshot(bad_data, tmp_path) == before, "files changed on disk"
        return err

    return run
