// The card page: prompt, compare table, one tab per attempt with its live log, diff and review actions.
//
// An attempt in review opens on its diff, with the review (commit message, approve, merge,
// follow-up, line comments) beside it; keys: j/k next/previous file, a approve (asks first).

import { attemptChip, checkBadges, stepOf } from "./board.js";
import { DiffView } from "./diff.js";
import { LogView } from "./log.js";
import { canPause, pause, pausedPanel } from "./pause.js";
import { trustNotice } from "./trust.js";
import {
  api, basename, batcher, cardIdOf, clear, columnTitle, confirmDialog, errorView, formatAge, formatCost,
  formatDuration, formatTokens, h, LIVE_STATES, plural, Stream,
} from "./util.js";


const COMPARE_COLUMNS = [
  ["files_changed", "Files", String],
  ["additions", "+", (v) => `+${v}`],
  ["deletions", "−", (v) => `−${v}`],
  ["checks_passed", "Checks passed", String],
  ["checks_failed", "Checks failed", String],
  ["steps", "Steps", String],
  ["tool_calls", "Tool calls", String],
  ["tokens_in", "Tokens in", formatTokens],
  ["tokens_out", "Tokens out", formatTokens],
  ["cost_usd", "Cost", formatCost],
  ["wall_seconds", "Time", formatDuration],
];

/** Running time: started to finished (or now), less the waits in review before follow-ups. */
function wallSeconds(a) {
  if (!a.started_at) return null;
  return Math.max(0, (a.finished_at || Date.now() / 1000) - a.started_at - (a.review_seconds || 0));
}

function derivedCompare(card) {
  return {
    rows: card.attempts.map((a) => ({
      attempt_id: a.id, model: a.model, state: a.state, steps: a.steps, tool_calls: a.tool_calls,
      tokens_in: a.tokens_in, tokens_out: a.tokens_out, cost_usd: a.cost_usd, wall_seconds: wallSeconds(a),
    })),
    best: {},
    files: {},
  };
}

function fact(label, value, attrs = {}) {
  return h("div", { class: "fact" }, h("dt", {}, label), h("dd", attrs, value));
}

function usageText(usage) {
  if (!usage) return null;
  let cost = formatCost(usage.cost_usd);
  if (usage.cost_usd !== null && usage.cost_usd !== undefined && usage.cost_complete === false) cost += " (some unknown)";
  return `${formatTokens(usage.tokens_in || 0)} in / ${formatTokens(usage.tokens_out || 0)} out tokens, ${cost}`;
}

function checksText(checks) {
  if (!checks || !checks.total) return null;
  return `${checks.passed}/${checks.total} passed` + (checks.failing ? ` (${checks.failed + checks.error} failing)` : "");
}

/** "2 files changed (+10 −3): a.py, b.py": what an approve lands, for the question before it. */
function landingSummary(diff) {
  const files = diff.files || [];
  const names = files.slice(0, 5).map((f) => f.path).join(", ");
  const more = files.length > 5 ? `, and ${files.length - 5} more` : "";
  return `${plural(files.length, "file")} changed (+${diff.additions} −${diff.deletions})`
    + (files.length ? `: ${names}${more}` : "");
}

function failingCount(a) {
  return a.checks && a.checks.failing ? (a.checks.failed || 0) + (a.checks.error || 0) : 0;
}

export class CardView {
  constructor(app, cardId, attemptId) {
    this.app = app;
    this.cardId = cardId;
    this.selected = attemptId || null;
    this.subtab = null;  // chosen per attempt: Diff for one in review, else Log
    this.comments = [];
    this.card = null;
    this.log = null;
    this.diff = null;
    this.diffFor = null;
    this.diffLoading = null;  // the diff being (or last) loaded: an approve waits for it
    this.compareKey = null;
    this.refresh = batcher(250, () => this.reload());
    this.trust = { trusted: null, redraw: () => this.drawHead() };  // what the trust prompt did on this page
  }

  async mount(root) {
    this.root = root;
    const status = await api("GET", "/v1/status");
    this.card = await api("GET", `/v1/cards/${encodeURIComponent(this.cardId)}`);
    document.title = `${this.card.title} · kilod`;
    this.build();
    this.stream = new Stream("/v1/events", status.last_event_id || 0, (event) => {
      if (cardIdOf(event) === this.cardId && (event.kind === "state" || event.kind === "message")) this.refresh.add(event.kind);
    }, (state) => this.app.setConnection(state));
  }

