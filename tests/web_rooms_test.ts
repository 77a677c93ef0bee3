/// <reference lib="dom" />
/**
 * The chat page's named rooms and history in a real browser, against a real multi-process
 * chatd with history on: two pages and an `nc` client.
 */
import assert from "node:assert/strict";
import type { Page } from "puppeteer-core";
import { browserTest, entries, launchBrowser, WAIT_MS, waitForUsers } from "./_browser.ts";
import { join, readUntil, TestServer, waitUntil } from "./test_util.ts";

/** Waits until the message list holds the entry `kind|body`. */
async function waitForEntry(page: Page, entry: string): Promise<void> {
  try {
    await waitUntil(async () => (await entries(page)).includes(entry), WAIT_MS, entry);
  } catch (error: unknown) {
    throw new Error(
      `no entry ${JSON.stringify(entry)}; the list has ${JSON.stringify(await entries(page))}`,
      { cause: error },
    );
  }
}

/** The room list as `key|label text|aria-current`, the label with its unread count. */
function rooms(page: Page): Promise<string[]> {
  return page.$$eval(
    "#rooms .room",
    (buttons) =>
      buttons.map((button) =>
        `${(button as HTMLElement).dataset.room}|${button.textContent}|${
          button.getAttribute("aria-current")
        }`
      ),
  );
}

async function waitForRooms(page: Page, expected: string[]): Promise<void> {
  try {
    await waitUntil(
      async () => JSON.stringify(await rooms(page)) === JSON.stringify(expected),
      WAIT_MS,
      `rooms ${expected.join(",")}`,
    );
  } catch (error: unknown) {
    throw new Error(`rooms are ${JSON.stringify(await rooms(page))}`, { cause: error });
  }
}

/** The "All rooms" list as `key|text`, the text with its count. */
function allRooms(page: Page): Promise<string[]> {
  return page.$$eval(
    "#all-rooms button",
    (buttons) => buttons.map((b) => `${(b as HTMLElement).dataset.room}|${b.textContent}`),
  );
}

async function waitForAllRooms(page: Page, expected: string[]): Promise<void> {
  try {
    await waitUntil(
      async () => JSON.stringify(await allRooms(page)) === JSON.stringify(expected),
      WAIT_MS,
      `all rooms ${expected.join(",")}`,
    );
  } catch (error: unknown) {
    throw new Error(`all rooms are ${JSON.stringify(await allRooms(page))}`, { cause: error });
  }
}

async function joinAs(page: Page, name: string): Promise<void> {
  await page.waitForSelector("#name-form:not([hidden])", { timeout: WAIT_MS });
  await page.type("#name", name);
  await page.keyboard.press("Enter");
  await waitForEntry(page, `self|You joined as ${name}.`);
}

async function typeInto(page: Page, selector: string, text: string): Promise<void> {
  await page.$eval(selector, (input) => (input as HTMLInputElement).value = "");
  await page.focus(selector);
  await page.keyboard.type(text);
  await page.keyboard.press("Enter");
}

/**
 * Presses a button with the keyboard (focus, Enter): the room list must work without a mouse,
 * and a mouse click waits for a frame that a background tab never draws.
 */
async function pressButton(page: Page, selector: string): Promise<void> {
  await page.focus(selector);
  await page.keyboard.press("Enter");
}

