"""``netquality demo``: the whole pipeline live, fed by the simulator, in one terminal.

Order of start: (embedded) broker and Postgres, migrations, topics, the child services
(``netquality worker`` with the levels, rollups and alerting agents, ``netquality sink``,
``netquality web`` with the dashboards and the HTTP ingest), then the observer (reads the
levels, alerts and dead-letter topics) and the simulator in real time.

Order of stop (duration reached, Ctrl-C or SIGTERM), chosen so that the summary adds up:
stop the simulator and flush; wait until the worker has committed every sample sent; stop the
worker gracefully; wait until the observer has read every level event and the sink has written
them all; stop the sink; read the final counts. Then every level event on the topic has its
row in ``level_changes``, and the summary says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from aiokafka import TopicPartition
from psycopg import sql
from rich.console import Console
from rich.live import Live
from rich.table import Table

from pipelines.config import Settings
from pipelines.contracts import ContractError, decode_alert, decode_level
from pipelines.kafka.clients import KafkaClients, blocking, tail
from pipelines.live.view import (
    Change,
    LiveState,
    ParticipantView,
    alert_view,
    progress_line,
    render,
)
from pipelines.runtime import libpq_url
from pipelines.runtime.process import ManagedProcess
from pipelines.simulate.generator import Simulation
from pipelines.simulate.outputs import KafkaOutput
from pipelines.simulate.runner import SimulationCounts, run_simulation
from pipelines.simulate.scenario import demo_scenario


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A child service of the demo: a ``netquality`` sub-command run as its own process."""

    name: str
    argv: tuple[str, ...]


SERVICES: list[ServiceSpec] = [
    ServiceSpec("worker", ("worker", "--loglevel", "warning")),
    ServiceSpec("sink", ("sink", "--loglevel", "warning")),
    ServiceSpec("web", ("web", "--loglevel", "warning")),
]
"""Started in order, stopped in reverse."""

ROW_TABLES = ("level_changes", "current_levels", "room_rollups", "region_rollups", "alerts")
DRAIN_TIMEOUT_S = 60.0
PROGRESS_EVERY_S = 5.0
"""Plain output's cadence: often enough to see it move in `tail -f`, rare enough to read."""


class LevelsObserver(threading.Thread):
    """Reads the levels, alerts and dead-letter topics from the start into a :class:`LiveState`."""

    def __init__(self, settings: Settings, state: LiveState) -> None:
        super().__init__(name="levels-observer", daemon=True)
        self.settings = settings
        self.state = state
        self.stop_event = threading.Event()
        self.last_record_at = time.monotonic()
        self.lock = threading.Lock()
        self.last_event: dict[str, dict[str, Any]] = {}

    def run(self) -> None:
        asyncio.run(self._observe())

    async def _observe(self) -> None:
        s = self.settings
        consumer = KafkaClients(s).consumer(enable_auto_commit=False)
        try:
            await consumer.start()
            tps = await tail(consumer, s.topic_levels, s.topic_alerts, s.topic_deadletter,
                             from_beginning=True)  # fmt: skip
            while not self.stop_event.is_set():
                if not tps:
                    await asyncio.sleep(0.3)
                    continue
                for tp, records in (await consumer.getmany(timeout_ms=300)).items():
                    self.last_record_at = time.monotonic()
                    with self.lock:
                        for record in records:
                            self._apply(tp.topic, record.value)
        finally:
            await consumer.stop()

    def _apply(self, topic: str, value: bytes) -> None:
        state = self.state
        if topic == self.settings.topic_deadletter:
            state.dead_letters += 1
            return
        if topic == self.settings.topic_alerts:
            try:
                alert = decode_alert(value)
            except ContractError:
                return
            state.note_alert(alert.alert_id, alert_view(
                alert.kind, alert.status, region=alert.region, room_sid=alert.room_sid,
                participant_sid=alert.participant_sid, degraded=alert.degraded,
                participants=alert.participants,
            ))
            return
        state.level_records += 1
        try:
            event = decode_level(value)
        except ContractError:
            return
        if event.event_id in state.event_ids:
            return  # at-least-once: a replayed duplicate
        state.event_ids.add(event.event_id)
        state.event_times.append(time.monotonic())
        self.last_event[event.participant_sid] = {
            "event_id": event.event_id, "level": event.level, "departed": event.departed,
        }
        state.participants[event.participant_sid] = ParticipantView(
            event.room_sid, event.region, event.level, event.limited_by, event.departed
        )
        # Whose network: a subscriber kept up by the room's view shows whose uplink it was.
        cause = event.cause
        limited = event.limited_by if cause is None else f"{cause.participant_sid}'s uplink"
        state.note_change(Change(
            time.monotonic(), event.participant_sid, event.room_sid, event.previous_level,
            event.level, limited,
        ))


