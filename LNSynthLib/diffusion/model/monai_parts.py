"""MONAI's network blocks without MONAI's package-wide import.

Any `from monai.x import y` first runs `monai/__init__.py`, which imports every MONAI submodule
(transforms, data, apps, metrics, bundle...): seconds of every sampling job, which needs a few
modules of network blocks. `import_light(*modules)` imports just those modules and what they
import themselves: while it runs, each MONAI package is a stand-in that resolves its names on
demand (from its `__init__`'s `from .sub import name` lines) instead of importing them all. The
stand-ins are removed afterwards, so a later `import monai` is the ordinary, full one, and it
finds the same classes (their modules stay in `sys.modules`).
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.metadata
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = "monai"
# Imported by MONAI's layer factories when a layer is built (the transformer's GEGLU, Swish...): loaded
# with the blocks, or building a model after `import_light` would start the package-wide import.
BUILD_TIME = ("monai.networks.blocks.activation",)


def import_light(*modules: str) -> list[ModuleType]:
    """The named `monai.…` modules, imported without the rest of MONAI (ordinary import if it is loaded)."""
    if ROOT in sys.modules:   # a full MONAI is already here: nothing left to save
        return [importlib.import_module(name) for name in modules]
    spec = importlib.util.find_spec(ROOT)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"No module named {ROOT!r}", name=ROOT)
    stand_ins = _stand_ins(Path(list(spec.submodule_search_locations)[0]))
    sys.modules.update(stand_ins)
    try:
        for name in BUILD_TIME:
            importlib.import_module(name)
        return [importlib.import_module(name) for name in modules]
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


def _stand_ins(root: Path) -> dict[str, ModuleType]:
    """One lazy package per MONAI package folder, keyed by its dotted name."""
    packages: dict[str, ModuleType] = {}
    for init in sorted(root.rglob("__init__.py")):
        parts = init.parent.relative_to(root.parent).parts
        if not all(part.isidentifier() for part in parts):
            continue
        packages[".".join(parts)] = _lazy_package(".".join(parts), init)
    top = packages[ROOT]
    top.__version__ = importlib.metadata.version(ROOT)   # read by MONAI's deprecation helpers at import
    top.__basedir__ = str(root)
    return packages


def _lazy_package(name: str, init: Path) -> ModuleType:
    """A package `name` whose attributes are imported when first asked for, not when it is imported."""
    module = ModuleType(name)
    spec = importlib.machinery.ModuleSpec(name, None, origin=str(init), is_package=True)
    spec.submodule_search_locations = [str(init.parent)]
    module.__spec__, module.__path__, module.__package__, module.__file__ = spec, [str(init.parent)], name, str(init)
    table: dict[str, tuple[str, str | None]] = {}

    def __getattr__(attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if not table:
            table.update(_exports(name, init))
        source, original = table.get(attr, (f"{name}.{attr}", None))
        try:
            target = importlib.import_module(source)
        except ModuleNotFoundError as exc:
            if exc.name != source:
                raise
            raise AttributeError(f"module {name!r} has no attribute {attr!r}") from exc
        return target if original is None else getattr(target, original)

    module.__getattr__ = __getattr__   # type: ignore[method-assign]
    return module


def _exports(package: str, init: Path) -> dict[str, tuple[str, str | None]]:
    """Name → (module, name in it) for each `from … import …` of a package `__init__` (None: the module)."""
    table: dict[str, tuple[str, str | None]] = {"": ("", None)}   # never empty: parsed once
    tree = ast.parse(init.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level \
            else node.module or ""
        for alias in node.names:
            if alias.name == "*":
                continue
            exported = alias.asname or alias.name
            table[exported] = (f"{base}.{alias.name}", None) if node.module is None else (base, alias.name)
    return table
