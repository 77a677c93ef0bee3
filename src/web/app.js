// The chat page: speaks chatd's line protocol over a WebSocket at /ws of its own origin, one
// protocol line per text frame. Everything a peer sent is put in the page as text
// (textContent), never as HTML.
import { describeError, MAX_LINE_BYTES, parseLine, reconnectDelay } from "./lines.js";

/** The most messages kept in the list; older ones are removed. */
const MAX_MESSAGES = 500;
/** How often a re-JOIN after a reconnect is tried while the old session still holds the name. */
const REJOIN_TRIES = 5;

const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
const ui = {
  status: $("status"),
  leave: /** @type {HTMLButtonElement} */ ($("leave")),
  nameForm: /** @type {HTMLFormElement} */ ($("name-form")),
  name: /** @type {HTMLInputElement} */ ($("name")),
  nameError: $("name-error"),
  chat: $("chat"),
  messages: $("messages"),
  users: $("users"),
  userCount: $("user-count"),
  sendForm: /** @type {HTMLFormElement} */ ($("send-form")),
  text: /** @type {HTMLInputElement} */ ($("text")),
  targetText: $("target-text"),
  targetClear: /** @type {HTMLButtonElement} */ ($("target-clear")),
  left: $("left"),
  rejoin: /** @type {HTMLButtonElement} */ ($("rejoin")),
};

const state = {
  /** @type {WebSocket | null} */
  socket: null,
  /** True once HELLO arrived on the current socket. */
  greeted: false,
  /** The name joined, or being asked for; kept across reconnects. */
  name: "",
  joined: false,
  /** True after a reconnect until the JOIN under the old name is answered. */
  rejoining: false,
  rejoinTries: 0,
  /** True when a name was typed before the greeting: JOIN it once greeted. */
  pendingJoin: false,
  /** True after Exit: the close that follows is not reconnected. */
  leaving: false,
  /** Reconnect attempts since the last greeting. */
  attempt: 0,
  /** The user written to directly, or "" for everyone. */
  target: "",
  /** Users by lower-case name → name as spelled. */
  users: new Map(),
};

const encoder = new TextEncoder();

function setStatus(text) {
  ui.status.textContent = text;
}

function send(line) {
  if (state.socket?.readyState === WebSocket.OPEN) state.socket.send(line);
}

function connect() {
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url);
  state.socket = socket;
  state.greeted = false;
  setStatus(state.attempt === 0 ? "Connecting…" : "Reconnecting…");
  socket.addEventListener("message", (event) => {
    if (socket === state.socket && typeof event.data === "string") handle(event.data);
  });
  socket.addEventListener("close", () => {
    if (socket === state.socket) closed();
  });
}

function closed() {
  const wasJoined = state.joined;
  state.socket = null;
  state.joined = false;
  ui.leave.hidden = true;
  if (state.leaving) {
    // The BYE may have been lost with the connection: the person left all the same.
    showLeft();
    return;
  }
  if (wasJoined) {
    notice("Connection lost. Reconnecting; you will join again as " + state.name + ".", "error");
    state.rejoining = true;
    state.rejoinTries = 0;
  }
  const delay = reconnectDelay(state.attempt++, Math.random());
  setStatus(`Disconnected. Reconnecting in ${(delay / 1000).toFixed(1)} s…`);
  setTimeout(connect, delay);
}

/** @param {string} line */
function handle(line) {
  const event = parseLine(line);
  switch (event.kind) {
    case "hello":
      state.greeted = true;
      state.attempt = 0;
      setStatus("Connected");
      if (state.name && (state.rejoining || state.pendingJoin)) send(`JOIN ${state.name}`);
      else showNameForm("");
      state.pendingJoin = false;
      break;
    case "joined-as":
      joinedAs(event.name);
      break;
    case "users":
      if (event.room !== "*") break;
      state.users = new Map(event.names.map((name) => [name.toLowerCase(), name]));
      renderUsers();
      break;
    case "joined":
      if (event.room !== "*") break;
      state.users.set(event.name.toLowerCase(), event.name);
      renderUsers();
      notice(`${event.name} joined`, "join");
      break;
    case "left":
      if (event.room !== "*") break;
      state.users.delete(event.name.toLowerCase());
      renderUsers();
      notice(`${event.name} left`, "leave");
      if (state.target.toLowerCase() === event.name.toLowerCase()) setTarget("");
      break;
    case "message":
      if (event.room === "*") message("room", event.sender, event.text);
      break;
    case "direct":
      message("direct", event.sender, event.text);
      break;
    case "bye":
      if (state.leaving) showLeft();
      else if (event.reason) notice(`The server says goodbye: ${event.reason}.`, "error");
      break;
    case "error":
      error(event.code, event.detail);
      break;
    default:
      break;
  }
}

function error(code, detail) {
  const text = describeError(code, detail);
  if (!state.joined && (code === "NAME_TAKEN" || code === "BAD_NAME")) {
    if (state.rejoining && code === "NAME_TAKEN" && ++state.rejoinTries < REJOIN_TRIES) {
      // The server frees a dropped connection's name a moment after it notices: ask again.
      const delay = reconnectDelay(state.rejoinTries, Math.random());
      setStatus(
        `Your name ${state.name} is still held; trying again in ${(delay / 1000).toFixed(1)} s…`,
      );
      const socket = state.socket;
      setTimeout(() => {
        if (socket === state.socket && !state.joined) send(`JOIN ${state.name}`);
      }, delay);
      return;
    }
    state.rejoining = false;
    showNameForm(text);
    return;
  }
  notice(text, "error");
}

