/*
 * stats.js: the publishing side. One getStats() mapping, shared with pipelines/adapters/getstats.py
 * (a test feeds the same reports through both), and the posting loop to netquality's HTTP ingest.
 * Built into pipelines/ingest/static/netquality-stats.js (global NetqualityStats, the old script)
 * and into the NetQuality bundle by build.mjs; never edit the built files.
 */

const STATS_SCHEMA = "netquality.stats.v1";
const MAX_TRACKS = 64;
const MAX_COUNTER = 2 ** 53 - 1;
const MAX_SECONDS = 60;
const MAX_BITS_PER_SECOND = 1e11;
const MAX_FRAME_SIDE = 16384;
const MAX_FPS = 1000;
const MAX_SID_LENGTH = 128;
const QUALITY_LIMITATION_REASONS = new Set(["none", "cpu", "bandwidth", "other"]);
const REDUNDANCY_CODECS = new Set(["video/rtx", "audio/rtx", "video/ulpfec", "video/flexfec-03"]);
const W3C_TO_CONNECTION_STATE = {
  new: "new",
  checking: "connecting",
  connecting: "connecting",
  connected: "connected",
  completed: "connected",
  disconnected: "reconnecting", // ICE recovers from it by itself
  failed: "failed", // broken, but still in the call (an ICE restart can recover)
  closed: "disconnected", // the participant left
};
const SEVERITY = { connected: 0, new: 1, connecting: 2, reconnecting: 3, failed: 4, disconnected: 5 };

// --- field helpers (mirror the _number/_counter/... helpers of getstats.py) ---------------

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const has = (v) => v !== null && v !== undefined;
function num(v) {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}
function counter(v) {
  const n = num(v);
  return n === null || n < 0 || n > MAX_COUNTER ? null : Math.trunc(n);
}
function lost(v) {
  const n = num(v);
  return n === null ? null : Math.min(Math.max(Math.trunc(n), 0), MAX_COUNTER);
}
function seconds(v) {
  const n = num(v);
  return n === null || n < 0 ? null : Math.min(n, MAX_SECONDS);
}
function bitrate(v) {
  const n = num(v);
  return n === null || n < 0 || n > MAX_BITS_PER_SECOND ? null : n;
}
function fraction(v) {
  const n = num(v);
  return n === null ? null : Math.min(Math.max(n, 0), 1);
}
function frameSide(v) {
  const n = num(v);
  return n === null || n < 0 || n > MAX_FRAME_SIDE ? null : Math.trunc(n);
}
function fps(v) {
  const n = num(v);
  return n === null || n < 0 || n > MAX_FPS ? null : n;
}
const qualityReason = (v) => (QUALITY_LIMITATION_REASONS.has(v) ? v : null);
const typeOf = (s) => (typeof s.type === "string" ? s.type.replace(/-/g, "").toLowerCase() : "");
function kindOf(s) {
  for (const key of ["kind", "mediaType"]) {
    if (s[key] === "audio" || s[key] === "video") return s[key];
  }
  return null;
}
function linked(report, s, key) {
  const ref = s[key];
  return typeof ref === "string" && Object.prototype.hasOwnProperty.call(report, ref)
    ? report[ref]
    : null;
}
function first(key, ...sources) {
  for (const source of sources) if (source && has(source[key])) return source[key];
  return null;
}
/** Python's round(): halves go to the even neighbour. */
function pyRound(x) {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff === 0.5) return floor % 2 === 0 ? floor : floor + 1;
  return Math.round(x);
}
/** Drop null fields so the JSON matches the contract's "omit what is unknown". */
const TOPOLOGIES = new Set(["sfu", "p2p"]);

function compact(obj) {
  const out = {};
  for (const [k, v] of Object.entries(obj)) if (has(v)) out[k] = v;
  return out;
}

// --- report shapes ---------------------------------------------------------------------