def count_rows(database_url: str) -> dict[str, int]:
    """Rows in each table the demo reports (one short connection)."""
    count = sql.SQL("SELECT count(*) FROM {}")
    with psycopg.connect(libpq_url(database_url), connect_timeout=5) as conn:
        return {t: conn.execute(count.format(sql.Identifier(t))).fetchone()[0]  # type: ignore[index]
                for t in ROW_TABLES}


def committed_offsets(settings: Settings) -> dict[int, int]:
    """The worker group's committed offsets on the stats topic, by partition.

    Asked as a consumer of the group that never joins it (no subscription): aiokafka's admin
    ``list_consumer_group_offsets`` cannot decode the embedded broker's (Tansu's) answer."""
    clients = KafkaClients(settings)

    async def fetch() -> dict[int, int]:
        consumer = clients.consumer(group_id=settings.app_id, enable_auto_commit=False)
        try:
            await consumer.start()
            await consumer.topics()  # loads metadata
            partitions = sorted(consumer.partitions_for_topic(settings.topic_stats) or ())
            offsets = {p: await consumer.committed(TopicPartition(settings.topic_stats, p))
                       for p in partitions}  # fmt: skip
        finally:
            await consumer.stop()
        return {p: offset for p, offset in offsets.items() if offset is not None and offset >= 0}

    return blocking(fetch())


def _wait(predicate: Callable[[], bool], timeout: float, stop_hard: threading.Event) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop_hard.is_set():
        try:
            if predicate():
                return True
        except Exception:  # a transient broker or database error: keep polling
            pass
        time.sleep(0.5)
    return False


