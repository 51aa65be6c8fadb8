/**
 * Two people in two browsers on one embedded node, everything through the UI: sign-up, a private
 * room with an invitation, live messages both ways, typing, reply, edit, delete, reactions, a
 * mention that notifies, and presence in `Members`.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  browserTest,
  composerValue,
  createRoomUi,
  expectCount,
  gone,
  messageAction,
  openRoom,
  sendMessage,
  signUp,
  ui,
  visible,
} from "../support/browser.js";
import { eventually } from "../support/wait.js";

const ROOM = "Project X";

test(
  "two users: private room, invite, live messages, typing, reply, edit, delete, react, mention, presence",
  { timeout: 170_000 },
  async (t) => {
    const env = await browserTest(t);
    if (!env) return;

    const alice = await env.newPage("alice");
    const bob = await env.newPage("bob");
    const A = alice.page;
    const B = bob.page;
    // A confirmation before deleting, if the UI asks with window.confirm, is accepted.
    A.on("dialog", (d) => void (d.type() === "confirm" ? d.accept() : d.dismiss()));

    // ---- sign up, both -------------------------------------------------------------------------------
    await signUp(A, { username: "alice", displayName: "Alice" });
    await signUp(B, { username: "bob", displayName: "Bob" });

    // ---- alice: a private room, bob invited ---------------------------------------------------------
    await createRoomUi(A, { name: ROOM, topic: "Launch planning", private: true });
    await visible(ui.roomLink(A, ROOM));

    await A.getByRole("button", { name: "Invite", exact: true }).click();
    const inviteDialog = ui.dialog(A);
    await inviteDialog.waitFor();
    await inviteDialog.getByRole("textbox", { name: "Username", exact: true }).fill("bob");
    await inviteDialog.getByRole("button", { name: "Invite", exact: true }).click();
    // The dialog may close by itself or stay to invite more: either way, it goes with Escape.
    await gone(inviteDialog, 3_000).catch(async () => {
      await A.keyboard.press("Escape");
      await gone(inviteDialog);
    });

    // Bob's room list gets the room live, without a reload.
    await visible(ui.roomLink(B, ROOM));
    await openRoom(B, ROOM);

    // ---- messages, live both ways --------------------------------------------------------------------
    await sendMessage(A, "Hello Bob");
    const helloOnB = ui.article(B, "Hello Bob");
    await visible(helloOnB);
    assert.match((await helloOnB.first().textContent()) ?? "", /Alice/, "the article names its author");

    await sendMessage(B, "Hi Alice");
    await visible(ui.article(A, "Hi Alice"));
    assert.match((await ui.article(A, "Hi Alice").first().textContent()) ?? "", /Bob/);
    await expectCount(ui.article(A, "Hello Bob"), 1, "alice's own message once", 500);
    await expectCount(ui.article(B, "Hello Bob"), 1, "alice's message once on bob's side");

    // ---- typing --------------------------------------------------------------------------------------
    await ui.composer(A).click();
    await ui.composer(A).pressSequentially("I am typ", { delay: 60 });
    await visible(ui.typing(B, "Alice"));
    assert.equal(await ui.typing(A, "Alice").count(), 0, "alice does not see herself typing");
    await ui.composer(A).fill("");
    // Cleared (or expired after 6 s): the indicator goes.
    await gone(ui.typing(B, "Alice"), 12_000);

    // ---- reply (bob to alice) ------------------------------------------------------------------------
    await messageAction(ui.article(B, "Hello Bob"), "Reply");
    await visible(B.getByRole("button", { name: "Cancel reply", exact: true }));
    await ui.composer(B).fill("Replying to you");
    await ui.composer(B).press("Enter");
    for (const page of [B, A]) {
      const reply = ui.article(page, "Replying to you");
      await visible(reply);
      await eventually("the reply quotes the original", async () => {
        assert.match((await reply.first().textContent()) ?? "", /Hello Bob/);
        return true;
      });
    }
    await gone(B.getByRole("button", { name: "Cancel reply", exact: true }));

    // ---- edit (alice's own message) ------------------------------------------------------------------
    await messageAction(ui.article(A, "Hello Bob").filter({ hasNotText: "Replying to you" }), "Edit");
    await eventually("the composer holds the body to edit", async () => {
      assert.equal(await composerValue(A), "Hello Bob");
      return true;
    });
    await visible(A.getByRole("button", { name: "Cancel edit", exact: true }));
    await ui.composer(A).fill("Hello Bob, edited");
    await ui.composer(A).press("Enter");
    const editedOnB = ui.article(B, "Hello Bob, edited").filter({ hasNotText: "Replying to you" });
    await visible(editedOnB);
    await eventually("bob sees (edited)", async () => {
      assert.match((await editedOnB.first().textContent()) ?? "", /\(edited\)/);
      return true;
    });
    await visible(ui.article(A, "Hello Bob, edited").filter({ hasText: "(edited)" }));
    assert.equal(await composerValue(A), "", "the composer is empty after saving the edit");

    // ---- delete ----------------------------------------------------------------------------------------
    await sendMessage(A, "This will vanish");
    await visible(ui.article(B, "This will vanish"));
    await messageAction(ui.article(A, "This will vanish"), "Delete");
    // An in-page confirmation, if any, is confirmed with its `Delete` button.
    const confirm = A.getByRole("alertdialog").or(A.getByRole("dialog"));
    const asked = await confirm
      .first()
      .waitFor({ state: "visible", timeout: 1_500 })
      .then(
        () => true,
        () => false,
      );
    if (asked) {
      await confirm
        .first()
        .getByRole("button", { name: /^Delete/ })
        .click();
    }
    await gone(ui.article(B, "This will vanish"));
    await visible(ui.article(B, "Message deleted"));
    await gone(ui.article(A, "This will vanish"));

    // ---- reaction (bob on alice's message) ----------------------------------------------------------
    await messageAction(editedOnB, "React");
    await B.getByRole("button", { name: "👍", exact: true }).click();
    const chipOnA = ui
      .article(A, "Hello Bob, edited")
      .filter({ hasNotText: "Replying to you" })
      .getByRole("button", {
        name: /^👍.*\b1\b/,
      });
    await visible(chipOnA);
    const chipOnB = editedOnB.getByRole("button", { name: /^👍.*\b1\b/ });
    await visible(chipOnB);
    assert.equal(await chipOnB.first().getAttribute("aria-pressed"), "true", "bob's own reaction is pressed");
    assert.notEqual(await chipOnA.first().getAttribute("aria-pressed"), "true", "not alice's reaction");

    // ---- a mention: bob's notification count and an unread badge ------------------------------------
    // Start from nothing unseen (the invitation may have notified bob already).
    if (!(await B.getByRole("button", { name: /^Notifications$/ }).isVisible())) {
      await ui.notifications(B).click();
      const notes = ui.dialog(B, "Notifications");
      await notes.waitFor();
      await notes.getByRole("button", { name: "Mark all seen", exact: true }).click();
      await B.keyboard.press("Escape");
      await gone(notes);
    }
    await visible(B.getByRole("button", { name: /^Notifications(, 0 unseen)?$/ }));
    // Bob looks at another room, so Project X's new message is unread for him.
    await createRoomUi(B, { name: "Bob's corner" });
    await sendMessage(A, "@bob can you check the launch list?");
    await visible(B.getByRole("button", { name: /^Notifications, 1 unseen$/ }), 15_000);
    await visible(ui.rooms(B).getByRole("link", { name: /^Project X\b.*unread/ }));

    // Back in the room the message is there and the badge goes.
    await openRoom(B, ROOM);
    await visible(ui.article(B, "can you check the launch list?"));
    await gone(ui.rooms(B).getByRole("link", { name: /^Project X\b.*unread/ }));

    // ---- presence ---------------------------------------------------------------------------------------
    await visible(ui.members(A));
    await visible(ui.member(A, "Bob", "online"), 15_000);
    await bob.page.close();
    await visible(ui.member(A, "Bob", "offline"), 20_000);
    await gone(ui.member(A, "Bob", "online"));

    alice.problems.assertClean();
    bob.problems.assertClean();
  },
);
