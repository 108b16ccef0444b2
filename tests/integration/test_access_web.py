"""Participants' access tokens and the Python room client against the real web service.

A real web server (Postgres seeded as the sink writes it, the embedded broker behind the live
feed, the HTTP ingest mounted under /ingest) with access-token keys and an operator token.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import msgspec
import pytest

from pipelines.access import SigningKeys, mint_access_token
from pipelines.clients import RoomFeedError, RoomLevels
from pipelines.contracts import LevelEvent, MediaLevels, decode_stats, encode

KEYS_SETTING = "k2=" + "n" * 40 + ";k1=" + "o" * 40
KEYS = SigningKeys.parse(KEYS_SETTING, "test")
OPERATOR = "tok-all-0123456789abcdef"


@pytest.fixture
def web(sink_settings, migrated, web_servers, web_kit):
    web_kit.seed(migrated.url, int(time.time() * 1000))
    settings = sink_settings.with_overrides(web_tokens=f"{OPERATOR}=*", access_keys=KEYS_SETTING,
                                            web_heartbeat_s=1.0)
    server = web_servers(settings, ingest=True)
    server.wait_ready()
    return server, settings


def token(room: str = "RM-A", participant: str = "PA1", **kw) -> str:
    return mint_access_token(KEYS, room_sid=room, participant_sid=participant, **kw)


def status(url: str, **kw) -> int:
    with httpx.stream("GET", url, timeout=30, **kw) as response:
        return response.status_code  # a feed's body never ends: the status is enough


def test_a_participant_token_reads_its_room_only_and_operator_tokens_keep_working(web):
    server, _ = web
    mine = {"Authorization": f"Bearer {token()}"}
    assert status(f"{server.url}/api/rooms/RM-A/participants", headers=mine) == 200
    assert status(f"{server.url}/api/rooms/RM-B/participants", headers=mine) == 403
    assert status(f"{server.url}/api/regions", headers=mine) == 403
    # the browser's EventSource: the access token in the query, for the feed of its own room
    assert status(f"{server.url}/api/rooms/RM-A/feed?access_token={token()}") == 200
    assert status(f"{server.url}/api/rooms/RM-B/feed?access_token={token()}") == 403
    # another origin (the app's) may read the feed with an access token (CORS, no cookies)
    with httpx.stream("GET", f"{server.url}/api/rooms/RM-A/feed?access_token={token()}",
                      headers={"Origin": "https://app.example"}, timeout=30) as response:
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers
    with httpx.stream("GET", f"{server.url}/api/rooms/RM-A/feed", timeout=30,
                      headers={"Origin": "https://app.example",
                               "Authorization": f"Bearer {OPERATOR}"}) as response:
        assert "access-control-allow-origin" not in response.headers  # dashboards: same origin
    # an operator token is never taken from a URL; in a header it still reads everything
    assert status(f"{server.url}/api/rooms/RM-A/feed?access_token={OPERATOR}") == 401
    assert status(f"{server.url}/api/rooms/RM-B/participants",
                  headers={"Authorization": f"Bearer {OPERATOR}"}) == 200
    expired = token(ttl_s=60, now=time.time() - 3600)
    answer = httpx.get(f"{server.url}/api/rooms/RM-A/participants",
                       headers={"Authorization": f"Bearer {expired}"}, timeout=30)
    assert answer.status_code == 401 and "expired" in answer.json()["message"]
    # the browser bundle is served beside the API
    bundle = httpx.get(f"{server.url}/static/netquality.js", timeout=30)
    assert bundle.status_code == 200 and "root.NetQuality = api" in bundle.text


def test_the_ingest_takes_a_participants_own_samples_and_403s_anyone_elses(web, kafka_io):
    server, settings = web
    sample = {"schema": "netquality.stats.v1", "roomSid": "RM-A", "participantSid": "PA1",
              "region": "eu-west", "timestamp": int(time.time() * 1000), "seq": 1,
              "connectionState": "connected"}
    headers = {"Authorization": f"Bearer {token()}"}
    ok = httpx.post(f"{server.url}/ingest/v1/samples", json=sample, headers=headers, timeout=30)
    assert ok.status_code == 200, ok.text
    other = httpx.post(f"{server.url}/ingest/v1/samples", json={**sample, "participantSid": "PA2"},
                       headers=headers, timeout=30)
    assert other.status_code == 403
    records = kafka_io.read(settings.topic_stats, until=lambda r: len(r) >= 1, timeout=30)
    assert [decode_stats(r.value).participant_sid for r in records] == ["PA1"]


def level_event(sid: str, seq: int, level: int, ts: int, departed: bool = False) -> bytes:
    return encode(LevelEvent(
        schema="netquality.level.v1", event_id=f"{sid}:{seq}", room_sid="RM-A",
        participant_sid=sid, region="eu-west", timestamp=ts, level=level, previous_level=5,
        audio=MediaLevels(send=level), video=MediaLevels(), limited_by="audio.send.latency",
        departed=departed,
    ))


def test_the_room_client_yields_current_levels_first_then_changes_and_departures(
    web, kafka_io
):
    server, settings = web

    async def watch() -> list:
        seen = []
        async with RoomLevels(server.url, "RM-A", token(participant="PA-svc"),
                              verbosity=2) as room:
            async for change in room:
                seen.append(change)
                if len(seen) == 2:  # the snapshot: PA1 and PA2 as seeded
                    ts = int(time.time() * 1000)
                    await asyncio.to_thread(kafka_io.produce, settings.topic_levels, [
                        (b"PA2", level_event("PA2", 7, 1, ts)),
                        (b"PA1", level_event("PA1", 8, 5, ts + 1, departed=True)),
                    ])
                if len(seen) == 4:
                    assert set(room.participants) == {"PA2"}
                    return seen
        return seen

    seen = asyncio.run(asyncio.wait_for(watch(), 60))
    first, live = seen[:2], seen[2:]
    assert {(c.participant_sid, c.level, c.current) for c in first} == {
        ("PA1", 5, True), ("PA2", 2, True)}
    assert first[0].view["video"] is not None or first[1].view["video"] is not None
    # two participants, two partitions: their order between each other is not defined
    assert {(c.participant_sid, c.level, c.previous_level, c.departed) for c in live} == {
        ("PA2", 1, 2, False), ("PA1", None, 5, True)}


def test_the_room_client_stops_with_a_clear_error_for_a_token_of_another_room(web):
    server, _ = web

    async def watch() -> None:
        async with RoomLevels(server.url, "RM-B", token()) as room:
            async for _ in room:
                pass

    with pytest.raises(RoomFeedError, match="answered 403: this token does not cover room RM-B"):
        asyncio.run(asyncio.wait_for(watch(), 60))


def test_level_event_helper_round_trips():
    assert msgspec.json.decode(level_event("PA2", 1, 2, 5))["audio"]["send"] == 2
