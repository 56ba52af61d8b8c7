// chaos-drill live page: draws each state the server sends over server-sent events; read-only,
// except a workshop's presenter page (served to loopback with a token): its keys are posted.
// Reconnects by itself; every connection starts with the full state, so nothing goes stale.
"use strict";

const STATES = ["pending", "creating", "running", "ready", "terminating", "failed"];
const STATE_LABEL = {running: "running, not ready"};
let receivedAt = 0;
// ?measure: for each pod watch event, ms from its arrival at the server to the DOM showing it
const lag = new URLSearchParams(location.search).has("measure")
  ? {seen: new Map(), ms: [], server: [], primed: false}
  : null;
window.chaosDrillLag = lag;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "style") setStyles(node, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
  }
  return node;
}

function setStyles(node, styles) {  // through the CSSOM: the page's policy refuses style attributes
  for (const [name, value] of Object.entries(styles)) node.style.setProperty(name, value);
}

function duration(value) {  // 840 ms, 2.31 s
  return value < 1000 ? `${value} ms` : `${(value / 1000).toFixed(2)} s`;
}

function ms(value) {
  return `+${duration(value)}`;
}

function namePrefix(name) {  // "web-748f7d7d7-" of "web-748f7d7d7-nc7rl": the suffix tells pods apart
  return name.slice(0, name.lastIndexOf("-") + 1);
}

function tile(pod) {
  const badge = pod.victim ? el("span", {class: "badge"}, `hit ${pod.victim}`)
    : pod.replacement ? el("span", {class: "badge"}, `new ${pod.replacement}`) : null;
  return el("div", {class: "tile", "data-uid": pod.uid, "data-name": pod.name,
                    "data-state": pod.state, "data-victim": pod.victim,
                    "data-replacement": pod.replacement},
    badge,
    el("div", {class: "name"}, el("span", {class: "prefix"}, namePrefix(pod.name)),
       el("span", {class: "suffix"}, pod.name.slice(namePrefix(pod.name).length))),
    el("div", {class: "state"}, STATE_LABEL[pod.state] || pod.state),
    el("div", {class: "restarts"}, `restarts ${pod.restarts}`),
    pod.traffic ? el("div", {class: "traffic", "data-traffic": pod.traffic},
                     pod.traffic === "in" ? "in rotation" : "no traffic") : null);
}

const drawn = {tiles: new Map(), columns: new Map()};
// Tiles and columns are kept and redrawn only when what they show changed: a state arrives up
// to twenty times a second and may hold hundreds of pods.

function tileFor(pod) {
  const key = [pod.name, pod.state, pod.restarts, pod.victim, pod.replacement,
               pod.traffic].join("|");
  const old = drawn.tiles.get(pod.uid);
  if (old && old.key === key) return old.node;
  const node = tile(pod);
  drawn.tiles.set(pod.uid, {key, node});
  return node;
}

function columnFor(name) {
  let column = drawn.columns.get(name);
  if (!column) {
    const tiles = el("div", {class: "tiles"});
    const head = el("h3", {}, name || "not scheduled yet");
    column = {node: el("div", {class: "node", "data-node": name || "unscheduled"}, head, tiles),
              tiles};
    drawn.columns.set(name, column);
  }
  return column;
}

function sameChildren(parent, nodes) {
  const children = parent.children;
  return children.length === nodes.length && nodes.every((node, i) => children[i] === node);
}

