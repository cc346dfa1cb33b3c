// A simulation's estimators as plots (spec/results.md): a 1-D page as a line with its
// standard-error band, a 2-D page as a heat map with a colour bar, units on the axes, a
// logarithmic scale on request, each page downloadable as CSV and PNG. While the job runs
// the tasks completed so far are merged (?partial=true), and the plots follow them.

import {ApiError, get, loadPlotly} from "./api.js";
import {fill, h, number, saveBlob} from "./dom.js";

const choices = new Map(); // job id -> {estimator, log}: kept when the plots refresh
const CONFIG = {responsive: true, displaylogo: false, modeBarButtonsToRemove: ["toImage"]};

export async function renderEstimators(container, job, partial) {
  let Plotly;
  let answer;
  try {
    Plotly = await loadPlotly();
    answer = await get(`/jobs/${job.id}/results`, {params: {partial: partial ? "true" : null}});
  } catch (error) {
    const waiting = error instanceof ApiError && error.status === 400 && partial;
    fill(container, h("p", {class: "muted"}, waiting
      ? "Results appear here as the tasks finish." : `No results to show: ${error.message}`));
    return null;
  }
  const estimators = answer.estimators || [];
  if (!estimators.length) {
    fill(container, h("p", {class: "muted"}, "This job has no estimators."));
    return null;
  }
  const chosen = choices.get(job.id) || {estimator: estimators[0].name, log: false};
  if (!estimators.some((e) => e.name === chosen.estimator)) chosen.estimator = estimators[0].name;
  choices.set(job.id, chosen);

  const pick = h("select", {id: "estimator"},
    estimators.map((e) => h("option", {value: e.name, selected: e.name === chosen.estimator},
      `${e.name} (${e.pages.length} page${e.pages.length === 1 ? "" : "s"})`)));
  const log = h("input", {id: "log-scale", type: "checkbox", checked: chosen.log});
  const figures = h("div", {class: "figures"});
  const note = partial
    ? h("p", {class: "muted", id: "partial-note"},
      `Partial results: ${answer.tasks_merged} of ${job.ntasks} tasks merged so far; `,
      "they refresh as tasks finish.")
    : h("p", {class: "muted"}, `${answer.tasks_merged} tasks merged`,
      answer.tasks_failed ? `, ${answer.tasks_failed} failed and left out` : "", ".");
  fill(container, note,
    h("div", {class: "row"},
      h("div", {class: "field"}, h("label", {for: "estimator"}, "Estimator"), pick),
      h("div", {class: "field"}, h("label", {class: "inline", for: "log-scale"}, log,
        "Logarithmic scale"))),
    figures);

  const plotted = [];
  function draw() {
    for (const div of plotted.splice(0)) Plotly.purge(div);
    const estimator = estimators.find((e) => e.name === chosen.estimator);
    fill(figures, estimator.pages.map((page) => figure(Plotly, estimator, page, chosen.log, plotted)));
  }
  pick.addEventListener("change", () => { chosen.estimator = pick.value; draw(); });
  log.addEventListener("change", () => { chosen.log = log.checked; draw(); });
  draw();
  return () => { for (const div of plotted.splice(0)) Plotly.purge(div); };
}

function label(part) {
  if (!part) return "";
  return part.unit ? `${part.name} [${part.unit}]` : part.name;
}

function axesOf(page) {
  const axes = [];
  for (let k = 1; k <= (page.dimensions || 0); k += 1) {
    if (page[`axis_dim${k}`]) axes.push(page[`axis_dim${k}`]);
  }
  return axes;
}

