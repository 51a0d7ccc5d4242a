// The board: one column per board column the daemon names (GET /v1/meta), live over /v1/events,
// filters and search, keyboard (j/k, /), one column at a time on a phone; and the form that creates a card.

import {
  api, basename, batcher, cardIdOf, clear, errorView, formatAge, formatCost, formatTokens, h, LIVE_STATES, meta,
  plural, Stream,
} from "./util.js";

const FILTERS = "kilod.filters";
const NARROW = window.matchMedia("(max-width: 700px)");

/** A model name that may wrap after its slashes (`provider/<wbr>model`), never inside a part (not at hyphens). */
function breakable(name) {
  const parts = String(name).split("/");
  return parts.flatMap((part, i) => (i < parts.length - 1
    ? [h("span", { class: "name-part" }, `${part}/`), h("wbr")] : [h("span", { class: "name-part" }, part)]));
}

/** ✓ 3 / ✗ 1: an attempt's checks of its latest run; nothing when none ran. */
export function checkBadges(checks) {
  if (!checks || !checks.total) return null;
  const failing = (checks.failed || 0) + (checks.error || 0);
  return h("span", { class: "checks", title: `checks: ${checks.passed} passed, ${failing} failing`
    + (checks.error ? ` (${checks.error} could not run)` : "") },
  checks.passed ? h("span", { class: "check-pass" }, `✓ ${checks.passed}`) : null,
  failing ? h("span", { class: "check-fail" }, `✗ ${failing}`) : null);
}

/** Where a live attempt's pipeline stands (worktree, image, setup, agent, checks). */
export function stepOf(attempt) {
  return LIVE_STATES.has(attempt.state) && attempt.state !== "queued" && attempt.step ? attempt.step : null;
}

/** One attempt at a glance; `tag` is "span" where a list item cannot go (inside a button). */
export function attemptChip(attempt, tag = "li") {
  const tokens = (attempt.tokens_in || 0) + (attempt.tokens_out || 0);
  const step = stepOf(attempt);
  const failing = attempt.checks && attempt.checks.failing;
  return h(tag, {
    class: `chip state-${attempt.state}${failing ? " checks-failing" : ""}`,
    dataset: { attemptId: attempt.id, state: attempt.state, step: step || "" },
    title: `${attempt.id}: ${attempt.model}, ${attempt.state}` + (step ? ` (${step})` : "")
      + (attempt.error ? ` (${attempt.error})` : ""),
  },
  h("span", { class: "chip-model" }, breakable(attempt.model)),
  h("span", { class: "chip-state" }, h("span", { class: "dot", "aria-hidden": "true" }), attempt.state,
    step ? h("span", { class: "chip-step" }, ` · ${step}`) : null),
  h("span", { class: "chip-figures" },
    checkBadges(attempt.checks),
    h("span", { class: "chip-steps" }, plural(attempt.steps || 0, "step")),
    h("span", {}, `${formatTokens(tokens)} tok`),
    h("span", { class: attempt.cost_usd === null ? "unknown" : null }, formatCost(attempt.cost_usd))));
}

function cardElement(card) {
  return h("li", { class: `card-item${card.archived_at ? " archived" : ""}` },
    h("a", { class: "card", href: `#/cards/${encodeURIComponent(card.id)}`, dataset: { cardId: card.id } },
      h("span", { class: "card-title" }, card.title),
      h("span", { class: "card-meta" },
        h("span", { class: "card-repo", title: card.repo }, basename(card.repo)),
        h("span", { class: "card-base" }, card.base_ref),
        h("span", { class: "card-age" }, formatAge(card.created_at))),
      h("ul", { class: "chips", "aria-label": "attempts" }, (card.attempts || []).map((a) => attemptChip(a)))));
}

function savedFilters() {
  try { return { repo: "", model: "", state: "", text: "", ...JSON.parse(sessionStorage.getItem(FILTERS) || "{}") }; }
  catch { return { repo: "", model: "", state: "", text: "" }; }
}

