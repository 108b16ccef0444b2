"""The worker's consumer gets the configured fetch wait, not Faust's fixed 1,500 ms."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pipelines.config import Settings
from pipelines.streaming.faust.app import create_app


def worker_consumer_fetch_wait(tmp_path: Path, ms: int) -> int:
    """The fetch wait of the consumer Faust builds for a worker app with ``ms`` configured
    (built, not started: nothing connects)."""
    settings = Settings(
        kafka_bootstrap_servers="127.0.0.1:9", state_dir=str(tmp_path), fetch_max_wait_ms=ms
    )

    async def build() -> int:
        app = create_app(settings)
        consumer = app.consumer._thread._create_worker_consumer(app.transport)
        return consumer._fetch_max_wait_ms

    return asyncio.run(build())


def test_the_worker_consumer_waits_as_configured(tmp_path: Path) -> None:
    assert worker_consumer_fetch_wait(tmp_path, 7) == 7


def test_a_second_app_gets_its_own_setting_not_a_stacked_patch(tmp_path: Path) -> None:
    assert worker_consumer_fetch_wait(tmp_path / "a", 7) == 7
    assert worker_consumer_fetch_wait(tmp_path / "b", 33) == 33
