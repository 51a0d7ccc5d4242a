// An attempt's live log: every event of /v1/attempts/{id}/events, drawn in batches.
//
// Events arriving together are drawn once per animation frame; only the latest
// MAX_DRAWN stay in the page and "Show earlier" brings older ones back, so a log of
// tens of thousands of events stays as fast as a short one.

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
  "output_tail", "output", "name", "ok", "run", "index", "card_id"]);

/** A setup or check command: what ran, how it ended, its output (never the raw payload). */
function commandResult(p, label) {
  const status = p.status || (p.ok === undefined ? null : p.ok ? "passed" : "failed");
  const [cls, text] = STATUS_MARK[status] || ["muted", status || ""];
  const facts = [p.timed_out ? "timed out" : null,
    p.exit_code !== undefined && p.exit_code !== null ? `exit ${p.exit_code}` : null,
    typeof p.duration === "number" ? `${p.duration.toFixed(p.duration < 10 ? 2 : 1)} s` : null].filter(Boolean);
  const output = p.output_tail ?? p.output;
  return [h("div", { class: "tool-line command-line" },
    h("span", { class: "command-step" }, label), status ? h("span", { class: cls }, text) : null,
    p.name && p.name !== p.command ? h("strong", {}, p.name) : null),
  p.command ? h("pre", { class: "command" }, `$ ${p.command}`) : null,
  facts.length ? h("div", { class: "meta" }, facts.join(" · ")) : null,
  output ? outputBlock(output, "output") : (status && status !== "running" ? h("div", { class: "meta" }, "(no output)") : null)];
}

/** Fields a log event carries beyond the known ones, as name: value lines. */
function otherFields(p) {
  const rest = Object.entries(p).filter(([key]) => !SHOWN.has(key));
  if (!rest.length) return null;
  return h("dl", { class: "log-fields" }, rest.map(([key, value]) => [h("dt", {}, key),
    h("dd", {}, typeof value === "string" ? value : JSON.stringify(value))]));
}

function entry(event) {
  return h("li", { class: `log-entry kind-${event.kind}`, dataset: { seq: event.seq } },
    h("time", { class: "log-time" }, formatClock(event.time)),
    h("span", { class: "log-kind" }, event.kind.replace("_", " ")),
    h("div", { class: "log-body" }, eventBody(event)));
}

export class LogView {
  constructor(attemptId) {
    this.attemptId = attemptId;
    this.events = [];
    this.firstDrawn = 0;   // index in events of the first entry in the list
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
      this.events.push(event);
      fragment.appendChild(entry(event));
    }
    this.list.appendChild(fragment);
    this.empty.hidden = true;
    // keep the page light: drop the oldest drawn entries beyond the cap (not while someone reads them)
    let drawn = this.events.length - this.firstDrawn;
    while (follow && drawn > MAX_DRAWN && this.list.firstChild) {
      this.list.removeChild(this.list.firstChild);
      this.firstDrawn += 1;
      drawn -= 1;
    }
    this.updateEarlier();
    if (follow) box.scrollTop = box.scrollHeight;
  }

  showEarlier() {
    const start = Math.max(0, this.firstDrawn - EARLIER_STEP);
    const fragment = document.createDocumentFragment();
    for (const event of this.events.slice(start, this.firstDrawn)) fragment.appendChild(entry(event));
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
