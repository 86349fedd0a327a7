// veil review page: plain JavaScript, no build step, nothing loaded from outside.
// Every request carries the session token; the server refuses anything without it.
"use strict";

const TOKEN = new URLSearchParams(location.search).get("t") || "";
const ROW = 44;
const $ = (id) => document.getElementById(id);

const S = {
  plan: null,
  tracks: [],
  byId: new Map(),
  frames: 1,
  rate: 25,
  frame: 0,          // frame asked for
  shownFrame: -1,    // frame whose picture is on screen
  view: "original",
  selected: new Set(),
  active: null,      // manual track whose keyframes are being edited
  people: [],        // one entry per person: {key, person, tracks} (tracks sharing a plan `person`)
  personOf: new Map(), // track id -> its entry in people
  filtered: [],      // the people the list shows
  loading: false,
  pending: null,
  playing: false,
  wave: null,
  renderPoll: null,
  lastError: null,
  heard: {},         // proposal "start-end" -> the words read for it (this page only, never saved)
};
window.veilState = S;

function url(path, params) {
  const q = new URLSearchParams(params || {});
  q.set("t", TOKEN);
  return `${path}?${q.toString()}`;
}

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const res = await fetch(url(path), opts);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const msg = (data && data.detail) || `${res.status} ${res.statusText}`;
    const err = new Error(typeof msg === "string" ? msg : JSON.stringify(msg));
    err.status = res.status;
    throw err;
  }
  return data;
}

function say(text, ok) {
  const el = $("message");
  el.textContent = text || "";
  el.style.color = ok ? "#2f855a" : "#8a1c1c";
}

function reviewer() {
  return $("reviewer").value.trim() || null;
}

// ------------------------------------------------------------------ plan geometry (as plan.py)

function q1(v) { return Math.round(v * 10) / 10; }

function boxAt(track, frame) {
  const b = track.boxes;
  if (frame < b[0].frame || frame > b[b.length - 1].frame) return null;
  let lo = 0, hi = b.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (b[mid].frame < frame) lo = mid + 1; else hi = mid;
  }
  if (b[lo].frame === frame) return { box: b[lo].box, stored: b[lo] };
  const a = b[lo - 1], c = b[lo];
  const t = (frame - a.frame) / (c.frame - a.frame);
  return { box: a.box.map((v, i) => q1(v + (c.box[i] - v) * t)), stored: null };
}

function wholeFrame(frame) {
  return S.plan.frame_ranges.some((r) => r.start <= frame && frame <= r.end);
}

// ------------------------------------------------------------------ people

// The tracks of one person (face, head and body boxes the scan linked: the plan's `person`)
// are one entry: one row, one click in the picture, one selection. A track without a person
// is its own entry.
function groupPeople() {
  const byKey = new Map();
  for (const t of S.tracks) {
    const key = t.person === undefined || t.person === null ? `t${t.id}` : `p${t.person}`;
    if (!byKey.has(key)) byKey.set(key, { key, person: t.person ?? null, tracks: [] });
    byKey.get(key).tracks.push(t);
  }
  S.people = [...byKey.values()];
  S.personOf = new Map();
  for (const p of S.people) for (const t of p.tracks) S.personOf.set(t.id, p);
}

function spanOf(p) {
  let first = Infinity, last = -Infinity;
  for (const t of p.tracks) { first = Math.min(first, t.boxes[0].frame); last = Math.max(last, t.boxes[t.boxes.length - 1].frame); }
  return [first, last];
}

function isSelected(p) { return p.tracks.every((t) => S.selected.has(t.id)); }

function setSelected(p, on) {
  for (const t of p.tracks) if (on) S.selected.add(t.id); else S.selected.delete(t.id);
}

function personName(p) {
  if (p.tracks.length === 1) return `#${p.tracks[0].id}`;
  return `person ${p.person}`;
}

// ------------------------------------------------------------------ loading

async function loadPlan() {
  const plan = await api("/api/plan");
  S.plan = plan;
  S.tracks = plan.tracks;
  S.byId = new Map(plan.tracks.map((t) => [t.id, t]));
  groupPeople();
  for (const id of [...S.selected]) if (!S.byId.has(id)) S.selected.delete(id);
  if (S.active !== null && !S.byId.has(S.active)) S.active = null;
  const s = plan.session;
  S.frames = s.frames;
  S.rate = s.rate;
  $("name").textContent = `${s.name} (${s.width}x${s.height}, ${s.frames} frames)`;
  $("seek").max = String(Math.max(0, s.frames - 1));
  $("goto").max = String(Math.max(0, s.frames - 1));
  $("undo").disabled = !s.can_undo;
  $("redo").disabled = !s.can_redo;
  $("saved").textContent = s.version ? `saved (${s.version})` : "";
  if (!$("reviewer").value && plan.review && plan.review.reviewer) $("reviewer").value = plan.review.reviewer;
  showSubject();
  showLook();
  showRender(s.render);
  applyFilter();
  drawRanges();
  drawSelected();
  drawOverlay();
  drawHead();
  if (S.view === "exported") showFrame(S.frame, true);
}

// Edits run one after another, in the order they were made (a reason typed and a switch
// clicked straight after must reach the plan in that order).
let editQueue = Promise.resolve();

