"""Python packages LNSynth's background jobs need inside Slicer, installed without touching Slicer's own.

Only the job processes (`PythonSlicer -m LNSynthLib ...`) use the heavy stack (torch, MONAI, nnU-Net,
TotalSegmentator, ...); the code that runs in Slicer's process uses only what Slicer bundles. The
stack goes into Slicer's Python with lower bounds (`>=` the versions of the one pin file,
`LNSynthLib/requirements.txt`) and a constraints file that freezes every distribution already
installed there. So a package Slicer bundles (numpy, scipy, SimpleITK, pydicom, ...) and a torch
the PyTorch extension installed are never upgraded, downgraded or reinstalled: a distribution that
is installed, at any version (CUDA builds `2.14.1+cu126` included), counts as present.

torch and torchvision go through the PyTorch extension (`PyTorchUtils`) when torch is missing and
the extension is there, which picks the CUDA build for the GPU. That route is the one exception to
"nothing of Slicer's changes": PyTorchUtils first pip-installs light-the-torch, whose 0.8.1 release
requires `pip<26.1`, so on Slicer 5.12+ (pip 26.1.1) Slicer's pip is replaced by an older one. LNSynth
asks first and says so (`torch_prompt`); where torch is already there, torchvision goes in with pip
under the constraints instead. The rest goes through `slicer.packaging.pip_ensure` (Slicer >= 5.12,
after LNSynth's own question, so declining is not an error) or, on 5.10, `slicer.util.pip_install`.
After an install one `PythonSlicer -c` probe (`job_probe`) checks that the jobs can import what they
need. This module imports nothing heavy, so it is safe to import at module load.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from collections.abc import Callable
from pathlib import Path

REQUIREMENTS_FILE = Path(__file__).resolve().parents[1] / "LNSynthLib" / "requirements.txt"
if not REQUIREMENTS_FILE.exists():  # source tree: LNSynthLib sits next to the module folder
    REQUIREMENTS_FILE = Path(__file__).resolve().parents[2] / "LNSynthLib" / "requirements.txt"
TORCH_PACKAGES = ("torch", "torchvision")
# Never installed: TotalSegmentator's preview renderer `fury` pulls a PyPI `vtk` that would shadow Slicer's
# own VTK (which has no pip metadata, so constraints cannot hold it). The jobs never render previews.
SKIPPED_PACKAGES = ("fury", "vtk")
# Oldest Slicer whose Python (3.12) the library supports; 5.8 ships Python 3.9.
MINIMUM_SLICER = (5, 10)
# light-the-torch 0.8.1 (the newest release) declares `Requires-Dist: pip<26.1,>=22.3`; PyTorchUtils installs
# it unpinned before torch. Slicer ships pip 25.1.1 (5.10.0) and 26.1.1 (5.12.3), SuperBuild/External_python-pip.cmake.
LIGHT_THE_TORCH_PIP_BELOW = (26, 1)
_PIN = re.compile(r"^\s*([A-Za-z0-9_.\-\[\]]+)\s*==\s*([^\s;#]+)")


def canonical(name: str) -> str:
    """Distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path = REQUIREMENTS_FILE) -> dict[str, str]:
    """`{distribution: version}` of every `name==version` line of the pin file."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins[match.group(1).split("[")[0]] = match.group(2)
    return pins


def installed_versions() -> dict[str, str]:
    """`{canonical name: version}` of every distribution in this Python."""
    versions: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            versions.setdefault(canonical(name), dist.version)
    return versions


def release(version: str) -> str:
    """The version without its local label: `2.14.1+cu126` → `2.14.1`."""
    return version.split("+", 1)[0]


def missing(pins: dict[str, str], installed: dict[str, str] | None = None) -> list[str]:
    """`name>=version` for each pinned distribution that is not installed at all.

    One that is installed at any version is left alone: it may be Slicer's own (numpy, scipy,
    SimpleITK) or the PyTorch extension's torch build, and replacing it would change the user's Slicer.
    """
    installed = installed_versions() if installed is None else installed
    return [f"{name}>={version}" for name, version in pins.items() if canonical(name) not in installed]


def older_than_tested(pins: dict[str, str], installed: dict[str, str] | None = None) -> list[str]:
    """`name: installed < tested` for installed distributions older than the pin (shown, never changed)."""
    installed = installed_versions() if installed is None else installed
    out = []
    for name, version in pins.items():
        have = installed.get(canonical(name))
        if have is not None and _as_tuple(release(have)) < _as_tuple(version):
            out.append(f"{name}: {have} < {version}")
    return out


def _as_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("."):
        digits = re.match(r"\d+", piece)
        parts.append(int(digits.group(0)) if digits else 0)
    return tuple(parts)


def constraints_text(installed: dict[str, str] | None = None) -> str:
    """A pip constraints file that holds every installed distribution at its current version."""
    installed = installed_versions() if installed is None else installed
    lines = ["# Every distribution already in Slicer's Python stays exactly as it is."]
    lines += [f"{name}=={version}" for name, version in sorted(installed.items())]
    return "\n".join(lines) + "\n"


def write_constraints(folder: Path, installed: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lnsynth-constraints.txt"
    path.write_text(constraints_text(installed), encoding="utf-8")
    return path


def split_torch(requirements: list[str]) -> tuple[list[str], list[str]]:
    """(torch requirements, the others): torch is installed first and by its own route."""
    torch = [r for r in requirements if re.split(r"[<>=!~]", r, maxsplit=1)[0] in TORCH_PACKAGES]
    return torch, [r for r in requirements if r not in torch]


def slicer_version_problem(major: int, minor: int, python: tuple[int, int] | None = None) -> str | None:
    """Why this Slicer cannot run LNSynth, or None when it can."""
    python = python or sys.version_info[:2]
    if (major, minor) < MINIMUM_SLICER or python < (3, 10):
        return (f"LNSynth needs 3D Slicer {MINIMUM_SLICER[0]}.{MINIMUM_SLICER[1]} or newer (Python 3.10+); "
                f"this is Slicer {major}.{minor} with Python {python[0]}.{python[1]}. Install a current Slicer.")
    return None


def updated_imported(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Distributions whose version changed and whose top-level module is already imported (restart)."""
    changed = []
    for name, version in after.items():
        if before.get(name) not in (None, version) and name.replace("-", "_") in sys.modules:
            changed.append(f"{name}: {before[name]} -> {version}")
    return changed


