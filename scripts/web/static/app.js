// The search page: one query at a time (a newer one aborts the older: no stale grid), text,
// image (upload, drop, paste) or "more like this", with filters, paging and URL state.
"use strict";

import { $, api, el } from "./api.js";
import { filterParams, readUrl, setupFilters, urlFor } from "./filters.js";
import { clear, render, resultButton, setupResults } from "./results.js";
import { setupStatus } from "./status.js";
import { closeViewer, openViewer, setupViewer } from "./viewer.js";

const state = {
  info: { default_k: 5, max_k: 100, status_poll_seconds: 60 },
  query: null, // {kind: "text", text} | {kind: "image", file, id, name} | {kind: "like", uri, name}
  hits: [],
  k: 5,
  seq: 0, // every request's number: only the latest one's answer is drawn
  controller: null,
  inflight: null, // the running request's identity (kind, query, params)
  shown: null, // the drawn answer's identity
  selected: null,
};
let imageIds = 0;

function say(text, kind = "") {
  const m = $("message");
  m.textContent = text;
  m.className = kind;
}

function setBusy(busy) {
  $("search-btn").disabled = false; // a new query may always replace the running one
  $("cancel-btn").hidden = !busy;
  $("search").setAttribute("aria-busy", String(busy));
}

function showChip(query) {
  const chip = $("chip");
  if (!query || query.kind === "text") { chip.hidden = true; return; }
  chip.hidden = false;
  const img = $("chip-img");
  if (query.kind === "image") {
    img.src = query.preview;
    $("chip-name").textContent = query.name;
  } else {
    if (query.thumbnail) img.src = query.thumbnail; else img.removeAttribute("src");
    $("chip-name").textContent = "like " + query.uri;
  }
  img.alt = "Query image " + query.name;
}

function readK() {
  const raw = $("k").value.trim();
  const k = Number(raw);
  if (!/^\d+$/.test(raw) || k < 1 || k > state.info.max_k) {
    return { error: "Results " + JSON.stringify(raw) + ": use a whole number from 1 to " + state.info.max_k };
  }
  return { k };
}

function clearResults() {
  state.hits = [];
  state.shown = null;
  clear();
  $("more").hidden = true;
}

function cancel() {
  if (state.controller) state.controller.abort();
  state.controller = null;
  state.inflight = null;
  state.seq += 1;
  setBusy(false);
}

function identity(query, params) {
  const what = query.kind === "text" ? query.text : query.kind === "image" ? query.id : query.uri;
  return query.kind + "|" + what + "|" + params.toString();
}

function request(query, params, signal) {
  if (query.kind === "text") {
    params.set("text", query.text);
    return api("/api/search?" + params, { signal });
  }
  if (query.kind === "like") {
    params.set("uri", query.uri);
    return api("/api/search/like?" + params, { signal });
  }
  params.set("name", query.name);
  return api("/api/search/image?" + params, {
    method: "POST", body: query.file, signal,
    headers: { "Content-Type": query.file.type || "application/octet-stream" },
  });
}

function summary(hits, k) {
  const strong = hits.filter((h) => !h.weak).length;
  const weak = hits.length - strong;
  if (hits.length === 0) return "No images match the filters.";
  const parts = [strong + " result" + (strong === 1 ? "" : "s")];
  if (weak) parts.push(weak + " weak match" + (weak === 1 ? "" : "es"));
  let text = parts.join(", ");
  if (state.query.kind === "image") text += " (an uploaded image can't be kept in the page's address)";
  return text;
}

// Runs ``state.query`` (reading k and the filters now); ``history``: "push", "replace" or null.
async function run({ history = "push", append = false, force = true } = {}) {
  const query = state.query;
  const kr = readK();
  const fr = filterParams();
  const problem = kr.error || fr.error;
  if (problem) { cancel(); clearResults(); say(problem, "error"); return; }
  if (!query) {
    cancel();
    clearResults();
    say("Type something to search for, or drop, paste or choose an image.");
    if (history) writeUrl(history);
    return;
  }
  const params = fr.params;
  params.set("k", String(kr.k));
  params.set("group", "1");
  const id = identity(query, params);
  if (id === state.inflight || (!force && id === state.shown)) return;
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  const seq = ++state.seq;
  state.controller = controller;
  state.inflight = id;
  setBusy(true);
  say(append ? "loading more…" : "searching…", "busy");
  try {
    const data = await request(query, params, controller.signal);
    if (seq !== state.seq) return; // a newer query owns the grid
    state.k = kr.k;
    state.hits = data.results;
    state.shown = id;
    render(state.hits, handlers);
    say(summary(state.hits, kr.k));
    const found = state.hits.length + state.hits.reduce((n, h) => n + (h.copies || []).length, 0);
    $("more").hidden = !(found >= kr.k && kr.k < state.info.max_k);
    if (history) writeUrl(history);
  } catch (e) {
    if (e.name === "AbortError" || seq !== state.seq) return;
    clearResults();
    say(e.message, "error");
  } finally {
    if (seq === state.seq) { state.inflight = null; state.controller = null; setBusy(false); }
  }
}

