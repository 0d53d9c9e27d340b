// The chat page: conversations on the left (a drawer on a phone), the selected one on the
// right, kept up to date from the stream (snapshots replace a thread's state, events update it).
//
// - The agent's answers are rendered as Markdown by the server (POST /api/render: markdown-it,
//   Pygments, the nh3 sanitiser) once complete; while they stream they show as plain text.
//   Only the server's sanitised HTML is ever put into the page as HTML.
// - The progress line says what the agent is doing, from the events (as Code Monet does):
//   thinking, running a command, editing files, calling a tool, waiting for approval, done —
//   with the time since the turn started.
// - Approvals of every conversation are pinned above the composer, always in view, with the
//   command, reason, paths and diffs, an expiry countdown and keys: Alt+A approves, Alt+D
//   declines the newest (A / D alone when the focus is not in a text field).
// - After a reload the page opens the conversation it showed, scrolled to the end; a link
//   ending in #thread=ID (every surface's resume lines give one) opens that thread.
"use strict";

// a link to one thread (#thread=ID: the resume line's web link) opens it; read before
// pianoToken() clears the fragment
const linked = decodeURIComponent((location.hash.match(/thread=([^&]+)/) || [])[1] || "") || null;
const token = pianoToken();
const threads = new Map(); // thread_id -> {thread_id, surface, conversation, interactions, approvals}
const saved = JSON.parse(localStorage.getItem("piano-chat") || "{}");
let conversation = saved.conversation || "default";
let selected = linked || saved.selected || null; // thread id shown
let stickToEnd = true; // keep the newest message in view
const rendered = new Map(); // agent message item id -> {text, html}
const rendering = new Set(); // item ids whose HTML was asked for
const toggled = new Map(); // item id -> open, for tool calls the user opened or closed
const $ = (id) => document.getElementById(id);

function remember() {
  localStorage.setItem("piano-chat", JSON.stringify({ selected, conversation }));
}

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
  state.updated_at = Math.max(state.updated_at || 0, event.at || 0);
  switch (event.type) {
    case "turn.started":
      Object.assign(interaction(state, event.interaction.id), {
        text: event.interaction.text, user: event.interaction.user, status: "running",
        started_at: event.at, completed_at: null });
      state.running = true;
      break;
    case "item.started":
    case "item.completed": {
      state.notice = null;
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
      resumes.delete(event.thread_id); // codex's thread id is known once a turn ran
      Object.assign(interaction(state, event.interaction_id), {
        status: event.status, response: event.response, error: event.error,
        completed_at: event.at });
      state.running = false;
      break;
    case "approval.requested":
      state.approvals.push(event);
      break;
    case "approval.resolved":
      state.approvals = state.approvals.filter((a) => a.approval_id !== event.approval_id);
      break;
    case "notice":
      state.notice = event; // a retry shows in the progress line until the turn moves on
      if (event.thread_id === selected && !event.retrying) showError(`${event.level}: ${event.message}`);
      break;
  }
}

function onEnvelope(envelope) {
  const data = envelope.data;
  if (envelope.seq > 0) apply(data);
  else if (envelope.type === "snapshot") {
    for (const state of data.threads) threads.set(state.thread_id, state);
    if (selected === linked && linked && !threads.has(linked)) thread(linked); // not seen yet
    if (selected && !threads.has(selected)) selected = null;
    stickToEnd = true;
  } else if (envelope.type === "accepted") {
    const state = thread(data.thread_id);
    if (!state.surface) Object.assign(state, { surface: "web", conversation });
    select(data.thread_id);
  } else if (envelope.type === "error") {
    showError(`${data.code}: ${data.message}`);
  } else if (envelope.type === "alert") {
    showError(`${data.alert.state === "opened" ? "⚠" : "✓"} ${data.alert.text}`);
  }
  scheduleRender();
}

