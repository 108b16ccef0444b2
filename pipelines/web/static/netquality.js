/*
 * netquality.js 0.1.0: netquality's client for browsers, in one file (global NetQuality).
 * Publishes the local participant's WebRTC stats and follows the room's Network Quality Levels
 * with Twilio's names: NetQuality.connect({url, token, peerConnections, networkQuality}).
 * Source, types and docs: clients/js (npm package "netquality-client").
 */
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.NetQuality = api;
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";
  // Built by clients/js/build.mjs from clients/js/src (netquality client 0.1.0); do not edit.
  const modules = {};

  modules["stats.js"] = (function () {
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
    return { start, sampleFromReport, normalizeReport, mergeReports, mapConnectionState, reportTimestamp, worstState };
  })();

  modules["events.js"] = (function () {
    /*
     * events.js: the small part of node's EventEmitter that Twilio's objects offer (on, once, off,
     * emit), so `participant.on("networkQualityLevelChanged", ...)` reads the same in any browser.
     * A listener that throws is reported to `console.error` and never stops the others.
     */

    class EventEmitter {
      constructor() {
        this._listeners = new Map();
      }

      on(event, listener) {
        if (!this._listeners.has(event)) this._listeners.set(event, []);
        this._listeners.get(event).push(listener);
        return this;
      }

      once(event, listener) {
        const wrapper = (...args) => {
          this.off(event, wrapper);
          listener.apply(this, args);
        };
        wrapper.listener = listener;
        return this.on(event, wrapper);
      }

      off(event, listener) {
        const list = this._listeners.get(event);
        if (!list) return this;
        const i = list.findIndex((l) => l === listener || l.listener === listener);
        if (i >= 0) list.splice(i, 1);
        return this;
      }

      removeListener(event, listener) {
        return this.off(event, listener);
      }

      removeAllListeners(event) {
        if (event === undefined) this._listeners.clear();
        else this._listeners.delete(event);
        return this;
      }

      listenerCount(event) {
        return (this._listeners.get(event) || []).length;
      }

      emit(event, ...args) {
        const list = this._listeners.get(event);
        if (!list || !list.length) return false;
        for (const listener of list.slice()) {
          try {
            listener.apply(this, args);
          } catch (error) {
            if (typeof console !== "undefined") console.error(`netquality: a ${event} listener threw`, error);
          }
        }
        return true;
      }
    }
    return { EventEmitter };
  })();

  modules["token.js"] = (function () {
    /*
     * token.js: read (never verify: the server does) the room and participant an access token names,
     * so `connect({url, token})` needs nothing else, like Twilio's connect(token).
     */

    function base64UrlDecode(text) {
      const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
      if (typeof atob === "function") {
        const binary = atob(padded);
        const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
        return new TextDecoder().decode(bytes);
      }
      return Buffer.from(padded, "base64").toString("utf8"); // node without atob
    }

    /** {roomSid, participantSid, expiresAt} of an access token; throws a clear Error if it is none. */
    function tokenClaims(token) {
      const parts = typeof token === "string" ? token.split(".") : [];
      if (parts.length !== 3) throw new Error("NetQuality.connect: token is not an access token (mint one with `netquality token`)");
      let claims;
      try {
        claims = JSON.parse(base64UrlDecode(parts[1]));
      } catch (_) {
        throw new Error("NetQuality.connect: the access token's payload is not readable");
      }
      if (typeof claims.room !== "string" || typeof claims.sub !== "string") {
        throw new Error("NetQuality.connect: the access token names no room or participant");
      }
      return { roomSid: claims.room, participantSid: claims.sub, expiresAt: typeof claims.exp === "number" ? claims.exp * 1000 : null };
    }
    return { tokenClaims };
  })();

  modules["room.js"] = (function () {
    /*
     * room.js: the subscribing side, shaped like twilio-video's Room and Participants.
     *
     * A Room reads its room's live feed (GET /api/rooms/{roomSid}/feed, Server-Sent Events): a
     * `snapshot` first (every present participant's current level), then `level` events. A dropped
     * feed reconnects with the id of the last event seen (Last-Event-ID), and the server replays
     * what was missed before a fresh snapshot, so the app sees every change once and in order.
     *
     * The local participant's level is the server's, except while its own peer connection is
     * disconnected, failed or closed: then it reads 0 at once, because this client knows before
     * any server can (the server hears of it with the next samples, if they get through at all).
     *
     * Verbosity follows Twilio's NetworkQualityVerbosity: 0 none (remote only), 1 minimal (the
     * level), 2 moderate (+ audio/video send and recv levels), 3 detailed (+ sendStats/recvStats
     * with bandwidth, latency and fractionLost). Defaults as Twilio's: local 1, remote 0.
     *
     * Whose network: when the server attributes what a participant receives to a publisher's
     * uplink (an SFU room), its events carry a cause, {kind: "upstream", participantSid,
     * trackSid}. Twilio's listener takes (level, stats); the cause comes third, and as
     * `participant.networkQualityCause` (null when none), at every verbosity.
     */
    const { start, worstState } = modules["stats.js"];
    const { EventEmitter } = modules["events.js"];
    const { tokenClaims } = modules["token.js"];

    const DEFAULT_CONFIGURATION = { local: 1, remote: 0 };
    const DOWN_STATES = new Set(["reconnecting", "failed", "disconnected"]);
    const STATE_POLL_MS = 250;
    // RTCPeerConnection.close() fires no connectionstatechange (W3C webrtc-pc, "close the
    // connection"), so the states are also polled: four times a second keeps "0 at once" well
    // within a second for that case too.
    const RECONNECT_MIN_MS = 1000;
    const RECONNECT_MAX_MS = 30000;
    const CONNECT_TIMEOUT_MS = 15000;
    const METRICS = { bandwidth: ["actual", "available"], latency: ["jitter", "rtt"], fractionLost: ["fractionLost"] };

    function verbosity(value, min, name) {
      if (value === undefined) return undefined;
      if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > 3) {
        throw new TypeError(`networkQuality.${name} must be an integer from ${min} to 3`);
      }
      return value;
    }

    function configurationFrom(option) {
      if (option === undefined || option === true || option === null) return { ...DEFAULT_CONFIGURATION };
      if (option === false) return { local: 1, remote: 0 };
      if (typeof option !== "object") throw new TypeError("networkQuality must be true, false or {local, remote}");
      return {
        local: verbosity(option.local, 1, "local") ?? DEFAULT_CONFIGURATION.local,
        remote: verbosity(option.remote, 0, "remote") ?? DEFAULT_CONFIGURATION.remote,
      };
    }

    /** Twilio's NetworkQualitySendOrRecvStats: every metric present, unknown values null. */
    function sendOrRecvStats(stats) {
      if (!stats || typeof stats !== "object") return null;
      const out = {};
      for (const [metric, fields] of Object.entries(METRICS)) {
        const entry = stats[metric] && typeof stats[metric] === "object" ? stats[metric] : {};
        out[metric] = {};
        for (const field of fields) out[metric][field] = typeof entry[field] === "number" ? entry[field] : null;
        out[metric].level = typeof entry.level === "number" ? entry.level : null;
      }
      return out;
    }

    /** Twilio's NetworkQualityStats from a feed view: null below verbosity 2. */
    function statsFrom(view, level, v) {
      if (v < 2 || !view) return null;
      const media = (m) =>
        m
          ? {
              send: m.send ?? null,
              recv: m.recv ?? null,
              sendStats: v >= 3 ? sendOrRecvStats(m.sendStats) : null,
              recvStats: v >= 3 ? sendOrRecvStats(m.recvStats) : null,
            }
          : null;
      return { level, audio: media(view.audio), video: media(view.video) };
    }

    /** The view's cause ({kind, participantSid, trackSid}), or null. */
    function causeFrom(view) {
      const cause = view && view.cause;
      if (!cause || typeof cause !== "object" || typeof cause.participantSid !== "string") return null;
      return { kind: cause.kind, participantSid: cause.participantSid, trackSid: cause.trackSid ?? null };
    }

    class Participant extends EventEmitter {
      constructor(sid) {
        super();
        this.sid = sid;
        this.identity = sid;
        this.networkQualityLevel = null;
        this.networkQualityStats = null;
        this.networkQualityCause = null;
        this._view = null;
        this._shown = JSON.stringify([null, null, null]);
      }

      /** Keep the newest view (older ones arrive only out of order: dropped). */
      _remember(view) {
        if (this._view && typeof view.timestamp === "number" && view.timestamp < this._view.timestamp) return false;
        this._view = view;
        return true;
      }

      _show(level, stats, quiet) {
        const cause = level === null ? null : causeFrom(this._view);
        const key = JSON.stringify([level, stats, cause]);
        if (key === this._shown) return;
        this._shown = key;
        this.networkQualityLevel = level;
        this.networkQualityStats = stats;
        this.networkQualityCause = cause;
        if (!quiet && level !== null) this.emit("networkQualityLevelChanged", level, stats, cause);
      }
    }

    class RemoteParticipant extends Participant {
      _render(v) {
        if (v === 0 || !this._view) this._show(null, null, true);
        else this._show(this._view.level, statsFrom(this._view, this._view.level, v));
      }
    }

    class LocalParticipant extends Participant {
      constructor(sid, room) {
        super(sid);
        this._room = room;
        this._down = false;
      }

      _render(v) {
        const level = this._down ? 0 : this._view ? this._view.level : null;
        this._show(level, level === null ? null : statsFrom(this._view, level, v));
      }

      /** Twilio's LocalParticipant.setNetworkQualityConfiguration({local, remote}). */
      setNetworkQualityConfiguration(configuration) {
        this._room.setNetworkQualityConfiguration(configuration);
        return this;
      }
    }

    class Room extends EventEmitter {
      constructor(options) {
        super();
        const claims = tokenClaims(options.token);
        if (!options.url) throw new TypeError("NetQuality.connect: url (the netquality web service) is required");
        this.sid = claims.roomSid;
        this.name = claims.roomSid;
        this.state = "connecting";
        this.localParticipant = new LocalParticipant(claims.participantSid, this);
        this.participants = new Map();
        this._options = options;
        this._base = String(options.url).replace(/\/+$/, "");
        this._configuration = configurationFrom(options.networkQuality);
        this._EventSource = options.EventSource || (typeof EventSource !== "undefined" ? EventSource : null);
        if (!this._EventSource) throw new TypeError("NetQuality.connect: no EventSource here; pass options.EventSource");
        this._pcs = options.peerConnections || (options.peerConnection ? [options.peerConnection] : []);
        this._source = null;
        this._feedVerbosity = null;
        this._lastEventId = null;
        this._retryMs = 0;
        this._retryTimer = null;
        this._publisher = null;
        this._onPeerState = () => this._checkConnection();
        this._stateTimer = null;
      }

      // --- lifecycle ---------------------------------------------------------------------------

      _open() {
        this._ready = new Promise((resolve, reject) => {
          this._resolve = resolve;
          this._reject = reject;
        });
        const timeout = this._options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
        this._connectTimer = setTimeout(() => {
          this.disconnect();
          this._reject(new Error(`NetQuality.connect: no snapshot of room ${this.sid} from ${this._base} within ${timeout} ms (wrong url, or a token that is expired or for another room?)`));
        }, timeout);
        for (const pc of this._pcs) {
          if (pc && typeof pc.addEventListener === "function") {
            pc.addEventListener("connectionstatechange", this._onPeerState);
            pc.addEventListener("iceconnectionstatechange", this._onPeerState);
          }
        }
        if (this._pcs.length) this._stateTimer = setInterval(this._onPeerState, STATE_POLL_MS);
        if (this._pcs.length && this._options.publish !== false) {
          this._publishOptions = {
            peerConnections: this._pcs,
            endpoint: this._options.ingestUrl || `${this._base}/ingest/v1/samples`,
            token: this._options.token,
            roomSid: this.sid,
            participantSid: this.localParticipant.sid,
            region: this._options.region || "default",
            intervalMs: this._options.intervalMs,
            batchIntervalMs: this._options.batchIntervalMs || 1000,
            fetch: this._options.fetch,
            onError: this._options.onError,
            topology: this._options.topology,
          };
          this._publisher = start(this._publishOptions);
        }
        this._connectFeed();
        this._checkConnection();
        return this._ready;
      }

      /** Leave: stop publishing and reading; the room emits "disconnected". */
      disconnect() {
        if (this.state === "disconnected") return this;
        this.state = "disconnected";
        clearTimeout(this._connectTimer);
        clearTimeout(this._retryTimer);
        clearInterval(this._stateTimer);
        if (this._source) this._source.close();
        this._source = null;
        if (this._publisher) this._publisher.stop();
        for (const pc of this._pcs) {
          if (pc && typeof pc.removeEventListener === "function") {
            pc.removeEventListener("connectionstatechange", this._onPeerState);
            pc.removeEventListener("iceconnectionstatechange", this._onPeerState);
          }
        }
        this.emit("disconnected", this);
        return this;
      }

      /**
       * A fresh access token for a call that outlives the first one (mint it before the old one
       * expires): the next posts and the next feed reconnect use it. Same room and participant only.
       */
      updateToken(token) {
        const claims = tokenClaims(token);
        if (claims.roomSid !== this.sid || claims.participantSid !== this.localParticipant.sid) {
          throw new Error(`updateToken: the token is for ${claims.participantSid} in ${claims.roomSid}, not ${this.localParticipant.sid} in ${this.sid}`);
        }
        this._options.token = token;
        if (this._publishOptions) this._publishOptions.token = token;
        return this;
      }

      /** Twilio's setNetworkQualityConfiguration: {local: 1..3, remote: 0..3}, either may be left out. */
      setNetworkQualityConfiguration(configuration) {
        if (!configuration || typeof configuration !== "object") {
          throw new TypeError("setNetworkQualityConfiguration expects {local, remote}");
        }
        const local = verbosity(configuration.local, 1, "local");
        const remote = verbosity(configuration.remote, 0, "remote");
        if (local !== undefined) this._configuration.local = local;
        if (remote !== undefined) this._configuration.remote = remote;
        this._renderAll();
        // More detail than the feed carries needs a feed at that verbosity: reopen it where it was.
        if (this._wantedVerbosity() > this._feedVerbosity && this.state !== "disconnected") this._reconnectFeed(0);
        return this;
      }

      get networkQualityConfiguration() {
        return { ...this._configuration };
      }

      // --- the feed ------------------------------------------------------------------------------

      _wantedVerbosity() {
        return Math.max(1, this._configuration.local, this._configuration.remote);
      }

      _feedUrl() {
        const params = [`verbosity=${this._feedVerbosity}`, `access_token=${encodeURIComponent(this._options.token)}`];
        if (this._lastEventId) params.push(`lastEventId=${encodeURIComponent(this._lastEventId)}`);
        return `${this._base}/api/rooms/${encodeURIComponent(this.sid)}/feed?${params.join("&")}`;
      }

      _connectFeed() {
        this._feedVerbosity = this._wantedVerbosity();
        const source = new this._EventSource(this._feedUrl());
        this._source = source;
        const mine = (handler) => (event) => {
          if (this._source !== source) return; // a replaced feed's late events
          if (event && event.lastEventId) this._lastEventId = event.lastEventId;
          handler(event);
        };
        source.addEventListener("snapshot", mine((e) => this._onSnapshot(JSON.parse(e.data))));
        source.addEventListener("level", mine((e) => this._onView(JSON.parse(e.data))));
        source.addEventListener("open", mine(() => {
          this._retryMs = 0;
        }));
        source.addEventListener("error", mine(() => this._onFeedError(source)));
      }

      _onFeedError(source) {
        if (this.state === "disconnected") return;
        if (this.state === "connected") {
          this.state = "reconnecting";
          this.emit("reconnecting");
        }
        // CONNECTING (0): the browser retries by itself and sends Last-Event-ID. CLOSED (2): it
        // gave up (an HTTP error); retry here with backoff, carrying the last id in the URL.
        if (source.readyState === 2) {
          this._retryMs = Math.min(RECONNECT_MAX_MS, this._retryMs ? this._retryMs * 2 : RECONNECT_MIN_MS);
          this._reconnectFeed(this._retryMs);
        }
      }

      _reconnectFeed(delayMs) {
        clearTimeout(this._retryTimer);
        this._retryTimer = setTimeout(() => {
          if (this.state === "disconnected") return;
          if (this._source) this._source.close();
          this._connectFeed();
        }, delayMs);
      }

      _onSnapshot(data) {
        const present = new Set();
        for (const view of data.participants || []) {
          present.add(view.participantSid);
          this._onView(view);
        }
        for (const sid of [...this.participants.keys()]) if (!present.has(sid)) this._depart(sid);
        if (this.state === "connecting") {
          this.state = "connected";
          clearTimeout(this._connectTimer);
          this._resolve(this);
        } else if (this.state === "reconnecting") {
          this.state = "connected";
          this.emit("reconnected");
        }
      }

      _onView(view) {
        const sid = view.participantSid;
        if (sid === this.localParticipant.sid) {
          if (!view.departed && this.localParticipant._remember(view)) this.localParticipant._render(this._configuration.local);
          return;
        }
        if (view.departed) {
          this._depart(sid, view);
          return;
        }
        let participant = this.participants.get(sid);
        const fresh = !participant;
        if (fresh) participant = new RemoteParticipant(sid);
        if (!participant._remember(view)) return;
        participant._render(this._configuration.remote);
        if (fresh) {
          this.participants.set(sid, participant);
          this.emit("participantConnected", participant);
        }
      }

      _depart(sid, view) {
        const participant = this.participants.get(sid);
        if (!participant) return;
        if (view && participant._view && view.timestamp < participant._view.timestamp) return;
        this.participants.delete(sid);
        participant.state = "disconnected";
        this.emit("participantDisconnected", participant);
        participant.emit("disconnected", participant);
      }

      _renderAll() {
        this.localParticipant._render(this._configuration.local);
        for (const participant of this.participants.values()) participant._render(this._configuration.remote);
      }

      // --- the local connection ------------------------------------------------------------------

      _checkConnection() {
        if (!this._pcs.length || this.state === "disconnected") return;
        let state;
        try {
          state = worstState(this._pcs);
        } catch (_) {
          return; // an unknown state string: leave the level to the server
        }
        const down = DOWN_STATES.has(state);
        if (down !== this.localParticipant._down) {
          this.localParticipant._down = down;
          this.localParticipant._render(this._configuration.local);
        }
      }
    }

    /**
     * Join a room's network quality: publish this participant's stats and follow every level.
     * Resolves with the Room once the first snapshot has arrived.
     */
    function connect(options) {
      if (!options || typeof options !== "object") throw new TypeError("NetQuality.connect expects {url, token, ...}");
      const room = new Room(options);
      return room._open();
    }
    return { connect, Room, Participant, LocalParticipant, RemoteParticipant, DEFAULT_CONFIGURATION };
  })();

  modules["index.js"] = (function () {
    /*
     * netquality-client: Network Quality Levels for every participant of a call, with Twilio's names.
     *
     *   import { connect } from "netquality-client";
     *   const room = await connect({ url, token, peerConnections: [pc], networkQuality: { local: 2, remote: 1 } });
     *
     * `stats` is the publishing side alone (what netquality-stats.js offered as NetqualityStats).
     */
    const { connect, Room, Participant, LocalParticipant, RemoteParticipant, DEFAULT_CONFIGURATION } = modules["room.js"];
    const { start, sampleFromReport, normalizeReport, mergeReports, mapConnectionState, reportTimestamp, worstState } = modules["stats.js"];
    const { tokenClaims } = modules["token.js"];

    const stats = { start, sampleFromReport, normalizeReport, mergeReports, mapConnectionState, reportTimestamp, worstState };
    const version = "0.1.0"; // package.json; test/build.test.js keeps them equal
    return { connect, Room, Participant, LocalParticipant, RemoteParticipant, DEFAULT_CONFIGURATION, stats, tokenClaims, version };
  })();

  return modules["index.js"];
});
