/**
 * Keyboard only (Tab, Shift+Tab, Enter, Escape, arrows; no mouse): sign in, open a room, send with
 * Enter, Shift+Enter for a new line, ArrowUp on the empty composer edits the last own message,
 * Enter saves it, a dialog opens and closes with Escape and focus goes back to what opened it.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Locator, Page } from "playwright-core";
import { register } from "../support/accounts-helpers.js";
import { browserTest, composerValue, gone, joinRest, ui, visible, waitSignedIn } from "../support/browser.js";
import { createRoom, fullHistory, sendRest } from "../support/chat-helpers.js";
import { eventually } from "../support/wait.js";

async function isFocused(locator: Locator): Promise<boolean> {
  if ((await locator.count()) !== 1) return false;
  return locator.evaluate(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a DOM element (no DOM lib here)
    (el: any) => el === el.ownerDocument.activeElement || el.contains(el.ownerDocument.activeElement),
  );
}

/** What has the focus, for failure messages. */
async function focusedDescription(page: Page): Promise<string> {
  return page.evaluate(() => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the DOM (no DOM lib here)
    const el: any = (globalThis as any).document.activeElement;
    if (!el) return "nothing";
    const label = el.getAttribute("aria-label") ?? el.labels?.[0]?.textContent ?? el.textContent ?? "";
    return `<${el.tagName.toLowerCase()} role=${el.getAttribute("role") ?? ""}> "${String(label).trim().slice(0, 60)}"`;
  });
}

/** Presses Tab (or Shift+Tab) until `target` has the focus; fails after `max` presses. */
async function tabTo(page: Page, target: Locator, what: string, { max = 60, back = false } = {}): Promise<void> {
  await target.first().waitFor();
  const path: string[] = [];
  for (let i = 0; i <= max; i++) {
    if (await isFocused(target)) return;
    await page.keyboard.press(back ? "Shift+Tab" : "Tab");
    path.push(await focusedDescription(page));
  }
  assert.fail(`${what} never got the focus with ${back ? "Shift+Tab" : "Tab"}; focus went: ${path.join(" → ")}`);
}

test(
  "keyboard only: sign in, open a room, send, new line, edit the last message, dialog and Escape",
  { timeout: 170_000 },
  async (t) => {
    const env = await browserTest(t);
    if (!env) return;
    const { base } = env;
    const aliceAcc = await register(base, "alice", { displayName: "Alice" });
    const bobAcc = await register(base, "bob", { displayName: "Bob" });
    const room = await createRoom(base, aliceAcc, { name: "general", kind: "public", topic: "everything" });
    await createRoom(base, aliceAcc, { name: "random", kind: "public" });
    await joinRest(base, bobAcc, room.id);

    const alice = await env.newPage("alice");
    const A = alice.page;
    await A.goto("/");

    // ---- sign in ----------------------------------------------------------------------------------------
    await tabTo(A, ui.username(A), "Username");
    await A.keyboard.type("alice");
    await tabTo(A, ui.password(A), "Password");
    await A.keyboard.type("correct horse battery staple");
    await A.keyboard.press("Enter");
    await waitSignedIn(A);

    // ---- open a room from the list ------------------------------------------------------------------------
    await tabTo(A, ui.roomLink(A, "general"), "the general room's link");
    await A.keyboard.press("Enter");
    await ui.title(A, "general").waitFor();

    // ---- send with Enter; Shift+Enter is a new line ---------------------------------------------------
    await tabTo(A, ui.composer(A), "the composer");
    await A.keyboard.type("first line");
    await A.keyboard.press("Shift+Enter");
    await A.keyboard.type("second line");
    assert.equal(await composerValue(A), "first line\nsecond line", "Shift+Enter put a new line in the composer");
    await A.keyboard.press("Enter");
    await visible(ui.article(A, "second line"));
    assert.equal(await composerValue(A), "", "Enter sent and emptied the composer");
    const sent = (await fullHistory(base, aliceAcc, room.id)).at(-1);
    assert.equal(sent?.body, "first line\nsecond line", "the body kept its line break");
    assert.ok(await isFocused(ui.composer(A)), "the composer keeps the focus after sending");

    await A.keyboard.type("keyboard message");
    await A.keyboard.press("Enter");
    await visible(ui.article(A, "keyboard message"));

    // Someone else's newer message does not change what ArrowUp edits (the last *own* message).
    await sendRest(base, bobAcc, room.id, "bob was here");
    await visible(ui.article(A, "bob was here"));

    // ---- ArrowUp on the empty composer edits the last own message ---------------------------------------
    await A.keyboard.press("ArrowUp");
    await eventually("the composer holds the last own message", async () => {
      assert.equal(await composerValue(A), "keyboard message");
      return true;
    });
    await visible(A.getByRole("button", { name: "Cancel edit", exact: true }));
    await A.keyboard.press("ControlOrMeta+a");
    await A.keyboard.type("keyboard message, edited");
    await A.keyboard.press("Enter");
    await visible(ui.article(A, "keyboard message, edited").filter({ hasText: "(edited)" }));
    await gone(A.getByRole("button", { name: "Cancel edit", exact: true }));
    assert.equal(await composerValue(A), "");

    // Escape leaves edit mode without saving.
    await A.keyboard.press("ArrowUp");
    await eventually("edit mode again", async () => {
      assert.equal(await composerValue(A), "keyboard message, edited");
      return true;
    });
    await A.keyboard.press("Escape");
    await gone(A.getByRole("button", { name: "Cancel edit", exact: true }));
    assert.equal(await composerValue(A), "", "Escape leaves edit mode and clears the composer");

    // ---- a dialog: open with Enter, focus inside, close with Escape, focus back ----------------------
    const newRoom = A.getByRole("button", { name: "New room", exact: true });
    await tabTo(A, newRoom, "New room", { back: true });
    await A.keyboard.press("Enter");
    const dialog = ui.dialog(A, "New room");
    await dialog.waitFor();
    await eventually("the focus is inside the dialog", async () => {
      assert.ok(await isFocused(dialog), `focus is on ${await focusedDescription(A)}`);
      return true;
    });
    // Tab stays inside the dialog: past its last control the focus may go to the browser's own UI
    // (a native modal <dialog> allows that; the page then has no focused element) and comes back,
    // but never to the page behind the dialog.
    let inside = 0;
    for (let i = 0; i < 10; i++) {
      await A.keyboard.press("Tab");
      if (await isFocused(dialog)) inside++;
      else {
        const where = await focusedDescription(A);
        assert.match(where, /^(nothing|<body )/, `Tab ${i + 1} left the dialog for ${where}`);
      }
    }
    assert.ok(inside >= 8, `Tab kept the focus in the dialog (${inside} of 10)`);
    await tabTo(A, dialog.getByRole("textbox", { name: "Room name", exact: true }), "Room name, by Tab");
    await A.keyboard.press("Escape");
    await gone(dialog);
    await eventually("the focus is back on New room", async () => {
      assert.ok(await isFocused(newRoom), `focus is on ${await focusedDescription(A)}`);
      return true;
    });

    // And a room can still be created from the keyboard.
    await A.keyboard.press("Enter");
    await dialog.waitFor();
    await tabTo(A, dialog.getByRole("textbox", { name: "Room name", exact: true }), "Room name");
    await A.keyboard.type("made by keyboard");
    await A.keyboard.press("Enter");
    await gone(dialog);
    await ui.title(A, "made by keyboard").waitFor();

    alice.problems.assertClean();
  },
);
