// The dashboard page: draws each Dashboard frame the stream sends (about once a second).
"use strict";

const $ = (id) => document.getElementById(id);

function node(actor) {
  const row = el("li", { "data-child": actor.child_id, class: `status-${actor.status.replace(" ", "-")}` },
    el("span", { class: "child-id", text: actor.child_id }),
    el("span", { class: "actor", text: actor.actor_id === null ? "—" : `${actor.actor_class}#` }),
    el("span", { class: "actor-id", text: actor.actor_id === null ? "" : String(actor.actor_id) }),
    el("span", { class: "status", text: actor.status }),
    el("span", { class: "mailbox", title: "mailbox length", text: `✉ ${actor.mailbox_length}` }),
    el("span", { class: "handled", title: "messages handled", text: `⇢ ${actor.messages_handled}` }),
    el("span", { title: "restarts", text: "↻ " }),
    el("span", { class: "restarts", text: String(actor.restarts) }),
    actor.description ? el("span", { class: "description", text: actor.description }) : null);
  if (actor.children.length) row.append(el("ul", {}, ...actor.children.map(node)));
  return row;
}

function facts(target, values) {
  $(target).replaceChildren(...Object.entries(values).flatMap(([key, value]) =>
    [el("dt", { text: key }), el("dd", { "data-key": key, text: String(value) })]));
}

function draw(dashboard) {
  $("updated").textContent = new Date(dashboard.ts * 1000).toLocaleTimeString();
  $("tree").replaceChildren(...dashboard.tree.map(node));
  facts("stream", dashboard.stream);
  facts("system", dashboard.system);
  facts("pipeline", dashboard.pipeline);
  $("codex").replaceChildren(...dashboard.codex.map(node));
  $("live-threads").replaceChildren(
    el("tr", {}, ...["thread", "conversation", "actor", "status", "mailbox", ""].map(
      (h) => el("th", { text: h }))),
    ...dashboard.threads.map((t) => el("tr", { "data-thread": t.thread_id },
      ...[t.thread_id, `${t.surface}:${t.conversation} (${t.agent})`, `#${t.actor_id}`, t.status,
        t.mailbox_length, t.description || ""].map((v) => el("td", { text: String(v) })))));
  $("recent-errors").replaceChildren(...dashboard.errors.slice().reverse().map((e) =>
    el("li", { class: e.level, text:
      `${new Date(e.ts * 1000).toLocaleTimeString()} ${e.event} ${e.detail}` })));
}

const stream = new PianoStream({
  token: pianoToken(),
  threads: [],
  dashboard: true,
  onEnvelope: (envelope) => { if (envelope.type === "dashboard") draw(envelope.data); },
  onStatus: (status) => { $("status").textContent = status; },
});
window.piano = { stream };
stream.connect();
