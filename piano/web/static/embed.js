// One script tag puts a Piano chat on a page:
//   <script src="http://HOST:PORT/embed.js" data-token="EMBED-TOKEN"
//           data-height="480" async></script>
// It inserts, where the tag stands, an iframe of this server's /embed page; the token goes in
// the fragment, which browsers never send to a server. The server lets only the origins of
// [web.embed] frame_ancestors frame it.
"use strict";
(function () {
  const script = document.currentScript;
  if (!script) return;
  const origin = new URL(script.src).origin;
  const frame = document.createElement("iframe");
  frame.src = origin + "/embed#token=" + encodeURIComponent(script.dataset.token || "");
  frame.title = script.dataset.title || "Piano chat";
  frame.className = "piano-embed";
  frame.style.border = "1px solid #ccc";
  frame.style.width = script.dataset.width || "100%";
  frame.style.height = (script.dataset.height || "480") + "px";
  script.after(frame);
})();
