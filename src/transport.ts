/**
 * The one interface a client connection is served through, whatever carries it: TCP today
 * (`tcp_transport.ts`), TLS and WebSocket next. Everything above it (the session, the
 * commands, the room) sees lines, never bytes or sockets.
 *
 * A transport is message-oriented, as Ergo's `IRCConn` is: it owns bytes → lines on input
 * (TCP: a line splitter; WebSocket: one text frame a line) and lines → bytes on output
 * (TCP: the bytes as they are; WebSocket: one text frame a line).
 *
 * Reading is pull-based: the transport reads only inside {@linkcode Transport.read}, which
 * the session calls when it is ready for more. Not calling it is how reading pauses (flood
 * control, a `JOIN` waiting for the directory): the kernel's receive buffer fills and TCP
 * pushes back on the sender. Calling it again resumes. Nothing is read ahead and dropped.
 *
 * The methods are shaped for the hot path: a read is the socket's own promise followed by a
 * synchronous {@linkcode Transport.lines}, and a write reports to a {@linkcode WriteDone}
 * the caller passes, so that the transport adds no promise or closure per message.
 *
 * @example A transport's life, as the session drives it
 * ```ts
 * const receiver: LineReceiver = { line: (text) => lines.push(text), invalid: () => {} };
 * for (;;) {
 *   const count = await transport.read();
 *   if (count === null || !transport.lines(count, receiver)) break;
 *   // handle the lines; replies go out through write()
 * }
 * transport.write([new TextEncoder().encode("BYE\n")], {
 *   written: () => transport.close(),
 *   failed: () => transport.close(),
 * });
 * ```
 *
 * @module
 */

/** Why an incoming line could not be read. Each is answered with `ERR <code>`. */
export type InvalidLine = "LINE_TOO_LONG" | "BAD_ENCODING";

/** Where {@linkcode Transport.lines} puts the lines of a read. */
export interface LineReceiver {
  /** One complete line, decoded, without its line ending (no LF, no CR before it). */
  line(text: string): void;
  /**
   * A line that was not valid: longer than the line limit (reported once, as soon as it
   * passes the limit; its remaining bytes are skipped), or not UTF-8. The stream goes on.
   */
  invalid(problem: InvalidLine): void;
}

/**
 * One client connection, as the chat core sees it.
 *
 * Rules every implementation keeps:
 * - At most one {@linkcode read} and at most one {@linkcode write} are under way at a time
 *   (the session and its output queue make sure of it); a read and a write may overlap.
 * - {@linkcode close} may be called at any time, more than once, also while a read or a
 *   write is under way: those then settle (a read with null or an error, a write as
 *   failed) and later calls do nothing. It never throws.
 * - A transport may send control traffic of its own (a WebSocket pong or close frame)
 *   between the caller's writes, never inside one; it counts such bytes nowhere.
 * - Methods do not log: the caller decides what is worth a log line.
 */
export interface Transport {
  /** The peer's address for logs, such as `127.0.0.1:51234`. */
  readonly peer: string;

  /**
   * Waits until bytes arrive and reads them into the transport's buffer.
   *
   * @returns how many bytes were read, to pass to {@linkcode lines} before the next read;
   *   null at the end of the stream (the peer closed, or the transport was closed).
   * @throws when the connection failed (reset by the peer). The session closes it.
   */
  read(): Promise<number | null>;

  /**
   * Hands every line completed by the `count` bytes of the last {@linkcode read} to
   * `receiver`, in order. A read may complete no line (half a line arrived) or many; a
   * transport keeps the unfinished rest for the next read.
   *
   * @returns false when the stream ended inside these bytes (a WebSocket close frame): the
   *   lines before the end were handed over, and no more reads follow.
   * @throws on a violation of the framing (a WebSocket frame that is not masked, a binary
   *   frame). The session closes the connection.
   */
  lines(count: number, receiver: LineReceiver): boolean;

  /**
   * Writes `chunks` in order. Each chunk holds one or more whole lines, each ending in LF,
   * exactly as the client should get them: a stream transport writes the bytes as they
   * are, a message transport sends one message a line (without the LF). The transport may
   * keep `chunks` and its views until the write settles, and must not change them.
   *
   * Until the write is reported done, its bytes count as queued for this client (the output
   * queue adds them to its total for the slow-consumer check), so report
   * {@linkcode WriteDone.written} only once the kernel has taken every byte, framing
   * included; {@linkcode WriteDone.failed} when the connection failed (nothing more can be
   * written then). Exactly one of the two is called, later, never during this call.
   */
  write(chunks: Uint8Array[], done: WriteDone): void;

  /**
   * Closes the connection now. What a transport can send on the way out without waiting
   * (a WebSocket close frame, a TLS close_notify) it may try; anything not yet written is
   * lost. To close after the last output, the caller waits for its write first (the
   * output queue's `end()` does).
   */
  close(): void;
}

/** Told how a {@linkcode Transport.write} ended; the output queue is one. */
export interface WriteDone {
  /** Every byte was taken by the kernel. */
  written(): void;
  /** The connection failed. */
  failed(error: unknown): void;
}

/** Accepts connections for a {@linkcode Listener} (see `listener.ts`). */
export interface Acceptor {
  /**
   * The next connection. At most one accept is under way at a time.
   *
   * @throws once the acceptor is closed.
   */
  accept(): Promise<Transport>;
  /** Stops accepting; a pending {@linkcode accept} then rejects. Never throws. */
  close(): void;
}
