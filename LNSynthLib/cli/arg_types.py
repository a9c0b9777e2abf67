"""argparse `type=` callables: values are checked while parsing, before any work starts.

Each raises `argparse.ArgumentTypeError` whose text is a `UsageError` (problem, then `Fix: ...`);
argparse prefixes the option name and `LNSynthArgumentParser.error` turns it into the project's
`lnsynth: error: ... Fix: ...` with exit code 2 instead of argparse's own usage exit.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from LNSynthLib.atomic import TEMP_NAME_EXTRA  # what `atomic.atomic_path`'s temporary name adds
from LNSynthLib.errors import LNSynthError, UsageError

DEFAULT_NAME_MAX = 255
VOLUME_SUFFIX_HELP = ".nii.gz, .nii, .nrrd, .nhdr, .mha or .mhd"


class LNSynthArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are the project's `UsageError` (printed by `cli.main`)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        problem, _, fix = message.partition("\nFix: ")
        raise UsageError(problem, fix=fix or f"see `{self.prog} --help`")


def _refuse(problem: str, fix: str, path: str | Path | None = None) -> NoReturn:
    raise argparse.ArgumentTypeError(str(UsageError(problem, path=path, fix=fix)))


def _number(text: str, kind: type, fix: str) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        _refuse(f"{text!r} is not {'a whole number' if kind is int else 'a number'}", fix)
    if isinstance(value, float) and not math.isfinite(value):
        _refuse(f"{text!r} is not a finite number", fix)
    return value


def _at_least(kind: type, minimum: float, strict: bool, what: str, fix: str) -> Callable[[str], float | int]:
    """An argparse type: a finite `kind` above `minimum` (strictly when `strict`)."""

    def check(text: str) -> float | int:
        value = _number(text, kind, fix)
        if value < minimum or (strict and value == minimum):
            _refuse(f"{text} {what}", fix)
        return kind(value)

    return check


positive_float = _at_least(float, 0, True, "must be greater than 0", "give a finite number greater than 0, e.g. 1.0")
positive_float.__doc__ = "A finite number > 0 (margins in mm, spacings in mm)."
non_negative_float = _at_least(float, 0, False, "must not be negative", "give a finite number of at least 0")
non_negative_float.__doc__ = "A finite number >= 0 (e.g. a blending width, where 0 switches blending off)."
positive_int = _at_least(int, 1, False, "must be at least 1", "give a whole number of at least 1")
positive_int.__doc__ = "A whole number >= 1 (counts, steps, epochs, sizes)."
non_negative_int = _at_least(int, 0, False, "must not be negative", "give a whole number of at least 0")
non_negative_int.__doc__ = "A whole number >= 0 (where 0 has a documented meaning, e.g. `keep the planned patch`)."


def real_share(text: str) -> float:
    """A share of nnU-Net's drawn cases strictly between 0 and 1 (trainer names carry it in whole percent)."""
    value = positive_float(text)
    if value >= 1:
        _refuse(f"{text} is not below 1", "give a share between 0 and 1, e.g. 0.5")
    return float(value)


SEED_MAX = 2**31 - 1   # every generator takes it (numpy's legacy seed stops at 2**32 - 1; phantom case i uses seed + i)


def seed(text: str) -> int:
    """A random seed: a whole number from 0 to `SEED_MAX` (numpy and torch refuse negative seeds)."""
    value = int(_number(text, int, f"give a whole number from 0 to {SEED_MAX}"))
    if not 0 <= value <= SEED_MAX:
        _refuse(f"{text} is not a seed (a seed is a whole number from 0 to {SEED_MAX})",
                f"give a whole number from 0 to {SEED_MAX}, e.g. 0")
    return value


def dataset_id(text: str) -> int:
    """An nnU-Net dataset id: 1 to 999 (its folders are named Dataset%03d_NAME)."""
    value = int(_number(text, int, "give a whole number from 1 to 999, e.g. 501"))
    if not 1 <= value <= 999:
        _refuse(f"{text} is not an nnU-Net dataset id (1 to 999)", "give a whole number from 1 to 999, e.g. 501")
    return value


def plain_name(text: str) -> str:
    """A name that becomes one folder name (`names.is_plain_name`): no separators, no `..`, not hidden."""
    from LNSynthLib.names import PLAIN_NAME_RULE, is_plain_name

    if not is_plain_name(text):
        _refuse(f"{text!r} is not a plain folder name", f"use {PLAIN_NAME_RULE}")
    return text


def fold(text: str) -> int | str:
    """An nnU-Net fold: a number (0-4 with nnU-Net's 5-fold split) or `all`."""
    if text == "all":
        return text
    if not text.isdigit():
        _refuse(f"{text!r} is not a fold", "give a fold number (0-4) or `all`")
    return int(text)