function edit(path, body) {
  const run = async () => {
    // Every edit names the plan version it was made on: the server refuses it (409) when another
    // tab saved since, and this page reloads the plan instead of overwriting that work.
    const sent = { ...body, reviewer: reviewer(), version: S.plan ? S.plan.session.version : null };
    try {
      const out = await api(path, sent);
      await loadPlan();
      say("");
      return out;
    } catch (err) {
      if (err.status === 409) await loadPlan().catch(() => {});
      say(err.message);
      return null;
    }
  };
  const result = editQueue.then(run);
  editQueue = result.catch(() => null);
  return result;
}

// ------------------------------------------------------------------ player

function clampFrame(f) { return Math.max(0, Math.min(S.frames - 1, Math.round(f))); }

function seek(f) {
  S.frame = clampFrame(f);
  $("seek").value = String(S.frame);
  $("goto").value = String(S.frame);
  showFrame(S.frame);
}

function showFrame(f, force) {
  if (S.loading) { S.pending = f; return; }
  if (f === S.shownFrame && !force) { updateInfo(); return; }
  S.loading = true;
  $("picture").style.width = `${displayWidth()}px`;
  const width = Math.min(S.plan.session.width || 1920, Math.round(displayWidth() * (window.devicePixelRatio || 1)));
  const started = performance.now();
  fetch(url(`/frame/${f}`, { w: width, view: S.view }))
    .then((r) => { if (!r.ok) throw new Error(`frame ${f}: ${r.status}`); return r.blob(); })
    .then((blob) => new Promise((resolve) => {
      const img = $("picture");
      const old = img.src;
      img.onload = () => { if (old.startsWith("blob:")) URL.revokeObjectURL(old); resolve(); };
      img.src = URL.createObjectURL(blob);
    }))
    .then(() => {
      S.shownFrame = f;
      S.lastLoadMs = performance.now() - started;
      drawOverlay();
      updateInfo();
      if ($("filter").value === "here") applyFilter(); else refreshRows();
      drawHead();
      drawWave();
    })
    .catch((err) => say(err.message))
    .finally(() => {
      S.loading = false;
      if (S.pending !== null && S.pending !== S.shownFrame) {
        const next = S.pending;
        S.pending = null;
        showFrame(next);
      } else {
        S.pending = null;
        if (S.playing) setTimeout(playStep, Math.max(0, 1000 / S.rate - S.lastLoadMs));
      }
    });
}

// The picture's width on screen: the column's width, or less for a tall picture (62vh high at most).
function displayWidth() {
  const s = S.plan.session;
  const aspect = (s.width || 16) / (s.height || 9);
  return Math.min($("left").clientWidth, Math.round(window.innerHeight * 0.62 * aspect));
}

function updateInfo() {
  const t = S.shownFrame / S.rate;
  const mm = Math.floor(t / 60), ss = (t % 60).toFixed(2).padStart(5, "0");
  const flags = (S.plan.review.flags || []).some((x) => x.frame === S.shownFrame) ? " flagged" : "";
  const whole = wholeFrame(S.shownFrame) ? " whole frame masked" : "";
  $("frameinfo").textContent = `frame ${S.shownFrame} / ${S.frames - 1}  ${mm}:${ss}${flags}${whole}`;
}

function playStep() {
  if (!S.playing) return;
  if (S.frame >= S.frames - 1) { togglePlay(false); return; }
  seek(S.frame + 1);
}

function togglePlay(on) {
  S.playing = on === undefined ? !S.playing : on;
  $("play").textContent = S.playing ? "Pause" : "Play";
  if (S.playing) playStep();
}

// Picture pixels <-> plan coordinates.
function scale() {
  const c = $("overlay");
  return c.clientWidth / (S.plan.session.width || 1);
}

function drawOverlay() {
  const c = $("overlay");
  const w = c.clientWidth, h = c.clientHeight;
  if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
  const ctx = c.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  if (!S.plan || S.shownFrame < 0) return;
  const k = scale();
  const f = S.shownFrame;
  if (S.view === "original") {
    if (wholeFrame(f)) {
      ctx.strokeStyle = "#d53f3f"; ctx.lineWidth = 6; ctx.strokeRect(3, 3, w - 6, h - 6);
    }
    const placed = [];
    const labelled = new Set();
    for (const t of S.tracks) {
      const at = boxAt(t, f);
      if (!at) continue;
      const [x1, y1, x2, y2] = at.box;
      const manual = t.source === "manual";
      ctx.setLineDash(t.redact ? [] : [6, 4]);
      ctx.lineWidth = S.selected.has(t.id) || S.active === t.id ? 3 : 2;
      ctx.strokeStyle = !t.redact ? "#48bb78" : manual ? "#b794f4" : at.stored && at.stored.detected ? "#f56565" : "#f6ad55";
      ctx.strokeRect(x1 * k, y1 * k, (x2 - x1) * k, (y2 - y1) * k);
      ctx.setLineDash([]);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.font = "11px system-ui, sans-serif";
      const key = manual && (t.keyframes || []).some((kf) => kf.frame === f) ? " key" : "";
      // One label a person: their face, head and body boxes are one entry.
      const who = S.personOf.get(t.id);
      if (who && who.tracks.length > 1 && !key) {
        if (labelled.has(who.key)) continue;
        labelled.add(who.key);
      }
      const text = `${who && who.tracks.length > 1 && !key ? personName(who) : `#${t.id}`}${t.redact ? "" : " kept"}${key}`;
      const spot = labelSpot(ctx, placed, text, x1 * k, y1 * k, y2 * k, h);
      if (spot) ctx.fillText(text, spot[0], spot[1]);
    }
  }
  if (S.drag) {
    const d = S.drag;
    ctx.strokeStyle = "#fff"; ctx.setLineDash([4, 3]); ctx.lineWidth = 2;
    ctx.strokeRect(Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.abs(d.x1 - d.x0), Math.abs(d.y1 - d.y0));
    ctx.setLineDash([]);
  }
}

