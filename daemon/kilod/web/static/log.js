// An attempt's live log: every event of /v1/attempts/{id}/events, drawn in batches.
//
// Events arriving together are drawn once per animation frame; only the latest
// MAX_DRAWN entries stay in the page and "Show earlier" brings older ones back, so a log
// of tens of thousands of events stays as fast as a short one. A setup or check command
// is one entry from its start: its `output` events are appended to that entry as they
// come, and its end marks it passed or failed (the end's own entry keeps the tail).

import { Stream, formatClock, h } from "./util.js";

const MAX_DRAWN = 600;
const EARLIER_STEP = 300;
const OPEN_OUTPUT_LINES = 8;

function parseArguments(text) {
  if (typeof text !== "string") return text;
  try { return JSON.parse(text); } catch { return null; }
}

function toolSummary(name, args) {
  if (!args || typeof args !== "object") return "";
  if (name === "shell" && args.command) return args.command;
  if (args.path !== undefined) return String(args.path);
  if (args.pattern !== undefined) return String(args.pattern);
  if (args.summary !== undefined) return String(args.summary);
  return "";
}

function outputBlock(text, label) {
  const content = String(text ?? "");
  const lines = content.split("\n").length;
  const pre = h("pre", { class: "output" }, content);
  if (lines <= OPEN_OUTPUT_LINES) return pre;
  return h("details", { class: "output-details" }, h("summary", {}, `${label} (${lines} lines)`), pre);
}

export function eventBody(event) {
  const p = event.payload || {};
  switch (event.kind) {
    case "state":
      return [h("span", { class: "state-change" }, p.from ? `${p.from} → ${p.to}` : `${p.to}`),
        p.error ? h("div", { class: "event-error" }, p.error) : null];
    case "message": {
      if (p.role === "user") return [h("div", { class: "who" }, "follow-up"), h("div", { class: "prose" }, p.content || "")];
      const meta = [p.step ? `step ${p.step}` : null,
        (p.tokens_in || p.tokens_out) ? `${p.tokens_in || 0} in / ${p.tokens_out || 0} out tokens` : null]
        .filter(Boolean).join(" · ");
      return [p.content ? h("div", { class: "prose" }, p.content) : h("div", { class: "muted" }, "(calls tools)"),
        meta ? h("div", { class: "meta" }, meta) : null];
    }
    case "tool_call": {
      const args = parseArguments(p.arguments);
      const summary = toolSummary(p.name, args);
      const pretty = args && typeof args === "object" ? JSON.stringify(args, null, 2) : String(p.arguments ?? "");
      return [h("div", { class: "tool-line" }, h("code", { class: "tool-name" }, p.name),
        summary ? h("code", { class: "tool-summary" }, summary) : null),
      h("details", { class: "output-details" }, h("summary", {}, "arguments"), h("pre", { class: "output" }, pretty))];
    }
    case "tool_result":
      return [h("div", { class: "tool-line" },
        h("span", { class: p.ok === false ? "bad" : "good" }, p.ok === false ? "✗" : "✓"), " ",
        h("code", { class: "tool-name" }, p.name || "result")),
      p.output ? outputBlock(p.output, "output") : null];
    case "check":
      return commandResult(p, "check");
    case "output":  // a command's output with no start entry to join (its start is not in this log)
      return [h("div", { class: "tool-line command-line" }, h("span", { class: "command-step" }, outputLabel(p)),
        p.command ? h("code", { class: "tool-summary" }, p.command) : null),
      h("pre", { class: "output live-output" }, p.text || ""),
      p.cut ? h("div", { class: "meta output-cut" }, p.message || "output cut") : null];
    case "log":
    default:
      if (p.command !== undefined) return commandResult(p, p.step || "command");
      return [h("div", {}, p.message ?? ""),
        p.comment ? h("div", { class: "meta" }, h("code", {}, `${p.comment.path}:${p.comment.line}`), " ", p.comment.text) : null,
        otherFields(p)];
  }
}

