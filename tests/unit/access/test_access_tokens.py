"""Participants' access tokens: minting, verification, rotation, and the ingest's 403.

The ingest's checks are decided before anything is published, so they run here without a
broker (a sample that passes every check gets 503: no producer); publishing with a token on
the real broker is in tests/integration/test_access_web.py.
"""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from pipelines.access import (
    AccessTokenError,
    SigningKeys,
    SigningKeysError,
    load_signing_keys,
    mint_access_token,
    parse_ttl,
    verify_access_token,
)
from pipelines.access.tokens import CLOCK_SKEW_S, MAX_TTL_S
from pipelines.cli import main
from pipelines.config import Settings
from pipelines.ingest import IngestService

OLD = "k1=" + "o" * 40
NEW = "k2=" + "n" * 40
KEYS = SigningKeys.parse(OLD, "test")
NOW = 1_800_000_000


def mint(keys: SigningKeys = KEYS, room: str = "RM1", participant: str = "PA1", **kw) -> str:
    return mint_access_token(keys, room_sid=room, participant_sid=participant, **kw)


def test_a_minted_token_names_its_room_participant_expiry_and_key():
    token = mint(ttl_s=600, now=NOW)
    access = verify_access_token(KEYS, token, now=NOW + 1)
    assert (access.room_sid, access.participant_sid) == ("RM1", "PA1")
    assert access.expires_at == NOW + 600 and access.key_id == "k1"
    assert jwt.get_unverified_header(token)["kid"] == "k1"


def test_an_expired_token_is_refused_past_the_clock_skew():
    token = mint(ttl_s=60, now=NOW)
    assert verify_access_token(KEYS, token, now=NOW + 60 + CLOCK_SKEW_S).room_sid == "RM1"
    with pytest.raises(AccessTokenError, match="expired"):
        verify_access_token(KEYS, token, now=NOW + 61 + CLOCK_SKEW_S)
    with pytest.raises(AccessTokenError, match="not valid yet"):
        verify_access_token(KEYS, token, now=NOW - CLOCK_SKEW_S - 1)


def _tamper(token: str, **claims) -> str:
    head, body, sig = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(claims)
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{sig}"


def test_a_tampered_token_fails_its_signature():
    token = mint(now=NOW)
    with pytest.raises(AccessTokenError, match="signature"):
        verify_access_token(KEYS, _tamper(token, room="RM2"), now=NOW)
    with pytest.raises(AccessTokenError, match="signature"):
        verify_access_token(KEYS, _tamper(token, exp=NOW + MAX_TTL_S * 10), now=NOW)
    with pytest.raises(AccessTokenError, match="malformed"):
        verify_access_token(KEYS, "not.a.jwt", now=NOW)


def test_a_token_signed_with_another_secret_under_a_known_kid_is_refused():
    impostor = SigningKeys.parse("k1=" + "x" * 40, "test")
    with pytest.raises(AccessTokenError, match="signature"):
        verify_access_token(KEYS, mint(impostor, now=NOW), now=NOW)


def test_an_unsigned_or_other_algorithm_token_is_refused():
    none = jwt.encode({"sub": "PA1", "room": "RM1", "exp": NOW + 60, "iat": NOW,
                       "iss": "netquality"}, None, algorithm="none", headers={"kid": "k1"})
    with pytest.raises(AccessTokenError, match="HS256"):
        verify_access_token(KEYS, none, now=NOW)


def test_rotation_two_keys_verify_the_first_signs_and_an_unknown_kid_is_refused():
    rotated = SigningKeys.parse(f"{NEW};{OLD}", "test")
    old_token = mint(KEYS, now=NOW)
    new_token = mint(rotated, now=NOW)
    assert jwt.get_unverified_header(new_token)["kid"] == "k2"
    # during the rotation both verify ...
    assert verify_access_token(rotated, old_token, now=NOW).key_id == "k1"
    assert verify_access_token(rotated, new_token, now=NOW).key_id == "k2"
    # ... and once the old key is retired, its tokens name an unknown kid
    retired = SigningKeys.parse(NEW, "test")
    with pytest.raises(AccessTokenError, match="unknown key"):
        verify_access_token(retired, old_token, now=NOW)
    with pytest.raises(AccessTokenError, match="unknown key"):
        verify_access_token(KEYS, new_token, now=NOW)