  unmount() {
    if (this.stream) this.stream.close();
    this.refresh.cancel();
    this.stopAttemptViews();
  }

  stopAttemptViews() {
    if (this.log) this.log.stop();
    if (this.diff) this.diff.stop();
    this.log = null;
    this.diff = null;
  }

  async reload() {
    const before = this.attempt() ? this.attempt().state : null;
    try {
      this.card = await api("GET", `/v1/cards/${encodeURIComponent(this.cardId)}`);
    } catch (err) {
      return;
    }
    this.drawHead();
    this.drawTabs();
    this.drawAttemptHead();
    this.drawSide();
    this.drawCompare();
    const now = this.attempt();
    if (now && before !== now.state && this.subtab === "diff" && now.state === "review") this.loadDiff();
  }

  attempt() {
    return this.card.attempts.find((a) => a.id === this.selected) || null;
  }

  defaultAttempt() {
    const attempts = this.card.attempts;
    return (attempts.find((a) => a.state === "review") || attempts.find((a) => LIVE_STATES.has(a.state))
      || attempts.find((a) => a.state === "approved") || attempts[0] || {}).id || null;
  }

  build() {
    const root = this.root;
    this.head = h("header", { class: "card-head" });
    this.compare = h("section", { class: "compare panel", "aria-labelledby": "compare-title", hidden: true });
    this.tabs = h("div", { class: "attempt-tabs", role: "tablist", "aria-label": "attempts" });
    this.attemptHead = h("div", { class: "attempt-head" });
    this.actionStatus = h("div", { class: "action-status", role: "status" });
    this.subtabs = h("div", { class: "subtabs", role: "tablist", "aria-label": "attempt views" },
      this.subtabButton("log", "Log"), this.subtabButton("diff", "Diff"));
    this.subpanel = h("div", { class: "subpanel", role: "tabpanel" });
    this.side = h("aside", { class: "review-side", "aria-label": "review" });
    this.panel = h("section", { class: "attempt-panel panel", role: "tabpanel", "aria-label": "attempt" },
      this.attemptHead, this.subtabs,
      h("div", { class: "workspace" }, this.subpanel, this.side));
    root.appendChild(h("div", { class: "card-page" },
      h("nav", { class: "crumbs" }, h("a", { href: "#/" }, "← Board")),
      this.head,
      h("section", { class: "prompt panel", "aria-labelledby": "prompt-title" },
        h("h2", { id: "prompt-title" }, "Prompt"),
        h("div", { class: "prose prompt-text" }, this.card.prompt)),
      this.compare,
      h("section", { class: "attempts", "aria-label": "attempts" }, this.tabs, this.panel)));
    this.drawHead();
    this.select(this.selected && this.card.attempts.some((a) => a.id === this.selected)
      ? this.selected : this.defaultAttempt());
    this.drawCompare();
  }

  subtabButton(id, label) {
    return h("button", { type: "button", role: "tab", class: "subtab", dataset: { tab: id }, "aria-selected": "false",
      onclick: () => this.showSubtab(id) }, label);
  }

  drawHead() {
    const card = this.card;
    const shelf = h("div", { class: "card-actions" },
      card.archived_at
        ? h("button", { type: "button", class: "small", onclick: (e) => this.shelve("unarchive", e.currentTarget) }, "Unarchive")
        : h("button", { type: "button", class: "small", title: "Take the card off the board (kept; reversible)",
          onclick: (e) => this.shelve("archive", e.currentTarget) }, "Archive"),
      h("button", { type: "button", class: "small danger", onclick: (e) => this.deleteCard(e.currentTarget) }, "Delete…"));
    clear(this.head).append(
      h("div", { class: "card-title-row" }, h("h1", {}, card.title), shelf),
      // DOM append() would write a null as the text "null": an empty fragment instead
      card.archived_at ? h("div", { class: "notice archived-note" }, `Archived ${formatAge(card.archived_at)}: not on the board.`)
        : document.createDocumentFragment(),
      trustNotice(card, this.trust) || document.createDocumentFragment(),
      h("dl", { class: "facts" },
        fact("Column", h("span", { class: `column-badge column-${card.column}` }, columnTitle(card.column))),
        fact("Repository", h("code", { title: card.repo }, card.repo)),
        fact("Base", h("code", {}, card.base_branch ? `${card.base_ref} (${card.base_branch})` : card.base_ref)),
        fact("Network", card.network ? "on" : "off"),
        fact("Created", formatAge(card.created_at)),
        card.usage ? fact("Usage", usageText(card.usage)) : null,
        fact("Card", h("code", {}, card.id))));
  }

