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
import { start, worstState } from "./stats.js";
import { EventEmitter } from "./events.js";
import { tokenClaims } from "./token.js";

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

export { connect, Room, Participant, LocalParticipant, RemoteParticipant, DEFAULT_CONFIGURATION };