// How to continue the shown thread elsewhere: the server's resume lines (the terminal command,
// this page's link, codex's thread id), the same every surface shows, and the conversation's
// model and effort (/model, /effort); asked once per thread and again after each of its turns
// and each command.
const resumes = new Map(); // thread id -> {lines, settings}, null while asked
function showResume(id) {
  $("resume").hidden = !id;
  if (!id) return;
  if (!resumes.has(id)) {
    resumes.set(id, null);
    fetch(`/api/threads/${encodeURIComponent(id)}/resume`, {
      headers: { Authorization: `Bearer ${token}` } })
      .then((response) => (response.ok ? response.json() : { lines: [] }))
      .then((data) => { resumes.set(id, data); scheduleRender(); })
      .catch(() => resumes.delete(id));
  }
  const known = resumes.get(id) || { lines: [] };
  $("thread-settings").textContent = known.settings || "";
  $("resume-lines").textContent = known.lines.join("\n");
}

let pending = false;
function scheduleRender() {
  if (!pending) {
    pending = true;
    requestAnimationFrame(() => { pending = false; render(); });
  }
}

function select(id) {
  selected = id;
  const state = id ? threads.get(id) : null;
  if (state && state.surface === "web" && state.conversation) conversation = state.conversation;
  stickToEnd = true;
  remember();
}

function titleOf(state) {
  const first = state.interactions.find((i) => i.text);
  const text = first ? first.text.replace(/\s+/g, " ").trim() : "";
  return text ? (text.length > 60 ? `${text.slice(0, 59)}…` : text) : (state.conversation || "…");
}

function render() {
  // the lists are rebuilt: the focused control (data-key) gets the focus back afterwards
  const focusKey = document.activeElement?.dataset?.key;
  const messages = $("messages");
  const atEnd = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 80;
  const list = $("threads");
  const ordered = [...threads.values()].sort((a, b) => (b.updated_at || 0) - (a.updated_at || 0));
  list.replaceChildren(...ordered.map((state) => {
    const name = state.conversation ? `${state.surface}:${state.conversation}` : state.thread_id;
    const waiting = state.approvals.length ? " · approval waiting" : state.running ? " · running" : "";
    const item = el("li", { "data-thread": state.thread_id },
      el("button", { type: "button", "data-thread": state.thread_id, "data-key": `thread:${state.thread_id}` },
        el("span", { class: "thread-title", "data-thread": state.thread_id, text: titleOf(state) }),
        el("span", { class: "thread-meta", "data-thread": state.thread_id, text: name + waiting })));
    if (state.thread_id === selected) item.className = "selected";
    return item;
  }));
  const state = selected ? threads.get(selected) : null;
  $("title").textContent = state ? (state.conversation
    ? `${state.surface === "web" ? "" : state.surface + ":"}${state.conversation}` : state.thread_id)
    : conversation;
  showResume(state ? state.thread_id : null);
  const shown = state ? state.interactions : [];
  place(messages, shown.length ? shown.map(interactionNode)
    : [el("div", { class: "empty", text: "A new conversation: say something." })]);
  for (const id of drawn.keys()) if (!shown.some((i) => i.id === id)) drawn.delete(id);
  const approvals = [...threads.values()].flatMap((s) => s.approvals);
  $("approvals").replaceChildren(...approvals.map(renderApproval));
  $("approvals").hidden = approvals.length === 0;
  progress();
  if (stickToEnd || atEnd) messages.scrollTop = messages.scrollHeight;
  stickToEnd = false;
  if (focusKey) {
    const again = document.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
    if (again && again !== document.activeElement) again.focus({ preventScroll: true });
  }
}

// An interaction whose content has not changed keeps its DOM nodes, so streaming one answer
// does not redraw the others (the user's text selection, open sections and focus stay).
const drawn = new Map(); // interaction id -> {sig, node}
function signature(i) {
  return `${i.status}|${i.error || ""}|${i.text.length}|` + i.items.map((item) =>
    `${item.id}:${item.status}:${(item.text || "").length}:${(item.output || "").length}:` +
    `${rendered.has(item.id) ? 1 : 0}`).join(",");
}

function interactionNode(i) {
  const sig = signature(i);
  const cached = drawn.get(i.id);
  if (cached && cached.sig === sig) return cached.node;
  const node = renderInteraction(i);
  drawn.set(i.id, { sig, node });
  return node;
}

// Make `container`'s children exactly `nodes`, moving only what is out of place.
function place(container, nodes) {
  nodes.forEach((node, index) => {
    const current = container.children[index];
    if (current !== node) container.insertBefore(node, current || null);
  });
  while (container.children.length > nodes.length) container.lastElementChild.remove();
}

