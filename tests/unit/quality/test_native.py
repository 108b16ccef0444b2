"""The compiled scoring core runs only while it matches its sources; a failed build installs
as pure Python and says why (see setup.py and pipelines/quality/_native.py).

The end-to-end cases copy the installed package (sources, extensions, manifest) to a temp
dir, edit or break the copy, and import it in a child interpreter.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import types
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest
from setuptools import Distribution, Extension

from pipelines.quality import COMPILED, _native

ROOT = Path(__file__).resolve().parents[3]
PIPELINES = Path(_native.__file__).resolve().parents[1]

PROBE = """
import json, pipelines.quality as q
from pipelines.quality import participant, window
print(json.dumps({"compiled": q.COMPILED, "reason": q._native.CHOICE.reason,
                  "window": window.__file__, "participant": participant.__file__,
                  "edited": getattr(window, "EDITED", None)}))
"""

needs_build = pytest.mark.skipif(
    not COMPILED, reason=f"needs the compiled core: {_native.CHOICE.reason}"
)


def probe(root: Path, **env: str) -> tuple[dict, str]:
    """Import the package copy under ``root`` in a fresh interpreter: (what it chose, stderr)."""
    environ = {k: v for k, v in os.environ.items() if k != _native.PURE_ENV}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=root,
        env={**environ, "PYTHONPATH": str(root), **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result = json.loads(done.stdout)
    assert result["window"].startswith(str(root)), "the probe imported the wrong package"
    return result, done.stderr


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copytree(PIPELINES, tmp_path / "pipelines", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


@needs_build
def test_an_unchanged_copy_runs_compiled(copy: Path):
    result, stderr = probe(copy)
    assert result["compiled"], result["reason"]
    assert not result["participant"].endswith(".py")
    assert "CompiledCoreWarning" not in stderr


@needs_build
def test_an_edited_source_runs_from_source_with_a_warning(copy: Path):
    window = copy / "pipelines" / "quality" / "window.py"
    window.write_text(window.read_text() + "\nEDITED = 1\n")
    result, stderr = probe(copy)
    assert not result["compiled"]
    assert result["edited"] == 1  # the edit is what runs, not the stale extension
    assert result["window"].endswith("window.py")
    assert result["participant"].endswith("participant.py")  # the whole group falls back
    assert "CompiledCoreWarning" in stderr
    assert "pipelines/quality/window.py changed" in stderr


@needs_build
def test_an_edited_contract_the_core_was_typed_against_falls_back_too(copy: Path):
    stats = copy / "pipelines" / "contracts" / "stats.py"
    stats.write_text(stats.read_text() + "\n# edited\n")
    result, stderr = probe(copy)
    assert not result["compiled"]
    assert "pipelines/contracts/stats.py changed" in stderr


@needs_build
def test_a_broken_extension_falls_back_with_a_warning(copy: Path):
    quality = copy / "pipelines" / "quality"
    # The group library holds the code of every compiled module (each module's own .so is a
    # shim that a sibling may bypass when it loads the group first).
    next(quality.glob("_native__mypyc.*.so")).write_bytes(b"not an ELF file")
    result, stderr = probe(copy)
    assert not result["compiled"]
    assert result["participant"].endswith("participant.py")
    assert "does not load" in stderr


@needs_build
def test_extensions_without_a_manifest_are_not_used(copy: Path):
    (copy / "pipelines" / "quality" / _native.MANIFEST).unlink()
    result, stderr = probe(copy)
    assert not result["compiled"]
    assert result["window"].endswith("window.py")
    assert "without _native.json" in stderr


@needs_build
def test_an_extension_the_manifest_does_not_list_is_not_trusted(copy: Path):
    """Say an older build compiled window.py and the last one did not: its .so is stale."""
    path = copy / "pipelines" / "quality" / _native.MANIFEST
    manifest = json.loads(path.read_text())
    manifest["compiled"].remove("window")
    del manifest["inputs"]["pipelines/quality/window.py"]
    path.write_text(json.dumps(manifest))
    result, stderr = probe(copy)
    assert not result["compiled"]
    assert result["window"].endswith("window.py")
    assert "not in _native.json: ['window']" in stderr


@needs_build
def test_the_environment_forces_pure_python_quietly(copy: Path):
    result, stderr = probe(copy, **{_native.PURE_ENV: "1"})
    assert not result["compiled"]
    assert result["participant"].endswith("participant.py")
    assert "CompiledCoreWarning" not in stderr


def test_the_core_in_use_is_the_one_the_install_built():
    """Never silently pure: when the install compiled the core and nothing vetoes it, the
    compiled modules are what runs; otherwise the reason says why (and CI must compile)."""
    manifest_path = _native.HERE / _native.MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    built = bool(manifest.get("compiled")) and not manifest.get("failed")
    if _native.pure_requested():
        assert not COMPILED and _native.PURE_ENV in _native.CHOICE.reason
    elif built:
        # A source edited since the build falls back with a warning (run `make native`); a
        # fresh CI checkout cannot be stale, so there it must run compiled.
        stale = _native.CHOICE.warn and not os.environ.get("CI")
        assert COMPILED or stale, _native.CHOICE.reason
    else:
        assert not COMPILED and _native.CHOICE.reason
        assert not os.environ.get("CI"), f"CI must test the compiled core: {_native.CHOICE.reason}"


# The build hook, without building the whole package.


@pytest.fixture
def setup_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """setup.py imported as a module (it builds only when run as __main__), rooted at tmp."""
    spec = importlib.util.spec_from_file_location("netquality_setup", ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "PURE", False)
    monkeypatch.chdir(tmp_path)
    quality = tmp_path / "pipelines" / "quality"
    quality.mkdir(parents=True)
    (quality / "__init__.py").write_text("")
    # What an earlier compiled build left: it must not survive a failed one.
    (quality / "window.py").write_text("X = 1\n")
    (quality / f"window{EXTENSION_SUFFIXES[0]}").write_bytes(b"stale")
    (quality / _native.MANIFEST).write_text(json.dumps({"compiled": ["window"], "inputs": {}}))
    return module


def build_ext(module: types.ModuleType) -> object:
    command = module.build_mypyc(Distribution({"name": "x", "packages": ["pipelines"]}))
    command.inplace = True
    command.ensure_finalized()
    command.run()
    return command


def test_a_mypy_failure_installs_pure_python_and_says_why(
    setup_module: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def mypycify(*args: object, **kwargs: object) -> list[Extension]:
        raise SystemExit(2)  # what mypy does on a type error

    fake = types.ModuleType("mypyc.build")
    fake.mypycify = mypycify  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mypyc.build", fake)
    command = build_ext(setup_module)
    manifest = json.loads((tmp_path / "pipelines/quality" / _native.MANIFEST).read_text())
    assert manifest["failed"].startswith("mypyc failed")
    choice = _native.choose(tmp_path / "pipelines" / "quality")
    assert not choice.compiled
    assert choice.warn
    assert "could not compile" in choice.reason
    assert command.extensions == []  # type: ignore[attr-defined]


def test_a_c_compile_error_installs_pure_python_and_says_why(
    setup_module: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    broken = tmp_path / "broken.c"
    broken.write_text("this is not C;\n")
    monkeypatch.setattr(
        setup_module.build_mypyc,
        "_mypyc_extensions",
        lambda self: [Extension("pipelines.quality.broken", [str(broken)])],
    )
    build_ext(setup_module)
    manifest = json.loads((tmp_path / "pipelines/quality" / _native.MANIFEST).read_text())
    assert manifest["failed"].startswith("compiling failed")
    quality = tmp_path / "pipelines" / "quality"
    assert not list(quality.glob("broken*"))
    assert not _native.extension_modules(quality)  # the earlier build's window.*.so is gone
    assert _native.choose(quality).warn


def test_a_pure_build_leaves_no_manifest_and_no_warning(
    setup_module: types.ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(setup_module, "PURE", True)
    build_ext(setup_module)
    quality = tmp_path / "pipelines" / "quality"
    assert not (quality / _native.MANIFEST).exists()
    assert not _native.extension_modules(quality)
    choice = _native.choose(quality)
    assert (choice.compiled, choice.warn) == (False, False)


def test_the_source_finder_loads_py_files_of_this_package_only():
    finder = _native.SourceFinder(frozenset({"window"}))
    spec = finder.find_spec(f"{_native.PACKAGE}.window")
    assert spec is not None
    assert str(spec.origin).endswith("window.py")
    assert finder.find_spec(f"{_native.PACKAGE}.state") is None
    assert finder.find_spec("json") is None
