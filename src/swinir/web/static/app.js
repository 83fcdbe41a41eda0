// swinir studio: the page. Plain JavaScript, no build step, nothing loaded from elsewhere.
//
// Files become items in the queue list. Each item is uploaded (two at a time, so that the browser's
// few connections per host stay free for polling), becomes a job on the server, and is polled with
// one GET /api/jobs?ids=... for all active items. A finished item can be compared in the viewer.
"use strict";

const $ = (id) => document.getElementById(id);
const STORE = "swinir-studio-settings";
const POLL_MS = 300;
const UPLOADS_AT_ONCE = 2;
const BICUBIC_MAX_PIXELS = 16e6;  // larger comparisons fall back to the browser's smoothing

const app = { models: [], limits: {}, items: [], selected: null, polling: false, uploading: 0, counter: 0 };

// ---------------------------------------------------------------------------------------------
// Settings (remembered in localStorage)
// ---------------------------------------------------------------------------------------------

function savedSettings() {
  try { return JSON.parse(localStorage.getItem(STORE)) || {}; } catch { return {}; }
}

function saveSettings() {
  const keys = ["model", "noise", "scale", "format", "quality", "alpha", "tta", "interp"];
  const settings = Object.fromEntries(keys.map((k) => [k, $(k).value]));
  localStorage.setItem(STORE, JSON.stringify(settings));
}

function setIfOption(select, value) {
  if (value !== undefined && [...select.options].some((o) => o.value === value)) select.value = value;
}

function currentModel() {
  return app.models.find((m) => m.name === $("model").value) || app.models[0];
}

function refreshModelControls(saved) {
  const model = currentModel();
  const noise = $("noise");
  const words = { 0: "0 (none)", 1: "1 (light)", 2: "2 (medium)", 3: "3 (heavy)" };
  noise.replaceChildren(new Option("auto (from JPEG)", "auto"),
    ...model.noise_levels.map((n) => new Option(words[n] || String(n), String(n))));
  $("noise-label").hidden = model.noise_levels.length === 0;
  const scale = $("scale");
  const choices = [1, 1.5, 2, 3, 4, 6, 8].filter((s) => s <= app.limits.max_outscale && s !== model.scale);
  scale.replaceChildren(new Option(`×${model.scale} (model)`, "model"),
    ...choices.map((s) => new Option(`×${s}`, String(s))));
  if (saved) { setIfOption(noise, saved.noise); setIfOption(scale, saved.scale); }
  $("model-info").textContent = `${model.name}: ${model.description}. Up to ` +
    `${(app.limits.max_upload_bytes / 1048576).toFixed(0)} MB and ${(app.limits.max_pixels / 1e6).toFixed(0)} megapixels per image.`;
}

function refreshFormatControls() {
  $("quality-label").hidden = $("format").value === "png";
}

function jobOptions() {
  const model = currentModel();
  const options = { model: model.name, format: $("format").value, alpha: $("alpha").value };
  if (model.noise_levels.length) options.noise = $("noise").value;
  if ($("scale").value !== "model") options.outscale = $("scale").value;
  if (options.format !== "png") options.quality = $("quality").value;
  if ($("tta").value) options.tta = "true";
  return options;
}

// ---------------------------------------------------------------------------------------------
// Queue items
// ---------------------------------------------------------------------------------------------

function addFiles(files) {
  for (const file of files) {
    const name = file.name || `pasted-${++app.counter}.png`;
    const item = { key: ++app.counter, file, name, url: URL.createObjectURL(file), job: null, jobId: null,
      state: "pending", progress: 0, error: null, note: "", xhr: null };
    item.el = renderItem(item);
    app.items.push(item);
    $("queue").append(item.el);
  }
  pumpUploads();
  refreshList();
}

