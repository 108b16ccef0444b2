"""Choose between the compiled (mypyc) scoring core and its Python sources, at import.

``setup.py`` may have compiled some modules of this package into extensions that sit beside
their ``.py`` files, where Python's import system would always prefer them. They are used
only when ``_native.json`` (written by the same build) lists, with its SHA-256, every source
the build compiled or relied on, every one still matches, and ``NETQUALITY_PURE_PYTHON`` is
unset. Otherwise a meta-path finder makes those modules load from their ``.py`` files, with a
warning when that was not asked for: an edited source after an editable install, a failed
build, an extension that does not load. Stale compiled code never runs.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
import warnings
from dataclasses import dataclass
from functools import cache
from importlib.abc import MetaPathFinder
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec
from pathlib import Path
from types import ModuleType

PACKAGE = __name__.rpartition(".")[0]
HERE = Path(__file__).resolve().parent
MANIFEST = "_native.json"
PURE_ENV = "NETQUALITY_PURE_PYTHON"
REBUILD = "rebuild with `pip install -e .` (or `make`) to compile again"


class CompiledCoreWarning(RuntimeWarning):
    """The compiled scoring core cannot be used (stale, failed build); running pure Python."""


@dataclass(frozen=True)
class Choice:
    """Which variant to load, and why (for warnings, ``netquality bench`` and ``make``)."""

    compiled: bool
    reason: str
    warn: bool = False


def pure_requested() -> bool:
    return os.environ.get(PURE_ENV, "") not in ("", "0")


def extension_modules(here: Path = HERE) -> frozenset[str]:
    """Modules of the package that have a compiled extension beside their ``.py`` file."""
    names = set()
    for path in here.iterdir():
        for suffix in EXTENSION_SUFFIXES:
            stem = path.name.removesuffix(suffix)
            if stem != path.name and (here / f"{stem}.py").is_file():
                names.add(stem)
    return frozenset(names)


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "missing"


def choose(here: Path = HERE) -> Choice:
    """Decide from the manifest, the sources and the environment (no import happens here)."""
    if pure_requested():
        return Choice(False, f"{PURE_ENV} is set")
    try:
        manifest = json.loads((here / MANIFEST).read_text())
    except FileNotFoundError:
        if extension_modules(here):
            return Choice(False, f"compiled modules without {MANIFEST}; {REBUILD}", warn=True)
        return Choice(False, "not compiled (installed without a compiled core)")
    except (OSError, ValueError) as exc:
        return Choice(False, f"{MANIFEST} unreadable ({exc}); {REBUILD}", warn=True)
    if "failed" in manifest:
        return Choice(False, f"the build could not compile it ({manifest['failed']})", warn=True)
    try:
        inputs: dict[str, str] = dict(manifest["inputs"])
        compiled = list(manifest["compiled"])
    except (KeyError, TypeError, ValueError) as exc:
        return Choice(False, f"{MANIFEST} malformed ({exc!r}); {REBUILD}", warn=True)
    root = here.parents[1]  # the directory holding the top-level package
    stale = [path for path, digest in inputs.items() if _digest(root / path) != digest]
    if stale:
        return Choice(
            False, f"{', '.join(stale)} changed since the core was compiled; {REBUILD}", warn=True
        )
    present = extension_modules(here)
    missing = sorted(set(compiled) - present)
    if missing:
        return Choice(False, f"compiled modules missing: {missing}; {REBUILD}", warn=True)
    unlisted = sorted(present - set(compiled))
    if unlisted:  # left by an older build: nothing says they match their sources
        return Choice(
            False, f"compiled modules not in {MANIFEST}: {unlisted}; {REBUILD}", warn=True
        )
    return Choice(True, f"compiled with mypyc {manifest.get('mypy', '?')}")


class SourceFinder(MetaPathFinder):
    """Load the named modules of this package from their ``.py`` files, never extensions."""

    def __init__(self, names: frozenset[str], here: Path = HERE) -> None:
        self.names = names
        self.here = here

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != PACKAGE or name not in self.names:
            return None
        return importlib.util.spec_from_file_location(fullname, self.here / f"{name}.py")


def use_sources() -> None:
    """From now on, load every compiled module of this package from its ``.py`` file."""
    names = extension_modules()
    for name in names:  # drop any already imported from an extension
        module = sys.modules.get(f"{PACKAGE}.{name}")
        if module is not None and not str(getattr(module, "__file__", "")).endswith(".py"):
            del sys.modules[f"{PACKAGE}.{name}"]
    if names and not any(isinstance(f, SourceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, SourceFinder(names))


def _select() -> Choice:
    choice = choose()
    if choice.compiled:
        try:
            for name in extension_modules():
                module = importlib.import_module(f"{PACKAGE}.{name}")
                if str(module.__file__).endswith(".py"):
                    raise ImportError(f"{name} loaded from its source")
        except ImportError as exc:  # a broken build, say a shared library gone missing
            choice = Choice(False, f"compiled core does not load ({exc}); {REBUILD}", warn=True)
    if not choice.compiled:
        use_sources()
        if choice.warn:
            warnings.warn(
                f"netquality scoring core runs as pure Python: {choice.reason}",
                CompiledCoreWarning,
                stacklevel=2,
            )
    return choice


CHOICE: Choice = _select()
COMPILED: bool = CHOICE.compiled
"""Whether the scoring core runs compiled (mypyc) rather than from its Python sources."""


@cache
def pure_engine_module() -> ModuleType:
    """A pure-Python copy of ``pipelines.quality.engine``, beside the loaded (maybe compiled) one.

    For the differential tests and the benchmark: every module of this package it needs is
    imported afresh from source under its usual name, then ``sys.modules`` and the package's
    attributes are put back, so the rest of the process keeps the variant it had.
    """
    package = sys.modules[PACKAGE]
    prefix = f"{PACKAGE}."
    keep = {f"{PACKAGE}._native"}
    saved = {k: m for k, m in sys.modules.items() if k.startswith(prefix) and k not in keep}
    saved_attrs = {k: getattr(package, k) for k in vars(package) if f"{prefix}{k}" in saved}
    for key in saved:
        del sys.modules[key]
    finder = SourceFinder(frozenset(p.stem for p in HERE.glob("*.py")))
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module(f"{PACKAGE}.engine")
    finally:
        sys.meta_path.remove(finder)
        for key in [k for k in sys.modules if k.startswith(prefix) and k not in keep]:
            del sys.modules[key]
        sys.modules.update(saved)
        for name, value in list(vars(package).items()):
            if isinstance(value, ModuleType) and f"{prefix}{name}" not in keep:
                if name in saved_attrs:
                    setattr(package, name, saved_attrs[name])
                else:
                    delattr(package, name)
