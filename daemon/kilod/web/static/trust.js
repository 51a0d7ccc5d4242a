// The trust prompt: a card whose repository's sandbox files are not trusted says so, and lets a
// person read every file (as text, never as HTML) and trust exactly that content by its sha256.
//
// Trust applies to cards created afterwards: the card on screen keeps the settings it started with.

import { api, clear, errorView, h } from "./util.js";

/** The notice under a card's head, or null when the repository's settings all applied. */
export function trustNotice(card, state) {
  const source = card.settings_source;
  // no note: the file applied in full, or there is no file (then `trusted` is false and nothing is missing)
  if (!source || (!source.note && !state.trusted)) return null;
  const box = h("div", { class: "notice trust-note", role: "note" });
  if (state.trusted) {
    box.append(h("strong", {}, "Trusted. "),
      `New cards of this repository will use these settings (sha256 ${state.trusted.slice(0, 12)}…); `
      + "this card keeps the safe defaults it started with.");
    return box;
  }
  if (source.note) box.append(h("span", { class: "trust-text" }, source.note));
  if (!source.trusted && source.files && source.files.length) {
    box.append(" ", h("button", { type: "button", class: "small", onclick: () => reviewTrust(card.repo, state, box) },
      "Review and trust…"));
  }
  return box;
}

function fileView(file) {
  const head = h("div", { class: "trust-file-head" }, h("code", {}, file.path),
    file.sha256 ? h("span", { class: "muted" }, ` sha256 ${file.sha256}`) : null,
    file.exists ? null : h("span", { class: "muted" }, " (absent)"));
  return h("section", { class: "trust-file", dataset: { path: file.path } }, head,
    file.error ? h("div", { class: "error-box" }, file.error) : null,
    // textContent: the agent wrote these files; nothing in them may become markup
    file.exists && file.content !== null ? h("pre", { class: "trust-content", text: file.content }) : null);
}

/** Fetch what trusting would trust, show it, and trust it only on an explicit confirm. */
async function reviewTrust(repo, state, box) {
  const status = h("div", { class: "trust-status", role: "status" });
  let view;
  try {
    view = await api("GET", `/v1/repos/trust?repo=${encodeURIComponent(repo)}`);
  } catch (err) {
    box.append(h("div", { class: "error-box", role: "alert" }, errorView(err)));
    return;
  }
  const confirm = h("button", { type: "button", class: "danger", disabled: view.sha256 ? null : true }, "Trust these settings");
  const close = h("button", { type: "button" }, "Cancel");
  const dialog = h("dialog", { class: "trust-review", "aria-labelledby": "trust-title" },
    h("h2", { id: "trust-title" }, "Trust this repository's sandbox settings?"),
    h("p", {}, "These files configure the sandbox of new cards of ", h("code", {}, view.repo),
      ": they can open the network, copy untracked files in and run setup commands. An agent may have written them; "
      + "read them before you trust them."),
    view.widening && view.widening.length
      ? h("p", { class: "trust-widening" }, "They widen the sandbox with: ",
        view.widening.map((key, i) => [i ? ", " : "", h("code", {}, key)])) : null,
    view.error ? h("div", { class: "error-box" }, view.error) : null,
    h("div", { class: "trust-files" }, (view.files || []).filter((f) => f.exists || f.error).map(fileView)),
    h("p", {}, "All together: sha256 ", h("code", { class: "trust-sha" }, view.sha256 || "none")),
    view.trusted ? h("p", { class: "notice" }, "This exact content is already trusted.") : null,
    status,
    h("div", { class: "dialog-actions" }, close, confirm));
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => dialog.remove());
  confirm.addEventListener("click", async () => {
    confirm.disabled = true;
    clear(status);
    try {
      const after = await api("POST", "/v1/repos/trust", { repo: view.repo, sha256: view.sha256 });
      state.trusted = after.sha256;
      state.redraw();
      dialog.close();
    } catch (err) {
      // e.g. 409: the files changed since they were shown; the person must read them again
      status.append(h("div", { class: "error-box", role: "alert" }, errorView(err)));
      confirm.disabled = err.status === 409;
    }
  });
  document.body.appendChild(dialog);
  dialog.showModal();
  close.focus();  // Enter must not trust by accident
}
