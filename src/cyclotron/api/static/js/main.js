// The dashboard's shell: sign-in, navigation between pages (#/jobs, #/submit, #/jobs/<id>,
// #/ops), and each page's clean-up (its progress streams and timers) when it is left.

import {ApiError, forgetServices, get, setApiKey, whenUnauthorized} from "./api.js";
import {fill, h, notify} from "./dom.js";
import {renderJob} from "./job.js";
import {renderJobs} from "./jobs.js";
import {renderOps} from "./ops.js";
import {renderSubmit} from "./submit.js";

const main = document.getElementById("main");
let leave = () => {};
let server = null; // GET /api/system/status, once signed in

const ROUTES = [
  [/^#\/jobs\/([0-9a-f]{32}|\d+)$/, (match) => ["jobs", (el, q) => renderJob(el, match[1], q)]],
  [/^#\/jobs$/, () => ["jobs", renderJobs]],
  [/^#\/submit$/, () => ["submit", renderSubmit]],
  [/^#\/ops$/, () => ["ops", renderOps]],
];

function parse(hash) {
  const [path, search] = (hash || "#/jobs").split("?");
  return {path, params: new URLSearchParams(search || "")};
}

async function route() {
  leave();
  leave = () => {};
  const {path, params} = parse(location.hash);
  if (path === "#/login" || (server === null && !(await signedIn()))) {
    showLogin();
    return;
  }
  const found = ROUTES.map(([pattern, make]) => [path.match(pattern), make]).find(([m]) => m);
  if (!found) {
    location.replace("#/jobs");
    return;
  }
  const [name, render] = found[1](found[0]);
  markNav(name);
  fill(main);
  try {
    leave = (await render(main, params, server)) || (() => {});
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    fill(main, h("h1", {}, "Something went wrong"), h("p", {class: "card"}, error.message));
  }
  main.focus({preventScroll: true});
}

function markNav(name) {
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.route === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/** Whether the server takes our key (or needs none); fills in who is signed in. */
async function signedIn() {
  try {
    server = await get("/system/status", {quiet: true});
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return false;
    throw error;
  }
  document.getElementById("signout").hidden = !server.auth_enabled;
  document.getElementById("who").textContent = server.auth_enabled
    ? "Signed in with an API key" : "Authentication is off";
  return true;
}

function showLogin(message) {
  markNav("");
  const key = h("input", {id: "api-key", type: "password", autocomplete: "current-password",
    required: true, spellcheck: "false", "aria-describedby": "api-key-hint"});
  const remember = h("input", {id: "remember", type: "checkbox"});
  const error = h("p", {class: "error", role: "alert"});
  const form = h("form", {class: "card login", "aria-labelledby": "login-title"},
    h("h1", {id: "login-title"}, "Sign in"),
    h("div", {class: "field"},
      h("label", {for: "api-key"}, "API key"), key,
      h("p", {class: "hint", id: "api-key-hint"},
        "A key from your administrator (cyclotron keys create). A YAPTIDE account's key is made ",
        "with cyclotron keys create --account <username>.")),
    h("div", {class: "field"}, h("label", {class: "inline", for: "remember"}, remember,
      "Remember on this device")),
    error,
    h("div", {class: "actions"}, h("button", {type: "submit"}, "Sign in")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setApiKey(key.value.trim(), remember.checked);
    server = null;
    forgetServices();
    if (await signedIn()) {
      const target = location.hash.startsWith("#/jobs") ? location.hash : "#/jobs";
      if (location.hash === target) route();
      else location.hash = target;
    } else {
      error.textContent = "The server does not know this key.";
      key.focus();
    }
  });
  fill(main, form);
  if (message) error.textContent = message;
  key.focus();
}

whenUnauthorized(() => {
  server = null;
  setApiKey("");
  leave();
  leave = () => {};
  showLogin("Your key was refused; sign in again.");
});

document.getElementById("signout").addEventListener("click", () => {
  setApiKey("");
  server = null;
  forgetServices();
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  location.hash = "#/login";
});

window.addEventListener("hashchange", route);
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason instanceof ApiError && event.reason.status === 401) return;
  notify(event.reason?.message || String(event.reason), "error");
});
route();
