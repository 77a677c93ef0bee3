// The chat page: speaks chatd's line protocol over a WebSocket at /ws of its own origin, one
// protocol line per text frame. Everything a peer sent is put in the page as text
// (textContent), never as HTML.
import { describeError, MAX_LINE_BYTES, parseLine, reconnectDelay } from "./lines.js";
// Rooms: the lobby (`*`) and each named room the person is in keep their own messages, users
// and unread count; the message list and the user list show the current room's.

/** The most messages kept per room; older ones are removed. */
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
  rooms: $("rooms"),
  roomForm: /** @type {HTMLFormElement} */ ($("room-form")),
  roomName: /** @type {HTMLInputElement} */ ($("room-name")),
  roomError: $("room-error"),
  browse: /** @type {HTMLDetailsElement} */ ($("browse")),
  allRooms: $("all-rooms"),
  allRoomsEmpty: $("all-rooms-empty"),
  allRoomsRefresh: /** @type {HTMLButtonElement} */ ($("all-rooms-refresh")),
  usersRoom: $("users-room"),
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
  /** Rooms by lower-case name (`*` the lobby): the lobby and the named rooms one is in. */
  rooms: new Map([["*", newRoom("*")]]),
  /** Key of the room shown. */
  current: "*",
  /** The room asked for in the join-room form, until the server answers. */
  joiningRoom: "",
};

/**
 * @typedef {object} Room
 * @property {string} name `*` or `#name` as the server spells it
 * @property {HTMLElement[]} items its message list entries, oldest first
 * @property {Map<string, string>} users lower-case name → name as spelled
 * @property {number} unread live messages since it was last shown
 * @property {Set<string>} seen history lines shown, so that a rejoin does not repeat them
 */

/** @param {string} name @returns {Room} */
function newRoom(name) {
  return { name, items: [], users: new Map(), unread: 0, seen: new Set() };
}

/** @param {string} name */
function roomKey(name) {
  return name.toLowerCase();
}

/** @param {string} key */
function roomLabel(key) {
  return key === "*" ? "Lobby" : /** @type {Room} */ (state.rooms.get(key)).name;
}

function currentRoom() {
  return /** @type {Room} */ (state.rooms.get(state.current));
}

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
    case "entered":
      entered(event.room);
      break;
    case "parted":
      parted(event.room);
      break;
    case "users": {
      const room = state.rooms.get(roomKey(event.room));
      if (!room) break; // WHO of a room one is not in
      room.users = new Map(event.names.map((name) => [name.toLowerCase(), name]));
      if (room === currentRoom()) renderUsers();
      break;
    }
    case "joined": {
      const room = state.rooms.get(roomKey(event.room));
      if (!room) break;
      room.users.set(event.name.toLowerCase(), event.name);
      if (room === currentRoom()) renderUsers();
      notice(`${event.name} joined`, "join", roomKey(event.room));
      break;
    }
    case "left": {
      const room = state.rooms.get(roomKey(event.room));
      if (!room) break;
      room.users.delete(event.name.toLowerCase());
      if (room === currentRoom()) renderUsers();
      notice(`${event.name} left`, "leave", roomKey(event.room));
      if (event.room === "*" && state.target.toLowerCase() === event.name.toLowerCase()) {
        setTarget("");
      }
      break;
    }
    case "message": {
      const key = roomKey(event.room);
      const room = state.rooms.get(key);
      if (!room) break;
      message("room", event.sender, event.text, { room: key });
      if (key !== state.current) {
        room.unread++;
        renderRooms();
      }
      break;
    }
    case "history": {
      const key = roomKey(event.room);
      const room = state.rooms.get(key);
      const seen = `${event.time} ${event.sender} ${event.text}`;
      if (!room || room.seen.has(seen)) break;
      room.seen.add(seen);
      const when = new Date(event.time);
      message("history", event.sender, event.text, {
        room: key,
        when: Number.isNaN(when.getTime()) ? new Date() : when,
      });
      break;
    }
    case "direct":
      message("direct", event.sender, event.text);
      break;
    case "rooms":
      renderAllRooms(event.rooms);
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
  const aboutRoomJoin = code === "BAD_ROOM" || code === "ALREADY_IN_ROOM" ||
    code === "TOO_MANY_ROOMS";
  if (state.joiningRoom && aboutRoomJoin) {
    state.joiningRoom = "";
    showRoomError(text);
    return;
  }
  // A cluster node cut off from the others cannot decide a name: asked again, like a taken one.
  const aboutName = code === "NAME_TAKEN" || code === "BAD_NAME" || code === "CLUSTER_UNAVAILABLE";
  if (!state.joined && aboutName) {
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
  if (again) {
    // The new session is in no room: enter again the ones the page shows.
    for (const [key, room] of state.rooms) if (key !== "*") send(`JOIN ${room.name}`);
  } else {
    for (const key of state.rooms.keys()) if (key !== "*") state.rooms.delete(key);
    showRoom("*");
  }
  state.joiningRoom = "";
  notice(again ? `You joined again as ${name}.` : `You joined as ${name}.`, "self", "*");
  send("WHO");
  ui.text.focus();
}

