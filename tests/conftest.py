"""Shared fixtures: the real broker and Postgres, started lazily once per session.

Unit tests request neither fixture, so they start nothing. Endpoints are resolved by
``pipelines.runtime.Runtime`` like in production: ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL``
in the environment mean "use those", otherwise embedded servers are started with their logs
under one per-session temp dir (printed in the header of the pytest run).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
from hypothesis import settings as hypothesis_settings

from pipelines.config import Settings
from pipelines.runtime import Runtime

_SERVER_FIXTURES = {"broker", "postgres"}

# No per-example deadline: speed lives in benchmarks, not in tests, and these machines are
# shared (a 1 ms example once took 427 ms under load and failed a run).
hypothesis_settings.register_profile("netquality", deadline=None)
hypothesis_settings.load_profile("netquality")


def pytest_configure(config: pytest.Config) -> None:
    # Declared in pyproject.toml too; repeated so --strict-markers holds if run from elsewhere.
    config.addinivalue_line(
        "markers", "integration: talks to the real embedded broker and/or Postgres"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration, or using a server fixture, is ``integration``."""
    for item in items:
        uses_server = bool(_SERVER_FIXTURES & set(getattr(item, "fixturenames", ())))
        if uses_server or "integration" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.integration)


class PostgresHandle(Protocol):
    """What tests get from the ``postgres`` fixture."""

    @property
    def url(self) -> str: ...  # SQLAlchemy URL, postgresql+psycopg://

    def stop(self) -> None: ...

    def start(self) -> None: ...


@dataclass(frozen=True)
class ExternalPostgres:
    """A Postgres we did not start (``DATABASE_URL``): tests cannot stop it."""

    url: str

    def stop(self) -> None:
        pytest.skip("DATABASE_URL points at an external Postgres; cannot stop it")

    def start(self) -> None:
        pytest.skip("DATABASE_URL points at an external Postgres; cannot start it")


@pytest.fixture(scope="session")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Per-session directory for embedded server data and logs (pytest keeps the last few)."""
    return tmp_path_factory.mktemp("netquality-runtime")


def _session_settings(runtime_dir: Path) -> Settings:
    return Settings.from_env().with_overrides(state_dir=runtime_dir)


@pytest.fixture(scope="session")
def broker(runtime_dir: Path) -> Iterator[str]:
    """Bootstrap servers of a broker shared by the session; use fresh topics/groups per test."""
    with Runtime(_session_settings(runtime_dir), kafka=True, database=False) as rt:
        assert rt.settings.kafka_bootstrap_servers
        yield rt.settings.kafka_bootstrap_servers


@pytest.fixture(scope="session")
def postgres(runtime_dir: Path) -> Iterator[PostgresHandle]:
    """The session's Postgres (``.url``, ``.stop()``, ``.start()`` on the same port and data)."""
    with Runtime(_session_settings(runtime_dir), kafka=False, database=True) as rt:
        if rt.postgres is not None:
            yield rt.postgres
        else:
            assert rt.settings.database_url
            yield ExternalPostgres(rt.settings.database_url)


@pytest.fixture
def unique_id(request: pytest.FixtureRequest) -> str:
    """A fresh name for topics and consumer groups: Tansu groups must not be reused."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:40]
    return f"{stem}-{uuid.uuid4().hex[:10]}"
