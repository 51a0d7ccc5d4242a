// Small helpers shared by every view: DOM building, the API, event streams, formatting, dialogs.

/** Build an element. Strings and numbers become text nodes (never HTML); null/false children are skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// -- the API ------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, message, details) {
    super(message);
    this.status = status;
    this.details = details || {};
  }
}

const sessionListeners = new Set();
export function onSessionLost(fn) { sessionListeners.add(fn); }
function sessionLost() { for (const fn of sessionListeners) fn(); }

/** JSON request to the daemon; throws ApiError with the daemon's own message on 4xx/5xx. */
export async function api(method, path, body) {
  const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new ApiError(0, "the daemon did not answer (is it running?)");
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const error = (data && data.error) || {};
    if (response.status === 401) sessionLost();
    throw new ApiError(response.status, error.message || `HTTP ${response.status} ${response.statusText}`, error);
  }
  return data;
}

/**
 * The daemon's constants (states, columns, steps, event kinds) from GET /v1/meta: the page keeps
 * no copies. Loaded once before the first view is drawn.
 */
export const meta = { states: [], live_states: [], final_states: [], columns: [], steps: [], event_kinds: [] };
export let LIVE_STATES = new Set();

export async function loadMeta() {
  Object.assign(meta, await api("GET", "/v1/meta"));
  LIVE_STATES = new Set(meta.live_states);
  return meta;
}

export function columnTitle(id) {
  const column = meta.columns.find((c) => c.id === id);
  return column ? column.title : id;
}

/**
 * Follow an SSE endpoint. EventSource reconnects by itself after network errors (sending
 * Last-Event-ID); when it gives up (an HTTP error), this opens a new one after the last id seen.
 */
export class Stream {
  constructor(path, after, onEvent, onStatus = () => {}) {
    this.path = path;
    this.last = after || 0;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.closed = false;
    this.retry = null;
    this.open();
  }

  open() {
    const sep = this.path.includes("?") ? "&" : "?";
    const source = new EventSource(`${this.path}${sep}after=${this.last}`);
    this.source = source;
    const handle = (e) => {
      const id = Number(e.lastEventId);
      if (Number.isFinite(id) && id > 0) {
        if (id <= this.last) return;  // already seen (replay after a reconnect)
        this.last = id;
      }
      let event;
      try { event = JSON.parse(e.data); } catch { return; }
      this.onEvent(event);
    };
    for (const kind of meta.event_kinds) source.addEventListener(kind, handle);
    source.onopen = () => this.onStatus("live");
    source.onerror = () => {
      if (this.closed) return;
      if (source.readyState === EventSource.CLOSED) {
        this.onStatus("down");
        this.retry = setTimeout(() => this.reopen(), 2000);
      } else {
        this.onStatus("reconnecting");
      }
    };
  }

  async reopen() {
    if (this.closed) return;
    try {
      await api("GET", "/v1/status");
    } catch (err) {
      if (err.status === 401) return;  // logged out: the banner says what to do
    }
    if (!this.closed) this.open();
  }

  close() {
    this.closed = true;
    clearTimeout(this.retry);
    if (this.source) this.source.close();
  }
}

// -- formatting ---------------------------------------------------------------

export function plural(n, one, many = one + "s") { return `${n} ${n === 1 ? one : many}`; }

export function formatTokens(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${Math.round(n / 1e3)}k`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

export function formatCost(cost) {
  if (cost === null || cost === undefined) return "cost unknown";
  if (cost === 0) return "$0";
  if (cost < 0.01) return `$${cost.toFixed(4)}`;
  return `$${cost.toFixed(2)}`;
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function formatAge(epochSeconds) {
  const s = Math.max(0, Date.now() / 1000 - epochSeconds);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(epochSeconds * 1000).toLocaleDateString();
}

export function formatClock(epochSeconds) {
  const d = new Date(epochSeconds * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

export function basename(path) {
  const parts = String(path).replace(/\/+$/, "").split("/");
  return parts[parts.length - 1] || path;
}

export function cardIdOf(event) {
  return (event.payload && event.payload.card_id) || String(event.attempt_id).replace(/-\d+$/, "");
}

/** Call `fn` at most once per `ms`, with everything collected since the last call. */
export function batcher(ms, fn) {
  let pending = new Set();
  let timer = null;
  return {
    add(key) {
      pending.add(key);
      if (timer === null) {
        timer = setTimeout(() => {
          timer = null;
          const keys = pending;
          pending = new Set();
          fn(keys);
        }, ms);
      }
    },
    cancel() { clearTimeout(timer); timer = null; pending = new Set(); },
  };
}

// -- dialogs ------------------------------------------------------------------

/** A modal yes/no question; resolves true when confirmed. */
export function confirmDialog({ title, text, confirm = "Confirm", danger = false }) {
  return new Promise((resolve) => {
    const yes = h("button", { type: "submit", value: "yes", class: danger ? "danger" : "primary" }, confirm);
    const no = h("button", { type: "submit", value: "no" }, "Cancel");
    const dialog = h("dialog", { class: "confirm", "aria-labelledby": "confirm-title" },
      h("form", { method: "dialog" },
        h("h2", { id: "confirm-title" }, title),
        h("p", {}, text),
        h("div", { class: "dialog-actions" }, no, yes)));
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "yes");
      dialog.remove();
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    (danger ? no : yes).focus();  // Enter must not destroy work by accident
  });
}

/** The parts of an API error worth showing: the message, then any lists it carries (e.g. conflicting paths). */
export function errorView(err) {
  const lists = [];
  for (const [key, value] of Object.entries(err.details || {})) {
    if (Array.isArray(value) && value.length) {
      lists.push(h("div", { class: "error-detail" }, h("span", {}, `${key.replace(/_/g, " ")}:`),
        h("ul", {}, value.map((v) => h("li", {}, h("code", {}, typeof v === "string" ? v : JSON.stringify(v)))))));
    }
  }
  return [h("span", { class: "error-message" }, err.message), ...lists];
}