/** Does a card pass the filters? Model and state match when any attempt has them. */
export function matches(card, f) {
  const attempts = card.attempts || [];
  if (card.archived_at && !f.archived) return false;
  if (f.repo && card.repo !== f.repo) return false;
  if (f.model && !attempts.some((a) => a.model === f.model)) return false;
  if (f.state && !attempts.some((a) => a.state === f.state)) return false;
  if (f.text) {
    const text = f.text.toLowerCase();
    const haystack = [card.title, card.prompt, card.id, card.repo, ...attempts.map((a) => `${a.id} ${a.model}`)]
      .join("\n").toLowerCase();
    if (!haystack.includes(text)) return false;
  }
  return true;
}

export class BoardView {
  constructor(app) {
    this.app = app;
    this.cards = new Map();      // id → card JSON
    this.signatures = new Map(); // id → JSON text last drawn
    this.elements = new Map();   // id → <li>
    this.filters = savedFilters();
    this.chosen = sessionStorage.getItem("kilod.column") || null;  // the column a person picked on a phone
    this.refresh = batcher(250, (ids) => this.refreshCards(ids));
    this.onNarrow = () => this.drawTabs();
  }

  async mount(root) {
    this.root = root;
    this.lists = new Map();
    const columns = meta.columns.map((column) => {
      const list = h("ol", { class: "cards", "aria-labelledby": `col-${column.id}` });
      this.lists.set(column.id, list);
      return h("section", { class: "column", id: `column-${column.id}`, dataset: { column: column.id } },
        h("h2", { id: `col-${column.id}` }, column.title, " ", h("span", { class: "count" }, "0")),
        list,
        h("p", { class: "empty-note" }, "Nothing here."));
    });
    this.tabs = h("nav", { class: "column-tabs", role: "tablist", "aria-label": "columns" },
      meta.columns.map((column) => h("button", {
        type: "button", role: "tab", class: "column-tab", dataset: { column: column.id },
        "aria-controls": `column-${column.id}`, onclick: () => this.showColumn(column.id),
      }, column.title, " ", h("span", { class: "count" }, "0"))));
    this.filterBar = this.buildFilters();
    this.board = h("div", { class: "board", "aria-label": "board" }, columns);
    this.board.style.setProperty("--columns", String(meta.columns.length));  // CSSOM: the CSP forbids style attributes
    root.append(this.filterBar, this.tabs, this.board);
    // Where the stream starts is read before the board: an event in between is seen twice, never missed.
    const status = await api("GET", "/v1/status");
    const board = await api("GET", "/v1/board");
    for (const column of board.columns) for (const card of column.cards) this.put(card);
    this.draw();
    NARROW.addEventListener("change", this.onNarrow);
    this.stream = new Stream("/v1/events", status.last_event_id || 0, (event) => this.onEvent(event),
      (state) => this.app.setConnection(state));
    this.ticker = setInterval(() => this.tickAges(), 30000);
  }

  unmount() {
    if (this.stream) this.stream.close();
    this.refresh.cancel();
    clearInterval(this.ticker);
    NARROW.removeEventListener("change", this.onNarrow);
  }

  // -- filters ------------------------------------------------------------------

  buildFilters() {
    const select = (name, label) => h("select", { id: `filter-${name}`, name, "aria-label": label,
      onchange: (e) => this.setFilter(name, e.target.value) });
    this.selects = { repo: select("repo", "repository"), model: select("model", "model"), state: select("state", "state") };
    this.search = h("input", { id: "board-search", type: "search", placeholder: "Search cards  ( / )",
      "aria-label": "search cards", autocomplete: "off", spellcheck: "false", value: this.filters.text,
      oninput: (e) => this.setFilter("text", e.target.value),
      onkeydown: (e) => { if (e.key === "Escape") { e.target.value = ""; this.setFilter("text", ""); e.target.blur(); } } });
    this.shown = h("span", { class: "filter-count muted", role: "status" });
    this.archived = h("input", { type: "checkbox", id: "show-archived", onchange: () => this.toggleArchived() });
    this.clearButton = h("button", { type: "button", class: "small quiet", hidden: true,
      onclick: () => this.clearFilters() }, "Clear filters");
    return h("div", { class: "filters", role: "search" }, this.search, this.selects.repo, this.selects.model,
      this.selects.state, h("label", { class: "check archived-toggle", for: "show-archived" }, this.archived, "Archived"),
      this.clearButton, this.shown);
  }

