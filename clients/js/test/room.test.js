// The subscribing side under node's test runner, with a fake EventSource and RTCPeerConnection.
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import assert from "node:assert/strict";

import { connect } from "../src/index.js";
import { FakeEventSource, FakePeerConnection, fakeToken, view } from "./fakes.js";

const URL_BASE = "https://nq.example";
const rooms = [];

async function join(options = {}, snapshot = [view("PA1", 5, 1000), view("PA2", 4, 1000)]) {
  const pending = connect({
    url: URL_BASE,
    token: fakeToken("RM1", "PA1"),
    EventSource: FakeEventSource,
    publish: false,
    ...options,
  });
  const source = FakeEventSource.last;
  source.open();
  source.serverEvent("snapshot", { roomSid: "RM1", participants: snapshot }, 1000);
  const room = await pending;
  rooms.push(room);
  return { room, source };
}

function record(emitter, event) {
  const calls = [];
  emitter.on(event, (...args) => calls.push(args));
  return calls;
}

beforeEach(() => FakeEventSource.reset());
afterEach(() => {
  for (const room of rooms.splice(0)) room.disconnect();
});

describe("connect", () => {
  it("resolves with the first snapshot: local level, remote participants, one feed request", async () => {
    const { room, source } = await join({ networkQuality: { local: 1, remote: 1 } });
    assert.equal(FakeEventSource.instances.length, 1);
    assert.equal(source.url.split("?")[0], `${URL_BASE}/api/rooms/RM1/feed`);
    assert.equal(source.params().get("verbosity"), "1");
    assert.equal(source.params().get("access_token"), fakeToken("RM1", "PA1"));
    assert.equal(room.sid, "RM1");
    assert.equal(room.state, "connected");
    assert.equal(room.localParticipant.sid, "PA1");
    assert.equal(room.localParticipant.networkQualityLevel, 5);
    assert.deepEqual([...room.participants.keys()], ["PA2"]);
    assert.equal(room.participants.get("PA2").networkQualityLevel, 4);
  });

  it("leaves the local level null until the server knows it", async () => {
    const { room } = await join({}, [view("PA2", 4, 1000)]);
    assert.equal(room.localParticipant.networkQualityLevel, null);
    const changes = record(room.localParticipant, "networkQualityLevelChanged");
    FakeEventSource.last.serverEvent("level", view("PA1", 3, 2000), 2000);
    assert.deepEqual(changes.map(([level]) => level), [3]);
  });

  it("refuses a token that is not an access token, with a clear message", () => {
    assert.throws(() => connect({ url: URL_BASE, token: "opaque-operator-token", EventSource: FakeEventSource }),
      /not an access token/);
    assert.throws(() => connect({ url: URL_BASE, token: fakeToken("RM1", "PA1"), EventSource: FakeEventSource,
      networkQuality: { local: 0 } }), /local must be an integer from 1 to 3/);
  });

  it("rejects when no snapshot arrives in time", async () => {
    const pending = connect({ url: URL_BASE, token: fakeToken("RM1", "PA1"), EventSource: FakeEventSource,
      publish: false, connectTimeoutMs: 5 });
    await assert.rejects(pending, /no snapshot of room RM1/);
    assert.ok(FakeEventSource.last.closed);
  });
});

