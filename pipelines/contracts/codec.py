"""Decoding and encoding of every contract, with errors a human (and a dead letter) can use.

msgspec decodes and validates in one pass in C, typically 1-3 us per sample, which is what
keeps validation off the hot path's profile.
"""

import re
from typing import Any, NamedTuple, TypeVar

import msgspec

from pipelines.contracts.alert import AlertEvent
from pipelines.contracts.batch import MAX_BATCH_BYTES, STATS_BATCH_SCHEMA, RawStatsBatch, StatsBatch
from pipelines.contracts.deadletter import DeadLetter
from pipelines.contracts.level import LevelEvent
from pipelines.contracts.stats import StatsSample

MAX_MESSAGE_BYTES = 128 * 1024
"""A sample with 64 tracks each way is about 40 KiB; anything far bigger is not a sample."""

MAX_DEADLETTER_BYTES = 512 * 1024
"""A dead letter carries up to 256 KiB of original bytes as base64 (~342 KiB) plus its reason,
so it needs a larger cap than the messages it reports on."""

T = TypeVar("T")


class ContractError(ValueError):
    """Input that does not satisfy a contract.

    ``code`` is stable and low-cardinality (for counting and dead-letter rollups):
    ``too_large``, ``invalid_json``, ``unknown_schema``, ``invalid_field``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, self.message))


_decoders: dict[type, msgspec.json.Decoder[Any]] = {
    kind: msgspec.json.Decoder(kind)
    for kind in (StatsSample, StatsBatch, LevelEvent, AlertEvent, DeadLetter)
}
_size_limits: dict[type, int] = {DeadLetter: MAX_DEADLETTER_BYTES, StatsBatch: MAX_BATCH_BYTES}
_encoder = msgspec.json.Encoder()


def _decode(kind: type[T], data: bytes | str | None) -> T:
    if data is None:
        raise ContractError("invalid_json", "no value (a null/tombstone record)")
    limit = _size_limits.get(kind, MAX_MESSAGE_BYTES)
    if len(data) > limit:
        raise ContractError("too_large", f"message is {len(data)} bytes; the limit is {limit}")
    try:
        return _decoders[kind].decode(data)
    except msgspec.DecodeError as exc:
        raise _contract_error(exc) from None
    except (RecursionError, UnicodeDecodeError) as exc:
        raise _undecodable(exc) from None


def _undecodable(exc: RecursionError | UnicodeDecodeError) -> ContractError:
    """Errors msgspec raises outside ``DecodeError``, which must not crash a consumer."""
    if isinstance(exc, RecursionError):
        # Deeply nested JSON (e.g. 20k levels of objects) exhausts the C decoder's recursion.
        return ContractError("invalid_json", "JSON is nested too deeply")
    # msgspec raises this (not DecodeError) for invalid UTF-8 inside a JSON string.
    return ContractError(
        "invalid_json", f"invalid UTF-8 in a string: {exc.reason} at byte {exc.start}"
    )


def _contract_error(exc: msgspec.DecodeError, prefix: str = "") -> ContractError:
    """msgspec's error as a :class:`ContractError`; ``prefix`` re-roots its JSON path."""
    text = str(exc)
    if not isinstance(exc, msgspec.ValidationError):
        return ContractError("invalid_json", text)
    code = "unknown_schema" if text.endswith("at `$.schema`") else "invalid_field"
    if prefix:
        text = text.replace("`$", f"`${prefix}")
        if "`$" not in text:
            text = f"{text} - at `${prefix}`"
    return ContractError(code, text)


MAX_JSON_DEPTH = 64
"""Deepest nesting a browser dump may have. A getStats report is 3 levels deep inside an
rtcstats line (line array, report object, stat object), a few more with legacy arrays; 64 is
far beyond that and far below the depth at which a recursive decoder runs out of stack."""

_untyped = msgspec.json.Decoder()


def decode_json(data: bytes | str) -> Any:
    """Any JSON document (a browser dump line or report), with the contracts' wording of errors.

    Raises :class:`ContractError` ``invalid_json`` for malformed JSON, bad UTF-8, or nesting
    deeper than :data:`MAX_JSON_DEPTH` (checked before decoding, so 100k ``[`` cost one scan).
    """
    if _nesting_exceeds(data, MAX_JSON_DEPTH):
        raise ContractError("invalid_json", f"JSON is nested more than {MAX_JSON_DEPTH} deep")
    try:
        return _untyped.decode(data)
    except msgspec.DecodeError as exc:
        raise _contract_error(exc) from None
    except (RecursionError, UnicodeDecodeError) as exc:
        raise _undecodable(exc) from None


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _nesting_exceeds(data: bytes | str, limit: int) -> bool:
    """True when the JSON text nests deeper than ``limit``: a pre-check at C speed.

    Only text with ``limit`` openers in all is looked at closer (strings dropped, then the
    brackets alone walked), so the usual dump line costs two ``bytes.count`` calls.
    """
    raw = data.encode() if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > limit:
            return True
    return False


