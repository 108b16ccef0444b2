"""Webhook delivery on the real broker to a loopback receiver, and the terminal tail."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web
from kafka import KafkaConsumer, TopicPartition
from rich.console import Console

from pipelines.contracts import AlertEvent, encode
from pipelines.notify.notifier import Notifier
from pipelines.notify.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)
from pipelines.notify.tail import AlertFilter, tail_alerts

SECRET = b"test-secret-0123456789abcdef0123456789"
T = 1_763_900_000_000


def alert(status: str, at: int, kind: str = "room_degraded") -> AlertEvent:
    return AlertEvent(
        schema="netquality.alert.v1",
        alert_id=f"{kind}:RM1:{T}",
        kind=kind,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        region="us1",
        timestamp=at,
        opened_at=T,
        participants=4,
        degraded=3 if status != "resolved" else 0,
        share=0.75 if status != "resolved" else 0.0,
        room_sid="RM1",
        resolved_at=at if status == "resolved" else None,
        message=f"RM1 {status}",
    )


class Receiver:
    """A loopback webhook: ``/flaky`` fails its first two requests, ``/down`` always fails."""

    def __init__(self) -> None:
        self.requests: dict[str, list[dict[str, Any]]] = {"flaky": [], "down": []}
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.read()
        seen = self.requests[name]
        seen.append({"body": body, "headers": dict(request.headers)})
        if name == "down" or len(seen) <= 2:
            return web.Response(status=500 if name == "flaky" else 503)
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{name}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()


def test_webhooks_get_signed_retried_deliveries_and_failures_become_dead_letters(
    worker_settings, kafka_io, unique_id
):
    alerts = [alert("opened", T), alert("resolved", T + 60_000)]
    kafka_io.produce(
        worker_settings.topic_alerts,
        [(b"RM1", encode(a)) for a in alerts] + [(b"RM1", b'{"schema": "nonsense"}')],
    )
    receiver = Receiver()

    async def scenario() -> Notifier:
        await receiver.start()
        base = f"http://127.0.0.1:{receiver.port}"
        settings = worker_settings.with_overrides(
            alert_webhook_urls=f"{base}/flaky,{base}/down",
            alert_webhook_max_attempts=4,
            alert_webhook_backoff_s=0.05,
            notify_group=f"notify-{unique_id[-10:]}",
        )
        notifier = Notifier(settings, SECRET, from_beginning=True)
        stop = asyncio.Event()
        task = asyncio.create_task(notifier.run(stop))
        deadline = time.monotonic() + 60
        while sum(notifier.counts.dead_letters.values()) < 3 or notifier.counts.delivered < 2:
            assert time.monotonic() < deadline, f"deliveries: {notifier.counts}"
            assert not task.done(), task.exception()
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # let the batch's commit happen before stopping
        stop.set()
        await asyncio.wait_for(task, 30)
        await receiver.stop()
        return notifier

    notifier = asyncio.run(scenario())

    flaky = receiver.requests["flaky"]
    assert len(flaky) == 4  # two failures, then the opened alert, then the resolved one
    assert [json.loads(r["body"])["status"] for r in flaky[2:]] == ["opened", "resolved"]
    assert [r["body"] for r in flaky[2:]] == [encode(a) for a in alerts]  # the raw bytes
    for r in flaky:
        h = r["headers"]
        assert verify(SECRET, h[TIMESTAMP_HEADER], r["body"], h[SIGNATURE_HEADER], time.time())
        assert not verify(b"wrong", h[TIMESTAMP_HEADER], r["body"], h[SIGNATURE_HEADER],
                          time.time())  # fmt: skip
    assert flaky[2]["headers"][DELIVERY_HEADER] == f"room_degraded:RM1:{T}:opened:{T}"
    assert len(receiver.requests["down"]) == 2 * 4  # every attempt of both alerts

    letters = [
        json.loads(r.value)
        for r in kafka_io.read(
            worker_settings.topic_deadletter, until=lambda rs: len(rs) >= 3, timeout=30
        )
    ]
    codes = sorted(letter["error"]["code"] for letter in letters)
    assert codes == ["unknown_schema", "webhook_failed", "webhook_failed"], codes
    failed = [x for x in letters if x["error"]["code"] == "webhook_failed"]
    assert all("/down" not in x["error"]["message"] for x in failed)  # URLs are redacted
    assert all("after 4 attempt(s)" in x["error"]["message"] for x in failed)
    assert notifier.counts.delivered == 2

    # At least once, and committed: the group's offsets are past all three records.
    consumer = KafkaConsumer(
        bootstrap_servers=worker_settings.kafka_bootstrap_servers,
        group_id=f"notify-{unique_id[-10:]}",
        enable_auto_commit=False,
    )
    try:
        tps = [TopicPartition(worker_settings.topic_alerts, p)
               for p in consumer.partitions_for_topic(worker_settings.topic_alerts)]  # fmt: skip
        committed = sum(consumer.committed(tp) or 0 for tp in tps)
    finally:
        consumer.close()
    assert committed == 3


def test_tail_prints_alerts_coloured_and_filtered(worker_settings, kafka_io):
    kafka_io.produce(
        worker_settings.topic_alerts,
        [(b"RM1", encode(alert("opened", T))),
         (b"RM1", encode(alert("opened", T + 5000, kind="participant_stuck"))),
         (b"RM1", encode(alert("resolved", T + 60_000)))],
    )  # fmt: skip
    console = Console(record=True, width=200, color_system="truecolor")
    shown = tail_alerts(
        worker_settings.kafka_bootstrap_servers,
        worker_settings.topic_alerts,
        console,
        AlertFilter(kind="room_degraded"),
        from_beginning=True,
        stop=lambda n: n >= 2,
        idle_timeout_s=30,
    )
    text = console.export_text(clear=False)
    assert shown == 2
    assert "OPENED" in text and "RESOLVED" in text and "participant_stuck" not in text
    assert "\x1b[1;31mOPENED" in console.export_text(styles=True)  # red when opened