describe("verbosity", () => {
  it("remote 0 means no remote levels at all", async () => {
    const { room, source } = await join({ networkQuality: { local: 1, remote: 0 } });
    const remote = room.participants.get("PA2");
    const changes = record(remote, "networkQualityLevelChanged");
    source.serverEvent("level", view("PA2", 2, 2000), 2000);
    assert.equal(remote.networkQualityLevel, null);
    assert.equal(remote.networkQualityStats, null);
    assert.deepEqual(changes, []);
  });

  it("1 is the level only; 2 adds send/recv per media; 3 adds Twilio's detailed stats", async () => {
    const { room, source } = await join({ networkQuality: { local: 3, remote: 2 } });
    assert.equal(source.params().get("verbosity"), "3");
    const local = room.localParticipant.networkQualityStats;
    assert.equal(local.level, 5);
    assert.deepEqual(Object.keys(local.video), ["send", "recv", "sendStats", "recvStats"]);
    assert.deepEqual(local.video.sendStats, {
      bandwidth: { actual: 300000, available: 350000, level: 5 },
      latency: { jitter: 0.004, rtt: 0.05, level: 5 },
      fractionLost: { fractionLost: 0.01, level: 5 },
    });
    assert.equal(local.video.recvStats, null);
    const remote = room.participants.get("PA2").networkQualityStats;
    assert.deepEqual(remote.video, { send: 4, recv: null, sendStats: null, recvStats: null });
    assert.deepEqual(remote.audio, { send: 5, recv: 5, sendStats: null, recvStats: null });

    const { room: minimal } = await join({ networkQuality: { local: 1, remote: 1 } });
    assert.equal(minimal.localParticipant.networkQualityStats, null);
    assert.equal(minimal.participants.get("PA2").networkQualityStats, null);
  });

  it("events carry (level, stats) and fire once per visible change", async () => {
    const { room, source } = await join({ networkQuality: { local: 1, remote: 2 } });
    const remote = room.participants.get("PA2");
    const changes = record(remote, "networkQualityLevelChanged");
    source.serverEvent("level", view("PA2", 3, 2000), 2000);
    source.serverEvent("level", view("PA2", 3, 2500), 2500); // nothing visible changed
    assert.equal(changes.length, 1);
    const [level, stats] = changes[0];
    assert.equal(level, 3);
    assert.equal(stats.level, 3);
    assert.equal(stats.video.send, 3);
  });

  it("a cause (whose network) comes third with the event and stays on the participant", async () => {
    const { room, source } = await join({ networkQuality: { local: 1, remote: 1 } });
    const remote = room.participants.get("PA2");
    const changes = record(remote, "networkQualityLevelChanged");
    const cause = { kind: "upstream", participantSid: "PA3", trackSid: "MT7" };
    source.serverEvent("level", view("PA2", 4, 2000, { cause }), 2000);
    source.serverEvent("level", view("PA2", 4, 2500, { cause }), 2500); // nothing changed
    source.serverEvent("level", view("PA2", 4, 3000), 3000); // the cause went: an event
    assert.deepEqual(changes, [[4, null, cause], [4, null, null]]);
    assert.equal(remote.networkQualityCause, null);
    const local = record(room.localParticipant, "networkQualityLevelChanged");
    source.serverEvent("level", view("PA1", 5, 3000, { cause }), 3000);
    assert.deepEqual(local, [[5, null, cause]]);
    assert.deepEqual(room.localParticipant.networkQualityCause, cause);
  });

  it("setNetworkQualityConfiguration: less detail at once, more detail from a reopened feed", async () => {
    const { room, source } = await join({ networkQuality: { local: 1, remote: 1 } });
    const remote = room.participants.get("PA2");
    room.setNetworkQualityConfiguration({ remote: 0 });
    assert.equal(remote.networkQualityLevel, null);
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      room.localParticipant.setNetworkQualityConfiguration({ remote: 3 }); // Twilio's place for it
      mock.timers.tick(0);
    } finally {
      mock.timers.reset();
    }
    assert.ok(source.closed);
    const reopened = FakeEventSource.last;
    assert.notEqual(reopened, source);
    assert.equal(reopened.params().get("verbosity"), "3");
    assert.equal(reopened.params().get("lastEventId"), "1000");
    reopened.open();
    reopened.serverEvent("snapshot", { participants: [view("PA1", 5, 1000), view("PA2", 4, 1000)] }, 1000);
    assert.equal(remote.networkQualityLevel, 4);
    assert.equal(remote.networkQualityStats.video.sendStats.bandwidth.level, 4);
    assert.deepEqual(room.networkQualityConfiguration, { local: 1, remote: 3 });
  });
});

