// Fakes of the browser objects the client touches: EventSource and RTCPeerConnection.
import { Buffer } from "node:buffer";

/** An EventSource the test drives: serverEvent(), drop(), fail(); all instances are recorded. */
export class FakeEventSource {
  static instances = [];

  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.listeners = {};
    this.closed = false;
    FakeEventSource.instances.push(this);
  }

  static reset() {
    FakeEventSource.instances = [];
  }

  static get last() {
    return FakeEventSource.instances[FakeEventSource.instances.length - 1];
  }

  addEventListener(type, listener) {
    (this.listeners[type] = this.listeners[type] || []).push(listener);
  }

  close() {
    this.readyState = 2;
    this.closed = true;
  }

  dispatch(type, event) {
    for (const listener of this.listeners[type] || []) listener(event);
  }

  open() {
    this.readyState = 1;
    this.dispatch("open", {});
  }

  /** A named server event with JSON data and an id, as the feed sends. */
  serverEvent(type, data, id) {
    this.dispatch(type, { type, data: JSON.stringify(data), lastEventId: id === undefined ? "" : String(id) });
  }

  /** The connection dropped; the browser will retry by itself (readyState CONNECTING). */
  drop() {
    this.readyState = 0;
    this.dispatch("error", {});
  }

  /** The browser gave up (e.g. an HTTP error): readyState CLOSED. */
  fail() {
    this.readyState = 2;
    this.dispatch("error", {});
  }

  params() {
    return new URL(this.url).searchParams;
  }
}

/** An RTCPeerConnection with a settable connectionState and a canned getStats(). */
export class FakePeerConnection {
  constructor() {
    this.connectionState = "connected";
    this.iceConnectionState = "connected";
    this.listeners = {};
    this.bytesSent = 0;
  }

  addEventListener(type, listener) {
    (this.listeners[type] = this.listeners[type] || []).push(listener);
  }

  removeEventListener(type, listener) {
    this.listeners[type] = (this.listeners[type] || []).filter((l) => l !== listener);
  }

  /** Change state and fire connectionstatechange, as a browser does (except on close()). */
  setState(state, { fire = true } = {}) {
    this.connectionState = state;
    this.iceConnectionState = state === "closed" ? "closed" : state;
    if (fire) for (const listener of this.listeners.connectionstatechange || []) listener({});
  }

  async getStats() {
    this.bytesSent += 50000;
    const now = Date.now();
    return new Map([
      ["OT1", { id: "OT1", type: "outbound-rtp", kind: "video", timestamp: now, bytesSent: this.bytesSent, packetsSent: this.bytesSent / 1000, targetBitrate: 400000 }],
      ["CP1", { id: "CP1", type: "candidate-pair", timestamp: now, selected: true, bytesSent: this.bytesSent, currentRoundTripTime: 0.05, availableOutgoingBitrate: 900000 }],
    ]);
  }
}

/** An unsigned token with the claims the client reads (the server verifies; the client never does). */
export function fakeToken(room, participant) {
  const part = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
  return `${part({ alg: "HS256", kid: "k1" })}.${part({ room, sub: participant, exp: 2000000000 })}.c2ln`;
}

/** A feed view as the server sends it at verbosity 3. */
export function view(participantSid, level, timestamp, extra = {}) {
  const stats = (l) => ({
    bandwidth: { actual: 300000, available: 350000, level: l },
    latency: { jitter: 0.004, rtt: 0.05, level: 5 },
    fractionLost: { fractionLost: 0.01, level: 5 },
  });
  return {
    participantSid,
    roomSid: "RM1",
    eventId: `${participantSid}:${timestamp}`,
    timestamp,
    level,
    previousLevel: null,
    departed: false,
    limitedBy: level < 5 ? "video.send.bandwidth" : null,
    audio: { send: 5, recv: 5, sendStats: stats(5), recvStats: null, sendLimitedBy: null, recvLimitedBy: null },
    video: { send: level, recv: null, sendStats: stats(level), recvStats: null, sendLimitedBy: "bandwidth", recvLimitedBy: null },
    ...extra,
  };
}
