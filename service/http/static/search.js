// The search page: POST /search with what the form says, show the answer as text; marks on
// hits and paragraphs go to POST /judgments, and each shows what was sent and what came back.
//
// Safety rule: nothing from a response is ever parsed as HTML. Every value goes into the
// DOM through textContent. The only markup in a response is the highlight tags the
// service asks Elasticsearch for (<em>...</em>, with encoder "html", so the document's
// own "<" and "&" arrive as entities): snippets are split on exactly those tags, the
// entities are decoded to characters, and each piece becomes a text node (or a <mark>).
"use strict";

(function () {
  const KEY_STORAGE = "rrs.apiKey";
  const HIGHLIGHT_TAG = /(<em>|<\/em>)/;
  const STAGES = [["bm25", "BM25"], ["knn", "kNN"], ["fused", "fused"], ["rerank", "rerank"]];
  const TIMINGS = [
    ["embed_query", "embed query"], ["search", "search (msearch)"], ["bm25", "BM25 (ES took)"],
    ["knn", "kNN (ES took)"], ["fuse", "fuse"], ["rerank", "rerank"], ["total", "total"],
  ];

  const GRADES = [[2, "relevant"], [1, "partly"], [0, "not relevant"]];

  const $ = (id) => document.getElementById(id);
  let offset = 0;
  let searchedQuery = "";  // the query the shown hits answer: what a mark judges them for
  let searchedIndex = null;

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  // --- API key (sessionStorage: this tab only) -------------------------------------
  function storedKey() {
    try { return sessionStorage.getItem(KEY_STORAGE) || ""; } catch (_e) { return ""; }
  }
  function setKey(value) {
    try {
      if (value) sessionStorage.setItem(KEY_STORAGE, value);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch (_e) { /* storage disabled: the key lives in the field only */ }
    showKeyState();
  }
  function currentKey() { return $("api-key").value.trim(); }
  function showKeyState() {
    $("key-state").textContent = storedKey() ? "(set for this tab)" : "(none)";
  }

  // --- highlight snippets ----------------------------------------------------------
  function decodeEntities(text) {
    return text.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (match, name) => {
      const lower = name.toLowerCase();
      const named = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
      if (lower in named) return named[lower];
      const code = lower.startsWith("#x") ? parseInt(lower.slice(2), 16) : parseInt(lower.slice(1), 10);
      return Number.isInteger(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : match;
    });
  }

  // The snippet as DOM nodes: text between the service's <em> markers becomes <mark>.
  function snippetNodes(snippet) {
    const fragment = document.createDocumentFragment();
    let inside = false;
    for (const part of snippet.split(HIGHLIGHT_TAG)) {
      if (part === "<em>") { inside = true; continue; }
      if (part === "</em>") { inside = false; continue; }
      if (!part) continue;
      const text = decodeEntities(part);
      fragment.appendChild(inside ? el("mark", text) : document.createTextNode(text));
    }
    return fragment;
  }

  // --- rendering ---------------------------------------------------------------------
  function fmt(value, digits) {
    return typeof value === "number" && Number.isFinite(value) ? value.toFixed(digits) : "—";
  }

  function stageTable(stages) {
    const table = el("table", null, "stages");
    const head = table.createTHead().insertRow();
    head.appendChild(el("th", ""));
    for (const [, label] of STAGES) head.appendChild(el("th", label));
    const body = table.createTBody();
    for (const [what, key, digits] of [["rank", "rank", 0], ["score", "score", 4]]) {
      const row = body.insertRow();
      row.appendChild(el("th", what));
      for (const [stage] of STAGES) {
        const at = stages ? stages[stage] : null;
        const cell = el("td", at ? (key === "rank" ? "#" + at.rank : fmt(at.score, digits)) : "—");
        cell.dataset.stage = stage;
        cell.dataset.field = key;
        if (!at) cell.className = "absent";
        row.appendChild(cell);
      }
    }
    return table;
  }

  function hitItem(hit, position) {
    const item = el("li", null, "hit");
    item.dataset.id = hit.id;
    const head = el("div", null, "hit-head");
    head.appendChild(el("span", "#" + position, "position"));
    head.appendChild(el("span", hit.title || hit.parent_id, "title"));
    head.appendChild(el("span", "score " + fmt(hit.score, 4), "final-score"));
    item.appendChild(head);

    const ids = el("div", null, "ids");
    ids.appendChild(el("span", "id " + hit.id));
    if (hit.parent_id !== hit.id) ids.appendChild(el("span", "parent " + hit.parent_id));
    if (hit.chunk !== null && hit.chunk !== undefined) ids.appendChild(el("span", "chunk " + hit.chunk));
    for (const [name, value] of Object.entries(hit.metadata || {})) {
      ids.appendChild(el("span", name + ": " + (typeof value === "string" ? value : JSON.stringify(value)), "meta"));
    }
    item.appendChild(ids);

    const text = el("p", null, "snippet");
    if (hit.snippet) text.appendChild(snippetNodes(hit.snippet));
    else text.textContent = hit.text.length > 320 ? hit.text.slice(0, 320) + " …" : hit.text;
    item.appendChild(text);
    item.appendChild(stageTable(hit.stages));
    // A mark judges the document (parent_id): qrels are per document, as evaluation is.
    item.appendChild(judgeGroup({ query: searchedQuery, id: hit.parent_id, index: searchedIndex }));
    return item;
  }

  // --- judgments: mark a hit or a paragraph 2 / 1 / 0 (POST /judgments) ----------------------
  function authHeaders() {
    const headers = { "Content-Type": "application/json", "Accept": "application/json" };
    const key = currentKey();
    if (key) headers["Authorization"] = "Bearer " + key;
    return headers;
  }

  function markOutcome(status, body) {
    if (status === 0) return "not saved: the service could not be reached";
    if (status === 401) { $("auth").open = true; return "not saved: 401, an API key is needed (see “API key”)"; }
    let text = `not saved: error ${status}` + (body && body.error ? ` (${body.error})` : "");
    if (body && body.message) text += ": " + body.message;
    return text;
  }

  // Buttons for the three grades, and a line that says what was sent and what came back.
  function judgeGroup(target) {
    const group = el("div", null, "judge");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Judge this result");
    group.appendChild(el("span", "Mark:", "judge-label"));
    for (const [grade, label] of GRADES) {
      const button = el("button", label, "grade grade-" + grade);
      button.type = "button";
      button.dataset.grade = String(grade);
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", () => sendMark(group, target, grade, label));
      group.appendChild(button);
    }
    group.appendChild(el("span", "", "judge-state"));
    return group;
  }

  async function sendMark(group, target, grade, label) {
    const state = group.querySelector(".judge-state");
    const buttons = group.querySelectorAll("button.grade");
    for (const button of buttons) button.disabled = true;
    group.dataset.state = "sending";
    state.textContent = `sending “${label}”…`;
    const body = { query: target.query, grade };
    if (target.paragraph !== undefined) body.paragraph = target.paragraph;
    else { body.id = target.id; if (target.index) body.index = target.index; }
    let response = null;
    let answer = null;
    try {
      response = await fetch("/judgments", { method: "POST", headers: authHeaders(), credentials: "same-origin",
        body: JSON.stringify(body) });
      answer = await response.json();
    } catch (_e) { answer = null; }
    for (const button of buttons) button.disabled = false;
    if (response && response.ok && answer && answer.stored) {
      for (const button of buttons) button.setAttribute("aria-pressed", String(button.dataset.grade === String(grade)));
      group.dataset.state = "saved";
      group.dataset.grade = String(grade);
      state.textContent = `marked ${label} (${grade}) for “${target.query}”`;
    } else {
      group.dataset.state = "error";
      state.textContent = markOutcome(response ? response.status : 0, answer);
    }
  }

  function badge(text, kind) { return el("span", text, "badge " + kind); }

  // What an operator can do about a degraded answer (shown under the badges, as text).
  const DEGRADED_HINTS = {
    reranker_unavailable: "No reranker is loaded: set RRS_CROSS_ENCODER to a local model folder " +
      "(one made by `rrs train-reranker`, or a downloaded cross-encoder) and restart; /readyz says why it did not load.",
    rerank_failed: "The reranker failed on this search; the service log has the error.",
  };

  // What the rerank stage changed on this page: hits whose place differs from the fused order's.
  function stageChanges(data) {
    if (!data.reranked || !data.hits.length) return null;
    const moved = data.hits.filter((hit, i) => hit.stages && hit.stages.fused && hit.stages.fused.rank !== data.from + i + 1);
    if (!moved.length) return "The rerank stage kept the fused order on this page.";
    const top = data.hits[0].stages && data.hits[0].stages.fused;
    return "The rerank stage moved " + moved.length + " of the " + data.hits.length + " hits shown" +
      (top && data.from === 0 ? "; the first hit was #" + top.rank + " in the fused order." : ".");
  }

  function showSummary(data) {
    const badges = $("badges");
    badges.replaceChildren();
    badges.appendChild(badge("mode " + data.mode, "info"));
    if (data.reranked) {
      const by = data.models && data.models.cross_encoder ? " by " + data.models.cross_encoder : "";
      badges.appendChild(badge("reranked (" + data.reranked_count + " candidates" + by + ")", "ok"));
    } else {
      badges.appendChild(badge("not reranked", "off"));
    }
    if (data.blend) {
      // which blend served, and why its weight is what it is (service/blend_policy.py)
      const share = Math.round(data.blend.weight * 100);
      badges.appendChild(badge("blend: cross-encoder " + share + "% (" + data.blend.source + ")", "info"));
      badges.appendChild(el("p", "Blend source " + data.blend.source + ": " + data.blend.detail + ".", "hint blend"));
      const changed = stageChanges(data);
      if (changed) badges.appendChild(el("p", changed, "hint changed"));
    }
    if (data.degraded) badges.appendChild(badge("degraded: " + data.degraded, "warn"));
    if (data.degraded && DEGRADED_HINTS[data.degraded]) badges.appendChild(el("p", DEGRADED_HINTS[data.degraded], "hint"));
    if (data.cached) badges.appendChild(badge("cached window", "info"));
    badges.appendChild(badge("index " + data.index, "info"));

    const body = $("timings").tBodies[0];
    body.replaceChildren();
    const timings = data.timings_ms || {};
    const total = timings.total || 0;
    for (const [key, label] of TIMINGS) {
      const row = body.insertRow();
      row.dataset.stage = key;
      row.appendChild(el("th", label));
      row.appendChild(el("td", fmt(timings[key], 1), "ms"));
      const barCell = row.insertCell();
      const bar = el("progress");
      bar.max = total > 0 ? total : 1;
      bar.value = Math.min(timings[key] || 0, bar.max);
      barCell.appendChild(bar);
    }
    $("summary").hidden = false;
  }

  function showResults(data) {
    searchedQuery = data.query;
    searchedIndex = data.index;
    const hits = $("hits");
    hits.replaceChildren();
    hits.start = data.from + 1;
    data.hits.forEach((hit, i) => hits.appendChild(hitItem(hit, data.from + i + 1)));
    const shown = data.hits.length
      ? `Hits ${data.from + 1}–${data.from + data.hits.length} of ${data.window} ranked`
      : "No hits";
    $("status").textContent = `${shown} for “${data.query}” in ${fmt(data.timings_ms.total, 1)} ms`;
    showSummary(data);
    $("pager").hidden = data.window <= data.top_k;
    $("prev").disabled = data.from <= 0;
    $("next").disabled = data.from + data.top_k >= data.window;
  }

  function showError(status, body) {
    const box = $("error");
    box.replaceChildren();
    let title;
    if (status === 401) {
      title = currentKey()
        ? "401 Unauthorized: the API key was refused. Check it in the “API key” field."
        : "401 Unauthorized: this service needs an API key. Paste one in the “API key” field above.";
      $("auth").open = true;
    } else if (status === 0) {
      title = "The service could not be reached.";
    } else {
      title = `Error ${status}` + (body && body.error ? ` (${body.error})` : "");
    }
    box.appendChild(el("strong", title));
    if (body && body.message) {
      const detail = el("p", body.message);
      if (body.field) detail.appendChild(el("code", " field: " + body.field));
      box.appendChild(detail);
    }
    box.hidden = false;
    box.dataset.status = String(status);
  }

  function clearOutput() {
    $("error").hidden = true;
    $("error").replaceChildren();
    delete $("error").dataset.status;
    $("hits").replaceChildren();
    $("summary").hidden = true;
    $("pager").hidden = true;
  }

  // --- the request ---------------------------------------------------------------------
  function formRequest() {
    return {
      query: $("query").value,
      mode: document.querySelector('input[name="mode"]:checked').value,
      rerank: $("rerank").checked,
      fusion: $("fusion").value,
      top_k: Math.max(1, parseInt($("top-k").value, 10) || 10),
      from: offset,
      highlight: true,
    };
  }

  function rememberInUrl(req) {
    const params = new URLSearchParams({ q: req.query, mode: req.mode, rerank: req.rerank ? "1" : "0", fusion: req.fusion });
    history.replaceState(null, "", "?" + params.toString());
  }

  async function runSearch() {
    const req = formRequest();
    if (!req.query.trim()) return;
    rememberInUrl(req);
    const headers = { "Content-Type": "application/json", "Accept": "application/json" };
    const key = currentKey();
    if (key) headers["Authorization"] = "Bearer " + key;
    $("status").textContent = "Searching…";
    $("go").disabled = true;
    let response;
    try {
      response = await fetch("/search", { method: "POST", headers, body: JSON.stringify(req), credentials: "same-origin" });
    } catch (_e) {
      clearOutput();
      $("status").textContent = "";
      showError(0, null);
      $("go").disabled = false;
      return;
    }
    let body = null;
    try { body = await response.json(); } catch (_e) { body = null; }
    $("go").disabled = false;
    clearOutput();
    if (!response.ok || !body) {
      $("status").textContent = "";
      showError(response.status, body);
      return;
    }
    showResults(body);
  }

  // --- search inside a document: its paragraphs ranked by POST /rerank ----------------------
  function paragraphs(text) {
    return text.split(/\n\s*\n/).map((part) => part.trim()).filter((part) => part.length > 0);
  }

  async function rankParagraphs() {
    const texts = paragraphs($("doc-text").value);
    const query = $("doc-query").value;
    if (!texts.length || !query.trim()) return;
    const headers = { "Content-Type": "application/json", "Accept": "application/json" };
    const key = currentKey();
    if (key) headers["Authorization"] = "Bearer " + key;
    $("status").textContent = "Ranking " + texts.length + " paragraphs…";
    $("doc-go").disabled = true;
    let response = null;
    let body = null;
    try {
      response = await fetch("/rerank", { method: "POST", headers, credentials: "same-origin",
        body: JSON.stringify({ query, texts, return_text: true, truncate: true }) });
      body = await response.json();
    } catch (_e) { body = null; }
    $("doc-go").disabled = false;
    $("status").textContent = "";
    const list = $("doc-ranked");
    list.replaceChildren();
    $("error").hidden = true;
    if (!response || !response.ok || !Array.isArray(body)) {
      showError(response ? response.status : 0, body);
      list.hidden = true;
      return;
    }
    for (const rank of body) {
      const item = el("li", null, "paragraph");
      item.appendChild(el("span", rank.score.toFixed(4), "score"));
      item.appendChild(el("span", "¶" + (rank.index + 1), "badge info"));
      item.appendChild(el("p", rank.text, "text"));
      // A pasted paragraph is not in the index: the mark carries its text (its id is derived from it).
      item.appendChild(judgeGroup({ query, paragraph: rank.text }));
      list.appendChild(item);
    }
    list.hidden = false;
  }

  function showTab(doc) {
    for (const id of ["search-form", "summary", "hits", "pager"]) $(id).hidden = doc || (id !== "search-form" && !$("hits").children.length);
    $("doc-form").hidden = !doc;
    $("doc-ranked").hidden = !doc || !$("doc-ranked").children.length;
    $("tab-search").setAttribute("aria-selected", String(!doc));
    $("tab-doc").setAttribute("aria-selected", String(doc));
  }

  function restoreFromUrl() {
    const params = new URLSearchParams(location.search);
    if (params.has("mode")) {
      const radio = document.querySelector(`input[name="mode"][value="${CSS.escape(params.get("mode"))}"]`);
      if (radio) radio.checked = true;
    }
    if (params.has("rerank")) $("rerank").checked = params.get("rerank") !== "0";
    if (["rrf", "linear"].includes(params.get("fusion"))) $("fusion").value = params.get("fusion");
    if (params.get("q")) { $("query").value = params.get("q"); runSearch(); }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("search-form").addEventListener("submit", (event) => { event.preventDefault(); offset = 0; runSearch(); });
    for (const input of document.querySelectorAll('input[name="mode"], #rerank, #fusion')) {
      input.addEventListener("change", () => { offset = 0; if ($("query").value.trim()) runSearch(); });
    }
    $("prev").addEventListener("click", () => { offset = Math.max(0, offset - formRequest().top_k); runSearch(); });
    $("next").addEventListener("click", () => { offset += formRequest().top_k; runSearch(); });
    $("api-key").value = storedKey();
    $("api-key").addEventListener("input", () => setKey($("api-key").value.trim()));
    $("clear-key").addEventListener("click", () => { setKey(""); $("api-key").value = ""; });
    showKeyState();
    $("tab-search").addEventListener("click", () => showTab(false));
    $("tab-doc").addEventListener("click", () => showTab(true));
    $("doc-form").addEventListener("submit", (event) => { event.preventDefault(); rankParagraphs(); });
    restoreFromUrl();
  });
})();
