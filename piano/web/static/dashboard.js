// The dashboard page: draws each Dashboard frame the stream sends (about once a second).
//
// - The supervision tree, collapsible, each node coloured by its status; a restart count that
//   grows flashes. What each node went through is kept in piano.statuses (tests read it).
// - Small live charts (plain SVG): events/s, pipeline in flight and latency, turns running,
//   tokens used, and events per conversation since the last frame.
// - Click a node for the :observer view of its actor (GET /api/actors/{id}): state and
//   statistics (a supervisor's or pipeline's counters; both redacted by the server), mailbox,
//   message rate, restarts, links and monitors; it follows the node
//   through restarts.
// - Usage (GET /api/usage, every 30 s and after each turn ends): turns, tokens and cost per user
//   and per agent, today (UTC) and in all; a model without a price shows its tokens unpriced.
// - Recent errors, grouped by the server: one clean line each, with a count.
"use strict";

const $ = (id) => document.getElementById(id);
const token = pianoToken();
const SAMPLES = 120;
const series = {}; // chart name -> recent values
const collapsed = new Set(JSON.parse(localStorage.getItem("piano-collapsed") || "[]"));
const restartsSeen = new Map(); // node path -> restarts last drawn
const flashing = new Map(); // panel:path -> until when its restart count flashes
const statuses = {}; // node path -> statuses it was drawn with, in order (changes only)
let chosen = null; // path of the node whose actor is shown
let last = null; // the latest Dashboard

function nodePath(parent, actor) {
  return parent ? `${parent}/${actor.child_id}` : actor.child_id;
}

function node(actor, parent, panel) {
  const path = nodePath(parent, actor);
  // A restart between two frames is shown even when the frames only saw the actor running:
  // for a few seconds after its count grows the node is drawn "restarted" (red, flashing).
  const before = restartsSeen.get(`${panel}:${path}`);
  if (before !== undefined && actor.restarts > before) flashing.set(`${panel}:${path}`, Date.now() + 4000);
  restartsSeen.set(`${panel}:${path}`, actor.restarts);
  const flash = (flashing.get(`${panel}:${path}`) || 0) > Date.now();
  const shown = flash && actor.status !== "not running" ? "restarted" : actor.status;
  const seen = statuses[path] || (statuses[path] = []);
  if (panel === "tree" && seen[seen.length - 1] !== shown) seen.push(shown);
  const row = el("li", { "data-child": actor.child_id, "data-path": path,
    class: `status-${shown.replace(/ /g, "-")} kind-${actor.kind}` });
  if (flash) row.classList.add("flash");
  if (collapsed.has(path)) row.classList.add("collapsed");
  if (path === chosen) row.classList.add("selected");
  row.append(
    actor.children.length
      ? el("button", { type: "button", class: "toggle", "data-path": path, "data-role": "toggle",
          "aria-expanded": String(!collapsed.has(path)),
          "aria-label": `${collapsed.has(path) ? "Expand" : "Collapse"} ${actor.child_id}`,
          text: collapsed.has(path) ? "▸" : "▾" })
      : el("span", { class: "leaf" }),
    el("button", { type: "button", class: "child-id", "data-path": path, "data-role": "open",
      title: "Show this actor", text: actor.child_id }),
    el("span", { class: "actor", text: actor.actor_id === null ? "—" : `${actor.actor_class}#` }),
    el("span", { class: "actor-id", text: actor.actor_id === null ? "" : String(actor.actor_id) }),
    el("span", { class: "status", text: shown === actor.status ? actor.status : `${actor.status}, restarted` }),
    el("span", { class: "mailbox", title: "mailbox length", text: `✉ ${actor.mailbox_length}` }),
    el("span", { class: "handled", title: "messages handled", text: `⇢ ${actor.messages_handled}` }),
    el("span", { class: "rate", title: "messages per second", text: `${actor.rate || 0}/s` }),
    el("span", { class: "restarts-label", title: "restarts", text: "↻ " }),
    el("span", { class: "restarts", title: "restarts", text: String(actor.restarts) }),
    actor.description ? el("span", { class: "description", text: actor.description }) : null);
  if (actor.children.length) {
    row.append(el("ul", {}, ...actor.children.map((child) => node(child, path, panel))));
  }
  return row;
}

