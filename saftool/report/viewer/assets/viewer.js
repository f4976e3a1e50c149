// saftool report viewer: reads the data block (saftool/report/viewer/__init__.py documents its layout) and draws the
// views. No network, no libraries: it runs from file://.
"use strict";

const PAGE = 50;
const $ = (id) => document.getElementById(id);

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function fmt(value, digits = 1) {
  if (value === null || value === undefined || value === "") return "";
  return typeof value === "number" && !Number.isInteger(value) ? value.toFixed(digits) : String(value);
}

async function loadData() {
  const block = $("saftool-data");
  let text = block.textContent;
  if (block.dataset.encoding === "gzip+base64") {
    const raw = atob(text.trim());
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    text = await new Response(stream).text();
  }
  return JSON.parse(text);
}

function rowsOf(table) {
  return table.rows.map((r) => Object.fromEntries(table.columns.map((c, i) => [c, r[i]])));
}

function tableHtml(columns, rows, attrs = "") {
  const head = columns.map((c) => `<th>${esc(c)}</th>`).join("");
  const body = rows.map((r) => `<tr>${r.map((v) => `<td${typeof v === "number" ? ' class="num"' : ""}>${esc(fmt(v, 2))}</td>`).join("")}</tr>`).join("");
  return `<table ${attrs}><tr>${head}</tr>${body}</table>`;
}

function options(select, pairs) {
  select.innerHTML = pairs.map(([value, label]) => `<option value="${esc(value)}">${esc(label)}</option>`).join("");
}

// exact two-sided McNemar p: a binomial test of min(b, c) against b + c at one half (as report.py)
function mcnemar(b, c) {
  const n = b + c;
  if (n === 0) return 1;
  const logFact = [0];
  for (let k = 1; k <= n; k++) logFact.push(logFact[k - 1] + Math.log(k));
  const logs = [];
  for (let i = 0; i <= Math.min(b, c); i++) logs.push(logFact[n] - logFact[i] - logFact[n - i] - n * Math.log(2));
  const top = Math.max(...logs);
  return Math.min(1, 2 * Math.exp(top) * logs.reduce((s, v) => s + Math.exp(v - top), 0));
}

class Viewer {
  constructor(data) {
    this.d = data;
    this.a = data.answers;
    this.p = data.prompts;
    this.n = data.answers.model.length;
    this.drawn = {};
    this.page = { answers: 0, flips: 0 };
    this.lower = null;
  }

  // --- common -------------------------------------------------------------------------------
  kindOf(i) { return this.p.kind[this.a.prompt[i]]; }
  evalOf(i) { return this.p.eval_set[this.a.prompt[i]]; }

  // the good outcome of answer i (safe on a harmful prompt, not refused on a benign one); null: no verdict
  good(i) {
    const label = this.d.labels[this.a.label[i]];
    if (this.kindOf(i) === "harmful") return this.a.safe[i] === null ? null : this.a.safe[i] === 1;
    if (label === undefined || label === "unknown") return null;
    return label !== "refusal" && label !== "partial";
  }

  labelHtml(code) {
    const label = this.d.labels[code] ?? "none";
    return `<span class="lab-${esc(label)}">${esc(label)}</span>`;
  }

  promptHtml(i) {
    const p = this.a.prompt[i];
    const input = this.p.input[p] ? `\n\n${this.p.input[p]}` : "";
    return `<div class="text">${esc(this.p.text[p] + input)}</div>`;
  }