  fillSelect(name, all, values, label = (v) => v) {
    const el = this.selects[name];
    const current = this.filters[name];
    const options = [...new Set([...values, ...(current ? [current] : [])])];
    const signature = JSON.stringify(options);
    if (el.dataset.signature !== signature) {
      el.dataset.signature = signature;
      clear(el).append(h("option", { value: "" }, all), ...options.map((v) => h("option", { value: v, title: v }, label(v))));
    }
    el.value = current;
  }

  drawFilters() {
    const cards = [...this.cards.values()];
    const repos = [...new Set(cards.map((c) => c.repo))].sort();
    const models = [...new Set(cards.flatMap((c) => (c.attempts || []).map((a) => a.model)))].sort();
    this.fillSelect("repo", "All repositories", repos, (r) => basename(r));
    this.fillSelect("model", "All models", models);
    this.fillSelect("state", "Any state", meta.states);
    const active = ["repo", "model", "state", "text"].some((k) => this.filters[k]);
    this.clearButton.hidden = !active;
    const shown = cards.filter((c) => matches(c, this.filters)).length;
    this.shown.textContent = active ? `${shown} of ${plural(cards.length, "card")}` : "";
  }

  /** Archived cards are not on GET /v1/board: shown on demand from GET /v1/cards. */
  async toggleArchived() {
    if (this.archived.checked) {
      const { cards } = await api("GET", "/v1/cards");
      for (const card of cards) if (card.archived_at) this.put(card);
    }
    this.draw();
  }

  setFilter(name, value) {
    this.filters[name] = value;
    sessionStorage.setItem(FILTERS, JSON.stringify(this.filters));
    this.draw();
  }

  clearFilters() {
    this.filters = { repo: "", model: "", state: "", text: "" };
    this.search.value = "";
    sessionStorage.removeItem(FILTERS);
    this.draw();
  }

  // -- columns as tabs on a phone -------------------------------------------------

  showColumn(id) {
    this.chosen = id;
    sessionStorage.setItem("kilod.column", id);
    this.drawTabs();
  }

  drawTabs() {
    if (!this.tabs) return;
    const ids = meta.columns.map((c) => c.id);
    // until a tab is picked: the first column with something in it (a phone opens on work, not on an empty To Do)
    this.active = ids.includes(this.chosen) ? this.chosen
      : ids.find((id) => this.lists.get(id).children.length) || ids[0];
    for (const tab of this.tabs.children) {
      const selected = tab.dataset.column === this.active;
      tab.setAttribute("aria-selected", String(selected));
      tab.querySelector(".count").textContent = String(this.lists.get(tab.dataset.column).children.length);
    }
    for (const section of this.board.children) section.classList.toggle("active", section.dataset.column === this.active);
  }

  // -- cards --------------------------------------------------------------------

  onEvent(event) {
    // steps, tokens and cost move with messages; columns and chips with states; the step with logs; badges with
    // checks. A command's output (several events a second while it runs) changes nothing on a card.
    if (!["tool_call", "tool_result", "output"].includes(event.kind)) this.refresh.add(cardIdOf(event));
  }

  async refreshCards(ids) {
    await Promise.all([...ids].map(async (id) => {
      try {
        this.put(await api("GET", `/v1/cards/${encodeURIComponent(id)}`));
      } catch (err) {
        if (err.status === 404) this.cards.delete(id);
      }
    }));
    this.draw();
  }

  put(card) { this.cards.set(card.id, card); }