/** RTCStatsReport (maplike), {id: stats}, [stats] or [{key, value}] -> {id: stats}. */
function normalizeReport(raw) {
  const report = {};
  if (raw && typeof raw.forEach === "function" && !Array.isArray(raw)) {
    raw.forEach((value, key) => {
      if (isObject(value)) report[String(key)] = value;
    });
    return report;
  }
  if (Array.isArray(raw)) {
    for (const entry of raw) {
      if (!isObject(entry)) continue;
      if ("key" in entry && isObject(entry.value)) report[String(entry.key)] = entry.value;
      else if ("id" in entry) report[String(entry.id)] = entry;
    }
    return report;
  }
  if (isObject(raw)) {
    for (const [k, v] of Object.entries(raw)) if (isObject(v)) report[k] = v;
    return report;
  }
  throw new Error("not an RTCStatsReport");
}

/** The most common positive stat timestamp (remote-* stats carry older RTCP times). */
function reportTimestamp(report) {
  const tally = new Map();
  for (const s of Object.values(report)) {
    const ts = num(s.timestamp);
    if (ts && ts > 0) {
      const r = pyRound(ts);
      tally.set(r, (tally.get(r) || 0) + 1);
    }
  }
  if (tally.size === 0) return null;
  const best = Math.max(...tally.values());
  let out = -Infinity;
  for (const [ts, n] of tally) if (n === best && ts > out) out = ts;
  return out;
}

// --- candidate pair ---------------------------------------------------------------------

function pairBytes(p) {
  return (counter(p.bytesSent) || 0) + (counter(p.bytesReceived) || 0);
}
function maxBy(items, key) {
  let best = null;
  let bestKey = -Infinity;
  for (const item of items) {
    const k = key(item);
    if (best === null || k > bestKey) {
      best = item;
      bestKey = k;
    }
  }
  return best;
}
function selectedCandidatePair(report) {
  const pairs = {};
  for (const [sid, s] of Object.entries(report)) if (typeOf(s) === "candidatepair") pairs[sid] = s;
  const all = Object.values(pairs);
  if (all.length === 0) return null;
  let chosen = [];
  for (const s of Object.values(report)) {
    const pid = s.selectedCandidatePairId;
    if (typeOf(s) === "transport" && Object.prototype.hasOwnProperty.call(pairs, pid)) {
      chosen.push(pairs[pid]);
    }
  }
  if (!chosen.length) chosen = all.filter((p) => p.selected === true);
  if (!chosen.length) chosen = all.filter((p) => p.nominated === true && p.state === "succeeded");
  if (!chosen.length) chosen = all.filter((p) => pairBytes(p) > 0);
  return chosen.length ? maxBy(chosen, pairBytes) : null;
}
function candidatePairFromReport(report) {
  const pair = selectedCandidatePair(report);
  if (pair === null) return null;
  const out = compact({
    availableOutgoingBitrate: bitrate(pair.availableOutgoingBitrate),
    availableIncomingBitrate: bitrate(pair.availableIncomingBitrate),
    currentRoundTripTime: seconds(pair.currentRoundTripTime),
  });
  return Object.keys(out).length ? out : null;
}

// --- tracks ----------------------------------------------------------------------------

