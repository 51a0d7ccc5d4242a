// An attempt's diff: a file list and the files, highlighted on the server (Pygments classes).
//
// Big diffs stay fast: a file's lines are drawn only when it comes near the viewport, and
// then in chunks of CHUNK rows; the next chunk is drawn when its placeholder row scrolls
// into view (or its button is pressed).

import { api, clear, errorView, h, plural } from "./util.js";

const CHUNK = 400;
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

function rowsHtml(rows, from, to) {
  let out = "";
  for (let i = from; i < to; i++) {
    const r = rows[i];
    if (r.hunk) {
      out += `<tr class="hunk"><td class="ln" colspan="2"></td><td class="code">${escapeText(r.header)}</td></tr>`;
    } else {
      // line numbers live in data attributes (drawn by CSS) so copying code copies only code
      out += `<tr class="line ${r.kind}"><td class="ln" data-n="${r.old ?? ""}"></td>`
        + `<td class="ln" data-n="${r.new ?? ""}"></td>`
        + `<td class="code"><span class="sign">${SIGN[r.kind] ?? ""}</span>${r.html ?? escapeText(r.text ?? "")}</td></tr>`;
    }
  }
  return out;
}

class FileView {
  constructor(file, index, observer) {
    this.file = file;
    this.rows = null;
    this.drawn = 0;
    this.observer = observer;
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

  ensureStarted() {
    if (this.rows !== null) return;
    const file = this.file;
    this.rows = flatten(file);
    if (file.binary) { this.body.appendChild(h("p", { class: "muted file-note" }, "Binary file changed.")); return; }
    if (!this.rows.length) {
      this.body.appendChild(h("p", { class: "muted file-note" }, "No content changes (name or mode only)."));
      return;
    }
    this.table = h("table", { class: "diff-table hl" });
    this.tbody = h("tbody");
    this.table.appendChild(this.tbody);
    this.body.appendChild(this.table);
    this.more = h("div", { class: "more-lines" },
      h("button", { type: "button", class: "small", onclick: () => this.drawMore() }, "Show more lines"));
    this.body.appendChild(this.more);
    this.drawMore();
  }

  drawMore() {
    const to = Math.min(this.rows.length, this.drawn + CHUNK);
    this.tbody.insertAdjacentHTML("beforeend", rowsHtml(this.rows, this.drawn, to));
    this.drawn = to;
    const left = this.rows.length - this.drawn;
    if (left > 0) {
      this.more.querySelector("button").textContent = `Show ${plural(Math.min(left, CHUNK), "more line")} (${left} left)`;
      this.observer.observe(this.more);
    } else {
      this.observer.unobserve(this.more);
      this.more.remove();
    }
  }
}

export class DiffView {
  constructor(attemptId) {
    this.attemptId = attemptId;
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
    root.appendChild(h("div", { class: "diff-summary" },
      h("strong", {}, plural(files.length, "file")), " changed, ",
      h("span", { class: "adds" }, `+${diff.additions}`), " ", h("span", { class: "dels" }, `−${diff.deletions}`),
      (diff.risks || []).length
        ? h("span", { class: "risks" }, "Look before running: ", diff.risks.map((r) => h("span", { class: "risk" }, `⚠ ${r}`)))
        : null));
    if (!files.length) {
      root.appendChild(h("p", { class: "muted" }, "The worktree is the same as the base: nothing changed."));
      return;
    }
    this.files = files.map((file, i) => new FileView(file, i, this.observer));
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
  }
}
