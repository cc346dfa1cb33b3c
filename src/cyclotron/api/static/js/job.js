// #/jobs/<id>: one job live: its state and tasks from the progress stream, the event
// timeline, its logs tailed while it runs, its files, and its results.

import {ApiError, download, follow, get, request, services} from "./api.js";
import {
  ACTIVE, TERMINAL, bytes, confirmAction, duration, fill, h, notify, number, progressBar,
  setProgress, statusBadge, when,
} from "./dom.js";
import {renderAlphafold} from "./alphafold.js";
import {renderEstimators} from "./plots.js";

const LOG_TAIL = 65536;
const LOG_EVERY_MS = 2000;
const DETAIL_EVERY_MS = 3000; // per-task ETA and attempts, which the stream does not carry
const TIMELINE_MAX = 300;
const FILES_SHOWN = 25;

export async function renderJob(main, id) {
  let job;
  try {
    job = await get(`/jobs/${id}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      fill(main, h("h1", {}, "Job not found"),
        h("p", {class: "card"}, "There is no such job, or it is not yours. ",
          h("a", {href: "#/jobs"}, "Back to the jobs")));
      return null;
    }
    throw error;
  }
  const kind = (await services().catch(() => [])).find((s) => s.name === job.service)?.result_kind;
  const timers = new Set();
  let stopped = false;
  let stopStream = () => {};
  let stopResults = () => {};

  const status = h("span", {id: "job-status"});
  const stage = h("span", {id: "job-stage", class: "muted"});
  const overall = progressBar(job.percent, "Progress of the job");
  overall.id = "job-progress";
  const facts = h("dl", {class: "facts"});
  const actions = h("div", {class: "actions"});
  const messages = h("div");
  const tasks = h("tbody");
  const timeline = h("ol", {class: "timeline", id: "timeline", "aria-label": "Events"});
  const taskPick = h("select", {id: "log-task"});
  const logs = h("div", {id: "logs"});
  const files = h("tbody");
  const results = h("section", {class: "card", id: "results", "aria-labelledby": "results-title"},
    h("h2", {id: "results-title"}, "Results"));

  fill(main,
    h("p", {}, h("a", {href: "#/jobs"}, "← Jobs")),
    h("h1", {}, job.name, " ", status),
    h("div", {class: "card"},
      h("div", {class: "row"}, h("div", {class: "field"}, overall), stage),
      facts, messages, actions),
    h("div", {class: "grid"},
      h("section", {class: "card", "aria-labelledby": "tasks-title"},
        h("h2", {id: "tasks-title"}, "Tasks"),
        h("div", {class: "table-wrap"}, h("table", {"aria-labelledby": "tasks-title"},
          h("thead", {}, h("tr", {}, h("th", {class: "num", scope: "col"}, "Task"),
            h("th", {scope: "col"}, "State"), h("th", {scope: "col"}, "Progress"),
            h("th", {scope: "col"}, "ETA"), h("th", {class: "num", scope: "col"}, "Attempt"),
            h("th", {class: "num", scope: "col"}, "Exit"))), tasks))),
      h("section", {class: "card", "aria-labelledby": "events-title"},
        h("h2", {id: "events-title"}, "Events"), timeline)),
    results,
    h("section", {class: "card", "aria-labelledby": "logs-title"},
      h("h2", {id: "logs-title"}, "Logs"),
      h("div", {class: "field"}, h("label", {for: "log-task"}, "Task"), taskPick), logs),
    h("section", {class: "card", "aria-labelledby": "files-title"},
      h("h2", {id: "files-title"}, "Files"),
      h("div", {class: "table-wrap"}, h("table", {"aria-labelledby": "files-title"},
        h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "Path"),
          h("th", {class: "num", scope: "col"}, "Size"), h("th", {scope: "col"}, "Download"))),
        files))));

  for (const task of job.tasks) taskPick.append(h("option", {value: task.index}, `Task ${task.index}`));
  const taskRows = new Map();

  function showJob() {
    fill(status, statusBadge(job.status));
    stage.textContent = `Stage: ${job.stage}`;
    setProgress(overall, job.percent);
    fill(facts,
      [["Number", job.number], ["Id", job.id], ["Service", job.service],
        ["Tasks", `${job.ntasks} (${job.tasks_done} done, ${job.tasks_failed} failed)`],
        ["Created", when(job.created_at)], ["Started", when(job.started_at)],
        ["Finished", when(job.finished_at)],
        ["Input", `${job.input?.kind || ""}${job.input?.primaries ? `, ${number(job.input.primaries)} primaries` : ""}`],
      ].filter(([, v]) => v !== "" && v !== null && v !== undefined)
        .map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]));
    fill(messages,
      job.error ? h("p", {class: "status-failed"}, `Error (${job.error.code}): ${job.error.message}`) : null,
      (job.warnings || []).map((w) => h("p", {class: "muted"}, `Warning: ${w}`)));
    const active = ACTIVE.has(job.status);
    fill(actions,
      active ? h("button", {type: "button", class: "danger", id: "cancel-job", onclick: cancel},
        "Cancel job") : null,
      job.status === "completed" ? h("button", {type: "button", id: "download-zip",
        onclick: () => download(`/jobs/${job.id}/results/download`, `${job.id}.zip`)
          .catch((e) => notify(e.message, "error"))}, "Download results (ZIP)") : null,
      TERMINAL.has(job.status) ? h("button", {type: "button", class: "secondary",
        id: "delete-job", onclick: remove}, "Delete job") : null);
    for (const task of job.tasks) showTask(task);
  }

  function showTask(task) {
    let tr = taskRows.get(task.index);
    if (!tr) {
      tr = h("tr", {"data-task": task.index},
        h("td", {class: "num"}, String(task.index)), h("td"),
        h("td", {}, progressBar(task.percent, `Progress of task ${task.index}`)),
        h("td"), h("td", {class: "num"}), h("td", {class: "num"}));
      taskRows.set(task.index, tr);
      tasks.append(tr);
    }
    const cells = tr.children;
    if (cells[1].firstChild?.dataset.status !== task.state) fill(cells[1], statusBadge(task.state));
    setProgress(cells[2].firstChild, task.percent);
    cells[3].textContent = task.state === "running" ? duration(task.eta_seconds) : "";
    if (task.attempt !== undefined) cells[4].textContent = String(task.attempt);
    if (task.exit_code !== undefined) cells[5].textContent = task.exit_code ?? "";
    cells[1].title = task.error || "";
  }

  async function cancel() {
    if (!(await confirmAction("Cancel this job?",
      `Job ${job.number} (${job.name}) will be stopped; finished tasks keep their files.`,
      "Cancel job"))) return;
    try {
      const answer = await request("POST", `/jobs/${job.id}/cancel`);
      notify(`Job ${job.number} ${answer.status}.`);
    } catch (error) {
      notify(error.message, "error");
    }
    reload();
  }

  async function remove() {
    if (!(await confirmAction("Delete this job?",
      `Job ${job.number} (${job.name}), its events and all its files will be removed.`,
      "Delete job"))) return;
    try {
      await request("DELETE", `/jobs/${job.id}`);
      notify(`Job ${job.number} deleted.`);
      location.hash = "#/jobs";
    } catch (error) {
      notify(error.message, "error");
    }
  }

  /** The job's detail again (tasks' ETA and attempts, timestamps, errors). */
  async function reload() {
    try {
      job = await get(`/jobs/${job.id}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) location.hash = "#/jobs";
      return;
    }
    if (!stopped) showJob();
  }

  function event(message) {
    if (stopped) return;
    addToTimeline(message);
    if (message.percent !== undefined) job.percent = message.percent;
    if (message.stage) job.stage = message.stage;
    if (message.type === "snapshot") {
      job.status = message.status;
      for (const task of message.tasks || []) mergeTask(task.index, task);
    } else if (message.type === "progress") {
      mergeTask(message.task_index, {percent: message.task_percent, state: "running",
        eta_seconds: message.eta_seconds});
      if (job.status === "pending") job.status = "running";
    } else if (message.type === "task_state") {
      mergeTask(message.task_index, {state: message.state, error: message.error});
      if (message.state === "completed") resultsChanged();
    } else if (message.type === "stage_change") {
      if (job.status === "pending" && message.stage !== "queued") job.status = "running";
    } else if (TERMINAL.has(message.type)) {
      job.status = message.type;
      finished();
    }
    showJob();
  }

  function mergeTask(index, changes) {
    const task = job.tasks.find((t) => t.index === index);
    if (task) Object.assign(task, Object.fromEntries(
      Object.entries(changes).filter(([, v]) => v !== undefined)));
  }

  function addToTimeline(message) {
    if (message.type === "snapshot") return;
    const parts = [message.type.replace("_", " ")];
    if (message.stage) parts.push(`stage ${message.stage}`);
    if (message.task_index !== undefined) parts.push(`task ${message.task_index}`);
    if (message.state) parts.push(message.state);
    if (message.task_percent !== undefined) parts.push(`${Number(message.task_percent).toFixed(1)} %`);
    if (message.percent !== undefined) parts.push(`job ${Number(message.percent).toFixed(1)} %`);
    if (message.error) parts.push(String(message.error));
    timeline.append(h("li", {"data-type": message.type},
      h("span", {class: "seq"}, `#${message.seq ?? ""}`), parts.join(" · ")));
    while (timeline.children.length > TIMELINE_MAX) timeline.firstChild.remove();
    timeline.scrollTop = timeline.scrollHeight;
  }

  async function showLogs() {
    let answer;
    try {
      answer = await get(`/jobs/${job.id}/logs`, {params: {task: taskPick.value, tail: LOG_TAIL}});
    } catch (error) {
      fill(logs, h("p", {class: "muted"}, error.message));
      return;
    }
    if (stopped) return;
    const entry = answer.tasks[0];
    if (!entry) return;
    const stream = (label, text, size, which) => {
      const pre = logs.querySelector(`pre[data-stream="${which}"]`)
        || h("pre", {class: "log", "data-stream": which, tabindex: "0", "aria-label": label});
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
      const shown = text || "(empty)";
      if (pre.textContent !== shown) pre.textContent = shown;
      if (atEnd) pre.scrollTop = pre.scrollHeight;
      return [h("h3", {class: "muted"}, `${label} (${bytes(size)}${entry.truncated ? ", the end shown" : ""})`), pre];
    };
    fill(logs, stream(`stdout of task ${entry.index}`, entry.stdout, entry.stdout_size, "stdout"),
      stream(`stderr of task ${entry.index}`, entry.stderr, entry.stderr_size, "stderr"));
  }
  taskPick.addEventListener("change", showLogs);

  let showAllFiles = false;
  async function showFiles() {
    let answer;
    try {
      answer = await get(`/jobs/${job.id}/files`);
    } catch (error) {
      fill(files, h("tr", {}, h("td", {colspan: "3", class: "muted"}, error.message)));
      return;
    }
    if (stopped) return;
    const row = (f) => h("tr", {},
      h("td", {}, h("code", {}, f.path)), h("td", {class: "num"}, bytes(f.size)),
      h("td", {}, h("button", {type: "button", class: "secondary small",
        "aria-label": `Download ${f.path}`,
        onclick: () => download(`/jobs/${job.id}/files/${f.path.split("/").map(encodeURIComponent).join("/")}`,
          f.path.split("/").pop()).catch((e) => notify(e.message, "error"))}, "Download")));
    const shown = showAllFiles ? answer.files : answer.files.slice(0, FILES_SHOWN);
    fill(files, answer.files.length ? shown.map(row)
      : h("tr", {}, h("td", {colspan: "3", class: "muted"}, "No files yet.")),
    shown.length < answer.files.length ? h("tr", {}, h("td", {colspan: "3"},
      h("button", {type: "button", class: "secondary small", onclick: () => {
        showAllFiles = true;
        showFiles();
      }}, `Show all ${answer.files.length} files (${bytes(answer.total_size)})`))) : null);
  }

  let resultsTimer = null;
  function resultsChanged() {
    if (kind !== "estimators") return; // only simulations have results before the end
    clearTimeout(resultsTimer);
    resultsTimer = setTimeout(showResults, 500);
  }

  // One drawing of the results at a time: a refresh waits for the one before it.
  let drawing = Promise.resolve();
  function showResults() {
    drawing = drawing.then(drawResults).catch((error) => {
      fill(results.querySelector("#results-body") || results,
        h("p", {class: "muted"}, `The results could not be shown: ${error.message}`));
    });
    return drawing;
  }

  async function drawResults() {
    if (stopped) return;
    stopResults();
    stopResults = () => {};
    const body = results.querySelector("#results-body") || h("div", {id: "results-body"});
    results.append(body);
    if (kind === "estimators" && (job.status === "completed" || job.tasks_done > 0
      || job.tasks.some((t) => t.state === "completed"))) {
      stopResults = await renderEstimators(body, job, job.status !== "completed") || (() => {});
    } else if (kind === "confidence" && job.status === "completed") {
      stopResults = await renderAlphafold(body, job) || (() => {});
    } else if (job.status === "completed") {
      fill(body, h("p", {class: "muted"}, "This service's results are its files, below."));
    } else {
      fill(body, h("p", {class: "muted"}, kind === "estimators"
        ? "Results appear here as the tasks finish." : "Results appear here when the job completes."));
    }
  }

  const wasActive = ACTIVE.has(job.status);
  function finished() {
    stopStream();
    clearTimeout(resultsTimer);
    for (const timer of timers) clearInterval(timer);
    timers.clear();
    // The last words: the final detail, logs and files, and the results it ended with.
    reload().then(() => {
      showLogs();
      showFiles();
      if (wasActive) showResults();
    });
  }

  showJob();
  showLogs();
  showFiles();
  showResults();
  if (wasActive) {
    timers.add(setInterval(showLogs, LOG_EVERY_MS));
    timers.add(setInterval(reload, DETAIL_EVERY_MS));
  }
  stopStream = follow(job.id, event, {fromStart: true});

  return () => {
    stopped = true;
    stopStream();
    stopResults();
    clearTimeout(resultsTimer);
    for (const timer of timers) clearInterval(timer);
  };
}