function isRemoteInbound(s) {
  const t = typeOf(s);
  return t === "remoteinboundrtp" || (t === "inboundrtp" && s.isRemote === true);
}
function trackIdentifier(report, s) {
  for (const c of [s, linked(report, s, "mediaSourceId"), linked(report, s, "trackId")]) {
    if (c && typeof c.trackIdentifier === "string" && c.trackIdentifier) return c.trackIdentifier;
  }
  return null;
}
function trackBases(report, streams) {
  const bases = {};
  for (const [sid, s] of streams) {
    if (typeof s.mid === "string" && s.mid) {
      bases[sid] = `mid:${s.mid}` + (typeof s.rid === "string" && s.rid ? `:${s.rid}` : "");
    } else {
      bases[sid] = trackIdentifier(report, s) || sid;
    }
  }
  return bases;
}
function trackNames(streams, bases) {
  const counts = {};
  for (const b of Object.values(bases)) counts[b] = (counts[b] || 0) + 1;
  const names = {};
  for (const [sid, s] of streams) {
    let name = bases[sid];
    if (counts[name] > 1) name = `${name}:${has(s.ssrc) ? s.ssrc : sid}`;
    if (name.length > MAX_SID_LENGTH) name = sid.slice(0, MAX_SID_LENGTH);
    names[sid] = name;
  }
  return names;
}
function repairSsrcs(report) {
  const out = new Set();
  for (const s of Object.values(report)) {
    const t = typeOf(s);
    if (t !== "inboundrtp" && t !== "outboundrtp") continue;
    for (const key of ["rtxSsrc", "fecSsrc"]) if (has(s[key])) out.add(s[key]);
  }
  return out;
}
function isRepairStream(report, s, repair) {
  if (has(s.ssrc) && repair.has(s.ssrc)) return true;
  const codec = linked(report, s, "codecId");
  const mime = codec ? codec.mimeType : null;
  return typeof mime === "string" && REDUNDANCY_CODECS.has(mime.toLowerCase());
}
function remoteIndex(report) {
  const byLocal = {};
  const bySsrc = {};
  for (const s of Object.values(report)) {
    if (!isRemoteInbound(s)) continue;
    if (typeof s.localId === "string") byLocal[s.localId] = s;
    if (has(s.ssrc)) bySsrc[JSON.stringify([s.ssrc, kindOf(s)])] = s;
  }
  return function remoteFor(sid, outbound) {
    let remote = report[String(outbound.remoteId)];
    if (!remote || !isRemoteInbound(remote)) {
      remote = byLocal[sid] || bySsrc[JSON.stringify([outbound.ssrc, kindOf(outbound)])];
    }
    if (!remote) return null;
    const out = compact({
      packetsLost: lost(remote.packetsLost),
      fractionLost: fraction(remote.fractionLost),
      jitter: seconds(remote.jitter),
      roundTripTime: seconds(remote.roundTripTime),
    });
    return Object.keys(out).length ? out : null;
  };
}
function streamsOf(report, type) {
  return Object.entries(report).filter(([, s]) => typeOf(s) === type && s.isRemote !== true);
}

function outboundTracks(report, mutedTracks = null) {
  const streams = streamsOf(report, "outboundrtp");
  const bases = trackBases(report, streams);
  const names = trackNames(streams, bases);
  const remoteFor = remoteIndex(report);
  const repair = repairSsrcs(report);
  const tracks = [];
  const trackBaseList = [];
  for (const [sid, s] of streams) {
    const kind = kindOf(s);
    const bytesSent = counter(s.bytesSent);
    const packetsSent = counter(s.packetsSent);
    if (kind === null || bytesSent === null || packetsSent === null) continue;
    if (s.active === false || bytesSent === 0) continue;
    if (isRepairStream(report, s, repair)) continue;
    const senderTrack = linked(report, s, "trackId");
    tracks.push(
      compact({
        trackSid: names[sid],
        kind,
        bytesSent,
        packetsSent,
        targetBitrate: bitrate(s.targetBitrate),
        frameWidth: frameSide(first("frameWidth", s, senderTrack)),
        frameHeight: frameSide(first("frameHeight", s, senderTrack)),
        framesPerSecond: fps(first("framesPerSecond", s, senderTrack)),
        qualityLimitationReason: qualityReason(s.qualityLimitationReason),
        remote: remoteFor(sid, s),
        muted: mutedTracks && mutedTracks.has(trackIdentifier(report, s)) ? true : null,
      }),
    );
    trackBaseList.push(bases[sid]);
  }
  // WebKit repeats a sender-wide targetBitrate on every simulcast layer: keep it once.
  const groups = {};
  trackBaseList.forEach((base, i) => (groups[base] = groups[base] || []).push(i));
  for (const indexes of Object.values(groups)) {
    const targets = new Set(indexes.map((i) => (has(tracks[i].targetBitrate) ? tracks[i].targetBitrate : null)));
    const only = [...targets][0];
    if (indexes.length > 1 && targets.size === 1 && (only || 0) > 0) {
      for (const i of indexes.slice(1)) delete tracks[i].targetBitrate;
    }
  }
  return cap(tracks, (t) => t.bytesSent);
}

