"""``netquality notify``: alerts topic -> signed webhooks, at least once, in its own group.

Per batch (the group loop ``pipelines.kafka.run_group``, shared with the sink): every alert
is delivered to every URL (in topic order, so a receiver sees a room's ``opened`` before its
``resolved``), a URL that keeps failing gets a dead letter
(``netquality.deadletter.v1``, code ``webhook_failed`` or ``webhook_rejected``), and only
then are the offsets committed. A crash re-delivers the uncommitted batch: receivers dedupe
by the ``X-Netquality-Delivery`` header.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from pipelines.config import Settings
from pipelines.contracts import ContractError, dead_letter_for, decode_alert, encode
from pipelines.kafka import KafkaClients, run_group
from pipelines.kafka.group import Polled, Records
from pipelines.notify.webhook import Outcome, RetryPolicy, deliver

log = logging.getLogger(__name__)

POLL_MS = 500
GROW_POLL_MS = 100
"""Poll wait while a batch is being delivered: the next one grows meanwhile."""
MAX_BATCH = 100


def webhook_urls(settings: Settings) -> list[str]:
    return [u.strip() for u in settings.alert_webhook_urls.split(",") if u.strip()]


def webhook_secret(settings: Settings) -> bytes:
    """The HMAC key from the environment or a file (a Docker/Kubernetes secret)."""
    if settings.alert_webhook_secret:
        return settings.alert_webhook_secret.encode()
    if settings.alert_webhook_secret_file:
        try:
            secret = settings.alert_webhook_secret_file.read_bytes().strip()
        except OSError as exc:
            raise ValueError(
                f"cannot read NETQUALITY_ALERT_WEBHOOK_SECRET_FILE: {exc.strerror}"
            ) from None
        if secret:
            return secret
    raise ValueError(
        "webhooks are signed: set NETQUALITY_ALERT_WEBHOOK_SECRET or "
        "NETQUALITY_ALERT_WEBHOOK_SECRET_FILE (a random string of 32+ characters)"
    )


def redacted(url: str) -> str:
    """Scheme and host only: webhook URLs often carry a token in the path or query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/..."


@dataclass
class NotifyCounts:
    alerts: int = 0
    delivered: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)


@dataclass
class _Alerts(Polled):
    records_in_order: list[ConsumerRecord] = field(default_factory=list)


class Notifier:
    """Consumes the alerts topic and posts each alert to every configured webhook."""

    def __init__(
        self, settings: Settings, secret: bytes, *, from_beginning: bool = False
    ) -> None:
        if not settings.kafka_bootstrap_servers:
            raise ValueError("Notifier needs resolved settings (see pipelines.runtime)")
        self.settings = settings
        self.urls = webhook_urls(settings)
        if not self.urls:
            raise ValueError("no webhooks: set NETQUALITY_ALERT_WEBHOOK_URLS (comma-separated)")
        self.secret = secret
        self.policy = RetryPolicy(
            attempts=max(1, settings.alert_webhook_max_attempts),
            backoff_s=settings.alert_webhook_backoff_s,
            timeout_s=settings.alert_webhook_timeout_s,
        )
        self.from_beginning = from_beginning
        self.counts = NotifyCounts()
        self.service = "notify"
        self._session: aiohttp.ClientSession | None = None
        self._producer: AIOKafkaProducer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; leaves the group cleanly."""
        clients = KafkaClients(self.settings)
        consumer = clients.group_consumer(
            self.settings.topic_alerts,
            group_id=self.settings.notify_group,
            # A new notifier announces what happens from now on, not last month's alerts.
            from_beginning=self.from_beginning,
        )
        self._producer = clients.producer(linger_ms=5)
        await consumer.start()
        await self._producer.start()
        try:
            async with aiohttp.ClientSession() as self._session:
                await run_group(
                    consumer, self, stop, max_batch=MAX_BATCH, poll_ms=POLL_MS,
                    grow_poll_ms=GROW_POLL_MS,
                )
        finally:
            self._session = None
            await self._producer.stop()
            await consumer.stop()

    # --- the group loop's writer (pipelines.kafka.GroupWriter) -------------------------------

    def new_batch(self) -> _Alerts:
        return _Alerts()

    async def gather(self, records: Records, batch: _Alerts) -> _Alerts:
        batch.add(records)
        batch.records_in_order.extend(r for part in records.values() for r in part)
        return batch

    async def write(self, batch: _Alerts) -> None:
        """Every alert to every URL, in topic order; then the dead letters are acked."""
        assert self._session is not None and self._producer is not None
        pending: list[Awaitable[Any]] = []
        for record in batch.records_in_order:
            pending.extend(await self._handle(self._session, self._producer, record))
        if pending:
            await asyncio.gather(*pending)

    def retry_kind(self, exc: Exception) -> str | None:
        """Webhook failures are dead letters already; anything else is a bug: stop."""
        return None

    def committed(self, batch: _Alerts) -> None:
        """Nothing to count: :class:`NotifyCounts` counts per alert."""

    async def _handle(
        self, session: aiohttp.ClientSession, producer: AIOKafkaProducer, record: ConsumerRecord
    ) -> list[Awaitable[Any]]:
        """Deliver one record everywhere; returns the dead letters' pending acks."""
        now = int(time.time() * 1000)
        try:
            alert = decode_alert(record.value)
        except ContractError as exc:
            self.counts.dead_letters[exc.code] += 1
            letter = dead_letter_for(record, exc.code, exc.message, now)
            return [await producer.send(self.settings.topic_deadletter, encode(letter))]
        self.counts.alerts += 1
        delivery_id = f"{alert.alert_id}:{alert.status}:{alert.timestamp}"
        outcomes: list[Outcome] = await asyncio.gather(
            *(deliver(session, url, record.value, delivery_id, self.secret, self.policy)
              for url in self.urls)
        )  # fmt: skip
        pending = []
        for url, outcome in zip(self.urls, outcomes, strict=True):
            if outcome.delivered:
                self.counts.delivered += 1
                continue
            code = "webhook_rejected" if outcome.permanent else "webhook_failed"
            message = (
                f"{redacted(url)}: {outcome.error} after {outcome.attempts} attempt(s); "
                f"alert {delivery_id}"
            )
            log.warning("webhook delivery failed: %s", message)
            self.counts.dead_letters[code] += 1
            letter = dead_letter_for(record, code, message, int(time.time() * 1000))
            pending.append(await producer.send(self.settings.topic_deadletter, encode(letter)))
        return pending


def run_notify(
    settings: Settings, *, from_beginning: bool = False, loglevel: str | None = None
) -> None:
    """Run the notifier until SIGTERM/SIGINT (embedded broker if unset)."""
    from pipelines.runtime.service import service, stop_on_signals  # noqa: PLC0415

    try:
        secret = webhook_secret(settings)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    with service(settings, "notify", loglevel=loglevel, database=False) as resolved:
        try:
            notifier = Notifier(resolved, secret, from_beginning=from_beginning)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None

        async def main() -> None:
            stop = stop_on_signals()
            log.info("notify: %d webhook(s): %s", len(notifier.urls),
                     ", ".join(redacted(u) for u in notifier.urls))  # fmt: skip
            await notifier.run(stop)
            c = notifier.counts
            log.info("notify stopped: %d alerts, %d deliveries, dead letters %s",
                     c.alerts, c.delivered, dict(c.dead_letters) or "none")  # fmt: skip

        asyncio.run(main())
