// The interactive governance map: draws GET /api/v1/governance as an SVG graph of ToRs.
//
// Layout (layered, for directed graphs): cycles are broken by reversing the edges a
// depth-first search finds going back, every ToR is put on the layer below the lowest of
// its predecessors (longest path), edges that cross layers get a placeholder in each so
// they are routed round the boxes, then each layer is ordered by the mean position of its
// neighbours (sweeps down and up) to cut crossings. Dependencies flow down the page;
// "reports to" links are drawn from parent to child and count for the layout too.
//
// Edges are told apart without colour: feeds_into is a solid line with a filled arrow,
// escalates_to a dashed line with an open arrow, reports_to a dotted line; a blocking
// dependency is thick and labelled "blocking". Zoom with the buttons, the wheel or +/-;
// pan by dragging or with the arrow keys. Select a ToR (click, or Tab then Enter) for its
// details. All text is set with textContent; nothing from the data becomes markup.
"use strict";

(function () {
  const root = document.getElementById("governance-graph");
  if (!root) return;
  const SVG = "http://www.w3.org/2000/svg";
  const NODE_W = 200, NODE_H = 56, GAP_X = 40, GAP_Y = 90, PAD = 30;
  const svg = root.querySelector("svg");
  const viewport = svg.querySelector(".map-viewport");
  const details = document.getElementById("map-details");
  const status = root.querySelector(".map-status");

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  function html(name, text, parent, cls) {
    const node = document.createElement(name);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    if (parent) parent.appendChild(node);
    return node;
  }

  function short(text, max) {
    return text.length > max ? text.slice(0, max - 1) + "…" : text;
  }

  // ---- layout ---------------------------------------------------------------------------

  const DUMMY_W = 24;

  /**
   * Places `ids` joined by `links` ({from, to}) in layers. Returns `at` (id -> top-left of
   * its box), `routes` (link index -> the points an edge spanning several layers passes
   * through, in the link's own direction, so it goes round the boxes in between), and the
   * drawing's size.
   */
  function layout(ids, links) {
    const out = new Map(ids.map((id) => [id, []]));
    links.forEach((l, i) => {
      if (out.has(l.from) && out.has(l.to) && l.from !== l.to) out.get(l.from).push({ ...l, i });
    });
    // 1. Break cycles: an edge to a node still on the depth-first stack points back; it is
    //    laid out reversed (and drawn in its own direction).
    const state = new Map();
    const forward = [];
    function visit(id) {
      state.set(id, 1);
      for (const l of out.get(id)) {
        const s = state.get(l.to);
        if (s === 1) forward.push({ from: l.to, to: l.from, i: l.i, reversed: true });
        else {
          forward.push({ from: l.from, to: l.to, i: l.i, reversed: false });
          if (!s) visit(l.to);
        }
      }
      state.set(id, 2);
    }
    for (const id of ids) if (!state.get(id)) visit(id);
    // 2. Longest-path layering.
    const preds = new Map(ids.map((id) => [id, []]));
    for (const l of forward) preds.get(l.to).push(l.from);
    const layer = new Map();
    function depth(id) {
      if (layer.has(id)) return layer.get(id);
      layer.set(id, 0);
      let d = 0;
      for (const p of preds.get(id)) d = Math.max(d, depth(p) + 1);
      layer.set(id, d);
      return d;
    }
    ids.forEach(depth);
    // 3. Long edges get a placeholder in every layer they cross.
    const up = new Map(ids.map((id) => [id, []]));
    const down = new Map(ids.map((id) => [id, []]));
    const chains = new Map();
    let dummies = 0;
    for (const l of forward) {
      let prev = l.from;
      const chain = [];
      for (let li = layer.get(l.from) + 1; li < layer.get(l.to); li++) {
        const d = "d" + dummies++;
        layer.set(d, li);
        up.set(d, []);
        down.set(d, []);
        chain.push(d);
        up.get(d).push(prev);
        down.get(prev).push(d);
        prev = d;
      }
      up.get(l.to).push(prev);
      down.get(prev).push(l.to);
      chains.set(l.i, { chain, reversed: l.reversed });
    }
    const layers = [];
    for (const [id, li] of layer) (layers[li] = layers[li] || []).push(id);
    // 4. Order within layers by the barycentre of neighbours, sweeping down then up.
    const pos = new Map();
    const place = (row) => row.forEach((id, i) => pos.set(id, i));
    layers.forEach(place);
    const mean = (list, fallback) =>
      list.length ? list.reduce((a, n) => a + pos.get(n), 0) / list.length : fallback;
    for (let sweep = 0; sweep < 6; sweep++) {
      const downward = sweep % 2 === 0;
      const rows = downward ? layers.slice(1) : layers.slice(0, -1).reverse();
      for (const row of rows) {
        const key = new Map(row.map((id) => [id, mean((downward ? up : down).get(id), pos.get(id))]));
        row.sort((a, b) => key.get(a) - key.get(b) || pos.get(a) - pos.get(b));
        place(row);
      }
    }
    // 5. Coordinates: each layer centred; placeholders are narrow.
    const slot = (id) => (out.has(id) ? NODE_W : DUMMY_W) + GAP_X;
    const rowWidth = (row) => row.reduce((w, id) => w + slot(id), 0) - GAP_X;
    const width = Math.max(NODE_W, ...layers.map(rowWidth));
    const at = new Map();
    const centre = new Map();
    layers.forEach((row, li) => {
      let x = PAD + (width - rowWidth(row)) / 2;
      const y = PAD + li * (NODE_H + GAP_Y);
      for (const id of row) {
        if (out.has(id)) at.set(id, { x, y });
        else centre.set(id, { x: x + DUMMY_W / 2, y: y + NODE_H / 2 });
        x += slot(id);
      }
    });
    const routes = new Map();
    for (const [i, { chain, reversed }] of chains) {
      const points = chain.map((d) => centre.get(d));
      routes.set(i, { points: reversed ? points.reverse() : points, reversed });
    }
    return {
      at,
      routes,
      width: PAD * 2 + width,
      height: PAD * 2 + layers.length * (NODE_H + GAP_Y) - GAP_Y,
    };
  }

  // ---- drawing --------------------------------------------------------------------------

  function cadenceLine(tor) {
    if (!tor.cadence) return "no regular cadence";
    const c = tor.cadence;
    const day = c.cadence_day ? " " + c.cadence_day.slice(0, 3) : "";
    return c.meeting_cadence.replace("_", " ") + day + " " + c.cadence_time;
  }

  /**
   * The curve from box `a` to box `b` through `route.points`: leaving `a` at the bottom and
   * entering `b` at the top, or the other way round for an edge that points back up.
   * `shift` moves parallel edges between one pair apart.
   */
  function edgePath(a, b, route, shift) {
    const back = route && route.reversed;
    const start = { x: a.x + NODE_W / 2 + shift, y: back ? a.y : a.y + NODE_H };
    const end = { x: b.x + NODE_W / 2 + shift, y: back ? b.y + NODE_H : b.y };
    const points = [start, ...((route && route.points) || []).map((p) => ({ x: p.x + shift, y: p.y })), end];
    let d = `M${points[0].x},${points[0].y}`;
    for (let i = 1; i < points.length; i++) {
      const p = points[i - 1], q = points[i], dy = (q.y - p.y) / 2;
      d += ` C${p.x},${p.y + dy} ${q.x},${q.y - dy} ${q.x},${q.y}`;
    }
    const m = Math.floor((points.length - 1) / 2);
    return { d, mx: (points[m].x + points[m + 1].x) / 2, my: (points[m].y + points[m + 1].y) / 2 };
  }

  function draw(data) {
    const tors = data.tors;
    const byId = new Map(tors.map((t) => [t.id, t]));
    const links = [];
    for (const t of tors) if (t.parent_id && byId.has(t.parent_id)) links.push({ from: t.parent_id, to: t.id, kind: "reports_to" });
    for (const d of data.dependencies) links.push({ from: d.source_id, to: d.target_id, kind: d.relation_type, dep: d });
    const ids = tors.map((t) => t.id);
    const { at, routes, width, height } = layout(ids, links);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.dataset.width = width;
    svg.dataset.height = height;
    const edges = el("g", { class: "map-edges" }, viewport);
    const seen = new Map();
    links.forEach((l, i) => {
      const a = at.get(l.from), b = at.get(l.to);
      if (!a || !b || l.from === l.to) return;
      const pair = [l.from, l.to].sort().join("-");
      const nth = seen.get(pair) || 0;
      seen.set(pair, nth + 1);
      const shift = nth === 0 ? 0 : (nth % 2 ? 1 : -1) * 14 * Math.ceil(nth / 2);
      const p = edgePath(a, b, routes.get(i), shift);
      const cls = l.dep
        ? `map-edge map-dependency edge-${l.kind}${l.dep.is_blocking ? " edge-blocking" : ""}`
        : "map-edge map-hierarchy";
      const marker = l.kind === "escalates_to" ? "arrow-open" : l.kind === "feeds_into" ? "arrow-filled" : "arrow-small";
      const path = el("path", { d: p.d, class: cls, "marker-end": `url(#${marker})`, "data-relation": l.kind }, edges);
      const from = byId.get(l.from).label, to = byId.get(l.to).label;
      const what = l.kind === "reports_to" ? `${to} reports to ${from}` : `${from} ${l.kind.replace("_", " ")} ${to}`;
      el("title", {}, path).textContent = what + (l.dep && l.dep.is_blocking ? " (blocking)" : "") +
        (l.dep && l.dep.output_types ? ": " + l.dep.output_types : "");
      if (l.dep && l.dep.is_blocking) {
        const label = el("text", { x: p.mx, y: p.my, class: "edge-label", "text-anchor": "middle" }, edges);
        label.textContent = "blocking";
      }
    });
    const nodes = el("g", { class: "map-nodes" }, viewport);
    for (const t of tors) {
      const p = at.get(t.id);
      const g = el("g", {
        class: "map-node" + (t.is_active ? "" : " node-inactive"),
        transform: `translate(${p.x},${p.y})`,
        tabindex: 0, role: "button", "data-tor-id": t.id,
        "aria-label": `${t.label}: ${cadenceLine(t)}. Show details`,
      }, nodes);
      el("rect", { width: NODE_W, height: NODE_H, rx: 6 }, g);
      el("text", { x: 10, y: 22, class: "node-label" }, g).textContent = short(t.label, 24);
      el("text", { x: 10, y: 42, class: "node-sub" }, g).textContent =
        short(cadenceLine(t) + (t.is_active ? "" : " · inactive"), 30);
      el("title", {}, g).textContent = t.label;
      g.addEventListener("click", () => select(t, data, byId));
      g.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(t, data, byId); }
      });
    }
    fit();
  }

  // ---- details --------------------------------------------------------------------------

  function select(tor, data, byId) {
    for (const n of svg.querySelectorAll(".map-node.selected")) n.classList.remove("selected");
    const node = svg.querySelector(`.map-node[data-tor-id="${tor.id}"]`);
    if (node) node.classList.add("selected");
    details.replaceChildren();
    details.hidden = false;
    const h = html("h2", null, details);
    const a = html("a", tor.label, h);
    a.href = "/tors/" + tor.id;
    if (tor.description) html("p", tor.description, details);
    html("p", tor.cadence ? tor.cadence.summary : "No regular cadence.", details, "muted");
    html("h3", "Your capabilities", details);
    html("p", tor.my_capabilities.length ? tor.my_capabilities.join(", ") : "none", details);
    html("h3", "Functions", details);
    if (!tor.functions.length) html("p", "No functions.", details, "muted");
    const fl = html("ul", null, details);
    for (const f of tor.functions) {
      const holders = f.holders.map((x) => x.display_name).join(", ") || "vacant";
      html("li", `${f.label}: ${holders}`, fl);
    }
    html("h3", "Dependencies", details);
    const dl = html("ul", null, details);
    for (const d of data.dependencies) {
      const out = d.source_id === tor.id, other = byId.get(out ? d.target_id : d.source_id);
      if (!other || (d.source_id !== tor.id && d.target_id !== tor.id)) continue;
      const phrase = out
        ? (d.relation_type === "feeds_into" ? "feeds into" : "escalates to")
        : (d.relation_type === "feeds_into" ? "receives from" : "receives escalations from");
      html("li", `${phrase} ${other.label}${d.is_blocking ? " (blocking)" : ""}`, dl);
    }
    if (!dl.children.length) html("p", "None.", details, "muted");
  }

  // ---- zoom and pan ---------------------------------------------------------------------

  let view = { x: 0, y: 0, k: 1 };
  function apply() {
    viewport.setAttribute("transform", `translate(${view.x},${view.y}) scale(${view.k})`);
  }
  function zoom(factor, cx, cy) {
    const w = Number(svg.dataset.width || 1), h = Number(svg.dataset.height || 1);
    cx = cx === undefined ? w / 2 : cx;
    cy = cy === undefined ? h / 2 : cy;
    const k = Math.min(4, Math.max(0.2, view.k * factor));
    view.x = cx - (cx - view.x) * (k / view.k);
    view.y = cy - (cy - view.y) * (k / view.k);
    view.k = k;
    apply();
  }
  function fit() { view = { x: 0, y: 0, k: 1 }; apply(); }
  function svgPoint(evt) {
    const m = svg.getScreenCTM();
    return m ? new DOMPoint(evt.clientX, evt.clientY).matrixTransform(m.inverse()) : { x: 0, y: 0 };
  }
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const p = svgPoint(e);
    zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, p.x, p.y);
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (e) => {
    if (e.target.closest && e.target.closest(".map-node")) return;
    drag = { p: svgPoint(e), x: view.x, y: view.y };
    svg.setPointerCapture(e.pointerId);
  });
  svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const p = svgPoint(e);
    view.x = drag.x + (p.x - drag.p.x);
    view.y = drag.y + (p.y - drag.p.y);
    drag.p = p; drag.x = view.x; drag.y = view.y;
    apply();
  });
  svg.addEventListener("pointerup", () => { drag = null; });
  svg.addEventListener("keydown", (e) => {
    const step = 40;
    const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    if (e.target !== svg) return;
    if (moves[e.key]) { view.x += moves[e.key][0]; view.y += moves[e.key][1]; apply(); e.preventDefault(); }
    else if (e.key === "+" || e.key === "=") zoom(1.2);
    else if (e.key === "-") zoom(1 / 1.2);
    else if (e.key === "0") fit();
  });
  for (const b of root.querySelectorAll("[data-zoom]")) {
    b.addEventListener("click", () => {
      const z = b.dataset.zoom;
      if (z === "in") zoom(1.2); else if (z === "out") zoom(1 / 1.2); else fit();
    });
  }

  // ---- start ----------------------------------------------------------------------------

  root.hidden = false;
  fetch(root.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))))
    .then((data) => {
      draw(data);
      status.textContent = `${data.tors.length} ToRs, ${data.dependencies.length} dependencies`;
      root.dataset.ready = "true";
    })
    .catch((err) => {
      status.textContent = "The map could not be loaded (" + err.message + "); the list below shows the same.";
      root.dataset.ready = "error";
    });
})();