function renderInteraction(i) {
  const box = el("article", { class: `interaction ${i.status}`, "data-interaction": i.id });
  box.append(el("div", { class: "user", text: i.text }));
  for (const item of i.items) {
    if (item.kind === "agent_message") box.append(renderAnswer(item));
    else if (item.kind === "command") box.append(renderTool(item, `$ ${item.command || ""}`));
    else if (item.kind === "tool_call") {
      box.append(renderTool(item, `${item.tool || "tool"} ${item.arguments || ""}`));
    } else if (item.kind === "file_change") {
      box.append(renderTool(item, `edit ${(item.changes || []).map((c) => c.path).join(", ")}`));
    } else if (item.kind === "reasoning") {
      if (item.text) {
        box.append(el("details", { class: "reasoning" }, el("summary", { text: "Thinking" }),
          el("div", { class: "reasoning-text", text: item.text })));
      }
    } else if (item.kind !== "user_message") {
      box.append(el("div", { class: "step", text: `${item.kind}: ${item.text || item.tool || ""}` }));
    }
  }
  if (i.status === "failed" || i.status === "interrupted") {
    box.append(el("div", { class: "done", text: i.error || i.status }));
  }
  return box;
}

function renderAnswer(item) {
  const done = item.status !== "in_progress";
  const cached = rendered.get(item.id);
  if (done && cached && cached.text === item.text) {
    const box = el("div", { class: "agent md", "data-item": item.id });
    box.innerHTML = cached.html; // sanitised by the server (nh3)
    for (const [index, pre] of [...box.querySelectorAll("pre")].entries()) {
      const copy = el("button", { type: "button", class: "copy", "data-key": `copy:${item.id}:${index}`, text: "Copy" });
      pre.prepend(copy);
    }
    return box;
  }
  if (done && item.text) requestRender(item);
  return el("div", { class: "agent streaming", "data-item": item.id, text: item.text });
}

let renderQueue = [];
function requestRender(item) {
  if (rendering.has(item.id)) return;
  rendering.add(item.id);
  renderQueue.push(item);
  if (renderQueue.length === 1) setTimeout(flushRenders, 0);
}

async function flushRenders() {
  const batch = renderQueue.splice(0, 50);
  if (!batch.length) return;
  try {
    const response = await fetch("/api/render", {
      method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ texts: batch.map((item) => item.text) }) });
    if (!response.ok) throw new Error((await response.json()).error.message);
    const { html } = await response.json();
    batch.forEach((item, index) => rendered.set(item.id, { text: item.text, html: html[index] }));
  } catch (error) {
    showError(`could not render an answer: ${error.message}`);
  }
  if (renderQueue.length) setTimeout(flushRenders, 0);
  scheduleRender();
}

function renderTool(item, summary) {
  const output = item.output || "";
  const diffs = (item.changes || []).filter((c) => c.diff);
  const long = output.split("\n").length > 12 || diffs.length > 0;
  const open = toggled.has(item.id) ? toggled.get(item.id) : item.status === "in_progress" || !long;
  const exit = item.exit_code === null || item.exit_code === undefined ? "" : ` · exit ${item.exit_code}`;
  const head = el("summary", { "data-key": `tool:${item.id}` }, el("code", { text: summary }),
    el("span", { class: "tool-status", text: `${item.status.replace("_", " ")}${exit}` }));
  const box = el("details", { class: `tool command ${item.status}`, "data-item": item.id }, head);
  if (open) box.open = true;
  head.addEventListener("click", () => toggled.set(item.id, !box.open)); // the user's choice
  if (output) box.append(el("pre", { class: "output", text: output }));
  for (const change of diffs) box.append(diffView(change));
  return box;
}

function diffView(change) {
  // the text is "<kind> <path>\n<diff>"; each line is coloured by its first character
  const pre = el("pre", { class: "diff", "data-path": change.path });
  pre.append(el("span", { class: "diff-head", text: `${change.kind} ${change.path}\n` }));
  const lines = change.diff.split("\n");
  lines.forEach((line, index) => {
    const kind = line.startsWith("+") ? "add" : line.startsWith("-") ? "del"
      : line.startsWith("@@") ? "hunk" : "ctx";
    pre.append(el("span", { class: `diff-${kind}`, text: line + (index < lines.length - 1 ? "\n" : "") }));
  });
  return pre;
}

