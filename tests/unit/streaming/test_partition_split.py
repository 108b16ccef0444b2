"""PartitionOf.split: the same answer as asking each sample's partition."""

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.harness.inputs import bench_samples
from pipelines.streaming.levels import PartitionOf, default_partition

SAMPLES = bench_samples(120, 60, seed=11)


@settings(max_examples=60, deadline=None)
@given(
    picks=st.lists(st.integers(0, len(SAMPLES) - 1), min_size=1, max_size=40),
    partition=st.integers(0, 3),
)
def test_split_agrees_with_each_samples_own_partition(picks, partition) -> None:
    partition_of = PartitionOf(4)
    samples = [SAMPLES[i] for i in picks]
    ours, others = partition_of.split(samples, partition)

    def exact(s) -> int:
        return default_partition(s.participant_sid.encode(), 4)

    assert ours == [s for s in samples if exact(s) == partition]
    assert others == [s for s in samples if exact(s) != partition]


def test_all_in_place_returns_the_same_list() -> None:
    partition_of = PartitionOf(4)
    samples = [s for s in SAMPLES if partition_of(s.participant_sid) == 2]
    ours, others = partition_of.split(samples, 2)
    assert ours is samples and others == []
