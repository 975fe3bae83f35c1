// SPDX-License-Identifier: Apache-2.0
// ocra dashboard: plain DOM, no framework, nothing fetched but this server's API. Every value
// from the journal is chain data, so it only ever reaches the page through textContent.
"use strict";

const STATUSES = ["accepted", "rejected", "planned", "pushed", "queued", "running", "completed", "failed", "superseded", "reported", "dead"];
const REFRESH_MS = 3000;
// The daemon's stages in pipeline order (src/daemon/daemon_stages.c): each keeps its colour on
// every bar and in the legend.
const STAGES = ["validate", "plan", "toolchain", "push", "sign", "allocate", "run", "complete", "report"];
const HISTORY_EVENTS = 30; /* recent events whose stage durations make a stage's usual time */
let timer = null;
let history = { at: 0, byStage: {} }; /* stage -> durations (ms) of recent events */
const gpuHistory = {}; /* "node/gpu" -> [{t, used}] since the page opened */

function stageClass(stage, i) {
  const k = STAGES.indexOf(stage);
  return "s" + ((k >= 0 ? k : i) % 10);
}

// When a value is a time: the relative text, and the absolute UTC time on hover.
function when(ms, text) {
  if (!ms) return el("span", { text: "" });
  const iso = new Date(ms).toISOString();
  return el("time", { datetime: iso, title: iso.replace("T", " ").replace("Z", " UTC") }, text != null ? text : ago(ms));
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

async function api(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.error && body.error.message) || r.status + " " + r.statusText);
  return body;
}

function ago(ms) {
  if (!ms) return "";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}

function took(ms) {
  if (ms == null) return "";
  return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(1) + " s";
}

// Where the event is: the daemon's pipeline (its outcome once reported), else the watcher's
// verdict.
function statusOf(ev) {
  const p = ev.pipeline;
  if (!p) return ev.status;
  if (p.status === "reported" && p.outcome) return p.outcome;
  if (p.state === "dead") return "dead";
  if (p.state === "queued") return "queued";
  return p.status;
}

function modelOf(ev) {
  if (ev.removed) return "(model removed)";
  const s = ev.spec || {};
  return (s.name || "") + (s.modelVersion ? " " + s.modelVersion : "");
}

// A horizontal bar: one segment per stage, its width the stage's share of the event's time.
function timeline(stages, big) {
  const bar = el("div", { class: "timeline" + (big ? " big" : ""), role: "img" });
  const done = (stages || []).filter((s) => s.startedMs);
  const total = done.reduce((a, s) => a + Math.max(1, (s.finishedMs || Date.now()) - s.startedMs), 0);
  done.forEach((s, i) => {
    const ms = Math.max(1, (s.finishedMs || Date.now()) - s.startedMs);
    const share = (100 * ms) / total;
    const seg = el("span", { class: s.state === "failed" || s.state === "dead" ? "sfail" : stageClass(s.stage, i), "data-stage": s.stage });
    seg.style.width = share.toFixed(2) + "%";
    seg.title = s.stage + ": " + took(ms) + (s.state ? " (" + s.state + ")" : "");
    if (big && share >= 8) seg.append(el("b", { text: s.stage }));
    bar.append(seg);
  });
  bar.setAttribute("aria-label", done.map((s) => s.stage + " " + took(Math.max(1, (s.finishedMs || Date.now()) - s.startedMs))).join(", ") || "no stages yet");
  return bar;
}

// The colour key of the stage bars: every stage in pipeline order, and a failed one in red.
function legend(stages) {
  const names = stages ? stages.map((s) => s.stage) : STAGES;
  const items = names.map((n, i) => el("li", { "data-stage": n }, el("i", { class: stageClass(n, i) }), n));
  items.push(el("li", { "data-stage": "failed" }, el("i", { class: "sfail" }), "failed"));
  return el("ul", { class: "legend", "aria-label": "stage colours" }, ...items);
}

function showError(e) {
  const p = document.getElementById("error");
  const live = document.getElementById("live");
  if (e) {
    p.textContent = String(e.message || e);
    p.hidden = false;
    live.classList.add("stale");
  } else {
    p.hidden = true;
    live.classList.remove("stale");
  }
}

