"""The JSON Schema files in ``schemas/`` and the msgspec models must agree.

Client SDKs build against the schema files, the pipeline decodes with the models; if the two
disagree, a client can pass its own validation and still be dead-lettered (or the reverse).
Every example is checked by both, and a property test probes the bounds in between.
"""

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from pipelines.contracts import (
    AlertEvent,
    AlertParticipant,
    BandwidthStats,
    CandidatePair,
    Cause,
    ComponentStats,
    ContractError,
    DeadLetter,
    DeadLetterError,
    DeadLetterSource,
    InboundTrack,
    LatencyStats,
    LevelEvent,
    LossStats,
    MediaLevels,
    OutboundTrack,
    RemoteInbound,
    StatsBatch,
    StatsSample,
    decode_alert,
    decode_deadletter,
    decode_level,
    decode_stats,
    decode_stats_batch,
    encode,
)
from pipelines.contracts.codec import MAX_DEADLETTER_BYTES, MAX_MESSAGE_BYTES
from pipelines.contracts.deadletter import MAX_ORIGINAL_BYTES
from pipelines.contracts.types import MAX_COUNTER

SCHEMAS_DIR = Path(__file__).resolve().parents[3] / "schemas"
EXAMPLES_DIR = SCHEMAS_DIR / "examples"

DECODERS: dict[str, Callable[[bytes | str], msgspec.Struct]] = {
    "netquality.stats.v1": decode_stats,
    "netquality.stats.batch.v1": decode_stats_batch,
    "netquality.level.v1": decode_level,
    "netquality.alert.v1": decode_alert,
    "netquality.deadletter.v1": decode_deadletter,
}

MODELS: dict[str, dict[str, type[msgspec.Struct]]] = {
    "netquality.stats.v1": {
        "": StatsSample,
        "candidatePair": CandidatePair,
        "remoteInbound": RemoteInbound,
        "outboundTrack": OutboundTrack,
        "inboundTrack": InboundTrack,
    },
    "netquality.stats.batch.v1": {"": StatsBatch},
    "netquality.level.v1": {
        "": LevelEvent,
        "cause": Cause,
        "mediaLevels": MediaLevels,
        "componentStats": ComponentStats,
        "bandwidthStats": BandwidthStats,
        "lossStats": LossStats,
        "latencyStats": LatencyStats,
    },
    "netquality.alert.v1": {"": AlertEvent, "alertParticipant": AlertParticipant},
    "netquality.deadletter.v1": {
        "": DeadLetter,
        "source": DeadLetterSource,
        "error": DeadLetterError,
    },
}
"""Schema object ("" for the root, else its ``$defs`` name) to the model it must mirror."""


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def load_json(text: str | bytes) -> Any:
    """Parse like a strict JSON parser: Python's ``json`` would otherwise accept NaN/Infinity."""
    return json.loads(text, parse_constant=_reject_constant)


def _load_schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS_DIR / f"{name}.schema.json").read_text())


SCHEMAS: dict[str, dict[str, Any]] = {name: _load_schema(name) for name in DECODERS}
REGISTRY: Registry = Registry().with_resources(
    (schema["$id"], Resource.from_contents(schema)) for schema in SCHEMAS.values()
)
"""The envelope's ``items`` refer to the stats schema by its ``$id``, as a client SDK would."""
EXTERNAL_REFS: dict[str, type[msgspec.Struct]] = {
    SCHEMAS["netquality.stats.v1"]["$id"]: StatsSample,
}
VALIDATORS: dict[str, Draft202012Validator] = {
    name: Draft202012Validator(schema, format_checker=None, registry=REGISTRY)
    for name, schema in SCHEMAS.items()
}


def _examples(kind: str) -> list[Any]:
    return [
        pytest.param(name, path, id=f"{name}/{path.stem}")
        for name in DECODERS
        for path in sorted((EXAMPLES_DIR / name / kind).glob("*.json"))
    ]


VALID = _examples("valid")
INVALID = _examples("invalid")