function renderItem(item) {
  const el = $("item-template").content.firstElementChild.cloneNode(true);
  el.dataset.key = item.key;
  const thumb = el.querySelector(".thumb");
  thumb.onerror = () => { thumb.style.visibility = "hidden"; };  // not an image: the error says so
  thumb.src = item.url;
  el.querySelector(".name").textContent = item.name;
  el.querySelector(".name").title = item.name;
  el.querySelector(".cancel").onclick = (e) => { e.stopPropagation(); cancelItem(item); };
  el.querySelector(".retry").onclick = (e) => { e.stopPropagation(); retryItem(item); };
  el.querySelector(".remove").onclick = (e) => { e.stopPropagation(); removeItem(item); };
  el.querySelector(".download").onclick = (e) => e.stopPropagation();
  el.onclick = () => { if (item.state === "done") select(item); };
  return el;
}

const ACTIVE = ["pending", "uploading", "queued", "running"];

function updateItem(item) {
  const el = item.el;
  el.className = `item ${item.state}` + (app.selected === item ? " selected" : "");
  el.dataset.state = item.state;
  el.querySelector(".fill").style.width = `${Math.round(item.progress * 100)}%`;
  el.querySelector(".bar").title = `${Math.round(item.progress * 100)}%`;
  let text = { pending: "waiting to upload", uploading: "uploading", queued: "queued", running: "upscaling",
    done: "done", failed: "failed", cancelled: "cancelled" }[item.state];
  if (item.state === "uploading" || item.state === "running") text += ` ${Math.round(item.progress * 100)}%`;
  if (item.state === "queued" && item.queuePosition) text += ` (#${item.queuePosition})`;
  if (item.note) text += ` · ${item.note}`;
  el.querySelector(".state").textContent = text;
  const job = item.job;
  el.querySelector(".meta").textContent = job
    ? `${job.input_size.join("×")} → ${job.output_size.join("×")}` + (job.result_bytes ? ` · ${formatBytes(job.result_bytes)}` : "")
    : formatBytes(item.file.size);
  el.querySelector(".cancel").hidden = !ACTIVE.includes(item.state);
  el.querySelector(".retry").hidden = !["failed", "cancelled"].includes(item.state);
  el.querySelector(".remove").hidden = ACTIVE.includes(item.state);
  const download = el.querySelector(".download");
  download.hidden = item.state !== "done";
  if (item.state === "done") {
    download.href = `/api/jobs/${item.jobId}/result`;
    download.download = job.download_name;
  }
  const error = el.querySelector(".error");
  error.hidden = !item.error;
  error.textContent = item.error || "";
}