function labelOf(threadId) {
  const state = threads.get(threadId);
  return state && state.conversation ? `${state.surface}:${state.conversation}` : threadId;
}

function renderApproval(a) {
  const what =
    a.kind === "command" ? a.command
    : a.kind === "tool_call" ? `${a.tool} ${a.arguments || ""}`
    : a.changes.map((c) => `${c.kind} ${c.path}`).join(", ");
  const box = el("div", { class: "approval", "data-approval": a.approval_id, "data-thread": a.thread_id },
    el("div", { class: "approval-head" },
      el("span", { class: "what", text: `Allow ${a.kind}: ${what}` }),
      a.thread_id !== selected ? el("span", { class: "where", text: `in ${labelOf(a.thread_id)}` }) : null,
      a.expires_at ? el("span", { class: "expiry", "data-expires": String(a.expires_at) }) : null),
    a.reason ? el("div", { class: "reason", text: a.reason }) : null,
    a.cwd ? el("div", { class: "cwd", text: `in ${a.cwd}` }) : null,
    ...(a.changes || []).map(diffView),
    el("div", { class: "approval-actions" },
      el("button", { type: "button", class: "approve primary", "data-decision": "accept",
        "data-key": `accept:${a.approval_id}`,
        title: "Approve (Alt+A)", text: "Approve" }),
      el("button", { type: "button", class: "decline", "data-decision": "decline",
        "data-key": `decline:${a.approval_id}`,
        title: "Decline (Alt+D)", text: "Decline" }),
      el("span", { class: "keys", text: "Alt+A approve · Alt+D decline" })));
  return box;
}

function decide(box, decision) {
  stream.send({ type: "decide", thread_id: box.dataset.thread, approval_id: box.dataset.approval, decision });
  for (const button of box.querySelectorAll("button")) button.disabled = true;
}

function clock(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  return seconds < 60 ? `${seconds}s` : `${Math.floor(seconds / 60)}m ${String(seconds % 60).padStart(2, "0")}s`;
}

// What the agent is doing in the selected conversation, from its latest interaction.
function activity(state) {
  const last = state && state.interactions[state.interactions.length - 1];
  if (!last) return null;
  const now = Date.now() / 1000;
  if (last.status !== "running") {
    const took = last.started_at && last.completed_at ? ` in ${clock(last.completed_at - last.started_at)}` : "";
    const word = { completed: "Done", failed: "Failed", interrupted: "Stopped" }[last.status] || last.status;
    return { kind: `done ${last.status}`, text: `${word}${took}` };
  }
  const elapsed = last.started_at ? ` · ${clock(now - last.started_at)}` : "";
  if (state.approvals.length) return { kind: "awaiting", text: `Waiting for your approval${elapsed}` };
  if (state.notice && state.notice.retrying) return { kind: "running", text: `Retrying: ${state.notice.message}${elapsed}` };
  const open = [...last.items].reverse().find((item) => item.status === "in_progress");
  let text = "Thinking";
  if (open) {
    if (open.kind === "command") text = `Running ${open.command || "a command"}`;
    else if (open.kind === "file_change") text = `Editing ${(open.changes || []).map((c) => c.path).join(", ") || "files"}`;
    else if (open.kind === "tool_call") text = `Calling ${open.tool || "a tool"}`;
    else if (open.kind === "web_search") text = "Searching the web";
    else if (open.kind === "agent_message") text = "Writing";
  }
  return { kind: "running", text: text + elapsed };
}

function progress() {
  const line = $("progress");
  const now = activity(selected ? threads.get(selected) : null);
  line.hidden = !now;
  if (now) {
    line.className = now.kind;
    line.textContent = now.text;
  }
  for (const expiry of document.querySelectorAll(".expiry")) {
    const left = Number(expiry.dataset.expires) - Date.now() / 1000;
    expiry.textContent = left > 0 ? `expires in ${clock(left)}` : "expired";
    expiry.classList.toggle("soon", left < 60);
  }
}
setInterval(progress, 1000);

function showError(message) {
  const line = el("div", { class: "error" }, el("span", { text: message }),
    el("button", { type: "button", class: "dismiss", title: "Dismiss", text: "×" }));
  $("errors").append(line);
  while ($("errors").children.length > 5) $("errors").firstChild.remove();
}

