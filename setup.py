"""Build hook: compile the scoring core (``pipelines/quality``) with mypyc when possible.

``pip install [-e] .`` compiles the hot-path modules listed in ``COMPILED`` into C extensions
beside their sources, plus ``pipelines/quality/_native.json``: the SHA-256 of every source the
compiled code was built from (the modules themselves and the modules whose types it relies
on). ``pipelines.quality._native`` imports the extensions only while every one of those
sources still matches (else it warns and runs the ``.py`` files), so an edit after an editable
install is never silently ignored.

Compiling is best effort and never breaks the install: with ``NETQUALITY_PURE_PYTHON=1`` at
build time nothing is compiled; on a mypy error, a missing C compiler or any compile error,
the install succeeds as pure Python and the manifest records why, which the package repeats
as a warning at import (``make`` prints it after installing).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

PACKAGE = "pipelines.quality"
COMPILED = ("feed", "participant", "window", "scoring", "thresholds", "partitioner")
"""Modules compiled together (one mypyc group); ``state`` (msgspec Structs) and ``engine``
(``Engine`` must stay an open Python class) are not."""
TYPE_INPUTS = ("pipelines/quality/state.py", "pipelines/contracts/stats.py",
               "pipelines/contracts/level.py", "pipelines/contracts/types.py")  # fmt: skip
"""Uncompiled sources whose types the compiled code was built against: editing one of them
also sends the package back to pure Python until the next build."""
MANIFEST = "_native.json"
MYPY = ("mypy>=2.4,<3", "msgspec>=0.18,<0.23")
"""Build requirements of the compile step: mypy needs msgspec to see the Struct types."""
PURE = os.environ.get("NETQUALITY_PURE_PYTHON", "") not in ("", "0")
ROOT = Path(__file__).resolve().parent


def _say(message: str) -> None:
    print(f"netquality build: {message}", file=sys.stderr)


def _brief(exc: BaseException) -> str:
    """The gist of a build error for one warning line (compiler commands are long)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= 200 else text[:197] + "..."


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compiled_sources() -> list[str]:
    return [f"{PACKAGE.replace('.', '/')}/{name}.py" for name in COMPILED]


class build_mypyc(build_ext):  # noqa: N801 (setuptools command naming)
    """Replace the placeholder extension by mypyc's; on any failure build nothing."""

    failure: str | None = None
    """Why compiling failed (written to the manifest), None when it did not fail."""

    def finalize_options(self) -> None:
        extensions = self._mypyc_extensions()
        if extensions:
            self.distribution.ext_modules = extensions
        super().finalize_options()
        if not extensions:
            # The placeholder stays on the distribution so that this command still runs: a
            # pure or failed build must clean up after an earlier compiled one.
            self.extensions = []

    def _mypyc_extensions(self) -> list[Extension]:
        if PURE:
            _say("NETQUALITY_PURE_PYTHON is set: pure-Python scoring core")
            return []
        cwd = os.getcwd()
        os.chdir(ROOT)  # mypyc writes C sources and its cache relative to the cwd
        try:
            from mypyc.build import mypycify  # noqa: PLC0415 (a build requirement, maybe absent)

            return mypycify(
                # Type errors count only in the compiled modules, not in what they import.
                [
                    "--follow-imports=silent",
                    "--cache-dir=build/mypyc/cache",
                    *compiled_sources(),
                ],
                opt_level="3",
                group_name=f"{PACKAGE}._native",
                target_dir="build/mypyc",
            )
        except (Exception, SystemExit) as exc:  # mypy exits on type errors
            self.failure = f"mypyc failed: {_brief(exc)}"
            _say(f"{self.failure}; the scoring core stays pure Python")
            return []
        finally:
            os.chdir(cwd)

    def _in_source(self) -> bool:
        """Whether the extensions go beside the sources (editable install, ``--inplace``)."""
        return bool(self.inplace or getattr(self, "editable_mode", False))

    def _manifest_path(self) -> Path:
        base = ROOT if self._in_source() else Path(self.build_lib)
        return base / PACKAGE.replace(".", "/") / MANIFEST

    def _remove_earlier_build(self) -> None:
        """A pure or failed build must not leave an earlier compiled one to be used."""
        self._manifest_path().unlink(missing_ok=True)
        if self._in_source():
            package = ROOT / PACKAGE.replace(".", "/")
            for name in (*COMPILED, "_native__mypyc"):
                for suffix in EXTENSION_SUFFIXES:
                    (package / f"{name}{suffix}").unlink(missing_ok=True)

    def run(self) -> None:
        manifest = self._manifest_path()
        manifest.unlink(missing_ok=True)
        if self.extensions:
            inplace = self.inplace  # setuptools clears it while building, even on errors
            try:
                super().run()
            except (Exception, SystemExit) as exc:  # no C compiler, compile or link errors
                self.inplace = inplace
                self.failure = f"compiling failed: {_brief(exc)}"
                _say(f"{self.failure}; the scoring core stays pure Python")
                self.extensions = []
        if self.extensions:
            self._write(manifest, self._success())
            _say(f"compiled {', '.join(COMPILED)} with mypyc")
            return
        self._remove_earlier_build()
        if self.failure is not None:
            self._write(manifest, {"failed": self.failure})

    @staticmethod
    def _success() -> dict[str, object]:
        import mypy.version  # noqa: PLC0415

        inputs = [*compiled_sources(), *TYPE_INPUTS]
        return {
            "mypy": mypy.version.__version__,
            "python": sys.version.split()[0],
            "compiled": list(COMPILED),
            "inputs": {path: source_digest(ROOT / path) for path in inputs},
        }

    @staticmethod
    def _write(path: Path, manifest: dict[str, object]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(manifest, indent=1) + "\n")

    def get_outputs(self) -> list[str]:
        outputs = super().get_outputs()
        if self.extensions or self.failure is not None:
            outputs.append(str(self._manifest_path()))
        return outputs


if __name__ == "__main__":  # how setuptools runs it; importable by the tests without building
    setup(
        # A placeholder so setuptools runs build_ext (and tags the wheel for this platform);
        # build_mypyc replaces it with the real extensions or with none.
        ext_modules=[Extension(f"{PACKAGE}._native_placeholder", sources=[])],
        cmdclass={"build_ext": build_mypyc},
        # Dynamic build requirement: only fetched when we are going to compile.
        setup_requires=[] if PURE else list(MYPY),
    )