function refreshList() {
  const counts = {};
  for (const item of app.items) counts[item.state] = (counts[item.state] || 0) + 1;
  const parts = Object.entries(counts).map(([k, v]) => `${v} ${k}`);
  $("queue-count").textContent = app.items.length ? parts.join(", ") : "No images yet";
  const done = app.items.filter((i) => i.state === "done");
  $("zip").hidden = done.length === 0;
  $("zip").href = `/api/results.zip?ids=${done.map((i) => i.jobId).join(",")}`;
  $("clear").hidden = !app.items.some((i) => !ACTIVE.includes(i.state));
  for (const item of app.items) updateItem(item);
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1048576).toFixed(1)} MB`;
}

// ---------------------------------------------------------------------------------------------
// Uploading and polling
// ---------------------------------------------------------------------------------------------

function pumpUploads() {
  while (app.uploading < UPLOADS_AT_ONCE) {
    const item = app.items.find((i) => i.state === "pending" && !i.waitUntil);
    if (!item) return;
    upload(item);
  }
}

function upload(item) {
  const form = new FormData();
  form.append("file", item.file, item.name);
  for (const [key, value] of Object.entries(item.options || (item.options = jobOptions()))) form.append(key, value);
  const xhr = new XMLHttpRequest();
  item.xhr = xhr;
  item.state = "uploading";
  item.progress = 0;
  app.uploading++;
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) { item.progress = e.loaded / e.total; updateItem(item); }
  };
  const finish = () => { app.uploading--; item.xhr = null; pumpUploads(); refreshList(); };
  xhr.onload = () => {
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch { /* not JSON: reported below */ }
    if (xhr.status === 202 && body) {
      item.job = body; item.jobId = body.id; item.state = body.state; item.progress = 0; item.note = "";
      poll();
    } else if (xhr.status === 429 || xhr.status === 503) {
      // The server is busy: keep the file and try again; nothing is dropped.
      const wait = 1000 * (Number(xhr.getResponseHeader("Retry-After")) || 3);
      item.state = "pending"; item.progress = 0; item.note = "server busy, will retry";
      item.waitUntil = setTimeout(() => { item.waitUntil = null; pumpUploads(); }, wait);
    } else {
      item.state = "failed";
      item.error = (body && body.error) || `upload failed (HTTP ${xhr.status})`;
    }
    finish();
  };
  xhr.onerror = () => { item.state = "failed"; item.error = "upload failed: the server could not be reached"; finish(); };
  xhr.onabort = () => { item.state = "cancelled"; finish(); };
  xhr.open("POST", "/api/jobs");
  xhr.send(form);
  updateItem(item);
}

async function poll() {
  if (app.polling) return;
  app.polling = true;
  try {
    for (;;) {
      const active = app.items.filter((i) => i.jobId && ["queued", "running"].includes(i.state));
      if (!active.length) break;
      let jobs = null;
      try {
        const res = await fetch(`/api/jobs?ids=${active.map((i) => i.jobId).join(",")}`, { cache: "no-store" });
        if (res.ok) jobs = (await res.json()).jobs;
      } catch { /* the server is restarting or unreachable; try again */ }
      if (jobs) {
        const byId = new Map(jobs.map((j) => [j.id, j]));
        let position = 0;
        for (const item of active) {
          const job = byId.get(item.jobId);
          if (!job) { item.state = "failed"; item.error = "the server no longer has this job (restarted?)"; continue; }
          item.job = job; item.state = job.state; item.progress = job.progress;
          item.error = job.error;
          item.note = job.cancel_requested ? "cancelling" : "";
          item.queuePosition = job.state === "queued" ? ++position : 0;
          if (job.state === "done" && !app.selected) select(item);
        }
        refreshList();
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    app.polling = false;
  }
}

async function cancelItem(item) {
  if (item.state === "pending") {
    clearTimeout(item.waitUntil); item.waitUntil = null;
    item.state = "cancelled"; item.note = ""; refreshList(); return;
  }
  if (item.state === "uploading" && item.xhr) { item.xhr.abort(); return; }
  if (!item.jobId) return;
  const res = await fetch(`/api/jobs/${item.jobId}`, { method: "DELETE" });
  if (res.ok) {
    const job = await res.json();
    item.job = job; item.state = job.state; item.note = job.cancel_requested ? "cancelling" : "";
  }
  refreshList();
  poll();
}

function retryItem(item) {
  Object.assign(item, { state: "pending", jobId: null, job: null, error: null, progress: 0, note: "", options: null });
  if (app.selected === item) clearViewer();
  pumpUploads();
  refreshList();
}

function removeItem(item) {
  if (item.jobId) fetch(`/api/jobs/${item.jobId}`, { method: "DELETE" }).catch(() => {});
  app.items = app.items.filter((i) => i !== item);
  item.el.remove();
  URL.revokeObjectURL(item.url);
  if (app.selected === item) clearViewer();
  refreshList();
}

// ---------------------------------------------------------------------------------------------
// Viewer: before/after with a divider, zoom and pan
// ---------------------------------------------------------------------------------------------

const view = { W: 0, H: 0, inW: 0, inH: 0, z: 1, tx: 0, ty: 0, split: 0.5, bicubic: new Map() };

function select(item) {
  app.selected = item;
  const after = $("after-img");
  const before = $("before-img");
  $("stage").classList.remove("empty");
  $("empty").hidden = true;
  $("view-title").textContent = `${item.name} · ${item.job.model} ×${item.job.outscale}${item.job.tta ? " · 8 passes" : ""}`;
  after.onload = () => {
    view.W = after.naturalWidth; view.H = after.naturalHeight;
    for (const el of [after, before, $("before-canvas")]) { el.style.width = `${view.W}px`; el.style.height = `${view.H}px`; }
    $("layers").style.width = `${view.W}px`; $("layers").style.height = `${view.H}px`;
    before.onload = () => { view.inW = before.naturalWidth; view.inH = before.naturalHeight; applyInterp(); fit(); };
    before.src = item.url;
    if (before.complete && before.naturalWidth) before.onload();
  };
  after.src = `/api/jobs/${item.jobId}/result`;
  refreshList();
}

function clearViewer() {
  app.selected = null;
  $("stage").classList.add("empty");
  $("empty").hidden = false;
  $("after-img").removeAttribute("src");
  $("before-img").removeAttribute("src");
  $("view-title").textContent = "Pick a finished image to compare";
  $("zoom-label").textContent = "–";
}

function applyInterp() {
  const item = app.selected;
  if (!item) return;
  const canvas = $("before-canvas");
  const img = $("before-img");
  let bicubic = $("interp").value === "bicubic";
  if (bicubic && view.W * view.H > BICUBIC_MAX_PIXELS) bicubic = false;  // browser smoothing instead
  if (bicubic) {
    const key = `${item.key}:${view.W}x${view.H}`;
    if (!view.bicubic.has(key)) view.bicubic.set(key, bicubicResize(img, view.W, view.H));
    const data = view.bicubic.get(key);
    canvas.width = view.W; canvas.height = view.H;
    canvas.getContext("2d").putImageData(data, 0, 0);
  }
  canvas.hidden = !bicubic;
  img.hidden = bicubic;
  img.dataset.interp = bicubic ? "" : $("interp").value;
  apply();
}

// Keys' cubic convolution (a = -0.5), separable, on premultiplied RGBA: the classic "bicubic".
function cubic(x) {
  x = Math.abs(x);
  if (x <= 1) return 1.5 * x * x * x - 2.5 * x * x + 1;
  if (x < 2) return -0.5 * x * x * x + 2.5 * x * x - 4 * x + 2;
  return 0;
}

function weights(inSize, outSize) {
  const idx = new Int32Array(outSize * 4);
  const w = new Float32Array(outSize * 4);
  const ratio = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    const src = (o + 0.5) * ratio - 0.5;
    const base = Math.floor(src);
    let sum = 0;
    for (let k = 0; k < 4; k++) {
      const i = base - 1 + k;
      idx[o * 4 + k] = Math.min(inSize - 1, Math.max(0, i));
      sum += (w[o * 4 + k] = cubic(src - i));
    }
    for (let k = 0; k < 4; k++) w[o * 4 + k] /= sum;
  }
  return { idx, w };
}

function bicubicResize(img, W, H) {
  const w = img.naturalWidth, h = img.naturalHeight;
  const c = document.createElement("canvas");
  c.width = w; c.height = h;
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const src = ctx.getImageData(0, 0, w, h).data;
  const pre = new Float32Array(w * h * 4);
  for (let p = 0; p < w * h; p++) {
    const a = src[p * 4 + 3] / 255;
    pre[p * 4] = src[p * 4] * a; pre[p * 4 + 1] = src[p * 4 + 1] * a; pre[p * 4 + 2] = src[p * 4 + 2] * a;
    pre[p * 4 + 3] = src[p * 4 + 3];
  }
  const X = weights(w, W), Y = weights(h, H);
  const mid = new Float32Array(W * h * 4);  // horizontal pass
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 4;
      for (let k = 0; k < 4; k++) {
        const s = (y * w + X.idx[x * 4 + k]) * 4, wt = X.w[x * 4 + k];
        mid[o] += pre[s] * wt; mid[o + 1] += pre[s + 1] * wt; mid[o + 2] += pre[s + 2] * wt; mid[o + 3] += pre[s + 3] * wt;
      }
    }
  }
  const out = new ImageData(W, H);
  const d = out.data;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      let r = 0, g = 0, b = 0, a = 0;
      for (let k = 0; k < 4; k++) {
        const s = (Y.idx[y * 4 + k] * W + x) * 4, wt = Y.w[y * 4 + k];
        r += mid[s] * wt; g += mid[s + 1] * wt; b += mid[s + 2] * wt; a += mid[s + 3] * wt;
      }
      const o = (y * W + x) * 4, alpha = Math.min(255, Math.max(0, a)), f = alpha > 0 ? 255 / alpha : 0;
      d[o] = r * f; d[o + 1] = g * f; d[o + 2] = b * f; d[o + 3] = alpha;
    }
  }
  return out;
}

function stageSize() {
  const r = $("stage").getBoundingClientRect();
  return { w: r.width, h: r.height };
}

function fit() {
  if (!view.W) return;
  const { w, h } = stageSize();
  view.z = Math.min(1, w / view.W, h / view.H);
  view.tx = (w - view.W * view.z) / 2;
  view.ty = (h - view.H * view.z) / 2;
  apply();
}

function zoomTo(z, cx, cy) {
  if (!view.W) return;
  const { w, h } = stageSize();
  if (cx === undefined) { cx = w / 2; cy = h / 2; }
  z = Math.min(32, Math.max(0.02, z));
  view.tx = cx - (cx - view.tx) * (z / view.z);
  view.ty = cy - (cy - view.ty) * (z / view.z);
  view.z = z;
  apply();
}

function apply() {
  if (!view.W) return;
  const { w } = stageSize();
  $("layers").style.transform = `translate(${view.tx}px, ${view.ty}px) scale(${view.z})`;
  // Smooth when shrinking, pixelated at 1:1 and above, so pixels can be peeped without blur.
  const sharp = view.z >= 1 ? "pixelated" : "auto";
  $("after-img").style.imageRendering = sharp;
  $("before-canvas").style.imageRendering = sharp;
  const img = $("before-img");
  const magnified = view.z * (view.W / (view.inW || view.W)) >= 1;
  img.style.imageRendering = img.dataset.interp === "nearest" && magnified ? "pixelated" : sharp;
  const x = view.split * w;
  $("split").style.left = `${x}px`;
  const pct = Math.min(100, Math.max(0, ((x - view.tx) / view.z / view.W) * 100));
  for (const el of [img, $("before-canvas")]) el.style.clipPath = `inset(0 ${100 - pct}% 0 0)`;
  $("after-img").style.clipPath = `inset(0 0 0 ${pct}%)`;
  $("split").setAttribute("aria-valuenow", String(Math.round(view.split * 100)));
  $("zoom-label").textContent = `${Math.round(view.z * 100)}%`;
}

function setupViewer() {
  const stage = $("stage");
  const split = $("split");
  let drag = null;
  split.addEventListener("pointerdown", (e) => {
    e.stopPropagation(); split.setPointerCapture(e.pointerId); drag = { kind: "split" };
  });
  stage.addEventListener("pointerdown", (e) => {
    if (!view.W || e.button !== 0) return;
    stage.setPointerCapture(e.pointerId);
    drag = { kind: "pan", x: e.clientX, y: e.clientY, tx: view.tx, ty: view.ty };
    stage.classList.add("panning");
  });
  const move = (e) => {
    if (!drag) return;
    const r = stage.getBoundingClientRect();
    if (drag.kind === "split") {
      view.split = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
    } else {
      view.tx = drag.tx + e.clientX - drag.x; view.ty = drag.ty + e.clientY - drag.y;
    }
    apply();
  };
  const end = () => { drag = null; stage.classList.remove("panning"); };
  for (const el of [stage, split]) {
    el.addEventListener("pointermove", move);
    el.addEventListener("pointerup", end);
    el.addEventListener("pointercancel", end);
  }
  stage.addEventListener("wheel", (e) => {
    if (!view.W) return;
    e.preventDefault();
    const r = stage.getBoundingClientRect();
    zoomTo(view.z * Math.pow(1.0015, -e.deltaY), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  split.addEventListener("keydown", (e) => {
    const step = { ArrowLeft: -0.02, ArrowRight: 0.02 }[e.key];
    if (step) { view.split = Math.min(1, Math.max(0, view.split + step)); apply(); e.preventDefault(); }
  });
  $("zoom-in").onclick = () => zoomTo(view.z * 1.5);
  $("zoom-out").onclick = () => zoomTo(view.z / 1.5);
  $("zoom-1").onclick = () => zoomTo(1);
  $("zoom-fit").onclick = fit;
  $("interp").onchange = () => { saveSettings(); applyInterp(); };
  window.addEventListener("resize", apply);
}

// ---------------------------------------------------------------------------------------------
// Adding files: drop, pick, paste
// ---------------------------------------------------------------------------------------------

function setupInputs() {
  const drop = $("drop");
  const input = $("files");
  input.onchange = () => { addFiles([...input.files]); input.value = ""; };  // re-picking the same file works
  drop.onclick = (e) => { if (e.target === drop) input.click(); };
  drop.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } };
  let depth = 0;
  document.addEventListener("dragenter", (e) => { e.preventDefault(); depth++; document.body.classList.add("dragging"); });
  document.addEventListener("dragleave", () => { if (--depth <= 0) { depth = 0; document.body.classList.remove("dragging"); } });
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    e.preventDefault(); depth = 0; document.body.classList.remove("dragging");
    if (e.dataTransfer && e.dataTransfer.files.length) addFiles([...e.dataTransfer.files]);
  });
  document.addEventListener("paste", (e) => {
    const files = [...(e.clipboardData ? e.clipboardData.files : [])];
    if (files.length) { e.preventDefault(); addFiles(files); }
  });
  $("clear").onclick = () => { for (const item of app.items.filter((i) => !ACTIVE.includes(i.state))) removeItem(item); };
}

async function init() {
  const url = new URL(location.href);
  if (url.searchParams.has("token")) {  // the server set a cookie; keep the secret out of the address bar
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search);
  }
  let info;
  try {
    const res = await fetch("/api/models");
    info = await res.json();
    if (!res.ok) throw new Error(info.error || `HTTP ${res.status}`);
  } catch (err) {
    $("model-info").textContent = `Cannot reach the server: ${err.message}`;
    return;
  }
  app.models = info.models;
  app.limits = info.limits;
  const saved = savedSettings();
  $("model").replaceChildren(...app.models.map((m) => new Option(`${m.name} (×${m.scale})`, m.name)));
  $("format").replaceChildren(...info.formats.map((f) => new Option(f.toUpperCase(), f)));
  setIfOption($("model"), saved.model);
  setIfOption($("format"), saved.format);
  setIfOption($("alpha"), saved.alpha);
  setIfOption($("tta"), saved.tta);
  setIfOption($("interp"), saved.interp);
  if (saved.quality) $("quality").value = saved.quality;
  refreshModelControls(saved);
  refreshFormatControls();
  $("model").onchange = () => { refreshModelControls(null); saveSettings(); };
  $("format").onchange = () => { refreshFormatControls(); saveSettings(); };
  for (const id of ["noise", "scale", "quality", "alpha", "tta"]) $(id).onchange = saveSettings;
  setupInputs();
  setupViewer();
  clearViewer();
  document.body.dataset.ready = "1";
}

init();
