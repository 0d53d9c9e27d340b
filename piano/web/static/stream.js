// PianoStream: a client of Piano's /stream WebSocket (protocol: docs/web.md).
// It authenticates with the token, subscribes, hands every envelope to its callbacks and, when
// the connection drops, reconnects with back-off and resumes from the last seq it handled:
// the server replays what was missed, or sends a snapshot when it no longer can.
"use strict";

class PianoStream {
  constructor({ token, threads = ["*"], dashboard = false, onEnvelope, onStatus }) {
    this.token = token;
    this.threads = threads;
    this.dashboard = dashboard;
    this.onEnvelope = onEnvelope || (() => {});
    this.onStatus = onStatus || (() => {});
    this.stream = null; // name of the stream our lastSeq belongs to
    this.lastSeq = 0;
    this.delay = 250;
    this.closed = false;
    this.ws = null;
    this.replayed = 0;
    this.snapshots = 0;
    this.counts = {}; // envelopes received, by type
  }

  connect() {
    const ws = new WebSocket(`ws://${location.host}/stream`);
    this.ws = ws;
    this.onStatus("connecting");
    ws.onopen = () => this.send({ type: "auth", token: this.token });
    ws.onmessage = (message) => this.receive(JSON.parse(message.data));
    ws.onclose = (close) => {
      if (this.ws !== ws) return;
      this.onStatus(`disconnected (${close.code}${close.reason ? ": " + close.reason : ""})`);
      if (this.closed || close.code === 4001 || close.code === 4002) return;
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 4000);
    };
  }

  receive(envelope) {
    const data = envelope.data;
    this.counts[envelope.type] = (this.counts[envelope.type] || 0) + 1;
    if (envelope.seq > 0) {
      if (envelope.seq <= this.lastSeq) return; // already handled (replay overlap)
      this.lastSeq = envelope.seq;
    }
    switch (envelope.type) {
      case "welcome": {
        this.delay = 250;
        const resuming = this.stream !== null;
        for (const thread of this.threads) {
          this.send({ type: "subscribe", thread_id: thread, snapshot: !resuming });
        }
        if (resuming) this.send({ type: "resume", stream: this.stream, last_seq: this.lastSeq });
        if (this.dashboard) this.send({ type: "dashboard" });
        this.onStatus("live");
        break;
      }
      case "snapshot":
        this.stream = data.stream;
        this.lastSeq = data.seq;
        this.snapshots += 1;
        if (data.reason !== "subscribed") this.onStatus(`live (snapshot: ${data.reason})`);
        break;
      case "resumed":
        this.replayed += data.replayed;
        this.onStatus(`live (replayed ${data.replayed})`);
        break;
    }
    this.onEnvelope(envelope);
  }

  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
  }
}

// The access token: from the page's #token=... fragment (kept for this tab only), then removed
// from the address bar; or asked for.
function pianoToken() {
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    sessionStorage.setItem("piano-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname);
  }
  let token = sessionStorage.getItem("piano-token");
  if (!token) {
    token = prompt("Piano access token") || "";
    sessionStorage.setItem("piano-token", token);
  }
  return token;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}
