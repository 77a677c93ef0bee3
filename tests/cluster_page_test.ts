/// <reference lib="dom" />
/**
 * The web page on a cluster node cut off from NATS: the refusal of a name is explained.
 */
import { browserTest, launchBrowser } from "./_browser.ts";
import { natsMissing, NatsServer } from "./_nats.ts";
import { TestServer } from "./test_util.ts";

const WAIT_MS = 15_000;

browserTest(
  `a page joining on a cluster node cut off from NATS is told so and asked again${
    natsMissing() ? ` (skipped: ${natsMissing()})` : ""
  }`,
  async () => {
    if (natsMissing()) return;
    await using nats = await NatsServer.start();
    await using server = await TestServer.start([
      "--processes",
      "1",
      "--threads",
      "1",
      "--cluster",
      nats.url,
      "--node-name",
      "na",
    ]);
    await using browser = await launchBrowser();
    const page = await browser.browser.newPage();
    await page.goto(`http://127.0.0.1:${server.webPort}/`, { waitUntil: "load" });
    const from = server.logs.length;
    await nats.stop();
    await server.waitForLog({ msg: "cluster disconnected" }, { from, timeoutMs: WAIT_MS });
    await page.waitForSelector("#name-form:not([hidden])", { timeout: WAIT_MS });
    await page.type("#name", "alice");
    await page.keyboard.press("Enter");
    const expected = "The other servers cannot be reached right now (alice): " +
      "that was not sent or done. Try again shortly.";
    await page.waitForFunction(
      (text: string) => document.getElementById("name-error")?.textContent === text,
      { timeout: WAIT_MS, polling: "mutation" },
      expected,
    );
    // Back: the same name is taken through the same form.
    const back = server.logs.length;
    await nats.restart();
    await server.waitForLog({ msg: "cluster reconnected" }, { from: back, timeoutMs: WAIT_MS });
    await page.keyboard.press("Enter");
    await page.waitForFunction(
      () => document.getElementById("name-form")?.hidden === true,
      { timeout: WAIT_MS, polling: "mutation" },
    );
  },
);