  drawTabs() {
    const tabs = clear(this.tabs);
    for (const a of this.card.attempts) {
      const selected = a.id === this.selected;
      tabs.appendChild(h("button", {
        type: "button", role: "tab", class: "attempt-tab", "aria-selected": String(selected),
        tabindex: selected ? "0" : "-1", dataset: { attemptId: a.id },
        onclick: () => this.app.go(`#/cards/${encodeURIComponent(this.cardId)}/${encodeURIComponent(a.id)}`),
        onkeydown: (e) => this.tabKeys(e),
      }, attemptChip(a, "span")));
    }
  }

  tabKeys(event) {
    const buttons = [...this.tabs.querySelectorAll("[role=tab]")];
    const i = buttons.indexOf(event.currentTarget);
    const next = event.key === "ArrowRight" ? i + 1 : event.key === "ArrowLeft" ? i - 1 : null;
    if (next === null) return;
    event.preventDefault();
    const target = buttons[(next + buttons.length) % buttons.length];
    target.focus();
    target.click();
  }

  select(attemptId) {
    if (!attemptId) { clear(this.attemptHead).appendChild(h("p", {}, "This card has no attempts.")); return; }
    if (attemptId === this.selected && this.log) return;
    this.selected = attemptId;
    this.stopAttemptViews();
    clear(this.actionStatus);
    this.comments = [];
    this.log = new LogView(attemptId);
    this.log.start();
    this.diff = new DiffView(attemptId, { comment: (path, line, text) => this.addComment(path, line, text) });
    this.diffFor = null;
    this.diffLoading = null;
    const a = this.attempt();
    this.drawTabs();
    this.drawAttemptHead();
    this.drawSide();
    this.markCompareRow();
    this.showSubtab(a && a.state === "review" ? "diff" : "log");
    this.loadComments();
  }

  showSubtab(id) {
    this.subtab = id;
    for (const button of this.subtabs.children) button.setAttribute("aria-selected", String(button.dataset.tab === id));
    const view = id === "diff" ? this.diff : this.log;
    if (!view) return;
    clear(this.subpanel).appendChild(view.element);
    if (id === "diff" && this.diffFor !== this.selected) this.loadDiff();
  }

  /** Load (again) the selected attempt's diff; the diff, or null when there is none to show. */
  loadDiff() {
    if (!this.diff) return Promise.resolve(null);
    const view = this.diff;
    this.diffFor = this.selected;
    this.diffLoading = view.load().then((diff) => { view.setComments(this.comments); return diff; });
    return this.diffLoading;
  }

  /**
   * The diff of `a` a person has had on screen; if they have not (approving from the Log tab),
   * it is loaded and shown now, and `shownNow` says so: the approve must then ask first.
   */
  async reviewedDiff(a) {
    if (this.diff && this.diffFor === a.id && this.diff.tree) return { tree: this.diff.tree, shownNow: null };
    if (this.selected !== a.id) return null;
    const fresh = this.diffFor !== a.id;
    this.showSubtab("diff");  // starts loading it when none was asked for `a` yet
    let diff = await this.diffLoading;
    if (!diff && !fresh && this.selected === a.id) diff = await this.loadDiff();  // an earlier load failed: again
    if (!diff || this.selected !== a.id || !diff.tree) return null;
    return { tree: diff.tree, shownNow: diff };
  }

  // -- line comments ----------------------------------------------------------------

  async loadComments() {
    const id = this.selected;
    try {
      const data = await api("GET", `/v1/attempts/${encodeURIComponent(id)}/comments`);
      if (id !== this.selected) return;
      this.comments = data.comments || [];
    } catch (err) {
      return;
    }
    if (this.diff) this.diff.setComments(this.comments);
    this.drawSide();
  }

  /** Called by the diff's comment form; throws the daemon's error so the form can show it. */
  async addComment(path, line, text) {
    const comment = await api("POST", `/v1/attempts/${encodeURIComponent(this.selected)}/comments`, { path, line, text });
    this.comments.push(comment);
    this.drawSide();
    return comment;
  }

