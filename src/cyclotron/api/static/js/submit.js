// #/submit: files (drag and drop), a YAPTIDE editor project or an AlphaFold 3 input, checked
// by POST /api/validate as the user types, then POST /api/jobs.

import {ApiError, post, services, submit} from "./api.js";
import {bytes, debounce, duration, fill, h, number} from "./dom.js";

const KINDS = [
  ["files", "Files (run.sh and its inputs, or an engine's input files)"],
  ["editor", "YAPTIDE editor project (JSON)"],
  ["af3", "AlphaFold 3 input (JSON)"],
];

export async function renderSubmit(main) {
  const list = await services();
  const chosen = new Map(); // file name -> File
  let checking = 0;

  const name = h("input", {id: "job-name", type: "text", maxlength: "200", placeholder: "unnamed"});
  const service = h("select", {id: "job-service", required: true},
    list.map((s) => h("option", {value: s.name, disabled: !s.available},
      `${s.name}${s.description ? ` — ${s.description}` : ""}${s.available ? "" : " (unavailable)"}`)));
  const serviceHint = h("p", {class: "hint", id: "job-service-hint"});
  service.setAttribute("aria-describedby", "job-service-hint");
  const ntasks = h("input", {id: "job-ntasks", type: "number", min: "1", value: "1",
    inputmode: "numeric", required: true});
  const primaries = h("input", {id: "job-primaries", type: "number", min: "1",
    inputmode: "numeric", placeholder: "from the input", "aria-describedby": "primaries-hint"});
  const primariesField = h("div", {class: "field"},
    h("label", {for: "job-primaries"}, "Primaries"), primaries,
    h("p", {class: "hint", id: "primaries-hint"}, "Total primary particles, split over the tasks."));
  const kindInputs = KINDS.map(([value, label]) => h("label", {class: "inline"},
    h("input", {type: "radio", name: "kind", value}), label));
  const kindSet = h("fieldset", {}, h("legend", {}, "Input"), kindInputs);

  // Files: a drop zone with a file chooser inside.
  const picker = h("input", {id: "job-files", type: "file", multiple: true});
  const fileList = h("ul", {class: "filelist", "aria-label": "Chosen files"});
  const drop = h("div", {class: "dropzone", id: "dropzone"},
    h("p", {}, "Drop files here, or "),
    h("label", {for: "job-files", class: "inline"}, "choose files:"), picker);
  const filesPart = h("div", {"data-kind": "files"}, drop, fileList);

  // JSON inputs: a text area, or a file read into it.
  const jsonPart = (kind, label) => {
    const area = h("textarea", {id: `job-${kind}`, spellcheck: "false"});
    const file = h("input", {id: `job-${kind}-file`, type: "file", accept: ".json,application/json"});
    file.addEventListener("change", async () => {
      if (file.files[0]) area.value = await file.files[0].text();
      changed();
    });
    const part = h("div", {"data-kind": kind},
      h("div", {class: "field"}, h("label", {for: `job-${kind}-file`}, `${label} file`), file),
      h("div", {class: "field"}, h("label", {for: `job-${kind}`}, label), area));
    part.area = area;
    return part;
  };
  const editorPart = jsonPart("editor", "Editor project JSON");
  const af3Part = jsonPart("af3", "AlphaFold 3 input JSON");

  const check = h("div", {class: "check", id: "validation", role: "status", "aria-live": "polite"},
    "Fill in the form to check it.");
  const send = h("button", {type: "submit"}, "Submit job");
  const result = h("p", {role: "alert"});
  const form = h("form", {class: "card", "aria-labelledby": "submit-title", novalidate: true},
    h("div", {class: "row"},
      h("div", {class: "field"}, h("label", {for: "job-name"}, "Name"), name),
      h("div", {class: "field"}, h("label", {for: "job-service"}, "Service"), service,
        serviceHint)),
    kindSet,
    filesPart, editorPart, af3Part,
    h("div", {class: "row"},
      h("div", {class: "field"}, h("label", {for: "job-ntasks"}, "Tasks (ntasks)"), ntasks),
      primariesField),
    check,
    h("div", {class: "actions"}, send),
    result);
  fill(main, h("h1", {id: "submit-title"}, "Submit a job"), form);

  const current = () => list.find((s) => s.name === service.value);
  const kind = () => kindInputs.map((l) => l.firstChild).find((i) => i.checked)?.value;

  function showKinds() {
    const s = current();
    const allowed = new Set(s?.input_kinds || []);
    for (const label of kindInputs) {
      const input = label.firstChild;
      input.disabled = !allowed.has(input.value);
      label.hidden = input.disabled;
    }
    const first = kindInputs.map((l) => l.firstChild).find((i) => !i.disabled);
    if (!kind() || !allowed.has(kind())) if (first) first.checked = true;
    for (const part of [filesPart, editorPart, af3Part]) part.hidden = part.dataset.kind !== kind();
    primariesField.hidden = s?.result_kind !== "estimators" || kind() === "af3";
    ntasks.disabled = kind() === "af3";
    ntasks.max = s?.limits?.max_ntasks || "";
    fill(serviceHint, s ? [s.available ? "" : `Unavailable: ${s.reason}. `,
      `Takes ${[...allowed].join(", ")}; results: ${s.result_kind}.`] : "");
  }

  function addFiles(files) {
    for (const file of files) chosen.set(file.name, file);
    fill(fileList, [...chosen.values()].map((file) => h("li", {},
      h("span", {}, `${file.name} (${bytes(file.size)})`),
      h("button", {type: "button", class: "secondary small", "aria-label": `Remove ${file.name}`,
        onclick: () => { chosen.delete(file.name); addFiles([]); }}, "Remove"))));
    changed();
  }
  picker.addEventListener("change", () => { addFiles(picker.files); picker.value = ""; });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    addFiles(e.dataTransfer.files);
  });

  /** The JobSubmission the form describes; throws an Error naming what is wrong. */
  async function body() {
    const s = current();
    const wanted = {service: s?.name || service.value, input: null};
    if (name.value.trim()) wanted.name = name.value.trim();
    if (kind() === "files") {
      const files = {};
      for (const [fileName, file] of chosen) files[fileName] = await fileValue(file);
      wanted.input = {kind: "files", files};
    } else if (kind() === "editor") {
      const project = parseJson(editorPart.area.value, "The editor project");
      const inner = project?.input?.inputJson;
      wanted.input = {kind: "editor", project: inner && typeof inner === "object" ? inner : project};
    } else if (kind() === "af3") {
      const job = parseJson(af3Part.area.value, "The AlphaFold 3 input");
      wanted.input = {kind: "af3", job};
      if (!wanted.name && typeof job?.name === "string") wanted.name = job.name;
    }
    if (kind() !== "af3") wanted.ntasks = Number(ntasks.value) || ntasks.value;
    if (!primariesField.hidden && primaries.value && wanted.input) {
      wanted.input.primaries = Number(primaries.value);
    }
    return wanted;
  }

  async function validate() {
    const turn = ++checking;
    let wanted;
    try {
      wanted = await body();
    } catch (error) {
      show(false, [error.message], [], {});
      return;
    }
    try {
      const answer = await post("/validate", wanted);
      if (turn === checking) show(answer.valid, answer.errors, answer.warnings, answer.estimates);
    } catch (error) {
      if (turn === checking) show(false, [error.message], [], {});
    }
  }
  const changed = debounce(validate, 350);

  function show(valid, errors, warnings, estimates) {
    check.className = `check ${valid ? "ok" : "bad"}`;
    check.dataset.valid = valid ? "true" : "false";
    fill(check,
      h("strong", {}, valid ? "Ready to submit." : "Not ready yet:"),
      errors.length ? h("ul", {class: "errors"}, errors.map((e) => h("li", {}, e))) : null,
      warnings.length ? [h("span", {}, "Warnings:"),
        h("ul", {class: "warnings"}, warnings.map((w) => h("li", {}, w)))] : null,
      describeEstimates(estimates));
  }

  form.addEventListener("input", (event) => {
    if (event.target === service) return;
    changed();
  });
  service.addEventListener("change", () => { showKinds(); changed(); });
  for (const label of kindInputs) {
    label.firstChild.addEventListener("change", () => { showKinds(); changed(); });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    send.disabled = true;
    result.textContent = "";
    try {
      const created = await submit(await body());
      location.hash = `#/jobs/${created.id}`;
    } catch (error) {
      result.textContent = error instanceof ApiError
        ? `The server refused the job (${error.status}): ${error.message}` : error.message;
      send.disabled = false;
    }
  });

  showKinds();
  service.focus();
  return () => { checking += 1; };
}

