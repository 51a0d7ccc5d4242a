// An attempt's diff: a file list and the files, highlighted on the server (Pygments classes),
// unified or side by side, with line comments (click a new-side line number).
//
// Big diffs stay fast: a file's lines are drawn only when it comes near the viewport, and
// then in chunks of CHUNK rows; the next chunk is drawn when its placeholder row scrolls
// into view (or its button is pressed).

import { api, clear, errorView, formatAge, h, plural } from "./util.js";

const CHUNK = 400;
const LAYOUT = "kilod.diff-layout";
const SIGN = { add: "+", delete: "−", context: " ", note: "" };
const STATUS_LETTER = { added: "A", modified: "M", deleted: "D", renamed: "R" };

function escapeText(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function flatten(file) {
  const rows = [];
  for (const hunk of file.hunks || []) {
    rows.push({ hunk: true, header: hunk.header });
    for (const line of hunk.lines) rows.push(line);
  }
  return rows;
}

/** Unified rows → side-by-side rows: a run of deletions is paired with the additions after it. */
function splitRows(rows) {
  const out = [];
  let i = 0;
  while (i < rows.length) {
    const r = rows[i];
    if (r.hunk || r.kind === "context" || r.kind === "note") { out.push(r.hunk ? r : { left: r, right: r }); i++; continue; }
    const dels = [];
    const adds = [];
    while (i < rows.length && rows[i].kind === "delete") dels.push(rows[i++]);
    while (i < rows.length && rows[i].kind === "add") adds.push(rows[i++]);
    for (let k = 0; k < Math.max(dels.length, adds.length); k++) out.push({ left: dels[k] || null, right: adds[k] || null });
  }
  return out;
}

function code(r) {
  return `<span class="sign">${SIGN[r.kind] ?? ""}</span>${r.html ?? escapeText(r.text ?? "")}`;
}

/** The new-side line number cell: a comment target on added and context lines. */
function newNumber(r) {
  if (r.new === null || r.new === undefined || (r.kind !== "add" && r.kind !== "context")) {
    return `<td class="ln" data-n="${r.new ?? ""}"></td>`;
  }
  return `<td class="ln ln-new commentable" data-n="${r.new}" title="Comment on line ${r.new}"></td>`;
}

function rowsHtml(rows, from, to, split) {
  let out = "";
  for (let i = from; i < to; i++) {
    const r = rows[i];
    if (r.hunk) {
      out += `<tr class="hunk"><td class="ln" colspan="${split ? 1 : 2}"></td><td class="code" colspan="${split ? 3 : 1}">`
        + `${escapeText(r.header)}</td></tr>`;
    } else if (split) {
      const { left, right } = r;
      const line = right && right.new !== null && right.new !== undefined ? ` data-line="${right.new}"` : "";
      out += `<tr class="line split"${line}>`
        + (left ? `<td class="ln" data-n="${left.old ?? ""}"></td><td class="code side ${left.kind}">${code(left)}</td>`
          : `<td class="ln"></td><td class="code side empty"></td>`)
        + (right ? `${newNumber(right)}<td class="code side ${right.kind}">${code(right)}</td>`
          : `<td class="ln"></td><td class="code side empty"></td>`)
        + "</tr>";
    } else {
      // line numbers live in data attributes (drawn by CSS) so copying code copies only code
      const line = r.new !== null && r.new !== undefined && r.kind !== "delete" ? ` data-line="${r.new}"` : "";
      out += `<tr class="line ${r.kind}"${line}><td class="ln" data-n="${r.old ?? ""}"></td>`
        + `${newNumber(r)}<td class="code">${code(r)}</td></tr>`;
    }
  }
  return out;
}

class FileView {
  constructor(file, index, diffView) {
    this.file = file;
    this.rows = null;
    this.drawn = 0;
    this.diffView = diffView;
    this.observer = diffView.observer;
    const id = `file-${index}`;
    this.toggle = h("button", { type: "button", class: "file-toggle", "aria-expanded": "true", "aria-controls": `${id}-body`,
      onclick: () => this.setOpen(this.toggle.getAttribute("aria-expanded") !== "true") },
    h("span", { class: "chevron", "aria-hidden": "true" }),
    h("span", { class: `status status-${file.status}`, title: file.status }, STATUS_LETTER[file.status] || "?"),
    h("span", { class: "file-path" }, file.old_path ? `${file.old_path} → ${file.path}` : file.path));
    this.body = h("div", { class: "file-body", id: `${id}-body` });
    this.element = h("section", { class: "diff-file", id, dataset: { path: file.path } },
      h("header", { class: "file-header" }, this.toggle,
        h("span", { class: "file-stats" },
          file.binary ? h("span", { class: "muted" }, "binary") : [
            h("span", { class: "adds" }, `+${file.additions}`), " ", h("span", { class: "dels" }, `−${file.deletions}`)]),
        file.language ? h("span", { class: "language" }, file.language) : null,
        (file.risks || []).map((r) => h("span", { class: "risk", title: "deserves a look before anything runs it" }, `⚠ ${r}`))),
      this.body);
    this.element.fileView = this;
  }

  setOpen(open) {
    this.toggle.setAttribute("aria-expanded", String(open));
    this.body.hidden = !open;
    if (open) this.ensureStarted();
  }

  get split() { return this.diffView.layout === "split"; }

  /** Drawn again from the top (the layout changed): only files already started. */
  reset() {
    if (this.rows === null) return;
    this.rows = null;
    this.drawn = 0;
    if (this.more) this.observer.unobserve(this.more);
    clear(this.body);
    this.ensureStarted();
  }

  ensureStarted() {
    if (this.rows !== null) return;
    const file = this.file;
    this.rows = this.split ? splitRows(flatten(file)) : flatten(file);
    if (file.binary) { this.body.appendChild(h("p", { class: "muted file-note" }, "Binary file changed.")); return; }
    if (!this.rows.length) {
      this.body.appendChild(h("p", { class: "muted file-note" }, "No content changes (name or mode only)."));
      return;
    }
    this.table = h("table", { class: `diff-table hl ${this.split ? "split" : "unified"}` });
    this.tbody = h("tbody", { onclick: (e) => {
      const cell = e.target.closest("td.commentable");
      if (cell) this.openForm(Number(cell.dataset.n), cell.closest("tr"));
    } });
    this.table.appendChild(this.tbody);
    this.body.appendChild(this.table);
    this.more = h("div", { class: "more-lines" },
      h("button", { type: "button", class: "small", onclick: () => this.drawMore() }, "Show more lines"));
    this.body.appendChild(this.more);
    this.drawMore();
  }

  drawMore() {
    const to = Math.min(this.rows.length, this.drawn + CHUNK);
    this.tbody.insertAdjacentHTML("beforeend", rowsHtml(this.rows, this.drawn, to, this.split));
    this.drawn = to;
    this.placeComments();
    const left = this.rows.length - this.drawn;
    if (left > 0) {
      this.more.querySelector("button").textContent = `Show ${plural(Math.min(left, CHUNK), "more line")} (${left} left)`;
      this.observer.observe(this.more);
    } else {
      this.observer.unobserve(this.more);
      this.more.remove();
    }
  }

  lineRow(line) {
    return this.tbody ? this.tbody.querySelector(`tr[data-line="${line}"]`) : null;
  }

  /** Comment rows under their lines, for the lines drawn so far (each comment once). */
  placeComments() {
    if (!this.tbody) return;
    const columns = this.split ? 4 : 3;
    for (const comment of this.diffView.commentsFor(this.file.path)) {
      if (this.tbody.querySelector(`tr.comment-row[data-comment-id="${comment.id}"]`)) continue;
      let row = this.lineRow(comment.line);
      if (!row) continue;
      while (row.nextElementSibling && row.nextElementSibling.classList.contains("comment-row")
        && !row.nextElementSibling.classList.contains("comment-form-row")) row = row.nextElementSibling;
      row.after(h("tr", { class: "comment-row", dataset: { commentId: comment.id, line: comment.line } },
        h("td", { colspan: String(columns), class: "comment-cell" },
          h("div", { class: "inline-comment" },
            h("div", { class: "comment-meta" }, h("strong", {}, `Comment on line ${comment.line}`), " · ",
              comment.sent_at ? "sent to the agent" : "pending (goes with the next follow-up)", " · ",
              formatAge(comment.created_at)),
            h("div", { class: "prose" }, comment.text)))));
    }
  }

  openForm(line, row) {
    const existing = this.tbody.querySelector("tr.comment-form-row");
    if (existing) existing.remove();
    const text = h("textarea", { rows: "3", class: "comment-input", "aria-label": `comment on line ${line}`,
      placeholder: "What should change here? (Ctrl+Enter saves)" });
    const error = h("div", { class: "form-error", role: "alert", hidden: true });
    const save = h("button", { type: "submit", class: "primary small" }, "Comment");
    const form = h("form", { class: "comment-form", onsubmit: async (e) => {
      e.preventDefault();
      const value = text.value.trim();
      if (!value) { text.focus(); return; }
      save.disabled = true;
      try {
        await this.diffView.addComment(this.file.path, line, value);
        formRow.remove();
      } catch (err) {
        clear(error).append(...errorView(err));
        error.hidden = false;
      } finally {
        save.disabled = false;
      }
    } },
    h("div", { class: "comment-meta" }, h("strong", {}, `${this.file.path}:${line}`)),
    text, error,
    h("div", { class: "form-actions" },
      h("button", { type: "button", class: "small", onclick: () => formRow.remove() }, "Cancel"), save));
    text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
      if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); formRow.remove(); }
    });
    const formRow = h("tr", { class: "comment-row comment-form-row" },
      h("td", { colspan: String(this.split ? 4 : 3), class: "comment-cell" }, form));
    let after = row;
    while (after.nextElementSibling && after.nextElementSibling.classList.contains("comment-row")) after = after.nextElementSibling;
    after.after(formRow);
    text.focus();
  }
}