// The route: #/ (events, ?status= filters them), #/event/ID, #/images, #/nodes, #/queue.
function route() {
  const h = location.hash || "#/";
  const m = h.match(/^#\/event\/([^?]+)/);
  if (m) return { view: "event", id: decodeURIComponent(m[1]) };
  const p = h.match(/^#\/(images|nodes|queue)\b/);
  const q = new URLSearchParams(h.includes("?") ? h.slice(h.indexOf("?") + 1) : "");
  return { view: p ? p[1] : "list", status: q.get("status") || "" };
}

async function renderList(r) {
  const status = STATUSES.includes(r.status) ? r.status : "";
  document.getElementById("status-filter").value = status;
  const q = "/api/v1/events?limit=100" + (status ? "&status=" + encodeURIComponent(status) : "");
  const data = await api(q);
  const details = await Promise.all(
    data.events.slice(0, HISTORY_EVENTS).map((ev) => api("/api/v1/events/" + encodeURIComponent(ev.event)).catch(() => ev))
  );
  if (!status) learnHistory(details);
  const tbody = document.querySelector("#events tbody");
  tbody.replaceChildren(
    ...data.events.map((ev, i) => {
      const d = details[i] || ev;
      const link = el("a", { href: "#/event/" + encodeURIComponent(ev.event), text: ev.event });
      return el("tr", { "data-event": ev.event },
        el("td", { class: "id" }, link),
        el("td", { text: modelOf(ev) }),
        el("td", {}, el("span", { class: "status " + statusOf(d), text: statusOf(d) })),
        el("td", {}, timeline(d.stages, false)),
        el("td", { class: "muted" }, when(ev.updatedMs)));
    })
  );
  document.getElementById("count").textContent = data.events.length + " event(s)" + (status ? " with status " + status : "");
  document.getElementById("list-legend").replaceChildren(legend(null));
  try {
    await renderNodesPage();
  } catch (e) {
    /* the inventory could not be read: the list of events stays */
  }
  try {
    await renderQueuePage();
  } catch (e) {
    /* no queue here (an older server): the rest stays */
  }
}

/* Every stage's durations in the recent events (their details): what "usual" means. */
function learnHistory(details) {
  const by = {};
  for (const d of details)
    for (const s of (d && d.stages) || [])
      if (s.startedMs && s.finishedMs && s.state === "done") (by[s.stage] = by[s.stage] || []).push(s.finishedMs - s.startedMs);
  history = { at: Date.now(), byStage: by };
}

async function ensureHistory() {
  if (Date.now() - history.at < 30000) return;
  const data = await api("/api/v1/events?limit=" + HISTORY_EVENTS);
  learnHistory(await Promise.all(data.events.map((ev) => api("/api/v1/events/" + encodeURIComponent(ev.event)).catch(() => null))));
}

function median(xs) {
  const v = xs.slice().sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

/* A stage's time against the same stage in recent events: "usual 1.2 s (n=7), 3.1× usual". */
function usualCell(s, id) {
  const td = el("td", { class: "muted" });
  if (!s.startedMs) return td;
  const ms = (s.finishedMs || Date.now()) - s.startedMs;
  const others = history.byStage[s.stage] || [];
  if (!others.length) return td;
  const m = Math.max(1, median(others));
  const ratio = ms / m;
  td.dataset.usual = String(Math.round(m));
  td.title = "median of " + others.length + " recent " + s.stage + " stage(s)" + (id ? ", this event's included" : "");
  td.append(took(Math.round(m)) + " (n=" + others.length + ")");
  if (others.length >= 2 && ratio >= 2) td.append(" ", el("span", { class: "slow", text: ratio.toFixed(1) + "× usual" }));
  return td;
}

async function renderNodesPage() {
  /* /api/v1/nodes is the daemon's (ocra serve has no inventory); the GPU history is the
   * journal's allocations, so it shows under both. */
  const nodes = await api("/api/v1/nodes").then((d) => d.nodes || []).catch(() => []);
  const history = await api("/api/v1/nodes/history?hours=24").catch(() => null);
  const now = Date.now();
  for (const n of nodes)
    for (const g of (n.free && n.free.gpus) || []) {
      const k = n.name + "/" + g.index;
      const h = (gpuHistory[k] = gpuHistory[k] || []);
      h.push({ t: now, used: 1000 - (g.free_milli != null ? g.free_milli : 1000) });
      if (h.length > 120) h.shift();
    }
  renderNodes(nodes, history);
}

/* One node's allocated GPUs over the window as an SVG step line (points [t_ms, gpus] from
 * /api/v1/nodes/history), scaled to its GPU count (or the highest level seen). */
function historyChart(h, from, to, gpus) {
  const W = 300, H = 40, top = Math.max(gpus || 0, ...h.points.map((p) => p[1]), 1);
  const x = (t) => Math.round((W * (t - from)) / Math.max(1, to - from));
  const y = (g) => Math.round(H - (H * g) / top);
  let d = "", prev = null;
  for (const [t, g] of h.points) {
    d += d ? " H" + x(t) + " V" + y(g) : "M" + x(t) + " " + y(g);
    prev = g;
  }
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "history");
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  svg.setAttribute("data-node", h.name);
  svg.setAttribute("data-points", String(h.points.length));
  svg.setAttribute("data-now", String(prev));
  const title = document.createElementNS(ns, "title");
  title.textContent = h.name + ": GPUs allocated over the last 24 h (now " + prev + " of " + top + "), from " + new Date(from).toISOString();
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d);
  svg.append(title, path);
  return svg;
}

async function renderQueuePage() {
  renderQueue(await api("/api/v1/queue"));
}

async function renderImages() {
  const data = await api("/api/v1/images?limit=100");
  await ensureLinks();
  const rows = data.images || [];
  document.getElementById("images-empty").hidden = rows.length > 0;
  document.querySelector("#images tbody").replaceChildren(
    ...rows.map((im) =>
      el("tr", { "data-digest": im.digest },
        el("td", { class: "id" }, el("code", { text: (im.registry ? im.registry + "/" : "") + (im.repo || "") })),
        el("td", { text: (im.tags || []).join(" ") }),
        el("td", { class: "id" }, ((h) => (h ? el("a", { href: h, target: "_blank", rel: "noopener noreferrer", class: "ext" }, el("code", { text: im.digest || "" })) : el("code", { text: im.digest || "" })))(linkTo("digest", im)), copyButton(im.digest || "")),
        el("td", { class: "id" }, im.event ? el("a", { href: "#/event/" + encodeURIComponent(im.event), text: im.event }) : ""),
        el("td", { text: im.signature ? "signed" : "unsigned" }),
        el("td", { class: "muted" }, when(im.createdMs))))
  );
}

function inSeconds(ms, now) {
  if (ms == null) return "unknown";
  const s = Math.round((ms - now) / 1000);
  if (s <= 0) return "now";
  return s < 120 ? "in " + s + " s" : s < 7200 ? "in " + Math.round(s / 60) + " min" : "in " + Math.round(s / 3600) + " h";
}

/* The scheduler queue as ocra_daemon_queue_json writes it: queued[] by position. */
function renderQueue(doc) {
  const rows = doc.queued || [];
  document.getElementById("queue-policy").textContent = doc.policy ? "(" + doc.policy + ", " + rows.length + " queued)" : "";
  document.getElementById("queue-empty").hidden = rows.length > 0;
  document.querySelector("#queue tbody").replaceChildren(
    ...rows.map((q) =>
      el("tr", { "data-event": q.event, "data-wait": q.wait },
        el("td", { text: q.position != null ? q.position : "" }),
        el("td", { class: "id" }, el("a", { href: "#/event/" + encodeURIComponent(q.event), text: q.event })),
        el("td", { class: "id", text: q.owner || "" }),
        el("td", { text: q.priority != null ? q.priority : "" }),
        el("td", { text: q.gpus != null ? q.gpus : "" }),
        el("td", { text: q.waitedS != null ? q.waitedS + " s" : "" }),
        el("td", { text: inSeconds(q.estimatedStart, doc.now) }),
        el("td", {}, el("span", { class: "status " + q.wait, text: q.wait }), " ", el("span", { class: "muted", text: q.reason || "" }))))
  );
}

/* The nodes as ocra_sched_nodes_json writes them: gpus (count), gpu_model, free.gpus[] with
 * index and free_milli, allocations[] with event and devices. */
function renderNodes(nodes, history) {
  const box = document.getElementById("nodes");
  const hist = {};
  for (const h of (history && history.nodes) || []) hist[h.name] = h;
  nodes = nodes || [];
  /* a node the journal has allocations on but the inventory does not list (ocra serve, or a
   * node since removed) still shows its history */
  for (const name of Object.keys(hist)) if (!nodes.some((n) => n.name === name)) nodes.push({ name: name, history_only: true });
  if (!nodes.length) return;
  box.replaceChildren(
    ...nodes.map((n) => {
      const gpus = el("div", { class: "gpus" });
      const history_spark = [];
      for (const g of (n.free && n.free.gpus) || []) {
        const holders = (n.allocations || []).filter((a) => (a.devices || []).includes(g.index)).map((a) => a.event);
        const fill = el("i");
        fill.style.width = Math.round(100 * (1000 - (g.free_milli != null ? g.free_milli : 1000)) / 1000) + "%";
        const cell = el("div", { class: "gpu", title: "GPU " + g.index + (holders.length ? ": " + holders.join(", ") : ": free") }, fill);
        gpus.append(cell);
        const h = gpuHistory[n.name + "/" + g.index] || [];
        if (h.length) {
          const spark = el("div", { class: "spark", "data-gpu": g.index, "data-samples": h.length, title: "GPU " + g.index + " use since this page opened (every " + REFRESH_MS / 1000 + " s), from " + new Date(h[0].t).toISOString() });
          for (const x of h) {
            const b = el("i");
            b.style.height = Math.max(1, Math.round(x.used / 10)) + "%";
            spark.append(b);
          }
          history_spark.push(spark);
        }
      }
      const charts = hist[n.name] ? [el("div", { class: "muted", text: "GPUs allocated, last 24 h" }), historyChart(hist[n.name], history.from, history.to, n.gpus)] : [];
      return el("div", { class: "node", "data-node": n.name },
        el("strong", { text: n.name }), " ",
        el("span", { class: "muted", text: n.history_only ? "(from the journal's allocations)" : (n.gpus || 0) + " × " + (n.gpu_model || "no GPU") }),
        gpus, ...history_spark, ...charts);
    })
  );
}

function copyButton(text) {
  const b = el("button", { class: "copy", type: "button", text: "copy" });
  b.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(text));
  return b;
}

