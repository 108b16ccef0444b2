"""Batch envelopes: grouping by partition, limits, order, and the publisher's validation."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.clients import (
    BATCH_SCHEMA,
    GetStatsSampler,
    pack_envelopes,
    partition_for,
    validate_sample,
)
from pipelines.contracts import ContractError, encode
from pipelines.streaming.levels import default_partition
from pipelines.testing import scripted_session

SIDS = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20)


@given(st.lists(SIDS, min_size=1, max_size=30, unique=True), st.integers(1, 64))
def test_partition_for_is_kafkas_default_partitioner(sids, partitions):
    for sid in sids:
        assert partition_for(sid, partitions) == default_partition(sid.encode(), partitions)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([f"PA{i}" for i in range(12)]),
                       st.integers(min_value=0, max_value=400)), min_size=1, max_size=300),
    st.integers(1, 8), st.integers(1, 20), st.integers(200, 4000),
)
def test_envelopes_respect_partition_limits_and_order(items, partitions, max_samples, max_bytes):
    samples = [(sid, json.dumps({"p": sid, "n": i, "pad": "x" * pad}).encode())
               for i, (sid, pad) in enumerate(items)]
    envelopes = pack_envelopes(samples, partitions, max_samples=max_samples, max_bytes=max_bytes)
    unpacked = []
    for env in envelopes:
        decoded = json.loads(env.value)
        assert decoded["schema"] == BATCH_SCHEMA
        inner = decoded["samples"]
        assert 1 <= len(inner) <= max_samples
        assert len(env.value) <= max_bytes or len(inner) == 1  # one oversized sample travels alone
        assert env.key == inner[0]["p"].encode()
        assert {partition_for(s["p"], partitions) for s in inner} == {env.partition}
        unpacked.extend(inner)
    assert sorted(s["n"] for s in unpacked) == list(range(len(samples)))
    for sid in {sid for sid, _ in items}:  # each participant's samples keep their order
        ns = [s["n"] for s in unpacked if s["p"] == sid]
        assert ns == sorted(ns)


def test_validation_accepts_every_form_and_names_the_problem():
    sample = scripted_session()[0]
    assert validate_sample(sample) == sample
    assert validate_sample(msgspec.to_builtins(sample)) == sample
    assert validate_sample(encode(sample)) == sample
    assert validate_sample(encode(sample).decode()) == sample
    broken = msgspec.structs.replace(sample, seq=-5)  # constructors do not check bounds
    with pytest.raises(ContractError) as exc:
        validate_sample(broken)
    assert exc.value.code == "invalid_field" and "$.seq" in exc.value.message
    with pytest.raises(ContractError, match="not JSON-serialisable"):
        validate_sample({"schema": object()})
    with pytest.raises(ContractError, match="got int"):
        validate_sample(5)  # type: ignore[arg-type]


def test_getstats_sampler_counts_seq_and_maps_w3c_states():
    report = {"T": {"id": "T", "type": "transport", "timestamp": 1000.0}}
    sampler = GetStatsSampler("RM", "PA", "eu1")
    first = sampler.sample(report)
    second = sampler.sample(report, w3c_state="disconnected")
    assert (first.seq, second.seq) == (1, 2)
    assert (first.connection_state, second.connection_state) == ("connected", "reconnecting")
    assert first.timestamp == 1000


def test_getstats_sampler_passes_the_muted_tracks_on():
    report = {
        "T": {"id": "T", "type": "transport", "timestamp": 1000.0},
        "S": {"id": "S", "type": "media-source", "kind": "video", "trackIdentifier": "cam"},
        "O": {"id": "O", "type": "outbound-rtp", "kind": "video", "ssrc": 1, "bytesSent": 900,
              "packetsSent": 3, "mediaSourceId": "S"},
    }  # fmt: skip
    sampler = GetStatsSampler("RM", "PA", "eu1")
    assert sampler.sample(report).outbound[0].muted is None
    assert sampler.sample(report, muted_tracks=frozenset({"cam"})).outbound[0].muted is True