function facts(target, values) {
  $(target).replaceChildren(...Object.entries(values).flatMap(([key, value]) =>
    [el("dt", { text: key }), el("dd", { "data-key": key, text: String(value) })]));
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attributes = {}) {
  const made = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) made.setAttribute(key, value);
  return made;
}

function sample(name, value) {
  const values = series[name] || (series[name] = []);
  values.push(Number(value) || 0);
  if (values.length > SAMPLES) values.shift();
  return values;
}

function spark(values) {
  const top = Math.max(1, ...values);
  const step = 100 / (SAMPLES - 1);
  const start = 100 - (values.length - 1) * step;
  const points = values.map((v, i) => `${(start + i * step).toFixed(2)},${(38 - (v / top) * 34).toFixed(2)}`);
  const picture = svg("svg", { viewBox: "0 0 100 40", preserveAspectRatio: "none", role: "img" });
  if (values.length > 1) {
    picture.append(svg("polygon", { points: `${start},40 ${points.join(" ")} 100,40` }));
    picture.append(svg("polyline", { points: points.join(" ") }));
  }
  return picture;
}

function chart(name, label, value, unit = "") {
  const values = sample(name, value);
  const shown = Number.isInteger(value) ? value : Number(value).toFixed(1);
  return el("div", { class: "chart", "data-chart": name },
    el("div", { class: "label" }, el("span", { text: label }),
      el("span", { class: "value", text: `${shown}${unit}` })),
    spark(values));
}

function bars(activity) {
  const rows = Object.entries(activity).sort((a, b) => b[1] - a[1]).slice(0, 6);
  const top = Math.max(1, ...rows.map(([, v]) => v));
  const box = el("div", { class: "chart", "data-chart": "threads" },
    el("div", { class: "label" }, el("span", { text: "Events per conversation" }),
      el("span", { class: "value", text: rows.length ? "" : "quiet" })));
  const list = el("div", { class: "bars" });
  for (const [name, count] of rows) {
    const fill = el("div", { class: "fill" });
    fill.style.width = `${(100 * count) / top}%`;
    list.append(el("div", { class: "bar" }, el("span", { class: "name", text: name }),
      fill, el("span", { text: String(count) })));
  }
  box.append(list);
  return box;
}

function latency(pipeline) {
  const values = Object.entries(pipeline).filter(([key]) => key.endsWith(".latency_mean_ms"));
  return values.length ? Math.max(...values.map(([, v]) => v)) : 0;
}

function drawCharts(dashboard) {
  const activity = dashboard.activity || {};
  const tokens = activity.tokens_total || 0;
  $("charts").replaceChildren(
    chart("events", "Events/s", dashboard.stream.events_per_second),
    chart("in_flight", "Pipeline in flight", dashboard.pipeline.in_flight || 0),
    chart("latency", "Pipeline latency", latency(dashboard.pipeline), " ms"),
    chart("turns", "Turns running", activity.turns_running || 0),
    chart("tokens", "Tokens used", tokens),
    bars(activity.threads || {}));
}

function ago(ts) {
  const seconds = Math.max(0, Math.round(Date.now() / 1000 - ts));
  return seconds < 60 ? `${seconds}s ago` : seconds < 3600 ? `${Math.round(seconds / 60)}m ago`
    : new Date(ts * 1000).toLocaleTimeString();
}