def decode_stats(data: bytes | str | None) -> StatsSample:
    """Decode and validate one ``netquality.stats.v1`` sample."""
    return _decode(StatsSample, data)


def decode_stats_batch(data: bytes | str) -> StatsBatch:
    """Decode and validate one ``netquality.stats.batch.v1`` envelope, every sample strictly."""
    return _decode(StatsBatch, data)


class RejectedSample(NamedTuple):
    """One sample of an envelope that failed its contract, with its position and bytes."""

    index: int
    error: ContractError
    original: bytes


class StatsMessage(NamedTuple):
    """What one message on the stats topic held: a bare sample or an envelope's samples."""

    samples: list[StatsSample]
    rejected: list[RejectedSample]
    envelope: bool


_BATCH_PREFIX = b'{"schema":"' + STATS_BATCH_SCHEMA.encode() + b'"'
_raw_batch_decoder = msgspec.json.Decoder(RawStatsBatch)
_sample_decoder = _decoders[StatsSample]


def decode_stats_message(data: bytes | None) -> StatsMessage:
    """Decode a stats-topic message: a bare ``netquality.stats.v1`` sample or an envelope.

    Raises :class:`ContractError` when the message as a whole is unusable (bad JSON, neither
    schema, over a size or count limit). Invalid samples inside a valid envelope do not
    raise: they come back in ``rejected``, each with a reason naming its index
    (``$.samples[3].seq``), and the valid samples are still returned, in envelope order.
    """
    if data is None:
        raise ContractError("invalid_json", "no value (a null/tombstone record)")
    try:
        return _decode_stats_message(data)
    except (RecursionError, UnicodeDecodeError) as exc:
        raise _undecodable(exc) from None


def _decode_stats_message(data: bytes) -> StatsMessage:
    if not data.startswith(_BATCH_PREFIX):
        try:
            return StatsMessage([decode_stats(data)], [], False)
        except ContractError as exc:
            if exc.code not in ("unknown_schema", "too_large"):
                raise
            as_sample = exc
        try:
            return _decode_envelope(data)
        except ContractError as exc:
            # Neither a sample nor an envelope: report it as the sample it claimed to be.
            raise as_sample if exc.code == "unknown_schema" else exc from None
    return _decode_envelope(data)


def _decode_envelope(data: bytes) -> StatsMessage:
    if len(data) > MAX_BATCH_BYTES:
        raise ContractError(
            "too_large", f"envelope is {len(data)} bytes; the limit is {MAX_BATCH_BYTES}"
        )
    try:  # the common case, every sample valid: one pass in C
        return StatsMessage(_decoders[StatsBatch].decode(data).samples, [], True)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as exc:
        raise _contract_error(exc) from None
    try:
        raw = _raw_batch_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise _contract_error(exc) from None
    samples: list[StatsSample] = []
    rejected: list[RejectedSample] = []
    for index, item in enumerate(raw.samples):
        try:
            samples.append(_sample_decoder.decode(item))
        except msgspec.DecodeError as exc:
            error = _contract_error(exc, f".samples[{index}]")
            rejected.append(RejectedSample(index, error, bytes(item)))
        except (RecursionError, UnicodeDecodeError) as exc:
            rejected.append(RejectedSample(index, _undecodable(exc), bytes(item)))
    return StatsMessage(samples, rejected, True)


def decode_level(data: bytes | str) -> LevelEvent:
    """Decode and validate one ``netquality.level.v1`` event."""
    return _decode(LevelEvent, data)


def decode_alert(data: bytes | str) -> AlertEvent:
    """Decode and validate one ``netquality.alert.v1`` event."""
    return _decode(AlertEvent, data)


def decode_deadletter(data: bytes | str) -> DeadLetter:
    """Decode and validate one ``netquality.deadletter.v1`` record."""
    return _decode(DeadLetter, data)


def encode(message: msgspec.Struct) -> bytes:
    """Encode any contract model as compact JSON (camelCase keys, defaults omitted)."""
    return _encoder.encode(message)
