"""The web API against the real Postgres and broker: answers, auth on every endpoint, limits.

One server per module (seeded once through direct inserts into a migrated database, as the sink
writes them), so the whole matrix costs one start-up.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from openapi_spec_validator import validate
from psycopg import sql
from sqlalchemy.engine import make_url

from pipelines.config import Settings
from pipelines.contracts import LevelEvent, MediaLevels, encode
from pipelines.contracts.level import BandwidthStats, ComponentStats
from pipelines.runtime import libpq_url
from pipelines.storage import migrate
from pipelines.streaming.topics import ensure_topics

NOW_MS = int(time.time() * 1000)
WEB_TOKENS = {
    "all": "tok-all-0123456789abcdef",
    "room": "tok-room-0123456789abcdef",  # room:RM-A
    "region": "tok-region-0123456789abcd",  # region:eu-west
    "other": "tok-other-0123456789abcde",  # region:us-east
}
WEB_TOKENS_SETTING = (
    f"{WEB_TOKENS['all']}=*;{WEB_TOKENS['room']}=room:RM-A;"
    f"{WEB_TOKENS['region']}=region:eu-west;{WEB_TOKENS['other']}=region:us-east"
)


@pytest.fixture(scope="module")
def web(broker: str, postgres: Any, web_kit: Any) -> Iterator[tuple[Any, Settings]]:
    name = f"nq_web_{uuid.uuid4().hex[:10]}"
    admin = libpq_url(postgres.url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(postgres.url).set(database=name).render_as_string(False)
    migrate.upgrade(url)
    web_kit.seed(url, NOW_MS)
    suffix = uuid.uuid4().hex[:8]
    settings = Settings.from_env().with_overrides(
        kafka_bootstrap_servers=broker,
        database_url=url,
        partitions=2,
        topic_levels=f"web-levels-{suffix}",
        topic_levels_current=f"web-current-{suffix}",
        topic_stats=f"web-stats-{suffix}",
        topic_rollups=f"web-rollups-{suffix}",
        topic_alerts=f"web-alerts-{suffix}",
        topic_deadletter=f"web-dl-{suffix}",
        web_tokens=WEB_TOKENS_SETTING,
        web_heartbeat_s=1.0,
        web_max_range_h=48.0,
    )
    ensure_topics(settings)
    server = web_kit.server(settings)
    try:
        server.wait_ready()
        yield server, settings
    finally:
        server.stop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def get(server: Any, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.url}{path}", headers=headers, timeout=30, **kw)


# -- auth on every endpoint ----------------------------------------------------------------------

T = WEB_TOKENS
ENDPOINTS: dict[str, dict[str, int]] = {
    # path: token name -> status (anonymous and a wrong token are 401 everywhere)
    "/api/regions": {"all": 200, "region": 200, "other": 200, "room": 403},
    "/api/regions/eu-west/summary": {"all": 200, "region": 200, "other": 403, "room": 403},
    "/api/rooms/RM-A/participants": {"all": 200, "region": 200, "other": 403, "room": 200},
    "/api/rooms/RM-B/participants": {"all": 200, "region": 200, "other": 403, "room": 403},
    "/api/rooms/RM-C/participants": {"all": 200, "region": 403, "other": 200, "room": 403},
    "/api/rooms/RM-A/history": {"all": 200, "region": 200, "other": 403, "room": 200},
    "/api/rooms/RM-C/history": {"all": 200, "region": 403, "other": 200, "room": 403},
    "/api/rooms/RM-A/feed": {"all": 200, "region": 200, "other": 403, "room": 200},
    "/api/rooms/RM-B/feed": {"all": 200, "region": 200, "other": 403, "room": 403},
    "/": {"all": 200, "region": 200, "other": 200, "room": 200},
    "/regions/eu-west": {"all": 200, "region": 200, "other": 403, "room": 403},
    "/rooms/RM-A": {"all": 200, "region": 200, "other": 403, "room": 200},
    "/rooms/RM-C": {"all": 200, "region": 403, "other": 200, "room": 403},
}


def status_of(server: Any, path: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.stream("GET", f"{server.url}{path}", headers=headers, timeout=30) as response:
        return response.status_code  # the feed's body never ends: read only the status


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_every_endpoint_answers_401_403_200_by_token_scope(web, path: str) -> None:
    server, _ = web
    assert status_of(server, path, None) == 401
    assert status_of(server, path, "not-a-configured-token-at-all") == 401
    got = {name: status_of(server, path, T[name]) for name in ENDPOINTS[path]}
    assert got == ENDPOINTS[path]


def test_api_errors_are_json_with_a_message(web) -> None:
    server, _ = web
    anonymous = get(server, "/api/rooms/RM-A/participants")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.json() == {
        "error": "unauthorized",
        "message": "authentication required: send Authorization: Bearer <token>",
    }
    forbidden = get(server, "/api/rooms/RM-B/participants", T["room"])
    assert forbidden.json() == {"error": "forbidden",
                                "message": "this token does not cover room RM-B"}
    missing = get(server, "/api/nothing", T["all"])
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_public_endpoints_need_no_token(web) -> None:
    server, _ = web
    assert get(server, "/healthz").json() == {"status": "ok"}
    ready = get(server, "/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok", "broker": "ok"}
    assert get(server, "/openapi.json").status_code == 200


def test_openapi_document_is_valid_openapi_3_1_and_lists_every_api_route(web) -> None:
    server, _ = web
    document = get(server, "/openapi.json").json()
    validate(document)  # raises on an invalid document
    assert document["openapi"].startswith("3.1")
    api_paths = {r.path for r in server.app.routes if getattr(r, "path", "").startswith("/api")}
    assert api_paths <= set(document["paths"])


# -- answers -------------------------------------------------------------------------------------


def test_participants_have_levels_components_and_the_metric_limiting_each(web) -> None:
    server, _ = web
    body = get(server, "/api/rooms/RM-A/participants", T["room"]).json()
    by_sid = {p["participantSid"]: p for p in body["participants"]}
    assert set(by_sid) == {"PA1", "PA2"}
    pa2 = by_sid["PA2"]
    assert (pa2["level"], pa2["limitedBy"], pa2["previousLevel"]) == (
        2, "video.send.bandwidth", 5)
    assert pa2["video"]["send"] == 2 and pa2["video"]["recv"] is None
    assert pa2["video"]["sendLimitedBy"] == "bandwidth"
    assert pa2["video"]["sendStats"]["bandwidth"]["actual"] == 300000
    assert pa2["audio"]["send"] == 5 and pa2["audio"]["sendLimitedBy"] == "bandwidth"
    assert by_sid["PA1"]["level"] == 5 and by_sid["PA1"]["limitedBy"] is None


def test_unknown_rooms_and_regions_are_404(web) -> None:
    server, _ = web
    for path in ("/api/rooms/RM-nope/participants", "/api/rooms/RM-nope/history",
                 "/api/regions/mars/summary"):
        response = get(server, path, T["all"])
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"


def test_history_has_changes_initial_levels_and_minutes_in_the_range(web) -> None:
    server, _ = web
    start, end = NOW_MS - 15 * 60_000, NOW_MS  # the first events were 20 minutes ago
    body = get(server, f"/api/rooms/RM-A/history?from={start}&to={end}", T["all"]).json()
    assert [(c["participantSid"], c["level"]) for c in body["changes"]] == [("PA2", 2)]
    assert {i["participantSid"]: i["level"] for i in body["initial"]} == {"PA1": 5, "PA2": 5}
    assert len(body["minutes"]) in (14, 15)  # the oldest minute may start before `from`
    assert all(start <= m["minute"] < end for m in body["minutes"])
    assert body["minutes"][-1]["secondsAtLevel"][2] > body["minutes"][0]["secondsAtLevel"][2]
    assert body["truncated"] is False


def test_region_summary_distribution_worst_rooms_and_only_open_alerts(web) -> None:
    server, _ = web
    body = get(server, "/api/regions/eu-west/summary?from="
               + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW_MS / 1000 - 3600)),
               T["region"]).json()
    assert body["bucketSeconds"] == 60
    assert len(body["distribution"]) == 30
    assert all(len(p["secondsAtLevel"]) == 6 for p in body["distribution"])
    assert [r["roomSid"] for r in body["worstRooms"]] == ["RM-A", "RM-B"]
    assert body["worstRooms"][0]["degradedShare"] > 0 == body["worstRooms"][1]["degradedShare"]
    assert [a["alertId"] for a in body["openAlerts"]] == ["room_degraded:RM-A:1"]
    assert (body["participantsNow"], body["roomsNow"]) == (3, 2)


def test_regions_overview_is_filtered_by_the_token(web) -> None:
    server, _ = web
    everything = get(server, "/api/regions", T["all"]).json()["regions"]
    assert [r["region"] for r in everything] == ["eu-west", "us-east"]
    eu = everything[0]
    assert (eu["participants"], eu["rooms"], eu["openAlerts"]) == (3, 2, 1)
    assert eu["participantsAtLevel"] == [0, 0, 1, 0, 1, 1]
    scoped = get(server, "/api/regions", T["region"]).json()["regions"]
    assert [r["region"] for r in scoped] == ["eu-west"]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("from=yesterday", "neither ISO 8601"),
        ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from must be before to"),
        ("from=2026-01-01T00:00:00Z&to=2026-01-05T00:00:00Z", "the limit is 2 days"),
    ],
)
def test_bad_or_too_long_ranges_are_422(web, query: str, fragment: str) -> None:
    server, _ = web
    for path in ("/api/rooms/RM-A/history", "/api/regions/eu-west/summary"):
        response = get(server, f"{path}?{query}", T["all"])
        assert response.status_code == 422
        assert fragment in response.json()["message"]


def test_bad_verbosity_is_422(web) -> None:
    server, _ = web
    response = get(server, "/api/rooms/RM-A/feed?verbosity=7", T["all"])
    assert response.status_code == 422 and "verbosity" in response.json()["message"]


# -- the live feed -------------------------------------------------------------------------------


def read_events(lines: Iterator[str], wanted: int, timeout: float = 30.0) -> list[dict]:
    """Parse SSE frames until ``wanted`` named events arrived (comments count as pings)."""
    events: list[dict] = []
    frame: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    for line in lines:
        assert time.monotonic() < deadline, f"only {events} before the deadline"
        if line.startswith(":"):
            events.append({"event": "ping"})
        elif line == "":
            if "event" in frame:
                events.append({**frame, "data": json.loads(frame["data"])})
            frame = {}
        else:
            key, _, value = line.partition(": ")
            frame[key] = value
        if sum(1 for e in events if e["event"] != "ping") >= wanted:
            return events
    raise AssertionError(f"the stream ended after {events}")


def level_event(sid: str, room: str, seq: int, level: int, ts: int) -> bytes:
    stats = ComponentStats(bandwidth=BandwidthStats(level=level, actual=100_000.0))
    return encode(LevelEvent(
        schema="netquality.level.v1", event_id=f"{sid}:{seq}", room_sid=room,
        participant_sid=sid, region="eu-west", timestamp=ts, level=level, previous_level=5,
        audio=MediaLevels(send=5), video=MediaLevels(send=level, send_stats=stats),
        limited_by="video.send.bandwidth",
    ))


def test_feed_starts_with_the_snapshot_then_streams_changes_at_each_verbosity(
    web, kafka_io
) -> None:
    server, settings = web
    streams = {}
    with httpx.Client(timeout=httpx.Timeout(30, read=30)) as client:
        for verbosity in (1, 2, 3):
            request = client.build_request(
                "GET", f"{server.url}/api/rooms/RM-A/feed?verbosity={verbosity}",
                headers={"Authorization": f"Bearer {T['room']}"},
            )
            response = client.send(request, stream=True)
            assert response.headers["content-type"].startswith("text/event-stream")
            streams[verbosity] = response
        lines = {v: r.iter_lines() for v, r in streams.items()}
        try:
            snapshots = {v: read_events(lines[v], 1)[-1] for v in streams}
            for verbosity, snap in snapshots.items():
                assert snap["event"] == "snapshot"
                assert snap["data"]["verbosity"] == verbosity
                assert {p["participantSid"] for p in snap["data"]["participants"]} == {
                    "PA1", "PA2"}
            pa2 = {v: next(p for p in s["data"]["participants"] if p["participantSid"] == "PA2")
                   for v, s in snapshots.items()}
            assert "audio" not in pa2[1] and pa2[1]["level"] == 2
            assert pa2[2]["video"] == {"send": 2, "recv": None}
            assert pa2[3]["video"]["sendLimitedBy"] == "bandwidth"

            ts = int(time.time() * 1000)
            kafka_io.produce(settings.topic_levels, [
                (b"PA9", level_event("PA9", "RM-Z", 1, 1, ts)),  # another room: not sent
                (b"PA2", level_event("PA2", "RM-A", 7, 1, ts)),
                (b"PA2", level_event("PA2", "RM-A", 3, 3, ts - 3_600_000)),  # older: dropped
            ])
            for verbosity in streams:
                live = [e for e in read_events(lines[verbosity], 1) if e["event"] == "level"]
                assert len(live) == 1
                data = live[0]["data"]
                assert (data["participantSid"], data["level"], data["eventId"]) == (
                    "PA2", 1, "PA2:7")
                assert live[0]["id"] == str(ts)
                assert ("video" in data) == (verbosity >= 2)
                assert ("sendStats" in data.get("video", {})) == (verbosity == 3)
            # a heartbeat arrives within a few seconds of silence
            pings = read_events_until_ping(lines[1])
            assert pings
        finally:
            for response in streams.values():
                response.close()


def read_events_until_ping(lines: Iterator[str]) -> list[str]:
    for line in lines:
        if line.startswith(":"):
            return [line]
    return []


def test_tokens_never_reach_the_logs_and_the_page_token_becomes_a_strict_cookie(
    web, caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = web
    caplog.set_level(logging.DEBUG)
    redirect = httpx.get(f"{server.url}/rooms/RM-A?token={T['room']}&last=15m", timeout=30)
    assert redirect.status_code == 303
    assert redirect.headers["location"] == "/rooms/RM-A?last=15m"
    cookie = redirect.headers["set-cookie"]
    assert cookie.startswith(f"nq_token={T['room']};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    # the cookie authenticates pages and the API alike (EventSource sends cookies, not headers)
    cookies = {"nq_token": T["room"]}
    page = httpx.get(f"{server.url}/rooms/RM-A", cookies=cookies, timeout=30)
    assert page.status_code == 200 and 'data-participant="PA2"' in page.text
    api = httpx.get(f"{server.url}/api/rooms/RM-A/participants", cookies=cookies, timeout=30)
    assert api.status_code == 200
    assert get(server, "/api/rooms/RM-A/participants", T["all"]).status_code == 200
    bad = httpx.get(f"{server.url}/rooms/RM-A?token=wrong-token-but-long-enough", timeout=30)
    assert bad.status_code == 401 and "set-cookie" not in bad.headers
    # everything the server side logged (the test's own HTTP client logs its URLs: not ours)
    text = "\n".join(r.getMessage() for r in caplog.records
                     if not r.name.startswith(("httpx", "httpcore")))
    assert "GET /rooms/RM-A 303" in text  # the access log ran ...
    for token in T.values():
        assert token not in text  # ... without any token
    assert "wrong-token" not in text


def test_pages_render_bars_alerts_and_escape_what_they_show(web) -> None:
    server, _ = web
    cookies = {"nq_token": T["all"]}
    room = httpx.get(f"{server.url}/rooms/RM-A", cookies=cookies, timeout=30).text
    assert '<tr data-participant="PA2" data-level="2">' in room
    assert 'aria-label="level 2"><span class="on">▃</span><span class="on">▄</span>' in room
    assert "bandwidth" in room and "room degraded" in room
    region = httpx.get(f"{server.url}/regions/eu-west", cookies=cookies, timeout=30).text
    assert 'href="/rooms/RM-A"' in region and "room degraded" in region
    hostile = httpx.get(f"{server.url}/rooms/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
                        cookies=cookies, timeout=30)
    assert hostile.status_code == 200
    assert "<img" not in hostile.text
    assert "Room &lt;img src=x onerror=alert(1)&gt;" in hostile.text


def test_level_event_helper_round_trips(web) -> None:
    raw = level_event("PA2", "RM-A", 1, 2, NOW_MS)
    assert msgspec.json.decode(raw)["video"]["send"] == 2


def test_feed_resumes_after_last_event_id_with_missed_changes_then_the_snapshot(web) -> None:
    server, _ = web
    headers = {"Authorization": f"Bearer {T['all']}", "Last-Event-ID": str(NOW_MS - 300_000)}
    with httpx.stream("GET", f"{server.url}/api/rooms/RM-A/feed?verbosity=2", headers=headers,
                      timeout=30) as response:
        events = [e for e in read_events(response.iter_lines(), 2) if e["event"] != "ping"]
    replayed, snapshot = events
    assert replayed["event"] == "level" and replayed["data"]["replayed"] is True
    # only PA2's change 2 minutes ago is after the resume point; PA1's is 20 minutes old
    assert (replayed["data"]["eventId"], replayed["data"]["level"]) == ("PA2:2", 2)
    assert replayed["data"]["video"] == {"send": 2, "recv": None}
    assert snapshot["event"] == "snapshot"
    assert {p["participantSid"] for p in snapshot["data"]["participants"]} == {"PA1", "PA2"}
    # a resume point that is not an event time is ignored: just the snapshot
    headers["Last-Event-ID"] = "garbage"
    with httpx.stream("GET", f"{server.url}/api/rooms/RM-A/feed", headers=headers,
                      timeout=30) as response:
        first = [e for e in read_events(response.iter_lines(), 1) if e["event"] != "ping"]
    assert [e["event"] for e in first] == ["snapshot"]


def test_feed_of_a_room_without_levels_yet_starts_with_an_empty_snapshot(web) -> None:
    server, _ = web
    headers = {"Authorization": f"Bearer {T['all']}"}
    with httpx.stream("GET", f"{server.url}/api/rooms/RM-new/feed", headers=headers,
                      timeout=30) as response:
        assert response.status_code == 200
        first = [e for e in read_events(response.iter_lines(), 1) if e["event"] != "ping"]
    assert first[0]["event"] == "snapshot" and first[0]["data"]["participants"] == []
