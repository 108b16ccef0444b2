"""Whose network is it: a publisher's uplink, seen by its room, explains what subscribers get.

Through an SFU, loss that a publisher's uplink could not repair reaches every subscriber as
missing sequence numbers, and a publisher whose uplink collapsed sends less, so each of its
subscribers receives less. An inbound track's ``trackSid`` is its publisher's outbound
``trackSid``, so a room pairs them. Three pure parts, one per role (docs/levels.md, Whose
network; the streaming room stage reuses the same code):

- **Publisher** (the engine, per scored sample): each outbound track's
  :class:`UplinkCondition`: its uplink ``loss`` (the pool its send component is judged on)
  and ``limited`` (sent / demanded while bandwidth-limited), quantised with hysteresis so it
  changes rarely; the engine reports only changes, as :class:`UplinkChange`, plus
  ``joined`` / ``left`` (departure or expiry) and ``gone`` (a track that went).
- **Room** (:class:`RoomViews`): which participants a room has and which tracks each
  publishes; turns every change into :class:`ViewUpdate` records for each other participant.
- **Subscriber** (:class:`UpstreamView`): trackSid -> a short history of (at_ms, condition or
  None); a sample at event time ``t`` is scored with the entries at ``t - view_lag_ms``
  (:func:`upstream_for`), so the offline scorer and the pipeline agree while the view keeps up.

The rule (:func:`adjust_recv`): of the ``E`` packets a subscriber expected on a paired
track, ``E x L_pub`` never left the SFU: they come off its expected and (clamped at 0) its
lost counts before pooling, so what is left is its own downlink's loss,
``1 - (1 - L_sub) / (1 - L_pub)``; a send-limited publisher (``limited`` r < 1) scales that
track's expected bitrate by r. Two-party P2P calls cannot be attributed: both ends see the
same lost packets, so only samples that say ``topology: "sfu"`` are attributed, and only
publishers whose samples say it tell the room anything (:func:`upstream_for`,
``feed.feed_samples``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from math import floor
from typing import Literal

import msgspec

from pipelines.contracts.stats import InboundTrack, OutboundTrack, StatsSample
from pipelines.quality.scoring import loss_effect
from pipelines.quality.state import ComponentState, ParticipantState, TrackCounters
from pipelines.quality.thresholds import Thresholds

SFU = "sfu"
"""The only topology attributed: a sample must say its call goes through an SFU. Guessing
from the room's size would blame the wrong participant whenever the guess is wrong (mesh
P2P), while not attributing only scores as before."""
VIEW_HISTORY_MS = 60_000
"""How far back a view keeps superseded entries: the lag, clock skew between clients, and a
replay: after a crash or a stop the levels agent scores again, from its last committed
offset, samples whose views have since moved on (seconds, more on a loaded machine; with 10
s a restart under load changed a subscriber's events)."""
VIEW_HISTORY_MAX = 16
"""Entries kept per track at most, whatever their age (a flapping publisher)."""

NO_CONDITION = ("", 0.0, 1.0)
"""(kind, loss, limited) before anything is known: no loss, not limited."""
CLEAN = (0.0, 1.0)
"""(loss, limited) that takes nothing off (the rule then scores as without it, and names no
cause): a track's first condition is announced only when it is not this, and a track that
goes while clean is not announced gone (a subscriber's view treats no entry alike). In a
join storm most tracks are clean: announcing them was most of the attribution's records."""


class UplinkCondition(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A publisher's uplink as its subscribers should discount it, for one outbound track."""

    participant_sid: str
    """The publisher."""
    track_sid: str
    kind: str
    loss: float
    """Uplink loss the SFU reports back (the send component's pool), in steps of
    ``Thresholds.upstream_loss_step``."""
    limited: float
    """Sent / demanded while the encoder is bandwidth-limited, 0..1 in steps of
    ``Thresholds.upstream_limited_step``; 1.0 when not limited."""


ChangeKind = Literal["uplink", "gone", "joined", "left"]


class UplinkChange(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """What the engine tells the room about one participant, at the event time ``at_ms`` of
    the sample (or expiry) behind it. ``uplink``: ``condition`` is new or changed; ``gone``:
    the track ``track_sid`` went; ``joined``: the participant's first sample; ``left``: it
    departed or expired (every track of it goes too)."""

    what: ChangeKind
    room_sid: str
    participant_sid: str
    at_ms: int
    track_sid: str = ""
    condition: UplinkCondition | None = None


class ViewUpdate(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One entry for one subscriber's :class:`UpstreamView`: ``track_sid``'s condition from
    ``at_ms`` (None: gone); with ``track_sid`` empty, the room's size from ``at_ms`` instead
    (0: the subscriber itself left: drop its view)."""

    subscriber_sid: str
    at_ms: int
    track_sid: str = ""
    condition: UplinkCondition | None = None
    room_size: int = -1


Entry = tuple[int, UplinkCondition | None]


class UpstreamView(msgspec.Struct, array_like=True):
    """One subscriber's view of its room's publishers (serialisable, for a changelog table)."""

    tracks: dict[str, list[Entry]] = msgspec.field(default_factory=dict)
    room: list[tuple[int, int]] = msgspec.field(default_factory=list)
    """(at_ms, participants in the room, the subscriber included)."""

    def apply(self, update: ViewUpdate) -> None:
        """Add one entry (in event-time order; an older one is placed where it belongs)."""
        if not update.track_sid:
            _append(self.room, (update.at_ms, update.room_size))
            return
        history = self.tracks.get(update.track_sid)
        if history is None:
            if update.condition is None:
                return  # gone before we knew it: nothing to forget
            history = self.tracks[update.track_sid] = []
        _append(history, (update.at_ms, update.condition))
        if history[-1][1] is None and len(history) == 1:
            del self.tracks[update.track_sid]  # only "gone" is left of it

    def room_size_at(self, at_ms: int) -> int:
        size = 0
        for when, n in self.room:
            if when > at_ms:
                break
            size = n
        return size

    def conditions_at(self, at_ms: int) -> dict[str, UplinkCondition]:
        """Each track's latest condition from at or before ``at_ms`` (gone tracks left out)."""
        out: dict[str, UplinkCondition] = {}
        for sid, history in self.tracks.items():
            condition: UplinkCondition | None = None
            for when, c in history:
                if when > at_ms:
                    break
                condition = c
            if condition is not None:
                out[sid] = condition
        return out


def _append(history: list, entry: tuple) -> None:  # type: ignore[type-arg]
    """Insert by time (equal times keep arrival order), then forget entries that can no
    longer be looked up: older than the newest by :data:`VIEW_HISTORY_MS`, except the last of
    them (it holds until the next), and past :data:`VIEW_HISTORY_MAX`."""
    i = len(history)
    while i > 0 and history[i - 1][0] > entry[0]:
        i -= 1
    if i > 0 and history[i - 1] == entry:
        return  # a replayed update (after a restart) repeats what the view holds
    history.insert(i, entry)
    horizon = history[-1][0] - VIEW_HISTORY_MS
    drop = 0
    while drop + 1 < len(history) and history[drop + 1][0] <= horizon:
        drop += 1
    drop = max(drop, len(history) - VIEW_HISTORY_MAX)
    if drop > 0:
        del history[:drop]
    if len(history) > 1 and history[0][1] is None and history[0][0] <= horizon:
        del history[0]  # an old "gone" before a re-publication says nothing any more


ViewLookup = Callable[[str], "UpstreamView | None"]
"""How the engine finds a subscriber's view: participant sid -> view (a dict's or a table's
``get``), or None."""


def upstream_for(
    view: UpstreamView, sample: StatsSample, th: Thresholds
) -> dict[str, UplinkCondition] | None:
    """The upstream conditions to score ``sample`` with, or None to score it as today.

    The entries in force at ``timestamp - view_lag_ms``; None unless the sample says its
    topology is :data:`SFU` (in P2P the publisher's uplink and the subscriber's downlink carry
    the same packets and nothing can be attributed; unsaid, it may be P2P), or when no track
    is in view.
    """
    if sample.topology != SFU:
        return None
    conditions = view.conditions_at(sample.timestamp - th.view_lag_ms)
    return conditions or None


# --- the publisher's side ------------------------------------------------------------------


def quantised(raw: float, current: float, step: float, hysteresis: float) -> float:
    """``raw`` floored to ``step``, unless it is still within ``current``'s band widened by
    ``hysteresis`` steps on each side: then ``current`` (so a value near an edge holds)."""
    margin = step * hysteresis
    if current - margin <= raw < current + step + margin:
        return current
    return round(floor(raw / step + 1e-9) * step, 6)


def _kind_condition(
    previous: tuple[float, float],
    fraction: float,
    limited: bool,
    bandwidth: float,
    th: Thresholds,
) -> tuple[float, float]:
    """(loss, limited) of one kind's send component after its window: ``fraction`` is the
    pool's loss (or the receiver's fractionLost; -1 without evidence: keep the last),
    ``bandwidth`` its bandwidth score (0..100, -1 when not judged)."""
    loss, ratio = previous
    if fraction >= 0.0:
        loss = quantised(min(fraction, 1.0), loss, th.upstream_loss_step, th.upstream_hysteresis)
    if not limited:
        ratio = 1.0
    elif bandwidth >= 0.0:
        ratio = min(
            quantised(bandwidth / 100.0, ratio, th.upstream_limited_step, th.upstream_hysteresis),
            1.0,
        )
    return loss, ratio


def derive_uplinks(
    st: ParticipantState,
    outbound: list[OutboundTrack],
    audio: tuple[float, bool, float] | None,
    video: tuple[float, bool, float] | None,
    at_ms: int,
    th: Thresholds,
    out: list[UplinkChange],
) -> None:
    """A publisher's conditions after a scored sample; changes appended to ``out``.

    ``audio``/``video``: (pool loss, bandwidth-limited, bandwidth score) of that send
    component's window, None when it has none (then its tracks keep their last condition).
    """
    before = st.uplink
    kinds: dict[str, tuple[float, float]] = {}
    for kind_, loss, limited in before.values():
        kinds.setdefault(kind_, (loss, limited))
    for kind_, window in (("audio", audio), ("video", video)):
        if window is not None:
            kinds[kind_] = _kind_condition(
                kinds.get(kind_, (0.0, 1.0)), window[0], window[1], window[2], th
            )
    after: dict[str, tuple[str, float, float]] = {}
    for track in outbound:
        sid, kind_ = track.track_sid, track.kind
        loss, limited = kinds.get(kind_, CLEAN)
        now = (kind_, loss, limited)
        after[sid] = now
        was = before.get(sid)
        if was != now and (was is not None or (loss, limited) != CLEAN):
            condition = UplinkCondition(st.participant_sid, sid, kind_, loss, limited)
            out.append(
                UplinkChange("uplink", st.room_sid, st.participant_sid, at_ms, sid, condition)
            )
    for sid, (_, loss, limited) in before.items():
        if sid not in after and (loss, limited) != CLEAN:
            out.append(UplinkChange("gone", st.room_sid, st.participant_sid, at_ms, sid))
    if after != before:
        st.uplink = after


def uplinks_of(st: ParticipantState) -> list[UplinkCondition]:
    """A publisher's current conditions, as last announced."""
    return [
        UplinkCondition(st.participant_sid, sid, kind_, loss, limited)
        for sid, (kind_, loss, limited) in st.uplink.items()
    ]


# --- the subscriber's side -----------------------------------------------------------------

RecvWindow = tuple[int, int, int, int, float, bool, float, int]
"""As ``window.RecvWindow`` (repeated here: this module is not compiled with it)."""


def adjust_recv(
    inbound: list[InboundTrack],
    previous: dict[str, TrackCounters],
    has_window: bool,
    paused_before: tuple[str, ...],
    audio: RecvWindow | None,
    video: RecvWindow | None,
    upstream: dict[str, UplinkCondition],
    evidenced: list[str] | None = None,
) -> tuple[RecvWindow | None, RecvWindow | None]:
    """The receive windows with what paired publishers' uplinks lost taken out.

    Per paired track with a delta (the rules of ``window.fold_inbound``: counters that grew,
    not a restart), ``E x loss`` of its ``E`` expected packets come off the window's loss
    denominator and off its lost count (at most what it lost); a limited publisher's track
    has its expected bitrate scaled by ``limited``. The tracks for which that took something
    off (lost packets, or expected bitrate) are appended to ``evidenced``.
    """
    a_packets = a_lost = a_cut = v_packets = v_lost = v_cut = 0.0
    for t in inbound:
        c = upstream.get(t.track_sid)
        if c is None:
            continue
        cut = 0.0
        if c.limited < 1.0 and t.expected_bitrate is not None:
            cut = t.expected_bitrate * (1.0 - c.limited)
        removed = removed_lost = 0.0
        prev = previous.get(t.track_sid)
        if (
            c.loss > 0.0
            and has_window
            and prev is not None
            and t.bytes_received >= prev[0]
            and t.packets_received >= prev[1]
            and t.packets_lost >= prev[2]
            and not (paused_before and t.track_sid in paused_before)
        ):
            lost = t.packets_lost - prev[2]
            removed = (t.packets_received - prev[1] + lost) * c.loss
            removed_lost = min(removed, float(lost))
        if evidenced is not None and (removed_lost > 0.0 or cut > 0.0):
            evidenced.append(t.track_sid)
        if t.kind == "audio":
            a_packets, a_lost, a_cut = a_packets + removed, a_lost + removed_lost, a_cut + cut
        else:
            v_packets, v_lost, v_cut = v_packets + removed, v_lost + removed_lost, v_cut + cut
    return _less(audio, a_packets, a_lost, a_cut), _less(video, v_packets, v_lost, v_cut)


def _less(w: RecvWindow | None, packets: float, lost: float, cut: float) -> RecvWindow | None:
    if w is None or (packets == 0.0 and cut == 0.0):
        return w
    deltas, received, w_lost, w_packets, expected, expected_all, jitter, moved = w
    if w_lost >= 0 and w_packets > 0:
        w_lost = max(round(w_lost - lost), 0)
        w_packets = max(round(w_packets - packets), w_lost)
    return (deltas, received, w_lost, w_packets, max(expected - cut, 0.0), expected_all, jitter,
            moved)  # fmt: skip


def upstream_impact(c: UplinkCondition, th: Thresholds) -> float:
    """The score (0..100) the publisher's uplink alone leaves a subscriber's component: the
    worse of its loss (the kind's loss weight) and its share of the demand."""
    weight = th.loss_weight_audio if c.kind == "audio" else th.loss_weight_video
    packets = 100.0 - loss_effect(c.loss, weight)
    share = 100.0 * c.limited
    return max(min(packets, share), 0.0)


def upstream_cause(
    st: ParticipantState,
    inbound: Iterable[InboundTrack],
    upstream: dict[str, UplinkCondition],
    th: Thresholds,
    evidenced: list[str],
) -> tuple[str, str] | None:
    """(publisher, track) whose uplink kept a receive component from falling, or None.

    A paired, unmuted track's condition is a cause when the level its uplink alone would
    leave (:func:`upstream_impact`) is below the level its kind's receive component now
    holds: without the adjustment the component could not hold it. It becomes one only in a
    window where the adjustment took something off that track (``evidenced``: an SFU that
    repaired the publisher's loss, or a track that moves nothing, proves nothing) and stays
    one while its condition says so. Of several, the one with the lowest such score mattered
    most (ties: the first track in the sample), except that the cause already named stays
    while it still is one (so the event does not flip between a publisher's two tracks).
    """
    best: tuple[str, str] | None = None
    best_score = 101.0
    held = None if st.cause is None else st.cause[1]
    for t in inbound:
        c = upstream.get(t.track_sid)
        if c is None or t.muted or (t.track_sid != held and t.track_sid not in evidenced):
            continue
        cs: ComponentState | None = st.audio_recv if t.kind == "audio" else st.video_recv
        if cs is None or cs.level <= 0:
            continue
        score = upstream_impact(c, th)
        if th.level_of(score) < cs.level:
            if t.track_sid == held:
                return st.cause
            if score < best_score:
                best, best_score = (c.participant_sid, c.track_sid), score
    return best


# --- the room ------------------------------------------------------------------------------


class _Room(msgspec.Struct):
    members: dict[str, int] = msgspec.field(default_factory=dict)
    """Participant -> when it joined (at_ms)."""
    tracks: dict[str, UplinkCondition] = msgspec.field(default_factory=dict)
    """Current condition of every track published in the room."""
    since: dict[str, int] = msgspec.field(default_factory=dict)
    """Track -> at_ms of its current condition (a newcomer's view starts with it)."""


class RoomViews(msgspec.Struct):
    """The rooms' bookkeeping (pure, serialisable): who is in each room, which tracks each
    publishes and their conditions, and so what each subscriber's view must receive."""

    rooms: dict[str, _Room] = msgspec.field(default_factory=dict)

    def apply(self, change: UplinkChange) -> list[ViewUpdate]:
        """The view updates one change means, for every other participant of its room."""
        room = self.rooms.get(change.room_sid)
        if room is None:
            if change.what == "left":
                return []
            room = self.rooms[change.room_sid] = _Room()
        sid, at = change.participant_sid, change.at_ms
        updates: list[ViewUpdate] = []
        if change.what == "joined" or (change.what == "uplink" and sid not in room.members):
            if sid not in room.members:
                room.members[sid] = at
                size = len(room.members)
                updates += [ViewUpdate(other, at, room_size=size) for other in room.members]
                # The newcomer's view starts with every other publisher's condition.
                updates += [
                    ViewUpdate(sid, room.since[track], track, c)
                    for track, c in room.tracks.items()
                    if c.participant_sid != sid
                ]
            if change.what == "joined":
                return updates
        others = [other for other in room.members if other != sid]
        if change.what == "uplink" and change.condition is not None:
            if room.since.get(change.track_sid) == at and room.tracks[change.track_sid] == (
                change.condition
            ):
                return updates  # a replayed change (after a restart): the views have it
            room.tracks[change.track_sid] = change.condition
            room.since[change.track_sid] = at
            updates += [ViewUpdate(o, at, change.track_sid, change.condition) for o in others]
        elif change.what == "gone":
            if room.tracks.pop(change.track_sid, None) is not None:
                del room.since[change.track_sid]
                updates += [ViewUpdate(o, at, change.track_sid) for o in others]
        elif change.what == "left" and sid in room.members:
            del room.members[sid]
            for track in [t for t, c in room.tracks.items() if c.participant_sid == sid]:
                del room.tracks[track]
                del room.since[track]
                updates += [ViewUpdate(o, at, track) for o in others]
            updates += [ViewUpdate(o, at, room_size=len(room.members)) for o in others]
            updates.append(ViewUpdate(sid, at, room_size=0))
            if not room.members:
                del self.rooms[change.room_sid]
        return updates


class ViewStore:
    """Subscribers' views by participant sid, fed with :class:`ViewUpdate` records (what the
    levels agent keeps as a table; a dict here)."""

    def __init__(self) -> None:
        self.views: dict[str, UpstreamView] = {}

    def apply(self, updates: Iterable[ViewUpdate]) -> None:
        for update in updates:
            sid = update.subscriber_sid
            view = updated_view(self.views.get(sid), update)
            if view is None:
                self.views.pop(sid, None)
            else:
                self.views[sid] = view

    def get(self, participant_sid: str) -> UpstreamView | None:
        return self.views.get(participant_sid)


def updated_view(view: UpstreamView | None, update: ViewUpdate) -> UpstreamView | None:
    """``view`` (a new one when None) with ``update`` applied, or None when the update says
    the subscriber left (its view is dropped): what a view store or table does per record."""
    if not update.track_sid and update.room_size == 0:
        return None
    if view is None:
        view = UpstreamView()
    view.apply(update)
    return view