const STATUS_MARK = { passed: ["good", "✓ passed"], failed: ["bad", "✗ failed"], error: ["bad", "⚠ could not run"],
  running: ["muted", "… running"] };
const SHOWN = new Set(["message", "step", "comment", "command", "status", "exit_code", "timed_out", "duration",
  "output_tail", "output", "name", "ok", "run", "index", "card_id", "output_bytes", "output_cut"]);

function outputLabel(p) {
  return p.step === "checks" ? `check ${p.name || ""}`.trim() : (p.step || "command");
}

/** Which command an event is about: a start, its output and its end share it. */
function commandKey(event) {
  const p = event.payload || {};
  if (typeof p.command !== "string") return null;
  const step = event.kind === "check" ? "checks" : p.step;
  if (event.kind === "log" && step !== "setup" && step !== "checks") return null;
  if (event.kind !== "log" && event.kind !== "check" && event.kind !== "output") return null;
  return JSON.stringify([step, step === "checks" ? (p.name || "") : "", p.command]);
}

/** A setup or check command: what ran, how it ended, its output (never the raw payload). */
function commandResult(p, label, live = null) {
  const status = p.status || (p.ok === undefined ? null : p.ok ? "passed" : "failed");
  const [cls, text] = STATUS_MARK[status] || ["muted", status || ""];
  const facts = [p.timed_out ? "timed out" : null,
    p.exit_code !== undefined && p.exit_code !== null ? `exit ${p.exit_code}` : null,
    typeof p.duration === "number" ? `${p.duration.toFixed(p.duration < 10 ? 2 : 1)} s` : null].filter(Boolean);
  const output = p.output_tail ?? p.output;
  let shown = null;
  if (live) {  // a running (or ended) command's live output, appended to as it comes
    shown = [live.pre, live.note];
  } else if (output && p.live_shown) {  // its output was shown live above: the tail stays at hand, folded
    shown = h("details", { class: "output-details" }, h("summary", {}, "output (its end)"),
      h("pre", { class: "output" }, output));
  } else if (output) {
    shown = outputBlock(output, "output");
  } else if (status && status !== "running") {
    shown = h("div", { class: "meta" }, "(no output)");
  }
  return [h("div", { class: "tool-line command-line" },
    h("span", { class: "command-step" }, label), status ? h("span", { class: `${cls} command-status` }, text) : null,
    p.name && p.name !== p.command ? h("strong", {}, p.name) : null),
  p.command ? h("pre", { class: "command" }, `$ ${p.command}`) : null,
  facts.length ? h("div", { class: "meta" }, facts.join(" · ")) : null,
  shown];
}

/** The live part of a command's start entry: its output so far, and a note once it was cut. */
function liveOutput() {
  const pre = h("pre", { class: "output live-output", hidden: true });
  const note = h("div", { class: "meta output-cut", hidden: true });
  return { pre, note, ended: null };
}

/** Fields a log event carries beyond the known ones, as name: value lines. */
function otherFields(p) {
  const rest = Object.entries(p).filter(([key]) => !SHOWN.has(key));
  if (!rest.length) return null;
  return h("dl", { class: "log-fields" }, rest.map(([key, value]) => [h("dt", {}, key),
    h("dd", {}, typeof value === "string" ? value : JSON.stringify(value))]));
}

/** One entry of the log: an event, or a command's start with its live output (`item.live`). */
function entry(item) {
  const { event } = item;
  let body;
  if (item.live) {
    const p = event.payload || {};
    const ended = item.live.ended;
    body = commandResult(ended ? { ...p, status: ended } : p, p.step || "command", item.live);
  } else {
    body = eventBody(item.liveShown ? { ...event, payload: { ...event.payload, live_shown: true } } : event);
  }
  item.el = h("li", { class: `log-entry kind-${event.kind}${item.live ? " command-entry" : ""}`,
    dataset: { seq: event.seq } },
  h("time", { class: "log-time" }, formatClock(event.time)),
  h("span", { class: "log-kind" }, event.kind.replace("_", " ")),
  h("div", { class: "log-body" }, body));
  return item.el;
}