function showNameForm(problem) {
  ui.chat.hidden = ![...state.rooms.values()].some((room) => room.items.length > 0);
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

/**
 * @typedef {object} AppendOptions
 * @property {string} [room] key of the room the entry belongs to; the current one by default
 * @property {Date} [when] its time; now by default (history lines bring their own)
 */

/**
 * Appends one entry to a room's messages, and to the list when that room is shown; `build`
 * fills its body with text nodes.
 * @param {string} kind
 * @param {(body: HTMLElement) => void} build
 * @param {AppendOptions} [options]
 */
function append(kind, build, options = {}) {
  const key = options.room ?? state.current;
  const room = state.rooms.get(key);
  if (!room) return;
  const item = document.createElement("li");
  item.className = `msg msg-${kind}`;
  item.dataset.kind = kind;
  const when = options.when ?? new Date();
  const time = document.createElement("time");
  time.dateTime = when.toISOString();
  time.title = when.toLocaleString();
  time.textContent = when.toLocaleTimeString([], {
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  });
  const body = document.createElement("span");
  body.className = "body";
  build(body);
  item.append(time, " ", body);
  room.items.push(item);
  while (room.items.length > MAX_MESSAGES) room.items.shift()?.remove();
  if (key !== state.current) return;
  const stick = stuckToEnd || atBottom();
  ui.messages.append(item);
  if (stick) ui.messages.scrollTop = ui.messages.scrollHeight;
}

function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

/**
 * A chat line: `room` (alice: text), `history` (the same, said before one came), `direct`
 * (alice → you: text), `mine`, `mine-direct`.
 * @param {string} kind
 * @param {string} from
 * @param {string} text
 * @param {AppendOptions & { to?: string }} [options] `to`: whom a direct line went to
 */
function message(kind, from, text, options = {}) {
  append(kind, (body) => {
    if (kind === "direct" || kind === "mine-direct") {
      body.append(span("tag", "direct"), " ", span("who", from), ` → ${options.to ?? "you"}: `);
    } else body.append(span("who", from), ": ");
    body.append(span("text", text));
  }, options);
}

/**
 * @param {string} text
 * @param {string} kind
 * @param {string} [room] key of the room it concerns; the current one by default
 */
function notice(text, kind, room) {
  append(kind, (body) => body.append(text), { room });
}

/** The server put us in `name`: add it, and show it when the person asked for it. */
function entered(name) {
  const key = roomKey(name);
  const known = state.rooms.get(key);
  if (known) known.name = name;
  else state.rooms.set(key, newRoom(name));
  notice(`You entered ${name}.`, "self", key);
  if (state.joiningRoom === key) {
    state.joiningRoom = "";
    ui.roomName.value = "";
    showRoomError("");
    showRoom(key);
  } else renderRooms();
  refreshAllRooms();
}

/** The server took us out of `name`. */
function parted(name) {
  const key = roomKey(name);
  if (!state.rooms.delete(key)) return;
  if (state.current === key) showRoom("*");
  else renderRooms();
  notice(`You left ${name}.`, "self");
  refreshAllRooms();
}

/** Shows room `key`: its messages, its users; its unread count goes to zero. */
function showRoom(key) {
  const room = state.rooms.get(key);
  if (!room) return;
  state.current = key;
  room.unread = 0;
  const label = roomLabel(key);
  const where = key === "*" ? "the lobby" : label;
  ui.messages.replaceChildren(...room.items);
  ui.messages.setAttribute("aria-label", `Messages in ${where}`);
  ui.usersRoom.textContent = `in ${where}`;
  ui.text.placeholder = `Message ${where}`;
  stuckToEnd = true;
  ui.messages.scrollTop = ui.messages.scrollHeight;
  renderUsers();
  renderRooms();
  updateTargetText();
}

/** The room list: the lobby first, then the named rooms by name, each with its unread count. */
function renderRooms() {
  const keys = [...state.rooms.keys()].filter((key) => key !== "*").sort();
  const focused = document.activeElement?.closest?.("#rooms") ? document.activeElement : null;
  const focusedKey = focused?.dataset?.room;
  const focusedPart = focused?.classList.contains("part");
  ui.rooms.replaceChildren(...["*", ...keys].map((key) => {
    const room = /** @type {Room} */ (state.rooms.get(key));
    const label = roomLabel(key);
    const item = document.createElement("li");
    const show = document.createElement("button");
    show.type = "button";
    show.className = "room";
    show.dataset.room = key;
    show.textContent = label;
    const current = key === state.current;
    show.setAttribute("aria-current", String(current));
    const unread = room.unread > 0 ? `, ${room.unread} unread` : "";
    show.setAttribute("aria-label", `${label}${unread}`);
    if (room.unread > 0) show.append(span("unread", String(room.unread)));
    show.addEventListener("click", () => {
      showRoom(key);
      ui.text.focus();
    });
    item.append(show);
    if (key !== "*") {
      const part = document.createElement("button");
      part.type = "button";
      part.className = "part";
      part.dataset.room = key;
      part.textContent = "×";
      part.setAttribute("aria-label", `Leave ${label}`);
      part.addEventListener("click", () => send(`PART ${room.name}`));
      item.append(part);
    }
    return item;
  }));
  if (focusedKey) {
    const selector = `${focusedPart ? ".part" : ".room"}[data-room="${CSS.escape(focusedKey)}"]`;
    /** @type {HTMLElement | null} */ (ui.rooms.querySelector(selector) ??
      ui.rooms.querySelector(".room"))?.focus();
  }
}

/** Asks for every room of the server (`ROOMS`) while the "All rooms" list is open. */
function refreshAllRooms() {
  if (ui.browse.open && state.joined) send("ROOMS");
}

/**
 * The "All rooms" list from a `ROOMS` answer: each room with its member count; choosing one
 * joins it, or shows it when one is in it already.
 * @param {{ room: string, count: number }[]} rooms
 */
function renderAllRooms(rooms) {
  ui.allRoomsEmpty.hidden = rooms.length > 0;
  ui.allRooms.replaceChildren(...rooms.map(({ room, count }) => {
    const key = roomKey(room);
    const inIt = state.rooms.has(key);
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.room = key;
    const users = count === 1 ? "1 user" : `${count} users`;
    button.append(room, span("count", inIt ? `${users}, you are in it` : users));
    button.setAttribute("aria-label", `${inIt ? "Show" : "Join"} ${room}, ${users}`);
    button.addEventListener("click", () => {
      enterRoom(room);
      if (state.current === key) ui.text.focus();
    });
    item.append(button);
    return item;
  }));
}

/**
 * Shows room `name` when one is in it; else asks the server to enter it, and its answer shows
 * the room (`entered`) or is explained below the join-room input.
 * @param {string} name
 */
function enterRoom(name) {
  const key = roomKey(name);
  showRoomError("");
  if (state.rooms.has(key)) {
    showRoom(key);
    return;
  }
  state.joiningRoom = key;
  send(`JOIN ${name}`);
}

/** @param {string} problem */
function showRoomError(problem) {
  ui.roomError.textContent = problem;
  ui.roomName.setAttribute("aria-invalid", problem ? "true" : "false");
  if (problem) ui.roomName.focus();
}

function renderUsers() {
  const names = [...currentRoom().users.values()].sort((a, b) =>
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

function updateTargetText() {
  const label = roomLabel(state.current);
  ui.targetText.textContent = state.target
    ? `To ${state.target} only (direct)`
    : state.current === "*"
    ? "To everyone"
    : `To ${label}`;
}

function setTarget(name) {
  state.target = name;
  updateTargetText();
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
  const room = currentRoom();
  const line = state.target ? `CHAT ${state.target} ${text}` : `CHAT ${room.name} ${text}`;
  if (encoder.encode(line).length > MAX_LINE_BYTES) {
    notice(describeError("LINE_TOO_LONG", ""), "error");
    return;
  }
  send(line);
  if (state.target) message("mine-direct", "you", text, { to: state.target });
  else message("mine", state.name, text);
  ui.text.value = "";
});

ui.text.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && state.target) setTarget("");
});

ui.roomForm.addEventListener("submit", (event) => {
  event.preventDefault();
  let name = ui.roomName.value.trim();
  if (name === "" || name === "#") return showRoomError("Type a room name, such as #tea.");
  if (!name.startsWith("#")) name = `#${name}`;
  // Cleared now when shown at once; else when the server's answer shows it (`entered`). The
  // server checks the name and explains a bad one (ERR BAD_ROOM), shown below the input.
  if (state.rooms.has(roomKey(name))) ui.roomName.value = "";
  enterRoom(name);
});

ui.browse.addEventListener("toggle", refreshAllRooms);
ui.allRoomsRefresh.addEventListener("click", refreshAllRooms);

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

renderRooms();
connect();
