/**
 * The runtime directory: where the threads' Unix datagram sockets live.
 *
 * chatd only ever removes what it created. Each run makes a fresh private directory
 * (`chatd-XXXXXX`, mode 0700) — under the system temp dir, or inside the directory given with
 * `--runtime-dir` — and at exit removes from it only the socket files it can see are sockets,
 * then the directory itself if that left it empty. A given `--runtime-dir` is never removed
 * nor emptied: it must belong to the effective user and allow no group or other access, else
 * another local user could swap the private directory or its sockets for their own.
 *
 * @module
 */
/** A runtime directory chatd refuses; the message is for the user (exit code 2). */
export class RuntimeDirError extends Error {
  override name = "RuntimeDirError";
}

/** What {@linkcode makeRuntimeDir} checks a directory against; injectable for tests. */
export interface RuntimeDirOptions {
  /** The effective uid the directory must belong to (default: this process's). */
  euid?: number;
}

/**
 * This process's effective uid: the owner of a directory it has just made in the temp dir.
 * `process.geteuid()` would need `--allow-sys`, and `/proc/self/status` `--allow-all`, which
 * chatd does not otherwise ask for.
 */
export function effectiveUid(): number {
  const probe = Deno.makeTempDirSync({ prefix: "chatd-uid-" });
  try {
    return Deno.lstatSync(probe).uid ?? -1;
  } finally {
    Deno.removeSync(probe);
  }
}

/**
 * Why `info` (from `lstat`) is not a safe place for chatd's sockets, or undefined when it is.
 *
 * @example
 * ```ts
 * unsafeDirReason(Deno.lstatSync("/tmp"), 1000); // "is writable by others (mode 1777)"
 * ```
 */
export function unsafeDirReason(info: Deno.FileInfo, euid: number): string | undefined {
  if (info.isSymlink) return "is a symbolic link";
  if (!info.isDirectory) return "is not a directory";
  if (info.uid !== euid) return `belongs to uid ${info.uid}, not to chatd's uid ${euid}`;
  const mode = (info.mode ?? 0) & 0o7777;
  if ((mode & 0o077) !== 0) {
    return `allows group or other access (mode ${mode.toString(8).padStart(4, "0")}; ` +
      `chmod go= it)`;
  }
  return undefined;
}

/**
 * Makes this run's private runtime directory and returns its path: a new `chatd-XXXXXX` under
 * the temp dir when `parent` is empty, else inside `parent`, which is made (mode 0700) when
 * missing and otherwise must be a directory of the effective user with no group/other access.
 *
 * @throws {RuntimeDirError} when `parent` is unsafe or the directory cannot be made.
 */
export function makeRuntimeDir(parent: string, options: RuntimeDirOptions = {}): string {
  try {
    const euid = options.euid ?? effectiveUid();
    if (parent !== "") {
      let info: Deno.FileInfo;
      try {
        info = Deno.lstatSync(parent);
      } catch (error: unknown) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        Deno.mkdirSync(parent, { recursive: true, mode: 0o700 });
        info = Deno.lstatSync(parent);
      }
      const reason = unsafeDirReason(info, euid);
      if (reason !== undefined) {
        throw new RuntimeDirError(`Refusing --runtime-dir ${parent}: ${reason}`);
      }
    }
    const dir = parent === ""
      ? Deno.makeTempDirSync({ prefix: "chatd-" })
      : Deno.makeTempDirSync({ dir: parent, prefix: "chatd-" });
    // mkdtemp makes it 0700 and ours; check rather than trust (a umask or an odd filesystem).
    const reason = unsafeDirReason(Deno.lstatSync(dir), euid);
    if (reason !== undefined) {
      Deno.removeSync(dir);
      throw new RuntimeDirError(`Refusing runtime directory ${dir}: ${reason}`);
    }
    return dir;
  } catch (error: unknown) {
    if (error instanceof RuntimeDirError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new RuntimeDirError(
      `Cannot make a runtime directory in ${parent || "the temp dir"}: ${reason}`,
      {
        cause: error,
      },
    );
  }
}

/** What {@linkcode removeRuntimeDir} did. */
export interface Removal {
  /** Socket files removed. */
  removed: number;
  /** Entries left alone: not `*.sock`, or not a socket (a symlink, a file, a directory). */
  kept: string[];
  /** True when the directory itself was removed (it was empty then). */
  dirRemoved: boolean;
}

/**
 * Removes chatd's socket files from `dir` (entries named `*.sock` that `lstat` shows are
 * sockets; symlinks are never followed) and then `dir` itself if that left it empty. Anything
 * else is kept, and so is `dir`. Never throws: a directory already gone counts as removed.
 */
export function removeRuntimeDir(dir: string): Removal {
  const result: Removal = { removed: 0, kept: [], dirRemoved: false };
  try {
    for (const entry of Deno.readDirSync(dir)) {
      const path = `${dir}/${entry.name}`;
      let info: Deno.FileInfo;
      try {
        info = Deno.lstatSync(path);
      } catch {
        continue; // Removed meanwhile (a thread closing, another orphan).
      }
      if (!entry.name.endsWith(".sock") || info.isSocket !== true) {
        result.kept.push(entry.name);
        continue;
      }
      try {
        Deno.removeSync(path);
        result.removed++;
      } catch {
        // Removed meanwhile.
      }
    }
    if (result.kept.length === 0) Deno.removeSync(dir); // not recursive: fails if not empty
    result.dirRemoved = result.kept.length === 0;
  } catch (error: unknown) {
    if (error instanceof Deno.errors.NotFound) result.dirRemoved = true;
  }
  return result;
}