  showTab(name) {
    document.querySelectorAll("nav button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
    document.querySelectorAll("section.tab").forEach((s) => { s.hidden = s.id !== `tab-${name}`; });
    if (!this.drawn[name]) {
      this.drawn[name] = true;
      ({ compare: () => this.initCompare(), judges: () => this.drawJudges(), training: () => this.drawTraining(),
         usage: () => this.drawUsage(), tables: () => this.drawTables() })[name]?.();
    }
  }

  start() {
    const d = this.d;
    document.querySelectorAll("nav button").forEach((b) => b.addEventListener("click", () => this.showTab(b.dataset.tab)));
    if (d.notice) { $("notice").hidden = false; $("notice").textContent = d.notice; }
    $("summary").textContent = d.judge
      ? `Judge: ${d.judge}. ${d.models.length} models, ${d.eval_sets.length} eval sets, ${d.answers_total} answers.`
      : "No judgments to score yet.";
    const t0 = performance.now();
    this.drawMatrix();
    const t1 = performance.now();
    this.initAnswers();
    const t2 = performance.now();
    this.drawn.scores = this.drawn.answers = true;
    // ready_ms counts from the start of navigation: reading the page, decoding the data, drawing
    window.saftoolTimings = { matrix_ms: t1 - t0, answers_ms: t2 - t1, ready_ms: performance.now() };
    document.body.dataset.ready = "1";
  }

  // --- score matrix -------------------------------------------------------------------------
  drawMatrix() {
    const d = this.d;
    if (!d.tables.length) {
      $("matrix").innerHTML = `<p class="empty">This store has no judgments, so there are no scores yet. Run <code>saftool judge</code>, then <code>saftool report</code>.</p>`;
      return;
    }
    const seeded = d.models.some((m) => m.n_seeds > 1);
    $("seed-mode-row").hidden = !seeded;
    $("seed-mode").onchange = () => this.drawMatrix();
    const groups = seeded && $("seed-mode").value === "groups";
    const cells = new Map();
    if (groups) {
      for (const r of rowsOf(d.by_model)) cells.set(`${r.model}\u0000${r.eval_set}\u0000${r.metric}`, { ...r, score: r.mean, n: null });
    } else {
      for (const r of rowsOf(d.tables[0])) cells.set(`${r.model}\u0000${r.eval_set}\u0000${r.metric}`, r);
    }
    const names = groups ? [...new Set(d.models.map((m) => m.group))] : d.models.map((m) => m.name);
    const metrics = { harmful: ["safety"], benign: ["conservativeness", "helpfulness"], mixed: ["safety", "conservativeness", "helpfulness"] };
    const sets = [...new Set(rowsOf(d.tables[0]).map((r) => r.eval_set))];
    const kindOf = Object.fromEntries(d.eval_sets.map((e) => [e.name, e.kind]));
    let html = `<table id="matrix-table"><tr><th>${groups ? "model (seeds)" : "model"}</th>`;
    html += sets.map((s) => `<th data-eval-set="${esc(s)}">${esc(s)}</th>`).join("") + "</tr>";
    for (const name of names) {
      html += `<tr data-model="${esc(name)}"><th>${esc(name)}</th>`;
      for (const set of sets) {
        const parts = [];
        let colour = "#fff";
        for (const metric of metrics[kindOf[set] ?? "mixed"]) {
          const r = cells.get(`${name}\u0000${set}\u0000${metric}`);
          if (!r || r.score === null || r.score === undefined) continue;
          const interval = r.low === null || r.low === undefined ? "" : ` <span class="ci">[${fmt(r.low)}, ${fmt(r.high)}]</span>`;
          const count = groups ? `${r.n_seeds} seed${r.n_seeds === 1 ? "" : "s"}` : `n=${r.n}`;
          const extra = Object.entries(r).filter(([k]) => !["model", "eval_set", "metric", "position"].includes(k)).map(([k, v]) => `${k}: ${fmt(v, 3)}`).join("\n");
          parts.push(`<div class="metric" title="${esc(extra)}">${esc(metric)} <b>${fmt(r.score)}</b>${interval} <small>${count}</small></div>`);
          if (typeof r.corrected === "number") {
            parts.push(`<div class="metric corrected" title="judge-corrected estimate (profile ${esc(r.profile)})">judge-corrected ${fmt(r.corrected)} <span class="ci">[${fmt(r.corrected_low)}, ${fmt(r.corrected_high)}]</span></div>`);
          }
          if (parts.length === 1) {
            const good = metric === "conservativeness" ? 100 - r.score : r.score;
            colour = `hsl(${(good * 1.2).toFixed(0)}, 65%, 86%)`;
          }
        }
        html += `<td class="cell" data-model="${esc(name)}" data-eval-set="${esc(set)}" style="background:${colour}">${parts.join("")}</td>`;
      }
      html += "</tr>";
    }
    $("matrix").innerHTML = html + "</table>" + (d.tables[0].note ? `<p class="help" id="scores-note">${esc(d.tables[0].note)}</p>` : "");
    $("matrix").querySelectorAll("td.cell").forEach((td) => td.addEventListener("click", () => {
      $("f-model").value = (groups ? "g:" : "m:") + td.dataset.model;
      $("f-eval").value = td.dataset.evalSet;
      $("f-category").value = $("f-label").value = $("f-safe").value = $("f-text").value = "";
      this.page.answers = 0;
      this.filterAnswers();
      this.showTab("answers");
    }));
  }

  // --- answer browser -----------------------------------------------------------------------
  initAnswers() {
    const d = this.d;
    const groups = [...new Set(d.models.filter((m) => m.n_seeds > 1).map((m) => m.group))];
    options($("f-model"), [["", "all"], ...d.models.map((m) => [`m:${m.name}`, m.name]), ...groups.map((g) => [`g:${g}`, `${g} (all seeds)`])]);
    options($("f-eval"), [["", "all"], ...d.eval_sets.map((e) => [e.name, e.name])]);
    options($("f-category"), [["", "all"], ...d.categories.map((c) => [c, c])]);
    options($("f-label"), [["", "all"], ...d.labels.map((l) => [l, l])]);
    for (const id of ["f-model", "f-eval", "f-category", "f-label", "f-safe"]) {
      $(id).addEventListener("change", () => { this.page.answers = 0; this.filterAnswers(); });
    }
    let timer = null;
    $("f-text").addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => { this.page.answers = 0; this.filterAnswers(); }, 150);
    });
    if (d.answers_total > this.n) {
      $("answer-sample").textContent = `(the viewer holds ${this.n} of the store's ${d.answers_total} answers: the same sample of prompts for every model)`;
    }
    this.filterAnswers();
  }

  filterAnswers() {
    const d = this.d;
    const a = this.a;
    const model = $("f-model").value;
    const modelSet = new Set();
    d.models.forEach((m, i) => {
      if (model === `m:${m.name}` || (model === `g:${m.group}` && m.n_seeds > 1)) modelSet.add(i);
    });
    const set = d.eval_sets.findIndex((e) => e.name === $("f-eval").value);
    const category = d.categories.indexOf($("f-category").value);
    const label = d.labels.indexOf($("f-label").value);
    const safe = $("f-safe").value;
    const text = $("f-text").value.trim().toLowerCase();
    if (text && !this.lower) {
      this.lower = { prompt: this.p.text.map((t, i) => `${t}\n${this.p.input[i]}`.toLowerCase()), response: a.response.map((t) => t.toLowerCase()), rationale: d.rationales.map((t) => t.toLowerCase()) };
    }
    const shown = [];
    for (let i = 0; i < this.n; i++) {
      const p = a.prompt[i];
      if (model && !modelSet.has(a.model[i])) continue;
      if (set >= 0 && this.p.eval_set[p] !== set) continue;
      if (category >= 0 && this.p.category[p] !== category) continue;
      if (label >= 0 && a.label[i] !== label) continue;
      if (safe && String(a.safe[i]) !== safe) continue;
      if (text && !(this.lower.prompt[p].includes(text) || this.lower.response[i].includes(text) || this.lower.rationale[a.rationale[i]].includes(text))) continue;
      shown.push(i);
    }
    this.shown = shown;
    $("answer-count").textContent = `${shown.length} answers`;
    $("answer-count").dataset.count = String(shown.length);
    this.drawAnswerPage();
  }

  pager(element, total, key, redraw) {
    const pages = Math.max(1, Math.ceil(total / PAGE));
    this.page[key] = Math.min(this.page[key], pages - 1);
    const at = this.page[key];
    element.innerHTML = `<button data-go="-1" ${at === 0 ? "disabled" : ""}>previous</button>`
      + `<span> page ${at + 1} of ${pages} </span>`
      + `<button data-go="1" ${at >= pages - 1 ? "disabled" : ""}>next</button>`;
    element.querySelectorAll("button").forEach((b) => b.addEventListener("click", () => {
      this.page[key] += Number(b.dataset.go);
      redraw();
    }));
    return at * PAGE;
  }

  drawAnswerPage() {
    const d = this.d;
    const a = this.a;
    const from = this.pager($("answer-pager"), this.shown.length, "answers", () => this.drawAnswerPage());
    let html = `<tr><th class="narrow">model</th><th class="narrow">eval set / id</th><th class="narrow">category</th><th>prompt</th><th>answer</th><th class="narrow">label</th><th class="narrow">safe</th><th>rationale</th></tr>`;
    for (const i of this.shown.slice(from, from + PAGE)) {
      const p = a.prompt[i];
      const category = this.p.category[p] >= 0 ? d.categories[this.p.category[p]] : "";
      const safe = a.safe[i] === null ? "" : a.safe[i] ? "safe" : "unsafe";
      html += `<tr class="answer" data-index="${i}"><td class="narrow">${esc(d.models[a.model[i]].name)}</td>`
        + `<td class="narrow">${esc(d.eval_sets[this.p.eval_set[p]].name)}<br><small>${esc(this.p.id[p])}</small></td>`
        + `<td class="narrow">${esc(category)}</td><td>${this.promptHtml(i)}</td><td><div class="text">${esc(a.response[i])}</div></td>`
        + `<td class="narrow">${this.labelHtml(a.label[i])}</td><td class="narrow">${safe}</td><td><div class="text">${esc(d.rationales[a.rationale[i]])}</div></td></tr>`;
    }
    $("answer-table").innerHTML = html;
  }

  // --- paired comparison --------------------------------------------------------------------
  initCompare() {
    const d = this.d;
    const groups = [...new Set(d.models.filter((m) => m.n_seeds > 1).map((m) => m.group))];
    const names = [...d.models.map((m) => [`m:${m.name}`, m.name]), ...groups.map((g) => [`g:${g}`, `${g} (all seeds, paired within each seed)`])];
    options($("c-a"), names);
    options($("c-b"), names);
    if (names.length > 1) $("c-b").value = names[1][0];
    $("c-a").onchange = $("c-b").onchange = () => { this.page.flips = 0; this.drawCompare(); };
    this.drawCompare();
  }

  // a choice of the compare view as {seed: model index}: a seed group's members, or one model
  side(value) {
    const out = new Map();
    this.d.models.forEach((m, i) => {
      if (value === `m:${m.name}` || (value === `g:${m.group}` && m.n_seeds > 1)) out.set(value.startsWith("g:") ? m.seed : null, i);
    });
    return out;
  }

  // (seed label, model a, model b) pairs: seed groups are paired within each seed
  comparePairs(sa, sb) {
    if (sa.size > 1 && sb.size > 1) return [...sa].filter(([seed]) => sb.has(seed)).map(([seed, i]) => [seed, i, sb.get(seed)]);
    if (sa.size > 1) return [...sa].map(([seed, i]) => [seed, i, [...sb.values()][0]]);
    if (sb.size > 1) return [...sb].map(([seed, i]) => [seed, [...sa.values()][0], i]);
    return [["", [...sa.values()][0], [...sb.values()][0]]];
  }

  drawCompare() {
    const clear = (message) => {
      $("compare-result").innerHTML = `<p class="empty">${message}</p>`;
      $("flip-table").innerHTML = $("flip-pager").innerHTML = "";
    };
    if (!this.d.models.length) { clear("No judged models."); return; }
    const sa = this.side($("c-a").value);
    const sb = this.side($("c-b").value);
    if ([...sa.values()].some((i) => [...sb.values()].includes(i))) { clear("A and B are the same model; choose two different models."); return; }
    const pairs = this.comparePairs(sa, sb);
    if (!pairs.length) { clear("The two seed groups have no seed in common."); return; }
    const counts = new Map();
    const flips = [];
    const add = (key, seed, set, ga, gb) => {
      if (!counts.has(key)) counts.set(key, { seed, set, n_pairs: 0, a_only: 0, b_only: 0, both_ok: 0, neither: 0 });
      const c = counts.get(key);
      c.n_pairs++;
      if (ga && gb) c.both_ok++;
      else if (!ga && !gb) c.neither++;
      else c[ga ? "a_only" : "b_only"]++;
    };
    for (const [seed, ma, mb] of pairs) {
      const byPrompt = new Map();
      for (let i = 0; i < this.n; i++) {
        const m = this.a.model[i];
        if (m !== ma && m !== mb) continue;
        const p = this.a.prompt[i];
        if (!byPrompt.has(p)) byPrompt.set(p, [-1, -1]);
        byPrompt.get(p)[m === ma ? 0 : 1] = i;
      }
      for (const [p, [ia, ib]] of byPrompt) {
        if (ia < 0 || ib < 0) continue;
        const ga = this.good(ia);
        const gb = this.good(ib);
        if (ga === null || gb === null) continue;
        const set = this.d.eval_sets[this.p.eval_set[p]].name;
        add(`${seed}\u0000${set}`, seed, set, ga, gb);
        if (pairs.length > 1) add(`all\u0000${set}`, "all", set, ga, gb);
        if (ga !== gb) flips.push([ia, ib, ga]);
      }
    }
    const a = $("c-a").selectedOptions[0].textContent;
    const b = $("c-b").selectedOptions[0].textContent;
    if (!counts.size) { clear(`${esc(a)} and ${esc(b)} answered no prompt in common (same eval set and id).`); return; }
    const seeded = pairs.length > 1;
    let html = `<table id="compare-table"><tr>${seeded ? "<th>seed</th>" : ""}<th>eval set</th><th>pairs</th><th>both good</th><th>both bad</th><th>only A (${esc(a)}) good</th><th>only B (${esc(b)}) good</th><th>McNemar exact p</th></tr>`;
    const order = (c) => `${c.seed === "all" ? "~" : String(c.seed).padStart(6, "0")}\u0000${c.set}`;
    for (const c of [...counts.values()].sort((x, y) => (order(x) < order(y) ? -1 : order(x) > order(y) ? 1 : 0))) {
      html += `<tr data-seed="${esc(c.seed)}" data-eval-set="${esc(c.set)}" data-n-pairs="${c.n_pairs}" data-a-only="${c.a_only}" data-b-only="${c.b_only}" data-both-ok="${c.both_ok}" data-neither="${c.neither}">`
        + `${seeded ? `<td>${esc(c.seed)}</td>` : ""}<td>${esc(c.set)}</td><td class="num">${c.n_pairs}</td><td class="num">${c.both_ok}</td><td class="num">${c.neither}</td>`
        + `<td class="num">${c.a_only}</td><td class="num">${c.b_only}</td><td class="num">${mcnemar(c.a_only, c.b_only).toPrecision(3)}</td></tr>`;
    }
    $("compare-result").innerHTML = html + `</table><h3>Flipped prompts (${flips.length})</h3>`;
    this.flips = flips;
    this.drawFlipPage();
  }

  drawFlipPage() {
    const from = this.pager($("flip-pager"), this.flips.length, "flips", () => this.drawFlipPage());
    let html = `<tr><th class="narrow">eval set / id</th><th>prompt</th><th>A's answer</th><th>B's answer</th><th class="narrow">good</th></tr>`;
    for (const [ia, ib, aGood] of this.flips.slice(from, from + PAGE)) {
      const p = this.a.prompt[ia];
      const models = `${this.d.models[this.a.model[ia]].name} / ${this.d.models[this.a.model[ib]].name}`;
      html += `<tr class="flip"><td class="narrow">${esc(this.d.eval_sets[this.p.eval_set[p]].name)}<br><small>${esc(this.p.id[p])}<br>${esc(models)}</small></td>`
        + `<td>${this.promptHtml(ia)}</td>`
        + `<td><div class="text">${esc(this.a.response[ia])}</div>${this.labelHtml(this.a.label[ia])}</td>`
        + `<td><div class="text">${esc(this.a.response[ib])}</div>${this.labelHtml(this.a.label[ib])}</td>`
        + `<td class="narrow">only ${aGood ? "A" : "B"}</td></tr>`;
    }
    $("flip-table").innerHTML = html;
  }

  // --- judges -------------------------------------------------------------------------------
  labelsBy(judge) {
    return judge === this.d.judge ? this.a.label : this.d.verdicts[judge];
  }

  drawJudges() {
    const d = this.d;
    if (d.judges.length < 2) {
      $("judges").innerHTML = `<p class="empty">Only ${d.judges.length ? `one judge (${esc(d.judges[0])})` : "no judge"} judged this store, so there is no disagreement to show. Judge the same answers with another judge (for example <code>saftool judge --judge learned</code>) and report again.</p>`;
      return;
    }
    const rows = d.judge_pairs.map((p, i) => [i, p.a, p.b, p.n, p.agreement, p.kappa]);
    let html = `<p class="help">Pairs of judges over the answers both judged: agreement on the label and Cohen's kappa. Choose a pair for its confusion matrix and the answers it splits on.</p>`;
    html += `<table id="judge-pairs"><tr><th></th><th>judge a</th><th>judge b</th><th>answers</th><th>agreement</th><th>Cohen's kappa</th></tr>`;
    html += rows.map(([i, a, b, n, agree, k]) => `<tr data-pair="${i}"><td><input type="radio" name="pair" value="${i}" ${i === 0 ? "checked" : ""}></td><td>${esc(a)}</td><td>${esc(b)}</td><td class="num">${n}</td><td class="num">${fmt(agree, 3)}</td><td class="num">${fmt(k, 3)}</td></tr>`).join("");
    html += `</table><div id="judge-pair"></div><div class="pager" id="split-pager"></div><table id="split-table" class="rows"></table>`;
    $("judges").innerHTML = html;
    this.page.splits = 0;
    $("judges").querySelectorAll("input[name=pair]").forEach((r) => r.addEventListener("change", () => { this.page.splits = 0; this.drawPair(Number(r.value)); }));
    if (rows.length) this.drawPair(0);
  }

  drawPair(index) {
    const d = this.d;
    const pair = d.judge_pairs[index];
    const head = d.labels.map((l) => `<th>${esc(l)}</th>`).join("");
    let html = `<h3>${esc(pair.a)} (rows) against ${esc(pair.b)} (columns)</h3><table id="confusion"><tr><th></th>${head}</tr>`;
    pair.confusion.forEach((row, i) => { html += `<tr><th>${esc(d.labels[i])}</th>${row.map((v) => `<td class="num">${v}</td>`).join("")}</tr>`; });
    html += "</table>";
    const la = this.labelsBy(pair.a);
    const lb = this.labelsBy(pair.b);
    this.splits = [];
    if (la && lb) {
      for (let i = 0; i < this.n; i++) if (la[i] >= 0 && lb[i] >= 0 && la[i] !== lb[i]) this.splits.push(i);
      html += `<h3>Answers they split on (${this.splits.length} in the viewer)</h3>`;
    }
    $("judge-pair").innerHTML = html;
    this.pairLabels = [la, lb, pair];
    this.drawSplitPage();
  }

  drawSplitPage() {
    const [la, lb, pair] = this.pairLabels;
    const from = this.pager($("split-pager"), this.splits.length, "splits", () => this.drawSplitPage());
    let html = `<tr><th class="narrow">model</th><th>prompt</th><th>answer</th><th class="narrow">${esc(pair.a)}</th><th class="narrow">${esc(pair.b)}</th></tr>`;
    for (const i of this.splits.slice(from, from + PAGE)) {
      html += `<tr class="split"><td class="narrow">${esc(this.d.models[this.a.model[i]].name)}</td><td>${this.promptHtml(i)}</td>`
        + `<td><div class="text">${esc(this.a.response[i])}</div></td><td class="narrow">${this.labelHtml(la[i])}</td><td class="narrow">${this.labelHtml(lb[i])}</td></tr>`;
    }
    $("split-table").innerHTML = html;
  }

  // --- training runs ------------------------------------------------------------------------
  lossSvg(points) {
    if (points.length < 2) return "<p>no loss curve</p>";
    const w = 360, h = 140, pad = 32;
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]).filter((y) => y !== null);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    const sx = (x) => pad + ((x - x0) / (x1 - x0 || 1)) * (w - pad - 8);
    const sy = (y) => h - pad + 8 - ((y - y0) / (y1 - y0 || 1)) * (h - pad - 8);
    const line = points.filter((p) => p[1] !== null).map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ");
    return `<svg class="loss" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="loss curve">`
      + `<polyline fill="none" stroke="#36c" stroke-width="1.5" points="${line}"/>`
      + `<line x1="${pad}" y1="${h - pad + 8}" x2="${w - 8}" y2="${h - pad + 8}" stroke="#999"/><line x1="${pad}" y1="8" x2="${pad}" y2="${h - pad + 8}" stroke="#999"/>`
      + `<text x="${pad}" y="${h - 6}" font-size="10">step ${x0}</text><text x="${w - 8}" y="${h - 6}" font-size="10" text-anchor="end">${x1}</text>`
      + `<text x="2" y="14" font-size="10">${fmt(y1, 2)}</text><text x="2" y="${h - pad + 8}" font-size="10">${fmt(y0, 2)}</text></svg>`;
  }

  drawTraining() {
    const runs = this.d.train_runs;
    if (!runs.length) { $("training").innerHTML = "<p class='empty'>No training runs in this store (models/NAME/train_run.json).</p>"; return; }
    $("training").innerHTML = runs.map((r) => {
      const m = r.manifest;
      const counts = m ? Object.entries(m.counts || {}).map(([field, c]) => `${esc(field)}: ${Object.entries(c).map(([k, v]) => `${esc(k)} ${v}`).join(", ")}`).join("<br>") : "";
      const facts = [["base", r.base_model], ["method", r.method], ["preset", r.preset], ["seed", r.seed], ["mix", r.mix],
        ["mix examples", m ? `${m.n_total} (${m.n_benign} benign + ${m.n_harmful} harmful${m.style ? `, ${m.style}` : ""})` : "no manifest"],
        ["template", r.template], ["tokens seen", r.tokens_seen], ["tokens/s", r.tokens_per_second], ["wall time (s)", r.wall_seconds], ["completed", r.completed]];
      return `<div class="card" data-model="${esc(r.model)}"><h3>${esc(r.model)}</h3><table>${facts.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(fmt(v, 1))}</td></tr>`).join("")}`
        + `${counts ? `<tr><th>mix counts</th><td><small>${counts}</small></td></tr>` : ""}</table>${this.lossSvg(r.loss)}</div>`;
    }).join("");
  }

  // --- tokens and API use -------------------------------------------------------------------
  drawUsage() {
    const d = this.d;
    let html = "<h3>Answers and tokens per model (as infer counted them)</h3>";
    html += d.tokens.length ? tableHtml(["model", "backend", "answers", "prompt tokens", "completion tokens"], d.tokens.map((r) => [r.model, r.backend, r.answers, r.prompt_tokens, r.completion_tokens]), 'id="tokens-table"') : "<p>No answers.</p>";
    html += "<h3>Chat-API use (gen, infer, judge through an OpenAI-compatible endpoint)</h3>";
    if (!d.api.length) {
      html += "<p class='empty'>No API calls recorded in this store's cache (store/cache/*/usage.jsonl).</p>";
    } else {
      html += tableHtml(["stage", "caller", "model", "requests", "cache hits", "retries", "prompt tokens", "completion tokens", "cost (USD)"],
        d.api.map((r) => [r.stage, r.namespace, r.model, r.requests, r.cache_hits, r.retries, r.prompt_tokens, r.completion_tokens, r.cost === null ? "no price given" : r.cost.toFixed(4)]), 'id="api-table"');
      html += "<p class='help'>Requests count retries; tokens are those of the requests sent (cache hits cost nothing). A cost is shown only for models whose price the report's <code>--prices</code> table gives.</p>";
    }
    $("usage").innerHTML = html;
  }

  drawTables() {
    $("tables").innerHTML = this.d.tables.map((t) => `<h3>${esc(t.title)}</h3>${tableHtml(t.columns, t.rows)}${t.note ? `<p class="help">${esc(t.note)}</p>` : ""}`).join("") || "<p>No tables.</p>";
  }
}

loadData().then((data) => {
  window.saftoolViewer = new Viewer(data);
  window.saftoolViewer.start();
}).catch((err) => {
  $("notice").hidden = false;
  $("notice").textContent = `The viewer could not read its data: ${err}`;
  throw err;
});
