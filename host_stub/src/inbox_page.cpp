#include "inbox_page.hpp"

namespace hdp::host {

// Plain HTML, CSS and a little JavaScript; no build step. The page polls the JSON API every
// 1.5 s and updates only the calls that changed, so a playing recording is never interrupted.
// Hooks for tests and for anyone scripting the page: every call is an
// <article class="call" data-message-id data-external-key data-recording-status>, its player an
// <audio controls>, the retry button a <button class="retry">.
const std::string& inbox_page_html() {
  static const std::string page = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Inbox · calls</title>
<style>
  :root {
    --bg: #f5f6f8; --panel: #fff; --line: #e3e5e8; --text: #1f2328; --muted: #667085;
    --accent: #2f6fed; --accent-soft: #eaf1ff;
    --green: #1e7b34; --green-bg: #e6f4ea; --amber: #8a5300; --amber-bg: #fff3dc;
    --blue: #1a56c4; --blue-bg: #e8f0fe; --red: #b3261e; --red-bg: #fdecea; --gray: #5f6368; --gray-bg: #eef0f2;
  }
  * { box-sizing: border-box; }
  html, body { height: 100%; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--text);
         background: var(--bg); display: flex; flex-direction: column; }
  header.top { display: flex; align-items: center; gap: .8rem; padding: .7rem 1.2rem; background: #1f2a44; color: #fff; }
  header.top h1 { font-size: 1.05rem; margin: 0; font-weight: 600; letter-spacing: .01em; }
  header.top .sub { color: #b8c2d9; font-size: .85rem; }
  #live { margin-left: auto; font-size: .82rem; color: #b8c2d9; display: flex; align-items: center; gap: .4rem; }
  #live .dot { width: .55rem; height: .55rem; border-radius: 50%; background: #3ddc84; }
  #live.offline .dot { background: #ff6b5e; }
  #live.offline { color: #ffd2cc; }
  #agent { font-size: .82rem; color: #b8c2d9; }
  #sign-out { font: inherit; font-size: .8rem; color: #fff; background: none; border: 1px solid #5a6785; border-radius: 6px;
              padding: .2rem .6rem; cursor: pointer; }
  .conv .attention { color: var(--red); font-weight: 600; margin-left: .35rem; white-space: nowrap; }
  .layout { flex: 1; display: flex; min-height: 0; }
  nav { width: 19rem; background: var(--panel); border-right: 1px solid var(--line); display: flex; flex-direction: column; }
  nav h2 { font-size: .78rem; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0;
           padding: .9rem 1rem .5rem; }
  #conversations { overflow-y: auto; flex: 1; }
  .conv { display: block; width: 100%; text-align: left; border: 0; background: none; font: inherit; color: inherit;
          padding: .7rem 1rem; border-bottom: 1px solid var(--line); cursor: pointer; border-left: 3px solid transparent; }
  .conv:hover { background: #f8f9fb; }
  .conv.active { background: var(--accent-soft); border-left-color: var(--accent); }
  .conv .row { display: flex; align-items: baseline; gap: .5rem; }
  .conv .who { font-weight: 600; }
  .conv .ago { margin-left: auto; color: var(--muted); font-size: .78rem; white-space: nowrap; }
  .conv .meta { color: var(--muted); font-size: .82rem; display: flex; align-items: center; gap: .1rem; }
  .mini { display: inline-block; width: .5rem; height: .5rem; border-radius: 50%; margin-right: .4rem;
          background: var(--gray); }
  .mini.attached { background: var(--green); } .mini.waiting { background: #e09b1a; }
  .mini.downloading { background: var(--blue); } .mini.failed { background: var(--red); }
  main { flex: 1; overflow-y: auto; padding: 1.2rem 1.6rem 2rem; }
  .conv-head { display: flex; align-items: baseline; gap: .8rem; margin-bottom: 1rem; }
  .conv-head h2 { margin: 0; font-size: 1.25rem; }
  .conv-head .meta { color: var(--muted); font-size: .88rem; }
  .empty-state { color: var(--muted); text-align: center; margin-top: 4rem; }
  .call { background: var(--panel); border: 1px solid var(--line); border-radius: .7rem; padding: .9rem 1rem;
          margin-bottom: .8rem; display: grid; grid-template-columns: 2.4rem 1fr; gap: .2rem .8rem;
          box-shadow: 0 1px 2px rgba(16, 24, 40, .04); max-width: 52rem; }
  .icon { grid-row: span 3; align-self: start; width: 2.4rem; height: 2.4rem; border-radius: 50%; display: grid; place-items: center;
          font-size: 1.15rem; font-weight: 700; background: var(--green-bg); color: var(--green); }
  .icon.outgoing { background: var(--blue-bg); color: var(--blue); }
  .icon.missed { background: var(--red-bg); color: var(--red); }
  .line1 { display: flex; flex-wrap: wrap; align-items: baseline; gap: .35rem .6rem; }
  .line1 .title { font-weight: 600; }
  .line1 .when { margin-left: auto; color: var(--muted); font-size: .85rem; }
  .sep { color: #c0c5cc; }
  .recording { display: flex; flex-wrap: wrap; align-items: center; gap: .4rem .7rem; margin-top: .25rem; }
  .badge { display: inline-flex; align-items: center; gap: .4rem; border-radius: 999px; padding: .12rem .65rem;
           font-size: .82rem; font-weight: 600; background: var(--gray-bg); color: var(--gray); white-space: nowrap; }
  .badge::before { content: ""; width: .5rem; height: .5rem; border-radius: 50%; background: currentColor; }
  .badge.attached { background: var(--green-bg); color: var(--green); }
  .badge.waiting { background: var(--amber-bg); color: var(--amber); }
  .badge.downloading { background: var(--blue-bg); color: var(--blue); }
  .badge.failed { background: var(--red-bg); color: var(--red); }
  .badge.waiting::before, .badge.downloading::before { animation: pulse 1.4s ease-in-out infinite; }
  @keyframes pulse { 50% { opacity: .25; } }
  .reason { color: #3d4450; font-size: .9rem; }
  .info, .media, .callid { grid-column: 2; min-width: 0; }
  .media:empty { display: none; }
  .detail { color: var(--muted); font-size: .8rem; margin-top: .15rem; }
  .media { grid-column: 2; display: flex; flex-wrap: wrap; align-items: center; gap: .4rem 1rem; margin-top: .45rem; }
  .media audio { width: min(26rem, 100%); height: 2.4rem; }
  .media a { font-size: .85rem; color: var(--accent); }
  button.retry { font: inherit; font-size: .85rem; font-weight: 600; color: #fff; background: var(--accent); border: 0;
                 border-radius: .45rem; padding: .3rem .85rem; cursor: pointer; }
  button.retry:hover { background: #2259c9; }
  button.retry:disabled { background: #9db7ef; cursor: default; }
  .note { font-size: .82rem; color: var(--muted); }
  .note.error { color: var(--red); }
  .callid { grid-column: 2; color: #98a1ad; font-size: .75rem; font-family: ui-monospace, Menlo, Consolas, monospace; }
</style>
</head>
<body>
<header class="top">
  <h1>Helpdesk inbox</h1><span class="sub">WhatsApp calls and their recordings</span>
  <div id="live"><span class="dot"></span><span id="live-text">connecting…</span></div>
  <span id="agent"></span><button id="sign-out" type="button">Sign out</button>
</header>
<div class="layout">
  <nav><h2>Conversations <span id="conv-count"></span></h2><div id="conversations"></div></nav>
  <main id="messages"><p class="empty-state">Loading…</p></main>
</div>
<script>
"use strict";
const $ = (s) => document.querySelector(s);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;","'":"&#39;"}[c]));

const RECORDING = {
  attached:    { label: "Recording attached" },
  waiting:     { label: "Waiting for recording" },
  downloading: { label: "Downloading recording" },
  failed:      { label: "Recording failed" },
  disabled:    { label: "Recording off" },
  empty:       { label: "No audio recorded" },
  none:        { label: "No recording" },
};
const CALL_STATUS = {
  INCOMING_RING: "Ringing", OUTGOING_RING: "Calling", OUTGOING_CALLING: "Calling", CALLING: "Calling",
  CONNECTING: "Connecting", ACTIVE: "In progress", ENDED: "Ended", REJECTED: "Rejected", NOT_ANSWERED: "Not answered",
  FAILED: "Call failed", CONNECTION_LOST: "Connection lost", HANDLED_REMOTELY: "Answered on another device",
  REMOTE_CALL_IN_PROGRESS: "Busy on another call",
};
const IN_PROGRESS = new Set(["INCOMING_RING", "OUTGOING_RING", "OUTGOING_CALLING", "CALLING", "CONNECTING", "ACTIVE"]);

function phone(contact) {
  if (!contact) return "Unknown caller";
  const d = String(contact);
  const br = d.match(/^55(\d\d)(\d{4,5})(\d{4})$/);
  return br ? `+55 ${br[1]} ${br[2]}-${br[3]}` : "+" + d;
}
function duration(s) {
  if (s === null || s === undefined || s < 0) return "";
  if (s < 60) return `${s} s`;
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = String(s % 60).padStart(2, "0");
  return h ? `${h} h ${String(m).padStart(2, "0")} min` : `${m} min ${r} s`;
}
function clock(ms) {
  const d = new Date(ms), now = new Date();
  const t = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return d.toDateString() === now.toDateString() ? t : `${d.toLocaleDateString()} ${t}`;
}
// Within the hour: how long ago; earlier today: the time; before today: the date.
function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 10) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  const d = new Date(ms);
  if (d.toDateString() === new Date().toDateString()) {
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  return d.toLocaleDateString();
}
function size(bytes) {
  if (bytes >= 1048576) return (bytes / 1048576).toFixed(1) + " MB";
  return Math.max(1, Math.round(bytes / 1024)) + " KB";
}

let current = Number((location.hash.match(/^#c(\d+)$/) || [])[1]) || null;
let conversations = [];
const notes = new Map();  // message id -> {text, error, status it was written for}

function latestCall(c) {
  const entry = cache.get(c.id);
  if (!entry || !entry.messages.length) return null;
  return entry.messages.reduce((a, b) => (b.created_at_ms > a.created_at_ms ? b : a));
}

// Calls whose recording failed: an agent has something to do (or at least to know) for each.
function needingAttention(c) {
  const entry = cache.get(c.id);
  return entry ? entry.messages.filter((m) => m.recording_status === "failed").length : 0;
}

function renderConversations() {
  const html = conversations.map((c) => {
    const m = latestCall(c);
    const summary = m
      ? `<span class="mini ${esc(m.recording_status)}"></span>${esc(recordingLabel(m))}`
      : "";
    const failed = needingAttention(c);
    const attention = failed
      ? `<span class="attention" title="Calls whose recording failed">· ${failed} need${failed === 1 ? "s" : ""} attention</span>`
      : "";
    return `<button class="conv${c.id === current ? " active" : ""}" data-id="${c.id}" data-attention="${failed}">
       <div class="row"><span class="who">${esc(phone(c.contact))}</span><span class="ago">${esc(ago(c.last_activity_ms))}</span></div>
       <div class="meta">${summary}${c.message_count > 1 ? ` · ${c.message_count} calls` : ""}${attention}</div>
     </button>`;
  }).join("") || `<p class="empty-state" style="margin-top:1.5rem">No conversations yet.</p>`;
  const box = $("#conversations");
  if (box.dataset.html !== html) { box.innerHTML = html; box.dataset.html = html; }
  $("#conv-count").textContent = conversations.length ? `(${conversations.length})` : "";
}

function select(id) {
  if (current === id) return;
  current = id;
  history.replaceState(null, "", "#c" + id);
  $("#messages").innerHTML = "";
  renderConversations();
  tick();
}

function recordingLabel(m) {
  if (m.recording_status === "none" && !m.recording_reason) {
    return IN_PROGRESS.has(m.call_status) ? "Call in progress" : "No recording yet";
  }
  return (RECORDING[m.recording_status] || { label: m.recording_status }).label;
}

function callHtml(m) {
  const outgoing = m.direction === "outgoing";
  const missed = !outgoing && (m.call_status === "NOT_ANSWERED" || m.call_status === "REJECTED");
  const title = missed ? "Missed call" : outgoing ? "Outgoing call" : m.direction === "incoming" ? "Incoming call" : "Call";
  const status = m.call_status ? (CALL_STATUS[m.call_status] || m.call_status.toLowerCase().replace(/_/g, " ")) : "";
  const dur = m.duration_s > 0 ? duration(m.duration_s) : "";
  const label = recordingLabel(m);
  // Shown as the plugin wrote them: the reason, and the technical detail on a smaller line.
  const reason = m.recording_reason || "", detail = m.recording_detail || "";
  const note = notes.get(m.id);
  // "Try again" posts where the plugin said (retry_url), for whatever status it gave one.
  const retry = m.retry_url
    ? `<button class="retry"${note && !note.error ? " disabled" : ""}>Try again</button>` : "";
  return {
    icon: outgoing ? "outgoing" : missed ? "missed" : "incoming",
    arrow: outgoing ? "&#8599;" : "&#8601;",
    info: `
    <div class="line1">
      <span class="title">${title}</span>
      ${status ? `<span class="sep">·</span><span class="call-status">${esc(status)}</span>` : ""}
      ${dur ? `<span class="sep">·</span><span class="duration">${esc(dur)}</span>` : ""}
      <span class="when" title="${esc(new Date(m.created_at_ms).toString())}">${esc(clock(m.created_at_ms))}</span>
    </div>
    <div class="recording">
      <span class="badge ${esc(m.recording_status)}">${esc(label)}</span>
      ${reason ? `<span class="reason">${esc(reason)}</span>` : ""}
      ${retry}
      ${note ? `<span class="note${note.error ? " error" : ""}">${esc(note.text)}</span>` : ""}
    </div>
    ${detail ? `<div class="detail">${esc(detail)}</div>` : ""}`,
    // The plugin's key for the call, as it gave it (the page knows no plugin's key format).
    foot: m.external_key ? `Call ${esc(m.external_key)}` : "",
  };
}

// The player is created once per attachment and left alone afterwards.
function updateMedia(card, m) {
  const media = card.querySelector(".media");
  const audio = m.attachments.find((a) => String(a.mime_type).startsWith("audio/"));
  const key = audio ? audio.url : "";
  if (media.dataset.url === key) return;
  media.dataset.url = key;
  media.innerHTML = audio
    ? `<audio controls preload="metadata" src="${esc(audio.url)}"></audio>
       <a href="${esc(audio.url)}" download="${esc(audio.file_name)}">Download (${esc(size(audio.size))})</a>`
    : m.attachments.map((a) => `<a href="${esc(a.url)}" download="${esc(a.file_name)}">${esc(a.file_name)}</a>`).join(" ");
}

function renderMessages(conversation, messages) {
  const main = $("#messages");
  let head = main.querySelector(".conv-head");
  if (!head) {
    main.innerHTML = `<div class="conv-head"><h2></h2><span class="meta"></span></div><div id="calls"></div>`;
    head = main.querySelector(".conv-head");
  }
  head.querySelector("h2").textContent = phone(conversation.contact);
  head.querySelector(".meta").textContent =
    `${conversation.inbox} inbox · ${messages.length} call${messages.length === 1 ? "" : "s"}`;
  const list = main.querySelector("#calls");
  const ordered = [...messages].sort((a, b) => b.created_at_ms - a.created_at_ms || b.id - a.id);
  const seen = new Set();
  ordered.forEach((m, i) => {
    const note = notes.get(m.id);
    if (note && note.status !== m.recording_status) notes.delete(m.id);  // the retry moved things on
    let card = list.querySelector(`article.call[data-message-id="${m.id}"]`);
    if (!card) {
      card = document.createElement("article");
      card.className = "call";
      card.dataset.messageId = m.id;
    }
    if (!card.firstChild) {
      card.innerHTML = `<div class="icon" aria-hidden="true"></div><div class="info"></div>
                        <div class="media"></div><div class="callid"></div>`;
    }
    const sig = JSON.stringify(m) + JSON.stringify(notes.get(m.id) || null);
    if (card.dataset.sig !== sig) {
      const parts = callHtml(m);  // the player in .media is not touched here
      card.querySelector(".icon").className = "icon " + parts.icon;
      card.querySelector(".icon").innerHTML = parts.arrow;
      card.querySelector(".info").innerHTML = parts.info;
      card.querySelector(".callid").innerHTML = parts.foot;
      card.dataset.sig = sig;
      card.dataset.externalKey = m.external_key;
      card.dataset.recordingStatus = m.recording_status;
      const button = card.querySelector("button.retry");
      if (button) button.onclick = () => retry(m);
    }
    updateMedia(card, m);
    if (list.children[i] !== card) list.insertBefore(card, list.children[i] || null);
    seen.add(card);
  });
  [...list.children].forEach((c) => { if (!seen.has(c)) c.remove(); });
  if (!messages.length) list.innerHTML = `<p class="empty-state">No calls in this conversation.</p>`;
}

// The signed-in agent and the token that state-changing requests carry (X-CSRF-Token).
let csrf = "";
function signIn() { location.href = "/login"; }
async function loadSession() {
  const r = await fetch("/api/session", { cache: "no-store" });
  if (r.status === 401) { signIn(); return; }
  if (!r.ok) throw new Error("HTTP " + r.status);
  const s = await r.json();
  csrf = s.csrf_token;
  $("#agent").textContent = s.agent;
}
$("#sign-out").onclick = async () => {
  try { await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrf } }); } catch (e) { /* signed out anyway below */ }
  location.href = "/login?error=out";
};

async function retry(m) {
  notes.set(m.id, { text: "Retry requested…", error: false, status: m.recording_status });
  tick();
  let text = "", error = true;
  try {
    if (!csrf) await loadSession();
    const r = await fetch(m.retry_url, { method: "POST", headers: { "X-CSRF-Token": csrf } });
    if (r.ok) { text = "Retry requested: checking WaVoIP again…"; error = false; }
    else if (r.status === 401) text = "Your sign-in has ended: reload the page and sign in again.";
    else if (r.status === 403) text = "This page's sign-in is out of date: reload the page.";
    else if (r.status === 404) text = "The plugin does not know this call.";
    else text = `The retry was refused (HTTP ${r.status}).`;
  } catch (e) {
    text = "Could not reach the helpdesk to ask for a retry.";
  }
  notes.set(m.id, { text, error, status: m.recording_status });
  tick();
}

function setLive(ok) {
  $("#live").classList.toggle("offline", !ok);
  $("#live-text").textContent = ok
    ? "Live · updated " + new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : "Offline · retrying…";
}

// Messages per conversation, fetched again when its activity changes (and all every 10 s),
// so the list can show each conversation's latest call.
const cache = new Map();
let fullRefreshAt = 0;
async function loadMessages(c, force) {
  const key = `${c.last_activity_ms}:${c.message_count}`;
  const hit = cache.get(c.id);
  if (!force && hit && hit.key === key) return hit;
  const r = await fetch(`/api/conversations/${c.id}/messages`, { cache: "no-store" });
  if (!r.ok) return hit;
  const data = await r.json();
  const entry = { key, conversation: data.conversation, messages: data.messages };
  cache.set(c.id, entry);
  return entry;
}

let busy = false, again = false;
async function tick() {
  if (busy) { again = true; return; }
  busy = true;
  try {
    const r = await fetch("/api/conversations", { cache: "no-store" });
    if (r.status === 401) { signIn(); return; }
    if (!r.ok) throw new Error("HTTP " + r.status);
    conversations = (await r.json()).conversations;
    // The selected conversation can vanish (a call moved to its contact): show the latest one.
    if (!conversations.some((c) => c.id === current)) {
      current = conversations.length ? conversations[0].id : null;
      $("#messages").innerHTML = "";
      if (current !== null) history.replaceState(null, "", "#c" + current);
    }
    const full = Date.now() >= fullRefreshAt;
    if (full) fullRefreshAt = Date.now() + 10000;
    for (const id of [...cache.keys()]) if (!conversations.some((c) => c.id === id)) cache.delete(id);
    await Promise.all(conversations.slice(0, 100).map((c) => loadMessages(c, full || c.id === current)));
    renderConversations();
    const shown = conversations.find((c) => c.id === current);
    if (!shown) {
      $("#messages").innerHTML =
        `<p class="empty-state">No calls yet. They appear here as soon as WaVoIP reports them.</p>`;
    } else if (cache.has(shown.id)) {
      const entry = cache.get(shown.id);
      renderMessages(entry.conversation, entry.messages);
    }
    setLive(true);
  } catch (e) {
    setLive(false);
  } finally {
    busy = false;
    if (again) { again = false; tick(); }
  }
}
$("#conversations").onclick = (e) => {
  const button = e.target.closest(".conv");
  if (button) select(Number(button.dataset.id));
};
loadSession().catch(() => setLive(false)).finally(() => { tick(); setInterval(tick, 1500); });
</script>
</body>
</html>
)html";
  return page;
}

}  // namespace hdp::host
