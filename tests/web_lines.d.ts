/** Types of src/web/lines.js, the page's protocol module (plain JavaScript for the browser). */
export type PageEvent =
  | { kind: "hello"; line: string }
  | { kind: "joined-as"; name: string }
  | { kind: "users"; names: string[] }
  | { kind: "joined"; name: string }
  | { kind: "left"; name: string }
  | { kind: "direct"; sender: string; text: string }
  | { kind: "room"; sender: string; text: string }
  | { kind: "bye"; reason: string }
  | { kind: "error"; code: string; detail: string }
  | { kind: "pong" }
  | { kind: "other"; line: string };
export function parseLine(line: string): PageEvent;
export function describeError(code: string, detail: string): string;
export function reconnectDelay(attempt: number, random: number): number;
export const MAX_LINE_BYTES: number;
