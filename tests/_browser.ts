/**
 * The browser for page tests: Debian's Chromium driven by puppeteer-core, which downloads
 * nothing (`executablePath` points at the system browser). Tests that need it call
 * {@linkcode browserTest}, which reports them ignored, with the reason, when Chromium is
 * missing.
 *
 * @module
 */
import puppeteer, { type Browser } from "puppeteer-core";

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
