/**
 * Rooms beyond the basics, through the UI only: browse and join a public room, a direct message by
 * searching users, a room with initial members, @-completion over the room's members, history
 * scrolled back page by page with the "New messages" divider at the read marker, room settings
 * (rename, topic, notification level), kick by the owner, leaving, and the notifications dialog.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { register } from "../support/accounts-helpers.js";
import { browserTest, composerValue, gone, openRoom, signIn, ui, visible } from "../support/browser.js";
import { createRoom, sendRest } from "../support/chat-helpers.js";
import { eventually } from "../support/wait.js";

test(
  "rooms: browse/join, direct message, initial members, mentions, history, settings, kick, leave",
  { timeout: 170_000 },
  async (t) => {
    const env = await browserTest(t);
    if (!env) return;
    const { base } = env;
    const aliceAcc = await register(base, "alice", { displayName: "Alice" });
    await register(base, "bob", { displayName: "Bob" });
    await register(base, "carol", { displayName: "Carol" });
    const lobby = await createRoom(base, aliceAcc, { name: "lobby", kind: "public", topic: "say hi" });
    // 130 messages: the history is loaded in pages of 50 as bob scrolls back.
    for (let i = 1; i <= 130; i++) await sendRest(base, aliceAcc, lobby.id, `history line ${i}`);

    const alice = await env.newPage("alice");
    const A = alice.page;
    const bob = await env.newPage("bob");
    const B = bob.page;
    await signIn(A, { username: "alice" });
    await signIn(B, { username: "bob" });

    // ---- browse and join; the whole history scrolls back; no divider for a room never read
    await B.getByRole("button", { name: "Browse rooms", exact: true }).click();
    const browse = ui.dialog(B, "Browse rooms");
    await browse.getByRole("textbox", { name: "Search rooms", exact: true }).fill("lob");
    const item = browse.getByRole("listitem").filter({ hasText: "lobby" });
    await visible(item);
    await item.getByRole("button", { name: "Join", exact: true }).click();
    await gone(browse);
    await ui.title(B, "lobby").waitFor();
    await visible(ui.article(B, "history line 130"));
    assert.ok((await ui.articles(B).count()) <= 60, "only the newest page is loaded at first");
    await eventually(
      "every message loaded by scrolling back",
      async () => {
        await ui.log(B).evaluate((el: { scrollTop: number }) => (el.scrollTop = 0));
        return (await ui.article(B, /^.*history line 1$/).count()) === 1 || (await ui.articles(B).count()) === 130;
      },
      { timeoutMs: 20_000 },
    );
    assert.equal(await ui.articles(B).count(), 130, "all 130, each once");
    await visible(B.getByText("This is the very beginning of the history."));

    // ---- unread while away, then the divider at the read marker on return
    const dm = await B.getByRole("button", { name: "New direct message", exact: true });
    await dm.click();
    const dmDialog = ui.dialog(B, "New direct message");
    await dmDialog.getByRole("textbox", { name: "Search users", exact: true }).fill("car");
    await dmDialog.getByRole("button", { name: "Carol", exact: true }).click();
    await gone(dmDialog);
    await ui.title(B, "Carol").waitFor();
    await ui.composer(B).fill("hi carol, a direct message");
    await ui.composer(B).press("Enter");
    await visible(ui.article(B, "hi carol, a direct message"));
    for (let i = 1; i <= 3; i++) await sendRest(base, aliceAcc, lobby.id, `while bob was away ${i}`);
    await visible(ui.rooms(B).getByRole("link", { name: "lobby, 3 unread", exact: true }));
    assert.match((await B.title()) ?? "", /^\(3\) /, "the unread total is in the tab title");
    await openRoom(B, "lobby");
    const divider = B.getByRole("separator", { name: "New messages", exact: true });
    await visible(divider);
    const firstAfter = await divider.evaluate(
      (el: { nextElementSibling: { textContent: string | null } | null }) => el.nextElementSibling?.textContent ?? "",
    );
    assert.match(firstAfter, /while bob was away 1/, "the divider sits before the first unread message");
    await visible(ui.rooms(B).getByRole("link", { name: "lobby", exact: true }));

    // ---- a room with initial members, and @-completion over them
    await A.getByRole("button", { name: "New room", exact: true }).click();
    const newRoom = ui.dialog(A, "New room");
    await newRoom.getByRole("textbox", { name: "Room name", exact: true }).fill("project");
    await newRoom.getByRole("textbox", { name: "Add people", exact: true }).fill("bo");
    await newRoom.getByRole("button", { name: /^Bob/ }).click();
    await visible(newRoom.getByRole("button", { name: "Remove Bob", exact: true }));
    await newRoom.getByRole("button", { name: "Create", exact: true }).click();
    await ui.title(A, "project").waitFor();
    await visible(ui.roomLink(B, "project"));
    await visible(ui.member(A, "Bob", "online"));
    await ui.composer(A).pressSequentially("hey @b");
    const option = A.getByRole("listbox", { name: "Mention suggestions" }).getByRole("option", { name: /Bob/ });
    await visible(option);
    await ui.composer(A).press("Enter");
    assert.equal(await composerValue(A), "hey @bob ", "Enter picks the suggestion, it does not send");
    await ui.composer(A).pressSequentially("welcome");
    await ui.composer(A).press("Enter");
    await visible(ui.article(A, "hey @bob welcome"));
    await visible(ui.notifications(B).and(B.getByRole("button", { name: /unseen/ })));

    // ---- the notifications dialog: listed, opens the room, mark all seen
    await ui.notifications(B).click();
    const notes = ui.dialog(B, "Notifications");
    await visible(notes.getByRole("button", { name: /Alice mentioned you in project/ }));
    await notes.getByRole("button", { name: "Mark all seen", exact: true }).click();
    await visible(B.getByRole("button", { name: "Notifications", exact: true }));
    await notes.getByRole("button", { name: /Alice mentioned you in project/ }).click();
    await gone(notes);
    await ui.title(B, "project").waitFor();

    // ---- room settings: rename and topic by the owner, seen by the member; notification level
    await A.getByRole("button", { name: "Room settings", exact: true }).click();
    const settings = ui.dialog(A, "Room settings");
    await settings.getByRole("textbox", { name: "Room name", exact: true }).fill("project-x");
    await settings.getByRole("textbox", { name: "Topic", exact: true }).fill("ship it");
    await settings.getByRole("combobox", { name: "Notify me about", exact: true }).selectOption("mentions");
    await settings.getByRole("button", { name: "Save", exact: true }).click();
    await gone(settings);
    await ui.title(B, "project-x").waitFor();
    await visible(B.getByText("ship it"));
    await A.getByRole("button", { name: "Room settings", exact: true }).click();
    assert.equal(
      await ui.dialog(A, "Room settings").getByRole("combobox", { name: "Notify me about" }).inputValue(),
      "mentions",
      "the level was saved",
    );
    await A.keyboard.press("Escape");
    await gone(ui.dialog(A, "Room settings"));

    // ---- kick: bob loses the room; carol joins the lobby, then leaves it
    await ui.members(A).getByRole("button", { name: "Kick Bob", exact: true }).click();
    await gone(ui.roomLink(B, "project-x"));
    await gone(ui.member(A, "Bob", "online"));
    const carol = await env.newPage("carol");
    const C = carol.page;
    await signIn(C, { username: "carol" });
    await visible(ui.roomLink(C, "Bob"), 15_000);
    await C.getByRole("button", { name: "Browse rooms", exact: true }).click();
    await ui
      .dialog(C, "Browse rooms")
      .getByRole("listitem")
      .filter({ hasText: "lobby" })
      .getByRole("button", { name: "Join", exact: true })
      .click();
    await ui.title(C, "lobby").waitFor();
    await C.getByRole("button", { name: "Room settings", exact: true }).click();
    await ui.dialog(C, "Room settings").getByRole("button", { name: "Leave room", exact: true }).click();
    await gone(ui.roomLink(C, "lobby"));
  },
);
