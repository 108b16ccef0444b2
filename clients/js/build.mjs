// build.mjs: the single-file builds from src/ (no dependencies, no bundler).
//
//   node build.mjs          write the builds
//   node build.mjs --check  exit 1 when a committed build differs from the sources
//
// Outputs:
//   dist/netquality.js                            the browser/CommonJS bundle (global NetQuality)
//   ../../pipelines/web/static/netquality.js      the same bundle, served by the web service
//   ../../pipelines/ingest/static/netquality-stats.js   the publishing side alone, as the old
//                                                 script (global NetqualityStats, same API)
//
// Each source module is an ES module whose imports are `import { a, b } from "./x.js";` lines
// and whose exports are one `export { ... };` line at the end. The build wraps every module in
// a function scope, turns its imports into reads of the modules before it and its export line
// into a return: the files browsers and node load are the very code the unit tests import.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");
const ORDER = ["stats.js", "events.js", "token.js", "room.js", "index.js"];
const IMPORT = /^import \{([^}]*)\} from "\.\/([a-z]+\.js)";$/;
const EXPORT = /^export \{([^}]*)\};$/;
const VERSION = JSON.parse(readFileSync(join(HERE, "package.json"), "utf8")).version;

function moduleBody(name) {
  const lines = readFileSync(join(HERE, "src", name), "utf8").split("\n");
  const out = [];
  let exported = null;
  for (const line of lines) {
    const imp = line.match(IMPORT);
    const exp = line.match(EXPORT);
    if (imp) out.push(`const {${imp[1]}} = modules[${JSON.stringify(imp[2])}];`);
    else if (exp) exported = exp[1].trim();
    else if (/^\s*(import|export)\b/.test(line)) throw new Error(`${name}: unsupported line: ${line}`);
    else out.push(line);
  }
  if (exported === null) throw new Error(`${name}: no export line`);
  return { text: out.join("\n").trimEnd(), exported };
}

function indent(text) {
  return text
    .split("\n")
    .map((l) => (l ? "    " + l : l))
    .join("\n");
}

function umd(header, globalName, names, result) {
  const modules = names
    .map((name) => {
      const { text, exported } = moduleBody(name);
      return `  modules[${JSON.stringify(name)}] = (function () {\n${indent(text)}\n    return { ${exported} };\n  })();`;
    })
    .join("\n\n");
  return `${header}(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.${globalName} = api;
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";
  // Built by clients/js/build.mjs from clients/js/src (netquality client ${VERSION}); do not edit.
  const modules = {};

${modules}

  return ${result};
});
`;
}

const LEGACY_HEADER = readFileSync(join(HERE, "legacy-header.txt"), "utf8");
const BUNDLE_HEADER = `/*
 * netquality.js ${VERSION}: netquality's client for browsers, in one file (global NetQuality).
 * Publishes the local participant's WebRTC stats and follows the room's Network Quality Levels
 * with Twilio's names: NetQuality.connect({url, token, peerConnections, networkQuality}).
 * Source, types and docs: clients/js (npm package "netquality-client").
 */
`;

const outputs = {
  [join(HERE, "dist", "netquality.js")]: umd(BUNDLE_HEADER, "NetQuality", ORDER, 'modules["index.js"]'),
  [join(ROOT, "pipelines", "web", "static", "netquality.js")]: null,
  [join(ROOT, "pipelines", "ingest", "static", "netquality-stats.js")]: umd(
    LEGACY_HEADER, "NetqualityStats", ["stats.js"], 'modules["stats.js"]'),
};
outputs[join(ROOT, "pipelines", "web", "static", "netquality.js")] = outputs[join(HERE, "dist", "netquality.js")];

const check = process.argv.includes("--check");
let stale = 0;
for (const [path, text] of Object.entries(outputs)) {
  if (check) {
    if (path.includes(`${join("js", "dist")}`)) continue; // dist/ is built at npm pack time
    let current = null;
    try {
      current = readFileSync(path, "utf8");
    } catch (_) {
      current = null;
    }
    if (current !== text) {
      console.error(`stale build: ${path} (run: node clients/js/build.mjs)`);
      stale += 1;
    }
  } else {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  }
}
process.exit(stale ? 1 : 0);
