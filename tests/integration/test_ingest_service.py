"""The HTTP ingest on the real broker: acknowledged samples, per-sample results, dead letters."""

from __future__ import annotations

import base64
import contextlib
import json

import msgspec
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from pipelines.contracts import decode_deadletter, decode_stats, encode
from pipelines.ingest import IngestService, create_ingest_app
from pipelines.testing import scripted_session

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(worker_settings):
    app = create_ingest_app(worker_settings, tokens=[TOKEN, "another"])
    with TestClient(app) as client:  # runs the lifespan: the aiokafka producer connects
        yield client


def test_valid_samples_are_published_keyed_and_acknowledged(client, worker_settings, kafka_io):
    samples = [msgspec.to_builtins(s) for s in scripted_session()[:6]]
    one = client.post("/v1/samples", json=samples[0], headers=AUTH)
    assert one.status_code == 200, one.text
    assert one.json() == {"accepted": 1, "rejected": 0, "failed": 0,
                          "results": [{"index": 0, "ok": True}]}
    many = client.post("/v1/samples", json=samples[1:4], headers=AUTH)
    envelope = {"schema": "netquality.stats.batch.v1", "samples": samples[4:]}
    wrapped = client.post("/v1/samples", json=envelope, headers=AUTH)
    assert (many.status_code, wrapped.status_code) == (200, 200)
    assert many.json()["accepted"] == 3 and wrapped.json()["accepted"] == 2
    records = kafka_io.read(worker_settings.topic_stats, until=lambda r: len(r) >= 6, timeout=10)
    assert sorted(decode_stats(r.value).seq for r in records) == sorted(s["seq"] for s in samples)
    assert all(r.key == decode_stats(r.value).participant_sid.encode() for r in records)
    assert client.app.state.ingest.counts.accepted == 6


def test_mixed_batches_answer_207_and_dead_letter_each_refused_sample(
    client, worker_settings, kafka_io
):
    good = [msgspec.to_builtins(s) for s in scripted_session()[:2]]
    bad = {**good[0], "seq": "one"}
    response = client.post(
        "/v1/samples", content=json.dumps([good[0], bad, good[1], 7]),
        headers={**AUTH, "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 2)
    assert [r["ok"] for r in body["results"]] == [True, False, True, False]
    assert body["results"][1]["error"]["code"] == "invalid_field"
    assert "$.seq" in body["results"][1]["error"]["message"]

    nothing = client.post("/v1/samples", json=[bad], headers=AUTH)
    assert nothing.status_code == 422 and nothing.json()["accepted"] == 0
    broken = client.post("/v1/samples", content=b"[{", headers={**AUTH,
                         "Content-Type": "application/json"})
    assert broken.status_code == 422 and broken.json()["error"]["code"] == "invalid_json"

    letters = [decode_deadletter(r.value) for r in kafka_io.read(
        worker_settings.topic_deadletter, until=lambda r: len(r) >= 4, timeout=10)]
    assert len(letters) == 4
    assert {(d.source.topic, d.error.code) for d in letters} == {
        ("http-ingest", "invalid_field"), ("http-ingest", "invalid_json")}
    prefixes = sorted(d.error.message.split(":")[0] for d in letters)
    assert prefixes[1:] == ["sample 0", "sample 1", "sample 3"]  # [0]: the unparsable body
    originals = [base64.b64decode(d.original) for d in letters]
    assert b"[{" in originals and b"7" in originals
    assert sum(b'"seq":"one"' in o.replace(b" ", b"") for o in originals) == 2
    counts = client.app.state.ingest.counts
    assert counts.dead_letters == 4 and sum(counts.rejected.values()) == 4
    stats = kafka_io.read(worker_settings.topic_stats, until=lambda r: len(r) >= 2, timeout=5)
    assert len(stats) == 2


def test_routes_mount_inside_another_app(worker_settings, kafka_io):
    service = IngestService(worker_settings, tokens=[TOKEN])

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await service.start()
        yield
        await service.stop()

    app = Starlette(routes=[Mount("/ingest", routes=service.routes())], lifespan=lifespan)
    with TestClient(app) as client:
        sample = encode(scripted_session()[0])
        response = client.post("/ingest/v1/samples", content=sample,
                               headers={**AUTH, "Content-Type": "application/json"})
        assert response.status_code == 200
        assert client.get("/ingest/netquality-stats.js").text.startswith("/*")
        assert client.get("/ingest/v1/health").json()["counts"]["accepted"] == 1