def schema_accepts(name: str, data: str | bytes) -> bool:
    """Whether the JSON Schema accepts ``data``; unparsable JSON counts as rejected."""
    try:
        instance = load_json(data)
    except ValueError:
        return False
    return VALIDATORS[name].is_valid(instance)


def model_accepts(name: str, data: str | bytes) -> bool:
    """Whether the msgspec decoder accepts ``data``."""
    try:
        DECODERS[name](data)
    except ContractError:
        return False
    return True


# --- the schema files themselves -------------------------------------------------------------


@pytest.mark.parametrize("name", list(DECODERS))
def test_schema_file_is_valid_draft_2020_12(name: str) -> None:
    schema = SCHEMAS[name]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://netquality.dev/schemas/{name}.schema.json"
    assert schema["properties"]["schema"] == {
        "const": name,
        "description": schema["properties"]["schema"]["description"],
    }


def _objects(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"": schema, **schema.get("$defs", {})}


@pytest.mark.parametrize("name", list(DECODERS))
def test_every_property_has_a_description(name: str) -> None:
    for where, obj in _objects(SCHEMAS[name]).items():
        assert obj.get("title"), f"{name} {where or 'root'} has no title"
        for prop, sub in obj["properties"].items():
            assert sub.get("description"), f"{name} {where or 'root'}.{prop} has no description"


@pytest.mark.parametrize("name", list(DECODERS))
def test_schema_properties_and_required_match_the_models(name: str) -> None:
    """Same field names and the same required set; bounds are covered by the examples."""
    objects = _objects(SCHEMAS[name])
    assert set(objects) == set(MODELS[name]), "every $defs entry maps to one model"
    for where, model in MODELS[name].items():
        fields = msgspec.structs.fields(model)
        assert set(objects[where]["properties"]) == {f.encode_name for f in fields}, where
        assert set(objects[where]["required"]) == {f.encode_name for f in fields if f.required}
        assert objects[where].get("additionalProperties", True) is not False, (
            "models ignore unknown fields, so the schema must allow them"
        )


_CONSTRAINTS = (
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
)


def _alternatives(schema: dict[str, Any], ref_name: Callable[[str], str]) -> set[Any]:
    """Normalise a property schema to the set of alternatives it allows, so that
    ``{"type": ["integer", "null"], ...}`` and msgspec's ``anyOf`` spelling compare equal."""
    if "anyOf" in schema:
        return set().union(*(_alternatives(sub, ref_name) for sub in schema["anyOf"]))
    if "$ref" in schema:
        return {("ref", ref_name(schema["$ref"]))}
    if "const" in schema:
        return {("enum", frozenset([schema["const"]]))}
    if "enum" in schema:
        values = set(schema["enum"])
        return {("enum", frozenset(values - {None}))} | ({("null",)} if None in values else set())
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    bounds = tuple((key, schema[key]) for key in _CONSTRAINTS if key in schema)
    found: set[Any] = set()
    for kind in types:
        extra: tuple[Any, ...] = ()
        if kind == "array":
            extra = (("items", frozenset(_alternatives(schema["items"], ref_name))),)
        if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
            values = _alternatives(schema["additionalProperties"], ref_name)
            extra = (("values", frozenset(values)),)
        found.add(("null",) if kind == "null" else (kind, bounds + extra))
    return found


@pytest.mark.parametrize("name", list(DECODERS))
def test_schema_bounds_match_the_models(name: str) -> None:
    """Types, nullability, enums and every bound of every property, against msgspec's own
    JSON Schema for the models (which reads the ``Meta`` constraints in types.py)."""
    models = MODELS[name]
    (_,), generated = msgspec.json.schema_components([models[""]], ref_template="#/$defs/{name}")
    ours = _objects(SCHEMAS[name])

    def our_ref(ref: str) -> str:
        if ref in EXTERNAL_REFS:
            return EXTERNAL_REFS[ref].__name__
        return models[ref.removeprefix("#/$defs/")].__name__

    def their_ref(ref: str) -> str:
        return ref.removeprefix("#/$defs/")

    for where, model in models.items():
        theirs = generated[model.__name__]["properties"]
        for prop, sub in ours[where]["properties"].items():
            assert _alternatives(sub, our_ref) == _alternatives(theirs[prop], their_ref), (
                f"{name} {where or 'root'}.{prop}"
            )


