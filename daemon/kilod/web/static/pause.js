// Pause and resume of the built-in agent, beside an attempt's log.
//
// A person's pause stops the built-in agent after its current tool call; the attempt then
// waits in `paused` with its container up, and Resume (with an optional message) goes on.
// The daemon pauses an attempt by itself when the disk is full: that one has no button, it
// goes on by itself once there is room, so the page only says why it waits.

import { api, h } from "./util.js";

// the prefix of `error` the daemon writes on its own pause (kilod.domain.DISK_FULL_PAUSE)
const DISK_FULL_PAUSE = "paused: the disk is full";

/** A running built-in agent can be paused; agent CLIs run their own loop (the API says so with a 409). */
export function canPause(a) {
  return a.state === "running" && a.agent === "builtin";
}

export function waitsForDisk(a) {
  return a.state === "paused" && (a.error || "").startsWith(DISK_FULL_PAUSE);
}

/** A person's pause: paused with no error. */
export function canResume(a) {
  return a.state === "paused" && !a.error;
}

export function pause(view, a, button) {
  return view.run(button, () => api("POST", `/v1/attempts/${encodeURIComponent(a.id)}/pause`),
    () => "Pause requested: the agent stops after its current tool call.");
}

/** What the side panel shows for a paused attempt: the disk's reason, or the resume form. */
export function pausedPanel(view, a) {
  if (waitsForDisk(a)) {
    return h("div", { class: "notice disk-wait", role: "note" },
      "Waiting for disk space: this attempt goes on by itself once space is freed. ", a.error);
  }
  if (!canResume(a)) return null;
  const text = h("textarea", { id: "resume-text", rows: "3",
    placeholder: "Optional: tell the agent what you changed or want (it is also told what changed in the worktree)" });
  const send = h("button", { type: "submit", class: "primary" }, "Resume");
  const form = h("form", { class: "resume", onsubmit: async (e) => {
    e.preventDefault();
    const value = text.value.trim();
    const body = value ? { text: value } : {};
    const done = await view.run(send, () => api("POST", `/v1/attempts/${encodeURIComponent(a.id)}/resume`, body),
      () => "Resumed; the agent is working again.");
    if (done) text.value = "";
  } },
  h("p", { class: "muted hint-line" }, "Paused by a person. Change the worktree if you like, then resume."),
  h("label", { for: "resume-text" }, "Message ", h("span", { class: "hint" }, "(optional)")), text,
  h("div", { class: "form-actions" }, send));
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
  });
  return form;
}
