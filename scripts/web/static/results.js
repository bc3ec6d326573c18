// The result grid: strong matches in #results, weak ones apart behind a toggle.
"use strict";

import { $, el, fmtBytes } from "./api.js";

function card(hit, index, handlers) {
  const img = el("img", { className: "thumb", alt: hit.key || hit.vector_key, loading: "lazy" });
  if (hit.thumbnail) img.src = hit.thumbnail; // the small image: originals only open in the viewer
  const copies = hit.copies && hit.copies.length
    ? el("span", { className: "copies", textContent: "+" + hit.copies.length + (hit.copies.length === 1 ? " copy" : " copies"),
                   title: hit.copies.join("\n") })
    : null;
  const distance = el("span", { className: "distance",
    textContent: hit.distance === null || hit.distance === undefined ? "" : "distance " + hit.distance.toFixed(4) }, copies);
  const path = el("span", { className: "path", textContent: hit.uri || hit.vector_key });
  const meta = el("span", { className: "meta",
    textContent: [hit.dimensions, fmtBytes(hit.size), hit.format].filter(Boolean).join(" · ") });
  const open = el("button", { type: "button", className: "open" }, img,
    el("span", { className: "caption" }, distance, path, meta));
  open.addEventListener("click", () => handlers.open(index));
  const like = el("button", { type: "button", className: "like secondary", textContent: "More like this",
                              disabled: !hit.uri });
  like.setAttribute("aria-label", "More like this: " + (hit.key || hit.vector_key));
  like.addEventListener("click", () => handlers.like(hit));
  const li = el("li", { className: "result" + (hit.weak ? " is-weak" : "") }, open, like);
  li.dataset.uri = hit.uri || "";
  li.dataset.index = String(index);
  return li;
}

// Draws ``hits`` (strong and weak, in rank order); keeps keyboard focus on the same result.
export function render(hits, handlers) {
  const focused = document.activeElement && document.activeElement.closest(".result");
  const focusedIndex = focused ? focused.dataset.index : null;
  const focusedClass = document.activeElement ? document.activeElement.className : "";
  const strong = $("results"), weak = $("weak-results");
  strong.replaceChildren();
  weak.replaceChildren();
  hits.forEach((hit, i) => (hit.weak ? weak : strong).append(card(hit, i, handlers)));
  const weakCount = weak.children.length;
  $("weak").hidden = weakCount === 0;
  $("no-good").hidden = !(hits.length > 0 && strong.children.length === 0);
  setWeakOpen(!weak.hidden && weakCount > 0);
  $("distance-help").hidden = hits.length === 0;
  if (focusedIndex !== null) {
    const li = document.querySelector(`.result[data-index="${focusedIndex}"]`);
    const target = li && (focusedClass.includes("like") ? li.querySelector(".like") : li.querySelector(".open"));
    if (target) target.focus();
  }
}

export function clear() {
  render([], { open() {}, like() {} });
}

function setWeakOpen(open) {
  const weak = $("weak-results"), toggle = $("weak-toggle");
  const n = weak.children.length;
  weak.hidden = !open;
  toggle.setAttribute("aria-expanded", String(open));
  toggle.textContent = (open ? "Hide " : "Show ") + n + " weak match" + (n === 1 ? "" : "es");
}

export function resultButton(index) {
  const li = document.querySelector(`.result[data-index="${index}"]`);
  return li ? li.querySelector(".open") : null;
}

// Arrow keys move between result cards: left/right one card, up/down one row.
function onGridKey(ev) {
  const keys = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: "up", ArrowDown: "down" };
  if (!(ev.key in keys) || !ev.target.closest(".result")) return;
  const grid = ev.currentTarget;
  const buttons = [...grid.querySelectorAll(".result .open")];
  const here = buttons.indexOf(ev.target.closest(".result").querySelector(".open"));
  const columns = getComputedStyle(grid).gridTemplateColumns.split(" ").filter(Boolean).length || 1;
  let step = keys[ev.key];
  if (step === "up") step = -columns;
  if (step === "down") step = columns;
  const next = buttons[here + step];
  if (next) { ev.preventDefault(); next.focus(); }
}

export function setupResults() {
  $("results").addEventListener("keydown", onGridKey);
  $("weak-results").addEventListener("keydown", onGridKey);
  $("weak-toggle").addEventListener("click", () => setWeakOpen($("weak-results").hidden));
}
