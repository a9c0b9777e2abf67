"""Python packages LNSynth needs inside Slicer: checked on first use, installed only after asking.

Pins come from `LNSynthLib/requirements.txt` (the project's one pin file, installed next to the
module). torch goes through the PyTorch extension's `PyTorchUtils` when it is present (it picks
the CUDA build that fits the GPU), else the pinned wheel; the rest through
`slicer.packaging.pip_ensure` (Slicer ≥ 5.12) or `slicer.util.pip_install`. This module never
imports the heavy packages itself, so it is safe to import at module load.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Callable
from pathlib import Path

REQUIREMENTS_FILE = Path(__file__).resolve().parents[1] / "LNSynthLib" / "requirements.txt"
if not REQUIREMENTS_FILE.exists():  # source tree: LNSynthLib sits next to the module folder
    REQUIREMENTS_FILE = Path(__file__).resolve().parents[2] / "LNSynthLib" / "requirements.txt"
TORCH_PACKAGES = ("torch", "torchvision")
_PIN = re.compile(r"^\s*([A-Za-z0-9_.\-\[\]]+)\s*==\s*([^\s;#]+)")


def read_pins(path: Path = REQUIREMENTS_FILE) -> dict[str, str]:
    """`{distribution: version}` of every `name==version` line of the pin file."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins[match.group(1).split("[")[0]] = match.group(2)
    return pins


def missing(pins: dict[str, str]) -> list[str]:
    """Requirement strings (`name==version`) not installed at exactly the pinned version."""
    out = []
    for name, version in pins.items():
        try:
            if importlib.metadata.version(name) == version:
                continue
        except importlib.metadata.PackageNotFoundError:
            pass
        out.append(f"{name}=={version}")
    return out


def split_torch(requirements: list[str]) -> tuple[list[str], list[str]]:
    """(torch requirements, the others): torch is installed first and by its own route."""
    torch = [r for r in requirements if r.split("==")[0] in TORCH_PACKAGES]
    return torch, [r for r in requirements if r not in torch]


def install_torch(requirements: list[str], confirm: Callable[[str], bool]) -> bool:
    """torch through PyTorchUtils when the extension is installed, else the pinned wheels."""
    import slicer

    if not requirements:
        return True
    torch_pin = next((r for r in requirements if r.startswith("torch==")), None)
    try:
        import PyTorchUtils  # the PyTorch extension's module
    except ImportError:
        PyTorchUtils = None
    if PyTorchUtils is not None and torch_pin:
        logic = PyTorchUtils.PyTorchUtilsLogic()
        if logic.torchInstalled():
            return True
        return logic.installTorch(askConfirmation=True, torchVersionRequirement=torch_pin[len("torch"):]) is not None
    if not confirm("LNSynth needs PyTorch (" + ", ".join(requirements) + "). Install it now? This can take several "
                   "minutes; install the PyTorch extension first to get the build that fits your GPU."):
        return False
    slicer.util.pip_install(requirements)
    return True


def install_others(requirements: list[str], confirm: Callable[[str], bool]) -> bool:
    """Everything else: pip_ensure asks and shows progress itself; older Slicer: ask, then pip_install."""
    import slicer

    if not requirements:
        return True
    packaging = getattr(slicer, "packaging", None)
    if packaging is not None and hasattr(packaging, "pip_ensure"):
        packaging.pip_ensure(requirements, requester="LNSynth")
        return not missing(dict(r.split("==", 1) for r in requirements))
    if not confirm("LNSynth needs these Python packages:\n" + "\n".join(requirements) + "\n\nInstall them now? "
                   "Slicer may be unresponsive for a few minutes."):
        return False
    slicer.util.pip_install(requirements)
    return True


def ensure(confirm: Callable[[str], bool], pins: dict[str, str] | None = None) -> bool:
    """Install whatever is missing (after `confirm`); True when everything is there afterwards.

    Failures raise with the requirement that failed, so the panel can tell the user to run
    `PythonSlicer -m pip install <requirement>` by hand.
    """
    pins = pins if pins is not None else read_pins()
    todo = missing(pins)
    if not todo:
        return True
    torch, others = split_torch(todo)
    return install_torch(torch, confirm) and install_others(others, confirm)