const stream = new PianoStream({
  token, onEnvelope, onStatus: (status) => { $("status").textContent = status; } });
const uploads = []; // {name, progress (0-100), status, refusal}: what the page showed
window.piano = { stream, threads, uploads };
stream.connect();

function drawer(open) {
  document.body.classList.toggle("drawer-open", open);
  $("drawer-toggle").setAttribute("aria-expanded", String(open));
  $("scrim").hidden = !open;
  if (open) ($("threads").querySelector(".selected button") || $("new-chat")).focus();
}

function newConversation(name) {
  conversation = name;
  const existing = [...threads.values()].find((s) => s.surface === "web" && s.conversation === name);
  select(existing ? existing.thread_id : null);
  drawer(false);
  render();
  $("text").focus();
}

// The daemon's chat commands (piano.commands: /whoami, ...), the same as in the terminal and
// Telegram: typed here, run by the daemon, answered in a dismissable box above the input.
let commandNames = new Set();
fetch("/api/commands", { headers: { Authorization: `Bearer ${token}` } })
  .then((response) => (response.ok ? response.json() : { commands: [] }))
  .then((body) => { commandNames = new Set(body.commands.map((c) => c.name)); })
  .catch(() => {});

async function runCommand(text) {
  const where = selected ? { thread_id: selected } : { conversation };
  const response = await fetch("/api/commands", {
    method: "POST", headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ text, user: "web", ...where }) });
  const body = await response.json();
  const reply = el("div", { class: "command-reply" },
    el("pre", {}, response.ok ? body.reply : body.error.message),
    el("button", { type: "button", class: "dismiss", "aria-label": "Dismiss" }, "×"));
  $("command-replies").replaceChildren(reply);
  if (selected) { resumes.delete(selected); scheduleRender(); } // /model, /effort change it
}
$("command-replies").addEventListener("click", (event) => {
  if (event.target.classList.contains("dismiss")) event.target.parentElement.remove();
});

$("send").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value.trim();
  const name = /^\/([A-Za-z0-9_]+)/.exec(text)?.[1]?.toLowerCase();
  if (name && commandNames.has(name)) {
    $("text").value = "";
    runCommand(text);
    return;
  }
  // a selected thread gets the message whichever surface opened it; else the web conversation
  const message = selected
    ? { type: "message", thread_id: selected, text, user: "web" }
    : { type: "message", conversation, text, user: "web" };
  if (text && stream.send(message)) {
    $("text").value = "";
    stickToEnd = true;
  }
});
$("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("send").requestSubmit();
  }
});
$("new-chat").addEventListener("click", () => {
  const now = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  newConversation(`chat-${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-` +
    `${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`);
});
$("new-conversation").addEventListener("submit", (event) => {
  event.preventDefault();
  newConversation($("conversation-name").value.trim() || "default");
  $("conversation-name").value = "";
});
$("threads").addEventListener("click", (event) => {
  const id = event.target.closest("[data-thread]")?.dataset.thread;
  if (!id) return;
  select(id);
  drawer(false);
  render();
});
$("threads").addEventListener("keydown", (event) => {
  // arrow keys move between conversations; Enter or Space opens one (it is a button)
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  const buttons = [...$("threads").querySelectorAll("button")];
  const at = buttons.indexOf(document.activeElement);
  const next = buttons[Math.max(0, Math.min(buttons.length - 1, at + (event.key === "ArrowDown" ? 1 : -1)))];
  if (next) { event.preventDefault(); next.focus(); }
});
$("approvals").addEventListener("click", (event) => {
  const decision = event.target.dataset.decision;
  const box = event.target.closest(".approval");
  if (decision && box) decide(box, decision);
});
$("messages").addEventListener("click", async (event) => {
  if (!event.target.classList.contains("copy")) return;
  const code = event.target.parentElement.querySelector("code") || event.target.parentElement;
  try {
    await navigator.clipboard.writeText(code.textContent);
    event.target.textContent = "Copied";
  } catch {
    event.target.textContent = "Select and copy";
  }
});
$("errors").addEventListener("click", (event) => {
  if (event.target.classList.contains("dismiss")) event.target.parentElement.remove();
});
$("interrupt").addEventListener("click", () => {
  if (selected) stream.send({ type: "interrupt", thread_id: selected });
});
$("drawer-toggle").addEventListener("click", () =>
  drawer(!document.body.classList.contains("drawer-open")));
