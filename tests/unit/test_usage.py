"""The pure parts of the commands' error path: format sniffing, nesting limit, broker check."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.adapters.sniff import guess_format
from pipelines.contracts.codec import MAX_JSON_DEPTH, ContractError, _nesting_exceeds, decode_json
from pipelines.demo_data import RTCSTATS
from pipelines.usage import CommandError, ErrorLines, bootstrap_addresses, check_broker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

json_values = st.recursive(
    st.none() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=200,
)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@given(json_values, st.integers(min_value=0, max_value=8))
def test_nesting_check_equals_the_real_depth(value: object, limit: int) -> None:
    """Brackets inside strings (escaped quotes too) never count; every real level does."""
    text = json.dumps(value).encode()
    assert _nesting_exceeds(text, limit) == (_depth(value) > limit)


def test_deep_json_is_refused_before_decoding() -> None:
    for depth in (MAX_JSON_DEPTH + 1, 5_000, 200_000):
        with pytest.raises(ContractError, match="nested more than"):
            decode_json(b"[" * depth + b"]" * depth)
    assert decode_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) is not None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        *((p, "rtcstats") for p in sorted(RTCSTATS.iterdir(), key=lambda d: d.name)),
        *((p, "getstats") for p in sorted((FIXTURES / "getstats").glob("*.json"))),
    ],
    ids=lambda x: x.name if isinstance(x, Path) else x,
)
def test_fixtures_are_recognised(path: Path, expected: str) -> None:
    assert guess_format(path.read_bytes()[:65536]) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'\n{"schema":"netquality.stats.v1","participantSid":"p"}\n', "samples"),
        (b'{"RTCx":{"type":"inbound-rtp","id":"RTCx"}}', "getstats"),
        (b"not json\n", None),
        (b"", None),
        (b'{"participantSid": "p", "cut', None),
        (b"[1, 2]\n", None),
    ],
)
def test_unclear_inputs_get_no_guess(head: bytes, expected: str | None) -> None:
    assert guess_format(head) == expected


def test_bootstrap_addresses() -> None:
    assert bootstrap_addresses("PLAINTEXT://a:9092, b:9093,[::1]:9094") == [
        ("a", 9092), ("b", 9093), ("::1", 9094)
    ]
    with pytest.raises(CommandError, match="bad broker address"):
        bootstrap_addresses("a:port")


def test_broker_check_tries_every_server_then_says_why() -> None:
    tried: list[tuple[str, int]] = []

    def refuse(address: tuple[str, int], timeout: float) -> object:
        tried.append(address)
        raise TimeoutError("timed out")

    with pytest.raises(CommandError, match=r"a:1: timed out; b:2: timed out") as caught:
        check_broker("a:1,b:2", wait_s=3, connect=refuse)
    assert tried == [("a", 1), ("b", 2)] and caught.value.status == 1

    def accept_second(address: tuple[str, int], timeout: float) -> object:
        if address[0] == "a":
            raise ConnectionRefusedError(111, "Connection refused")
        return io.BytesIO()

    check_broker("a:1,b:2", wait_s=3, connect=accept_second)


def test_error_lines_cap_then_count() -> None:
    err = io.StringIO()
    lines = ErrorLines(err, shown=2)
    for i in range(5):
        lines(f"bad {i}")
    lines.close()
    shown = err.getvalue().splitlines()
    assert shown == ["bad 0", "bad 1", "... and 3 more skipped lines not shown"]
    assert lines.count == 5