class LiveDemo:
    """The running demo: services, simulator, observer and the summary they add up to."""

    def __init__(
        self,
        settings: Settings,
        console: Console,
        *,
        rooms: int = 12,
        participants: tuple[int, int] = (4, 6),
        seed: int = 0,
        log_dir: Any = None,
    ) -> None:
        if not settings.kafka_bootstrap_servers or not settings.database_url:
            raise ValueError("LiveDemo needs resolved settings (see pipelines.runtime.Runtime)")
        self.settings = settings
        self.console = console
        self.scenario = demo_scenario(rooms, participants, seed=seed)
        self.seed = seed
        self.log_dir = log_dir or (settings.state_dir / "logs")
        self.state = LiveState()
        self.services: list[ManagedProcess] = []
        self.stop = threading.Event()
        """Set to end the run (duration, Ctrl-C, SIGTERM): then everything drains and stops."""
        self.abort = threading.Event()
        """Set on a second Ctrl-C: stop waiting for drains."""
        self.summary: dict[str, Any] = {}
        self.drain: dict[str, Any] = {}
        self.counts = SimulationCounts()

    # -- lifecycle -------------------------------------------------------------------------
    def start_services(self) -> None:
        env = {**os.environ, **self.settings.as_env()}
        for spec in SERVICES:
            proc = ManagedProcess(
                spec.name, [sys.executable, "-m", "pipelines.cli", *spec.argv],
                log_path=self.log_dir / f"{spec.name}.log", env=env,
            )
            proc.start()
            self.services.append(proc)
            self.state.services[spec.name] = f"running (pid {proc.pid})"
        if self.state.dashboard:
            # The address without its token: the whole one was printed at the start.
            self.state.services["web"] += f" at {self.state.dashboard.partition('?')[0]}"

    def stop_services(self, names: tuple[str, ...] | None = None) -> None:
        for proc in reversed(self.services):
            if names is None or proc.name in names:
                proc.stop(timeout=30)
                self.state.services[proc.name] = f"stopped (exit {proc.returncode})"

    def run(self, duration_s: float | None, *, live: bool = True) -> dict[str, Any]:
        """Run until ``duration_s`` or :attr:`stop`; returns the summary."""
        observer = LevelsObserver(self.settings, self.state)
        output = KafkaOutput(self.settings)
        start_ms = int(time.time()) * 1000
        sim = Simulation(self.scenario, seed=self.seed, start_ms=start_ms)
        sim_thread = threading.Thread(
            target=run_simulation, name="simulator", daemon=True,
            args=(sim, output),
            kwargs={"duration_s": None, "realtime": True, "stop": self.stop,
                    "counts": self.counts},
        )
        try:
            self.start_services()
            observer.start()
            sim_thread.start()
            deadline = None if duration_s is None else time.monotonic() + duration_s
            if live:
                self._watch_live(deadline, observer, sim_thread, output)
            else:
                self._watch_plain(deadline, observer, sim_thread, output)
            self._drain(output, observer)
        finally:
            self.stop.set()
            self.stop_services()
            observer.stop_event.set()
            observer.join(timeout=10)
            output.close()
        return self._summarise(observer, output)

    def _tick(self, last_rows: float) -> float:
        """Refresh counters (rows every 2 s: a query) and service states; returns last_rows."""
        self._refresh_counts()
        if time.monotonic() - last_rows > 2.0:
            last_rows = time.monotonic()
            self._refresh_rows()
        for proc in self.services:
            if not proc.alive():
                self.state.services[proc.name] = f"EXITED ({proc.returncode})"
        return last_rows

    def _running(self, deadline: float | None) -> bool:
        return not self.stop.is_set() and (deadline is None or time.monotonic() < deadline)

    def _finish_simulation(self, sim_thread: threading.Thread, output: KafkaOutput) -> None:
        self.stop.set()
        sim_thread.join(timeout=10)
        output.flush()
        self._refresh_counts()

    def _watch_live(self, deadline: float | None, observer: LevelsObserver,
                    sim_thread: threading.Thread, output: KafkaOutput) -> None:
        """The terminal view, redrawn twice a second."""
        last_rows = 0.0
        with Live(render(self.state, self.console.width), console=self.console,
                  refresh_per_second=2, transient=False) as view:
            while self._running(deadline):
                last_rows = self._tick(last_rows)
                with observer.lock:
                    view.update(render(self.state, self.console.width))
                self.stop.wait(0.5)
            self._finish_simulation(sim_thread, output)
            with observer.lock:
                view.update(render(self.state, self.console.width))

    def _watch_plain(self, deadline: float | None, observer: LevelsObserver,
                     sim_thread: threading.Thread, output: KafkaOutput) -> None:
        """Output that is not a terminal (a pipe, a log): a progress line every
        :data:`PROGRESS_EVERY_S` and a line per alert event, flushed as they come."""
        last_rows, last_line, printed_alerts = 0.0, time.monotonic(), 0
        while self._running(deadline):
            last_rows = self._tick(last_rows)
            with observer.lock:
                new = self.state.alert_events - printed_alerts
                lines = list(self.state.alert_log)[-new:] if new > 0 else []
                printed_alerts = self.state.alert_events
            for line in lines:
                self._plain(f"alert: {line}")
            if time.monotonic() - last_line >= PROGRESS_EVERY_S:
                last_line = time.monotonic()
                with observer.lock:
                    self._plain(progress_line(self.state))
            self.stop.wait(0.5)
        self._finish_simulation(sim_thread, output)
        self._refresh_rows()
        self._plain(progress_line(self.state))

    def _plain(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        with contextlib.suppress(AttributeError, ValueError, OSError):
            self.console.file.flush()

    # -- draining and the summary ----------------------------------------------------------
    def _drain(self, output: KafkaOutput, observer: LevelsObserver) -> None:
        began = time.monotonic()
        if not self.console.is_terminal:
            self._plain("stopping: draining the worker and the sink, then stopping them")
        with self.console.status("draining: the worker finishes every sample sent") as status:
            sent = dict(output.end_offsets)
            worker_done = _wait(lambda: all(committed_offsets(self.settings).get(p, 0) >= end
                                            for p, end in sent.items()),
                                DRAIN_TIMEOUT_S, self.abort)
            status.update("stopping the worker")
            self.stop_services(("worker",))
            status.update("draining: the observer and the sink read every level event")
            _wait(lambda: time.monotonic() - observer.last_record_at > 3.0, 30, self.abort)
            sink_done = _wait(self._sink_caught_up, DRAIN_TIMEOUT_S, self.abort)
            status.update("stopping the sink")
            self.stop_services(("sink", "web"))
        self.drain = {"drain_s": round(time.monotonic() - began, 1),
                      "worker_drained": worker_done, "sink_drained": sink_done}

    def _sink_caught_up(self) -> bool:
        rows = count_rows(self.settings.database_url)  # type: ignore[arg-type]
        return (rows["level_changes"] >= len(self.state.event_ids)
                and rows["alerts"] >= len(self.state.alerts))

    def _refresh_counts(self) -> None:
        self.state.samples_sent = self.counts.samples
        self.state.simulated_s = self.counts.seconds

    def _refresh_rows(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.state.rows = count_rows(self.settings.database_url)  # type: ignore[arg-type]

    def _summarise(self, observer: LevelsObserver, output: KafkaOutput) -> dict[str, Any]:
        rows = count_rows(self.settings.database_url)  # type: ignore[arg-type]
        present = sum(1 for e in observer.last_event.values() if not e["departed"])
        summary: dict[str, Any] = {
            "simulated_s": self.counts.seconds,
            "participants": len(self.counts.participants),
            "samples_sent": self.counts.samples,
            "samples_failed": len(output.errors),
            "level_changes_on_topic": len(self.state.event_ids),
            "level_changes_rows": rows["level_changes"],
            "participants_present": present,
            "current_levels_rows": rows["current_levels"],
            "room_rollups_rows": rows["room_rollups"],
            "region_rollups_rows": rows["region_rollups"],
            "dead_letters": self.state.dead_letters,
            "alerts_opened": len(self.state.alerts),
            "alerts_resolved": sum(1 for st in self.state.alerts.values() if st == "resolved"),
            "alerts_rows": rows["alerts"],
            "services": {p.name: p.returncode for p in self.services},
            **self.drain,
        }
        summary["consistent"] = (
            summary["level_changes_on_topic"] == summary["level_changes_rows"]
            and summary["current_levels_rows"] == present
            and summary["alerts_rows"] == summary["alerts_opened"]
            and summary["samples_failed"] == 0
        )
        self.summary = summary
        return summary


def summary_table(summary: dict[str, Any]) -> Table:
    """The closing summary as a two-column table."""
    table = Table(title="netquality demo: summary", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in summary.items():
        shown = str(value)
        if key == "services":
            shown = ", ".join(f"{name} exit {rc}" for name, rc in value.items())
        elif key == "consistent":
            shown = ("[green]yes: every level event on the topic has its row[/]" if value
                     else "[red]NO: topic and Postgres disagree (see var/demo/logs)[/]")
        table.add_row(key.replace("_", " "), shown)
    return table
