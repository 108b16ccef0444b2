"""Metric -> 0..100 score functions (pure, scalar, allocation-free).

Each returns ``None``-free floats; callers decide whether a metric was measured at all.
The formulas and their sources are documented on :class:`~pipelines.quality.thresholds.Thresholds`.
"""

from __future__ import annotations

from pipelines.quality.thresholds import Thresholds


def loss_score(fraction_lost: float, weight: float) -> float:
    """100 - weight x loss%, floored at 0 (LiveKit's packet-loss effect)."""
    score = 100.0 - weight * fraction_lost * 100.0
    return score if score > 0.0 else 0.0


def latency_score(rtt_s: float, jitter_s: float, th: Thresholds) -> float:
    """Simplified E-model delay effect on effective one-way delay RTT/2 + 2 x jitter."""
    delay_ms = rtt_s * 500.0 + jitter_s * 2000.0
    if delay_ms <= th.delay_knee_ms:
        effect = delay_ms * th.delay_slope_low
    else:
        effect = (delay_ms - th.delay_offset_high_ms) * th.delay_slope_high
    score = 100.0 - effect
    return score if score > 0.0 else 0.0


def bandwidth_score(capacity_bps: float, demand_bps: float, th: Thresholds) -> float:
    """Share of the demanded bitrate the network carries, as 0..100."""
    if demand_bps <= 0.0:
        return 100.0
    score = 100.0 * capacity_bps / (demand_bps * th.bandwidth_full_score_ratio)
    if score > 100.0:
        return 100.0
    return score if score > 0.0 else 0.0


def decay(value: float, elapsed_s: float, half_life_s: float) -> float:
    """Exponential decay of a remembered value (demand memory)."""
    if elapsed_s <= 0.0:
        return value
    return value * 0.5 ** (elapsed_s / half_life_s)
