/* Osteon web page: upload one image, draw the prediction on it. No libraries, no network beyond this server. */
"use strict";

const COLOURS = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180]];
const state = { result: null, samples: null, maskLayer: null, camImage: null, center: 0, width: 1 };
const $ = (id) => document.getElementById(id);

function headers() {
  const token = sessionStorage.getItem("osteon-token");
  return token ? { Authorization: "Bearer " + token } : {};
}

function text(tag, content, cls) {
  const el = document.createElement(tag);
  el.textContent = content;
  if (cls) el.className = cls;
  return el;
}

function fmt(x, digits = 3) {
  return typeof x === "number" ? x.toFixed(digits) : String(x);
}

async function loadCard() {
  const response = await fetch("/v1/model", { headers: headers() });
  const card = $("card");
  if (response.status === 401) { $("auth").hidden = false; card.replaceChildren(text("p", "Token needed.", "muted")); return; }
  const body = await response.json();
  if (!response.ok) { card.replaceChildren(text("p", body.error || "error", "error")); return; }
  $("auth").hidden = true;
  if (body.kind === "pipeline") { pipelineCard(body, card); return; }
  $("model-name").textContent = (body.name || "") + " · " + body.task;
  const rows = [["task", body.task], ["target", body.target], ["classes", (body.classes || []).join(", ")],
    ["model", body.model], ["backend", body.backend], ["input", body.preprocessing ? body.preprocessing.image_size + " px" : ""],
    ["best epoch", body.best_epoch], ["selected by", body.selected_by], ["osteon", body.version && body.version.osteon]];
  if (body.operating_point && body.operating_point.threshold !== undefined) {
    rows.push(["threshold", fmt(body.operating_point.threshold) + " (" + (body.operating_point.method || "") + ")"]);
  }
  const table = document.createElement("table");
  for (const [k, v] of rows) {
    if (v === null || v === undefined || v === "") continue;
    const tr = document.createElement("tr"); tr.append(text("th", k), text("td", String(v))); table.append(tr);
  }
  const nodes = [text("h2", "Model"), table];
  for (const [split, values] of Object.entries(body.metrics || {})) {
    const mt = document.createElement("table");
    for (const [name, v] of Object.entries(values)) {
      const shown = typeof v === "object" && v ? fmt(v.estimate) + " (" + fmt(v.low) + "–" + fmt(v.high) + ")" : fmt(v);
      const tr = document.createElement("tr"); tr.append(text("td", name), text("td", shown)); mt.append(tr);
    }
    nodes.push(text("h2", "Metrics · " + split), mt);
  }
  card.replaceChildren(...nodes);
}

function pipelineCard(body, card) {
  // a pipeline: every stage with its run and model version, and the findings it reports
  $("model-name").textContent = body.name + " · pipeline " + body.pipeline_version;
  const table = document.createElement("table");
  const head = document.createElement("tr");
  head.append(text("th", "stage"), text("th", "run"), text("th", "kind"), text("th", "version"));
  table.append(head);
  for (const st of body.stages) {
    const tr = document.createElement("tr");
    const from = st.input ? " ← " + st.input : (st.gate ? " (gate)" : "");
    tr.append(text("td", st.name + from), text("td", st.run), text("td", st.kind), text("td", st.version));
    table.append(tr);
  }
  const findings = text("p", "findings: " + body.findings.map((f) => f.name).join(", "), "muted");
  card.replaceChildren(text("h2", "Pipeline"), table, findings, text("p", "osteon " + body.version.osteon, "muted"));
}

function pipelineFindings(body) {
  const images = (body.pipeline && body.pipeline.images) || [];
  return images.length ? images[0].findings : [];
}

function pipelineBoxes(body) {
  // every finding's boxes, and the regions a region stage judged (with that region's probability)
  return pipelineFindings(body).flatMap((f) => [
    ...(f.boxes || []).map((b) => ({ xyxy: b.xyxy, label: f.name + ":" + b.label, score: b.score ?? f.probability ?? 1 })),
    ...(f.regions || []).map((r) => ({ xyxy: r.xyxy, label: f.name, score: r.probability ?? r.score })),
  ]);
}

async function upload(file) {
  const result = $("result");
  result.dataset.state = "busy";
  result.replaceChildren(text("p", "Predicting…", "muted"));
  const form = new FormData();
  form.append("file", file, "upload");  // the server never uses the client's file name
  const cam = $("want-cam").checked ? "true" : "false";
  let response, body;
  try {
    response = await fetch("/v1/predict?cam=" + cam, { method: "POST", body: form, headers: headers() });
    body = await response.json();
  } catch (err) {
    result.dataset.state = "error"; result.replaceChildren(text("p", "Request failed: " + err, "error")); return;
  }
  if (!response.ok) {
    if (response.status === 401) $("auth").hidden = false;
    result.dataset.state = "error";
    result.replaceChildren(text("p", body.error || ("HTTP " + response.status), "error"));
    return;
  }
  await show(body);
}