  commentsList() {
    if (!this.comments.length) return null;
    const pending = this.comments.filter((c) => !c.sent_at).length;
    return h("section", { class: "comments", "aria-labelledby": "comments-title" },
      h("h3", { id: "comments-title" }, `Comments (${this.comments.length})`),
      pending ? h("p", { class: "muted hint-line" }, `${plural(pending, "comment")} will go to the agent with the next follow-up.`) : null,
      h("ol", { class: "comment-list" }, this.comments.map((c) => h("li", { class: "comment-item", dataset: { commentId: c.id } },
        h("button", { type: "button", class: "comment-where", title: "show in the diff",
          onclick: () => { this.showSubtab("diff"); if (this.diff) this.diff.reveal(c.path, c.line); } },
        h("code", {}, `${c.path}:${c.line}`)),
        c.sent_at ? h("span", { class: "muted" }, " sent") : h("span", { class: "pending" }, " pending"),
        h("div", { class: "prose comment-text" }, c.text)))));
  }

  drawAttemptHead() {
    const a = this.attempt();
    if (!a) return;
    const facts = h("dl", { class: "facts" },
      fact("State", h("span", { class: `state-badge state-${a.state}` }, a.state)),
      fact("Model", h("code", {}, a.model)),
      fact("Steps", String(a.steps)),
      fact("Tool calls", String(a.tool_calls)),
      fact("Tokens", `${formatTokens(a.tokens_in)} in / ${formatTokens(a.tokens_out)} out`),
      fact("Cost", formatCost(a.cost_usd)),
      fact("Time", formatDuration(wallSeconds(a))),
      stepOf(a) ? fact("Step", h("span", { class: "step-badge" }, stepOf(a))) : null,
      checksText(a.checks) ? fact("Checks", [checkBadges(a.checks), " ", checksText(a.checks)],
        { class: a.checks.failing ? "bad" : "good" }) : null,
      fact("Branch", h("code", {}, a.branch)),
      a.landed_commit ? fact("Commit", h("code", {}, a.landed_commit.slice(0, 12))) : null,
      a.state !== "approved" && a.state !== "discarded" ? fact("Worktree", h("code", { title: a.worktree }, basename(a.worktree))) : null);
    const parts = [facts];
    if (a.error) parts.push(h("div", { class: "error-box" }, a.error));
    if (a.stop_reason) parts.push(h("div", { class: "notice" }, `Stopped early: ${a.stop_reason}`));
    const earlier = a.summaries || [];
    if (earlier.length) {
      parts.push(h("details", { class: "earlier-runs" }, h("summary", {}, `Earlier runs (${earlier.length})`),
        h("ol", {}, earlier.map((text, i) => h("li", { class: "summary" }, h("strong", {}, `Run ${i + 1}: `),
          text || h("span", { class: "muted" }, "no summary"))))));
    }
    if (a.summary) {
      parts.push(h("div", { class: "summary" },
        h("strong", {}, earlier.length ? `Run ${earlier.length + 1} summary: ` : "Summary: "), a.summary));
    }
    clear(this.attemptHead).append(...parts);
  }

  /** Beside the log or diff: what can be done with the attempt now, its commit message and comments. */
  drawSide() {
    const a = this.attempt();
    if (!a) return;
    // a redraw must not wipe what the reviewer is typing
    const typed = {};
    for (const el of this.side.querySelectorAll("textarea")) typed[el.id] = el.value;
    const focused = document.activeElement && this.side.contains(document.activeElement) ? document.activeElement.id : null;
    const parts = [this.actionStatus];
    if (a.state === "review") {
      if (failingCount(a)) {
        parts.push(h("div", { class: "error-box checks-warning", role: "note" },
          `✗ ${plural(failingCount(a), "check")} failing. Approving asks first.`));
      }
      parts.push(h("label", { for: "commit-message" }, "Commit message ",
        h("span", { class: "hint" }, "(optional)")),
      h("textarea", { id: "commit-message", rows: "4", spellcheck: "true",
        placeholder: `${this.card.title}\n\n${a.summary || ""}`.trim() + "\n\n(default: the title, the summary and kilod trailers)" }));
    }
    parts.push(this.actions(a));
    if (a.state === "review") parts.push(this.followUpForm(a));
    if (a.state === "paused") parts.push(pausedPanel(this, a));
    parts.push(this.commentsList());
    const shown = parts.filter(Boolean);
    clear(this.side).append(...shown);
    this.side.hidden = shown.length === 1 && !this.actionStatus.firstChild;
    for (const [id, value] of Object.entries(typed)) {
      const el = this.side.querySelector(`#${id}`);
      if (el) el.value = value;
    }
    if (focused) { const el = this.side.querySelector(`#${focused}`); if (el) el.focus(); }
  }

