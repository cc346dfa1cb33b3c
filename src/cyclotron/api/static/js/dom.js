// Small helpers to build the pages: elements, formatting, the confirmation dialog, notices.

/** An element: h("a", {href: "#/jobs", class: "x", onclick: f}, "text", child, [more]). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (["value", "checked", "disabled", "hidden", "selected"].includes(key)) {
      el[key] = value;
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const STATUS_WORDS = {
  pending: "Pending", running: "Running", completed: "Completed",
  failed: "Failed", cancelled: "Cancelled",
};
export const ACTIVE = new Set(["pending", "running"]);
export const TERMINAL = new Set(["completed", "failed", "cancelled"]);

export function statusWord(status) {
  return STATUS_WORDS[status] || status;
}

export function statusBadge(status) {
  return h("span", {class: `status status-${status}`, "data-status": status}, statusWord(status));
}

/** A labelled progress bar: <progress> with its value as text beside it. */
export function progressBar(percent, label) {
  const bar = h("progress", {max: "100", "aria-label": label});
  const text = h("span");
  const box = h("div", {class: "progress"}, bar, text);
  setProgress(box, percent);
  return box;
}

export function setProgress(box, percent) {
  const value = Math.max(0, Math.min(100, Number(percent) || 0));
  const bar = box.querySelector("progress");
  bar.value = value;
  bar.setAttribute("value", value.toFixed(1));
  box.querySelector("span").textContent = `${value.toFixed(1)} %`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function when(text) {
  if (!text) return "";
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? text : date.toLocaleString();
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.round(Number(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function number(value, digits = 3) {
  if (value === null || value === undefined || value === "") return "";
  const x = Number(value);
  return Number.isInteger(x) ? x.toLocaleString() : x.toPrecision(digits);
}

/** Ask before something that cannot be undone; resolves true when confirmed. */
export function confirmAction(title, text, action) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = action;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), {once: true});
    dialog.returnValue = "";
    dialog.showModal();
  });
}

/** A message above the page; errors stay until the next one. */
export function notify(message, kind = "info") {
  const box = document.getElementById("notice");
  fill(box, message ? h("p", {class: kind === "error" ? "error" : ""}, message) : null);
  if (message && kind !== "error") {
    setTimeout(() => { if (box.textContent === message) fill(box); }, 6000);
  }
}

/** Save bytes the page holds (a Blob) as a file the browser downloads. */
export function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h("a", {href: url, download: filename, hidden: true});
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30000);
}

/** Call fn at most once per `ms`, with the last arguments. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
