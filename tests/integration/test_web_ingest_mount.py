"""`netquality web` serves the HTTP ingest under /ingest when ingest tokens are configured."""

from __future__ import annotations

import msgspec
from starlette.testclient import TestClient

from pipelines.contracts import decode_stats
from pipelines.testing import scripted_session
from pipelines.web import create_app
from pipelines.web.server import ingest_parts

INGEST_TOKEN = "ingest-token-for-the-mount-test"
WEB_TOKEN = "web-token-0123456789abcdef"


def test_ingest_is_mounted_beside_the_api_only_with_tokens(worker_settings, migrated, kafka_io):
    settings = worker_settings.with_overrides(
        database_url=migrated.url,
        ingest_tokens=INGEST_TOKEN,
        web_tokens=f"{WEB_TOKEN}=*",
    )
    routes, services = ingest_parts(settings)
    assert len(routes) == 1 and len(services) == 1
    assert ingest_parts(settings.with_overrides(ingest_tokens=None)) == ([], [])

    app = create_app(settings, extra_routes=routes, services=services)
    sample = msgspec.to_builtins(scripted_session()[0])
    with TestClient(app) as client:  # the lifespan starts the ingest's producer
        denied = client.post("/ingest/v1/samples", json=sample)
        assert denied.status_code == 401
        # A web API token is not an ingest token: the two are separate secrets.
        wrong = client.post(
            "/ingest/v1/samples", json=sample, headers={"Authorization": f"Bearer {WEB_TOKEN}"}
        )
        assert wrong.status_code == 401
        ok = client.post(
            "/ingest/v1/samples", json=sample, headers={"Authorization": f"Bearer {INGEST_TOKEN}"}
        )
        assert ok.status_code == 200, ok.text
        assert client.get("/ingest/netquality-stats.js").status_code == 200
        assert client.get("/healthz").status_code == 200
    records = kafka_io.read(worker_settings.topic_stats, until=lambda r: len(r) >= 1, timeout=30)
    assert decode_stats(records[0].value).participant_sid == sample["participantSid"]