function joinedAs(name) {
  const again = state.rejoining;
  state.name = name;
  state.joined = true;
  state.rejoining = false;
  ui.nameForm.hidden = true;
  ui.left.hidden = true;
  ui.chat.hidden = false;
  ui.leave.hidden = false;
  setStatus(`Connected as ${name}`);
  notice(again ? `You joined again as ${name}.` : `You joined as ${name}.`, "self");
  send("WHO");
  ui.text.focus();
}

function showNameForm(problem) {
  ui.chat.hidden = ui.messages.childElementCount === 0;
  ui.left.hidden = true;
  ui.nameForm.hidden = false;
  ui.nameError.textContent = problem;
  ui.name.setAttribute("aria-invalid", problem ? "true" : "false");
  if (problem) ui.name.select();
  ui.name.focus();
}

function showLeft() {
  state.joined = false;
  ui.chat.hidden = true;
  ui.nameForm.hidden = true;
  ui.leave.hidden = true;
  ui.left.hidden = false;
  setStatus("Not connected");
  ui.rejoin.focus();
}

/** True while the person has not scrolled up: new messages and resizes keep the end in view. */
let stuckToEnd = true;
ui.messages.addEventListener("scroll", () => stuckToEnd = atBottom(), { passive: true });
new ResizeObserver(() => {
  if (stuckToEnd) ui.messages.scrollTop = ui.messages.scrollHeight;
}).observe(ui.messages);

/** True when the list is scrolled to (or within a few pixels of) its end. */
function atBottom() {
  const list = ui.messages;
  return list.scrollHeight - list.scrollTop - list.clientHeight < 8;
}

/** Appends one entry to the message list; `build` fills its body with text nodes. */
function append(kind, build) {
  const stick = stuckToEnd || atBottom();
  const item = document.createElement("li");
  item.className = `msg msg-${kind}`;
  item.dataset.kind = kind;
  const now = new Date();
  const time = document.createElement("time");
  time.dateTime = now.toISOString();
  time.textContent = now.toLocaleTimeString([], {
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  });
  const body = document.createElement("span");
  body.className = "body";
  build(body);
  item.append(time, " ", body);
  ui.messages.append(item);
  while (ui.messages.childElementCount > MAX_MESSAGES) ui.messages.firstElementChild?.remove();
  if (stick) ui.messages.scrollTop = ui.messages.scrollHeight;
}

function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

/** A chat line: `room` (alice: text), `direct` (alice → you: text), `mine`, `mine-direct`. */
function message(kind, from, text, to = "you") {
  append(kind, (body) => {
    if (kind === "direct" || kind === "mine-direct") {
      body.append(span("tag", "direct"), " ", span("who", from), ` → ${to}: `);
    } else body.append(span("who", from), ": ");
    body.append(span("text", text));
  });
}

function notice(text, kind) {
  append(kind, (body) => body.append(text));
}

function renderUsers() {
  const names = [...state.users.values()].sort((a, b) =>
    a.toLowerCase().localeCompare(b.toLowerCase())
  );
  const focused = document.activeElement?.closest?.("#users") ? document.activeElement : null;
  const focusedName = focused?.dataset?.name;
  ui.users.replaceChildren(...names.map((name) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.name = name;
    button.textContent = name;
    const self = name.toLowerCase() === state.name.toLowerCase();
    if (self) button.append(span("you", " (you)"));
    button.setAttribute("aria-pressed", String(name === state.target));
    button.setAttribute("aria-label", `Write to ${name} directly${self ? " (you)" : ""}`);
    button.addEventListener("click", () => {
      setTarget(name === state.target ? "" : name);
      ui.text.focus();
    });
    item.append(button);
    return item;
  }));
  ui.userCount.textContent = `(${names.length})`;
  if (focusedName) ui.users.querySelector(`[data-name="${CSS.escape(focusedName)}"]`)?.focus();
}

function setTarget(name) {
  state.target = name;
  ui.targetText.textContent = name ? `To ${name} only (direct)` : "To everyone";
  ui.targetClear.hidden = name === "";
  ui.sendForm.classList.toggle("direct", name !== "");
  for (const button of ui.users.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.name === name));
  }
}

ui.nameForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = ui.name.value.trim();
  if (name === "") return showNameForm("Type a name first.");
  state.name = name;
  state.rejoining = false;
  ui.nameError.textContent = "";
  if (state.socket?.readyState === WebSocket.OPEN && state.greeted) send(`JOIN ${name}`);
  // Not connected yet, or reconnecting: the next greeting sends the JOIN.
  else state.pendingJoin = true;
});

ui.sendForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = ui.text.value;
  if (!state.joined || text.trim() === "") return;
  const line = state.target ? `CHAT ${state.target} ${text}` : `CHAT * ${text}`;
  if (encoder.encode(line).length > MAX_LINE_BYTES) {
    notice(describeError("LINE_TOO_LONG", ""), "error");
    return;
  }
  send(line);
  if (state.target) message("mine-direct", "you", text, state.target);
  else message("mine", state.name, text);
  ui.text.value = "";
});

ui.text.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.target) setTarget("");
});

ui.targetClear.addEventListener("click", () => {
  setTarget("");
  ui.text.focus();
});

ui.leave.addEventListener("click", () => {
  state.leaving = true;
  send("LEAV");
});

ui.rejoin.addEventListener("click", () => {
  state.leaving = false;
  state.attempt = 0;
  ui.name.value = state.name;
  connect();
});

connect();
