// #/ops: the server as GET /api/system/status and GET /api/services show it: services with
// their availability, queues, executors, workers seen, the task sandbox; links to the
// metrics and the API's documentation.

import {get, services} from "./api.js";
import {fill, h, when} from "./dom.js";

const REFRESH_MS = 10000;

function table(label, columns, rows) {
  return h("div", {class: "table-wrap"}, h("table", {"aria-label": label},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {scope: "col"}, c)))),
    h("tbody", {}, rows.length ? rows.map((r) => h("tr", {}, r.map((v) => h("td", {}, v ?? ""))))
      : h("tr", {}, h("td", {colspan: String(columns.length), class: "muted"}, "None")))));
}

const yes = (flag) => (flag ? "yes" : "no");

export async function renderOps(main) {
  const body = h("div");
  const refreshed = h("p", {class: "muted", role: "status"});
  fill(main, h("h1", {}, "Operations"),
    h("p", {}, "What this server runs, and how busy it is. For administrators: ",
      h("a", {href: "/metrics"}, "Prometheus metrics"), " · ",
      h("a", {href: "/swagger-ui/"}, "API documentation (Swagger UI)")),
    refreshed, body);
  let timer = null;
  let stopped = false;

  async function refresh() {
    const [status, list] = await Promise.all([get("/system/status"), services()]);
    if (stopped) return;
    const sandbox = status.sandbox || {};
    const byService = status.queue?.by_service || {};
    fill(body,
      h("section", {class: "card", "aria-labelledby": "server-title"},
        h("h2", {id: "server-title"}, "Server"),
        h("dl", {class: "facts"}, [
          ["Version", `${status.version} (API ${status.api_version})`],
          ["Started", when(status.started_at)],
          ["Database", `${status.database?.kind} (${status.database?.ok ? "reachable" : "NOT reachable"})`],
          ["Authentication", status.auth_enabled ? "on (API keys)" : "off"],
          ["Task sandbox", `${sandbox.mode ?? "unknown"}${sandbox.reason ? ` — ${sandbox.reason}` : ""}`],
          ["Jobs pending", status.queue?.pending], ["Jobs running", status.queue?.running],
          ["Tasks running", status.running_tasks],
        ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v ?? ""))]))),
      h("section", {class: "card", "aria-labelledby": "services-title"},
        h("h2", {id: "services-title"}, "Services"),
        table("Services", ["Service", "Plug-in", "Version", "Executor", "Available", "Reason",
          "Pending", "Running", "Max runs", "Max queued", "Max tasks"],
        list.map((s) => [s.name, s.plugin + (s.stands_in_for ? ` (for ${s.stands_in_for})` : ""),
          s.version, s.executor, yes(s.available), s.reason,
          String(byService[s.name]?.pending ?? 0), String(byService[s.name]?.running ?? 0),
          String(s.limits?.max_runs ?? ""), String(s.limits?.max_queued ?? ""),
          String(s.limits?.max_ntasks ?? "")]))),
      h("section", {class: "card", "aria-labelledby": "executors-title"},
        h("h2", {id: "executors-title"}, "Executors"),
        table("Executors", ["Executor", "Available", "Slots", "Busy"],
          (status.executors || []).map((e) => [e.name, yes(e.available), String(e.slots ?? ""),
            String(e.busy ?? "")]))),
      h("section", {class: "card", "aria-labelledby": "workers-title"},
        h("h2", {id: "workers-title"}, "Workers seen (last 10 minutes)"),
        table("Workers", ["Worker", "Executor", "Last seen", "Running tasks"],
          (status.workers || []).map((w) => [w.id, w.executor, when(w.last_seen),
            String(w.running_tasks)]))));
    refreshed.textContent = `Updated ${new Date().toLocaleTimeString()}.`;
    timer = setTimeout(() => refresh().catch(() => {}), REFRESH_MS);
  }

  await refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