def _slicer_packaging():
    """`slicer.packaging` (Slicer >= 5.12); a submodule nothing imports at start-up, hence the import."""
    try:
        import slicer.packaging as packaging
    except ImportError:
        return None
    return packaging if hasattr(packaging, "pip_ensure") else None


class InstallDeclined(Exception):
    """The user answered No to an install question: not a failure, nothing was changed."""


def torch_route(requirements: list[str], installed: dict[str, str], have_pytorch_extension: bool) -> str:
    """How the missing torch packages go in: "pytorchutils", "pip", or "none".

    PyTorchUtils always installs torch *and* torchvision through light-the-torch (`installTorch`
    builds `["install", "torch"+req, "torchvision"+req]`), so where torch is already there it
    would replace the user's torch and add light-the-torch (and, on 5.12+, downgrade pip) just to
    add torchvision: pip under the constraints adds torchvision and keeps torch as it is.
    """
    if not requirements:
        return "none"
    if have_pytorch_extension and "torch" not in installed:
        return "pytorchutils"
    return "pip"


def light_the_torch_changes(installed: dict[str, str]) -> list[str]:
    """What PyTorchUtils' light-the-torch step changes in Slicer's Python besides torch and torchvision."""
    if "light-the-torch" in installed:
        return []
    changes = ["adds light-the-torch (the PyTorch extension's installer)"]
    pip = installed.get("pip")
    if pip and _as_tuple(release(pip)) >= LIGHT_THE_TORCH_PIP_BELOW:
        below = ".".join(map(str, LIGHT_THE_TORCH_PIP_BELOW))
        changes.append(f"replaces Slicer's pip {pip} with an older pip (light-the-torch requires pip < {below})")
    return changes


def torch_prompt(requirements: list[str], route: str, installed: dict[str, str]) -> str:
    """The one question before PyTorch is installed; it names everything the install changes."""
    wanted = ", ".join(requirements)
    if route == "pytorchutils":
        changes = "\n".join(f"- {c}" for c in ["adds " + wanted, *light_the_torch_changes(installed)])
        return (f"LNSynth's background jobs need PyTorch ({wanted}). The PyTorch extension installs the build "
                f"that fits your GPU. This changes Slicer's Python:\n{changes}\n\nInstall now? This can take "
                "several minutes, during which Slicer may not respond.")
    kept = f"torch {installed['torch']} and every" if "torch" in installed else "Every"
    return (f"LNSynth's background jobs need {wanted}. It is installed with pip; {kept} package Slicer already "
            "has is kept as it is." + ("" if "torch" in installed else " Installing the PyTorch extension first "
                                       "gets the PyTorch build that fits your GPU.")
            + "\n\nInstall now? This can take several minutes, during which Slicer may not respond.")


def install_torch(requirements: list[str], pins: dict[str, str], confirm: Callable[[str], bool],
                  constraints: Path, installed: dict[str, str] | None = None) -> bool:
    """torch and torchvision: PyTorchUtils where torch is missing and the extension is there, else pip."""
    import slicer

    installed = installed_versions() if installed is None else installed
    try:
        import PyTorchUtils  # the PyTorch extension's module
    except ImportError:
        PyTorchUtils = None
    route = torch_route(requirements, installed, PyTorchUtils is not None)
    if route == "none":
        return True
    if not confirm(torch_prompt(requirements, route, installed)):
        raise InstallDeclined("PyTorch was not installed (declined).")
    if route == "pytorchutils":   # asked above, in LNSynth's words: not a second time
        logic = PyTorchUtils.PyTorchUtilsLogic()
        return logic.installTorch(askConfirmation=False, torchVersionRequirement=f"=={pins['torch']}",
                                  torchvisionVersionRequirement=f"=={pins['torchvision']}") is not None
    slicer.util.pip_install(["-c", str(constraints), *requirements])
    return True


