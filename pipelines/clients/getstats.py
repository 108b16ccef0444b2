"""Per-participant getStats sampling for publishers: identity and ``seq`` kept in one place.

The mapping itself (one W3C ``RTCStatsReport`` to one sample) lives in
:mod:`pipelines.adapters.getstats` and is shared with ``netquality score`` and the browser
script; this only adds what a long-lived publisher needs around it: a ``seq`` that increases
per participant and the W3C-to-contract connection-state mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.adapters.getstats import map_connection_state, sample_from_report
from pipelines.contracts.stats import StatsSample, Topology


@dataclass
class GetStatsSampler:
    """Turns successive getStats snapshots of one participant into successive samples."""

    room_sid: str
    participant_sid: str
    region: str
    seq: int = 0

    def sample(
        self,
        report: Any,
        *,
        w3c_state: str = "connected",
        timestamp: int | None = None,
        muted_tracks: frozenset[str] = frozenset(),
        topology: Topology | None = None,
    ) -> StatsSample:
        """The next sample; ``w3c_state`` is ``RTCPeerConnection.connectionState`` as is;
        ``muted_tracks``: ids of the local tracks the app muted (their silence is no stall);
        ``topology``: ``"sfu"`` or ``"p2p"``, where the call goes now."""
        self.seq += 1
        return sample_from_report(
            report,
            room_sid=self.room_sid,
            participant_sid=self.participant_sid,
            region=self.region,
            seq=self.seq,
            connection_state=map_connection_state(w3c_state),
            timestamp=timestamp,
            muted_tracks=muted_tracks,
            topology=topology,
        )