@pytest.mark.parametrize("name", list(DECODERS))
def test_examples_embedded_in_schema_are_accepted_by_both(name: str) -> None:
    embedded = SCHEMAS[name]["examples"]
    assert embedded
    for example in embedded:
        text = json.dumps(example)
        assert schema_accepts(name, text)
        assert model_accepts(name, text)


@pytest.mark.parametrize("name", list(DECODERS))
def test_enough_examples(name: str) -> None:
    assert len(list((EXAMPLES_DIR / name / "valid").glob("*.json"))) >= 4
    assert len(list((EXAMPLES_DIR / name / "invalid").glob("*.json"))) >= 8


# --- examples ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "path"), VALID)
def test_valid_example_accepted_by_schema_and_model(name: str, path: Path) -> None:
    data = path.read_bytes()
    errors = [e.message for e in VALIDATORS[name].iter_errors(load_json(data))]
    assert errors == []
    decoded = DECODERS[name](data)
    assert decoded.schema == name


@pytest.mark.parametrize(("name", "path"), INVALID)
def test_invalid_example_rejected_by_schema_and_model(name: str, path: Path) -> None:
    data = path.read_bytes()
    assert not schema_accepts(name, data), "the JSON Schema accepted it"
    with pytest.raises(ContractError) as caught:
        DECODERS[name](data)
    assert caught.value.code in {"invalid_field", "unknown_schema"}


@pytest.mark.parametrize(("name", "path"), VALID)
def test_round_trip(name: str, path: Path) -> None:
    """decode -> encode -> decode is lossless, and what we emit satisfies our own schema."""
    first = DECODERS[name](path.read_bytes())
    encoded = encode(first)
    assert DECODERS[name](encoded) == first
    assert VALIDATORS[name].is_valid(load_json(encoded))


# --- error codes and number edge cases ---------------------------------------------------------


def _read_example(name: str, kind: str, stem: str) -> bytes:
    return (EXAMPLES_DIR / name / kind / f"{stem}.json").read_bytes()


def test_contract_error_codes() -> None:
    valid = _read_example("netquality.stats.v1", "valid", "video-send-recv")
    cases = {
        "invalid_json": valid[: len(valid) // 2],
        "unknown_schema": _read_example("netquality.stats.v1", "invalid", "unknown-schema-version"),
        "invalid_field": _read_example("netquality.stats.v1", "invalid", "negative-bytes-sent"),
    }
    for code, data in cases.items():
        with pytest.raises(ContractError) as caught:
            decode_stats(data)
        assert caught.value.code == code, caught.value.message

    padded = load_json(valid)
    padded["padding"] = "x" * MAX_MESSAGE_BYTES
    for data in (json.dumps(padded), json.dumps(padded).encode()):
        with pytest.raises(ContractError) as caught:
            decode_stats(data)
        assert caught.value.code == "too_large"
        assert str(MAX_MESSAGE_BYTES) in caught.value.message


def test_invalid_field_message_names_the_field() -> None:
    with pytest.raises(ContractError) as caught:
        decode_stats(_read_example("netquality.stats.v1", "invalid", "fraction-lost-above-one"))
    assert "$.outbound[0].remote.fractionLost" in caught.value.message


def test_largest_dead_letter_fits_its_own_size_limit() -> None:
    """A dead letter carries up to MAX_ORIGINAL_BYTES of base64, far over MAX_MESSAGE_BYTES."""
    import base64

    letter = load_json(_read_example("netquality.deadletter.v1", "valid", "invalid-json"))
    letter["original"] = base64.b64encode(b"\xff" * MAX_ORIGINAL_BYTES).decode()
    letter["truncated"] = True
    data = json.dumps(letter)
    assert MAX_MESSAGE_BYTES < len(data) <= MAX_DEADLETTER_BYTES
    assert schema_accepts("netquality.deadletter.v1", data)
    assert decode_deadletter(data).truncated is True


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_rejected(literal: str) -> None:
    text = _read_example("netquality.stats.v1", "valid", "video-send-recv").decode()
    text = text.replace('"currentRoundTripTime": 0.045', f'"currentRoundTripTime": {literal}')
    assert literal in text
    with pytest.raises(ContractError) as caught:
        decode_stats(text)
    assert caught.value.code == "invalid_json"
    assert not schema_accepts("netquality.stats.v1", text)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"currentRoundTripTime": 0.045', '"currentRoundTripTime": 1e999'),
        ('"targetBitrate": 1200000', '"targetBitrate": 1e999'),
        ('"seq": 17', '"seq": 1e999'),
        ('"fractionLost": 0.0', '"fractionLost": -1e999'),
    ],
)
def test_overflowing_numbers_rejected(old: str, new: str) -> None:
    text = _read_example("netquality.stats.v1", "valid", "video-send-recv").decode()
    assert old in text
    text = text.replace(old, new, 1)
    with pytest.raises(ContractError) as caught:
        decode_stats(text)
    assert caught.value.code == "invalid_field"
    assert not schema_accepts("netquality.stats.v1", text)


