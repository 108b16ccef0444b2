"""The pipeline a lab call publishes into: the embedded one, or a configured one.

Embedded (the default): the broker (embedded Tansu unless ``KAFKA_BOOTSTRAP_SERVERS`` is set),
the topics, then ``netquality worker`` and ``netquality ingest`` as child processes with a
fresh ingest token. Configured (``--ingest-url``): the lab publishes to that ingest with a
token of ``NETQUALITY_INGEST_TOKENS`` and only reads the levels topic of the configured
broker. Either way the levels come back from the levels topic, as a room service sees them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.config import Settings
from pipelines.contracts import ContractError, LevelEvent, decode_level
from pipelines.kafka.clients import KafkaClients, tail
from pipelines.runtime import Runtime
from pipelines.runtime.process import ManagedProcess, free_port, port_open
from pipelines.runtime.service import prepare

START_TIMEOUT_S = 60.0


@dataclass
class Pipeline:
    settings: Settings
    ingest_url: str
    token: str
    log_dir: Path
    services: list[ManagedProcess] = field(default_factory=list)

    def check(self) -> None:
        """Fail fast, with the service's log tail, if a child died mid-run."""
        for proc in self.services:
            if not proc.alive():
                raise RuntimeError(f"netquality {proc.name} exited ({proc.returncode}); "
                                   f"see {proc.log_path}")


@contextmanager
def open_pipeline(settings: Settings, log_dir: Path,
                  ingest_url: str | None = None) -> Iterator[Pipeline]:
    with ExitStack() as stack:
        runtime = Runtime(settings, kafka=True, database=False)
        stack.callback(runtime.close)
        # The topics are the ingest's and the worker's to use: only when they are ours.
        resolved = prepare(runtime, topics=ingest_url is None)
        if ingest_url is not None:
            token = _first_token(resolved)
            if not token:
                raise RuntimeError("--ingest-url needs a token the ingest accepts in "
                                   "NETQUALITY_INGEST_TOKENS or NETQUALITY_INGEST_TOKENS_FILE")
            yield Pipeline(resolved, ingest_url.rstrip("/") + "/", token, log_dir)
            return
        token = secrets.token_urlsafe(24)
        port = free_port()
        resolved = resolved.with_overrides(ingest_tokens=token, ingest_port=port)
        env = {**os.environ, **resolved.as_env()}
        pipeline = Pipeline(resolved, f"http://127.0.0.1:{port}/", token, log_dir)
        for name in ("worker", "ingest"):
            proc = ManagedProcess(
                name, [sys.executable, "-m", "pipelines.cli", name, "--loglevel", "warning"],
                log_path=log_dir / f"{name}.log", env=env,
            )
            proc.start()
            stack.callback(proc.stop, 30)
            pipeline.services.append(proc)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_open("127.0.0.1", port):
            pipeline.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the ingest did not open port {port}; see {log_dir}")
            time.sleep(0.2)
        yield pipeline


def _first_token(settings: Settings) -> str:
    """The first ingest token configured, as the ingest reads them (comma-separated, or one
    per line in the file)."""
    tokens = [t.strip() for t in (settings.ingest_tokens or "").split(",") if t.strip()]
    if not tokens and settings.ingest_tokens_file is not None:
        try:
            lines = Path(settings.ingest_tokens_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise RuntimeError(f"cannot read NETQUALITY_INGEST_TOKENS_FILE: {exc}") from None
        tokens = [t.strip() for t in lines if t.strip() and not t.startswith("#")]
    return tokens[0] if tokens else ""


class LevelsReader(threading.Thread):
    """Collects the level events of one room from the levels topic, from its start."""

    def __init__(self, settings: Settings, room_sid: str) -> None:
        super().__init__(name="lab-levels", daemon=True)
        self.settings = settings
        self.room_sid = room_sid
        self.events: list[LevelEvent] = []
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.ready = threading.Event()

    def run(self) -> None:
        asyncio.run(self._collect())

    async def _collect(self) -> None:
        consumer = KafkaClients(self.settings).consumer(enable_auto_commit=False)
        try:
            await consumer.start()
            tps = await tail(consumer, self.settings.topic_levels, from_beginning=True)
            self.ready.set()
            seen: set[str] = set()
            while not self.stop_event.is_set():
                if not tps:
                    await asyncio.sleep(0.3)
                    continue
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    for record in records:
                        try:
                            event = decode_level(record.value)
                        except ContractError:
                            continue
                        if event.room_sid != self.room_sid or event.event_id in seen:
                            continue
                        seen.add(event.event_id)  # at-least-once: drop replays
                        with self.lock:
                            self.events.append(event)
        finally:
            self.ready.set()
            await consumer.stop()

    def snapshot(self) -> list[LevelEvent]:
        with self.lock:
            return list(self.events)

    def settle(self, expected_sids: set[str], last_sample_ms: int, timeout_s: float) -> None:
        """Wait until every participant's events reached the last sample (or time is up)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            latest: dict[str, int] = {}
            for e in self.snapshot():
                latest[e.participant_sid] = max(latest.get(e.participant_sid, 0), e.timestamp)
            if set(latest) >= expected_sids and min(latest.values()) >= last_sample_ms:
                return
            time.sleep(0.5)

    def close(self) -> None:
        self.stop_event.set()
        self.join(timeout=10)
