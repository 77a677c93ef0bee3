/** Types of src/web/lines.js, the page's protocol module (plain JavaScript for the browser). */
export type PageEvent =
  | { kind: "hello"; line: string }
  | { kind: "joined-as"; name: string }
  | { kind: "entered"; room: string }
  | { kind: "parted"; room: string }
  | { kind: "users"; room: string; names: string[] }
  | { kind: "joined"; room: string; name: string }
  | { kind: "left"; room: string; name: string }
  | { kind: "direct"; sender: string; text: string }
  | { kind: "message"; room: string; sender: string; text: string }
  | { kind: "history"; room: string; time: string; sender: string; text: string }
  | { kind: "history-end"; room: string }
  | { kind: "rooms"; rooms: { room: string; count: number }[] }
  | { kind: "bye"; reason: string }
  | { kind: "error"; code: string; detail: string }
  | { kind: "pong" }
  | { kind: "other"; line: string };
export function parseLine(line: string): PageEvent;
export function isRoom(text: string): boolean;
export function describeError(code: string, detail: string): string;
export function reconnectDelay(attempt: number, random: number): number;
export const MAX_LINE_BYTES: number;