/* The configured link templates (GET /api/v1/links), read once: {tx, address, digest}. */
let links = null;
async function ensureLinks() {
  if (!links) links = await api("/api/v1/links").catch(() => ({}));
}

/* A template's URL with its {name}s replaced (encoded; '/' and ':' kept for repo and host),
 * or null when there is no template or the result is not http(s). */
function linkTo(kind, vars) {
  const t = links && links[kind];
  if (!t) return null;
  const url = t.replace(/\{([a-z]+)\}/g, (m, k) => encodeURIComponent(vars[k] != null ? String(vars[k]) : "").replace(/%2F/g, "/").replace(/%3A/g, ":"));
  return /^https?:\/\//.test(url) ? url : null;
}

function lineageItem(key, value, id, href) {
  if (value == null || value === "") return null;
  const v = el("code", { text: String(value) });
  const shown = href ? el("a", { href: href, target: "_blank", rel: "noopener noreferrer", class: "ext" }, v) : v;
  return el("li", { "data-k": id || key }, el("span", { class: "k", text: key }), shown, copyButton(String(value)));
}

/* Why the event stopped and the way to start it again: the pipeline's last error (its root
 * cause first), else the failed stage's, else the watcher's reason; a retry button where the
 * daemon retries (failed or dead-lettered events). */
