"""Every Faust internal the seam relies on, checked once at start-up by :func:`install`.

The patches (``compat``, ``fetchwait``) and the adapters (``intake``, ``states``,
``produce``) reach into private parts of faust-streaming that an upgrade may move or
rename without notice. Each declares here what it touches; :func:`install` (called by
:func:`~pipelines.streaming.faust.app.create_app`) first checks the installed version
against :data:`TESTED`, then that every target exists (and, for methods, takes the
parameters we call it with), and only then installs the patches. A mismatch stops the
worker at start with one line naming the patch, the target and the version, instead of a
traceback deep in Faust, or worse, records silently lost.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from importlib import metadata
from typing import Any

DISTRIBUTION = "faust-streaming"
TESTED = ">=0.15,<0.16"
"""The faust-streaming releases these patches were written and tested against (the fixes of
``intake`` and ``compat`` describe 0.15's behaviour); pyproject.toml pins the same range."""
_TESTED_FROM, _TESTED_BELOW = (0, 15), (0, 16)


class FaustSeamError(RuntimeError):
    """The installed Faust is not one the seam's patches were written for."""


@dataclass(frozen=True)
class Target:
    """One thing a patch relies on: ``module``'s ``path`` (dotted attributes); for a
    callable, the leading parameter names it must take (None: not checked)."""

    module: str
    path: str
    params: tuple[str, ...] | None = None

    def __str__(self) -> str:
        return f"{self.module}.{self.path}"


@dataclass(frozen=True)
class Patch:
    name: str
    targets: tuple[Target, ...]


_DRIVER = "faust.transport.drivers.aiokafka"
PATCHES: tuple[Patch, ...] = (
    Patch("end-offset fix (compat)", (
        Target(_DRIVER, "AIOKafkaConsumerThread._highwaters", ("self", "partitions")),
        Target(_DRIVER, "AIOKafkaConsumerThread._ensure_consumer", ("self",)),
    )),
    Patch("partition of table writes (compat.writing_to_partition)", (
        Target("faust.streams", "_current_event"),
    )),
    Patch("fetch max wait (fetchwait)", (
        Target(_DRIVER, "AIOKafkaConsumerThread._create_worker_consumer", ("self", "transport")),
    )),
    Patch("ordered intake (intake)", (
        Target("faust.streams", "Stream.take_events", ("self", "max_", "within")),
        Target("faust.types.tuples", "Message.incref", ("self",)),
        Target("faust.events", "Event.ack", ("self",)),
        Target(_DRIVER, "AIOKafkaConsumerThread._ensure_consumer", ("self",)),
        Target(_DRIVER, "AIOKafkaConsumerThread.call_thread", ("self", "fun")),
        Target("faust.transport.consumer", "ThreadDelegateConsumer.earliest_offsets"),
        Target("faust.transport.consumer", "ThreadDelegateConsumer.position", ("self", "tp")),
        Target("faust.transport.consumer", "Consumer.seek_wait", ("self", "partitions")),
    )),
    Patch("changelog-backed states (states)", (
        Target("faust.stores.memory", "Store.set_persisted_offset", ("self", "tp", "offset")),
        Target("faust.stores.memory", "Store.__init__"),
        Target("faust.types", "TP"),
    )),
    Patch("batch producer (produce)", (
        Target(_DRIVER, "Producer._ensure_producer", ("self",)),
    )),
)  # fmt: skip


def installed_version() -> str:
    return metadata.version(DISTRIBUTION)


def _release(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for part in version.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
        if digits != part:
            break
    return tuple(parts)


def check_version(version: str | None = None) -> str:
    """The installed faust-streaming version, if :data:`TESTED` covers it."""
    version = version or installed_version()
    if not _TESTED_FROM <= _release(version)[:2] < _TESTED_BELOW:
        raise FaustSeamError(
            f"Faust seam: the patches are tested with {DISTRIBUTION}{TESTED}, "
            f"but {version} is installed (see pipelines/streaming/faust/patches.py)"
        )
    return version


def resolve(target: Target) -> Any:
    """The object ``target`` names; AttributeError/ImportError when it is gone."""
    obj: Any = importlib.import_module(target.module)
    for name in target.path.split("."):
        obj = getattr(obj, name)
    return obj


def check_target(patch: Patch, target: Target, version: str) -> None:
    where = f"Faust seam: patch {patch.name!r} needs {target}"
    try:
        obj = resolve(target)
    except (AttributeError, ImportError):
        raise FaustSeamError(f"{where}, missing in {DISTRIBUTION} {version}") from None
    if target.params is None:
        return
    try:
        names = tuple(inspect.signature(obj).parameters)
    except (TypeError, ValueError):
        raise FaustSeamError(f"{where}: not callable in {DISTRIBUTION} {version}") from None
    if names[: len(target.params)] != target.params:
        raise FaustSeamError(
            f"{where}({', '.join(target.params)}), but it takes ({', '.join(names)}) in "
            f"{DISTRIBUTION} {version}"
        )


def check(patches: tuple[Patch, ...] = PATCHES, version: str | None = None) -> str:
    """Check the version and every patch's targets (see the module docstring)."""
    version = check_version(version)
    for patch in patches:
        for target in patch.targets:
            check_target(patch, target, version)
    return version


def install(fetch_max_wait_ms: int) -> None:
    """Check, then install the process-wide patches (idempotent)."""
    from pipelines.streaming.faust.compat import install_end_offset_fix  # noqa: PLC0415
    from pipelines.streaming.faust.fetchwait import install_fetch_max_wait  # noqa: PLC0415

    check()
    install_end_offset_fix()
    install_fetch_max_wait(fetch_max_wait_ms)
