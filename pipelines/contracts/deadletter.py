"""``netquality.deadletter.v1``: input we could not accept, kept with the reason.

Nothing disappears: the original bytes travel base64-encoded (they may not be UTF-8), up to
``MAX_ORIGINAL_BYTES``; ``original_size`` always says how large the input really was.
"""

import base64
from typing import Annotated, Literal, Protocol

import msgspec
from msgspec import Meta

from pipelines.contracts.types import Counter, TimestampMs

DEADLETTER_SCHEMA = "netquality.deadletter.v1"
MAX_ORIGINAL_BYTES = 256 * 1024
"""Keep dead letters well under Kafka's default 1 MiB message limit after base64 (+33 %)."""

CODE_PATTERN = r"^[a-z][a-z0-9_]*(?![\s\S])"
"""The negative lookahead means "end of string" in both Python and ECMA-262 regexes; a bare
``$`` would also match before a trailing newline in Python (msgspec, jsonschema) but not in
JavaScript, so the same code could pass one validator and fail another."""


class DeadLetterSource(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """Where the rejected input came from."""

    topic: Annotated[str, Meta(min_length=1, max_length=249)]
    partition: Annotated[int, Meta(ge=-1)] = -1
    offset: Annotated[int, Meta(ge=-1)] = -1
    key: Annotated[str, Meta(max_length=1024)] | None = None


class DeadLetterError(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """Why it was rejected: a stable ``code`` to count by and a message for humans."""

    code: Annotated[str, Meta(min_length=1, max_length=64, pattern=CODE_PATTERN)]
    message: Annotated[str, Meta(min_length=1, max_length=2000)]


class DeadLetter(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """A rejected message with its reason and provenance."""

    schema: Literal["netquality.deadletter.v1"]
    source: DeadLetterSource
    error: DeadLetterError
    timestamp: TimestampMs
    original: Annotated[str, Meta(max_length=(MAX_ORIGINAL_BYTES * 4) // 3 + 4)]
    original_size: Counter
    truncated: bool = False


def make_dead_letter(
    original: bytes | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    code: str,
    message: str,
    now_ms: int,
) -> DeadLetter:
    """A dead letter for rejected input: the bytes as they came (base64, capped) and why."""
    data = original or b""
    kept = data[:MAX_ORIGINAL_BYTES]
    return DeadLetter(
        schema=DEADLETTER_SCHEMA,
        source=DeadLetterSource(
            topic=topic,
            partition=partition,
            offset=offset,
            key=None if key is None else key[:256].decode("utf-8", "replace"),
        ),
        error=DeadLetterError(code=code, message=message[:2000] or code),
        timestamp=now_ms,
        original=base64.b64encode(kept).decode("ascii"),
        original_size=len(data),
        truncated=len(kept) < len(data),
    )


class ConsumedRecord(Protocol):
    """What every Kafka client's consumed record has (Faust's Message, aiokafka's record)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def dead_letter_for(record: ConsumedRecord, code: str, message: str, now_ms: int) -> DeadLetter:
    """A dead letter for a consumed record that could not be accepted."""
    return make_dead_letter(
        record.value,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        code=code,
        message=message,
        now_ms=now_ms,
    )