function renderBanner(ev) {
  const p = ev.pipeline || {};
  const failedStage = (ev.stages || []).filter((s) => s.state === "dead" || s.state === "retry" || s.error).pop();
  const st = statusOf(ev);
  const bad = ["failed", "dead", "rejected", "timeout", "orphaned"].includes(st) || p.state === "dead";
  const cause = p.error || (failedStage && failedStage.error) || ev.reason || "";
  const box = document.getElementById("ev-banner");
  if (!bad || !cause) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  if (box.dataset.event === ev.event && box.dataset.cause === cause && !box.hidden) return; /* keep the token field */
  box.dataset.event = ev.event;
  box.dataset.cause = cause;
  const kids = [
    el("strong", { text: (p.state === "dead" ? "dead-lettered" : st) + (failedStage ? " at " + failedStage.stage : p.stage ? " at " + p.stage : "") + ": " }),
    el("span", { class: "cause", text: cause }),
  ];
  if (p.state === "dead" || p.status === "failed") {
    const token = el("input", { type: "password", id: "token", placeholder: "API token", autocomplete: "off", "aria-label": "API token" });
    token.value = sessionStorage.getItem("ocra.token") || "";
    const btn = el("button", { type: "button", id: "retry", text: "retry" });
    const out = el("span", { id: "retry-result", class: "muted" });
    btn.addEventListener("click", () => retry(ev.event, token.value, out));
    kids.push(el("div", { class: "actions" }, token, btn, out));
  }
  box.replaceChildren(...kids);
  box.hidden = false;
}

/* POST .../retry with the bearer token (kept for this tab only). */
async function retry(id, token, out) {
  out.textContent = "…";
  if (token) sessionStorage.setItem("ocra.token", token);
  try {
    const r = await fetch("/api/v1/events/" + encodeURIComponent(id) + "/retry", {
      method: "POST",
      headers: Object.assign({ Accept: "application/json" }, token ? { Authorization: "Bearer " + token } : {}),
    });
    const body = await r.json().catch(() => ({}));
    out.textContent = r.ok ? "retrying: the daemon's workers are woken" : (body.error && body.error.message) || r.status + " " + r.statusText;
    out.className = r.ok ? "ok" : "error";
  } catch (e) {
    out.textContent = String(e.message || e);
    out.className = "error";
  }
}