browserTest(
  "the page joins a named room, shows history, counts unread lines and leaves",
  async (t) => {
    await using server = await TestServer.start([
      "--processes",
      "2",
      "--threads",
      "2",
      "--history",
      "20",
    ]);
    const url = `http://127.0.0.1:${server.webPort}/`;
    await using browser = await launchBrowser();
    await using nc = await server.connect();
    await nc.hello();
    await join(nc, "carol");
    await readUntil(nc, "HISTORY * END");
    await nc.send("CHAT * said <b>before</b>");
    await nc.send("JOIN #tea");
    assert.equal(await nc.readLine(), "OK JOIN #tea");
    await readUntil(nc, "HISTORY #tea END");
    await nc.send("CHAT #tea brewed earlier");
    // A round trip: both lines above are stored before a page joins.
    await nc.send("WHO #tea");
    assert.equal(await nc.readLine(), "USERS #tea 1 carol");

    const pageErrors: string[] = [];
    const alice = await browser.openPage(url, pageErrors);
    const bob = await browser.openPage(url, pageErrors);

    await t.step("the lobby's history is shown dimmed, with the time it was said", async () => {
      await joinAs(alice, "alice");
      await waitForEntry(alice, "history|carol: said <b>before</b>");
      const [time, opacity] = await alice.$eval(
        "#messages li.msg-history",
        (item) =>
          [item.querySelector("time")?.dateTime ?? "", getComputedStyle(item).opacity] as const,
      );
      assert.match(time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.ok(Math.abs(Date.parse(time) - Date.now()) < 60_000, time);
      assert.ok(Number(opacity) < 1, `opacity ${opacity}`);
      assert.equal(await alice.$("#messages b"), null); // text, not HTML
      await waitForRooms(alice, ["*|Lobby|true"]);
      await joinAs(bob, "bob");
    });

    await t.step("a bad room name is explained below the join-room input", async () => {
      await typeInto(alice, "#room-name", "#no/slash");
      await alice.waitForFunction(
        () => document.getElementById("room-error")?.textContent !== "",
        { timeout: WAIT_MS, polling: "mutation" },
      );
      assert.equal(
        await alice.$eval("#room-error", (p) => p.textContent),
        "That room name cannot be used: it may contain only A-Z a-z 0-9 _ - after #. " +
          "Use # and 1 to 32 letters, digits, _ or -.",
      );
      assert.equal(await alice.$eval("#room-name", (i) => i.getAttribute("aria-invalid")), "true");
      await waitForRooms(alice, ["*|Lobby|true"]);
    });

    await t.step("joining #tea shows it, with its history and its users", async () => {
      await typeInto(alice, "#room-name", "tea");
      await readUntil(nc, "JOINED #tea alice");
      await waitForRooms(alice, ["*|Lobby|false", "#tea|#tea|true"]);
      await waitForEntry(alice, "history|carol: brewed earlier");
      assert.ok(!(await entries(alice)).includes("history|carol: said <b>before</b>"));
      await waitForUsers(alice, ["alice", "carol"]);
      assert.equal(await alice.$eval("#room-error", (p) => p.textContent), "");
      await typeInto(alice, "#text", "hi tea");
      assert.equal(await nc.readLine(), "ROOM #tea alice hi tea");
      await waitForEntry(alice, "mine|alice: hi tea");
    });

    await t.step("a line in #tea counts as unread while the lobby is shown", async () => {
      await pressButton(alice, '#rooms .room[data-room="*"]');
      await waitForRooms(alice, ["*|Lobby|true", "#tea|#tea|false"]);
      await waitForUsers(alice, ["alice", "bob", "carol"]);
      await nc.send("CHAT #tea in the pot");
      await waitForRooms(alice, ["*|Lobby|true", "#tea|#tea1|false"]);
      assert.equal(
        await alice.$eval('#rooms .room[data-room="#tea"]', (b) => b.getAttribute("aria-label")),
        "#tea, 1 unread",
      );
      // A lobby line after it: once bob has it, the #tea line has had its chance to go astray.
      await nc.send("CHAT * lobby line");
      await waitForEntry(alice, "room|carol: lobby line");
      await waitForEntry(bob, "room|carol: lobby line");
      for (const page of [alice, bob]) {
        assert.ok(!(await entries(page)).some((entry) => entry.includes("in the pot")));
      }
    });

    await t.step("switching to #tea clears its count and shows the line", async () => {
      await pressButton(alice, '#rooms .room[data-room="#tea"]');
      await waitForRooms(alice, ["*|Lobby|false", "#tea|#tea|true"]);
      await waitForEntry(alice, "room|carol: in the pot");
      assert.ok(!(await entries(alice)).includes("room|carol: lobby line"));
      await waitForUsers(alice, ["alice", "carol"]);
    });

    await t.step("leave (PART) removes #tea from the list and shows the lobby", async () => {
      await pressButton(alice, '#rooms .part[data-room="#tea"]');
      await readUntil(nc, "LEFT #tea alice");
      await waitForRooms(alice, ["*|Lobby|true"]);
      await waitForEntry(alice, "room|carol: lobby line");
      await typeInto(alice, "#text", "back in the lobby");
      await readUntil(nc, "ALL alice back in the lobby");
    });

    await t.step("All rooms lists every room with its count; choosing one joins it", async () => {
      await nc.send("JOIN #cake");
      assert.equal(await nc.readLine(), "OK JOIN #cake");
      await readUntil(nc, "HISTORY #cake END");
      await pressButton(alice, "#browse summary");
      await waitForAllRooms(alice, ["#cake|#cake1 user", "#tea|#tea1 user"]);
      await pressButton(alice, '#all-rooms button[data-room="#cake"]');
      await readUntil(nc, "JOINED #cake alice");
      await waitForRooms(alice, ["*|Lobby|false", "#cake|#cake|true"]);
      // Entering a room asks again while the list is open.
      await waitForAllRooms(alice, ["#cake|#cake2 users, you are in it", "#tea|#tea1 user"]);
      assert.equal(
        await alice.$eval(
          '#all-rooms button[data-room="#tea"]',
          (b) => b.getAttribute("aria-label"),
        ),
        "Join #tea, 1 user",
      );
      await pressButton(alice, '#rooms .room[data-room="*"]');
      await waitForRooms(alice, ["*|Lobby|true", "#cake|#cake|false"]);
    });

    await t.step("at phone width the rooms fit without sideways scrolling", async () => {
      await alice.setViewport({ width: 360, height: 640 });
      const [scroll, client] = await alice.evaluate(
        () => [document.documentElement.scrollWidth, document.documentElement.clientWidth] as const,
      );
      assert.ok(scroll <= client, `${scroll} > ${client}`);
      assert.ok(await alice.$eval("#room-name", (i) => (i as HTMLElement).offsetWidth > 0));
    });

    assert.deepEqual(pageErrors, []);
  },
);