def test_integral_float_for_integer_field_is_a_documented_difference() -> None:
    """JSON Schema counts ``17.0`` as an integer; msgspec (and so the pipeline) does not.

    No JSON Schema keyword can tell ``17`` from ``17.0``, so schemas/README.md tells client
    authors to write integers without a fraction. If either side changes, update the README.
    """
    text = _read_example("netquality.stats.v1", "valid", "minimal").decode()
    text = text.replace('"seq": 1,', '"seq": 1.0,')
    assert '"seq": 1.0,' in text
    assert schema_accepts("netquality.stats.v1", text)
    assert not model_accepts("netquality.stats.v1", text)


# --- property test: schema and model agree around the bounds -----------------------------------

_OMIT = object()
"""Marks an optional field to leave out of the generated sample."""

_COUNTER_OUTSIDE = [-1, MAX_COUNTER + 1, 2**64, True, 1.5, "1"]
"""Values no ``Counter`` may take: just below/above the bounds, bool, fraction, string."""


def _float_outside(high: float) -> list[Any]:
    return [math.nextafter(high, math.inf), math.nextafter(0.0, -math.inf), -1, high * 2, False]


def _counters() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(0, 10**6), st.sampled_from([0, MAX_COUNTER]))


def _bounded(high: float) -> st.SearchStrategy[float | int]:
    """Inside ``[0, high]``, bounds included; integers too, since float fields accept them."""
    return st.one_of(
        st.floats(0, high, allow_nan=False), st.integers(0, int(high)), st.sampled_from([0, high])
    )


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, st.none(), st.just(_OMIT))


def _drop_omitted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_omitted(v) for k, v in value.items() if v is not _OMIT}
    if isinstance(value, list):
        return [_drop_omitted(v) for v in value]
    return value