function drawPods(state) {
  const byNode = new Map(state.nodes.map((n) => [n.name, []]));
  const live = new Set();
  for (const pod of state.pods) {
    if (!byNode.has(pod.node)) byNode.set(pod.node, []);
    byNode.get(pod.node).push(tileFor(pod));
    live.add(pod.uid);
  }
  for (const uid of drawn.tiles.keys()) if (!live.has(uid)) drawn.tiles.delete(uid);
  const ready = state.nodes.reduce((m, n) => m.set(n.name, n.ready), new Map());
  const columns = [...byNode].filter(([name, tiles]) => name || tiles.length).map(
    ([name, tiles]) => {
      const column = columnFor(name);
      column.node.dataset.ready = String(name ? ready.get(name) !== false : true);
      if (!sameChildren(column.tiles, tiles)) column.tiles.replaceChildren(...tiles);
      return column.node;
    });
  for (const name of drawn.columns.keys()) {
    if (!byNode.has(name)) drawn.columns.delete(name);
  }
  const box = document.getElementById("nodes");
  if (!sameChildren(box, columns)) box.replaceChildren(...columns);
  const w = state.workload;
  const count = w.desired !== undefined ? ` · ${w.ready}/${w.desired} ready` : "";
  document.getElementById("workload").textContent =
    `${w.kind || "pods"} ${w.namespace || ""}/${w.name || ""}${count}`;
}

function incidentRow(incident) {
  const reached = new Map(incident.phases.map((p) => [p.name, p.ms]));
  const total = Math.max(incident.recovery_ms || 0, incident.elapsed_ms || 0, 1);
  const segments = [];
  let previous = 0;
  for (const phase of incident.phases.slice(1)) {
    segments.push(el("div", {class: "seg", title: phase.name, "data-phase": phase.name,
                             style: {"flex-grow": String(Math.max(phase.ms - previous, 1))}}));
    previous = phase.ms;
  }
  if (incident.status === "open") {
    segments.push(el("div", {class: "seg waiting",
                             style: {"flex-grow": String(Math.max(total - previous, 1))}}));
  }
  const outcome = incident.status === "recovered" ? `recovered in ${duration(incident.recovery_ms)}`
    : incident.status === "open" ? el("span", {class: "elapsed", "data-since": String(
      incident.elapsed_ms)}, ms(incident.elapsed_ms)) : "NOT recovered";
  return el("div", {class: "incident", "data-id": incident.id, "data-status": incident.status},
    el("div", {class: "head"},
      el("span", {class: "id"}, incident.id),
      el("span", {}, `${incident.fault} ${incident.target}`),
      incident.origin === "observed" ? el("span", {class: "origin",
        title: "not injected by chaos-drill: seen happening"}, "observed") : null,
      el("span", {class: "outcome"}, outcome)),
    el("div", {class: "bar"}, ...segments),
    el("div", {class: "phases"}, ...incident.expected.filter((p) => p !== "injected").map((p) =>
      reached.has(p)
        ? el("span", {class: "phase", "data-phase": p, "data-ms": String(reached.get(p))},
             `${p} `, el("span", {class: "ms"}, ms(reached.get(p))))
        : el("span", {class: "phase missing"}, `${p} …`))),
    ...(incident.causes || []).map((c) => el("div", {class: "cause"}, `why: ${c}`)),
    incident.events && incident.events.length ? el("div", {class: "events"},
      ...incident.events.map((e) => el("span", {class: "event", "data-reason": e.reason},
                                        `${e.reason} ${ms(e.ms)}`))) : null);
}

function drawIncidents(state) {
  const box = document.getElementById("incidents");
  if (!state.incidents.length) {
    box.replaceChildren(el("p", {class: "empty"}, state.mode === "watch"
      ? "watching: no disruption seen yet" : "no fault injected yet"));
    return;
  }
  box.replaceChildren(...state.incidents.slice().reverse().map(incidentRow));
}

function drawAvailability(state) {
  const a = state.availability;
  document.getElementById("strip").replaceChildren(...[...a.recent].map((c) =>
    el("span", {class: c === "1" ? "ok" : "fail"})));
  const ratio = a.ratio === null ? "n/a" : `${(a.ratio * 100).toFixed(2)} %`;
  document.getElementById("figures").replaceChildren(
    el("span", {}, "served ", el("b", {id: "ratio"}, ratio)),
    el("span", {}, "failed ", el("b", {}, `${a.failures} of ${a.requests}`)),
    el("span", {}, "longest outage ", el("b", {}, `${a.longest_outage_seconds.toFixed(2)} s`)));
}

