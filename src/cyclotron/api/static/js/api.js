// The native /api, as the dashboard calls it: the user's API key, errors, progress streams.

import {saveBlob} from "./dom.js";

const KEY = "cyclotron.apiKey";
const TERMINAL_EVENTS = ["completed", "failed", "cancelled"];

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : describe(detail));
    this.status = status;
    this.detail = detail;
  }
}

/** FastAPI's 422 list as "ntasks: must be ...; ...". */
function describe(detail) {
  if (Array.isArray(detail)) {
    return detail.map((p) => `${(p.loc || []).slice(1).join(".") || "body"}: ${p.msg}`).join("; ");
  }
  return JSON.stringify(detail);
}

export function apiKey() {
  return sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || "";
}

export function setApiKey(key, remember) {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
  if (key) (remember ? localStorage : sessionStorage).setItem(KEY, key);
}

function authHeaders() {
  const key = apiKey();
  return key ? {Authorization: `Bearer ${key}`} : {};
}

let onUnauthorized = () => {};
/** What to do when the server refuses the key (show the sign-in page). */
export function whenUnauthorized(handler) { onUnauthorized = handler; }

/** Query parameters without the empty ones. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== null && value !== undefined && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** One request; resolves to the answer's JSON (or the Response with `raw`). */
export async function request(method, path, {params, json, headers, raw, quiet} = {}) {
  const init = {method, headers: {...authHeaders(), ...(headers || {})}};
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(`/api${path}${query(params)}`, init);
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail ?? detail; } catch { /* not JSON */ }
    if (response.status === 401 && !quiet) onUnauthorized();
    throw new ApiError(response.status, detail);
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

export const get = (path, options) => request("GET", path, options);
export const post = (path, json, options) => request("POST", path, {...options, json});

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, "0")).join("");
}

/** POST /api/jobs with one Idempotency-Key, sent again if the connection fails. */
export async function submit(body) {
  const headers = {"Idempotency-Key": newKey()};
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await post("/jobs", body, {headers});
    } catch (error) {
      // fetch rejects with a TypeError when no answer came: the same key makes a retry safe.
      if (!(error instanceof TypeError) || attempt >= 2) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt));
    }
  }
}

/** Fetch a file of the API with the key and hand it to the browser as a download. */
export async function download(path, filename) {
  const response = await request("GET", path, {raw: true});
  saveBlob(await response.blob(), filename);
}

/**
 * Follow a job's progress over server-sent events (GET /api/jobs/{id}/events).
 * `fromStart` replays the stored log from the first event (for the timeline); otherwise a
 * snapshot comes first. Returns a function that stops it; it stops by itself after the
 * job's terminal event.
 */
export function follow(jobId, onEvent, {fromStart = false, onError} = {}) {
  const params = {token: apiKey() || null, last_event_id: fromStart ? 0 : null};
  const source = new EventSource(`/api/jobs/${encodeURIComponent(jobId)}/events${query(params)}`);
  const seen = new Set();
  const handle = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch { return; }
    if (event.seq !== undefined && event.type !== "snapshot") {
      if (seen.has(event.seq)) return;
      seen.add(event.seq);
    }
    onEvent(event);
    if (TERMINAL_EVENTS.includes(event.type)) source.close();
  };
  for (const type of ["snapshot", "stage_change", "progress", "task_state", ...TERMINAL_EVENTS]) {
    source.addEventListener(type, handle);
  }
  source.onmessage = handle;
  source.onerror = () => {
    // EventSource reconnects by itself; once closed (an HTTP error), say so.
    if (source.readyState === EventSource.CLOSED && onError) onError();
  };
  return () => source.close();
}

const loaded = new Map();
/** A script of this server (the front-end packages in vendor/), loaded once. */
export function loadScript(url) {
  if (!loaded.has(url)) {
    loaded.set(url, new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = url;
      script.onload = resolve;
      script.onerror = () => {
        loaded.delete(url);
        reject(new Error(`${url} is not installed on this server (scripts/dashboard-assets)`));
      };
      document.head.append(script);
    }));
  }
  return loaded.get(url);
}

export const loadPlotly = () => loadScript("vendor/plotly-cartesian.min.js").then(() => window.Plotly);
export const load3Dmol = () => loadScript("vendor/3Dmol-min.js").then(() => window.$3Dmol);

let servicesCache = null;
/** GET /api/services, once per page load. */
export function services() {
  if (!servicesCache) {
    servicesCache = get("/services").then((body) => body.services).catch((error) => {
      servicesCache = null;
      throw error;
    });
  }
  return servicesCache;
}
export function forgetServices() { servicesCache = null; }
