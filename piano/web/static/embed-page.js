// The embedded chat's page (/embed, inside the iframe embed.js inserts). It talks only to
// /embed/api/* with the embed token from the URL fragment, in the conversation of this
// browser (a random id kept in its storage), and shows every text with textContent: an
// answer is never interpreted as HTML.
"use strict";
(function () {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token") || "";
  history.replaceState(null, "", location.pathname); // the token leaves the address bar
  const list = document.getElementById("exchanges");
  const form = document.getElementById("embed-form");
  const input = document.getElementById("embed-input");
  const error = document.getElementById("embed-error");
  const storageKey = "piano-embed-conversation";
  let conversation = null;
  try {
    conversation = localStorage.getItem(storageKey);
  } catch (e) { /* storage blocked: one conversation per page load */ }
  if (!conversation || !/^[A-Za-z0-9_-]{16,64}$/.test(conversation)) {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    conversation = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    try { localStorage.setItem(storageKey, conversation); } catch (e) { /* see above */ }
  }
  const headers = { "Authorization": "Bearer " + token, "Content-Type": "application/json" };
  let timer = null;

  function show(message) {
    error.hidden = !message;
    error.textContent = message || "";
  }

  function render(exchanges) {
    list.replaceChildren();
    for (const x of exchanges) {
      const ask = document.createElement("li");
      ask.className = "embed-user";
      ask.textContent = x.text;
      const answer = document.createElement("li");
      answer.className = "embed-agent embed-" + x.status;
      answer.textContent = x.response || (x.error ? "⚠ " + x.error : "…");
      list.append(ask, answer);
    }
    list.lastElementChild?.scrollIntoView({ block: "end" });
    return exchanges.some((x) => x.status === "pending" || x.status === "in_progress");
  }

  async function refresh() {
    timer = null;
    const response = await fetch("/embed/api/conversations/" + conversation, { headers });
    if (!response.ok) {
      show((await response.json()).message || "the chat is unavailable");
      return;
    }
    show("");
    if (render((await response.json()).exchanges)) timer = setTimeout(refresh, 700);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    const response = await fetch("/embed/api/messages", {
      method: "POST", headers, body: JSON.stringify({ conversation, text }),
    });
    if (!response.ok) {
      show((await response.json()).message || "the message was not sent");
      return;
    }
    if (timer !== null) clearTimeout(timer);
    refresh();
  });
  refresh();
})();