function drawErrors(errors) {
  $("recent-errors").replaceChildren(...(errors.length ? errors.slice().reverse().map((e) =>
    el("li", { class: e.level, title: e.detail },
      el("span", { class: "count", text: e.count > 1 ? `×${e.count}` : "•" }),
      el("span", { class: "line", text: e.line || `${e.event} ${e.detail}` }),
      el("span", { class: "when", text: ago(e.ts) })))
    : [el("li", { class: "quiet", text: "Nothing to report." })]));
}

function find(tree, path, parent = null) {
  for (const actor of tree) {
    const here = nodePath(parent, actor);
    if (here === path) return actor;
    if (path.startsWith(`${here}/`)) {
      const deeper = find(actor.children, path, here);
      if (deeper) return deeper;
    }
  }
  return null;
}

function draw(dashboard) {
  last = dashboard;
  $("updated").textContent = new Date(dashboard.ts * 1000).toLocaleTimeString();
  const focused = document.activeElement;
  const focus = focused && focused.dataset ? [focused.dataset.path, focused.dataset.role] : null;
  $("tree").replaceChildren(...dashboard.tree.map((actor) => node(actor, null, "tree")));
  if (focus && focus[0]) {
    const again = document.querySelector(`#tree [data-path="${CSS.escape(focus[0])}"][data-role="${focus[1]}"]`);
    if (again) again.focus();
  }
  drawCharts(dashboard);
  const tokens = (dashboard.activity || {}).tokens_total || 0;
  if (tokens !== tokensSeen && Date.now() - usageAsked > 2000) {
    tokensSeen = tokens; // a turn used tokens: the usage panel is stale
    refreshUsage();
  }
  drawErrors(dashboard.errors);
  facts("stream", dashboard.stream);
  facts("system", dashboard.system);
  facts("pipeline", dashboard.pipeline);
  $("codex").replaceChildren(...dashboard.codex.map((actor) => node(actor, null, "codex")));
  $("live-threads").replaceChildren(
    el("tr", {}, ...["thread", "conversation", "actor", "status", "mailbox", ""].map(
      (h) => el("th", { text: h }))),
    ...dashboard.threads.map((t) => el("tr", { "data-thread": t.thread_id },
      ...[t.thread_id, `${t.surface}:${t.conversation} (${t.agent})`, `#${t.actor_id}`, t.status,
        t.mailbox_length, t.description || ""].map((v) => el("td", { text: String(v) })))));
  if (chosen) showActor();
}

let asking = false;
async function showActor() {
  if (!chosen || !last || asking) return;
  const actor = find(last.tree, chosen);
  const panel = $("actor-panel");
  panel.hidden = false;
  $("actor-title").textContent = chosen;
  if (!actor || actor.actor_id === null) {
    $("actor").replaceChildren(el("p", { text: actor ? `not running (${actor.status})` : "gone" }));
    return;
  }
  asking = true;
  try {
    const response = await fetch(`/api/actors/${actor.actor_id}`, {
      headers: { Authorization: `Bearer ${token}` } });
    const data = await response.json();
    if (!response.ok) {
      $("actor").replaceChildren(el("p", { text: data.error.message }));
      return;
    }
    const peers = (list) => list.length ? el("span", {}, ...list.map((p) =>
      el("span", { class: "peer", text: `${p.name || p.actor_class}#${p.actor_id}` }))) : "none";
    const rows = [
      ["actor", `${data.actor_class}#${data.actor_id}${data.name ? ` (${data.name})` : ""}`],
      ["status", data.status], ["mailbox", String(data.mailbox_length)],
      ["messages", `${data.messages_handled} (${data.rate}/s)`], ["restarts", String(data.restarts)],
      ["traps exits", data.trap_exits ? "yes" : "no"],
      ["parent", data.parent ? `${data.parent.name || data.parent.actor_class}#${data.parent.actor_id}` : "—"],
      ["links", peers(data.links)], ["monitors", peers(data.monitors)],
      ["monitored by", peers(data.monitored_by)], ["about", data.description || ""]];
    const list = el("dl", {});
    for (const [key, value] of rows) {
      list.append(el("dt", { text: key }), typeof value === "string"
        ? el("dd", { "data-key": key, text: value }) : el("dd", { "data-key": key }, value));
    }
    const state = el("dl", { class: "state" });
    for (const [key, value] of Object.entries(data.state)) {
      state.append(el("dt", { text: key }), el("dd", {}, el("code", { text: value })));
    }
    const parts = [list, el("h2", { text: "State" }), state];
    if (data.statistics !== null && data.statistics !== undefined) {
      const stats = el("dl", { class: "state statistics" });
      for (const [key, value] of Object.entries(data.statistics)) {
        const text = typeof value === "object" ? JSON.stringify(value) : String(value);
        stats.append(el("dt", { text: key }), el("dd", {}, el("code", { text })));
      }
      parts.push(el("h2", { text: "Statistics" }), stats);
    }
    $("actor").replaceChildren(...parts);
  } finally {
    asking = false;
  }
}