function drawProgress(state) {
  const p = state.progress;
  const box = document.getElementById("progress");
  box.dataset.verdict = p.verdict || "";
  const parts = [];
  if (state.mode === "watch") parts.push("watching, no faults");
  else if (p.rounds) parts.push(`round ${p.round}/${p.rounds} · ${p.fault}`);
  box.replaceChildren(el("span", {id: "round"}, parts.join(" ")), " ");
  if (p.verdict) box.append(el("span", {class: "verdict", title: p.detail}, p.verdict));
  document.getElementById("title").textContent = state.title;
}

const STEP_MARK = {waiting: "", running: "▶", done: "✓", skipped: "–"};
const VERDICT_MARK = {PASSED: "✓", FAILED: "✗", STOPPED: "■", ERROR: "✗"};

function seconds(value) {
  return value === null ? "none" : `${value.toFixed(2)} s`;
}

function resultText(result) {  // the numbers of one run of a step, as the summary shows them
  const parts = [];
  if (result.recoveries.length) parts.push(`recovery ${result.recoveries.map(seconds).join(", ")}`);
  if (result.scale_in.length) parts.push(`back in ${result.scale_in.map(seconds).join(", ")}`);
  if (result.availability !== null) {
    parts.push(`served ${(result.availability * 100).toFixed(2)} %, longest outage ` +
               `${result.longest_outage.toFixed(2)} s`);
  }
  return parts.join(" · ");
}

function drawSteps(lesson) {
  document.getElementById("steps").replaceChildren(...lesson.steps.map((step, i) => {
    const verdict = step.result ? step.result.verdict : "";
    const mark = step.status === "done" ? VERDICT_MARK[verdict] || "✓" : STEP_MARK[step.status];
    return el("li", {"data-status": step.status, "data-verdict": verdict,
                     "data-current": String(!lesson.summary && i === lesson.index)},
      el("span", {class: "mark"}, mark || String(i + 1)), " ", step.title);
  }));
}

function drawSummary(lesson) {  // the last slide: every number of the workshop
  const head = el("tr", {}, ...["step", "verdict", "recovery", "served", "longest outage"]
    .map((name) => el("th", {}, name)));
  const rows = lesson.steps.map((step, i) => {
    const r = step.result;
    const recovered = !r ? "" : [r.recoveries.map(seconds).join(", "),
      r.scale_in.length ? `back in ${r.scale_in.map(seconds).join(", ")}` : ""]
      .filter(Boolean).join(" · ") || r.detail;
    return el("tr", {"data-status": step.status, "data-verdict": r ? r.verdict : ""},
      el("td", {}, `${i + 1}. ${step.title}`),
      el("td", {class: "verdict"}, r ? r.verdict : step.status === "skipped" ? "skipped"
        : "not run"),
      el("td", {class: "recovered"}, recovered),
      el("td", {class: "served"}, r && r.availability !== null
        ? `${(r.availability * 100).toFixed(2)} %` : ""),
      el("td", {class: "outage"}, r && r.availability !== null
        ? `${r.longest_outage.toFixed(2)} s` : ""));
  });
  document.getElementById("summary-table").replaceChildren(head, ...rows);
}

function drawLesson(state) {
  const lesson = state.lesson;
  document.getElementById("lesson").hidden = !!lesson.summary;
  document.getElementById("summary").hidden = !lesson.summary;
  document.body.dataset.summary = String(!!lesson.summary);
  if (lesson.summary) {
    drawSummary(lesson);
    return;
  }
  drawSteps(lesson);
  const step = lesson.steps[lesson.index];
  const what = step.status === "running" ? "running" : step.status === "done" ? "done"
    : step.status === "skipped" ? "skipped" : "ready";
  document.getElementById("lesson").dataset.status = step.status;
  document.getElementById("step-number").textContent =
    `step ${lesson.index + 1} of ${lesson.steps.length} · ${what}`;
  document.getElementById("step-title").textContent = step.title;
  document.getElementById("step-explain").textContent = step.explain;
  document.getElementById("step-watch-text").textContent = step.watch;
  const result = document.getElementById("step-result");
  result.dataset.verdict = step.result ? step.result.verdict : "";
  result.textContent = step.result ? `${step.result.verdict} · ${resultText(step.result) ||
    step.result.detail}` : "";
  const keys = document.getElementById("keys");  // the presenter's page only
  if (keys) keys.textContent = step.status === "running" ? "s: skip"
    : step.status === "waiting" ? "→ / space: run this step · s: skip"
    : "→ / space: next step · r: repeat · s: skip";
}

