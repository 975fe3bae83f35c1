// SPDX-License-Identifier: Apache-2.0
// ocra dashboard: plain DOM, no framework, nothing fetched but this server's API. Every value
// from the journal is chain data, so it only ever reaches the page through textContent.
"use strict";

const STATUSES = ["accepted", "rejected", "planned", "pushed", "queued", "running", "completed", "failed", "superseded", "reported", "dead"];
const REFRESH_MS = 3000;
let timer = null;

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
    const seg = el("span", { class: s.state === "failed" || s.state === "dead" ? "sfail" : "s" + (i % 10) });
    seg.style.width = ((100 * ms) / total).toFixed(2) + "%";
    seg.title = s.stage + ": " + took(ms) + (s.state ? " (" + s.state + ")" : "");
    bar.append(seg);
  });
  bar.setAttribute("aria-label", done.map((s) => s.stage).join(", ") || "no stages yet");
  return bar;
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

async function renderList() {
  const status = document.getElementById("status-filter").value;
  const q = "/api/v1/events?limit=100" + (status ? "&status=" + encodeURIComponent(status) : "");
  const data = await api(q);
  const details = await Promise.all(
    data.events.slice(0, 30).map((ev) => api("/api/v1/events/" + encodeURIComponent(ev.event)).catch(() => ev))
  );
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
        el("td", { class: "muted", text: ago(ev.updatedMs) }));
    })
  );
  document.getElementById("count").textContent = data.events.length + " event(s)";
  try {
    const nodes = await api("/api/v1/nodes");
    renderNodes(nodes.nodes);
  } catch (e) {
    /* the inventory could not be read: the list of events stays */
  }
  try {
    renderQueue(await api("/api/v1/queue"));
  } catch (e) {
    /* no queue here (an older server): the rest stays */
  }
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
function renderNodes(nodes) {
  const box = document.getElementById("nodes");
  if (!nodes || !nodes.length) return;
  box.replaceChildren(
    ...nodes.map((n) => {
      const gpus = el("div", { class: "gpus" });
      for (const g of (n.free && n.free.gpus) || []) {
        const holders = (n.allocations || []).filter((a) => (a.devices || []).includes(g.index)).map((a) => a.event);
        const fill = el("i");
        fill.style.width = Math.round(100 * (1000 - (g.free_milli != null ? g.free_milli : 1000)) / 1000) + "%";
        const cell = el("div", { class: "gpu", title: "GPU " + g.index + (holders.length ? ": " + holders.join(", ") : ": free") }, fill);
        gpus.append(cell);
      }
      return el("div", { class: "node", "data-node": n.name },
        el("strong", { text: n.name }), " ",
        el("span", { class: "muted", text: (n.gpus || 0) + " × " + (n.gpu_model || "no GPU") }),
        gpus);
    })
  );
}

function copyButton(text) {
  const b = el("button", { class: "copy", type: "button", text: "copy" });
  b.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(text));
  return b;
}

function lineageItem(key, value, id) {
  if (value == null || value === "") return null;
  return el("li", { "data-k": id || key }, el("span", { class: "k", text: key }), el("code", { text: String(value) }), copyButton(String(value)));
}

async function renderEvent(id) {
  const ev = await api("/api/v1/events/" + encodeURIComponent(id));
  document.getElementById("ev-title").textContent = modelOf(ev) || ev.event;
  const st = document.getElementById("ev-status");
  st.textContent = statusOf(ev);
  st.className = "status " + statusOf(ev);
  document.getElementById("ev-reason").textContent = ev.reason || "";
  const img = ev.image || {};
  const alloc = ev.allocation || {};
  const run = ev.run || {};
  const rep = ev.report || {};
  document.getElementById("lineage").replaceChildren(
    ...[
      lineageItem("event", ev.event, "event"),
      lineageItem("chain tx", ev.txHash, "tx"),
      lineageItem("block", ev.block, "block"),
      lineageItem("signer", ev.signer, "signer"),
      lineageItem("spec", modelOf(ev), "spec"),
      lineageItem("image digest", img.digest, "digest"),
      lineageItem("tags", (img.tags || []).join(" "), "tags"),
      lineageItem("node", alloc.node, "node"),
      lineageItem("GPUs", alloc.gpus ? alloc.gpus.join(", ") : null, "gpus"),
      lineageItem("run", run.state ? run.state + (run.exitCode != null ? " (exit " + run.exitCode + ")" : "") : null, "run"),
      lineageItem("report tx", rep.tx, "report"),
    ].filter(Boolean)
  );
  document.getElementById("ev-timeline").replaceChildren(timeline(ev.stages, true));
  document.querySelector("#stages tbody").replaceChildren(
    ...(ev.stages || []).map((s) =>
      el("tr", {},
        el("td", { text: s.stage }),
        el("td", {}, el("span", { class: "status " + s.state, text: s.state })),
        el("td", { text: s.attempts != null ? s.attempts : "" }),
        el("td", { class: "muted", text: ago(s.startedMs) }),
        el("td", { text: s.startedMs ? took((s.finishedMs || Date.now()) - s.startedMs) : "" }),
        el("td", { class: "muted", text: s.error || "" })))
  );
  document.getElementById("ev-spec").textContent = JSON.stringify(ev.spec, null, 2);
}

async function refresh() {
  const m = location.hash.match(/^#\/event\/(.+)$/);
  document.getElementById("list-view").hidden = !!m;
  document.getElementById("event-view").hidden = !m;
  try {
    if (m) await renderEvent(decodeURIComponent(m[1]));
    else await renderList();
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
  sel.addEventListener("change", refresh);
  window.addEventListener("hashchange", refresh);
  refresh();
});
