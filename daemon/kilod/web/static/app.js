// The web board's entry point: routes (#/ and #/cards/<id>[/<attempt>]), the top bar, the session.

import { BoardView, NewCardDialog } from "./board.js";
import { CardView } from "./card.js";
import { api, clear, h, loadMeta, onSessionLost } from "./util.js";

class App {
  constructor() {
    this.main = document.getElementById("view");
    this.connection = document.getElementById("connection");
    this.banner = document.getElementById("banner");
    this.view = null;
    this.newCard = new NewCardDialog((card) => {
      if (this.view instanceof BoardView) this.view.added(card);
      else this.go("#/");
    });
    document.getElementById("new-card-button").addEventListener("click", () => this.newCard.open());
    document.addEventListener("keydown", (e) => {
      const typing = e.target.closest && e.target.closest("input, textarea, select, [contenteditable], dialog");
      if (typing || e.ctrlKey || e.metaKey || e.altKey || document.querySelector("dialog[open]")) return;
      if (e.key === "n") {
        e.preventDefault();
        this.newCard.open();
      } else if (this.view && this.view.onKey && this.view.onKey(e)) {
        e.preventDefault();
      }
    });
    document.getElementById("logout-button").addEventListener("click", async () => {
      await api("POST", "/logout").catch(() => null);
      this.sessionLost();
    });
    onSessionLost(() => this.sessionLost());
  }

  /** Routes once the daemon's constants are known (an address change before that waits for them). */
  start() {
    window.addEventListener("hashchange", () => this.route());
    return this.route();
  }

  go(hash) {
    if (location.hash === hash) this.route();
    else location.hash = hash;
  }

  setConnection(state) {
    const labels = { live: "live", reconnecting: "reconnecting…", down: "daemon unreachable; retrying…" };
    this.connection.textContent = labels[state] || state;
    this.connection.dataset.state = state;
  }

  sessionLost() {
    if (this.view) this.view.unmount();
    this.view = null;
    clear(this.banner).append(h("strong", {}, "Logged out. "),
      "This page needs a fresh login link: run ", h("code", {}, "kilod ctl web"), " on the daemon's machine.");
    this.banner.hidden = false;
    this.setConnection("logged out");
  }

  async route() {
    const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
    if (parts[0] === "cards" && parts[1] && this.view instanceof CardView && this.view.cardId === parts[1]) {
      if (!this.view.card) {  // still loading: it opens the attempt the address names
        if (parts[2]) this.view.selected = parts[2];
        return;
      }
      const attempt = parts[2] || this.view.defaultAttempt();
      if (attempt) this.view.select(attempt);
      return;
    }
    if (this.view) this.view.unmount();
    const view = parts[0] === "cards" && parts[1] ? new CardView(this, parts[1], parts[2]) : new BoardView(this);
    this.view = view;
    document.title = "kilod";
    const root = clear(this.main);
    try {
      await view.mount(root);
      if (view !== this.view) view.unmount();  // the person navigated away meanwhile
    } catch (err) {
      if (view !== this.view) return;
      if (err.status === 401) return;  // the banner explains
      clear(root).appendChild(h("div", { class: "error-box page-error", role: "alert" },
        err.status === 404 ? `Not found: ${err.message}` : `Could not load this page: ${err.message}`,
        " ", h("a", { href: "#/" }, "Back to the board")));
    }
  }
}

// Chromium leaves some elements in the old colours when the system theme flips (custom
// properties under a media query): one forced restyle brings them along.
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
  document.body.style.display = "none";
  void document.body.offsetHeight;
  document.body.style.display = "";
});

const app = new App();
loadMeta().then(() => app.start(), (err) => {
  if (err.status === 401) return;  // the banner explains
  clear(document.getElementById("view")).appendChild(h("div", { class: "error-box page-error", role: "alert" },
    `Could not reach the daemon: ${err.message}`));
});
