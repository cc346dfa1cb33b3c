// An AlphaFold 3 job's results: the ranking of every seed's samples, the chosen sample's
// structure in a 3D viewer coloured by pLDDT, its PAE matrix as a heat map and its pLDDT
// per residue.

import {get, load3Dmol, loadPlotly, request} from "./api.js";
import {fill, h, number} from "./dom.js";

// AlphaFold's own pLDDT bands and colours.
const BANDS = [
  [90, "#0053d6", "Very high (pLDDT > 90)"],
  [70, "#65cbf3", "Confident (90 > pLDDT > 70)"],
  [50, "#ffdb13", "Low (70 > pLDDT > 50)"],
  [-Infinity, "#ff7d45", "Very low (pLDDT < 50)"],
];
const CONFIG = {responsive: true, displaylogo: false};

function plddtColour(value) {
  return BANDS.find(([low]) => value > low)[1];
}

export async function renderAlphafold(container, job) {
  const result = await get(`/jobs/${job.id}/results`);
  const samples = [...result.samples].sort((a, b) => a.rank - b.rank);
  const viewerBox = h("div", {class: "viewer", id: "structure-viewer", role: "img",
    "aria-label": "3D structure of the chosen sample, coloured by pLDDT"});
  const pae = h("div", {class: "plot", id: "pae-plot", role: "img",
    "aria-label": "Predicted aligned error of the chosen sample"});
  const plddt = h("div", {class: "plot", id: "plddt-plot", role: "img",
    "aria-label": "pLDDT per residue of the chosen sample"});
  const heading = h("h3", {id: "sample-title"});
  const rows = h("tbody");
  fill(container,
    h("dl", {class: "facts"},
      [["Best sample", result.best_sample_index], ["pTM", number(result.ptm)],
        ["ipTM", number(result.iptm)], ["Mean pLDDT", number(result.mean_plddt)],
        ["Ranked by", result.ranking_metric], ["Samples", result.num_samples]]
        .filter(([, v]) => v !== null && v !== undefined && v !== "")
        .map(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])),
    h("h3", {}, "Ranking per seed and sample"),
    h("div", {class: "table-wrap"}, h("table", {id: "ranking", "aria-label": "Ranking"},
      h("thead", {}, h("tr", {}, ["Rank", "Sample", "Seed", "Ranking score", "pTM", "ipTM",
        "Mean pLDDT", ""].map((c) => h("th", {scope: "col"}, c)))),
      rows)),
    heading,
    h("div", {class: "grid"},
      h("div", {}, viewerBox, h("div", {class: "legend", "aria-label": "pLDDT colours"},
        BANDS.map(([, colour, text]) => h("span", {}, h("i", {style: `background:${colour}`}),
          text)))),
      pae),
    plddt);

  let viewer = null;
  let Plotly = null;
  async function show(sample) {
    heading.textContent = `Rank ${sample.rank}: sample ${sample.sample_index} (seed ${sample.seed})`;
    for (const tr of rows.children) {
      const pressed = tr.dataset.rank === String(sample.rank);
      tr.querySelector("button").setAttribute("aria-pressed", String(pressed));
    }
    const [structure, confidence] = await Promise.all([
      request("GET", `/jobs/${job.id}/results/structure/${sample.rank}`, {raw: true})
        .then((r) => r.text()),
      get(`/jobs/${job.id}/results/confidence/${sample.sample_index}`),
    ]);
    try {
      const $3Dmol = await load3Dmol();
      if (!viewer) viewer = $3Dmol.createViewer(viewerBox, {backgroundColor: "white"});
      viewer.clear();
      viewer.addModel(structure, "cif");
      const colorfunc = (atom) => plddtColour(atom.b);
      viewer.setStyle({}, {cartoon: {colorfunc}});
      viewer.addStyle({hetflag: true}, {stick: {colorfunc}});
      viewer.zoomTo();
      viewer.render();
    } catch (error) {
      fill(viewerBox, h("p", {class: "muted"}, `The 3D viewer could not start: ${error.message}`));
    }
    try {
      Plotly = Plotly || await loadPlotly();
      Plotly.react(pae, [{z: confidence.pae, type: "heatmap", colorscale: "Greens",
        reversescale: true, zmin: 0, colorbar: {title: {text: "Expected position error [Å]"}},
        hovertemplate: "Scored %{x}, aligned %{y}: %{z:.2f} Å<extra></extra>"}],
      {title: {text: "Predicted aligned error (PAE)", font: {size: 14}},
        xaxis: {title: {text: "Scored residue"}},
        yaxis: {title: {text: "Aligned residue"}, autorange: "reversed"},
        margin: {l: 60, r: 10, t: 40, b: 50}, autosize: true}, CONFIG);
      const residues = confidence.plddt.map((_, i) => i + 1);
      Plotly.react(plddt, [{x: residues, y: confidence.plddt, type: "scatter", mode: "lines+markers",
        marker: {color: confidence.plddt.map(plddtColour), size: 4}, line: {color: "#8c959f"},
        name: "pLDDT"}],
      {title: {text: "pLDDT per residue", font: {size: 14}},
        xaxis: {title: {text: "Residue"}}, yaxis: {title: {text: "pLDDT"}, range: [0, 100]},
        margin: {l: 60, r: 10, t: 40, b: 50}, autosize: true}, CONFIG);
    } catch (error) {
      fill(pae, h("p", {class: "muted"}, `The plots could not be drawn: ${error.message}`));
    }
  }

  fill(rows, samples.map((s) => h("tr", {"data-rank": s.rank},
    h("td", {}, String(s.rank)), h("td", {}, String(s.sample_index)), h("td", {}, String(s.seed)),
    h("td", {}, number(s.ranking_score)), h("td", {}, number(s.ptm)), h("td", {}, number(s.iptm)),
    h("td", {}, number(s.mean_plddt)),
    h("td", {}, h("button", {type: "button", class: "secondary small", "aria-pressed": "false",
      "aria-label": `Show rank ${s.rank}`, onclick: () => show(s)}, "Show")))));
  if (samples.length) await show(samples[0]);
  return () => {
    if (viewer) viewer.clear();
    if (Plotly) { Plotly.purge(pae); Plotly.purge(plddt); }
  };
}
