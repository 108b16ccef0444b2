"""How long the worker's consumer lets a fetch wait for data: Faust fixes it at 1,500 ms.

A fetch names every assigned partition; a broker holds it until ``fetch_min_bytes`` arrive
or ``fetch_max_wait_ms`` passes. Kafka answers as soon as data arrives, but Tansu (the
embedded broker) was seen holding a multi-partition fetch for the whole wait while records
arrived (benchmarks: produce -> consume p50 143 ms with aiokafka's 500 ms wait, 17 ms with
50 ms), so with Faust's 1,500 ms every hop through the worker could cost up to 1.5 s. A
shorter wait costs only more empty fetches while a topic is idle (50 a second at 20 ms).
"""

from __future__ import annotations

from typing import Any


def install_fetch_max_wait(ms: int) -> None:
    """Make the consumers Faust creates from now on wait at most ``ms`` (the setting)."""
    from faust.transport.drivers import aiokafka as driver  # noqa: PLC0415

    thread = driver.AIOKafkaConsumerThread
    original = getattr(thread._create_worker_consumer, "_netquality_original", None)
    original = original or thread._create_worker_consumer

    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = ms  # read by the fetcher aiokafka builds on start()
        return consumer

    _create_worker_consumer._netquality_original = original  # type: ignore[attr-defined]
    thread._create_worker_consumer = _create_worker_consumer