function figure(Plotly, estimator, page, log, plotted) {
  const axes = axesOf(page);
  const pageNumber = page.metadata?.page_number ?? "0";
  const title = `${page.data.name || page.metadata?.name || "page"} — page ${pageNumber}`;
  const base = `${estimator.name}_page${pageNumber}`;
  const box = h("figure", {class: "page", "data-page": pageNumber});
  const caption = h("figcaption", {}, h("strong", {}, title));
  const csv = h("button", {type: "button", class: "secondary small",
    "aria-label": `Download ${title} as CSV`,
    onclick: () => saveBlob(new Blob([toCsv(page, axes)], {type: "text/csv"}), `${base}.csv`)},
  "Download CSV");
  box.append(caption);
  if (axes.length === 0) {
    const value = flat(page.data.values)[0];
    const error = page.error ? flat(page.error.values)[0] : null;
    box.append(h("p", {class: "value"}, `${number(value, 6)}`,
      error !== null && error !== undefined ? ` ± ${number(error, 3)}` : "", ` ${page.data.unit || ""}`));
    box.append(h("div", {class: "actions"}, csv));
    return box;
  }
  if (axes.length > 2) {
    box.append(h("p", {class: "muted"}, `A ${axes.length}-D page: download it as CSV.`));
    box.append(h("div", {class: "actions"}, csv));
    return box;
  }
  const div = h("div", {class: "plot", role: "img",
    "aria-label": axes.length === 1
      ? `Line plot of ${label(page.data)} against ${label(axes[0])}, ${axes[0].values.length} points`
      : `Heat map of ${label(page.data)} over ${label(axes[0])} and ${label(axes[1])}`});
  const png = h("button", {type: "button", class: "secondary small",
    "aria-label": `Download ${title} as PNG`,
    onclick: () => Plotly.downloadImage(div, {format: "png", filename: base, width: 1100, height: 650})},
  "Download PNG");
  box.append(div, h("div", {class: "actions"}, csv, png));
  const [traces, layout] = axes.length === 1 ? line(page, axes[0], log) : heatmap(page, axes, log);
  layout.title = {text: `${estimator.name}: ${title}`, font: {size: 14}};
  layout.margin = {l: 70, r: 20, t: 40, b: 55};
  layout.autosize = true;
  // Plotted once the figure is in the page, so that it takes the page's width.
  requestAnimationFrame(() => {
    if (!div.isConnected) return;
    Plotly.newPlot(div, traces, layout, CONFIG);
    plotted.push(div);
  });
  return box;
}

function flat(values) {
  return values.flat(Infinity).map((v) => (v === null ? NaN : Number(v)));
}

function line(page, axis, log) {
  const x = flat(axis.values);
  const y = flat(page.data.values);
  const traces = [];
  if (page.error) {
    const err = flat(page.error.values);
    const upper = y.map((v, i) => v + (err[i] || 0));
    const lower = y.map((v, i) => v - (err[i] || 0));
    traces.push({x: [...x, ...x.slice().reverse()], y: [...upper, ...lower.reverse()],
      type: "scatter", mode: "lines", fill: "toself", line: {width: 0},
      fillcolor: "rgba(5, 80, 174, 0.2)", name: "± standard error", hoverinfo: "skip"});
  }
  traces.push({x, y, type: "scatter", mode: "lines", name: page.data.name || "value",
    line: {color: "#0550ae", width: 2}});
  return [traces, {
    xaxis: {title: {text: label(axis)}},
    yaxis: {title: {text: label(page.data)}, type: log ? "log" : "linear", exponentformat: "e"},
    showlegend: Boolean(page.error), legend: {orientation: "h", y: -0.2},
  }];
}

function heatmap(page, axes, log) {
  const x = flat(axes[0].values);
  const y = flat(axes[1].values);
  const values = flat(page.data.values);
  const z = y.map((_, j) => x.map((_, i) => {
    const v = values[i + x.length * j];
    if (!log) return Number.isFinite(v) ? v : null;
    return v > 0 ? Math.log10(v) : null;
  }));
  const bar = log ? `log₁₀ ${label(page.data)}` : label(page.data);
  return [[{x, y, z, type: "heatmap", colorscale: "Viridis", colorbar: {title: {text: bar}},
    hovertemplate: `${axes[0].name}: %{x}<br>${axes[1].name}: %{y}<br>${page.data.name}: %{z}<extra></extra>`}],
  {xaxis: {title: {text: label(axes[0])}}, yaxis: {title: {text: label(axes[1])}}}];
}

/** One row per bin: its axis values (the first axis fastest), the value and its error. */
function toCsv(page, axes) {
  const quote = (text) => (/[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text);
  const values = flat(page.data.values);
  const errors = page.error ? flat(page.error.values) : null;
  const columns = axes.map((a) => flat(a.values));
  const header = [...axes.map(label), label(page.data)];
  if (errors) header.push(`stderr${page.data.unit ? ` [${page.data.unit}]` : ""}`);
  const rows = [header.map(quote).join(",")];
  for (let k = 0; k < values.length; k += 1) {
    const row = [];
    let rest = k;
    for (const column of columns) {
      row.push(column[rest % column.length]);
      rest = Math.floor(rest / column.length);
    }
    row.push(values[k]);
    if (errors) row.push(errors[k]);
    rows.push(row.map((v) => (Number.isNaN(v) ? "" : String(v))).join(","));
  }
  return `${rows.join("\n")}\n`;
}
