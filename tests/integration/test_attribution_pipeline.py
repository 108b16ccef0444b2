"""Whose network through the real worker on the real broker (issue 27): scripted SFU rooms,
their level events equal to ``netquality score``'s for the same input.

The pipeline's view of a publisher reaches its subscribers through two internal hops
(docs/architecture.md, Whose network), and a subscriber's sample at ``t`` is scored with the
view as it held at ``t - 2 s`` (``view_lag_ms``). Produced all at once, a room would be
drained in bulk: the subscribers' samples could be scored before the hops have carried the
publisher's conditions (a bulk drain outruns a 2 s lag), and a subscriber that joins after a
publisher's whole history only gets its latest condition. So the room is produced in steps
of :data:`STEP_S`: the publisher's samples of a step first; then, once the views table's
changelog shows every subscriber holding the publisher's newest condition (so the view
holds it in memory too), the subscribers' samples of that step. That is the order live
traffic has (a sample is produced a second after the one before); a step is short enough
that a view, which keeps 60 s of history, still holds what the step's samples look up.
"""

from __future__ import annotations

import io
import time

import pytest
from test_levels_agent import by_participant

from pipelines.contracts import decode_level, encode
from pipelines.quality import Engine, load_thresholds
from pipelines.quality.room.views import load_view
from pipelines.scorer import score
from pipelines.testing.room import START_MS, four_members, room_samples

STEP_S = 5
SECONDS = 60
PUBLISHER = "PA02"


def scorer_events(samples, thresholds) -> dict[str, list[dict]]:
    out = io.BytesIO()
    score(samples, Engine(load_thresholds(thresholds)), out.write)
    return by_participant(decode_level(line) for line in out.getvalue().splitlines())


def lowest(events: list[dict], from_s: float, to_s: float = 1e9) -> int:
    held, low = 5, 5
    for e in events:
        t = (e["timestamp"] - START_MS) / 1000
        if t > to_s:
            break
        held = e["level"]
        if t >= from_s:
            low = min(low, held)
    return low


def second(sample) -> int:
    """The second of the script a sample belongs to (1, 2, ...)."""
    return (sample.timestamp - START_MS) // 1000


class Room:
    """Produces a scripted room step by step (see the module's docstring)."""

    def __init__(self, kafka_io, settings, samples) -> None:
        self.kafka_io, self.settings, self.samples = kafka_io, settings, samples
        self.base_ms = int(time.time() * 1000) - 90_000
        """Produce times keep the samples' spacing, ending before now."""
        self.changelog = f"{settings.app_id}-upstream-views-changelog"

    def produce(self, samples) -> None:
        self.kafka_io.produce(
            self.settings.topic_stats,
            [(s.participant_sid.encode(), encode(s)) for s in samples],
            timestamps=[self.base_ms + s.timestamp - START_MS for s in samples],
        )

    def publisher_changes_until(self, end_ms: int) -> list:
        """The publisher's uplink changes up to ``end_ms`` (its own samples decide them)."""
        engine = Engine(load_thresholds(self.settings.thresholds_file), uplinks=True)
        engine.feed_batch(
            [s for s in self.samples if s.participant_sid == PUBLISHER and s.timestamp <= end_ms]
        )
        return [c for c in engine.take_uplink_changes() if c.what == "uplink"]

    def wait_for_views(self, change, subscribers) -> None:
        """Until every subscriber's view holds ``change`` (its changelog says so)."""
        entry = (change.at_ms, change.condition)

        def holds(records) -> bool:
            seen = set()
            for r in records:
                if r.value is None or r.key.decode() not in subscribers:
                    continue
                if entry in load_view(r.value).tracks.get(change.track_sid, []):
                    seen.add(r.key.decode())
            return seen == subscribers

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:  # the worker creates the changelog topic as it starts
                if holds(self.kafka_io.read(self.changelog, until=holds, timeout=30)):
                    return
            except ValueError:
                time.sleep(1)
        raise AssertionError(f"the views never got {change}")

    def run(self, between_steps=None) -> None:
        subscribers = {s.participant_sid for s in self.samples} - {PUBLISHER}
        waited = 0
        for step, start in enumerate(range(0, SECONDS, STEP_S)):
            hi = START_MS + (start + STEP_S + 1) * 1000  # samples are taken within their second
            chunk = [s for s in self.samples if start < second(s) <= start + STEP_S]
            self.produce([s for s in chunk if s.participant_sid == PUBLISHER])
            changes = self.publisher_changes_until(hi)
            if step > 0 and len(changes) > waited:  # the subscribers are in the room by now
                latest: dict[str, object] = {}
                for change in changes:
                    latest[change.track_sid] = change
                for change in latest.values():
                    self.wait_for_views(change, subscribers)
                waited = len(changes)
            self.produce([s for s in chunk if s.participant_sid != PUBLISHER])
            if between_steps is not None:
                between_steps(step)