$("tree").addEventListener("click", (event) => {
  const target = event.target.closest("[data-role]");
  if (!target) return;
  const path = target.dataset.path;
  if (target.dataset.role === "toggle") {
    if (collapsed.has(path)) collapsed.delete(path); else collapsed.add(path);
    localStorage.setItem("piano-collapsed", JSON.stringify([...collapsed]));
  } else {
    chosen = path;
  }
  if (last) draw(last);
});
$("expand-all").addEventListener("click", () => {
  collapsed.clear();
  localStorage.setItem("piano-collapsed", "[]");
  if (last) draw(last);
});
$("collapse-all").addEventListener("click", () => {
  for (const row of document.querySelectorAll("#tree li")) {
    if (row.querySelector(":scope > ul")) collapsed.add(row.dataset.path);
  }
  localStorage.setItem("piano-collapsed", JSON.stringify([...collapsed]));
  if (last) draw(last);
});
$("actor-close").addEventListener("click", () => {
  chosen = null;
  $("actor-panel").hidden = true;
  if (last) draw(last);
});

function money(line) {
  const parts = [];
  if (line.cost !== null) parts.push(`$${line.cost.toFixed(4)}`);
  if (line.unpriced_tokens) parts.push(`${line.unpriced_tokens.toLocaleString()} unpriced`);
  return parts.join(", ") || "—";
}

function drawUsage(reports) {
  const rows = [el("tr", {}, ...["", "who", "turns", "tokens", "cost"].map(
    (h) => el("th", { text: h })))];
  for (const [period, label] of [["today", "today"], ["all", "in all"]]) {
    const report = reports[period];
    const lines = [["total", report.total], ...report.users.map((l) => ["user", l]),
      ...report.agents.map((l) => ["agent", l])];
    for (const [kind, line] of lines) {
      rows.push(el("tr", { "data-period": period, "data-kind": kind, "data-name": line.name },
        ...[kind === "total" ? label : kind, kind === "total" ? "everyone" : line.name,
          String(line.turns), line.tokens.toLocaleString(), money(line)].map(
          (v) => el("td", { text: v }))));
    }
  }
  $("usage").replaceChildren(...rows);
}

let usageAsked = 0;
let tokensSeen = null;
async function refreshUsage() {
  usageAsked = Date.now();
  try {
    const response = await fetch("/api/usage", { headers: { Authorization: `Bearer ${token}` } });
    const data = await response.json();
    if (!response.ok) {
      $("usage-note").textContent = data.error.message;
      return;
    }
    $("usage-note").textContent = "";
    drawUsage(data);
  } catch (error) {
    $("usage-note").textContent = String(error);
  }
}
setInterval(refreshUsage, 30_000);
refreshUsage();

const stream = new PianoStream({
  token,
  threads: [],
  dashboard: true,
  onEnvelope: (envelope) => { if (envelope.type === "dashboard") draw(envelope.data); },
  onStatus: (status) => { $("status").textContent = status; },
});
window.piano = { stream, statuses, series };
stream.connect();