function decodeSamples(display) {
  const bytes = Uint8Array.from(atob(display.samples_uint16_le), (c) => c.charCodeAt(0));
  return new Uint16Array(bytes.buffer);
}

function loadImage(b64) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = reject;
    img.src = "data:image/png;base64," + b64;
  });
}

async function maskLayer(pred, display) {
  // class-map PNG (value = class index) or one 0/1 PNG per class → an RGBA layer at the original size
  const layer = document.createElement("canvas");
  layer.width = pred.width; layer.height = pred.height;
  const ctx = layer.getContext("2d");
  const out = ctx.createImageData(pred.width, pred.height);
  const sources = pred.multilabel ? Object.keys(pred.png) : ["class_map"];
  for (let s = 0; s < sources.length; s++) {
    const img = await loadImage(pred.png[sources[s]]);
    const scratch = document.createElement("canvas");
    scratch.width = img.width; scratch.height = img.height;
    const sctx = scratch.getContext("2d");
    sctx.drawImage(img, 0, 0);
    const data = sctx.getImageData(0, 0, img.width, img.height).data;
    for (let i = 0; i < data.length; i += 4) {
      const k = pred.multilabel ? (data[i] ? s + 1 : 0) : data[i];
      if (!k) continue;
      const c = COLOURS[k % COLOURS.length];
      out.data[i] = c[0]; out.data[i + 1] = c[1]; out.data[i + 2] = c[2]; out.data[i + 3] = 110;
    }
  }
  ctx.putImageData(out, 0, 0);
  return layer;
}

async function show(body) {
  state.result = body;
  const display = body.display;
  state.samples = decodeSamples(display);
  state.center = display.window.center; state.width = display.window.width;
  const span = Math.max(display.high - display.low, 1e-6);
  const c = $("wl-center"), w = $("wl-width");
  c.min = display.low - span / 2; c.max = display.high + span / 2; c.value = state.center;
  w.min = span / 1000; w.max = span * 2; w.value = state.width;
  state.maskLayer = null;
  if (body.pipeline) {
    const masked = pipelineFindings(body).find((f) => f.mask && f.mask.png);
    if (masked) {
      const pred = { width: body.width, height: body.height, multilabel: false, png: { class_map: masked.mask.png } };
      state.maskLayer = await maskLayer(pred, display);
    }
  } else if (body.prediction.kind === "mask") {
    state.maskLayer = await maskLayer(body.prediction, display);
  }
  state.camImage = body.cam && body.cam.png ? await loadImage(body.cam.png) : null;
  draw();
  renderResult(body);
}