// Where a box's label goes without covering another label: above the box, else below it, else
// inside its top; null (no label; the box is still drawn) when all three are taken.
function labelSpot(ctx, placed, text, x, top, bottom, height) {
  const w = ctx.measureText(text).width + 4;
  for (const y of [Math.max(10, top - 3), Math.min(height - 2, bottom + 11), top + 11]) {
    const r = [x + 2, y - 10, x + 2 + w, y + 2];
    if (!placed.some((p) => r[0] < p[2] && p[0] < r[2] && r[1] < p[3] && p[1] < r[3])) {
      placed.push(r);
      return [x + 2, y];
    }
  }
  return null;
}

function overlayPoint(ev) {
  const r = $("overlay").getBoundingClientRect();
  return [ev.clientX - r.left, ev.clientY - r.top];
}

function hitManual(px, py) {
  const k = scale();
  for (const t of S.tracks) {
    if (t.source !== "manual") continue;
    const at = boxAt(t, S.shownFrame);
    if (!at) continue;
    const [x1, y1, x2, y2] = at.box;
    if (px >= x1 * k && px <= x2 * k && py >= y1 * k && py <= y2 * k) return { track: t, box: at.box };
  }
  return null;
}

// A click on a person in the picture selects (or unselects) their whole track: the smallest box
// under the pointer, so a face inside a body box is the face.
function hitTrack(px, py) {
  const k = scale();
  let best = null, bestArea = Infinity;
  for (const t of S.tracks) {
    const at = boxAt(t, S.shownFrame);
    if (!at) continue;
    const [x1, y1, x2, y2] = at.box;
    if (px < x1 * k || px > x2 * k || py < y1 * k || py > y2 * k) continue;
    const area = (x2 - x1) * (y2 - y1);
    if (area < bestArea) { best = t; bestArea = area; }
  }
  return best;
}

// A click selects the whole person the box belongs to: every track the scan linked to them.
function selectAt(px, py) {
  const t = hitTrack(px, py);
  if (!t) return;
  const p = S.personOf.get(t.id);
  const on = !isSelected(p);
  setSelected(p, on);
  applyFilter();
  const at = S.filtered.indexOf(p);
  if (at >= 0 && on) {
    const list = $("list");
    const top = at * ROW;
    if (top < list.scrollTop || top > list.scrollTop + list.clientHeight - ROW) list.scrollTop = Math.max(0, top - ROW);
  }
}

function setupDrawing() {
  const c = $("overlay");
  c.addEventListener("mousedown", (ev) => {
    if (S.view !== "original" || S.shownFrame < 0) return;
    const [x, y] = overlayPoint(ev);
    const hit = S.active !== null ? hitManual(x, y) : null;
    if (hit && hit.track.id === S.active) {
      S.drag = { move: true, track: hit.track, box: hit.box, x0: x, y0: y, x1: x, y1: y };
    } else {
      S.drag = { move: false, x0: x, y0: y, x1: x, y1: y };
    }
    ev.preventDefault();
  });
  window.addEventListener("mousemove", (ev) => {
    if (!S.drag) return;
    const [x, y] = overlayPoint(ev);
    S.drag.x1 = x; S.drag.y1 = y;
    drawOverlay();
  });
  window.addEventListener("mouseup", async () => {
    const d = S.drag;
    if (!d) return;
    S.drag = null;
    const k = scale();
    const f = S.shownFrame;
    if (d.move) {
      const dx = (d.x1 - d.x0) / k, dy = (d.y1 - d.y0) / k;
      if (Math.abs(dx) + Math.abs(dy) < 1) {
        drawOverlay();
        return;
      }
      const b = d.box;
      await edit("/api/keyframe", { track: d.track.id, frame: f, box: [b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy] });
      return;
    }
    const box = [Math.min(d.x0, d.x1) / k, Math.min(d.y0, d.y1) / k, Math.max(d.x0, d.x1) / k, Math.max(d.y0, d.y1) / k];
    if (box[2] - box[0] < 4 || box[3] - box[1] < 4) {
      const hit = hitManual(d.x0, d.y0);
      S.active = hit ? hit.track.id : null;
      selectAt(d.x0, d.y0);
      drawSelected();
      drawOverlay();
      return;
    }
    if (S.active !== null) {
      await edit("/api/keyframe", { track: S.active, frame: f, box });
    } else {
      // With one person selected, the box extends them over a stretch the tracker lost: it
      // joins their entry, takes their state and, for a subject-access request, their view.
      const chosen = S.people.filter((p) => isSelected(p));
      const joined = chosen.length === 1 ? chosen[0] : null;
      const body = { frame: f, box, label: joined ? bestTrack(joined).label : "face", redact: !$("keepnew").checked };
      if (joined) body.join = joined.tracks[0].id;
      say(joined ? `extending ${personName(joined)} ...` : "following the new box through the video ...", true);
      const out = await edit("/api/manual", body);
      if (out) {
        S.active = out.track;
        if (joined) S.selected.add(out.track);
        applyFilter();
        drawSelected();
        drawOverlay();
        say(joined ? `added manual track #${out.track} to ${personName(S.personOf.get(out.track))}` : `added manual track #${out.track}`, true);
      }
    }
  });
}