export class DiffView {
  constructor(attemptId, { comment } = {}) {
    this.attemptId = attemptId;
    this.onComment = comment;
    this.comments = [];
    this.layout = localStorage.getItem(LAYOUT) === "split" ? "split" : "unified";
    this.tree = null;
    this.element = h("div", { class: "diff" }, h("p", { class: "muted" }, "Loading the diff…"));
    this.files = [];
    // one observer starts files near the viewport, and draws the next chunk of a file when its end shows
    this.observer = new IntersectionObserver((entries) => {
      for (const e of entries) {
        if (!e.isIntersecting) continue;
        const target = e.target;
        if (target.classList.contains("more-lines")) {
          const view = target.closest(".diff-file").fileView;
          this.observer.unobserve(target);
          view.drawMore();
        } else if (target.fileView) {
          this.observer.unobserve(target);
          target.fileView.ensureStarted();
        }
      }
    }, { rootMargin: "600px 0px" });
  }

  stop() { this.observer.disconnect(); }

  async load() {
    let diff;
    try {
      diff = await api("GET", `/v1/attempts/${encodeURIComponent(this.attemptId)}/diff?format=html`);
    } catch (err) {
      this.tree = null;
      clear(this.element).appendChild(h("div", { class: err.status === 409 ? "notice" : "error-box", role: "status" },
        err.status === 409 ? `No diff to show: ${err.message}` : errorView(err)));
      return null;
    }
    this.observer.disconnect();
    this.tree = diff.tree;
    this.render(diff);
    return diff;
  }

