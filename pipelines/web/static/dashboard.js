// netquality dashboards: SVG charts (stacked level shares, per-participant step timelines) and
// the room page's live feed. No framework, no CDN; the server embeds the data as JSON.
"use strict";
(() => {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#7f1d1d", "#dc2626", "#f97316", "#eab308", "#84cc16", "#16a34a"];
  const BARS = "▃▄▅▆▇";

  const el = (name, attrs, parent) => {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  };
  const clock = (ms) => new Date(ms).toISOString().slice(11, 16);
  const axis = (svg, from, to, x, y0, width) => {
    const ticks = Math.max(2, Math.min(6, Math.floor(width / 110)));
    for (let i = 0; i <= ticks; i++) {
      const t = from + ((to - from) * i) / ticks;
      el("text", { x: x(t), y: y0 + 13, "text-anchor": i === 0 ? "start" : i === ticks ? "end" : "middle" }, svg)
        .textContent = clock(t);
    }
  };

  // Stacked shares of participant-seconds per level over time (level 0 at the bottom).
  function stacked(container, points, from, to) {
    container.textContent = "";
    if (!points.length) {
      // A minute is counted once it has closed, about a minute after it ends.
      container.innerHTML = '<p class="muted">No closed minutes in this range yet: each minute ' +
        "appears about a minute after it ends.</p>";
      return;
    }
    const W = Math.max(container.clientWidth, 300), H = 200, pad = 16;
    const svg = el("svg", { viewBox: `0 0 ${W} ${H + pad}`, role: "img", "aria-label": "levels over time" }, container);
    const x = (t) => ((t - from) / (to - from)) * W;
    const step = points.length > 1 ? points[1].time - points[0].time : 60000;
    const shares = points.map((p) => {
      const total = p.secondsAtLevel.reduce((a, b) => a + b, 0) || 1;
      return p.secondsAtLevel.map((s) => s / total);
    });
    for (let level = 5; level >= 0; level--) {
      // each bucket a rectangle from the cumulative share below this level to its top
      points.forEach((p, i) => {
        const below = shares[i].slice(0, level).reduce((a, b) => a + b, 0);
        const h = shares[i][level] * H;
        if (h <= 0) return;
        const x0 = x(p.time), x1 = x(p.time + step);
        el("rect", { x: x0, y: H - (below * H) - h, width: Math.max(x1 - x0, 1), height: h, fill: COLORS[level] }, svg);
      });
    }
    axis(svg, from, to, x, H, W);
  }

  // A participant's level as a step function over [from, to].
  function timeline(container, title, steps, from, to) {
    const box = document.createElement("div");
    box.className = "timeline";
    const h3 = document.createElement("h3");
    h3.textContent = title;
    box.appendChild(h3);
    const W = Math.max(container.clientWidth, 300), H = 60, pad = 14;
    const svg = el("svg", { viewBox: `0 0 ${W} ${H + pad}`, role: "img", "aria-label": `levels of ${title}` }, box);
    const x = (t) => Math.min(W, Math.max(0, ((t - from) / (to - from)) * W));
    const y = (level) => H - 4 - (level / 5) * (H - 8);
    for (const level of [0, 5]) el("line", { x1: 0, x2: W, y1: y(level), y2: y(level), stroke: "#23324f" }, svg);
    steps.forEach((s, i) => {
      const end = i + 1 < steps.length ? steps[i + 1].timestamp : to;
      if (end < from || s.timestamp > to) return;
      el("line", { x1: x(s.timestamp), x2: x(end), y1: y(s.level), y2: y(s.level), stroke: COLORS[s.level], "stroke-width": 3 }, svg);
      if (i > 0) el("line", { x1: x(s.timestamp), x2: x(s.timestamp), y1: y(steps[i - 1].level), y2: y(s.level), stroke: "#475569" }, svg);
    });
    axis(svg, from, to, x, H, W);
    container.appendChild(box);
  }

  const text = (v) => (v === null || v === undefined ? "" : String(v));
  function barsNode(level) {
    const span = document.createElement("span");
    span.className = `bars l${level}`;
    span.setAttribute("aria-label", `level ${level}`);
    [...BARS].forEach((ch, i) => {
      const s = document.createElement("span");
      s.className = i < level ? "on" : "off";
      s.textContent = ch;
      span.appendChild(s);
    });
    if (level === 0) { const x = document.createElement("span"); x.className = "x"; x.textContent = "✕"; span.appendChild(x); }
    return span;
  }
  function cell(row, className, content, label) {
    const td = document.createElement("td");
    td.className = className;
    td.dataset.label = label; // phones show each row as a card of labelled cells
    if (content instanceof Node) td.appendChild(content); else td.textContent = text(content);
    row.appendChild(td);
    return td;
  }
  function participantRow(v) {
    const tr = document.createElement("tr");
    tr.dataset.participant = v.participantSid;
    tr.dataset.level = v.level;
    cell(tr, "sid", v.participantSid, "participant");
    cell(tr, "", barsNode(v.level), "signal");
    cell(tr, `num lv${v.level}t`, v.level, "level");
    const upstream = v.cause && v.cause.kind === "upstream" && v.cause.participantSid;
    const limit = cell(tr, "limit", v.limitedBy && upstream ? `${v.limitedBy} ` : v.limitedBy || "", "limited by");
    if (upstream) {
      const small = document.createElement("small");
      small.className = "cause";
      small.textContent = `limited by ${v.cause.participantSid}'s uplink`; // as views.cause_text
      limit.appendChild(small);
    }
    for (const media of ["audio", "video"]) {
      for (const dir of ["send", "recv"]) {
        const m = v[media] || {};
        const level = m[dir];
        const label = `${media} ${dir}`;
        if (level === null || level === undefined) { cell(tr, "comp muted", "–", label); continue; }
        const td = cell(tr, `comp lv${level}t`, `${level} `, label);
        const metric = m[`${dir}LimitedBy`];
        if (metric && level < 5) { const small = document.createElement("small"); small.textContent = metric; td.appendChild(small); }
      }
    }
    return tr;
  }

  function roomPage(data) {
    const tbody = document.getElementById("participants");
    const empty = document.getElementById("empty");
    const live = document.getElementById("live");
    const holder = document.getElementById("timelines");
    const h = data.history;
    let to = h.to;
    const from = h.from;
    const steps = new Map(); // participant -> [{timestamp, level}]
    for (const s of h.initial) steps.set(s.participantSid, [{ timestamp: from, level: s.level }]);
    for (const c of h.changes) {
      if (!steps.has(c.participantSid)) steps.set(c.participantSid, []);
      steps.get(c.participantSid).push({ timestamp: c.timestamp, level: c.level });
    }
    const drawTimelines = () => {
      holder.textContent = "";
      if (!steps.size) { holder.innerHTML = '<p class="muted">No level changes in this range.</p>'; return; }
      for (const [sid, list] of [...steps.entries()].sort()) timeline(holder, sid, list, from, to);
    };
    drawTimelines();
    const upsert = (v, flash) => {
      const old = tbody.querySelector(`tr[data-participant="${CSS.escape(v.participantSid)}"]`);
      if (v.departed) { if (old) old.remove(); }
      else {
        const row = participantRow(v);
        if (flash) row.classList.add("flash");
        if (old) old.replaceWith(row); else tbody.appendChild(row);
      }
      empty.hidden = tbody.children.length > 0;
    };
    if (!data.live || !window.EventSource) { live.textContent = "history"; return; }
    const source = new EventSource(data.feed);
    source.addEventListener("open", () => { live.textContent = "live"; live.className = "live on"; });
    source.addEventListener("error", () => { live.textContent = "reconnecting…"; live.className = "live off"; });
    source.addEventListener("snapshot", (ev) => {
      const snap = JSON.parse(ev.data);
      tbody.textContent = "";
      snap.participants.sort((a, b) => a.participantSid.localeCompare(b.participantSid)).forEach((v) => upsert(v, false));
      empty.hidden = tbody.children.length > 0;
    });
    source.addEventListener("level", (ev) => {
      const v = JSON.parse(ev.data);
      upsert(v, true);
      to = Math.max(to, Date.now(), v.timestamp);
      if (!steps.has(v.participantSid)) steps.set(v.participantSid, []);
      steps.get(v.participantSid).push({ timestamp: v.timestamp, level: v.level });
      drawTimelines();
    });
  }

  function regionPage(data) {
    const chart = document.getElementById("distribution");
    let s = data.summary;
    const draw = () => stacked(chart, s.distribution, s.from, s.to);
    draw();
    window.addEventListener("resize", draw);
    refreshing(data, (fresh) => { s = fresh.summary; draw(); });
  }

  // The overview and region pages re-read themselves (same address, same cookie) and swap
  // in the server-rendered parts marked data-live: one renderer, on the server.
  const REFRESH_MS = 10000;
  function refreshing(data, onData) {
    const badge = document.getElementById("live");
    if (!data.refresh || !badge) return;
    const tick = async () => {
      try {
        const response = await fetch(location.href, { credentials: "same-origin" });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const doc = new DOMParser().parseFromString(await response.text(), "text/html");
        for (const node of document.querySelectorAll("[data-live]")) {
          const fresh = doc.getElementById(node.id);
          if (fresh) node.replaceWith(document.adoptNode(fresh));
        }
        const embedded = doc.getElementById("page-data");
        if (embedded && onData) onData(JSON.parse(embedded.textContent));
        badge.textContent = `live · ${new Date().toISOString().slice(11, 19)} UTC`;
        badge.className = "live on";
      } catch (err) {
        badge.textContent = "reconnecting…";
        badge.className = "live off";
      }
      setTimeout(tick, REFRESH_MS);
    };
    badge.className = "live on";
    setTimeout(tick, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const node = document.getElementById("page-data");
    if (!node) return;
    const data = JSON.parse(node.textContent);
    if (data.page === "room") roomPage(data);
    if (data.page === "region") regionPage(data);
    if (data.page === "overview") refreshing(data, null);
  });
})();