function drawSelected() {
  const el = $("selected");
  const t = S.active !== null ? S.byId.get(S.active) : null;
  $("kfhint").textContent = t ? `; with track #${t.id} chosen, a box sets its keyframe here (drag its box to move it)` : "";
  if (!t) { el.classList.add("hidden"); el.replaceChildren(); return; }
  el.classList.remove("hidden");
  const head = document.createElement("div");
  head.innerHTML = `<strong>Manual track #${t.id}</strong> frames ${t.boxes[0].frame}-${t.boxes[t.boxes.length - 1].frame} `;
  const done = button("Done", () => { S.active = null; drawSelected(); drawOverlay(); });
  const del = button("Delete track", () => edit("/api/delete_track", { track: t.id }));
  head.append(done, " ", del);
  const list = document.createElement("ul");
  list.className = "plain";
  for (const kf of t.keyframes || []) {
    const li = document.createElement("li");
    li.append(`keyframe at frame ${kf.frame} `, button("Go", () => seek(kf.frame)),
      button("Delete", () => edit("/api/keyframe", { track: t.id, frame: kf.frame, box: null })));
    list.append(li);
  }
  el.replaceChildren(head, list);
}

function secondsInput(value, label) {
  const input = document.createElement("input");
  input.type = "number";
  input.step = "0.05";
  input.min = "0";
  input.value = value.toFixed(2);
  input.className = "seconds";
  input.setAttribute("aria-label", label);
  return input;
}

function button(text, fn, cls) {
  const b = document.createElement("button");
  b.textContent = text;
  if (cls) b.className = cls;
  b.addEventListener("click", fn);
  return b;
}

// ------------------------------------------------------------------ track list (virtualised)

function applyFilter() {
  const mode = $("filter").value;
  const f = S.shownFrame;
  S.filtered = S.people.filter((p) => p.tracks.some((t) => {
    if (mode === "redact") return t.redact;
    if (mode === "keep") return !t.redact;
    if (mode === "manual") return t.source === "manual";
    if (mode === "here") return boxAt(t, f) !== null;
    return true;
  }));
  if (mode === "here") {
    // The people on screen in reading order: left to right, then top to bottom (by the box
    // of theirs that reaches furthest left and up).
    const key = (p) => {
      const boxes = p.tracks.map((t) => boxAt(t, f)).filter((a) => a).map((a) => a.box);
      return [Math.min(...boxes.map((b) => b[0])), Math.min(...boxes.map((b) => b[1]))];
    };
    const keys = new Map(S.filtered.map((p) => [p.key, key(p)]));
    S.filtered.sort((a, b) => keys.get(a.key)[0] - keys.get(b.key)[0] || keys.get(a.key)[1] - keys.get(b.key)[1]);
  }
  showCount();
  $("spacer").style.height = `${S.filtered.length * ROW}px`;
  renderRows(true);
}

function showCount() {
  const unit = S.people.length === S.tracks.length ? "tracks" : `people (${S.tracks.length} tracks)`;
  $("count").textContent = `${S.filtered.length} of ${S.people.length} ${unit}, ${S.selected.size} tracks selected`;
}

let rowWindow = [-1, -1];

function renderRows(force) {
  const list = $("list");
  const first = Math.max(0, Math.floor(list.scrollTop / ROW) - 4);
  const last = Math.min(S.filtered.length, Math.ceil((list.scrollTop + list.clientHeight) / ROW) + 4);
  if (!force && first === rowWindow[0] && last === rowWindow[1]) return;
  rowWindow = [first, last];
  const rows = $("rows");
  rows.style.transform = `translateY(${first * ROW}px)`;
  const frag = document.createDocumentFragment();
  for (let i = first; i < last; i++) frag.append(trackRow(S.filtered[i]));
  rows.replaceChildren(frag);
  refreshRows();
}

// One row a person: one track, or the face, head and body tracks the scan linked into one
// person (their timelines drawn on one bar; the switch and the reason apply to all of them).
function trackRow(p) {
  const t = p.tracks.length === 1 ? p.tracks[0] : bestTrack(p);
  const single = p.tracks.length === 1;
  const row = document.createElement("div");
  row.className = "row" + (isSelected(p) ? " sel" : "");
  row.dataset.track = String(p.tracks[0].id);
  row.dataset.person = p.key;
  const check = document.createElement("input");
  check.type = "checkbox";
  check.checked = isSelected(p);
  check.title = single ? "select" : `select all ${p.tracks.length} tracks of this person`;
  check.addEventListener("change", () => {
    setSelected(p, check.checked);
    row.classList.toggle("sel", check.checked);
    showCount();
    drawOverlay();
  });
  const img = document.createElement("img");
  img.alt = single ? `track ${t.id}` : personName(p);
  thumbnail(t, img);
  img.addEventListener("click", () => seek(bestFrame(t)));
  const meta = document.createElement("div");
  meta.className = "meta";
  const [first, last] = spanOf(p);
  const detected = p.tracks.reduce((n, x) => n + x.boxes.filter((b) => b.detected).length, 0);
  if (single) {
    meta.textContent = `#${t.id} ${t.label}${t.source === "manual" ? " (manual)" : ""} ${first}-${last}`;
  } else {
    const labels = [...new Set(p.tracks.map((x) => x.label))].join("+");
    meta.textContent = `${personName(p)}: ${labels}, ${p.tracks.length} tracks ${first}-${last}`;
  }
  meta.title = `${detected} detected boxes; tracks ${p.tracks.map((x) => "#" + x.id).join(" ")}; ${t.reason || ""}`;
  if (single && t.source === "manual") meta.addEventListener("click", () => { S.active = t.id; drawSelected(); seek(first); });
  const redacted = p.tracks.every((x) => x.redact);
  const ids = p.tracks.map((x) => x.id);
  const state = button(redacted ? "Redact" : "Keep", () => {
    edit("/api/redact", { ids, redact: !redacted, reason: why.value || $("reason").value || null });
  }, "state " + (redacted ? "redact" : "keep"));
  state.title = redacted ? "masked in the output; click to keep visible" : "kept visible (all or part); click to mask";
  const why = document.createElement("input");
  why.className = "why";
  why.placeholder = "reason";
  why.value = t.reason || "";
  why.addEventListener("change", () => edit("/api/redact", { ids, redact: redacted, reason: why.value || null }));
  const canvas = document.createElement("canvas");
  canvas.height = 30;
  canvas.addEventListener("click", (ev) => seek(frameAtX(canvas, ev)));
  row.append(check, img, meta, state, why, canvas);
  return row;
}