  render(diff) {
    const root = clear(this.element);
    const files = diff.files || [];
    this.layoutButtons = ["unified", "split"].map((layout) => h("button", {
      type: "button", class: "small layout-button", dataset: { layout }, "aria-pressed": String(this.layout === layout),
      onclick: () => this.setLayout(layout) }, layout === "split" ? "Split" : "Unified"));
    root.appendChild(h("div", { class: "diff-summary" },
      h("span", { class: "layout-toggle", role: "group", "aria-label": "diff layout" }, this.layoutButtons),
      h("strong", {}, plural(files.length, "file")), " changed, ",
      h("span", { class: "adds" }, `+${diff.additions}`), " ", h("span", { class: "dels" }, `−${diff.deletions}`),
      (diff.risks || []).length
        ? h("span", { class: "risks" }, "Look before running: ", diff.risks.map((r) => h("span", { class: "risk" }, `⚠ ${r}`)))
        : null));
    if (!files.length) {
      root.appendChild(h("p", { class: "muted" }, "The worktree is the same as the base: nothing changed."));
      return;
    }
    this.files = files.map((file, i) => new FileView(file, i, this));
    const list = h("nav", { class: "file-list", "aria-label": "changed files" },
      h("ol", {}, this.files.map((view) => h("li", {},
        h("button", { type: "button", class: "file-link", title: view.file.path,
          dataset: { path: view.file.path }, onclick: () => this.jump(view) },
        h("span", { class: `status status-${view.file.status}` }, STATUS_LETTER[view.file.status] || "?"),
        h("span", { class: "file-link-path" }, view.file.path),
        view.file.binary ? null : h("span", { class: "file-link-stats" },
          h("span", { class: "adds" }, `+${view.file.additions}`), " ",
          h("span", { class: "dels" }, `−${view.file.deletions}`)),
        (view.file.risks || []).length ? h("span", { class: "risk-dot", title: view.file.risks.join(", ") }, "⚠") : null)))));
    const body = h("div", { class: "diff-files" }, this.files.map((v) => v.element));
    root.appendChild(h("div", { class: "diff-layout" }, list, body));
    for (const view of this.files) this.observer.observe(view.element);
  }