def test_key_configuration_errors_are_one_line_and_never_show_a_secret(tmp_path):
    for text, fragment in [("k1=short", "shorter than 32"), ("nokid", "kid=secret"),
                           (f"{OLD};{OLD}", "twice"), ("bad kid=" + "s" * 40, "kid=secret")]:
        with pytest.raises(SigningKeysError, match=fragment) as info:
            SigningKeys.parse(text, "NETQUALITY_ACCESS_KEYS")
        assert "o" * 40 not in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(SigningKeysError, match="no access-token keys"):
        SigningKeys.parse("# only a comment", "test")
    assert load_signing_keys(None, None) is None
    path = tmp_path / "keys"
    path.write_text(f"# rotated 2026-12-07\n{NEW}\n{OLD}\n")
    keys = load_signing_keys(None, path)
    assert keys is not None and keys.signing[0] == "k2" and keys.get("k1") is not None
    assert "n" * 40 not in repr(keys)
    with pytest.raises(SigningKeysError, match="No such file"):
        load_signing_keys(None, tmp_path / "missing")


def test_ttl_parsing_and_limits():
    assert [parse_ttl(t) for t in ("90", "90s", "15m", "1h", "1d")] == [90, 90, 900, 3600, 86400]
    for bad in ("0", "2d", "1w", "-5m", "soon"):
        with pytest.raises(ValueError, match="ttl"):
            parse_ttl(bad)
    with pytest.raises(ValueError, match="room_sid"):
        mint(room="")


def test_the_token_command_mints_a_verifiable_token(monkeypatch, capsys):
    monkeypatch.setenv("NETQUALITY_ACCESS_KEYS", f"{NEW};{OLD}")
    assert main(["token", "--room", "RM1", "--participant", "PA1", "--ttl", "1h"]) == 0
    token = capsys.readouterr().out.strip()
    access = verify_access_token(SigningKeys.parse(NEW, "t"), token)
    assert (access.room_sid, access.participant_sid) == ("RM1", "PA1")
    assert access.expires_at - time.time() == pytest.approx(3600, abs=5)


def test_the_token_command_says_what_is_missing_in_one_line(monkeypatch, capsys):
    monkeypatch.delenv("NETQUALITY_ACCESS_KEYS", raising=False)
    monkeypatch.delenv("NETQUALITY_ACCESS_KEYS_FILE", raising=False)
    assert main(["token", "--room", "RM1", "--participant", "PA1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netquality token: no signing key") and err.count("\n") == 1
    monkeypatch.setenv("NETQUALITY_ACCESS_KEYS", OLD)
    assert main(["token", "--room", "RM1", "--participant", "PA1", "--ttl", "3d"]) == 2
    assert "between 1 s and 24 h" in capsys.readouterr().err


# -- the ingest with a participant's token --------------------------------------------------


def ingest(**overrides) -> TestClient:
    settings = Settings().with_overrides(access_keys=f"{NEW};{OLD}", **overrides)
    service = IngestService(settings, tokens=[])  # access tokens only: no operator token
    return TestClient(Starlette(routes=service.routes()))  # no lifespan: no producer


def sample(room: str = "RM1", participant: str = "PA1", seq: int = 1) -> dict:
    return {"schema": "netquality.stats.v1", "roomSid": room, "participantSid": participant,
            "region": "eu1", "timestamp": 1, "seq": seq, "connectionState": "connected"}


def post(client: TestClient, body, token: str):
    return client.post("/v1/samples", json=body, headers={"Authorization": f"Bearer {token}"})


def test_the_ingest_accepts_a_participants_own_samples_only():
    client = ingest()
    token = mint()
    # its own samples pass every check (503 only because this test has no broker)
    assert post(client, [sample(), sample(seq=2)], token).status_code == 503
    wrong_room = post(client, sample(room="RM2"), token)
    assert wrong_room.status_code == 403
    assert "room RM2" in wrong_room.json()["error"]["message"]
    wrong_participant = post(client, [sample(), sample(participant="PA2", seq=2)], token)
    assert wrong_participant.status_code == 403
    assert "participant PA2" in wrong_participant.json()["error"]["message"]


@pytest.mark.parametrize("case", ["expired", "tampered", "unknown kid", "garbage"])
def test_the_ingest_answers_401_for_a_bad_access_token(case):
    token = {
        "expired": mint(ttl_s=60, now=time.time() - 3600),
        "tampered": _tamper(mint(), sub="PA2"),
        "unknown kid": mint(SigningKeys.parse("k9=" + "z" * 40, "t")),
        "garbage": "a.b.c",
    }[case]
    response = post(ingest(), sample(), token)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_operator_tokens_keep_working_beside_access_tokens():
    settings = Settings().with_overrides(access_keys=OLD)
    client = TestClient(Starlette(routes=IngestService(settings, tokens=["op-token"]).routes()))
    # an operator token may post for any participant (services, simulators)
    assert post(client, sample(participant="PA7"), "op-token").status_code == 503
    assert post(client, sample(), "wrong").status_code == 401
    assert post(client, sample(), mint()).status_code == 503