  actions(a) {
    const buttons = [];
    const add = (label, cls, fn, key) => buttons.push(h("button", { type: "button", class: cls, title: key || null,
      onclick: (e) => fn(e.currentTarget) }, label));
    if (a.state === "review") {
      add("Approve", "primary", (b) => this.approve(a, false, b), "Approve (a)");
      if (this.card.base_branch) add(`Approve and merge into ${this.card.base_branch}`, "", (b) => this.approve(a, true, b));
      add("Discard", "danger", (b) => this.discard(a, b));
    }
    if (canPause(a)) add("Pause", "", (b) => pause(this, a, b), "Stop the agent after its current tool call");
    if (LIVE_STATES.has(a.state)) add("Cancel", "danger", (b) => this.cancel(a, b));
    // the groups come from /v1/meta: at rest and not kept (review has its own Discard above)
    const settled = !LIVE_STATES.has(a.state) && a.state !== "approved";
    if (settled && a.state !== "review" && a.state !== "discarded") add("Discard", "danger", (b) => this.discard(a, b));
    if (settled) add("Retry", "", (b) => this.retry(a, b));
    return buttons.length ? h("div", { class: "actions" }, buttons) : null;
  }

  /** j/k: next/previous file of the diff; a: approve the attempt shown (always asks). */
  onKey(event) {
    if ((event.key === "j" || event.key === "k") && this.subtab === "diff" && this.diff) {
      this.diff.step(event.key === "j" ? 1 : -1);
      return true;
    }
    const a = this.attempt();
    if (event.key === "a" && a && a.state === "review") {
      const button = this.side.querySelector(".actions button.primary");
      this.approve(a, false, button, true);
      return true;
    }
    if (event.key === "/") { this.app.go("#/"); return true; }
    return false;
  }