  jump(view) {
    view.setOpen(true);
    view.element.scrollIntoView({ block: "start" });
    view.toggle.focus({ preventScroll: true });
    this.current = this.files.indexOf(view);
  }

  /** j/k: the next or previous file. */
  step(delta) {
    if (!this.files.length) return;
    const focused = this.files.findIndex((v) => v.element.contains(document.activeElement));
    const from = focused >= 0 ? focused : this.current ?? -1;
    const next = Math.max(0, Math.min(this.files.length - 1, from + delta));
    this.jump(this.files[next]);
  }

  setLayout(layout) {
    this.layout = layout;
    localStorage.setItem(LAYOUT, layout);
    for (const b of this.layoutButtons || []) b.setAttribute("aria-pressed", String(b.dataset.layout === layout));
    for (const view of this.files) view.reset();
  }

  // -- comments -----------------------------------------------------------------------

  commentsFor(path) { return this.comments.filter((c) => c.path === path); }

  setComments(comments) {
    this.comments = [...comments];
    for (const view of this.files) view.placeComments();
  }

  async addComment(path, line, text) {
    const comment = await this.onComment(path, line, text);
    this.comments.push(comment);
    const view = this.files.find((v) => v.file.path === path);
    if (view) view.placeComments();
    return comment;
  }

  /** Show a comment's line: open its file and draw until the line is there. */
  reveal(path, line) {
    const view = this.files.find((v) => v.file.path === path);
    if (!view) return;
    view.setOpen(true);
    view.ensureStarted();
    while (!view.lineRow(line) && view.drawn < (view.rows || []).length) view.drawMore();
    const row = view.lineRow(line);
    (row || view.element).scrollIntoView({ block: "center" });
  }
}
