// The result viewer: a modal <dialog> with the original image, its metadata and actions.
"use strict";

import { $, el, fmtBytes, fmtDate } from "./api.js";

let hits = [];
let current = -1;
let hooks = { like() {}, selected() {}, focusResult() {} };

function row(label, value) {
  if (value === null || value === undefined || value === "") return [];
  return [el("dt", { textContent: label }), el("dd", { textContent: String(value) })];
}

function show(index) {
  const hit = hits[index];
  if (!hit) return;
  current = index;
  const meta = hit.metadata || {};
  $("viewer-title").textContent = hit.key || hit.vector_key;
  const img = $("viewer-img");
  img.alt = "The image " + (hit.key || hit.vector_key);
  if (hit.original) img.src = hit.original; else img.removeAttribute("src");
  $("viewer-meta").replaceChildren(
    ...row("Path", hit.uri || hit.vector_key),
    ...row("Distance", hit.distance === null || hit.distance === undefined ? "" :
      hit.distance.toFixed(4) + (hit.weak ? " (weak match)" : "")),
    ...row("Size", hit.size === null || hit.size === undefined ? "" : fmtBytes(hit.size) + " (" + hit.size + " bytes)"),
    ...row("Dimensions", hit.dimensions),
    ...row("Format", hit.format),
    ...row("ETag", meta.etag),
    ...row("Ingested at", fmtDate(meta.ingested_at)),
    ...row("Model", meta.model_id),
    ...row("Copies", (hit.copies || []).join(", ")),
  );
  for (const id of ["viewer-open", "viewer-download"]) {
    const a = $(id);
    if (hit.original) a.href = hit.original; else a.removeAttribute("href");
  }
  $("viewer-like").disabled = !hit.uri;
  $("viewer-copy").disabled = !hit.uri;
  $("viewer-prev").disabled = index <= 0;
  $("viewer-next").disabled = index >= hits.length - 1;
  $("viewer-note").textContent = (index + 1) + " of " + hits.length;
  hooks.selected(hit.uri || null);
}

export function openViewer(list, index) {
  hits = list;
  show(index);
  const dialog = $("viewer");
  if (!dialog.open) dialog.showModal();
  $("viewer-close").focus();
}

export function closeViewer() {
  if ($("viewer").open) $("viewer").close();
}

async function copyUri() {
  const uri = hits[current] && hits[current].uri;
  if (!uri) return;
  try {
    await navigator.clipboard.writeText(uri);
  } catch (e) {
    // No clipboard permission (e.g. a plain-http address other than localhost): select and copy.
    const area = el("textarea", { value: uri });
    $("viewer").append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  $("viewer-note").textContent = "Copied " + uri;
}

export function setupViewer(given) {
  hooks = given;
  const dialog = $("viewer");
  $("viewer-prev").addEventListener("click", () => show(current - 1));
  $("viewer-next").addEventListener("click", () => show(current + 1));
  $("viewer-close").addEventListener("click", () => dialog.close());
  $("viewer-copy").addEventListener("click", copyUri);
  $("viewer-like").addEventListener("click", () => {
    const hit = hits[current];
    dialog.close();
    if (hit) hooks.like(hit);
  });
  dialog.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowLeft" && current > 0) { ev.preventDefault(); show(current - 1); }
    if (ev.key === "ArrowRight" && current < hits.length - 1) { ev.preventDefault(); show(current + 1); }
  });
  dialog.addEventListener("close", () => {
    hooks.selected(null);
    hooks.focusResult(current);
  });
}