_remote = st.fixed_dictionaries(
    {
        "packetsLost": _maybe(_counters()),
        "fractionLost": _maybe(_bounded(1.0)),
        "jitter": _maybe(_bounded(60.0)),
        "roundTripTime": _maybe(_bounded(60.0)),
    }
)
_outbound = st.fixed_dictionaries(
    {
        "trackSid": st.sampled_from(["MT01", "M" * 128]),
        "kind": st.sampled_from(["audio", "video"]),
        "bytesSent": _counters(),
        "packetsSent": _counters(),
        "targetBitrate": _maybe(_bounded(1e11)),
        "frameWidth": _maybe(st.integers(0, 16384)),
        "framesPerSecond": _maybe(_bounded(1000.0)),
        "qualityLimitationReason": _maybe(st.sampled_from(["none", "cpu", "bandwidth", "other"])),
        "remote": _maybe(_remote),
    }
).map(_drop_omitted)
_inbound = st.fixed_dictionaries(
    {
        "trackSid": st.just("MT09"),
        "kind": st.sampled_from(["audio", "video"]),
        "bytesReceived": _counters(),
        "packetsReceived": _counters(),
        "packetsLost": _counters(),
        "jitter": _maybe(_bounded(60.0)),
        "expectedBitrate": _maybe(_bounded(1e11)),
    }
).map(_drop_omitted)
_valid_samples = st.fixed_dictionaries(
    {
        "schema": st.just("netquality.stats.v1"),
        "roomSid": st.sampled_from(["RM01", "R" * 128]),
        "participantSid": st.just("PA01"),
        "region": st.sampled_from(["us1", "r" * 64]),
        "timestamp": _counters(),
        "seq": _counters(),
        "connectionState": st.sampled_from(["connected", "reconnecting", "closed"]),
        "candidatePair": _maybe(
            st.fixed_dictionaries(
                {
                    "availableOutgoingBitrate": _maybe(_bounded(1e11)),
                    "availableIncomingBitrate": _maybe(_bounded(1e11)),
                    "currentRoundTripTime": _maybe(_bounded(60.0)),
                }
            )
        ),
        "outbound": st.one_of(st.lists(_outbound, max_size=3), st.just(_OMIT)),
        "inbound": st.one_of(st.lists(_inbound, max_size=3), st.just(_OMIT)),
        "extra": st.one_of(st.just(_OMIT), st.integers(), st.none()),
    }
).map(_drop_omitted)

_OUTSIDE: dict[str, list[Any]] = {
    "timestamp": _COUNTER_OUTSIDE,
    "seq": _COUNTER_OUTSIDE,
    "bytesSent": _COUNTER_OUTSIDE,
    "packetsSent": _COUNTER_OUTSIDE,
    "bytesReceived": _COUNTER_OUTSIDE,
    "packetsReceived": _COUNTER_OUTSIDE,
    "packetsLost": _COUNTER_OUTSIDE,
    "fractionLost": _float_outside(1.0),
    "jitter": _float_outside(60.0),
    "roundTripTime": _float_outside(60.0),
    "currentRoundTripTime": _float_outside(60.0),
    "targetBitrate": _float_outside(1e11),
    "expectedBitrate": _float_outside(1e11),
    "availableOutgoingBitrate": _float_outside(1e11),
    "availableIncomingBitrate": _float_outside(1e11),
    "framesPerSecond": _float_outside(1000.0),
    "frameWidth": [-1, 16385, 640.5, True],
    "roomSid": ["", "R" * 129],
    "region": ["", "r" * 65],
    "schema": ["netquality.stats.v2"],
}
"""For each field name, values just outside what the contract allows."""


def _slots(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], list[Any]]]:
    """Every place in ``value`` a field from ``_OUTSIDE`` sits, with its outside values."""
    found: list[tuple[tuple[Any, ...], list[Any]]] = []
    if isinstance(value, dict):
        for key, sub in value.items():
            if key in _OUTSIDE and (path or key != "extra"):
                found.append(((*path, key), _OUTSIDE[key]))
            found.extend(_slots(sub, (*path, key)))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            found.extend(_slots(sub, (*path, index)))
    return found


@st.composite
def stats_samples(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    """A StatsSample-shaped dict and whether it should be accepted.

    Start from a valid sample and push zero to two fields just outside their bounds (or the
    track list just over ``MAX_TRACKS``), so both outcomes and the edges are well covered.
    """
    sample = draw(_valid_samples)
    broken = False
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.integers(0, 9)) == 0:
            track = draw(_inbound)
            sample["inbound"] = [track] * 65
        else:
            path, outside = draw(st.sampled_from(_slots(sample)))
            target = sample
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = draw(st.sampled_from(outside))
        broken = True
    if not broken and draw(st.booleans()):
        sample["inbound"] = [draw(_inbound)] * 64
    return sample, not broken


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stats_samples())
def test_schema_and_model_agree_on_generated_samples(case: tuple[dict[str, Any], bool]) -> None:
    sample, should_accept = case
    text = json.dumps(sample, allow_nan=False)
    assert schema_accepts("netquality.stats.v1", text) is should_accept, text[:2000]
    assert model_accepts("netquality.stats.v1", text) is should_accept, text[:2000]
