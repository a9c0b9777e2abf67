"""Read and write volumes (NIfTI, NRRD, MHA, DICOM series) with their geometry, through SimpleITK."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from LNSynthLib.atomic import atomic_path
from LNSynthLib.errors import InputDataError
from LNSynthLib.input_paths import check_input_path
from LNSynthLib.volumes.checks import check_ct, check_ct_physics, non_finite_error
from LNSynthLib.volumes.dicom_checks import check_slice_positions
from LNSynthLib.volumes.geometry import Geometry, Volume
from LNSynthLib.volumes.memory import check_fits_in_memory

# File types a 3D volume is written to (the CLI checks output names against them while parsing).
SUPPORTED_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def geometry_of(image: sitk.Image) -> Geometry:
    return Geometry(image.GetSpacing(), image.GetOrigin(), image.GetDirection())


def to_sitk(volume: Volume) -> sitk.Image:
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.array))
    image.SetSpacing(volume.geometry.spacing)
    image.SetOrigin(volume.geometry.origin)
    image.SetDirection(volume.geometry.direction)
    return image


class _ImageBuffer:
    """A writable numpy array on a SimpleITK image's own pixel buffer, holding the image while it is used.

    `sitk.GetArrayFromImage` copies every volume read or resampled (0.4 s and twice the memory for a
    512x512x300 CT); the array made from this object shares the buffer instead, and its `base` keeps the
    image alive for as long as any array uses it.
    """

    def __init__(self, image: sitk.Image) -> None:
        self._image = image
        view = sitk.GetArrayViewFromImage(image)   # MakeUnique: the buffer is this image's alone
        interface = dict(view.__array_interface__)
        interface["data"] = (interface["data"][0], False)   # writable, as a copied array would be
        self.__array_interface__ = interface


def from_sitk(image: sitk.Image) -> Volume:
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError("expected a 3D single-component image")
    return Volume(np.asarray(_ImageBuffer(image)), geometry_of(image))


def read_image(path: str | Path) -> sitk.Image:
    """Read a 3D scalar image file, or a DICOM series from a folder."""
    path = check_input_path(path)  # missing paths and named pipes fail here instead of hanging a reader
    try:
        if path.is_dir():
            reader = sitk.ImageSeriesReader()
            series = reader.GetGDCMSeriesIDs(str(path))
            if not series:
                raise InputDataError("folder holds no DICOM series", path=path,
                                     fix="point to a folder of .dcm files of one series, or to a NIfTI/NRRD file")
            if len(series) > 1:
                raise _several_series(path, reader, series)
            files = reader.GetGDCMSeriesFileNames(str(path), series[0])
            check_slice_positions(path, files)
            _check_fits(path, files[0], slices=len(files))
            reader.SetFileNames(files)
            image = reader.Execute()
        else:
            _check_fits(path, path)
            image = sitk.ReadImage(str(path))
            _check_nifti_complete(path, image)
            _check_nifti_finite(path, image)
    except RuntimeError as exc:
        raise InputDataError(f"cannot be read as an image ({str(exc).strip().splitlines()[-1]})", path=path,
                             fix="check that the file is a complete NIfTI, NRRD, MHA or DICOM file "
                                 "(re-export or re-download it)") from exc
    if image.GetDimension() != 3:
        raise InputDataError(f"is {image.GetDimension()}D, a 3D volume is needed", path=path,
                             fix="give a 3D CT volume (a 2D slice or a 4D series cannot be used)")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputDataError("has vector/RGB voxels, a scalar volume is needed", path=path,
                             fix="give a grey-value CT or a label map")
    return image


def _check_fits(path: Path, first_file: str | Path, slices: int | None = None) -> None:
    """Refuse an image too large for memory from its header, before ITK allocates it (a DICOM series: its first
    file's slice size times the number of files)."""
    info = sitk.ImageFileReader()
    info.SetFileName(str(first_file))
    info.ReadImageInformation()
    size = list(info.GetSize())
    if slices is not None:
        size = [*size[:2], slices]
    kind = sitk.GetPixelIDValueAsString(info.GetPixelID())
    bits = re.search(r"(\d+)-bit", kind)
    component = (int(bits.group(1)) // 8 if bits else 8) * (2 if kind.startswith("complex") else 1)
    check_fits_in_memory(tuple(size), component * max(1, info.GetNumberOfComponents()), path)


def _several_series(folder: Path, reader: sitk.ImageSeriesReader, series: tuple[str, ...]) -> InputDataError:
    """The refusal of a folder holding several DICOM series: which one is meant is the user's to say."""
    shown = []
    for uid in series[:6]:
        files = reader.GetGDCMSeriesFileNames(str(folder), uid)
        info = sitk.ImageFileReader()
        info.SetFileName(files[0])
        info.ReadImageInformation()
        keys = set(info.GetMetaDataKeys())
        words = [info.GetMetaData(tag).strip() for tag in ("0020|0011", "0008|103e") if tag in keys]
        shown.append(f"{' '.join(w for w in words if w) or uid} ({len(files)} files)")
    more = f" and {len(series) - 6} more" if len(series) > 6 else ""
    return InputDataError(f"holds {len(series)} DICOM series ({'; '.join(shown)}{more}); which one is the CT "
                          "is not guessed", path=folder,
                          fix="put the series to use into a folder of its own (one series per folder) and give "
                              "that folder")


def _check_nifti_complete(path: Path, image: sitk.Image) -> None:
    """Catch truncated NIfTI files, which ITK reads without error (the missing voxels become 0)."""
    name = path.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        return
    import zlib

    from LNSynthLib.volumes.nifti_header import gzip_stored_size, header_cut_off, is_gzip, nifti_data_end

    needed = nifti_data_end(path)
    if needed is None:
        if header_cut_off(path):  # ITK still "reads" such a stub, as zeros
            raise InputDataError("is truncated (it ends inside its header)", path=path,
                                 fix="the file was cut off while copying or downloading: copy or export it again")
        return  # ITK read it; a header we cannot parse is not ours to judge
    if is_gzip(path):   # by content: a plain .nii named .nii.gz is complete when its bytes are
        # Fast path: a complete single-member gzip ends with the uncompressed size (mod 2**32).
        if gzip_stored_size(path) == needed % 2**32:
            return
        stream = zlib.decompressobj(wbits=31)
        size = 0
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 22):
                    size += len(stream.decompress(chunk))
        except zlib.error:
            pass
        complete = stream.eof and size >= needed
    else:
        size = path.stat().st_size
        complete = size >= needed
    if not complete:
        raise InputDataError(f"is truncated ({size} of {needed} bytes of image data)", path=path,
                             fix="the file was cut off while copying or downloading: copy or export it again")


def _check_nifti_finite(path: Path, image: sitk.Image) -> None:
    """ITK's NIfTI reader turns NaN and inf voxels into 0 (plausible HU), so look at the file's own values."""
    name = path.name.lower()
    if not (name.endswith(".nii") or name.endswith(".nii.gz")):
        return
    if image.GetPixelID() not in (sitk.sitkFloat32, sitk.sitkFloat64):
        return
    from LNSynthLib.volumes.nifti_header import nifti_float_values

    data = nifti_float_values(path)
    if data is None:  # ITK read it; a header we cannot parse is not ours to judge
        return
    bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if bad:
        raise non_finite_error(bad, path)


def read_volume(path: str | Path) -> Volume:
    """The volume in a file (or DICOM folder); in a warm worker, a file it wrote itself and that is unchanged
    since comes from `worker_cache` (the same voxels and geometry, without decompressing it again)."""
    from LNSynthLib.volumes.worker_cache import recall

    kept = recall(path)
    return kept if kept is not None else from_sitk(read_image(path))


def read_ct(path: str | Path) -> Volume:
    """Read a CT and run `check_ct` on it: the one way every command that takes a CT reads it."""
    volume = read_volume(path)
    check_ct(volume, path)
    return volume


def read_patient_ct(path: str | Path) -> Volume:
    """`read_ct` plus the radiologist's physics (`check_ct_physics`: HU of air, fat and soft tissue; body size):
    the reader of a patient's CT given by the user (prepare, anatomy, nnunet predict). CTs the project made
    itself (phantoms, synthetic cases) are read with `read_ct`."""
    volume = read_ct(path)
    check_ct_physics(volume, path)
    return volume


def _write_image(image: sitk.Image, path: Path, compress: bool, stored: bool = False) -> None:
    """SimpleITK's writer, except `.nii.gz`: fast gzip on all cores (`fast_gzip`, any gzip reader reads it),
    at the level of `fast_gzip.gzip_level` (a warm worker stores CTs uncompressed), or stored if `stored`."""
    if compress and path.name.lower().endswith(".nii.gz"):
        from LNSynthLib.volumes.fast_gzip import STORED_LEVEL, gzip_level, write_nifti_gz

        write_nifti_gz(image, path, STORED_LEVEL if stored else gzip_level(image))
    else:
        sitk.WriteImage(image, str(path), compress)


def write_volumes(items: list[tuple[Volume, str | Path]], overwrite: bool = False) -> list[Path]:
    """Write several compressed volumes at once, all or none: each goes to a temporary file, the writes
    run in 2 threads (the gzip of `fast_gzip` and SimpleITK release the GIL), and the files are renamed into
    place only when every one of them was written and verified. An error names the first failed file."""
    import contextlib
    from concurrent.futures import ThreadPoolExecutor

    from LNSynthLib.volumes.write_check import verify_written

    paths = [Path(p) for _, p in items]
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(atomic_path(p, overwrite)) for p in paths]

        def write(i: int) -> None:
            image = to_sitk(items[i][0])   # made here, so only the images being written exist (peak memory)
            _write_image(image, tmps[i], True)
            verify_written(tmps[i], image, paths[i])   # the writer can fail without raising (disk full)

        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(write, range(len(items))))       # raises the first failure in `items` order
    _keep(items)
    return paths