function parseJson(text, what) {
  if (!text.trim()) throw new Error(`${what} is empty.`);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${what} is not valid JSON: ${error.message}`);
  }
}

/** A file as the native API takes it: UTF-8 text as it is, anything else as base64. */
async function fileValue(file) {
  const data = new Uint8Array(await file.arrayBuffer());
  try {
    return new TextDecoder("utf-8", {fatal: true}).decode(data);
  } catch {
    let binary = "";
    for (let i = 0; i < data.length; i += 0x8000) {
      binary += String.fromCharCode(...data.subarray(i, i + 0x8000));
    }
    return {base64: btoa(binary)};
  }
}

function describeEstimates(estimates) {
  const facts = [];
  if (estimates.total_primaries !== undefined) {
    facts.push(["Primaries", number(estimates.total_primaries)]);
  }
  if (estimates.primaries_per_task) {
    facts.push(["Per task", estimates.primaries_per_task.map((p) => number(p)).join(", ")]);
  }
  if (estimates.estimated_seconds !== undefined && estimates.estimated_seconds !== null) {
    facts.push(["Estimated time", duration(estimates.estimated_seconds)]);
  }
  if (estimates.estimated_memory_gb !== undefined) {
    facts.push(["Estimated memory", `${number(estimates.estimated_memory_gb)} GB`]);
  }
  if (estimates.num_residues !== undefined) facts.push(["Residues", number(estimates.num_residues)]);
  if (estimates.num_chains !== undefined) facts.push(["Chains", number(estimates.num_chains)]);
  if (!facts.length) return null;
  return h("dl", {class: "facts estimates"}, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}