def input_path(text: str) -> str:
    """An existing regular file or folder (a DICOM series is a folder); pipes and devices are refused."""
    from LNSynthLib.input_paths import check_input_path

    try:
        check_input_path(text)
    except LNSynthError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _name_max(folder: Path) -> int:
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return DEFAULT_NAME_MAX


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # e.g. a name longer than the file system allows: reported by the caller
        return False


def _existing_ancestor(path: Path) -> Path:
    for parent in (path, *path.parents):
        if _exists(parent):
            return parent
    return Path(".")


def _check_folder_usable(folder: Path, shown: str) -> None:
    """`folder` (which may not exist yet) can be created and written into."""
    ancestor = _existing_ancestor(folder.absolute())
    if not ancestor.is_dir():
        _refuse(f"{ancestor} is a file, so no folder can be made inside it", "choose an output path inside a folder",
                path=shown)
    limit = _name_max(ancestor)
    long = [part for part in folder.parts if len(part.encode()) > limit]
    if long:
        _refuse(f"name {long[0][:40]}... is longer than {limit} bytes", "choose a shorter name", path=shown)
    if not os.access(ancestor, os.W_OK | os.X_OK) or not _can_create_in(ancestor):
        _refuse(f"cannot write into {ancestor}", "choose a folder you can write to (check its permissions)",
                path=shown)


def _can_create_in(folder: Path) -> bool:
    """Try it: `os.access` says yes for root even on read-only file systems or /proc."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def output_dir(text: str) -> str:
    """A folder to write into: absent (it will be made) or a folder, never a file, and writable."""
    path = Path(text)
    if _exists(path) and not path.is_dir():
        _refuse("is a file, an output folder is needed", "give a folder (new or existing) for the output", path=text)
    _check_folder_usable(path, text)
    return text


def _output_file(text: str, suffixes: tuple[str, ...], what: str) -> Path:
    path = Path(text)
    if _exists(path) and path.is_dir():
        _refuse(f"is a folder, {what} file name is needed", f"give a file name ending in {suffixes[0]}", path=text)
    _check_folder_usable(path.parent, text)
    limit = _name_max(_existing_ancestor(path.parent.absolute()))
    suffix = "".join(path.suffixes)
    if len(path.name.encode()) + TEMP_NAME_EXTRA + len(suffix.encode()) > limit:
        _refuse(f"file name is too long ({len(path.name.encode())} bytes; with the temporary name used while "
                f"writing it must stay within {limit})", "choose a shorter file name", path=text)
    return path


def output_volume(text: str) -> str:
    """An output 3D volume file whose extension a volume writer supports (`x.png` holds only 2D)."""
    from LNSynthLib.volumes.io import SUPPORTED_SUFFIXES

    if _exists(Path(text)) and Path(text).is_dir():
        _refuse("is a folder, a volume file name is needed", f"give a file name ending in {VOLUME_SUFFIX_HELP}",
                path=text)
    if not text.lower().endswith(SUPPORTED_SUFFIXES):
        _refuse(f"extension {''.join(Path(text).suffixes) or '(none)'} cannot hold a 3D volume",
                f"end the file name in {VOLUME_SUFFIX_HELP}", path=text)
    _output_file(text, SUPPORTED_SUFFIXES, "a volume")
    return text


def output_png(text: str) -> str:
    """An output figure file (PNG)."""
    if not text.lower().endswith(".png"):
        _refuse(f"extension {''.join(Path(text).suffixes) or '(none)'} is not .png", "end the file name in .png",
                path=text)
    _output_file(text, (".png",), "a .png")
    return text


def check_value(check: Callable[[str], str], option: str, text: str) -> str:
    """Run one of these checks after parsing (when the right check depends on another option)."""
    try:
        return check(text)
    except argparse.ArgumentTypeError as exc:
        problem, _, fix = str(exc).partition("\nFix: ")
        raise UsageError(f"argument {option}: {problem}", fix=fix or None) from None


def _same_path(a: str, b: str) -> bool:
    """Whether two paths name the same file or folder (symlinks and hard links included)."""
    try:
        if Path(a).resolve() == Path(b).resolve():
            return True
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except (OSError, RuntimeError):
        return False


def check_outputs_apart(args: argparse.Namespace) -> None:
    """An output never equals an input: `--out` that is also the `--ct` would replace the input CT.

    A command declares its pairs with `set_defaults(outputs_apart={"out": ("ct", "labels")})`
    (argparse dests); `cli.main` runs this after parsing, for every command.
    """
    for out_key, in_keys in getattr(args, "outputs_apart", {}).items():
        out = getattr(args, out_key, None)
        for key in in_keys:
            given = getattr(args, key, None)
            for value in given if isinstance(given, list) else [given]:
                if out and value and _same_path(str(out), str(value)):
                    out_opt, in_opt = (f"--{k.replace('_', '-')}" for k in (out_key, key))
                    raise UsageError(f"argument {out_opt}: {out} is also the input {in_opt}; writing it would "
                                     "replace the input",
                                     fix=f"give {out_opt} a new path, not one of the inputs")
