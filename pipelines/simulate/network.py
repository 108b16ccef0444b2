"""One participant's network, second by second: trace capacity plus loss, RTT and jitter models.

Capacity comes from a real trace (:mod:`pipelines.simulate.traces`). The rest are small,
well-known models, each seeded per participant so runs are reproducible:

- **loss**: a two-state Gilbert-Elliott chain (Gilbert 1960, Elliott 1963), the usual model of
  bursty Internet loss: rare short bursts of several % loss over a low background rate;
- **RTT**: a base by region (the distance to the media server) plus the access network's RTT
  (drawn from the 5Gophers RTT samples) plus queueing delay once demand exceeds capacity
  (a bottleneck buffer filling: delay grows with the overload, capped like a real buffer);
- **jitter**: a per-participant floor with lognormal noise plus a share of the queueing delay;
- **overflow loss**: when demand exceeds capacity before the sender's congestion control adapts,
  part of the excess is dropped at the bottleneck.

Scripted impairments (a collapse, a loss burst) multiply capacity and add loss on top.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from pipelines.simulate.traces import Trace

REGION_BASE_RTT_S: dict[str, float] = {"eu-west": 0.020, "us-east": 0.030, "ap-south": 0.070}
"""One-way-doubled distance to the region's media server; ap-south users often reach servers
farther away (typical Mumbai-Singapore ~60-70 ms)."""
DEFAULT_BASE_RTT_S = 0.040
QUEUE_DELAY_PER_OVERLOAD_S = 0.25
"""Seconds of extra delay per unit of overload (demand/capacity - 1): a ~250 ms buffer at 2x."""
MAX_QUEUE_DELAY_S = 0.6
OVERFLOW_LOSS_SHARE = 0.08
"""Share of the excess traffic dropped at the bottleneck. Excess exists only while the bandwidth
estimate lags a falling capacity (senders and the SFU send at most their estimate), and it hits
video only: audio is paced first and its 32 kbit/s fits every buffer."""
BWE_SMOOTHING = 0.5
"""Weight of the new capacity in the sender's bandwidth estimate (GCC reacts within ~1-2 s)."""


@dataclass(frozen=True, slots=True)
class GilbertElliott:
    """Bursty loss: per-second transition probabilities and the loss rate in each state."""

    p_good_to_bad: float = 0.004
    p_bad_to_good: float = 0.4
    loss_good: float = 0.002
    loss_bad: float = 0.08


@dataclass(frozen=True, slots=True)
class Impairment:
    """A scripted change to the network for a while (1.0 and 0.0 mean "none")."""

    capacity_factor: float = 1.0
    extra_loss: float = 0.0
    extra_rtt_s: float = 0.0


NO_IMPAIRMENT = Impairment()


@dataclass(frozen=True, slots=True)
class LinkSecond:
    """What the network did during one second, in both directions."""

    uplink_bps: float
    downlink_bps: float
    estimate_up_bps: float
    """The sender's bandwidth estimate (availableOutgoingBitrate): capacity, smoothed."""
    estimate_down_bps: float
    """The SFU's estimate of this participant's downlink: what it forwards at most."""
    loss_up: float
    loss_down: float
    overflow_up: float
    """Extra loss of video sent up (the estimate above a falling capacity)."""
    overflow_down: float
    rtt_s: float
    jitter_up_s: float
    jitter_down_s: float


class Network:
    """A participant's link: real capacity traces each way, seeded loss/RTT/jitter models."""

    def __init__(
        self,
        rng: random.Random,
        down: Trace,
        up: Trace,
        *,
        uplink_ratio: float,
        region: str,
        access_rtt_s: float,
        loss: GilbertElliott,
        jitter_floor_s: float,
    ) -> None:
        self.rng = rng
        self.down, self.up = down, up
        self.down_offset = rng.randrange(len(down.capacity_bps))
        self.up_offset = rng.randrange(len(up.capacity_bps))
        self.uplink_ratio = uplink_ratio
        self.base_rtt_s = REGION_BASE_RTT_S.get(region, DEFAULT_BASE_RTT_S) + access_rtt_s
        self.loss = loss
        self.jitter_floor_s = jitter_floor_s
        self.bad = False
        self.estimate_up = -1.0
        self.estimate_down = -1.0

    def step(
        self,
        second: int,
        demand_up_bps: float,
        demand_down_bps: float,
        impairment: Impairment = NO_IMPAIRMENT,
    ) -> LinkSecond:
        """Advance one second given what the participant tries to send and receive."""
        rng = self.rng
        factor = impairment.capacity_factor
        down = self.down.at(second + self.down_offset) * factor
        up = self.up.at(second + self.up_offset) * self.uplink_ratio * factor
        self.estimate_up = estimate_up = _smooth(self.estimate_up, up)
        self.estimate_down = estimate_down = _smooth(self.estimate_down, down)

        ge = self.loss
        self.bad = (rng.random() >= ge.p_bad_to_good) if self.bad else (
            rng.random() < ge.p_good_to_bad
        )
        base_loss = ge.loss_bad if self.bad else ge.loss_good
        base_loss *= rng.uniform(0.5, 1.5)

        overload_up = max(min(demand_up_bps, estimate_up) / up - 1.0, 0.0)
        overload_down = max(min(demand_down_bps, estimate_down) / down - 1.0, 0.0)
        queue_s = min(QUEUE_DELAY_PER_OVERLOAD_S * max(overload_up, overload_down),
                      MAX_QUEUE_DELAY_S)
        rtt = self.base_rtt_s * rng.uniform(0.95, 1.1) + queue_s + impairment.extra_rtt_s

        def jitter() -> float:
            noise = math.exp(rng.gauss(0.0, 0.35))
            return self.jitter_floor_s * noise + 0.1 * queue_s

        return LinkSecond(
            uplink_bps=up,
            downlink_bps=down,
            estimate_up_bps=estimate_up,
            estimate_down_bps=estimate_down,
            loss_up=min(base_loss + impairment.extra_loss, 1.0),
            loss_down=min(base_loss + impairment.extra_loss, 1.0),
            overflow_up=OVERFLOW_LOSS_SHARE * overload_up / (1 + overload_up),
            overflow_down=OVERFLOW_LOSS_SHARE * overload_down / (1 + overload_down),
            rtt_s=rtt,
            jitter_up_s=jitter(),
            jitter_down_s=jitter(),
        )


def _smooth(previous: float, capacity: float) -> float:
    """One step of the bandwidth estimate following capacity (GCC-like lag)."""
    if previous < 0:
        return capacity
    return BWE_SMOOTHING * capacity + (1 - BWE_SMOOTHING) * previous
