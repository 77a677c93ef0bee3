/// <reference lib="dom" />
/**
 * The browser for page tests: Debian's Chromium driven by puppeteer-core, which downloads
 * nothing (`executablePath` points at the system browser). Tests that need it call
 * {@linkcode browserTest}, which reports them ignored, with the reason, when Chromium is
 * missing. The chat page's set-up and what several page tests read from it are here too.
 *
 * @module
 */
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { waitUntil } from "./test_util.ts";

/** Where Debian's chromium package puts the browser; `CHATD_CHROMIUM` overrides it. */
export const CHROMIUM = Deno.env.get("CHATD_CHROMIUM") ?? "/usr/bin/chromium";

/** Why browser tests cannot run here, or undefined when they can. */
export function browserMissing(): string | undefined {
  try {
    const info = Deno.statSync(CHROMIUM);
    if (!info.isFile) return `${CHROMIUM} is not a file`;
  } catch {
    return `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHATD_CHROMIUM)`;
  }
  return undefined;
}

/** A launched browser that `await using` closes. */
export interface TestBrowser extends AsyncDisposable {
  browser: Browser;
  /**
   * Opens `url` in a new page at a desktop window size, 1100 × 700, and waits for it to load.
   * What goes wrong in the page from then on is pushed to `errors`: uncaught exceptions, and
   * console errors but those `options.ignoreConsole` matches.
   */
  openPage(url: string, errors: string[], options?: OpenPageOptions): Promise<Page>;
}

/** Options of {@linkcode TestBrowser.openPage}. */
export interface OpenPageOptions {
  /** Console errors that are not errors of the page. */
  ignoreConsole?: RegExp;
  /** Runs on the new page before it loads `url` (to watch its traffic, say). */
  beforeLoad?: (page: Page) => Promise<void>;
}

/**
 * Starts headless Chromium; `--no-sandbox` when running as root, where its sandbox refuses.
 *
 * @param extraArgs more Chromium flags.
 */
export async function launchBrowser(extraArgs: string[] = []): Promise<TestBrowser> {
  const args = ["--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", ...extraArgs];
  if (Deno.uid() === 0) args.push("--no-sandbox");
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args,
    timeout: 30_000,
    // One CDP call that hangs fails the test in 30 s, not puppeteer's default 3 minutes.
    protocolTimeout: 30_000,
  });
  return {
    browser,
    async openPage(url, errors, options = {}) {
      const page = await browser.newPage();
      page.on("pageerror", (error) => errors.push(String(error)));
      page.on("console", (message) => {
        if (message.type() !== "error") return;
        const text = message.text();
        if (options.ignoreConsole?.test(text)) return;
        errors.push(text);
      });
      await options.beforeLoad?.(page);
      await page.setViewport({ width: 1100, height: 700 });
      await page.goto(url, { waitUntil: "load" });
      return page;
    },
    async [Symbol.asyncDispose]() {
      const process = browser.process();
      try {
        await browser.close();
      } catch {
        process?.kill("SIGKILL");
      }
    },
  };
}

/**
 * Registers a test that needs Chromium: ignored, with the reason in its name, when the
 * browser is missing.
 */
export function browserTest(name: string, fn: (t: Deno.TestContext) => Promise<void>): void {
  const missing = browserMissing();
  Deno.test({
    name: missing ? `${name} (skipped: ${missing})` : name,
    ignore: missing !== undefined,
    // puppeteer's pipes and timers outlive a test's sanitizers by design; the browser is closed.
    sanitizeOps: false,
    sanitizeResources: false,
    fn,
  });
}

/** How long a page test waits for what a page shows. */
export const WAIT_MS = 15_000;

/** The message list's entries, as `kind|body`. */
export function entries(page: Page): Promise<string[]> {
  return page.$$eval(
    "#messages li",
    (items) =>
      items.map((item) =>
        `${(item as HTMLElement).dataset.kind}|${item.querySelector(".body")?.textContent}`
      ),
  );
}

/** The user list as shown. */
export function users(page: Page): Promise<string[]> {
  return page.$$eval(
    "#users button",
    (buttons) => buttons.map((button) => (button as HTMLElement).dataset.name ?? ""),
  );
}

/**
 * Waits until the user list shows `expected`, in order.
 *
 * @throws Error when it does not within {@linkcode WAIT_MS}.
 */
export async function waitForUsers(page: Page, expected: string[]): Promise<void> {
  await waitUntil(
    async () => JSON.stringify(await users(page)) === JSON.stringify(expected),
    WAIT_MS,
    `user list ${expected.join(",")}`,
  );
}