function draw() {
  const body = state.result;
  if (!body) return;
  const d = body.display;
  const canvas = $("view");
  canvas.width = d.width; canvas.height = d.height;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(d.width, d.height);
  const lo = state.center - state.width / 2, scale = 255 / Math.max(state.width, 1e-6), span = (d.high - d.low) / 65535;
  for (let i = 0; i < state.samples.length; i++) {
    const v = d.low + state.samples[i] * span;
    const g = Math.max(0, Math.min(255, (v - lo) * scale));
    image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = g; image.data[4 * i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
  $("wl-values").textContent = "C " + fmt(state.center, 1) + " / W " + fmt(state.width, 1);
  const drawn = [];
  const sx = d.width / d.original_width, sy = d.height / d.original_height;
  const pred = body.pipeline
    ? { kind: "boxes", boxes: pipelineBoxes(body) }
    : body.prediction;
  const overlays = $("show-overlay").checked;
  if (state.maskLayer && overlays) { ctx.drawImage(state.maskLayer, 0, 0, d.width, d.height); drawn.push("mask"); }
  if (state.camImage && $("show-cam").checked) { ctx.drawImage(state.camImage, 0, 0, d.width, d.height); drawn.push("cam"); }
  if (pred.kind === "boxes" && overlays) {
    ctx.lineWidth = Math.max(2, d.width / 300); ctx.font = Math.max(12, d.width / 50) + "px sans-serif";
    for (const box of pred.boxes) {
      const [x1, y1, x2, y2] = box.xyxy;
      ctx.strokeStyle = "rgb(255,140,0)"; ctx.fillStyle = "rgb(255,140,0)";
      ctx.strokeRect(x1 * sx, y1 * sy, (x2 - x1) * sx, (y2 - y1) * sy);
      ctx.fillText(box.label + " " + fmt(box.score, 2), x1 * sx + 2, Math.max(12, y1 * sy - 4));
    }
    drawn.push("boxes:" + pred.boxes.length);
  }
  canvas.dataset.overlay = drawn.join(" ");
}

function probabilityTable(probabilities) {
  const table = document.createElement("table");
  for (const [name, p] of Object.entries(probabilities)) {
    const tr = document.createElement("tr");
    const bar = document.createElement("div"); bar.className = "bar";
    const fill = document.createElement("span"); fill.style.width = (100 * p).toFixed(1) + "%"; bar.append(fill);
    const cell = document.createElement("td"); cell.append(bar);
    tr.append(text("td", name), cell, text("td", fmt(p)));
    table.append(tr);
  }
  return table;
}

function renderPipeline(body) {
  const image = (body.pipeline.images || [{}])[0];
  const nodes = [text("h2", "Findings · " + body.pipeline.pipeline.name), text("p", image.status, "big")];
  const table = document.createElement("table");
  for (const f of image.findings || []) {
    const tr = document.createElement("tr");
    const shown = f.probability !== null ? fmt(f.probability) : (f.grade ?? (f.value !== null ? fmt(f.value) : ""));
    const flag = f.positive === true ? "positive" : (f.positive === false ? "negative" : f.status);
    const extra = (f.boxes || []).length ? f.boxes.length + " box(es)" : (f.mask ? "mask" : "");
    tr.className = "finding";
    tr.append(text("td", f.name), text("td", shown), text("td", flag), text("td", extra),
      text("td", f.run + " " + f.run_version, "muted"));
    table.append(tr);
  }
  nodes.push(table, text("p", body.format.toUpperCase() + " · " + body.width + "×" + body.height + " px", "muted"));
  const result = $("result");
  result.replaceChildren(...nodes);
  result.dataset.kind = "pipeline";
  result.dataset.summary = body.summary;
  result.dataset.state = "done";
}

function renderResult(body) {
  if (body.pipeline) { renderPipeline(body); return; }
  const pred = body.prediction;
  const result = $("result");
  const nodes = [text("h2", "Prediction")];
  if (pred.kind === "class") {
    nodes.push(text("p", pred.label, "big"), probabilityTable(pred.probabilities));
    if (pred.operating_point) nodes.push(text("p", "operating point: p ≥ " + fmt(pred.operating_point.threshold), "muted"));
  } else if (pred.kind === "grade") {
    nodes.push(text("p", "grade " + pred.grade, "big"), text("p", "expected grade " + fmt(pred.expected_grade, 2)),
      probabilityTable(pred.probabilities));
  } else if (pred.kind === "value") {
    nodes.push(text("p", fmt(pred.value, 3), "big"));
  } else if (pred.kind === "boxes") {
    nodes.push(text("p", pred.boxes.length + " box(es)", "big"));
    const table = document.createElement("table");
    for (const box of pred.boxes) {
      const tr = document.createElement("tr");
      tr.append(text("td", box.label), text("td", fmt(box.score, 2)), text("td", box.xyxy.map((v) => v.toFixed(0)).join(", ")));
      table.append(tr);
    }
    nodes.push(table);
  } else if (pred.kind === "mask") {
    nodes.push(text("p", pred.present, "big"));
    const table = document.createElement("table");
    pred.class_names.slice(1).forEach((name, k) => {
      const m = pred.measurements[name] || {};
      const sw = document.createElement("span"); sw.className = "swatch";
      const c = COLOURS[(k + 1) % COLOURS.length]; sw.style.background = "rgb(" + c.join(",") + ")";
      const cell = document.createElement("td"); cell.append(sw, " " + name);
      const area = m.area_mm2 !== null && m.area_mm2 !== undefined ? fmt(m.area_mm2, 1) + " mm²" : m.area_px + " px";
      const tr = document.createElement("tr"); tr.append(cell, text("td", area), text("td", (m.components || 0) + " part(s)"));
      table.append(tr);
    });
    nodes.push(table);
  }
  if (body.cam) nodes.push(text("p", body.cam.error ? "heat-map: " + body.cam.error : "heat-map of " + body.cam.target, "muted"));
  nodes.push(text("p", body.format.toUpperCase() + " · " + body.width + "×" + body.height + " px", "muted"));
  result.replaceChildren(...nodes);
  result.dataset.kind = pred.kind;
  result.dataset.summary = body.summary;
  result.dataset.state = "done";
}

function setup() {
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); drop.classList.remove("over");
    if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
  });
  $("file").addEventListener("change", (e) => { if (e.target.files.length) upload(e.target.files[0]); });
  $("wl-center").addEventListener("input", (e) => { state.center = parseFloat(e.target.value); draw(); });
  $("wl-width").addEventListener("input", (e) => { state.width = parseFloat(e.target.value); draw(); });
  $("wl-reset").addEventListener("click", () => {
    if (!state.result) return;
    state.center = state.result.display.window.center; state.width = state.result.display.window.width;
    $("wl-center").value = state.center; $("wl-width").value = state.width; draw();
  });
  $("show-cam").addEventListener("change", draw);
  $("show-overlay").addEventListener("change", draw);
  $("token-save").addEventListener("click", () => { sessionStorage.setItem("osteon-token", $("token").value); loadCard(); });
  loadCard();
}

setup();