describe("ordering and reconnects", () => {
  it("drops an event older than what it already shows", async () => {
    const { room, source } = await join({ networkQuality: { remote: 1 } });
    const remote = room.participants.get("PA2");
    const changes = record(remote, "networkQualityLevelChanged");
    source.serverEvent("level", view("PA2", 2, 3000), 3000);
    source.serverEvent("level", view("PA2", 5, 2000), 2000); // late and older: ignored
    assert.deepEqual(changes.map(([l]) => l), [2]);
    assert.equal(remote.networkQualityLevel, 2);
  });

  it("a browser-retried feed resumes by itself: no new EventSource, reconnecting then reconnected", async () => {
    const { room, source } = await join({ networkQuality: { remote: 1 } });
    const states = [];
    room.on("reconnecting", () => states.push("reconnecting"));
    room.on("reconnected", () => states.push("reconnected"));
    source.drop();
    assert.equal(room.state, "reconnecting");
    source.open();
    source.serverEvent("level", { ...view("PA2", 2, 2000), replayed: true }, 2000);
    source.serverEvent("snapshot", { participants: [view("PA1", 5, 1000), view("PA2", 2, 2000)] }, 2000);
    assert.equal(FakeEventSource.instances.length, 1);
    assert.deepEqual(states, ["reconnecting", "reconnected"]);
    assert.equal(room.state, "connected");
  });

  it("a failed feed is reopened with lastEventId; missed changes arrive once, in order, no gap", async () => {
    const { room, source } = await join({ networkQuality: { remote: 1 } });
    const remote = room.participants.get("PA2");
    const changes = record(remote, "networkQualityLevelChanged");
    source.serverEvent("level", view("PA2", 3, 2000), 2000);
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      source.fail();
      assert.equal(FakeEventSource.instances.length, 1); // waits for the backoff
      mock.timers.tick(1000);
    } finally {
      mock.timers.reset();
    }
    const again = FakeEventSource.last;
    assert.notEqual(again, source);
    assert.equal(again.params().get("lastEventId"), "2000");
    // the server replays what happened while the feed was down, then the snapshot
    again.open();
    again.serverEvent("level", { ...view("PA2", 2, 3000), replayed: true }, 3000);
    again.serverEvent("level", { ...view("PA2", 1, 4000), replayed: true }, 4000);
    again.serverEvent("snapshot", { participants: [view("PA1", 5, 1000), view("PA2", 1, 4000)] }, 4000);
    again.serverEvent("level", view("PA2", 2, 5000), 5000);
    assert.deepEqual(changes.map(([l]) => l), [3, 2, 1, 2]);
    assert.equal(room.state, "connected");
  });
});

describe("participants", () => {
  it("arrive with participantConnected (level already set) and leave on departure", async () => {
    const { room, source } = await join({ networkQuality: { remote: 1 } });
    const connected = record(room, "participantConnected");
    const disconnected = record(room, "participantDisconnected");
    source.serverEvent("level", view("PA3", 4, 2000), 2000);
    assert.equal(connected.length, 1);
    assert.equal(connected[0][0].sid, "PA3");
    assert.equal(connected[0][0].networkQualityLevel, 4);
    source.serverEvent("level", view("PA3", 4, 3000, { departed: true }), 3000);
    assert.deepEqual(disconnected.map(([p]) => p.sid), ["PA3"]);
    assert.equal(room.participants.has("PA3"), false);
  });

  it("a remote whose stats stopped reads 0 when the server says so (staleness)", async () => {
    const { room, source } = await join({ networkQuality: { remote: 1 } });
    const changes = record(room.participants.get("PA2"), "networkQualityLevelChanged");
    source.serverEvent("level", view("PA2", 0, 2000, { limitedBy: "stale" }), 2000);
    assert.deepEqual(changes.map(([l]) => l), [0]);
  });

  it("a snapshot after a reconnect removes whoever left meanwhile", async () => {
    const { room, source } = await join({ networkQuality: { remote: 1 } });
    const disconnected = record(room, "participantDisconnected");
    source.drop();
    source.open();
    source.serverEvent("snapshot", { participants: [view("PA1", 5, 1000)] }, 3000);
    assert.deepEqual(disconnected.map(([p]) => p.sid), ["PA2"]);
    assert.equal(room.participants.size, 0);
  });
});

