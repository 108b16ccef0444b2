"""HTTP edges of the ingest that are decided before anything is published: auth, content
type, size limits, CORS, static script. (Publishing paths run on the real broker in
tests/integration/test_ingest_service.py.)"""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from pipelines.config import Settings
from pipelines.ingest import BearerTokens, IngestService, NoTokensError, load_tokens

TOKEN = "tok-1"


def make_client(**overrides) -> TestClient:
    options = {"ingest_max_request_bytes": 2048, "ingest_max_samples": 3,
               "ingest_cors_origins": "https://app.example", **overrides}
    settings = Settings().with_overrides(**options)
    service = IngestService(settings, tokens=[TOKEN, "tok-2"])
    return TestClient(Starlette(routes=service.routes()))  # no lifespan: no producer


def post(client: TestClient, body: bytes, **headers: str):
    return client.post("/v1/samples", content=body, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json", **headers})


@pytest.mark.parametrize("auth", [None, "Bearer nope", "Basic tok-1", "Bearer", "tok-1"])
def test_missing_or_wrong_tokens_get_401(auth):
    headers = {"Content-Type": "application/json"} | ({"Authorization": auth} if auth else {})
    response = make_client().post("/v1/samples", content=b"{}", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "tok-1" not in response.text


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_other_content_types_get_415(content_type):
    assert post(make_client(), b"{}", **{"Content-Type": content_type}).status_code == 415


def test_size_limits_give_413():
    client = make_client()
    assert post(client, b"[" + b" " * 3000 + b"]").status_code == 413
    too_many = post(client, b"[{},{},{},{}]")
    assert too_many.status_code == 413
    assert too_many.json()["error"]["code"] == "too_many_samples"


def test_cors_preflight_and_headers_follow_the_allowed_origins():
    client = make_client()
    ok = client.options("/v1/samples", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    assert "Authorization" in ok.headers["access-control-allow-headers"]
    other = client.options("/v1/samples", headers={"Origin": "https://evil.example"})
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
    refused = post(client, b"{}", Authorization="Bearer x", Origin="https://app.example")
    assert refused.headers["access-control-allow-origin"] == "https://app.example"
    star = make_client(ingest_cors_origins="*").options(
        "/v1/samples", headers={"Origin": "https://any.example"})
    assert star.headers["access-control-allow-origin"] == "*"


def test_without_a_producer_valid_requests_get_503_not_a_crash():
    response = post(make_client(), b"[]")
    assert response.status_code == 422  # empty: decided before publishing
    sample = b'{"schema":"netquality.stats.v1","roomSid":"R","participantSid":"P",' \
             b'"region":"r","timestamp":1,"seq":1,"connectionState":"connected"}'
    assert post(make_client(), sample).status_code == 503


def test_the_browser_script_and_self_test_page_are_served():
    client = make_client()
    script = client.get("/netquality-stats.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "sampleFromReport" in script.text
    page = client.get("/loopback")
    assert page.status_code == 200 and 'src="netquality-stats.js"' in page.text


def test_tokens_come_from_the_variable_and_the_file(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("# ops tokens\nfile-token\n\n  second  \n")
    settings = Settings.from_env({"NETQUALITY_INGEST_TOKENS": "a, b,,",
                                  "NETQUALITY_INGEST_TOKENS_FILE": str(path)})
    tokens = load_tokens(settings)
    assert tokens == ["a", "b", "file-token", "second"]
    checker = BearerTokens(tokens)
    assert checker.allows("Bearer second") and checker.allows("bearer a")
    assert not checker.allows("Bearer secon") and not checker.allows("Bearer ")
    assert "file-token" not in repr(checker)
    with pytest.raises(NoTokensError, match="NETQUALITY_INGEST_TOKENS"):
        BearerTokens(load_tokens(Settings()))
    with pytest.raises(NoTokensError, match="cannot be read"):
        load_tokens(Settings().with_overrides(ingest_tokens_file=tmp_path / "missing"))


def test_cli_refuses_to_start_without_tokens_or_broker(monkeypatch, capsys):
    from pipelines.cli import main

    for name in ("NETQUALITY_INGEST_TOKENS", "NETQUALITY_INGEST_TOKENS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert main(["ingest"]) == 2
    assert main(["publish", "-"]) == 2
    assert capsys.readouterr().err.count("set KAFKA_BOOTSTRAP_SERVERS") == 2
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    assert main(["ingest"]) == 2
    assert "no ingest tokens configured" in capsys.readouterr().err
