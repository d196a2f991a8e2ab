// The rxrealtime dashboard page: renders the snapshots of /events (one JSON object per
// Server-Sent Event). Server values only ever go through textContent, never HTML.
"use strict";

(function () {
  const MAX_POINTS = 3600;
  const $ = (sel, root) => (root || document).querySelector(sel);
  const cards = new Map(); // session key -> card element
  let chart = null;
  let data = [[], [], []]; // time (s), billed seconds, burn (s/min)

  function duration(s) {
    if (s === null || s === undefined) return "n/a";
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + " s";
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return h ? h + "h " + String(m).padStart(2, "0") + "m" : m + "m " + String(r).padStart(2, "0") + "s";
  }
  const num = (v, digits) => (v === null || v === undefined ? "n/a" : Number(v).toFixed(digits));
  const money = (v) => (v === null || v === undefined ? "n/a"
    : trim(Number(v).toFixed(Math.abs(Number(v)) >= 1 ? 2 : 4)));
  const trim = (t) => (t.includes(".") ? t.replace(/0+$/, "").replace(/\.$/, "") : t);

  // A measured bitrate as the terminal view shows it: "412 kbit/s", "1.25 Mbit/s", or "n/a".
  const kbits = (bps) => (bps === null || bps === undefined ? "n/a"
    : bps >= 1e6 ? (bps / 1e6).toFixed(2) + " Mbit/s" : Math.round(bps / 1000) + " kbit/s");

  // Glass-to-glass latency, as the terminal view shows it: "p50 42 ms · p90 61 ms ·
  // first frame 0.84 s · picture-stamp, 120 samples"; a figure not measured is "n/a", never 0.
  function latency(g) {
    if (!g) return "n/a";
    const ms = (v) => (v === null || v === undefined ? "n/a" : Math.round(v) + " ms");
    let text = "p50 " + ms(g.p50_ms) + " · p90 " + ms(g.p90_ms);
    if (g.first_frame_s !== null) text += " · first frame " + num(g.first_frame_s, 2) + " s";
    if (g.samples) text += " · " + (g.source || "unknown source") + ", " + g.samples + " samples";
    return text;
  }

  function setTotal(name, text) {
    const el = $('[data-total="' + name + '"]');
    if (el.textContent !== text) el.textContent = text;
  }

  function set(card, name, text) {
    const el = $('[data-field="' + name + '"]', card);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function makeChart() {
    const el = $("#chart");
    const opts = {
      width: Math.max(300, el.clientWidth),
      height: 220,
      series: [
        {},
        { label: "billed (s)", stroke: "#58a6ff", width: 2, scale: "s" },
        { label: "burn (s/min)", stroke: "#f0a020", width: 2, scale: "rate" },
      ],
      axes: [
        { stroke: "#8b96a3", grid: { stroke: "#2a323c" } },
        { scale: "s", stroke: "#58a6ff", grid: { stroke: "#2a323c" } },
        { scale: "rate", side: 1, stroke: "#f0a020", grid: { show: false } },
      ],
      scales: { x: { time: true } },
    };
    chart = new uPlot(opts, data, el);
    window.addEventListener("resize", () =>
      chart.setSize({ width: Math.max(300, el.clientWidth), height: 220 })
    );
  }

  function addPoint(snap) {
    const t = snap.time, billed = snap.totals.billed_s, burn = snap.totals.burn_per_min;
    const n = data[0].length;
    if (n && t - data[0][n - 1] < 1 && n > 1 && t - data[0][n - 2] < 1) {
      data[0][n - 1] = t; data[1][n - 1] = billed; data[2][n - 1] = burn;
    } else {
      data[0].push(t); data[1].push(billed); data[2].push(burn);
      if (n + 1 > MAX_POINTS) data.forEach((col) => col.shift());
    }
  }

  function card(row) {
    let el = cards.get(row.key);
    if (!el) {
      el = $("#session-template").content.firstElementChild.cloneNode(true);
      el.dataset.key = row.key;
      $("#sessions").appendChild(el);
      cards.set(row.key, el);
    }
    return el;
  }

  function renderRow(row) {
    const el = card(row);
    const img = $(".video img", el);
    if (img.getAttribute("src") !== row.video) img.setAttribute("src", row.video);
    const state = $(".state", el);
    state.dataset.state = row.state;
    set(el, "state", row.state);
    set(el, "key", row.key);
    set(el, "model", row.model + (row.tier && row.tier !== "standard" ? " · " + row.tier : ""));
    set(el, "billed_s", row.billed_s + " s (" + row.ticks + " ticks)");
    set(el, "cost", money(row.cost));
    set(el, "burn", num(row.burn_per_min, 1) + " s/min" +
      (row.cost_per_min !== null ? " · " + money(row.cost_per_min) + "/min" : ""));
    set(el, "next_hour", Math.round(row.next_hour_s) + " s" +
      (row.next_hour_cost !== null ? " · " + money(row.next_hour_cost) : ""));
    set(el, "time_to_limit", row.budget_used === null ? "no budget"
      : row.budget_level === "over" ? "spent" : duration(row.time_to_limit_s) +
        (row.time_to_limit_s === null ? " (not burning)" : ""));
    const q = $('[data-field="quality"]', el);
    q.className = row.quality ? "q-" + row.quality : "";
    set(el, "quality", row.quality ? row.quality + (row.limiting ? " (" + row.limiting + ")" : "") : "n/a");
    set(el, "media", num(row.fps, 1) + " fps / " + (row.rtt_ms === null ? "n/a" : num(row.rtt_ms, 0) + " ms")
      + " / " + (row.loss === null ? "n/a" : num(row.loss * 100, 1) + " %"));
    set(el, "bitrate", kbits(row.bitrate_in_bps) + " / " + kbits(row.bitrate_out_bps));
    set(el, "latency", latency(row.latency));
    set(el, "reconnects", row.reconnects + (row.reconnects ? " (" + num(row.downtime_s, 1) + " s down)" : ""));
    set(el, "errors", String(row.errors));
    set(el, "prompt", row.prompt || "");
    set(el, "last_error", row.last_error || "");
    const budget = $(".budget", el);
    budget.hidden = row.budget_used === null;
    if (row.budget_used !== null) {
      const bar = $(".bar", el);
      bar.dataset.level = row.budget_level;
      $(".fill", el).style.width = Math.min(100, row.budget_used * 100).toFixed(1) + "%";
      const left = row.remaining_s === null ? "" : " · " + Math.floor(row.remaining_s) + " s left";
      set(el, "budget", Math.round(row.budget_used * 100) + " % of budget used" + left);
    }
  }

  function render(snap) {
    document.title = snap.title;
    $("#title").textContent = snap.title;
    const t = snap.totals;
    setTotal("billed_s", t.billed_s + " s");
    setTotal("cost", money(t.cost));
    setTotal("burn", num(t.burn_per_min, 1) + " s/min" +
      (t.cost_per_min !== null ? " · " + money(t.cost_per_min) + "/min" : ""));
    setTotal("next_hour", Math.round(t.burn_per_min * 60) + " s" +
      (t.next_hour_cost !== null ? " · " + money(t.next_hour_cost) : ""));
    setTotal("sessions", t.generating + " generating / " + t.sessions);
    setTotal("first_limit", !snap.budget ? "no budget" : t.first_limit_in_s === 0 ? "spent"
      : duration(t.first_limit_in_s));
    const seen = new Set();
    for (const row of snap.sessions) {
      seen.add(row.key);
      renderRow(row);
    }
    for (const [key, el] of cards) {
      if (!seen.has(key)) { el.remove(); cards.delete(key); }
    }
    if (snap.history) data = [snap.history.map((p) => p[0]), snap.history.map((p) => p[1]),
      snap.history.map((p) => p[2])];
    addPoint(snap);
    if (typeof uPlot !== "undefined") {
      if (!chart) makeChart(); else chart.setData(data);
    }
    $("#updated").textContent = "updated " + new Date(snap.time * 1000).toLocaleTimeString();
  }

  function connect() {
    const conn = $("#conn");
    const events = new EventSource("/events");
    events.onopen = () => { conn.dataset.state = "live"; conn.textContent = "live"; };
    events.onerror = () => { conn.dataset.state = "lost"; conn.textContent = "reconnecting…"; };
    events.onmessage = (e) => render(JSON.parse(e.data));
  }

  connect();
})();
