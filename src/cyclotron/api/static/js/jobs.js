// #/jobs: the caller's jobs (an admin's: everyone's), filtered and paged as GET /api/jobs
// allows; the rows of active jobs follow their progress streams, the page refreshes itself.

import {ApiError, follow, get, request, services} from "./api.js";
import {
  ACTIVE, TERMINAL, confirmAction, debounce, fill, h, notify, progressBar, setProgress,
  statusBadge, when,
} from "./dom.js";

const PAGE_SIZE = 20;
// Browsers open at most six connections to one server over HTTP/1.1: streams for a few
// active rows, the periodic refresh for the others.
const MAX_STREAMS = 4;
const REFRESH_MS = 5000;
const STATUSES = ["pending", "running", "completed", "failed", "cancelled"];

export async function renderJobs(main, params) {
  const filters = {
    status: params.get("status") || "",
    service: params.get("service") || "",
    search: params.get("search") || "",
    page: Math.max(1, Number(params.get("page")) || 1),
  };
  const streams = new Map(); // job id -> stop()
  const rows = new Map(); // job id -> row element
  let timer = null;
  let stopped = false;
  let drawn = false;

  const status = h("select", {id: "filter-status"},
    h("option", {value: ""}, "Any status"),
    STATUSES.map((s) => h("option", {value: s, selected: s === filters.status}, s)));
  const service = h("select", {id: "filter-service"}, h("option", {value: ""}, "Any service"));
  const search = h("input", {id: "filter-search", type: "search", value: filters.search,
    placeholder: "Part of the name"});
  const body = h("tbody");
  const summary = h("p", {class: "muted", role: "status", "aria-live": "polite"});
  const previous = h("button", {type: "button", class: "secondary"}, "Previous page");
  const next = h("button", {type: "button", class: "secondary"}, "Next page");

  fill(main,
    h("h1", {}, "Jobs"),
    h("form", {class: "card row bottom", role: "search", "aria-label": "Filter jobs",
      onsubmit: (e) => e.preventDefault()},
    h("div", {class: "field"}, h("label", {for: "filter-status"}, "Status"), status),
    h("div", {class: "field"}, h("label", {for: "filter-service"}, "Service"), service),
    h("div", {class: "field"}, h("label", {for: "filter-search"}, "Search names"), search),
    h("div", {class: "field"}, h("a", {class: "button", href: "#/submit"}, "Submit a job"))),
    h("div", {class: "table-wrap"},
      h("table", {class: "jobs", "aria-label": "Jobs"},
        h("thead", {}, h("tr", {},
          h("th", {class: "num", scope: "col"}, "#"), h("th", {scope: "col"}, "Name"),
          h("th", {scope: "col"}, "Service"), h("th", {scope: "col"}, "Status"),
          h("th", {scope: "col"}, "Progress"), h("th", {scope: "col"}, "Created"),
          h("th", {scope: "col"}, h("span", {class: "muted"}, "Actions")))),
        body)),
    h("div", {class: "pager"}, summary, previous, next));

  services().then((list) => {
    for (const s of list) {
      service.append(h("option", {value: s.name, selected: s.name === filters.service}, s.name));
    }
  }).catch(() => {});

  const go = (changes) => {
    const wanted = {...filters, ...changes};
    const q = new URLSearchParams();
    for (const key of ["status", "service", "search"]) if (wanted[key]) q.set(key, wanted[key]);
    if (wanted.page > 1) q.set("page", wanted.page);
    const text = q.toString();
    location.hash = text ? `#/jobs?${text}` : "#/jobs";
  };
  status.addEventListener("change", () => go({status: status.value, page: 1}));
  service.addEventListener("change", () => go({service: service.value, page: 1}));
  const searched = debounce(() => go({search: search.value.trim(), page: 1}), 400);
  search.addEventListener("input", searched);
  previous.addEventListener("click", () => go({page: filters.page - 1}));
  next.addEventListener("click", () => go({page: filters.page + 1}));
  if (filters.search) {
    search.focus();
    search.setSelectionRange(search.value.length, search.value.length);
  }

  function row(job) {
    const bar = progressBar(job.percent, `Progress of ${job.name}`);
    const cells = {
      status: h("td", {"data-label": "Status"}, statusBadge(job.status)),
      progress: h("td", {"data-label": "Progress"}, bar),
      actions: h("td", {"data-label": "Actions"}),
    };
    const tr = h("tr", {"data-job": job.id},
      h("td", {class: "num", "data-label": "#"}, String(job.number)),
      h("td", {"data-label": "Name"}, h("a", {href: `#/jobs/${job.id}`}, job.name)),
      h("td", {"data-label": "Service"}, job.service),
      cells.status, cells.progress,
      h("td", {"data-label": "Created"}, when(job.created_at)),
      cells.actions);
    tr.cells_ = cells;
    update(tr, job);
    return tr;
  }

  function update(tr, job) {
    const {status: cell, progress, actions} = tr.cells_;
    if (cell.firstChild?.dataset.status !== job.status) fill(cell, statusBadge(job.status));
    setProgress(progress.firstChild, job.percent);
    const kind = ACTIVE.has(job.status) ? "cancel" : "delete";
    if (actions.dataset.kind !== kind) {
      actions.dataset.kind = kind;
      const [word, act] = kind === "cancel" ? ["Cancel", cancel] : ["Delete", remove];
      fill(actions, h("button", {type: "button", class: "secondary small",
        "aria-label": `${word} job ${job.number} ${job.name}`, onclick: () => act(job)}, word));
    }
  }

  async function cancel(job) {
    if (!(await confirmAction("Cancel this job?",
      `Job ${job.number} (${job.name}) will be stopped; finished tasks keep their files.`,
      "Cancel job"))) return;
    try {
      const answer = await request("POST", `/jobs/${job.id}/cancel`);
      notify(`Job ${job.number} ${answer.status}.`);
    } catch (error) {
      notify(error.message, "error");
    }
    refresh();
  }

  async function remove(job) {
    if (!(await confirmAction("Delete this job?",
      `Job ${job.number} (${job.name}), its events and all its files will be removed.`,
      "Delete job"))) return;
    try {
      await request("DELETE", `/jobs/${job.id}`);
      notify(`Job ${job.number} deleted.`);
    } catch (error) {
      notify(error.message, "error");
    }
    refresh();
  }

  function watch(job) {
    if (streams.has(job.id) || streams.size >= MAX_STREAMS) return;
    const stop = follow(job.id, (event) => {
      const tr = rows.get(job.id);
      if (!tr) return;
      const known = tr.job_;
      if (event.percent !== undefined) known.percent = event.percent;
      if (event.type === "snapshot") known.status = event.status;
      else if (TERMINAL.has(event.type)) known.status = event.type;
      else if (event.type === "progress" || event.type === "stage_change") {
        if (known.status === "pending" && event.stage !== "queued") known.status = "running";
      }
      update(tr, known);
      if (TERMINAL.has(event.type)) {
        streams.get(job.id)?.();
        streams.delete(job.id);
      }
    });
    streams.set(job.id, stop);
  }

  async function refresh() {
    clearTimeout(timer);
    if (stopped) return;
    let page;
    try {
      page = await get("/jobs", {params: {
        status: filters.status, service: filters.service, search: filters.search,
        page: filters.page, page_size: PAGE_SIZE,
      }});
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) notify(error.message, "error");
      if (!stopped) timer = setTimeout(refresh, REFRESH_MS * 2);
      return;
    }
    if (stopped) return;
    const ids = page.jobs.map((j) => j.id);
    const same = drawn && ids.length === rows.size && ids.every((id) => rows.has(id));
    drawn = true;
    if (!same) {
      for (const stop of streams.values()) stop();
      streams.clear();
      rows.clear();
      fill(body, page.jobs.length ? null : h("tr", {}, h("td", {colspan: "7", class: "muted"},
        filters.status || filters.service || filters.search
          ? "No job matches these filters." : "No jobs yet.")));
    }
    for (const job of page.jobs) {
      let tr = rows.get(job.id);
      if (!tr) {
        tr = row(job);
        rows.set(job.id, tr);
        body.append(tr);
      } else if (!streams.has(job.id)) {
        update(tr, job);
      }
      tr.job_ = tr.job_ && streams.has(job.id) ? tr.job_ : {...job};
      if (ACTIVE.has(job.status)) watch(job);
    }
    const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
    summary.textContent = `${page.total} job${page.total === 1 ? "" : "s"}; page ${filters.page} of ${pages}`;
    previous.disabled = filters.page <= 1;
    next.disabled = filters.page >= pages;
    timer = setTimeout(refresh, REFRESH_MS);
  }

  await refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
    for (const stop of streams.values()) stop();
  };
}