def _keep(items: list[tuple[Volume, str | Path]]) -> None:
    """A warm worker keeps what it wrote for its next step (`worker_cache`); elsewhere nothing is kept."""
    from LNSynthLib.volumes import worker_cache

    if worker_cache.active():
        for volume, path in items:
            worker_cache.keep(path, volume)


def write_volume(volume: Volume, path: str | Path, overwrite: bool = False, compress: bool = True, *,
                 stored: bool = False) -> Path:
    """Write atomically; refuse to replace an existing file unless `overwrite`.

    `stored`: a `.nii.gz` holds the voxels undeflated (gzip level 0, any reader reads it), for a job's input
    read once moments later: a CT is written and read in a tenth of the time, at its raw size on disk.
    """
    path = Path(path)
    if not path.name.lower().endswith(SUPPORTED_SUFFIXES):
        raise InputDataError("is not a 3D volume file type", path=path,
                             fix="name it .nii.gz, .nii, .nrrd, .nhdr, .mha or .mhd")
    from LNSynthLib.volumes.write_check import verify_written

    image = to_sitk(volume)
    with atomic_path(path, overwrite) as tmp:
        _write_image(image, tmp, compress, stored)
        verify_written(tmp, image, path)   # the writer can fail without raising (disk full)
    _keep([(volume, path)])
    return path