$("scrim").addEventListener("click", () => drawer(false));
$("show-transcript").addEventListener("click", async () => {
  const view = $("transcript");
  if (!selected) return;
  const response = await fetch(`/api/threads/${encodeURIComponent(selected)}/transcript?format=html`, {
    headers: { Authorization: `Bearer ${token}` } });
  if (response.ok) view.innerHTML = await response.text(); // sanitised by the server (nh3)
  else view.textContent = `(no transcript: ${(await response.json()).error.message})`;
  $("transcript-dialog").showModal();
});

document.addEventListener("keydown", (event) => {
  const typing = /^(TEXTAREA|INPUT)$/.test(document.activeElement?.tagName || "");
  const key = event.key.toLowerCase();
  const boxes = [...document.querySelectorAll("#approvals .approval")];
  const newest = boxes[boxes.length - 1];
  if (event.key === "Escape") { drawer(false); return; }
  if ((event.altKey || (!typing && !event.ctrlKey && !event.metaKey)) && newest
      && (key === "a" || key === "d")) {
    event.preventDefault();
    decide(newest, key === "a" ? "accept" : "decline");
  } else if (event.altKey && key === "n") {
    event.preventDefault();
    $("new-chat").click();
  } else if (event.altKey && key === "k") {
    event.preventDefault();
    drawer(!document.body.classList.contains("drawer-open"));
  } else if (event.altKey && key === "s") {
    event.preventDefault();
    $("interrupt").click();
  }
});

// Uploads: the file button, drag-and-drop onto the conversation, or pasting an image.
function upload(file) {
  const form = new FormData();
  const state = selected ? threads.get(selected) : null;
  form.append("conversation", state && state.surface === "web" ? state.conversation : conversation);
  form.append("user", "web");
  form.append("text", $("text").value.trim());
  form.append("file", file, file.name || "pasted");
  const bar = $("upload-progress");
  const shown = { name: file.name || "pasted", progress: 0, status: "sending", refusal: null };
  uploads.push(shown);
  bar.hidden = false;
  bar.querySelector(".label").textContent = `Sending ${file.name || "pasted image"}…`;
  const request = new XMLHttpRequest();
  request.open("POST", "/api/uploads");
  request.setRequestHeader("Authorization", `Bearer ${token}`);
  request.upload.onprogress = (event) => {
    if (!event.lengthComputable) return;
    shown.progress = Math.round((100 * event.loaded) / event.total);
    bar.querySelector("progress").value = shown.progress;
  };
  request.onload = () => {
    bar.hidden = true;
    let data = {};
    try { data = JSON.parse(request.responseText); } catch { data = {}; }
    if (request.status >= 400) {
      Object.assign(shown, { status: "refused", refusal: data.error ? data.error.message : String(request.status) });
      showError(`${file.name || "the file"} was refused: ${shown.refusal}`);
      return;
    }
    shown.status = "sent";
    $("text").value = "";
    const thread_ = thread(data.thread_id);
    if (!thread_.surface) Object.assign(thread_, { surface: "web", conversation: form.get("conversation") });
    select(data.thread_id);
    scheduleRender();
  };
  request.onerror = () => {
    bar.hidden = true;
    shown.status = "failed";
    showError(`${file.name} could not be sent`);
  };
  request.send(form);
}

$("file").addEventListener("change", () => {
  for (const file of $("file").files) upload(file);
  $("file").value = "";
});
$("chat").addEventListener("dragover", (event) => {
  event.preventDefault();
  $("chat").classList.add("dragging");
});
$("chat").addEventListener("dragleave", () => $("chat").classList.remove("dragging"));
$("chat").addEventListener("drop", (event) => {
  event.preventDefault();
  $("chat").classList.remove("dragging");
  for (const file of event.dataTransfer.files) upload(file);
});
$("text").addEventListener("paste", (event) => {
  const files = [...(event.clipboardData?.files || [])];
  if (!files.length) return;
  event.preventDefault();
  for (const file of files) upload(file);
});