def install_others(requirements: list[str], confirm: Callable[[str], bool], constraints: Path) -> bool:
    """Everything else, held to the constraints; a restart is offered if an imported package changed."""
    import slicer

    if not requirements:
        return True
    if not confirm("LNSynth's background jobs need these Python packages:\n" + "\n".join(requirements)
                   + "\n\nPackages Slicer already has are kept as they are. Install now? Slicer may be "
                   "unresponsive for a few minutes."):
        raise InstallDeclined("The Python packages were not installed (declined).")
    packaging = _slicer_packaging()
    if packaging is not None:  # shows progress, offers the restart; asked above, so no second question
        packaging.pip_ensure(requirements, constraints=str(constraints), skip_packages=list(SKIPPED_PACKAGES),
                             prompt_install=False, requester="LNSynth")
        return not missing(dict(r.split(">=", 1) for r in requirements))
    before = installed_versions()
    for step in install_steps(requirements, constraints):
        slicer.util.pip_install(step() if callable(step) else step)
    changed = updated_imported(before, installed_versions())
    if changed and slicer.util.confirmYesNoDisplay(
            "Restart Slicer to use the new packages?\n" + "\n".join(changed), "LNSynth"):
        slicer.util.restart()
    return True


def install_steps(requirements: list[str], constraints: Path) -> list:
    """pip argument lists for Slicer 5.10 (no `skip_packages` there): packages that depend on a skipped one
    go in with `--no-deps`, then their own dependencies without the skipped ones (read after the install)."""
    direct = [r for r in requirements if _name(r) not in ("totalsegmentator",)]
    held = [r for r in requirements if r not in direct]
    steps: list = [["-c", str(constraints), *direct]] if direct else []
    for requirement in held:
        steps.append(["--no-deps", "-c", str(constraints), requirement])
        steps.append(lambda r=requirement: ["-c", str(constraints), *dependencies_without_skipped(_name(r))])
    return steps


def dependencies_without_skipped(distribution: str) -> list[str]:
    """The requirements of an installed distribution that apply to this Python, minus `SKIPPED_PACKAGES`.

    Environment markers are evaluated (`packaging`, bundled with Slicer 5.10: SuperBuild/
    External_python-pythonqt-requirements.cmake), so `foo==1; python_version<"3.10"` is left out on
    Python 3.12 and extras are never pulled in. The metadata caches are invalidated first, as Slicer's
    `packaging.py` does, because the distribution was installed a moment ago.
    """
    from packaging.requirements import Requirement

    importlib.invalidate_caches()
    out = []
    for line in importlib.metadata.requires(distribution) or []:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if canonical(requirement.name) in SKIPPED_PACKAGES or requirement.url:
            continue
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        out.append(f"{requirement.name}{extras}{requirement.specifier}")
    return out


def _name(requirement: str) -> str:
    return canonical(re.split(r"[<>=!~\[ (]", requirement.strip(), maxsplit=1)[0])


class JobPackagesMissing(RuntimeError):
    """Installed, yet the job Python cannot import what the jobs need (a dependency failed quietly)."""


def check_job_python(probe: Callable[[], list[str]] | None = None) -> None:
    """One `PythonSlicer -c` probe of the jobs' imports; raises naming every missing package."""
    from .job_probe import missing_job_packages, missing_message

    names = (probe or missing_job_packages)()
    if names:
        raise JobPackagesMissing(missing_message(names))


def ensure(confirm: Callable[[str], bool], scratch: Path, pins: dict[str, str] | None = None, *,
           probe: Callable[[], list[str]] | None = None, installers: tuple | None = None,
           check_always: bool = False) -> bool:
    """Install whatever the job processes miss (after `confirm`); True when all is there afterwards.

    `scratch` receives the constraints file. A declined question raises `InstallDeclined` (nothing
    changed, not a failure). After an install (or always, with `check_always`) the job Python is
    probed, and `JobPackagesMissing` names what it still cannot import. Install failures raise with
    pip's message, so the panel can tell the user which requirement to install by hand.
    """
    pins = pins if pins is not None else read_pins()
    todo = missing(pins)
    if todo:
        torch, others = split_torch(todo)
        first, second = installers or (install_torch, install_others)
        if not first(torch, pins, confirm, write_constraints(scratch)):
            return False
        # Written again after torch is in, so pip cannot swap the build PyTorchUtils chose.
        if not second(others, confirm, write_constraints(scratch)):
            return False
    if todo or check_always:
        check_job_python(probe)
    return True
