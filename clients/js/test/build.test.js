// The built files are the sources: the committed builds are fresh, the bundle loads and speaks.
import { it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as esm from "../src/index.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const PACKAGE = join(HERE, "..");
const ROOT = join(PACKAGE, "..", "..");
const require = createRequire(import.meta.url);

it("the committed builds equal a fresh build of src/", () => {
  execFileSync(process.execPath, [join(PACKAGE, "build.mjs"), "--check"], { stdio: "pipe" });
});

it("the served bundle exports what the ES module exports", () => {
  const bundle = require(join(ROOT, "pipelines", "web", "static", "netquality.js"));
  assert.deepEqual(Object.keys(bundle).sort(), Object.keys(esm).sort());
  assert.equal(typeof bundle.connect, "function");
  assert.deepEqual(Object.keys(bundle.stats).sort(), Object.keys(esm.stats).sort());
});

it("the old script keeps its global and its API", () => {
  const legacy = require(join(ROOT, "pipelines", "ingest", "static", "netquality-stats.js"));
  for (const name of ["start", "sampleFromReport", "normalizeReport", "mergeReports", "mapConnectionState", "reportTimestamp"]) {
    assert.equal(typeof legacy[name], "function", name);
  }
  assert.match(readFileSync(join(ROOT, "pipelines", "ingest", "static", "netquality-stats.js"), "utf8"), /root\.NetqualityStats = api/);
});

it("package.json is publishable: no runtime dependencies, version and types in place", () => {
  const pkg = JSON.parse(readFileSync(join(PACKAGE, "package.json"), "utf8"));
  assert.equal(pkg.dependencies, undefined);
  assert.equal(pkg.version, esm.version);
  assert.equal(pkg.types, "./index.d.ts");
  assert.ok(pkg.files.includes("index.d.ts") && pkg.files.includes("src/"));
});