// The track that shows a person best: a face if one was found, else the longest detected.
function bestTrack(p) {
  const score = (t) => (t.label === "face" ? 1e6 : 0) + t.boxes.filter((b) => b.detected).length;
  return p.tracks.reduce((a, b) => (score(b) > score(a) ? b : a));
}

// Thumbnails are fetched once per track version, a few at a time, and kept in page memory only
// (blob URLs; the server sends them no-store), so re-drawn rows do not ask again.
const thumbs = new Map();
const thumbQueue = [];
let thumbsLoading = 0;

function thumbnail(t, img) {
  const key = `${t.id}:${t.boxes.length}:${t.boxes[0].frame}:${t.boxes[t.boxes.length - 1].frame}`;
  const have = thumbs.get(key);
  if (have) { img.src = have; return; }
  img.dataset.thumb = key;
  if (!thumbQueue.some((q) => q.key === key)) thumbQueue.push({ key, id: t.id });
  setTimeout(pumpThumbs, 0);  // once the row is in the document
}

function pumpThumbs() {
  while (thumbsLoading < 3 && thumbQueue.length) {
    const { key, id } = thumbQueue.shift();
    const visible = [...document.querySelectorAll("#rows img")].some((i) => i.dataset.thumb === key);
    if (!visible) continue;
    thumbsLoading++;
    fetch(url(`/thumb/${id}`))
      .then((r) => (r.ok ? r.blob() : null))
      .then((blob) => {
        if (!blob) return;
        const src = URL.createObjectURL(blob);
        thumbs.set(key, src);
        for (const i of document.querySelectorAll("#rows img")) if (i.dataset.thumb === key) i.src = src;
      })
      .catch(() => {})
      .finally(() => { thumbsLoading--; pumpThumbs(); });
  }
}

function bestFrame(t) {
  let best = t.boxes[0];
  for (const b of t.boxes) if (b.detected && (!best.detected || (b.score || 0) > (best.score || 0))) best = b;
  return best.frame;
}

function frameAtX(canvas, ev) {
  const r = canvas.getBoundingClientRect();
  return Math.floor(((ev.clientX - r.left) / r.width) * S.frames);
}

function refreshRows() {
  const byKey = new Map(S.people.map((p) => [p.key, p]));
  for (const row of $("rows").children) {
    const p = byKey.get(row.dataset.person);
    if (!p) continue;
    row.classList.toggle("here", p.tracks.some((t) => boxAt(t, S.shownFrame) !== null));
    drawTrackBar(row.querySelector("canvas"), p.tracks);
  }
}

// A person's timeline: each of their tracks' spans (inferred), detected frames over them.
function drawTrackBar(canvas, tracks) {
  const w = canvas.clientWidth;
  if (!w) return;
  if (canvas.width !== w) canvas.width = w;
  const ctx = canvas.getContext("2d");
  const h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const px = w / S.frames;
  const x = (f) => f * px;
  for (const t of tracks) drawSpan(ctx, t, x, px, h);
  ctx.fillStyle = "#1d2430";
  ctx.fillRect(x(S.shownFrame), 0, Math.max(1, px), h);
}

function drawSpan(ctx, t, x, px, h) {
  const first = t.boxes[0].frame, last = t.boxes[t.boxes.length - 1].frame;
  // The whole span first, as inferred; detected frames over it.
  ctx.fillStyle = t.source === "manual" ? "#805ad5" : "#f0b37e";
  ctx.fillRect(x(first), 8, Math.max(1, x(last + 1) - x(first)), h - 16);
  for (const b of t.boxes) {
    if (!b.detected) continue;
    ctx.fillStyle = b.score !== undefined && b.score < 0.5 ? "#e9c400" : "#2b6cb0";
    ctx.fillRect(x(b.frame), 8, Math.max(1, px), h - 16);
  }
  if (!t.redact) { ctx.fillStyle = "#2f855a"; ctx.fillRect(x(first), h - 6, Math.max(1, x(last + 1) - x(first)), 4); }
  for (const kf of t.keyframes || []) { ctx.fillStyle = "#fff"; ctx.fillRect(x(kf.frame), 4, 2, h - 8); }
}