function writeUrl(how) {
  const url = urlFor(state.query, state.k, state.selected);
  if (url === location.pathname + location.search) return;
  if (how === "push") history.pushState(null, "", url); else history.replaceState(null, "", url);
}

function submit(force) {
  const text = $("text").value.trim();
  if (text) state.query = { kind: "text", text };
  else if (state.query && state.query.kind === "text") state.query = null;
  showChip(state.query);
  return run({ force });
}

function searchImage(file) {
  if (!file) return;
  if (state.query && state.query.preview) URL.revokeObjectURL(state.query.preview);
  state.query = { kind: "image", file, id: ++imageIds, name: file.name || "pasted image",
                  preview: URL.createObjectURL(file) };
  $("text").value = "";
  showChip(state.query);
  run();
}

function searchLike(hit) {
  state.query = { kind: "like", uri: hit.uri, name: hit.key || hit.uri, thumbnail: hit.thumbnail };
  $("text").value = "";
  closeViewer();
  showChip(state.query);
  run();
}

const handlers = {
  open(index) { openViewer(state.hits, index); },
  like: searchLike,
};

function imageFile(list) {
  return [...(list || [])].find((f) => f.type.startsWith("image/") || /\.(jpe?g|png|gif|webp)$/i.test(f.name))
    || (list && list[0]) || null;
}

function setupInputs() {
  $("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); submit(true); });
  // Cancelled: the grid would no longer match the box, so it empties (as for an empty box).
  $("cancel-btn").addEventListener("click", () => { cancel(); clearResults(); say("Search cancelled."); $("text").focus(); });
  for (const id of ["k", "folder", "format", "min_kb", "max_kb", "since", "until"]) {
    $(id).addEventListener("change", () => { if (state.query) submit(false); });
  }
  const file = $("file");
  $("pick").addEventListener("click", () => file.click());
  $("drop").addEventListener("keydown", (ev) => {
    if (ev.target === $("drop") && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); file.click(); }
  });
  file.addEventListener("change", () => {
    const f = file.files[0];
    file.value = ""; // the same file may be chosen again
    searchImage(f);
  });
  $("chip-remove").addEventListener("click", () => {
    if (state.query && state.query.preview) URL.revokeObjectURL(state.query.preview);
    state.query = null;
    showChip(null);
    cancel();
    clearResults();
    say("");
    writeUrl("push");
    $("pick").focus();
  });
  // Drops are caught anywhere on the page, not only on the drop zone.
  document.addEventListener("dragover", (ev) => { ev.preventDefault(); document.body.classList.add("dragging"); });
  document.addEventListener("dragleave", (ev) => { if (!ev.relatedTarget) document.body.classList.remove("dragging"); });
  document.addEventListener("drop", (ev) => {
    ev.preventDefault();
    document.body.classList.remove("dragging");
    searchImage(imageFile(ev.dataTransfer && ev.dataTransfer.files));
  });
  document.addEventListener("paste", (ev) => {
    const files = ev.clipboardData ? [...ev.clipboardData.files] : [];
    const f = files.find((x) => x.type.startsWith("image/"));
    if (f) { ev.preventDefault(); searchImage(f); }
  });
  $("more").addEventListener("click", () => {
    $("k").value = String(Math.min(state.info.max_k, state.k * 2));
    run({ history: "replace", append: true });
  });
  // On a narrow screen the status panel starts folded, above the results.
  if (window.matchMedia("(max-width: 800px)").matches) {
    $("status").open = false;
    $("filters-box").open = false;
  }
  if (window.matchMedia("(pointer: coarse)").matches) {
    $("drop-text").textContent = "Choose an image, or paste one, to find similar images";
  }
}

// The address asks for a query (reload, Back, a shared link): run it, then open its result.
async function fromUrl() {
  const { query, open } = readUrl();
  if (["folder", "format", "min_kb", "max_kb", "since", "until"].some((f) => $(f).value)) $("filters-box").open = true;
  state.query = query;
  showChip(query);
  if (!query) { cancel(); clearResults(); say(""); closeViewer(); return; }
  await run({ history: null, force: true });
  const index = open ? state.hits.findIndex((h) => h.uri === open) : -1;
  if (index >= 0) openViewer(state.hits, index); else closeViewer();
}

async function main() {
  setupResults();
  setupInputs();
  setupViewer({
    like: searchLike,
    selected(uri) { state.selected = uri; if (state.shown) writeUrl("replace"); },
    focusResult(index) { const b = resultButton(index); if (b) b.focus(); },
  });
  try {
    const info = await api("/api/info");
    state.info = { ...state.info, ...info };
    $("info").textContent = "index " + info.index + " in " + info.vector_bucket + " · " + info.model_id;
    $("k").max = String(info.max_k);
    $("k").value = String(info.default_k);
    state.k = info.default_k;
    setupFilters(info);
  } catch (e) {
    $("info").textContent = e.message;
  }
  setupStatus(state.info.status_poll_seconds);
  window.addEventListener("popstate", fromUrl);
  await fromUrl();
  document.body.dataset.ready = "1";
}

main();
