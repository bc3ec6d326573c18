// The filter fields, their API parameters, the page's URL state and the folder completion.
"use strict";

import { $, api, el } from "./api.js";

export const FILTER_FIELDS = ["folder", "format", "min_kb", "max_kb", "since", "until"];
// The folder box means "this folder and everything below": the API's and the CLI's prefix=
// (their folder= is one exact folder), so the address says prefix= too.
const URL_NAMES = { folder: "prefix" };
const urlName = (field) => URL_NAMES[field] || field;
const URL_FIELDS = ["text", "like", "k", ...FILTER_FIELDS.map(urlName), "open"];

// The API parameters for the filter fields, or a message saying which field to fix.
export function filterParams() {
  const p = new URLSearchParams();
  const folder = $("folder").value.trim();
  if (folder) p.set("prefix", folder);
  if ($("format").value) p.set("format", $("format").value);
  for (const [field, param, name] of [["min_kb", "min_bytes", "Min size"], ["max_kb", "max_bytes", "Max size"]]) {
    const raw = $(field).value.trim();
    if (!raw) continue;
    const kb = Number(raw);
    if (!Number.isFinite(kb) || kb < 0) return { error: name + " " + JSON.stringify(raw) + ": use a number of KB, 0 or more" };
    p.set(param, String(Math.round(kb * 1024)));
  }
  const min = p.get("min_bytes"), max = p.get("max_bytes");
  if (min !== null && max !== null && Number(min) > Number(max)) return { error: "Min size is above Max size: swap them or clear one" };
  for (const field of ["since", "until"]) if ($(field).value) p.set(field, $(field).value);
  if ($("since").value && $("until").value && $("since").value > $("until").value) {
    return { error: "Changed since is after Changed until: swap the dates or clear one" };
  }
  return { params: p };
}

// The page's address for ``query`` (text or like; an uploaded image cannot be in a URL).
export function urlFor(query, k, openUri) {
  const p = new URLSearchParams();
  if (query && query.kind === "text") p.set("text", query.text);
  if (query && query.kind === "like") p.set("like", query.uri);
  if (query) p.set("k", String(k));
  for (const field of FILTER_FIELDS) {
    const v = $(field).value.trim();
    if (v) p.set(urlName(field), v);
  }
  if (openUri) p.set("open", openUri);
  const s = p.toString();
  return location.pathname + (s ? "?" + s : "");
}

// Fills the fields from the address; answers what it asks for (query, open).
export function readUrl() {
  const p = new URLSearchParams(location.search);
  $("text").value = p.get("text") || "";
  if (p.get("k")) $("k").value = p.get("k");
  for (const field of FILTER_FIELDS) {
    const v = p.get(urlName(field)) || "";
    if (field === "format" && v && ![...$("format").options].some((o) => o.value === v)) {
      $("format").append(el("option", { value: v, textContent: v }));
    }
    $(field).value = v;
  }
  let query = null;
  if (p.get("text")) query = { kind: "text", text: p.get("text") };
  else if (p.get("like")) query = { kind: "like", uri: p.get("like") };
  return { query, open: p.get("open"), known: URL_FIELDS };
}

// "s3://bucket/trips/20" or "/trips/20" -> "trips/": the folder whose subfolders complete it.
export function parentFolder(typed) {
  let t = typed.trim();
  if (t.startsWith("s3://")) t = t.slice(5).replace(/^[^/]*\/?/, "");
  t = t.replace(/^\/+/, "");
  const cut = t.lastIndexOf("/");
  return cut < 0 ? "" : t.slice(0, cut + 1);
}

let listed = null;
let timer = null;

async function complete() {
  const under = parentFolder($("folder").value);
  if (under === listed) return;
  listed = under;
  try {
    const data = await api("/api/folders?" + new URLSearchParams({ under }));
    if (listed !== under) return;
    $("folder-list").replaceChildren(...data.folders.map((f) => el("option", { value: f })));
  } catch (e) {
    listed = null; // completion is a convenience: the typed folder still filters
  }
}

export function setupFilters(info) {
  const select = $("format");
  for (const f of info.image_formats || []) {
    if (![...select.options].some((o) => o.value === f)) select.append(el("option", { value: f, textContent: f }));
  }
  $("folder").addEventListener("focus", complete);
  $("folder").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(complete, 200); });
}