function drawHead() {
  const c = $("headcanvas");
  const w = c.clientWidth;
  if (!w || !S.plan) return;
  if (c.width !== w) c.width = w;
  const ctx = c.getContext("2d");
  const h = c.height;
  ctx.clearRect(0, 0, w, h);
  const px = w / S.frames;
  ctx.fillStyle = "#dde2ea";
  ctx.fillRect(0, 6, w, h - 12);
  for (const r of S.plan.frame_ranges) { ctx.fillStyle = "#1d2430"; ctx.fillRect(r.start * px, 4, Math.max(2, (r.end - r.start + 1) * px), h - 8); }
  for (const fl of S.plan.review.flags || []) { ctx.fillStyle = "#d53f3f"; ctx.fillRect(fl.frame * px, 0, Math.max(2, px), h); }
  ctx.fillStyle = "#2b6cb0";
  ctx.fillRect(S.shownFrame * px - 1, 0, Math.max(2, px), h);
}

// ------------------------------------------------------------------ ranges and audio

function drawRanges() {
  const list = $("ranges");
  list.replaceChildren(...S.plan.frame_ranges.map((r, i) => {
    const li = document.createElement("li");
    li.append(`frames ${r.start}-${r.end}${r.reason ? " (" + r.reason + ")" : ""}`, button("Go", () => seek(r.start)),
      button("Remove", () => edit("/api/ranges", { ranges: S.plan.frame_ranges.filter((_, j) => j !== i) })));
    return li;
  }));
  const audio = $("audio");
  const ranges = (S.plan.audio && S.plan.audio.ranges) || [];
  audio.replaceChildren(...ranges.map((r, i) => {
    const li = document.createElement("li");
    li.append(`mute ${r[0].toFixed(2)}-${r[1].toFixed(2)} s`, button("Go", () => seek(r[0] * S.rate)),
      button("Remove", () => edit("/api/audio", { ranges: ranges.filter((_, j) => j !== i) })));
    return li;
  }));
  // Spoken personal data that `veil scan` proposed (audio.proposed): each with its reason. The
  // plan never holds the words (the transcript is personal data); "Words" asks the server to
  // read that stretch now, in memory, and shows them here only. A proposal's start and end can
  // be adjusted before "Accept" adds it to the muted ranges; "Reject" records that it was turned
  // down (audio.rejected); one neither accepted nor rejected is not applied.
  const proposed = (S.plan.audio && S.plan.audio.proposed) || [];
  const rejected = (S.plan.audio && S.plan.audio.rejected) || [];
  const accepted = (p) => ranges.some((r) => r[0] <= p.start + 1e-3 && r[1] >= p.end - 1e-3);
  const isRejected = (p) => rejected.some((r) => Math.abs(r[0] - p.start) < 1e-3 && Math.abs(r[1] - p.end) < 1e-3);
  const open = proposed.filter((p) => !accepted(p) && !isRejected(p));
  $("proposed").replaceChildren(...proposed.map((p) => {
    const li = document.createElement("li");
    li.className = accepted(p) ? "accepted" : isRejected(p) ? "rejected" : "";
    li.append(`${p.start.toFixed(2)}-${p.end.toFixed(2)} s: ${p.reason}`, button("Go", () => seek(p.start * S.rate)));
    // Words read for this page only: kept in memory while it is open (so a re-drawn list keeps
    // them), gone when it closes.
    const key = `${p.start}-${p.end}`;
    const heard = document.createElement("div");
    heard.className = "words muted";
    heard.textContent = S.heard[key] || "";
    li.append(button("Words", async (ev) => {
      ev.target.disabled = true;
      heard.textContent = "reading ...";
      try {
        const got = await api("/api/words", { start: p.start, end: p.end });
        S.heard[key] = got.words.length ? got.words.map((w) => w.text).join(" ") : "(no words heard)";
      } catch (err) {
        S.heard[key] = err.message;
      }
      ev.target.disabled = false;
      drawRanges();  // the list may have been redrawn meanwhile
    }));
    if (accepted(p)) li.append(" (muted)");
    else if (isRejected(p)) {
      li.append(" (rejected)", button("Undo reject", () => edit("/api/audio", {
        ranges, rejected: rejected.filter((r) => !(Math.abs(r[0] - p.start) < 1e-3 && Math.abs(r[1] - p.end) < 1e-3)),
      })));
    } else {
      const from = secondsInput(p.start, "from");
      const to = secondsInput(p.end, "to");
      li.append(" ", from, "-", to, " s",
        button("Accept", () => edit("/api/audio", { ranges: [...ranges, [Number(from.value), Number(to.value)]] })),
        button("Reject", () => edit("/api/audio", { ranges, rejected: [...rejected, [p.start, p.end]] })));
    }
    li.append(heard);
    return li;
  }));
  $("proposedall").classList.toggle("hidden", open.length < 2);
  $("proposedall").onclick = () => edit("/api/audio", { ranges: [...ranges, ...open.map((p) => [p.start, p.end])] });
  $("proposedhead").classList.toggle("hidden", !proposed.length);
  drawWave();
}