function inboundTracks(report) {
  const streams = streamsOf(report, "inboundrtp");
  const names = trackNames(streams, trackBases(report, streams));
  const repair = repairSsrcs(report);
  const tracks = [];
  for (const [sid, s] of streams) {
    const kind = kindOf(s);
    const bytesReceived = counter(s.bytesReceived);
    const packetsReceived = counter(s.packetsReceived);
    const packetsLost = lost(s.packetsLost);
    if (kind === null || bytesReceived === null || packetsReceived === null) continue;
    if (packetsLost === null || bytesReceived === 0) continue;
    if (isRepairStream(report, s, repair)) continue;
    tracks.push(
      compact({
        trackSid: names[sid],
        kind,
        bytesReceived,
        packetsReceived,
        packetsLost,
        jitter: seconds(s.jitter),
      }),
    );
  }
  return cap(tracks, (t) => t.bytesReceived);
}

/** Keep the MAX_TRACKS busiest tracks, in their original order. */
function cap(tracks, key) {
  if (tracks.length <= MAX_TRACKS) return tracks;
  const order = tracks.map((t, i) => i).sort((a, b) => key(tracks[b]) - key(tracks[a]));
  const keep = new Set(order.slice(0, MAX_TRACKS));
  return tracks.filter((t, i) => keep.has(i));
}

// --- samples ---------------------------------------------------------------------------

function mapConnectionState(state) {
  const mapped = typeof state === "string" ? W3C_TO_CONNECTION_STATE[state.trim().toLowerCase()] : undefined;
  if (!mapped) throw new Error(`unknown W3C connection state: ${state}`);
  return mapped;
}

/**
 * One netquality.stats.v1 sample from one getStats report (same as sample_from_report).
 * mutedTracks: ids of the local MediaStreamTracks the app has muted or disabled; their
 * outbound tracks say muted, so that their silence is not read as a stall.
 * topology: "sfu" or "p2p" (not a getStats field: the app knows it), so that the server can
 * tell a publisher's uplink trouble from this participant's downlink (only through an SFU).
 */
function sampleFromReport(raw, { roomSid, participantSid, region, seq, connectionState = "connected", timestamp = null, mutedTracks = null, topology = null }) {
  const report = normalizeReport(raw);
  let ts = timestamp;
  if (!has(ts)) {
    ts = reportTimestamp(report);
    if (ts === null) throw new Error("the report has no timestamp");
  }
  return compact({
    schema: STATS_SCHEMA,
    roomSid,
    participantSid,
    region,
    timestamp: Math.trunc(ts),
    seq,
    connectionState,
    candidatePair: candidatePairFromReport(report),
    outbound: outboundTracks(report, mutedTracks),
    inbound: inboundTracks(report),
    topology: TOPOLOGIES.has(topology) ? topology : null,
  });
}

/** Several peer connections of one participant as one report (ids prefixed per pc). */
function mergeReports(reports) {
  if (reports.length === 1) return normalizeReport(reports[0]);
  const merged = {};
  reports.forEach((raw, i) => {
    const report = normalizeReport(raw);
    const prefix = `pc${i}:`;
    for (const [sid, s] of Object.entries(report)) {
      const copy = Object.assign({}, s, { id: prefix + sid });
      for (const [k, v] of Object.entries(s)) {
        if (k.endsWith("Id") && typeof v === "string" && Object.prototype.hasOwnProperty.call(report, v)) {
          copy[k] = prefix + v;
        }
      }
      merged[prefix + sid] = copy;
    }
  });
  return merged;
}

function worstState(pcs) {
  let worst = null;
  for (const pc of pcs) {
    const state = mapConnectionState(pc.connectionState || pc.iceConnectionState || "new");
    if (worst === null || SEVERITY[state] > SEVERITY[worst]) worst = state;
  }
  return worst || "new";
}

