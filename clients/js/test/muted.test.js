// Muted local tracks are marked in the sample (not a getStats field), in both mappings.
import { it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { stats } from "../src/index.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const report = JSON.parse(readFileSync(join(ROOT, "tests", "fixtures", "getstats", "first.json"), "utf8"));
const identity = { roomSid: "RM01", participantSid: "PA01", region: "us1", seq: 1 };

function sourceTrackIds() {
  return report.filter((s) => s.type === "media-source" && s.trackIdentifier).map((s) => [s.kind, s.trackIdentifier]);
}

it("a muted local track's outbound stream says muted, the others do not", () => {
  const [[kind, id]] = sourceTrackIds();
  const sample = stats.sampleFromReport(report, { ...identity, mutedTracks: new Set([id]) });
  const muted = sample.outbound.filter((t) => t.muted === true);
  assert.ok(muted.length >= 1);
  assert.ok(muted.every((t) => t.kind === kind));
  assert.ok(sample.outbound.some((t) => !("muted" in t)));
});

it("without muted tracks no outbound stream carries the field", () => {
  const sample = stats.sampleFromReport(report, identity);
  assert.ok(sample.outbound.length >= 1);
  assert.ok(sample.outbound.every((t) => !("muted" in t)));
});

it("the topology option is passed through, anything else left out", () => {
  assert.equal(stats.sampleFromReport(report, { ...identity, topology: "sfu" }).topology, "sfu");
  assert.equal(stats.sampleFromReport(report, { ...identity, topology: "p2p" }).topology, "p2p");
  assert.ok(!("topology" in stats.sampleFromReport(report, { ...identity, topology: "mesh" })));
  assert.ok(!("topology" in stats.sampleFromReport(report, identity)));
});
