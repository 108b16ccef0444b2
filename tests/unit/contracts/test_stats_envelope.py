"""The batch envelope on the stats topic: valid samples through, each invalid one named."""

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.contracts import (
    MAX_BATCH_BYTES,
    MAX_BATCH_SAMPLES,
    ContractError,
    StatsBatch,
    decode_stats,
    decode_stats_message,
    encode,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "schemas" / "examples"
VALID = json.loads((EXAMPLES / "netquality.stats.v1/valid/video-send-recv.json").read_text())
BATCH = "netquality.stats.batch.v1"


def _sample(seq: int, sid: str = "PA01") -> dict:
    return {**VALID, "participantSid": sid, "seq": seq, "timestamp": VALID["timestamp"] + seq}


def _envelope(samples: list, *, schema_first: bool = True) -> bytes:
    body = {"schema": BATCH, "samples": samples}
    if not schema_first:
        body = {"samples": samples, "schema": BATCH}
    return json.dumps(body).encode()


def test_bare_sample_decodes_as_before() -> None:
    raw = json.dumps(VALID).encode()
    message = decode_stats_message(raw)
    assert message.envelope is False
    assert message.samples == [decode_stats(raw)]
    assert message.rejected == []


def test_envelope_keeps_sample_order_whatever_the_key_order() -> None:
    samples = [_sample(1, "PA01"), _sample(1, "PA02"), _sample(2, "PA01")]
    for raw in (_envelope(samples), _envelope(samples, schema_first=False)):
        message = decode_stats_message(raw)
        assert message.envelope is True
        assert [(s.participant_sid, s.seq) for s in message.samples] == [
            ("PA01", 1),
            ("PA02", 1),
            ("PA01", 2),
        ]


def test_msgspec_encoded_envelope_round_trips() -> None:
    batch = StatsBatch(schema=BATCH, samples=[decode_stats(json.dumps(_sample(i))) for i in (1, 2)])
    message = decode_stats_message(encode(batch))
    assert message.samples == batch.samples


def test_invalid_samples_are_rejected_one_by_one_with_their_index() -> None:
    bad_seq = {**_sample(2), "seq": "two"}
    raw = _envelope([_sample(1), bad_seq, 17, _sample(3), {**_sample(4), "schema": "x"}])
    message = decode_stats_message(raw)
    assert [s.seq for s in message.samples] == [1, 3]
    reasons = {r.index: (r.error.code, r.error.message) for r in message.rejected}
    assert set(reasons) == {1, 2, 4}
    assert reasons[1][0] == "invalid_field" and "$.samples[1].seq" in reasons[1][1]
    assert "$.samples[2]" in reasons[2][1]
    assert reasons[4][0] == "unknown_schema" and "$.samples[4].schema" in reasons[4][1]
    assert json.loads(message.rejected[0].original) == bad_seq


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"schema":"netquality.stats.batch.v1","samples":[', "invalid_json"),
        (b'{"schema":"netquality.stats.batch.v1","samples":[]}', "invalid_field"),
        (b'{"schema":"netquality.stats.batch.v1"}', "invalid_field"),
        (b'{"schema":"netquality.stats.v9","samples":[]}', "unknown_schema"),
        (b'{"schema":"netquality.stats.v1"}', "invalid_field"),
    ],
)
def test_unusable_messages_are_rejected_whole(raw: bytes, code: str) -> None:
    with pytest.raises(ContractError) as caught:
        decode_stats_message(raw)
    assert caught.value.code == code


def test_envelope_limits() -> None:
    small = {k: VALID[k] for k in ("schema", "roomSid", "region", "connectionState")}
    many = [{**small, "participantSid": "P", "seq": i, "timestamp": i} for i in range(1001)]
    assert len(decode_stats_message(_envelope(many[:MAX_BATCH_SAMPLES])).samples) == 1000
    with pytest.raises(ContractError) as caught:
        decode_stats_message(_envelope(many))
    assert caught.value.code == "invalid_field" and "1000" in caught.value.message

    padded = _envelope([{**_sample(1), "padding": "x" * MAX_BATCH_BYTES}])
    with pytest.raises(ContractError) as caught:
        decode_stats_message(padded)
    assert caught.value.code == "too_large"

    big_bare = json.dumps({**_sample(1), "padding": "x" * 200_000}).encode()
    with pytest.raises(ContractError) as caught:
        decode_stats_message(big_bare)
    assert caught.value.code == "too_large"


@given(st.lists(st.booleans(), min_size=1, max_size=30))
def test_valid_samples_pass_and_exactly_the_invalid_ones_are_named(valid: list[bool]) -> None:
    items = [_sample(i) if ok else {**_sample(i), "seq": -1} for i, ok in enumerate(valid)]
    message = decode_stats_message(_envelope(items))
    assert [s.seq for s in message.samples] == [i for i, ok in enumerate(valid) if ok]
    assert [r.index for r in message.rejected] == [i for i, ok in enumerate(valid) if not ok]
    for r in message.rejected:
        assert f"$.samples[{r.index}]" in r.error.message
        assert msgspec.json.decode(r.original)["seq"] == -1