  draw() {
    const first = meta.columns[0].id;
    const byColumn = new Map(meta.columns.map((c) => [c.id, []]));
    this.filters.archived = Boolean(this.archived && this.archived.checked);
    for (const card of this.cards.values()) {
      if (matches(card, this.filters)) (byColumn.get(card.column) || byColumn.get(first)).push(card);
    }
    for (const [id, el] of this.elements) {
      if (!this.cards.has(id) || !matches(this.cards.get(id), this.filters)) {
        el.remove();
        if (!this.cards.has(id)) { this.elements.delete(id); this.signatures.delete(id); }
      }
    }
    for (const column of meta.columns) {
      const list = this.lists.get(column.id);
      const cards = byColumn.get(column.id).sort((a, b) => b.created_at - a.created_at);
      let previous = null;
      for (const card of cards) {
        const signature = JSON.stringify(card);
        let el = this.elements.get(card.id);
        if (!el || this.signatures.get(card.id) !== signature) {
          const fresh = cardElement(card);
          const hadFocus = el && el.contains(document.activeElement);
          if (el) el.replaceWith(fresh);
          el = fresh;
          this.elements.set(card.id, el);
          this.signatures.set(card.id, signature);
          if (hadFocus) el.querySelector("a").focus();
        }
        const wanted = previous ? previous.nextSibling : list.firstChild;
        if (el.parentNode !== list || wanted !== el) list.insertBefore(el, wanted);
        previous = el;
      }
      const section = list.parentNode;
      section.querySelector(".count").textContent = String(cards.length);
      section.classList.toggle("is-empty", cards.length === 0);
    }
    const todoNote = this.lists.get(first).parentNode.querySelector(".empty-note");
    todoNote.textContent = !this.cards.size ? "No cards yet. Press New card (or n) to start one."
      : ["repo", "model", "state", "text"].some((k) => this.filters[k]) ? "No card matches." : "Nothing waiting.";
    this.drawFilters();
    this.drawTabs();
  }

  tickAges() {
    for (const [id, el] of this.elements) {
      const card = this.cards.get(id);
      const age = el.querySelector(".card-age");
      if (card && age) age.textContent = formatAge(card.created_at);
    }
  }

  /** j/k: the next/previous card shown; /: search. True when the key was used. */
  onKey(event) {
    if (event.key === "/") { this.search.focus(); this.search.select(); return true; }
    if (event.key !== "j" && event.key !== "k") return false;
    const links = [...this.board.querySelectorAll(".card")].filter((a) => a.offsetParent !== null);
    if (!links.length) return true;
    const i = links.indexOf(document.activeElement);
    const next = i < 0 ? 0 : Math.max(0, Math.min(links.length - 1, i + (event.key === "j" ? 1 : -1)));
    links[next].focus();
    links[next].scrollIntoView({ block: "nearest" });
    return true;
  }

  /** A card the form just created: drawn at once, before its first event arrives. */
  added(card) {
    this.put(card);
    this.draw();
  }
}

// -- the new-card form ----------------------------------------------------------

const REMEMBER = "kilod.newcard";

function remembered() {
  try { return JSON.parse(localStorage.getItem(REMEMBER) || "{}"); } catch { return {}; }
}

