// The board: four columns of cards, live over /v1/events, and the form that creates a card.

import {
  api, basename, batcher, cardIdOf, clear, errorView, formatAge, formatCost, formatTokens, h, plural, Stream,
} from "./util.js";

const COLUMNS = [
  { id: "todo", title: "To Do" },
  { id: "doing", title: "Doing" },
  { id: "review", title: "Review" },
  { id: "done", title: "Done" },
];

/** A model name that may wrap after its slashes (`provider/<wbr>model`). */
function breakable(name) {
  const parts = String(name).split("/");
  return parts.flatMap((part, i) => (i < parts.length - 1 ? [`${part}/`, h("wbr")] : [part]));
}

/** One attempt at a glance; `tag` is "span" where a list item cannot go (inside a button). */
export function attemptChip(attempt, tag = "li") {
  const tokens = (attempt.tokens_in || 0) + (attempt.tokens_out || 0);
  return h(tag, {
    class: `chip state-${attempt.state}`,
    dataset: { attemptId: attempt.id, state: attempt.state },
    title: `${attempt.id}: ${attempt.model}, ${attempt.state}` + (attempt.error ? ` (${attempt.error})` : ""),
  },
  h("span", { class: "chip-model" }, breakable(attempt.model)),
  h("span", { class: "chip-state" }, h("span", { class: "dot", "aria-hidden": "true" }), attempt.state),
  h("span", { class: "chip-figures" },
    h("span", { class: "chip-steps" }, plural(attempt.steps || 0, "step")),
    h("span", {}, `${formatTokens(tokens)} tok`),
    h("span", { class: attempt.cost_usd === null ? "unknown" : null }, formatCost(attempt.cost_usd))));
}

function cardElement(card) {
  return h("li", { class: "card-item" },
    h("a", { class: "card", href: `#/cards/${encodeURIComponent(card.id)}`, dataset: { cardId: card.id } },
      h("span", { class: "card-title" }, card.title),
      h("span", { class: "card-meta" },
        h("span", { class: "card-repo", title: card.repo }, basename(card.repo)),
        h("span", { class: "card-base" }, card.base_ref),
        h("span", { class: "card-age" }, formatAge(card.created_at))),
      h("ul", { class: "chips", "aria-label": "attempts" }, (card.attempts || []).map((a) => attemptChip(a)))));
}

export class BoardView {
  constructor(app) {
    this.app = app;
    this.cards = new Map();      // id → card JSON
    this.signatures = new Map(); // id → JSON text last drawn
    this.elements = new Map();   // id → <li>
    this.refresh = batcher(250, (ids) => this.refreshCards(ids));
  }

  async mount(root) {
    this.root = root;
    this.lists = new Map();
    const columns = COLUMNS.map((column) => {
      const list = h("ol", { class: "cards", "aria-labelledby": `col-${column.id}` });
      this.lists.set(column.id, list);
      return h("section", { class: "column", dataset: { column: column.id } },
        h("h2", { id: `col-${column.id}` }, column.title, " ", h("span", { class: "count" }, "0")),
        list,
        h("p", { class: "empty-note" }, "Nothing here."));
    });
    root.appendChild(h("div", { class: "board", "aria-label": "board" }, columns));
    // Where the stream starts is read before the board: an event in between is seen twice, never missed.
    const status = await api("GET", "/v1/status");
    const board = await api("GET", "/v1/board");
    for (const column of board.columns) for (const card of column.cards) this.put(card);
    this.draw();
    this.stream = new Stream("/v1/events", status.last_event_id || 0, (event) => this.onEvent(event),
      (state) => this.app.setConnection(state));
    this.ticker = setInterval(() => this.tickAges(), 30000);
  }

  unmount() {
    if (this.stream) this.stream.close();
    this.refresh.cancel();
    clearInterval(this.ticker);
  }

  onEvent(event) {
    // steps, tokens and cost move with messages; columns and chips with states
    if (event.kind === "state" || event.kind === "message") this.refresh.add(cardIdOf(event));
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
    const byColumn = new Map(COLUMNS.map((c) => [c.id, []]));
    for (const card of this.cards.values()) (byColumn.get(card.column) || byColumn.get("todo")).push(card);
    for (const [id, el] of this.elements) {
      if (!this.cards.has(id)) { el.remove(); this.elements.delete(id); this.signatures.delete(id); }
    }
    for (const column of COLUMNS) {
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
    const todoNote = this.lists.get("todo").parentNode.querySelector(".empty-note");
    todoNote.textContent = this.cards.size ? "Nothing waiting." : "No cards yet. Press New card (or n) to start one.";
  }

  tickAges() {
    for (const [id, el] of this.elements) {
      const card = this.cards.get(id);
      const age = el.querySelector(".card-age");
      if (card && age) age.textContent = formatAge(card.created_at);
    }
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