function drawWave() {
  const c = $("wave");
  const w = c.clientWidth;
  if (!w || !S.wave) return;
  if (c.width !== w) c.width = w;
  const ctx = c.getContext("2d");
  const h = c.height;
  ctx.clearRect(0, 0, w, h);
  const dur = S.wave.duration_s || S.frames / S.rate;
  for (const r of (S.plan.audio && S.plan.audio.ranges) || []) {
    ctx.fillStyle = "rgba(213,63,63,.35)";
    ctx.fillRect((r[0] / dur) * w, 0, ((r[1] - r[0]) / dur) * w, h);
  }
  // Proposed ranges: an amber band along the top and bottom edges, under any muted range.
  for (const p of (S.plan.audio && S.plan.audio.proposed) || []) {
    ctx.fillStyle = "rgba(221,150,20,.9)";
    const x = (p.start / dur) * w, pw = Math.max(2, ((p.end - p.start) / dur) * w);
    ctx.fillRect(x, 0, pw, 5);
    ctx.fillRect(x, h - 5, pw, 5);
  }
  const peaks = S.wave.peaks;
  ctx.fillStyle = "#4a5568";
  if (!peaks.length) { ctx.fillText("no audio", 6, h / 2 + 4); }
  for (let i = 0; i < peaks.length; i++) {
    const v = peaks[i] * (h / 2 - 2);
    ctx.fillRect((i / peaks.length) * w, h / 2 - v, Math.max(1, w / peaks.length), 2 * v + 1);
  }
  if (S.waveDrag) {
    const d = S.waveDrag;
    ctx.fillStyle = "rgba(43,108,176,.35)";
    ctx.fillRect(Math.min(d.x0, d.x1), 0, Math.abs(d.x1 - d.x0), h);
  }
  ctx.fillStyle = "#2b6cb0";
  ctx.fillRect((S.shownFrame / S.rate / dur) * w, 0, 2, h);
}

function setupWave() {
  const c = $("wave");
  const xOf = (ev) => ev.clientX - c.getBoundingClientRect().left;
  c.addEventListener("mousedown", (ev) => { S.waveDrag = { x0: xOf(ev), x1: xOf(ev) }; });
  c.addEventListener("mousemove", (ev) => { if (S.waveDrag) { S.waveDrag.x1 = xOf(ev); drawWave(); } });
  c.addEventListener("mouseup", () => {
    const d = S.waveDrag;
    S.waveDrag = null;
    if (!d) return;
    const dur = (S.wave && S.wave.duration_s) || S.frames / S.rate;
    const a = (Math.min(d.x0, d.x1) / c.clientWidth) * dur, b = (Math.max(d.x0, d.x1) / c.clientWidth) * dur;
    if (b - a < 0.05) { seek((a * S.rate)); drawWave(); return; }
    const ranges = [...((S.plan.audio && S.plan.audio.ranges) || []), [a, b]];
    edit("/api/audio", { ranges });
  });
}

// ------------------------------------------------------------------ render, review, status

async function startRender() {
  try {
    await api("/api/render", {});
  } catch (err) { say(err.message); return; }
  pollStatus();
}

function showLook() {
  // The scan's worth-a-look items, most important first: click one to go to its frame and
  // select its track.
  const items = (S.plan.review.flags || []).filter((x) => x && Number.isInteger(x.frame));
  $("lookcount").textContent = items.length ? `${items.length} item${items.length > 1 ? "s" : ""}` : "nothing flagged";
  const list = $("looklist");
  list.replaceChildren(...items.map((it) => {
    const li = document.createElement("li");
    const go = button(`frame ${it.frame}`, () => {
      if (Number.isInteger(it.track) && S.byId.has(it.track)) {
        S.selected = new Set();
        setSelected(S.personOf.get(it.track), true);
        applyFilter();
      }
      seek(it.frame);
    });
    li.append(go, " ", (it.reasons || []).join("; "));
    return li;
  }));
}

function showSubject() {
  // A subject-access request (the plan's show_only): say so, and offer to end it.
  const el = $("showonly");
  const so = S.plan.show_only;
  if (!so) { el.replaceChildren(); el.classList.add("hidden"); return; }
  el.classList.remove("hidden");
  el.replaceChildren(
    `Showing only track${so.tracks.length > 1 ? "s" : ""} ${so.tracks.join(", ")}: everything else is masked in every frame `,
    button("Show everyone", () => edit("/api/show_only", { ids: [] })),
  );
}

async function pollStatus() {
  clearTimeout(S.renderPoll);
  let st;
  try { st = await api("/api/status"); } catch (err) { say(err.message); return; }
  const r = st.render;
  showRender(r);
  if (r.state === "running" || (st.proxy && st.proxy.state === "making")) {
    S.renderPoll = setTimeout(pollStatus, 500);
  }
  if (st.proxy && st.proxy.state === "making") $("saved").textContent = `making a seek proxy ${st.proxy.done}/${S.frames}`;
}

function showRender(r) {
  if (!r) return;
  const el = $("renderstate");
  if (r.state === "running") {
    el.textContent = `rendering ${r.done || 0}/${r.total || "?"}`;
    $("render").disabled = true;
  } else if (r.state === "done") {
    $("render").disabled = false;
    const out = document.createElement("a");
    out.href = url("/media/output"); out.textContent = r.output; out.id = "outputlink"; out.target = "_blank";
    const rep = document.createElement("a");
    rep.href = url("/media/report.html"); rep.textContent = "report"; rep.target = "_blank";
    el.replaceChildren("rendered: ", out, " ", rep);
    if (r.out_of_date) {
      // The plan changed after this render started: the file does not hold the latest edits.
      const stale = document.createElement("strong");
      stale.id = "outofdate"; stale.className = "warn";
      stale.textContent = ` out of date (plan version ${r.version}, now ${S.plan ? S.plan.session.version : "?"}): render again`;
      el.append(stale);
    }
  } else if (r.state === "failed") {
    $("render").disabled = false;
    el.textContent = "render failed";
    if (r.error !== S.lastError) say(r.error);
    S.lastError = r.error;
  }
}