export class LogView {
  constructor(attemptId) {
    this.attemptId = attemptId;
    this.items = [];       // one per entry: { event, live?, el? }; output events join their command's item
    this.open = new Map(); // command key → the item of that command's start, until its end comes
    this.firstDrawn = 0;   // index in items of the first entry in the list
    this.pending = [];
    this.frame = null;
    this.earlier = h("button", { type: "button", class: "small earlier", hidden: true,
      onclick: () => this.showEarlier() });
    this.list = h("ol", { class: "log-list", "aria-live": "off" });
    this.box = h("div", { class: "log-box", tabindex: "0", "aria-label": "attempt log" }, this.earlier, this.list);
    this.empty = h("p", { class: "muted log-empty" }, "Waiting for events…");
    this.element = h("div", { class: "log" }, this.empty, this.box);
  }

  start() {
    this.stream = new Stream(`/v1/attempts/${encodeURIComponent(this.attemptId)}/events`, 0,
      (event) => this.push(event));
  }

  stop() {
    if (this.stream) this.stream.close();
    if (this.frame !== null) cancelAnimationFrame(this.frame);
  }

  push(event) {
    this.pending.push(event);
    if (this.frame === null) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = null;
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    const box = this.box;
    const follow = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    const fragment = document.createDocumentFragment();
    for (const event of batch) {
      const item = this.place(event);
      if (item) {
        this.items.push(item);
        fragment.appendChild(entry(item));
      }
    }
    this.list.appendChild(fragment);
    this.empty.hidden = true;
    // keep the page light: drop the oldest drawn entries beyond the cap (not while someone reads them)
    let drawn = this.items.length - this.firstDrawn;
    while (follow && drawn > MAX_DRAWN && this.list.firstChild) {
      this.list.removeChild(this.list.firstChild);
      this.firstDrawn += 1;
      drawn -= 1;
    }
    this.updateEarlier();
    if (follow) box.scrollTop = box.scrollHeight;
  }

  /**
   * Where an event goes: a new item (returned), or into the item of its command's start (null):
   * its output appended, or, at its end, the start marked with how it ended.
   */
  place(event) {
    const key = commandKey(event);
    const p = event.payload || {};
    if (key !== null && event.kind === "log" && p.status === "running") {
      const before = this.open.get(key);
      if (before) this.end(before, "interrupted");  // started again (a daemon restart): the first run never ended
      const item = { event, live: liveOutput() };
      this.open.set(key, item);
      return item;
    }
    const item = key !== null ? this.open.get(key) : undefined;
    if (item && event.kind === "output") {
      const { pre, note } = item.live;
      const follow = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
      if (p.text) {
        pre.appendChild(document.createTextNode(p.text));
        pre.hidden = false;
      }
      if (p.cut) {
        note.textContent = p.message || "output cut";
        note.hidden = false;
      }
      if (follow) pre.scrollTop = pre.scrollHeight;
      return null;
    }
    if (item && event.kind !== "output") {  // its end: the start says how it went; the end's tail folds away
      this.open.delete(key);
      this.end(item, p.status || "ended");
      return { event, liveShown: !item.live.pre.hidden && item.live.note.hidden };
    }
    return { event };
  }

  end(item, status) {
    item.live.ended = status;
    if (item.el && item.el.parentNode) item.el.replaceWith(entry(item));
  }

  showEarlier() {
    const start = Math.max(0, this.firstDrawn - EARLIER_STEP);
    const fragment = document.createDocumentFragment();
    for (const item of this.items.slice(start, this.firstDrawn)) fragment.appendChild(entry(item));
    const before = this.box.scrollHeight;
    this.list.insertBefore(fragment, this.list.firstChild);
    this.box.scrollTop += this.box.scrollHeight - before;
    this.firstDrawn = start;
    this.updateEarlier();
  }

  updateEarlier() {
    this.earlier.hidden = this.firstDrawn === 0;
    this.earlier.textContent = `Show earlier (${this.firstDrawn} hidden)`;
  }
}