  followUpForm(a) {
    const text = h("textarea", { id: "follow-up-text", rows: "3", required: true,
      placeholder: "Tell the agent what to change; it continues with its whole conversation (Ctrl+Enter sends)" });
    const send = h("button", { type: "submit" }, "Send follow-up");
    const form = h("form", { class: "follow-up", onsubmit: async (e) => {
      e.preventDefault();
      const value = text.value.trim();
      if (!value) { text.focus(); return; }
      await this.run(send, () => api("POST", `/v1/attempts/${encodeURIComponent(a.id)}/messages`, { text: value }),
        () => "Sent; the agent is working on it.");
      text.value = "";
    } },
    h("label", { for: "follow-up-text" }, "Follow-up"), text, h("div", { class: "form-actions" }, send));
    text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
    });
    return form;
  }

  /** Run an action with its button disabled; show the result or the daemon's message. */
  async run(button, call, describe) {
    clear(this.actionStatus);
    if (button) button.disabled = true;
    try {
      const result = await call();
      this.actionStatus.appendChild(h("div", { class: "notice ok" }, describe(result)));
      this.side.hidden = false;
      this.refresh.add("action");
      return result;
    } catch (err) {
      this.actionStatus.appendChild(h("div", { class: "error-box", role: "alert" }, errorView(err)));
      this.side.hidden = false;
      if (err.details && err.details.tree && this.subtab === "diff") this.loadDiff();
      return null;
    } finally {
      if (button && button.isConnected) button.disabled = false;
    }
  }

  /**
   * Approve (and merge). Asks first when it merges, when checks fail, when siblings are
   * discarded, when a key asked for it, or when the diff was not on screen (it is shown
   * first): nothing lands on one stray click, and nothing lands that a person did not see.
   */
  async approve(a, merge, button, viaKey = false) {
    const reviewed = await this.reviewedDiff(a);
    if (!reviewed) {  // the Diff tab says why (no diff, an error): approving needs the tree a person saw
      clear(this.actionStatus).appendChild(h("div", { class: "error-box", role: "alert" },
        "Nothing was approved: the diff could not be shown (see the Diff tab)."));
      this.side.hidden = false;
      return;
    }
    const shown = reviewed.shownNow;
    const others = this.card.attempts.filter((x) => x.id !== a.id && x.state !== "approved" && x.state !== "discarded");
    const failing = failingCount(a);
    if (merge || failing || others.length || viaKey || shown) {
      const lines = [`This commits ${a.model}'s work on ${a.branch}`
        + `${merge ? ` and merges it into ${this.card.base_branch}` : ""}.`];
      if (shown) lines.push(`What lands is now shown in the Diff tab: ${landingSummary(shown)}.`);
      if (failing) lines.unshift(`${plural(failing, "check")} failed on this attempt (${checksText(a.checks)}).`);
      if (others.length) {
        lines.push(`The other ${plural(others.length, "attempt")} (${others.map((x) => x.model).join(", ")}) `
          + "will be discarded: their containers, worktrees and branches are removed.");
      }
      const verb = merge ? "Approve and merge" : "Approve";
      const ok = await confirmDialog({
        title: failing ? `Checks failed. ${verb} anyway?` : others.length ? `${verb} and discard the others?`
          : shown ? `${verb} what the Diff tab shows?` : `${verb}?`,
        text: lines.join(" "),
        confirm: failing ? `${verb} anyway` : verb, danger: Boolean(failing || others.length || merge),
      });
      if (!ok) return;
    }
    const body = { merge };
    const message = this.side.querySelector("#commit-message");
    if (message && message.value.trim()) body.message = message.value.trim();
    body.tree = reviewed.tree;  // exactly what the person saw (409 with the new tree if the worktree moved since)
    await this.run(button, () => api("POST", `/v1/attempts/${encodeURIComponent(a.id)}/approve`, body), (r) => {
      let text = `Committed ${r.commit.slice(0, 12)} on ${r.branch}`;
      if (r.merge) text += `; merged into ${r.merge.branch} (${r.merge.fast_forward ? "fast-forward" : "merge commit"})`;
      if (r.discarded && r.discarded.length) text += `; discarded ${r.discarded.join(", ")}`;
      return text + ".";
    });
  }

  async shelve(action, button) {
    clear(this.actionStatus);
    button.disabled = true;
    try {
      this.card = await api("POST", `/v1/cards/${encodeURIComponent(this.cardId)}/${action}`);
      this.drawHead();
    } catch (err) {
      this.head.appendChild(h("div", { class: "error-box head-error", role: "alert" }, errorView(err)));
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  }

  async deleteCard(button) {
    const open = this.card.attempts.filter((a) => a.state !== "approved" && a.state !== "discarded");
    const approved = this.card.attempts.filter((a) => a.state === "approved");
    const ok = await confirmDialog({
      title: `Delete "${this.card.title}"?`,
      text: (open.length ? `${plural(open.length, "attempt")} (${open.map((a) => `${a.model}, ${a.state}`).join("; ")}) `
        + "will be discarded first: containers, worktrees and branches removed. " : "")
        + (approved.length ? `Approved work stays in the repository (${approved.map((a) => a.branch).join(", ")}). ` : "")
        + "The card, its logs and comments are deleted. This cannot be undone.",
      confirm: "Delete card", danger: true,
    });
    if (!ok) return;
    button.disabled = true;
    try {
      await api("DELETE", `/v1/cards/${encodeURIComponent(this.cardId)}`);
      this.app.go("#/");
    } catch (err) {
      this.head.appendChild(h("div", { class: "error-box head-error", role: "alert" }, errorView(err)));
      if (button.isConnected) button.disabled = false;
    }
  }

  async discard(a, button) {
    const ok = await confirmDialog({
      title: `Discard ${a.model}'s attempt?`,
      text: `Its container, worktree and branch ${a.branch} are removed. This cannot be undone.`,
      confirm: "Discard", danger: true,
    });
    if (ok) await this.run(button, () => api("POST", `/v1/attempts/${encodeURIComponent(a.id)}/discard`), () => "Discarded.");
  }

  async cancel(a, button) {
    const ok = await confirmDialog({
      title: `Cancel ${a.model}'s attempt?`,
      text: "The agent stops now; work in progress stays in the worktree, but the attempt will not continue "
        + "(Retry starts a fresh one).",
      confirm: "Cancel attempt", danger: true,
    });
    if (ok) await this.run(button, () => api("POST", `/v1/attempts/${encodeURIComponent(a.id)}/cancel`), () => "Cancelled.");
  }

  async retry(a, button) {
    const fresh = await this.run(button, () => api("POST", `/v1/attempts/${encodeURIComponent(a.id)}/retry`),
      (r) => `Started ${r.id} with ${r.model}.`);
    if (fresh) this.app.go(`#/cards/${encodeURIComponent(this.cardId)}/${encodeURIComponent(fresh.id)}`);
  }

  // -- compare ------------------------------------------------------------------

  async drawCompare() {
    const card = this.card;
    if (card.attempts.length < 2) { this.compare.hidden = true; return; }
    if (this.compareMissing) { this.renderCompare(derivedCompare(card), "compare not available"); return; }
    // the compare API reads every attempt's diff: ask again only when some attempt changed state
    const key = card.attempts.map((a) => `${a.id}:${a.state}`).join(",");
    if (key === this.compareKey) return;
    this.compareKey = key;
    let data;
    let note = null;
    try {
      data = await api("GET", `/v1/cards/${encodeURIComponent(this.cardId)}/compare`);
    } catch (err) {
      if (err.status === 404) this.compareMissing = true;
      else this.compareKey = null;
      note = err.status === 404 ? "compare not available" : `compare not available: ${err.message}`;
      data = derivedCompare(card);
    }
    if (key !== this.compareKey) return;  // a newer draw is under way
    this.renderCompare(data, note);
  }

  /** The compare row of the attempt whose tab is open. */
  markCompareRow() {
    for (const row of this.compare.querySelectorAll("tbody tr[data-attempt-id]")) {
      const on = row.dataset.attemptId === this.selected;
      row.classList.toggle("selected", on);
      if (on) row.setAttribute("aria-current", "true"); else row.removeAttribute("aria-current");
    }
  }

  renderCompare(data, note) {
    const rows = data.rows || [];
    const best = data.best || {};
    // columns the daemon did not send, or has no value for in any row (no checks ran), are left out
    const columns = COMPARE_COLUMNS.filter(([key]) => key === "cost_usd" ? rows.some((r) => key in r)
      : rows.some((r) => r[key] !== undefined && r[key] !== null));
    const isBest = (key, id) => (best[key] || []).includes(id);
    const table = h("table", { class: "compare-table" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Attempt"), h("th", { scope: "col" }, "State"),
        columns.map(([, label]) => h("th", { scope: "col", class: "num" }, label)))),
      h("tbody", {}, rows.map((r) => h("tr", { class: r.attempt_id === this.selected ? "selected" : null,
        dataset: { attemptId: r.attempt_id }, "aria-current": r.attempt_id === this.selected ? "true" : null },
        h("th", { scope: "row" }, h("a", { href: `#/cards/${encodeURIComponent(this.cardId)}/${encodeURIComponent(r.attempt_id)}` },
          r.model), h("span", { class: "muted compare-id" }, ` ${r.attempt_id}`)),
        h("td", {}, h("span", { class: `state-badge state-${r.state}` }, r.state)),
        columns.map(([key, , format]) => {
          const value = r[key];
          const shown = value === null || value === undefined ? (key === "cost_usd" ? formatCost(null) : "–") : format(value);
          const bad = key === "checks_failed" && value > 0;
          return h("td", { class: `num${isBest(key, r.attempt_id) ? " best" : ""}${bad ? " bad" : ""}`,
            title: isBest(key, r.attempt_id) ? "best" : null }, shown);
        })))));
    const files = Object.entries(data.files || {});
    const overlap = new Set(data.overlap || []);
    const parts = [h("h2", { id: "compare-title" }, "Compare"),
      note ? h("p", { class: "muted compare-note" }, `${note}; the figures below come from the attempts themselves.`) : null,
      h("div", { class: "table-scroll" }, table)];
    if (files.length) {
      parts.push(h("details", { class: "compare-files" }, h("summary", {}, `Files touched (${files.length})`),
        h("div", { class: "table-scroll" }, h("table", { class: "compare-table" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "File"),
            rows.map((r) => h("th", { scope: "col", class: "num", title: r.attempt_id }, r.model)))),
          h("tbody", {}, files.map(([path, ids]) => h("tr", { class: overlap.has(path) ? "overlap" : null },
            h("th", { scope: "row" }, h("code", {}, path), overlap.has(path) ? h("span", { class: "muted" }, " (several)") : null),
            rows.map((r) => h("td", { class: "num" }, ids.includes(r.attempt_id) ? "●" : "")))))))));
    }
    clear(this.compare).append(...parts.filter(Boolean));
    this.compare.hidden = false;
  }
}
