#include "inbox_page.hpp"

namespace hdp::host {

const std::string& inbox_page_html() {
  static const std::string page = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>hdp-stub-host inbox</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; display: flex; height: 100vh; }
  #conversations { width: 18rem; border-right: 1px solid #ddd; overflow-y: auto; }
  #conversations div { padding: .6rem .8rem; cursor: pointer; border-bottom: 1px solid #eee; }
  #conversations div.active { background: #eef4ff; }
  #messages { flex: 1; padding: 1rem; overflow-y: auto; }
  .message { border: 1px solid #ddd; border-radius: .5rem; padding: .6rem .8rem; margin-bottom: .8rem; }
  .status { font-weight: 600; }
  .status.failed, .status.disabled, .status.empty { color: #a33; }
  .status.attached { color: #282; }
  .reason { color: #555; margin-top: .3rem; }
  small { color: #777; }
</style>
</head>
<body>
<div id="conversations"></div>
<div id="messages"><p>Pick a conversation.</p></div>
<script>
const $ = (s) => document.querySelector(s);
const text = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;","'":"&#39;"}[c]));
let current = null;
let shown = "";
async function loadConversations() {
  const r = await fetch("/api/conversations");
  const { conversations } = await r.json();
  $("#conversations").innerHTML = conversations.map((c) =>
    `<div data-id="${c.id}" class="${c.id === current ? "active" : ""}">
       <b>${c.contact ? text(c.contact) : "unknown contact"}</b><br>
       <small>${text(c.inbox)} &middot; ${c.message_count} call(s) &middot; ${new Date(c.last_activity_ms).toLocaleString()}</small>
     </div>`).join("");
  document.querySelectorAll("#conversations div").forEach((d) =>
    d.onclick = () => { current = Number(d.dataset.id); shown = ""; loadConversations(); loadMessages(); });
}
async function loadMessages() {
  if (current === null) return;
  const r = await fetch(`/api/conversations/${current}/messages`);
  if (!r.ok) return;
  const raw = await r.text();
  if (raw === shown) return;  // do not interrupt a playing recording
  shown = raw;
  const { messages } = JSON.parse(raw);
  $("#messages").innerHTML = messages.map((m) =>
    `<div class="message">
       <div>${text(m.direction)} call &middot; ${text(m.call_status ?? "")}
            ${m.duration_s !== null ? "&middot; " + m.duration_s + " s" : ""}
            <small>${text(m.external_key)}</small></div>
       <div class="status ${text(m.recording_status)}">recording: ${text(m.recording_status)}</div>
       ${m.recording_reason ? `<div class="reason">${text(m.recording_reason)}</div>` : ""}
       ${m.attachments.map((a) => a.mime_type.startsWith("audio/")
          ? `<audio controls preload="none" src="${text(a.url)}"></audio>`
          : `<a href="${text(a.url)}">${text(a.file_name)}</a>`).join("")}
     </div>`).join("") || "<p>No calls.</p>";
}
loadConversations();
setInterval(() => { loadConversations(); loadMessages(); }, 3000);
</script>
</body>
</html>
)html";
  return page;
}

}  // namespace hdp::host