async function renderEvent(id) {
  const ev = await api("/api/v1/events/" + encodeURIComponent(id));
  document.getElementById("ev-title").textContent = modelOf(ev) || ev.event;
  const st = document.getElementById("ev-status");
  st.textContent = statusOf(ev);
  st.className = "status " + statusOf(ev);
  document.getElementById("ev-reason").textContent = ev.reason || "";
  renderBanner(ev);
  await ensureHistory().catch(() => {});
  const img = ev.image || {};
  const alloc = ev.allocation || {};
  const run = ev.run || {};
  const rep = ev.report || {};
  await ensureLinks();
  document.getElementById("lineage").replaceChildren(
    ...[
      lineageItem("event", ev.event, "event"),
      lineageItem("chain tx", ev.txHash, "tx", linkTo("tx", { tx: ev.txHash, chain: ev.chain })),
      lineageItem("block", ev.block, "block"),
      lineageItem("signer", ev.signer, "signer", linkTo("address", { address: ev.signer, chain: ev.chain })),
      lineageItem("spec", modelOf(ev), "spec"),
      lineageItem("image digest", img.digest, "digest", linkTo("digest", { digest: img.digest, repo: img.repo, registry: img.registry })),
      lineageItem("tags", (img.tags || []).join(" "), "tags"),
      lineageItem("node", alloc.node, "node"),
      lineageItem("GPUs", alloc.gpus ? alloc.gpus.join(", ") : null, "gpus"),
      lineageItem("run", run.state ? run.state + (run.exitCode != null ? " (exit " + run.exitCode + ")" : "") : null, "run"),
      lineageItem("frontend", ev.frontend, "frontend"),
      lineageItem("report tx", rep.tx, "report", linkTo("tx", { tx: rep.tx, chain: rep.chain || ev.chain })),
    ].filter(Boolean)
  );
  document.getElementById("ev-timeline").replaceChildren(timeline(ev.stages, true), legend(ev.stages && ev.stages.length ? ev.stages : null));
  document.querySelector("#stages tbody").replaceChildren(
    ...(ev.stages || []).map((s) =>
      el("tr", {},
        el("td", { text: s.stage }),
        el("td", {}, el("span", { class: "status " + s.state, text: s.state })),
        el("td", { text: s.attempts != null ? s.attempts : "" }),
        el("td", { class: "muted" }, when(s.startedMs)),
        el("td", { text: s.startedMs ? took((s.finishedMs || Date.now()) - s.startedMs) : "" }),
        usualCell(s, ev.event),
        el("td", { class: "muted", text: s.error || "" })))
  );
  const runs = ev.runs || [];
  const last = runs.length ? runs[runs.length - 1] : null;
  const tail = last && last.result && last.result.logTail;
  document.getElementById("ev-log-h").hidden = !tail;
  const log = document.getElementById("ev-log");
  log.hidden = !tail;
  log.textContent = tail || "";
  if (tail) log.dataset.run = last.id || "";
  document.getElementById("ev-spec").textContent = JSON.stringify(ev.spec, null, 2);
}

/* The sections each view shows: the events list keeps the nodes and the queue below it. */
const VIEWS = {
  list: ["list-view", "nodes-view", "queue-view"],
  event: ["event-view"],
  images: ["images-view"],
  nodes: ["nodes-view"],
  queue: ["queue-view"],
};

async function refresh() {
  const r = route();
  for (const id of ["list-view", "event-view", "images-view", "nodes-view", "queue-view"])
    document.getElementById(id).hidden = !VIEWS[r.view].includes(id);
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("on", a.dataset.view === r.view);
  try {
    if (r.view === "event") await renderEvent(r.id);
    else if (r.view === "images") await renderImages();
    else if (r.view === "nodes") await renderNodesPage();
    else if (r.view === "queue") await renderQueuePage();
    else await renderList(r);
    showError(null);
    document.body.dataset.loaded = "1";
  } catch (e) {
    showError(e);
  }
  clearTimeout(timer);
  timer = setTimeout(refresh, REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  const sel = document.getElementById("status-filter");
  for (const s of STATUSES) sel.append(el("option", { value: s, text: s }));
  /* the filter lives in the URL: a link or a reload shows the same list */
  sel.addEventListener("change", () => {
    location.hash = sel.value ? "#/?status=" + encodeURIComponent(sel.value) : "#/";
  });
  window.addEventListener("hashchange", refresh);
  refresh();
});
