"""Every number the scoring uses, in one place, each with its reasoning and source.

All metrics are first mapped to a *score* from 0 (unusable) to 100 (perfect), the scale of
LiveKit's connection-quality scorer (an R-factor-like scale taken from the ITU-T G.107
E-model), then the score is cut into levels 1..5 by :attr:`Thresholds.level_floors`.
Level 0 is not a score: it means the connection is broken or silent.

Override any field with a JSON file named by ``NETQUALITY_THRESHOLDS_FILE``
(``{"loss_weight_audio": 6.0, ...}``); unknown keys are an error so typos do not pass silently.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

VIEW_LAG_MS: Final = 2_000
"""How old the upstream view a subscriber's sample is scored with is (see ``view_lag_ms``)."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Scoring and smoothing parameters (see each field's comment for why)."""

    # Score -> level cut points for levels 5, 4, 3, 2 (below the last: level 1).
    # LiveKit calls a score > 80 EXCELLENT and <= 40 POOR (scorer.go scoreToConnectionQuality,
    # "R-factor ... roughly based on ITU-T E-model tutorial"). We keep 80 for 5 and spread
    # 4..2 evenly below it, so that (with the evidence rule below, at steady packet rates)
    # Opus at 1 % loss is 5, at 4 % is 4, at 9 % is 2, at 12 % is 1, and video at 10 % is 1
    # (Jitsi: loss >= 10 % is poor whatever the bitrate). docs/levels.md has the ladders.
    level_floors: tuple[float, float, float, float] = (80.0, 64.0, 48.0, 24.0)

    # Loss score = 100 - weight * loss%. LiveKit uses ~8 for Opus without RED (1 % -> 92,
    # 4 % -> 68, 9 % -> 28: excellent/good/poor as its docs state). Video keeps the same weight:
    # LiveKit weighs video loss 10 (connectionstats.go:421-423: "2 %: fall to GOOD, 6 %: fall
    # to POOR"; its tests: 1 % excellent, 3.5 % good, 8 % poor): NACK/FEC repair a few %, but
    # ~10 % loss freezes video (Jitsi's poor line).
    loss_weight_audio: float = 8.0
    loss_weight_video: float = 10.0
    # Loss over fewer packets than this is noise (1 of 8 DTX packets is not 12 % loss);
    # LiveKit discounts low packet rates for the same reason (getPacketLossWeight).
    loss_min_packets: int = 10
    # Evidence before verdict: loss is judged over a pool of packets, each window's counts
    # added and older ones halving every loss_half_life_s (~3.4 s of traffic: 170 Opus packets,
    # 300+ video packets), not over one window of a dozen packets; LiveKit likewise weighs
    # loss by packet count over its 5 s scoring window. The level then uses the one-sided
    # lower confidence bound (Wilson score, z = loss_confidence_z) of that pool's loss rate,
    # so a window can only claim the loss its packet count proves: 5 of 37 packets is at
    # least 8.8 %, 5 of 370 at least 0.9 %; 12 % over 300+ packets stays above 10 % (level
    # 1, Jitsi's poor line). z = 1 (84 % one-sided) keeps steady loss close to its true rate
    # at audio packet rates (4 % Opus is judged >= 2.6 %: good, as LiveKit says) while a
    # single short burst cannot cry wolf.
    loss_half_life_s: float = 2.0
    loss_confidence_z: float = 1.0

    # Latency: effective one-way delay d = RTT/2 + 2 x jitter + 10 ms (ms); score = 100 - d/40
    # up to 160 ms, then 100 - (d-120)/10: the simplified E-model delay impairment Id as
    # LiveKit's calculatePacketScore applies it (scorer.go:81-90, on RTT/2 + 2 x jitter),
    # plus the 10 ms codec allowance of PingPlotter / twilio-voice.js mos.ts. twilio-voice
    # feeds the whole RTT instead, which makes a 400 ms RTT "average"; the E-model's Ta is
    # the one-way mouth-to-ear delay (G.107), and G.114 calls up to 400 ms one-way
    # acceptable, so we side with LiveKit: RTT 400 ms is 5, 800 ms 4, 1000 ms 3. The lab's
    # +200 ms-each-way call (RTT 405-731 ms measured) reads 3-4 this way and 1-3 Twilio's.
    delay_rtt_share: float = 0.5
    delay_codec_ms: float = 10.0
    delay_knee_ms: float = 160.0
    delay_slope_low: float = 1 / 40
    delay_slope_high: float = 1 / 10
    delay_offset_high_ms: float = 120.0
    # Delay and loss impairments add up into one packet score, 100 - delay effect - loss
    # effect (the E-model's R = R0 - Id - Ie; LiveKit's calculatePacketScore; twilio-voice.js
    # mos.ts), while bandwidth against demand stays a judgement of its own: the component is
    # the worse of the two. 2 % audio loss with 400 ms RTT and 30 ms jitter is 100 - 15 - 9
    # = 76 (the pool proves 1.2 % of the 2 %): level 4 ("good"), where the worst-of-three
    # rule said 5.

    # Bandwidth score = 100 x capacity / demand (capped at 100): the share of the wanted
    # bitrate the network carries, as Jitsi's ConnectionQuality scores video by the share of
    # the resolution's target bitrate actually sent. Linear rather than LiveKit's
    # 100 - 20 ln(expected/actual) because that one still says "good" at 1/2.7 of the demand,
    # and the product promise is that 720p on a 300 kbit/s uplink is level 1, not 4.
    bandwidth_full_score_ratio: float = 1.0

    # Demand when a track does not say (bits/s). Audio: Opus voice default in WebRTC.
    audio_default_bitrate: float = 32_000.0
    # Video by frame height, from libwebrtc's simulcast table (video/config/simulcast.cc,
    # target kbps: 180p 150, 270p 350, 360p 500, 540p 1200, 720p 2500, 1080p 4000).
    video_bitrate_by_height: tuple[tuple[int, float], ...] = (
        (180, 150_000.0),
        (270, 350_000.0),
        (360, 500_000.0),
        (540, 1_200_000.0),
        (720, 2_500_000.0),
        (1080, 4_000_000.0),
    )
    video_default_bitrate: float = 1_200_000.0
    # While an encoder is bandwidth-limited its targetBitrate follows the estimate down, so the
    # demand we score against is the target it had before (remembered with this half-life).
    # Receivers without expectedBitrate are scored against the rate they had before the
    # trouble, decaying with the same half-life so a sender's own downgrade is forgotten.
    demand_memory_half_life_s: float = 20.0

    # Smoothing: worse news at once (as far as the evidence goes, see loss_confidence_z);
    # better news paced: one level at a time, each step only after the better score held for
    # upgrade_dwell_s above the next level's floor + margin. 1 -> 5 is four steps, so 5 + 3 x 3
    # = 14 s of dwell plus the ~2 s the loss pool needs to forget the trouble: ~16 s, the pace of
    # LiveKit's asymmetric EWMA (decrease 0.8 / increase 0.4 per 5 s update, scorer.go:36-37;
    # POOR -> EXCELLENT in 15 s, connectionstats_test.go:122-170); Jitsi is slower (+2 points
    # a second: 30-50 s). The old rule jumped 1 -> 5 after one 4 s dwell. The first step after
    # a drop waits upgrade_first_dwell_s: with the ~2 s the loss pool takes to clear, trouble
    # that comes back every 5 s (a flapping link) never gets a step up in between, so the
    # level holds instead of alternating as LiveKit's does (POOR/GOOD every 5 s).
    upgrade_dwell_s: float = 3.0
    upgrade_first_dwell_s: float = 5.0
    upgrade_margin: float = 4.0

    # Stalled media: connected, tracks unmuted, yet no packets move for this long reads 0
    # ("<kind>.<dir>.stalled"), as LiveKit reports LOST and Twilio users asked for
    # (twilio-video.js#640). 4 s: longer than any codec's normal pause (Opus DTX still sends
    # a packet every 400 ms; a video key-frame wait is < 2 s), shorter than ICE's ~5-6 s to
    # call an outage "disconnected". It grows with a slow client's sampling interval as the
    # staleness rule does. Receiving stalls only when every subscribed track stalls at
    # once: one quiet remote video is a remote pausing or an SFU layer switch, not our
    # downlink. A muted track is never a stall.
    stall_after_s: float = 4.0

    # Call start: a sender's bandwidth estimate starts low (libwebrtc: 300 kbit/s) and grows
    # by at most ~8 %/s (GCC's multiplicative increase, draft-ietf-rmcat-gcc), so 720p's
    # 2.5 Mbit/s is ~28 s away on a perfect network; the bundled Chrome P2P call shows it
    # (1 -> 5 over 39 s with no trouble at all). While the estimate keeps rising (by
    # ramp_rise within every ramp_plateau_s), never falls by ramp_drop from its peak, and
    # packets score 5 (no loss or delay trouble), send bandwidth does not limit the level;
    # the grace ends for good on the first of those to fail, or ramp_max_s after the
    # component appeared (the GCC arithmetic above, rounded up).
    ramp_max_s: float = 30.0
    ramp_plateau_s: float = 4.0
    ramp_rise: float = 0.05
    ramp_drop: float = 0.15

    # No sample for this long while connected means level 0 ("no stats for too long").
    # Clients publish about once a second; Twilio's reconnecting UI kicks in after ~5-10 s.
    stale_after_s: float = 10.0
    # A window longer than this between two samples is a gap: rates over it would average
    # away the trouble, so counters re-baseline instead.
    max_window_s: float = 10.0
    # Both limits grow with a participant's own sampling interval: rtcstats-server clients
    # sample every 10 s (Firefox dumps here show 30 s), and silence is only news after a few
    # missed samples. The interval is learned per participant (EWMA of its windows); before
    # it is known, the first gap itself is taken as the interval, up to max_interval_s.
    interval_multiple: float = 3.0
    max_interval_s: float = 60.0

    # A receiver without expectedBitrate has no demand to compare with, and its received
    # video bitrate follows the *sender's* content (0-300 kbit/s swings at 0 % loss in the
    # real Chrome dumps). So its bandwidth is scored only in troubled windows (loss at least
    # this), against the rate it received in clean windows: "what was received before the
    # trouble" (ARCHITECTURE.md), without flagging a quiet sender.
    recv_trouble_loss: float = 0.02

    # Whose network (docs/levels.md): through an SFU, loss the publisher's uplink could not
    # repair reaches every subscriber, so a subscriber's own downlink loss is
    # 1 - (1 - L_sub) / (1 - L_pub). A publisher's uplink condition (the loss its send
    # component pools, and how far a bandwidth-limited encoder falls short of its demand) is
    # passed to its subscribers only when it moves past a step plus a margin, so that it
    # changes rarely (every change goes to every subscriber of the room): 0.5 % of loss
    # costs a video component 5 points at most (a level is 16), a 5 % step of the demand 5.
    upstream_loss_step: float = 0.005
    upstream_limited_step: float = 0.05
    upstream_hysteresis: float = 0.5
    """Share of a step the raw value must move beyond its quantised band to change it."""
    # A subscriber sample at event time t is scored with the upstream conditions its view
    # held at t - view_lag_ms, in the offline scorer and in the pipeline alike, so both emit
    # the same events while the pipeline's view keeps up. The pipeline's view arrives through
    # two internal hops (levels agent -> room stage -> the subscriber's view table), each a
    # produce and a consume of about a batch interval (~0.1-0.5 s under load), after the
    # publisher's own sample, itself published in 1 s batches: 2 s covers that with margin,
    # and costs little (a publisher's trouble reaches its subscribers' pools about as late).
    view_lag_ms: int = VIEW_LAG_MS

    @property
    def loss_decay_per_s(self) -> float:
        """ln of the share of the loss pool kept after one second: -ln 2 / half-life."""
        return -0.6931471805599453 / self.loss_half_life_s

    def silence_limit_ms(self, interval_ms: int, gap_ms: int, floor_s: float) -> float:
        """How long a participant sampling every ``interval_ms`` may be silent (or may leave
        between two samples) before ``floor_s``-based rules apply: at least ``floor_s``."""
        basis = interval_ms if interval_ms > 0 else min(gap_ms, self.max_interval_s * 1000.0)
        return max(floor_s * 1000.0, self.interval_multiple * basis)

    def level_of(self, score: float) -> int:
        """Map a 0..100 score to level 1..5."""
        f5, f4, f3, f2 = self.level_floors
        if score >= f5:
            return 5
        if score >= f4:
            return 4
        if score >= f3:
            return 3
        if score >= f2:
            return 2
        return 1

    def video_bitrate_for_height(self, height: int | None) -> float:
        """Nominal target bitrate for a video track of this frame height."""
        if not height:
            return self.video_default_bitrate
        for max_height, bitrate in self.video_bitrate_by_height:
            if height <= max_height:
                return bitrate
        return self.video_bitrate_by_height[-1][1]


DEFAULT_THRESHOLDS = Thresholds()


def load_thresholds(path: Path | None) -> Thresholds:
    """Defaults, overridden by the JSON object in ``path`` if given."""
    if path is None:
        return DEFAULT_THRESHOLDS
    overrides: dict[str, Any] = json.loads(Path(path).read_text())
    known = {f.name for f in dataclasses.fields(Thresholds)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"{path}: unknown threshold(s) {unknown}; known: {sorted(known)}")
    for name, value in overrides.items():
        if isinstance(value, list):
            overrides[name] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return dataclasses.replace(DEFAULT_THRESHOLDS, **overrides)
