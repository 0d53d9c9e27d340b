// The chat page: threads on the left, the selected conversation on the right, kept up to date
// from the stream (snapshots replace a thread's state, events update it as they arrive).
"use strict";

const token = pianoToken();
const threads = new Map(); // thread_id -> {thread_id, surface, conversation, interactions, approvals}
let conversation = "default";
let selected = null; // thread id shown
const $ = (id) => document.getElementById(id);

function thread(id) {
  if (!threads.has(id)) threads.set(id, { thread_id: id, interactions: [], approvals: [] });
  return threads.get(id);
}

function interaction(state, id) {
  let found = state.interactions.find((i) => i.id === id);
  if (!found) state.interactions.push((found = { id, text: "", status: "running", items: [] }));
  return found;
}

function apply(event) {
  const state = thread(event.thread_id);
  switch (event.type) {
    case "turn.started":
      Object.assign(interaction(state, event.interaction.id), {
        text: event.interaction.text, user: event.interaction.user, status: "running" });
      break;
    case "item.started":
    case "item.completed": {
      const items = interaction(state, event.interaction_id).items;
      const at = items.findIndex((item) => item.id === event.item.id);
      if (at >= 0) items[at] = event.item; else items.push(event.item);
      break;
    }
    case "item.delta": {
      const item = interaction(state, event.interaction_id).items.find((i) => i.id === event.item_id);
      if (item && event.stream === "output") item.output += event.delta;
      else if (item) item.text += event.delta;
      break;
    }
    case "turn.completed":
      Object.assign(interaction(state, event.interaction_id), {
        status: event.status, response: event.response, error: event.error });
      break;
    case "approval.requested":
      state.approvals.push(event);
      break;
    case "approval.resolved":
      state.approvals = state.approvals.filter((a) => a.approval_id !== event.approval_id);
      break;
    case "notice":
      showError(`${event.level}: ${event.message}`);
      break;
  }
}

function onEnvelope(envelope) {
  const data = envelope.data;
  if (envelope.seq > 0) apply(data);
  else if (envelope.type === "snapshot") {
    for (const state of data.threads) threads.set(state.thread_id, state);
  } else if (envelope.type === "accepted") {
    const state = thread(data.thread_id);
    if (!state.surface) Object.assign(state, { surface: "web", conversation });
    selected = data.thread_id;
  } else if (envelope.type === "error") {
    showError(`${data.code}: ${data.message}`);
  }
  scheduleRender();
}

let pending = false;
function scheduleRender() {
  if (!pending) {
    pending = true;
    requestAnimationFrame(() => { pending = false; render(); });
  }
}

function render() {
  const list = $("threads");
  list.replaceChildren(...[...threads.values()].reverse().map((state) => {
    const name = state.conversation ? `${state.surface}:${state.conversation}` : state.thread_id;
    const item = el("li", { "data-thread": state.thread_id, text: name });
    if (state.thread_id === selected) item.className = "selected";
    return item;
  }));
  const state = selected ? threads.get(selected) : null;
  $("title").textContent = state && state.conversation ? state.conversation : conversation;
  const shown = state ? state.interactions : [];
  $("messages").replaceChildren(...shown.map(renderInteraction));
  $("approvals").replaceChildren(...(state ? state.approvals : []).map(renderApproval));
}

function renderInteraction(i) {
  const box = el("div", { class: `interaction ${i.status}`, "data-interaction": i.id });
  box.append(el("div", { class: "user", text: i.text }));
  for (const item of i.items) {
    if (item.kind === "agent_message") {
      box.append(el("div", { class: "agent", "data-item": item.id, text: item.text }));
    } else if (item.kind === "command") {
      box.append(el("div", { class: `command ${item.status}`, "data-item": item.id },
        el("code", { text: `$ ${item.command || ""}` }),
        el("pre", { class: "output", text: item.output || "" })));
    } else if (item.kind !== "user_message" && item.kind !== "reasoning") {
      box.append(el("div", { class: "step", text: `${item.kind}: ${item.text || item.tool || ""}` }));
    }
  }
  if (i.status !== "running") box.append(el("div", { class: "done", text: i.error || i.status }));
  return box;
}

function renderApproval(a) {
  const what =
    a.kind === "command" ? a.command
    : a.kind === "tool_call" ? `${a.tool} ${a.arguments || ""}`
    : a.changes.map((c) => `${c.kind} ${c.path}`).join(", ");
  // a file change shows each file's diff (an added file: its text), not just its name
  const diffs = (a.changes || []).map((c) =>
    el("pre", { class: "diff", "data-path": c.path, text: `${c.kind} ${c.path}\n${c.diff}` }));
  return el("div", { class: "approval", "data-approval": a.approval_id },
    el("span", { text: `Allow ${a.kind}: ${what}` }),
    ...diffs,
    el("button", { class: "approve", "data-decision": "accept", text: "Approve" }),
    el("button", { class: "decline", "data-decision": "decline", text: "Decline" }));
}

function showError(message) {
  $("errors").append(el("div", { class: "error", text: message }));
}

const stream = new PianoStream({
  token, onEnvelope, onStatus: (status) => { $("status").textContent = status; } });
window.piano = { stream, threads };
stream.connect();

$("send").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  // a selected thread gets the message whichever surface opened it; else the web conversation
  const message = selected
    ? { type: "message", thread_id: selected, text, user: "web" }
    : { type: "message", conversation, text, user: "web" };
  if (text && stream.send(message)) $("text").value = "";
});
$("file").addEventListener("change", async () => {
  const file = $("file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("conversation", conversation);
  form.append("user", "web");
  form.append("text", $("text").value.trim());
  form.append("file", file, file.name);
  const response = await fetch("/api/uploads", {
    method: "POST", body: form, headers: { Authorization: `Bearer ${token}` } });
  const data = await response.json();
  $("file").value = "";
  if (!response.ok) { showError(data.error.message); return; }
  $("text").value = "";
  Object.assign(thread(data.thread_id), { surface: "web", conversation });
  selected = data.thread_id;
  scheduleRender();
});
$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && event.ctrlKey) $("send").requestSubmit();
});
$("new-conversation").addEventListener("submit", (event) => {
  event.preventDefault();
  conversation = $("conversation-name").value.trim() || "default";
  selected = [...threads.values()]
    .find((s) => s.surface === "web" && s.conversation === conversation)?.thread_id || null;
  render();
});
$("threads").addEventListener("click", (event) => {
  const id = event.target.dataset.thread;
  if (!id) return;
  selected = id;
  if (threads.get(id).surface === "web") conversation = threads.get(id).conversation;
  render();
});
$("approvals").addEventListener("click", (event) => {
  const decision = event.target.dataset.decision;
  const box = event.target.closest(".approval");
  if (!decision || !box || !selected) return;
  stream.send({ type: "decide", thread_id: selected, approval_id: box.dataset.approval, decision });
  event.target.disabled = true;
});
$("interrupt").addEventListener("click", () => {
  if (selected) stream.send({ type: "interrupt", thread_id: selected });
});
$("show-transcript").addEventListener("click", async () => {
  const view = $("transcript");
  if (!selected) return;
  const response = await fetch(`/api/threads/${encodeURIComponent(selected)}/transcript`, {
    headers: { Authorization: `Bearer ${token}` } });
  view.textContent = response.ok ? await response.text()
    : `(no transcript: ${(await response.json()).error.message})`;
  view.hidden = false;
});