export class NewCardDialog {
  constructor(onCreated) {
    this.onCreated = onCreated;
    const saved = remembered();
    this.error = h("div", { class: "form-error", role: "alert", hidden: true });
    this.models = h("div", { class: "model-rows" });
    this.submit = h("button", { type: "submit", class: "primary" }, "Create card");
    this.form = h("form", { class: "new-card-form", novalidate: true, onsubmit: (e) => this.create(e) },
      h("h2", { id: "new-card-title" }, "New card"),
      h("label", { for: "nc-prompt" }, "Prompt"),
      h("textarea", { id: "nc-prompt", name: "prompt", rows: "6", required: true,
        placeholder: "What should the agents do? (Ctrl+Enter creates the card)" }),
      h("div", { class: "form-row" },
        h("div", { class: "field grow" },
          h("label", { for: "nc-repo" }, "Repository (absolute path on the daemon's machine)"),
          h("input", { id: "nc-repo", name: "repo", required: true, autocomplete: "off", spellcheck: "false",
            placeholder: "/home/you/src/project", value: saved.repo || "" })),
        h("div", { class: "field" },
          h("label", { for: "nc-base" }, "Base"),
          h("input", { id: "nc-base", name: "base", autocomplete: "off", spellcheck: "false",
            value: saved.base || "HEAD" }))),
      h("label", { for: "nc-title" }, "Title ", h("span", { class: "hint" }, "(optional; default: the prompt's first line)")),
      h("input", { id: "nc-title", name: "title", autocomplete: "off" }),
      h("fieldset", { class: "models" },
        h("legend", {}, "Models ", h("span", { class: "hint" }, "(one attempt each; empty: the daemon's default)")),
        this.models,
        h("button", { type: "button", class: "small", onclick: () => this.addModel("", true) }, "Add model")),
      h("label", { class: "check" },
        h("input", { type: "checkbox", id: "nc-network", name: "network", checked: Boolean(saved.network) }),
        " Network access in the sandboxes"),
      this.error,
      h("div", { class: "dialog-actions" },
        h("button", { type: "button", onclick: () => this.close() }, "Cancel"),
        this.submit));
    for (const model of (saved.models && saved.models.length ? saved.models : [""])) this.addModel(model);
    this.dialog = h("dialog", { class: "new-card", "aria-labelledby": "new-card-title" }, this.form);
    this.form.querySelector("#nc-prompt").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.form.requestSubmit(); }
    });
    document.body.appendChild(this.dialog);
  }

  addModel(value, focus = false) {
    const index = this.models.children.length + 1;
    const input = h("input", { name: "model", autocomplete: "off", spellcheck: "false", value,
      "aria-label": `model ${index}`, placeholder: "provider/model, e.g. anthropic/claude-sonnet-4-5" });
    const row = h("div", { class: "model-row" }, input,
      h("button", { type: "button", class: "small icon", "aria-label": `remove model ${index}`, title: "remove",
        onclick: () => { if (this.models.children.length > 1) row.remove(); else input.value = ""; } }, "×"));
    this.models.appendChild(row);
    if (focus) input.focus();
    return input;
  }

  open() {
    this.error.hidden = true;
    this.dialog.showModal();
    this.form.querySelector("#nc-prompt").focus();
  }

  close() { this.dialog.close(); }

  async create(event) {
    event.preventDefault();
    const form = this.form;
    const prompt = form.querySelector("#nc-prompt").value.trim();
    const repo = form.querySelector("#nc-repo").value.trim();
    const base = form.querySelector("#nc-base").value.trim() || "HEAD";
    const title = form.querySelector("#nc-title").value.trim();
    const models = [...form.querySelectorAll("input[name=model]")].map((i) => i.value.trim()).filter(Boolean);
    const network = form.querySelector("#nc-network").checked;
    if (!prompt || !repo) {
      this.showError({ message: !prompt ? "Write a prompt." : "Name the repository (an absolute path)." });
      form.querySelector(!prompt ? "#nc-prompt" : "#nc-repo").focus();
      return;
    }
    const body = { prompt, repo, base, network };
    if (title) body.title = title;
    if (models.length) body.models = models;
    this.submit.disabled = true;
    this.submit.textContent = "Creating…";
    try {
      const card = await api("POST", "/v1/cards", body);
      localStorage.setItem(REMEMBER, JSON.stringify({ repo, base, models, network }));
      form.querySelector("#nc-prompt").value = "";
      form.querySelector("#nc-title").value = "";
      this.close();
      this.onCreated(card);
    } catch (err) {
      this.showError(err);
    } finally {
      this.submit.disabled = false;
      this.submit.textContent = "Create card";
    }
  }

  showError(err) {
    clear(this.error);
    this.error.append(...(err instanceof Error ? errorView(err) : [err.message]));
    this.error.hidden = false;
  }
}