describe("the local participant's own connection", () => {
  it("reads 0 at once while its pc is disconnected or failed, then the server's level again", async () => {
    const pc = new FakePeerConnection();
    const { room } = await join({ peerConnections: [pc], networkQuality: { local: 2 } });
    const local = room.localParticipant;
    const changes = record(local, "networkQualityLevelChanged");
    pc.setState("disconnected");
    assert.equal(local.networkQualityLevel, 0); // synchronously, in the state event
    assert.equal(local.networkQualityStats.level, 0);
    pc.setState("failed");
    assert.equal(local.networkQualityLevel, 0);
    pc.setState("connected");
    assert.equal(local.networkQualityLevel, 5);
    assert.deepEqual(changes.map(([l]) => l), [0, 5]);
  });

  it("keeps 0 while down even when the server still says more", async () => {
    const pc = new FakePeerConnection();
    const { room, source } = await join({ peerConnections: [pc] });
    pc.setState("disconnected");
    source.serverEvent("level", view("PA1", 4, 2000), 2000);
    assert.equal(room.localParticipant.networkQualityLevel, 0);
    pc.setState("connected");
    assert.equal(room.localParticipant.networkQualityLevel, 4);
  });

  it("notices a close() that fires no event within a poll", async () => {
    const pc = new FakePeerConnection();
    mock.timers.enable({ apis: ["setInterval", "setTimeout"] });
    try {
      const { room } = await join({ peerConnections: [pc] });
      pc.setState("closed", { fire: false });
      assert.equal(room.localParticipant.networkQualityLevel, 5);
      mock.timers.tick(250);
      assert.equal(room.localParticipant.networkQualityLevel, 0);
      room.disconnect();
    } finally {
      mock.timers.reset();
    }
  });
});

describe("publishing", () => {
  it("posts the local participant's samples to the ingest with its token", async () => {
    const posts = [];
    const fakeFetch = async (url, init) => {
      posts.push({ url, init });
      return { status: 200, json: async () => ({ accepted: 1 }) };
    };
    const pc = new FakePeerConnection();
    const { room } = await join({ peerConnections: [pc], publish: true, fetch: fakeFetch, region: "eu1" });
    for (let i = 0; i < 50 && !posts.length; i++) await new Promise((r) => setTimeout(r, 10));
    room.disconnect();
    assert.ok(posts.length >= 1);
    const { url, init } = posts[0];
    assert.equal(url, `${URL_BASE}/ingest/v1/samples`);
    assert.equal(init.headers.Authorization, `Bearer ${fakeToken("RM1", "PA1")}`);
    const [sample] = JSON.parse(init.body);
    assert.equal(sample.schema, "netquality.stats.v1");
    assert.deepEqual([sample.roomSid, sample.participantSid, sample.region], ["RM1", "PA1", "eu1"]);
    assert.equal(sample.outbound[0].kind, "video");
  });
});

describe("tokens", () => {
  it("updateToken: later posts and feed reconnects carry the new token; another room's is refused", async () => {
    const tokens = [];
    const fakeFetch = async (url, init) => {
      tokens.push(init.headers.Authorization);
      return { status: 200, json: async () => ({}) };
    };
    const pc = new FakePeerConnection();
    const { room, source } = await join({ peerConnections: [pc], publish: true, fetch: fakeFetch, intervalMs: 5, batchIntervalMs: 5 });
    const fresh = fakeToken("RM1", "PA1").replace("c2ln", "bmV3");
    room.updateToken(fresh);
    assert.throws(() => room.updateToken(fakeToken("RM2", "PA1")), /for PA1 in RM2, not PA1 in RM1/);
    for (let i = 0; i < 100 && !tokens.includes(`Bearer ${fresh}`); i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(tokens.includes(`Bearer ${fresh}`));
    mock.timers.enable({ apis: ["setTimeout"] });
    try {
      source.fail();
      mock.timers.tick(1000);
    } finally {
      mock.timers.reset();
    }
    assert.equal(FakeEventSource.last.params().get("access_token"), fresh);
  });
});