/**
 * Start publishing. Options: peerConnections (or peerConnection), endpoint, token, roomSid,
 * participantSid, region; intervalMs (1000: one sample per tick), batchIntervalMs (5000: how
 * often samples are posted), maxBatch (100), maxQueue (600: oldest samples dropped beyond),
 * maxBackoffMs (60000), fetch (injectable), onResult(status, body) and onError(error);
 * topology: "sfu" or "p2p", or a function returning it (an app that moves a call between
 * P2P and its SFU says where it is now).
 */
/** Ids of the tracks this participant sends but has muted (enabled = false) or that the
 * browser mutes (no source data): not stalls. */
function mutedLocalTracks(pcs) {
  const ids = new Set();
  for (const pc of pcs) {
    if (typeof pc.getSenders !== "function") continue;
    for (const sender of pc.getSenders()) {
      const track = sender && sender.track;
      if (track && (track.enabled === false || track.muted === true)) ids.add(track.id);
    }
  }
  return ids;
}

function start(options) {
  const pcs = options.peerConnections || [options.peerConnection];
  for (const key of ["endpoint", "token", "roomSid", "participantSid", "region"]) {
    if (!options[key]) throw new Error(`NetqualityStats.start: ${key} is required`);
  }
  if (!pcs.length || !pcs[0]) throw new Error("NetqualityStats.start: peerConnections is required");
  const intervalMs = options.intervalMs || 1000;
  const batchIntervalMs = options.batchIntervalMs || 5000;
  const maxBatch = options.maxBatch || 100;
  const maxQueue = options.maxQueue || 600;
  const maxBackoffMs = options.maxBackoffMs || 60000;
  const doFetch = options.fetch || ((...args) => fetch(...args));
  const state = { seq: 0, queue: [], stopped: false, posting: false, backoffMs: 0, nextPostAt: 0, dropped: 0 };

  async function tick() {
    if (state.stopped) return;
    try {
      const reports = await Promise.all(pcs.map((pc) => pc.getStats()));
      const report = mergeReports(reports);
      state.seq += 1;
      const sample = sampleFromReport(report, {
        roomSid: options.roomSid,
        participantSid: options.participantSid,
        region: options.region,
        seq: state.seq,
        connectionState: worstState(pcs),
        timestamp: Date.now(),
        mutedTracks: mutedLocalTracks(pcs),
        topology: typeof options.topology === "function" ? options.topology() : options.topology,
      });
      state.queue.push(sample);
      if (state.queue.length > maxQueue) state.dropped += state.queue.splice(0, state.queue.length - maxQueue).length;
    } catch (error) {
      if (options.onError) options.onError(error);
    }
    if (Date.now() >= state.nextPostAt) post();
  }

  async function post() {
    if (state.posting || !state.queue.length) return;
    state.posting = true;
    const batch = state.queue.slice(0, maxBatch);
    let retry = false;
    try {
      const body = JSON.stringify(batch);
      const response = await doFetch(options.endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${options.token}` },
        body,
        // keepalive lets the last batch outlive the page, but browsers cap it at 64 KiB.
        keepalive: body.length < 60000,
      });
      let result = null;
      try {
        result = await response.json();
      } catch (_) {
        result = null;
      }
      if (options.onResult) options.onResult(response.status, result);
      retry = response.status >= 500 || response.status === 429;
    } catch (error) {
      retry = true; // network error: the ingest may be restarting
      if (options.onError) options.onError(error);
    }
    if (retry) {
      state.backoffMs = Math.min(maxBackoffMs, state.backoffMs ? state.backoffMs * 2 : intervalMs);
      state.nextPostAt = Date.now() + state.backoffMs * (0.5 + Math.random() / 2);
    } else {
      state.queue.splice(0, batch.length); // accepted, or refused for good (4xx)
      state.backoffMs = 0;
      state.nextPostAt = Date.now() + batchIntervalMs;
    }
    state.posting = false;
  }

  const timer = setInterval(tick, intervalMs);
  tick();
  return {
    stop() {
      state.stopped = true;
      clearInterval(timer);
      return post();
    },
    get pending() {
      return state.queue.length;
    },
    get dropped() {
      return state.dropped;
    },
  };
}

export { start, sampleFromReport, normalizeReport, mergeReports, mapConnectionState, reportTimestamp, worstState };
