// The page's one way to call the server: the custom header, and errors a person can read.
"use strict";

export const $ = (id) => document.getElementById(id);

// The server answers /api calls only with this header: another site's page cannot send it
// without a CORS preflight, which the server never grants.
export async function api(url, init = {}) {
  let response;
  try {
    response = await fetch(url, { ...init, headers: { ...(init.headers || {}), "X-Imgsearch": "1" } });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new Error("Can't reach imgsearch serve at " + location.host + " — is it still running?");
  }
  let data;
  try { data = await response.json(); } catch (e) { data = null; }
  if (!response.ok || !data || data.error) {
    throw new Error((data && data.error) || "the server answered HTTP " + response.status + " without a reason");
  }
  return data;
}

export function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
}

export function fmtTime(iso) {
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleTimeString([], { hour12: false });
}

export function fmtDate(value) {
  if (value === null || value === undefined || value === "") return "";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return isNaN(d) ? String(value) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}