function draw(state) {
  receivedAt = performance.now();
  document.body.dataset.mode = state.mode;
  document.documentElement.dataset.mode = state.mode;  // a workshop scales its type to the screen
  if (state.lesson) drawLesson(state);
  drawProgress(state);
  drawPods(state);
  drawIncidents(state);
  drawAvailability(state);
  document.body.dataset.version = String(state.version);
  if (lag) measureLag(state);
}

function measureLag(state) {  // the first state holds events from before the page: skip it
  const now = Date.now();
  const fresh = lag.primed;
  lag.primed = true;
  for (const pod of state.pods) {
    if (pod.arrived && lag.seen.get(pod.uid) !== pod.arrived) {
      if (fresh) {
        lag.ms.push(now - pod.arrived);
        lag.server.push(state.sent - pod.arrived);
      }
      lag.seen.set(pod.uid, pod.arrived);
    }
  }
}

function tick() {  // open incidents' clocks run between updates
  const since = performance.now() - receivedAt;
  for (const span of document.querySelectorAll(".elapsed")) {
    span.textContent = ms(Math.round(Number(span.dataset.since) + since));
  }
}

function setConnection(state, text) {
  const conn = document.getElementById("conn");
  conn.dataset.state = state;
  conn.textContent = text;
}

function connect() {
  const source = new EventSource("events");
  source.addEventListener("open", () => setConnection("live", "live"));
  source.addEventListener("state", (event) => draw(JSON.parse(event.data)));
  source.addEventListener("error", () => {
    setConnection("reconnecting", "reconnecting…");
    if (source.readyState === EventSource.CLOSED) {  // the browser gave up: try again ourselves
      setTimeout(connect, 1000);
    }
  });
}

function initTheme() {
  const asked = new URLSearchParams(location.search).get("theme");
  const saved = asked || localStorage.getItem("chaos-drill-theme");
  const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = saved || (dark ? "dark" : "light");
  document.getElementById("theme").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("chaos-drill-theme", next);
  });
}

function initLegend() {
  document.getElementById("legend").replaceChildren(...STATES.map((s) =>
    el("span", {style: {"--swatch": `var(--${s})`}}, STATE_LABEL[s] || s)));
}

// the presenter's page carries the run's token; keys are posted with it (anyone else's page has
// none, and the server refuses POSTs without it)
const tokenTag = document.querySelector('meta[name="presenter-token"]');
const presenterToken = tokenTag ? tokenTag.content : "";
const KEYS = {"ArrowRight": "next", " ": "next", "PageDown": "next", "r": "repeat", "s": "skip"};

function initKeys() {
  if (!presenterToken) return;
  document.body.dataset.presenter = "true";
  document.getElementById("lesson").append(el("p", {id: "keys"}));
  document.addEventListener("keydown", (event) => {
    const key = KEYS[event.key];
    if (!key || event.ctrlKey || event.altKey || event.metaKey || event.repeat) return;
    event.preventDefault();
    fetch("/control", {method: "POST", body: key, cache: "no-store",
                       headers: {"X-Presenter-Token": presenterToken, "Content-Type": "text/plain"}})
      .catch(() => setConnection("reconnecting", "reconnecting…"));
  });
}

initTheme();
initLegend();
initKeys();
connect();
setInterval(tick, 100);