def read_levels(kafka_io, settings, expected):
    total = sum(len(v) for v in expected.values())

    def count(records) -> int:
        ids = {decode_level(r.value).event_id for r in records}
        return len({i for i in ids if not i.endswith(":stale")})

    records = kafka_io.read(settings.topic_levels, until=lambda r: count(r) >= total, timeout=120)
    got = by_participant(decode_level(r.value) for r in records)
    # At-least-once (a restart may replay): a copy is allowed, only of an event we expect.
    return {sid: list({e["eventId"]: e for e in events}.values()) for sid, events in got.items()}


@pytest.fixture
def room_settings(worker_settings, no_staleness):
    # Waiting for the views between steps must not count as participant silence.
    return worker_settings.with_overrides(thresholds_file=no_staleness, participant_ttl_s=7200.0)


@pytest.mark.parametrize("restart", [False, True], ids=["running", "restarted"])
def test_a_bad_publisher_falls_alone_and_its_subscribers_name_it(
    restart, room_settings, kafka_io, start_worker
):
    members = four_members()
    members[1].uplink.append((20, 45, 0.20))  # PA02's uplink loses 20 % from 20 s to 45 s
    samples = room_samples(members, SECONDS)
    expected = scorer_events(samples, room_settings.thresholds_file)
    worker = start_worker(room_settings)

    def restart_mid_incident(step: int) -> None:
        nonlocal worker
        if restart and step == 5:  # 30 s: the views come back from their changelog
            worker.stop(timeout=30)
            assert worker.returncode == 0, worker.log_tail()
            worker = start_worker(room_settings)

    Room(kafka_io, room_settings, samples).run(restart_mid_incident)
    got = read_levels(kafka_io, room_settings, expected)
    assert got == expected
    assert lowest(got[PUBLISHER], 20, 45) <= 2
    for sid in ("PA01", "PA03", "PA04"):
        assert lowest(got[sid], 35, SECONDS) == 5, sid
        named = {e["cause"]["participantSid"] for e in got[sid] if e.get("cause")}
        assert named == {PUBLISHER}, sid
    assert not any(e.get("cause") for e in got[PUBLISHER])


def test_one_bad_subscriber_falls_alone(room_settings, kafka_io, start_worker):
    members = four_members()
    members[2].downlink.append((20, 45, 0.10))  # PA03's own downlink
    samples = room_samples(members, SECONDS)
    expected = scorer_events(samples, room_settings.thresholds_file)
    start_worker(room_settings)
    Room(kafka_io, room_settings, samples).run()
    got = read_levels(kafka_io, room_settings, expected)
    assert got == expected
    assert lowest(got["PA03"], 20, 45) <= 2
    for sid in ("PA01", "PA02", "PA04"):
        assert lowest(got[sid], 0) == 5, sid
    assert not any(e.get("cause") for events in got.values() for e in events)
