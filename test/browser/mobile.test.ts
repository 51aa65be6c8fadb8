/**
 * A phone-sized viewport (360×740): the room list lives in a drawer behind `Menu`; opening a room
 * from it closes the drawer; a message sent there shows up. Nothing overflows sideways.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Locator } from "playwright-core";
import { register } from "../support/accounts-helpers.js";
import { browserTest, sendMessage, signIn, ui, visible } from "../support/browser.js";
import { createRoom } from "../support/chat-helpers.js";
import { eventually } from "../support/wait.js";

const VIEWPORT = { width: 360, height: 740 };

/** Whether any part of the element is on screen (visible and inside the viewport). */
async function onScreen(locator: Locator): Promise<boolean> {
  if ((await locator.count()) === 0 || !(await locator.first().isVisible())) return false;
  const box = await locator.first().boundingBox();
  if (!box) return false;
  return box.x < VIEWPORT.width && box.x + box.width > 0 && box.y < VIEWPORT.height && box.y + box.height > 0;
}

test(
  "mobile 360×740: the room list is a drawer behind Menu; pick a room, it closes, send a message",
  { timeout: 170_000 },
  async (t) => {
    const env = await browserTest(t);
    if (!env) return;
    const { base } = env;
    const aliceAcc = await register(base, "alice", { displayName: "Alice" });
    await createRoom(base, aliceAcc, { name: "general", kind: "public" });
    await createRoom(base, aliceAcc, { name: "random", kind: "public", topic: "anything goes" });

    const alice = await env.newPage("alice", {
      viewport: VIEWPORT,
      isMobile: true,
      hasTouch: true,
      deviceScaleFactor: 2,
    });
    const A = alice.page;
    // Hold the first room list back, so the drawer is opened before the latest room opens by itself.
    let releaseRooms!: () => void;
    const roomsHeld = new Promise<void>((resolve) => (releaseRooms = resolve));
    await A.route(
      (url) => url.pathname === "/api/rooms",
      async (route) => {
        await roomsHeld;
        await route.continue();
      },
    );
    await signIn(A, { username: "alice" });

    const menu = ui.menu(A);
    await visible(menu);
    const link = ui.roomLink(A, "random");

    // Open the drawer at once; the latest room opening meanwhile leaves it open.
    await menu.click();
    await eventually("Menu says the drawer is open", async () => {
      assert.equal(await menu.getAttribute("aria-expanded"), "true");
      return true;
    });
    releaseRooms();
    await ui.title(A, "random").waitFor();
    assert.equal(await menu.getAttribute("aria-expanded"), "true", "the drawer stays open");
    await eventually("the room list is on screen", () => onScreen(link));
    await ui.roomLink(A, "general").click();
    await ui.title(A, "general").waitFor();
    await eventually("Menu says the drawer is closed", async () => {
      assert.equal(await menu.getAttribute("aria-expanded"), "false");
      return true;
    });
    await menu.click();
    await eventually("the room list is on screen again", () => onScreen(link));

    // Pick a room: the drawer closes and the room is there.
    await link.click();
    await ui.title(A, "random").waitFor();
    await eventually("Menu says the drawer is closed", async () => {
      assert.equal(await menu.getAttribute("aria-expanded"), "false");
      return true;
    });
    await eventually("the room list is off screen", async () => !(await onScreen(link)));
    assert.ok(await onScreen(ui.composer(A)), "the composer is on screen");

    // Send a message.
    await sendMessage(A, "hello from a phone");
    assert.ok(await onScreen(ui.article(A, "hello from a phone")), "the new message is on screen");

    // Nothing wider than the screen.
    const width = await A.evaluate(
      () =>
        (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement
          .scrollWidth,
    );
    assert.ok(width <= VIEWPORT.width, `the page is ${width}px wide at a ${VIEWPORT.width}px viewport`);

    // The drawer opens again and another room can be picked.
    await menu.click();
    await eventually("the room list is back", () => onScreen(ui.roomLink(A, "general")));
    await ui.roomLink(A, "general").click();
    await ui.title(A, "general").waitFor();
    await eventually("closed again", async () => {
      assert.equal(await menu.getAttribute("aria-expanded"), "false");
      return true;
    });

    alice.problems.assertClean();
  },
);
