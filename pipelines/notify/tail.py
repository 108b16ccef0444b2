"""``netquality alerts``: follow the alerts topic in the terminal, coloured by status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console
from rich.text import Text

from pipelines.config import Settings
from pipelines.contracts import AlertEvent, ContractError, decode_alert
from pipelines.kafka.clients import KafkaClients, tail

STATUS_STYLE = {"opened": "bold red", "updated": "yellow", "resolved": "green"}


@dataclass(frozen=True)
class AlertFilter:
    """Which alerts to show; ``None`` means any."""

    room: str | None = None
    region: str | None = None
    kind: str | None = None

    def matches(self, alert: AlertEvent) -> bool:
        return (
            (self.room is None or alert.room_sid == self.room)
            and (self.region is None or alert.region == self.region)
            and (self.kind is None or alert.kind == self.kind)
        )


def render(alert: AlertEvent) -> Text:
    """One line per alert event: time, status, kind, scope, counts, message, worst."""
    at = datetime.fromtimestamp(alert.timestamp / 1000, UTC).strftime("%H:%M:%S")
    scope = alert.participant_sid or alert.room_sid or alert.region
    where = f"{scope} ({alert.region})" if scope != alert.region else scope
    line = Text(f"{at} ")
    line.append(f"{alert.status.upper():8}", style=STATUS_STYLE[alert.status])
    line.append(f" {alert.kind:17} {where}  ")
    line.append(f"{alert.degraded}/{alert.participants} ({alert.share:.0%})  ", style="dim")
    line.append(alert.message)
    if alert.worst and alert.status != "resolved":
        worst = ", ".join(
            f"{w.participant_sid} L{w.level}" + (f" {w.limited_by}" if w.limited_by else "")
            for w in alert.worst[:3]
        )
        line.append(f"  worst: {worst}", style="dim")
    return line


class TopicMissingError(LookupError):
    """The alerts topic is not on the broker: nothing has run the worker against it yet."""

    def __init__(self, topic: str) -> None:
        super().__init__(topic)
        self.topic = topic


def tail_alerts(
    bootstrap: str,
    topic: str,
    console: Console,
    alert_filter: AlertFilter,
    *,
    settings: Settings | None = None,
    from_beginning: bool = False,
    stop: Callable[[int], bool] = lambda shown: False,
    idle_timeout_s: float | None = None,
) -> int:
    """Print alerts as they arrive until ``stop(shown)`` or ``idle_timeout_s`` of silence.

    No consumer group: a tail reads, it does not take partitions from anyone. ``settings``
    bring the broker's security (none by default)."""
    clients = KafkaClients(settings or Settings(), bootstrap)

    async def follow() -> int:
        consumer = clients.consumer(enable_auto_commit=False)
        shown = 0
        await consumer.start()
        try:
            if not await tail(consumer, topic, from_beginning=from_beginning):
                raise TopicMissingError(topic)
            last = time.monotonic()
            while not stop(shown):
                batches = await consumer.getmany(timeout_ms=500)
                records = sorted(
                    (r for batch in batches.values() for r in batch), key=lambda r: r.timestamp
                )
                if records:
                    last = time.monotonic()
                elif idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                    break
                for record in records:
                    try:
                        alert = decode_alert(record.value)
                    except ContractError as exc:
                        console.print(f"[dim]skipping an invalid alert: {exc}[/dim]")
                        continue
                    if alert_filter.matches(alert):
                        console.print(render(alert))
                        shown += 1
        finally:
            await consumer.stop()
        return shown

    return asyncio.run(follow())
