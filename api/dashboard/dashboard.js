// CollabX reference dashboard: a plain ES module, no build step, no chart library.
// The access token lives in this module's memory only: never in web storage or cookies.

const SVG_NS = "http://www.w3.org/2000/svg";
const state = { token: null, collaborative: null, scorecard: null, teams: [], socket: null, liveUpdates: 0 };

const $ = (id) => document.getElementById(id);

function setStatus(text) {
  $("status").textContent = text;
}

async function graphql(query, variables = {}) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${state.token}` },
    body: JSON.stringify({ query, variables }),
  });
  if (response.status === 401) throw new Error("the token was refused (401): sign in again");
  const body = await response.json();
  if (body.errors && body.errors.length) throw new Error(body.errors.map((e) => e.message).join("; "));
  return body.data;
}

async function signInWithCredentials(clientId, secret) {
  const form = new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, client_secret: secret });
  const response = await fetch("/oauth/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: form.toString(),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error_description || body.error || `HTTP ${response.status}`);
  return body.access_token;
}

const COLLABORATIVES = `{ collaboratives(first: 100) { nodes { id code name } } }`;

const SCORECARD = `query Scorecard($code: String!) {
  collaborative(code: $code) {
    id code name
    scorecard {
      period exact
      measures {
        measure { code name unit improvementDirection }
        goal teamsReporting rate teamsMeetingGoal teamsWithImprovementSignal teamsWithConcernSignal
        signals { rule variation periods }
        suppressed suppressionReason
      }
    }
    teams(first: 100) { nodes { code name } }
  }
}`;

const SERIES = `query Series($code: String!, $measure: String!) {
  collaborative(code: $code) {
    teams(first: 100) {
      nodes {
        code name
        measureSeries(measure: $measure) {
          points { period value annotations }
          runChart { computable reason points { period value centerLine } signals { rule variation periods } }
          controlChart {
            chart computable reason
            points { period value centerLine lowerLimit upperLimit outsideLimits }
            signals { rule variation side periods }
          }
          pdsaCycles { title period }
        }
      }
    }
  }
}`;

const SUBSCRIPTION = `subscription Live($collaborative: ID!) {
  measureDataSubmitted(collaborative: $collaborative) { receiptId submittedAt }
}`;

function formatNumber(value) {
  if (value === null || value === undefined) return "—";
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function signalText(row) {
  const parts = [];
  for (const signal of row.signals) {
    const kind = signal.variation === "IMPROVEMENT" ? "improvement" : signal.variation === "CONCERN" ? "concern" : "signal";
    parts.push(`${signal.rule.toLowerCase().replaceAll("_", " ")} (${kind})`);
  }
  const teams = [];
  if (row.teamsWithImprovementSignal) teams.push(`${row.teamsWithImprovementSignal} team(s) improving`);
  if (row.teamsWithConcernSignal) teams.push(`${row.teamsWithConcernSignal} team(s) of concern`);
  const text = [parts.length ? `Collaborative: ${parts.join(", ")}` : "", teams.join(", ")].filter(Boolean).join(". ");
  return text || "none";
}

function cell(row, text, field, value) {
  const td = document.createElement("td");
  td.textContent = text;
  td.dataset.field = field;
  if (value !== undefined) {
    td.className = "num";
    td.dataset.value = value === null ? "" : String(value);
  }
  row.appendChild(td);
  return td;
}

function renderScorecard() {
  const card = state.scorecard;
  $("scorecard-caption").textContent = card.period
    ? `${state.collaborative.name}, ${card.period}${card.exact ? "" : " (small counts suppressed)"}`
    : `${state.collaborative.name}: no data yet`;
  const body = $("scorecard").querySelector("tbody");
  body.replaceChildren();
  for (const row of card.measures) {
    const tr = document.createElement("tr");
    tr.dataset.measure = row.measure.code;
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = row.measure.name;
    tr.appendChild(th);
    const unit = row.measure.unit ? ` ${row.measure.unit}` : "";
    cell(tr, row.suppressed ? `suppressed (${row.suppressionReason})` : formatNumber(row.rate) + (row.rate === null ? "" : unit), "rate", row.rate);
    cell(tr, formatNumber(row.goal), "goal", row.goal);
    const meeting = row.teamsMeetingGoal === null ? "—" : `${row.teamsMeetingGoal} of ${row.teamsReporting}`;
    cell(tr, meeting, "teams-meeting-goal", row.teamsMeetingGoal);
    const signals = cell(tr, signalText(row), "signals");
    if (row.signals.some((s) => s.variation === "CONCERN") || row.teamsWithConcernSignal) signals.classList.add("signal-concern");
    else if (row.signals.length || row.teamsWithImprovementSignal) signals.classList.add("signal-improvement");
    body.appendChild(tr);
  }
  $("scorecard-section").hidden = false;
}

function el(name, attributes = {}, text) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function signalMap(signals) {
  const byPeriod = new Map();
  for (const signal of signals || []) {
    for (const period of signal.periods) {
      const previous = byPeriod.get(period);
      if (previous !== "CONCERN") byPeriod.set(period, signal.variation || previous || "SIGNAL");
    }
  }
  return byPeriod;
}

// One chart: points [{period, value, centerLine, lowerLimit, upperLimit, outsideLimits}].
function drawChart({ points, signals, goal, pdsa, title, desc, width, height, unit }) {
  const margin = { top: 14, right: 26, bottom: 26, left: 44 };
  const id = `chart-${Math.random().toString(36).slice(2)}`;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-labelledby": `${id}-t ${id}-d` });
  svg.appendChild(el("title", { id: `${id}-t` }, title));
  svg.appendChild(el("desc", { id: `${id}-d` }, desc));
  const values = [];
  for (const p of points) for (const v of [p.value, p.centerLine, p.lowerLimit, p.upperLimit]) if (v !== null && v !== undefined) values.push(v);
  if (goal !== null && goal !== undefined) values.push(goal);
  if (!points.length || !values.length) {
    svg.appendChild(el("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "No data"));
    return svg;
  }
  let low = Math.min(...values), high = Math.max(...values);
  if (low === high) { low -= 1; high += 1; }
  const pad = (high - low) * 0.08;
  low = Math.max(0, low - pad) === 0 && low >= 0 ? Math.max(0, low - pad) : low - pad;
  high += pad;
  const n = points.length;
  const x = (i) => margin.left + (n === 1 ? 0.5 : i / (n - 1)) * (width - margin.left - margin.right);
  const y = (v) => margin.top + (1 - (v - low) / (high - low)) * (height - margin.top - margin.bottom);
  svg.appendChild(el("line", { class: "axis", x1: margin.left, x2: margin.left, y1: margin.top, y2: height - margin.bottom }));
  svg.appendChild(el("line", { class: "axis", x1: margin.left, x2: width - margin.right, y1: height - margin.bottom, y2: height - margin.bottom }));
  for (const v of [low, (low + high) / 2, high]) {
    svg.appendChild(el("text", { x: margin.left - 4, y: y(v) + 4, "text-anchor": "end" }, formatNumber(v)));
  }
  const step = Math.max(1, Math.ceil(n / (width < 500 ? 3 : 8)));
  points.forEach((p, i) => {
    if (i % step === 0) {
      svg.appendChild(el("text", { x: x(i), y: height - margin.bottom + 14, "text-anchor": "middle" }, p.period));
    }
  });
  // Stepped lines (centre, limits) follow each point so parts and changing denominators show.
  const stepped = (key, cls, label) => {
    let d = "";
    points.forEach((p, i) => {
      const v = p[key];
      if (v === null || v === undefined) return;
      const x0 = i === 0 ? x(0) : (x(i - 1) + x(i)) / 2;
      const x1 = i === n - 1 ? x(i) : (x(i) + x(i + 1)) / 2;
      d += `M${x0.toFixed(1)},${y(v).toFixed(1)}H${x1.toFixed(1)}`;
    });
    if (d) {
      const path = el("path", { class: cls, d, fill: "none" });
      path.appendChild(el("title", {}, label));
      svg.appendChild(path);
    }
  };
  stepped("centerLine", "centre", "Centre line");
  stepped("lowerLimit", "limit", "Lower control limit");
  stepped("upperLimit", "limit", "Upper control limit");
  if (goal !== null && goal !== undefined) {
    const line = el("line", { class: "goal", x1: margin.left, x2: width - margin.right, y1: y(goal), y2: y(goal) });
    line.appendChild(el("title", {}, `Goal ${formatNumber(goal)}`));
    svg.appendChild(line);
  }
  const periods = points.map((p) => p.period);
  for (const cycle of pdsa || []) {
    const i = periods.indexOf(cycle.period);
    if (i < 0) continue;
    const g = el("g", { class: "pdsa-marker", "aria-label": `PDSA cycle ${cycle.title} starts ${cycle.period}` });
    g.appendChild(el("title", {}, `PDSA: ${cycle.title} (${cycle.period})`));
    g.appendChild(el("line", { class: "pdsa", x1: x(i), x2: x(i), y1: margin.top, y2: height - margin.bottom }));
    g.appendChild(el("path", { class: "pdsa-mark", d: `M${x(i) - 5},${margin.top - 8}h10l-5,8z` }));
    svg.appendChild(g);
  }
  let d = "";
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) return;
    d += `${d && points[i - 1] && points[i - 1].value !== null ? "L" : "M"}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`;
  });
  svg.appendChild(el("path", { class: "series", d }));
  const marks = signalMap(signals);
  points.forEach((p, i) => {
    if (p.value === null || p.value === undefined) return;
    const cx = x(i), cy = y(p.value);
    const variation = marks.get(p.period);
    let shape;
    let label = `${p.period}: ${formatNumber(p.value)}${unit ? " " + unit : ""}`;
    if (variation === "CONCERN") {
      shape = el("path", { class: "concern", d: `M${cx},${cy - 6}l5.5,9.5h-11z` });
      label += ", signal of concern";
    } else if (variation) {
      shape = el("path", { class: "improvement", d: `M${cx},${cy - 6}l6,6l-6,6l-6,-6z` });
      label += variation === "IMPROVEMENT" ? ", signal of improvement" : ", signal";
    } else if (p.outsideLimits) {
      shape = el("rect", { class: "outside", x: cx - 4.5, y: cy - 4.5, width: 9, height: 9 });
      label += ", outside the control limits";
    } else {
      shape = el("circle", { class: "point", cx, cy, r: 3 });
    }
    if (p.outsideLimits && variation) label += ", outside the control limits";
    shape.setAttribute("aria-label", label);
    shape.appendChild(el("title", {}, label));
    svg.appendChild(shape);
  });
  return svg;
}

function describe(series, kind) {
  const chart = series[kind];
  const count = series.points.filter((p) => p.value !== null).length;
  const signals = chart.signals.map((s) => `${s.rule}${s.variation ? " (" + s.variation.toLowerCase() + ")" : ""}`);
  return `${count} months with data. ${signals.length ? "Signals: " + signals.join(", ") + "." : "No signals."}`;
}

function selectedMeasure() {
  return state.scorecard.measures.find((m) => m.measure.code === $("measure").value);
}

function renderControlChart(teams) {
  const figure = $("control-chart");
  figure.replaceChildren();
  const row = selectedMeasure();
  const team = teams.find((t) => t.code === $("team").value) || teams[0];
  const caption = document.createElement("figcaption");
  figure.appendChild(caption);
  if (!team || !team.measureSeries) {
    caption.textContent = "No series for this team and measure.";
    return;
  }
  const series = team.measureSeries;
  const chart = series.controlChart;
  caption.textContent = `Control chart (${chart.chart}) of ${row.measure.name}, ${team.name}`;
  if (!chart.computable) {
    caption.textContent += `: not computable (${chart.reason})`;
    return;
  }
  figure.appendChild(drawChart({
    points: chart.points,
    signals: chart.signals,
    goal: row.goal,
    pdsa: series.pdsaCycles,
    title: caption.textContent,
    desc: describe(series, "controlChart"),
    width: 900,
    height: 320,
    unit: row.measure.unit,
  }));
}

function renderSmallMultiples(teams) {
  const container = $("small-multiples");
  container.replaceChildren();
  const row = selectedMeasure();
  for (const team of teams) {
    const figure = document.createElement("figure");
    figure.dataset.team = team.code;
    const caption = document.createElement("figcaption");
    caption.textContent = team.name;
    figure.appendChild(caption);
    const series = team.measureSeries;
    if (!series || !series.runChart.computable) {
      const p = document.createElement("p");
      p.textContent = series ? `Not computable (${series.runChart.reason})` : "No series";
      figure.appendChild(p);
    } else {
      figure.appendChild(drawChart({
        points: series.runChart.points,
        signals: series.runChart.signals,
        goal: row.goal,
        pdsa: series.pdsaCycles,
        title: `Run chart of ${row.measure.name}, ${team.name}`,
        desc: describe(series, "runChart"),
        width: 300,
        height: 170,
        unit: row.measure.unit,
      }));
    }
    container.appendChild(figure);
  }
}

async function loadCharts() {
  if (!state.scorecard || !$("measure").value) return;
  const data = await graphql(SERIES, { code: state.collaborative.code, measure: $("measure").value });
  const teams = data.collaborative ? data.collaborative.teams.nodes : [];
  renderControlChart(teams);
  renderSmallMultiples(teams);
  $("charts-section").hidden = false;
}

function fillSelect(select, options, keep) {
  const previous = keep ? select.value : null;
  select.replaceChildren();
  for (const [value, label] of options) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label;
    select.appendChild(option);
  }
  if (previous && options.some(([value]) => value === previous)) select.value = previous;
}

async function loadScorecard(keepSelection) {
  const data = await graphql(SCORECARD, { code: state.collaborative.code });
  if (!data.collaborative) throw new Error("the collaborative is not visible to this client");
  state.collaborative = data.collaborative;
  state.scorecard = data.collaborative.scorecard;
  renderScorecard();
  fillSelect($("measure"), state.scorecard.measures.map((m) => [m.measure.code, m.measure.name]), keepSelection);
  fillSelect($("team"), data.collaborative.teams.nodes.map((t) => [t.code, t.name]), keepSelection);
  await loadCharts();
}

function subscribe() {
  if (state.socket) state.socket.close(1000, "collaborative changed");
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`;
  const socket = new WebSocket(url, "graphql-transport-ws");
  const live = $("live");
  state.socket = socket;
  live.dataset.connected = "false";
  socket.addEventListener("open", () => {
    socket.send(JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${state.token}` } }));
  });
  socket.addEventListener("message", async (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "connection_ack") {
      socket.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: SUBSCRIPTION, variables: { collaborative: state.collaborative.id } } }));
      live.textContent = "Live updates: on";
      live.dataset.connected = "true";
    } else if (message.type === "ping") {
      socket.send(JSON.stringify({ type: "pong" }));
    } else if (message.type === "next") {
      try {
        await loadScorecard(true);
        state.liveUpdates += 1;
        live.dataset.liveUpdates = String(state.liveUpdates);
        live.textContent = `Live updates: on; refreshed ${new Date().toLocaleTimeString()} after new data`;
      } catch (error) {
        setStatus(`Refresh failed: ${error.message}`);
      }
    } else if (message.type === "error") {
      live.textContent = `Live updates: refused by the server (${message.payload.map((e) => e.message).join("; ")})`;
      live.dataset.connected = "false";
    }
  });
  socket.addEventListener("close", () => {
    if (state.socket === socket) {
      live.textContent = "Live updates: off (connection closed)";
      live.dataset.connected = "false";
    }
  });
}

async function pickCollaborative(code) {
  document.body.dataset.ready = "false";
  state.collaborative = { code, name: code };
  setStatus(`Loading ${code}…`);
  await loadScorecard(false);
  subscribe();
  setStatus(`Showing ${state.collaborative.name}.`);
  document.body.dataset.ready = "true";
}

async function afterSignIn(token) {
  state.token = token;
  const data = await graphql(COLLABORATIVES);
  const nodes = data.collaboratives.nodes;
  fillSelect($("collaborative"), nodes.map((c) => [c.code, `${c.name} (${c.code})`]), false);
  $("signin").hidden = true;
  $("picker").hidden = false;
  setStatus(`Signed in; ${nodes.length} collaborative(s).`);
  if (nodes.length) await pickCollaborative(nodes[0].code);
}

function guard(action) {
  return async (event) => {
    if (event) event.preventDefault();
    try {
      await action();
    } catch (error) {
      setStatus(`Error: ${error.message}`);
    }
  };
}

$("credentials-form").addEventListener("submit", guard(async () => {
  setStatus("Signing in…");
  const token = await signInWithCredentials($("client-id").value, $("client-secret").value);
  $("client-secret").value = "";
  await afterSignIn(token);
}));
$("token-form").addEventListener("submit", guard(async () => {
  const token = $("token").value.trim();
  $("token").value = "";
  await afterSignIn(token);
}));
$("collaborative").addEventListener("change", guard(() => pickCollaborative($("collaborative").value)));
$("measure").addEventListener("change", guard(loadCharts));
$("team").addEventListener("change", guard(loadCharts));
