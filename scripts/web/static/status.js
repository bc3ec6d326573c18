// The pipeline panel: polled at most once per status_poll_seconds, only while the tab is
// visible (each poll costs CloudWatch requests); stale figures stay, greyed, with their time.
"use strict";

import { $, api, el, fmtTime } from "./api.js";

const FIELDS = [
  ["waiting", "Images queued for embedding, not yet picked up.",
    (s) => s.queue.visible],
  ["in flight", "Images being embedded right now (received by a worker, not yet done).",
    (s) => s.queue.in_flight],
  ["oldest message", "How long the oldest queued image has waited.",
    (s) => s.oldest_message_age_seconds === null ? "unknown" : Math.round(s.oldest_message_age_seconds) + " s"],
  ["DLQ", "Dead-letter queue: images that failed every retry. Select the figure for the list.",
    (s) => s.dlq.total, true],
  ["embedded (1 h)", "Images embedded and indexed in the last hour.",
    (s) => s.last_hour.ImagesEmbedded || 0],
  ["failures (1 h)", "Images that failed for good in the last hour (not images, too large, rejected). Select the figure for the list.",
    (s) => s.last_hour.PermanentFailures || 0, true],
  ["ETA", "Estimated time until the queue is empty, at the last 10 minutes' rate.",
    (s) => s.eta_seconds === null ? "unknown" : Math.round(s.eta_seconds) + " s"],
];

let pollSeconds = 60;
let lastFetch = 0;
let timer = null;
let hasFigures = false;

function draw(s) {
  const list = $("status-list");
  list.replaceChildren();
  FIELDS.forEach(([name, help, value, linked], i) => {
    const helpId = "status-help-" + i;
    const label = el("span", { className: "label", tabIndex: 0, title: help, textContent: name });
    label.setAttribute("aria-describedby", helpId);
    const tip = el("span", { className: "help", id: helpId, textContent: help });
    tip.setAttribute("role", "tooltip");
    const v = String(value(s));
    const dd = el("dd", {}, linked
      ? el("a", { href: "#failures", className: "failures-link", textContent: v, title: "List the failed images" })
      : v);
    dd.dataset.field = name;
    list.append(el("dt", {}, label, tip), dd);
  });
  hasFigures = true;
}

function note(text) {
  $("status-note").textContent = text;
}

export async function refreshStatus() {
  lastFetch = Date.now();
  const panel = $("status");
  try {
    const s = await api("/api/status");
    draw(s);
    const when = s.fetched_at ? fmtTime(s.fetched_at) : fmtTime(new Date().toISOString());
    panel.classList.toggle("stale", Boolean(s.stale));
    panel.dataset.fetchedAt = s.fetched_at || "";
    note(s.stale ? "last updated " + when + " — " + (s.error || "the figures could not be refreshed")
                 : "updated " + when);
  } catch (e) {
    // Keep earlier figures, greyed, rather than blanking the panel.
    panel.classList.toggle("stale", hasFigures);
    const at = panel.dataset.fetchedAt;
    note(hasFigures && at ? "last updated " + fmtTime(at) + " — " + e.message : e.message);
  }
}

function schedule() {
  clearTimeout(timer);
  const wait = Math.max(0, lastFetch + pollSeconds * 1000 - Date.now());
  timer = setTimeout(() => {
    if (document.visibilityState === "visible") refreshStatus().finally(schedule);
    // hidden: no poll; visibilitychange brings the next one
  }, wait);
}

async function showFailures(ev) {
  ev.preventDefault();
  const dialog = $("failures");
  const list = $("failures-list");
  list.replaceChildren();
  $("failures-note").textContent = "loading…";
  if (!dialog.open) dialog.showModal();
  try {
    const data = await api("/api/failures");
    for (const f of data.failures) {
      list.append(el("li", {},
        el("strong", { textContent: f.uri || "(unknown object)" }),
        el("br"),
        f.reason + (f.detail ? ": " + f.detail : "") + " — " + f.where + (f.at ? ", " + f.at : "")));
    }
    $("failures-note").textContent = data.failures.length === 0 ? "No failed images."
      : data.failures.length + " failed image(s)" + (data.truncated ? " (the first ones only)" : "");
  } catch (e) {
    $("failures-note").textContent = e.message;
  }
}

export function setupStatus(seconds) {
  pollSeconds = Number(seconds) > 0 ? Number(seconds) : 60;
  $("status-list").addEventListener("click", (ev) => {
    if (ev.target.closest(".failures-link")) showFailures(ev);
  });
  $("failures-close").addEventListener("click", () => $("failures").close());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") return;
    if (Date.now() - lastFetch >= pollSeconds * 1000) refreshStatus().finally(schedule);
    else schedule();
  });
  if (document.visibilityState === "visible") refreshStatus().finally(schedule);
}