async function markReviewed() {
  let who = reviewer();
  if (!who) { who = (prompt("Reviewer's name") || "").trim(); $("reviewer").value = who; }
  if (!who) return;
  const out = await edit("/api/reviewed", { reviewer: who });
  if (out) {
    const rv = S.plan.review.reviewed;
    say(`marked reviewed by ${rv.by}; ${(rv.frames_shown * 100).toFixed(1)}% of frames shown`, true);
  }
}

function selectedIds() { return [...S.selected].sort((a, b) => a - b); }

// ------------------------------------------------------------------ keys and wiring

function onKey(ev) {
  const tag = (ev.target && ev.target.tagName) || "";
  if (tag === "INPUT" && ev.target.type !== "range" && ev.target.type !== "checkbox" && ev.target.type !== "radio") return;
  if (tag === "SELECT" || tag === "TEXTAREA") return;
  const second = Math.max(1, Math.round(S.rate));
  const k = ev.key;
  let handled = true;
  if ((ev.ctrlKey || ev.metaKey) && k.toLowerCase() === "z") edit("/api/history", { back: !ev.shiftKey });
  else if ((ev.ctrlKey || ev.metaKey) && k.toLowerCase() === "y") edit("/api/history", { back: false });
  else if (k === "ArrowLeft") seek(S.frame - (ev.shiftKey ? second : 1));
  else if (k === "ArrowRight") seek(S.frame + (ev.shiftKey ? second : 1));
  else if (k === "j" || k === "PageUp" || k === "ArrowUp") seek(S.frame - second);
  else if (k === "l" || k === "PageDown" || k === "ArrowDown") seek(S.frame + second);
  else if (k === "Home") seek(0);
  else if (k === "End") seek(S.frames - 1);
  else if (k === " ") togglePlay();
  else if (k === "e") setView(S.view === "original" ? "exported" : "original");
  else if (k === "i") $("rin").value = String(S.frame);
  else if (k === "o") $("rout").value = String(S.frame);
  else handled = false;
  if (handled) ev.preventDefault();
}

function setView(view) {
  S.view = view;
  for (const r of document.querySelectorAll("input[name=view]")) r.checked = r.value === view;
  showFrame(S.frame, true);
}

function wire() {
  document.addEventListener("keydown", onKey);
  $("back1").addEventListener("click", () => seek(S.frame - 1));
  $("fwd1").addEventListener("click", () => seek(S.frame + 1));
  $("back1s").addEventListener("click", () => seek(S.frame - Math.round(S.rate)));
  $("fwd1s").addEventListener("click", () => seek(S.frame + Math.round(S.rate)));
  $("play").addEventListener("click", () => togglePlay());
  $("seek").addEventListener("input", () => seek(Number($("seek").value)));
  $("goto").addEventListener("change", () => seek(Number($("goto").value)));
  for (const r of document.querySelectorAll("input[name=view]")) r.addEventListener("change", () => setView(r.value));
  $("undo").addEventListener("click", () => edit("/api/history", { back: true }));
  $("redo").addEventListener("click", () => edit("/api/history", { back: false }));
  $("render").addEventListener("click", startRender);
  $("reviewed").addEventListener("click", markReviewed);
  $("reviewer").addEventListener("change", () => localStorage.setItem("veil-reviewer", $("reviewer").value));
  $("filter").addEventListener("change", applyFilter);
  $("list").addEventListener("scroll", () => renderRows(false));
  $("selnone").addEventListener("click", () => { S.selected.clear(); applyFilter(); drawOverlay(); });
  $("keepsel").addEventListener("click", () => edit("/api/redact", { ids: selectedIds(), redact: false, reason: $("reason").value || null }));
  $("redactsel").addEventListener("click", () => edit("/api/redact", { ids: selectedIds(), redact: true, reason: $("reason").value || null }));
  $("keeponly").addEventListener("click", () => {
    if (!S.selected.size) { say("select the tracks of the person to keep visible first"); return; }
    edit("/api/keep_only", { ids: selectedIds(), reason: $("reason").value || "subject access request" });
  });
  $("merge").addEventListener("click", async () => {
    const ids = selectedIds();
    if (ids.length < 2) { say("select two or more tracks of the same object to merge"); return; }
    await edit("/api/merge", { ids });
    S.selected = new Set([ids[0]]);
    applyFilter();
  });
  $("headcanvas").addEventListener("click", (ev) => seek(frameAtX($("headcanvas"), ev)));
  $("setin").addEventListener("click", () => { $("rin").value = String(S.frame); });
  $("setout").addEventListener("click", () => { $("rout").value = String(S.frame); });
  $("addrange").addEventListener("click", () => {
    const a = Number($("rin").value), b = Number($("rout").value || $("rin").value);
    if ($("rin").value === "" || Number.isNaN(a) || Number.isNaN(b)) { say("set the first frame of the range"); return; }
    const ranges = [...S.plan.frame_ranges, { start: Math.min(a, b), end: Math.max(a, b), reason: $("rreason").value || null }];
    edit("/api/ranges", { ranges });
  });
  window.addEventListener("resize", () => { drawOverlay(); renderRows(true); drawHead(); drawWave(); });
  setupDrawing();
  setupWave();
}

async function start() {
  wire();
  $("reviewer").value = localStorage.getItem("veil-reviewer") || "";
  try {
    await loadPlan();
  } catch (err) {
    say(`cannot load the plan: ${err.message}`);
    return;
  }
  seek(0);
  api("/api/waveform").then((w) => { S.wave = w; drawWave(); }).catch(() => {});
  pollStatus();
  S.ready = true;
}

start();
