/**
 * The server goes away under a connected page and comes back (same port, same DATA_DIR):
 * bob's page says so, catches up on what alice sent meanwhile exactly once and in order, and a
 * message bob sends while the server is down is kept (through a reload) and delivered exactly once.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { register } from "../support/accounts-helpers.js";
import {
  browserTest,
  expectCount,
  gone,
  joinRest,
  NETWORK_DOWN_CONSOLE,
  openRoom,
  recordStatuses,
  sendMessage,
  signIn,
  startEmbeddedNode,
  statusLog,
  ui,
  visible,
  waitSignedIn,
  type StartedNode,
} from "../support/browser.js";
import { createRoom, fullHistory, sendRest } from "../support/chat-helpers.js";
import { eventually, sleep } from "../support/wait.js";

test(
  "reconnect: catch-up after a restart exactly once, in order; a message sent while down survives a reload",
  { timeout: 170_000 },
  async (t) => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "nochat-browser-reconnect-"));
    const env = await browserTest(t, { server: { dataDir } });
    if (!env) {
      rmSync(dataDir, { recursive: true, force: true });
      return;
    }
    let server: StartedNode = env.server;
    // Stop whichever node runs last (stop() is idempotent), then remove the data.
    t.after(async () => {
      await server.node.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });
    const { base, port } = server;
    const restart = async (): Promise<void> => {
      server = await startEmbeddedNode({ t, port, dataDir, name: "second" });
    };

    const aliceAcc = await register(base, "alice", { displayName: "Alice" });
    const bobAcc = await register(base, "bob", { displayName: "Bob" });
    const room = await createRoom(base, aliceAcc, { name: "ops", kind: "public" });
    await joinRest(base, bobAcc, room.id);

    const bob = await env.newPage("bob");
    bob.problems.allowConsole = NETWORK_DOWN_CONSOLE;
    const B = bob.page;
    await recordStatuses(bob.context);
    await signIn(B, { username: "bob" });
    await openRoom(B, "ops");

    // Live, before anything breaks.
    await sendRest(base, aliceAcc, room.id, "before the restart");
    await visible(ui.article(B, "before the restart"));
    assert.equal(await ui.connection(B).count(), 0, "no connection status while connected");
    // The first connection is not a reconnection: nothing said the page was offline, reconnecting
    // or back online before the server ever went away.
    await sleep(3_000);
    const firstLoad = (await statusLog(B))
      .map((s) => s.text)
      .filter((x) => /offline|reconnecting|back online/i.test(x));
    // (asserted at the end, so the rest runs either way)

    // ---- 1. restart while bob is connected ---------------------------------------------------------
    await server.node.stop();
    await visible(ui.connection(B), 15_000);
    const shown = (await ui.connection(B).first().textContent())?.trim();
    t.diagnostic(`while down bob's page says: ${shown}`);

    await restart();
    // Alice sends right after the restart: bob gets these live or from the catch-up — once each.
    const after = ["after restart 1", "after restart 2", "after restart 3"];
    for (const body of after) await sendRest(base, aliceAcc, room.id, body);
    await gone(ui.connection(B), 30_000);
    for (const body of after) await expectCount(ui.article(B, body), 1, `"${body}" on bob's page`, 0, 15_000);
    await sleep(1_000);
    for (const body of [...after, "before the restart"]) {
      await expectCount(ui.article(B, body), 1, `"${body}" still exactly once`);
    }
    const texts = await ui.articles(B).allTextContents();
    const positions = ["before the restart", ...after].map((body) => texts.findIndex((x) => x.includes(body)));
    assert.deepEqual(
      [...positions].sort((a, b) => a - b),
      positions,
      `in order: ${positions}`,
    );

    // And live again.
    await sendRest(base, aliceAcc, room.id, "live again");
    await expectCount(ui.article(B, "live again"), 1, "a live message after the reconnect", 500);

    // ---- 2. bob sends while the server is down, reloads, the server comes back ----------------------
    await server.node.stop();
    await visible(ui.connection(B), 15_000);
    const offlineBody = "written while the server was down";
    await ui.composer(B).fill(offlineBody);
    await ui.composer(B).press("Enter");
    const pending = ui.article(B, offlineBody);
    await visible(pending);
    const pendingText = (await pending.first().textContent()) ?? "";
    assert.match(pendingText, /Sending…|Not sent/, `the unsent message is marked pending: "${pendingText}"`);
    t.diagnostic(`pending message shows: ${/Sending…/.test(pendingText) ? "Sending…" : "Not sent"}`);

    // A reload while the server is down: the service worker should still load the UI.
    let reloadedWhileDown = false;
    try {
      await B.reload({ timeout: 10_000 });
      await waitSignedIn(B, 10_000);
      reloadedWhileDown = true;
    } catch (err) {
      t.diagnostic(
        `reload while the server was down did not bring the UI back: ${(err as Error).message.split("\n")[0]}`,
      );
    }
    if (reloadedWhileDown) {
      t.diagnostic("reload while down: the UI loaded from the service worker / cache");
      await openRoom(B, "ops").catch(() => undefined);
      await visible(ui.article(B, offlineBody));
      await restart();
    } else {
      t.diagnostic("reload while down: the page did not load; reloading after the server is back instead");
      await restart();
      await B.reload();
      await waitSignedIn(B);
    }
    if (!(await ui.title(B, "ops").isVisible())) await openRoom(B, "ops");
    await gone(ui.connection(B), 30_000);

    // Delivered exactly once: in the history, and on bob's page (no longer pending).
    const stored = await eventually(
      "the offline message in the history",
      async () => {
        const history = await fullHistory(base, aliceAcc, room.id);
        const found = history.filter((m) => m.body === offlineBody);
        return found.length > 0 ? found : false;
      },
      { timeoutMs: 20_000 },
    );
    assert.equal(stored.length, 1, "stored exactly once");
    await expectCount(ui.article(B, offlineBody), 1, "shown once on bob's page", 1_500);
    await eventually("no longer pending", async () => {
      const text = (await ui.article(B, offlineBody).first().textContent()) ?? "";
      assert.doesNotMatch(text, /Sending…|Not sent/);
      return true;
    });
    const history = await fullHistory(base, aliceAcc, room.id);
    assert.equal(history.filter((m) => m.body === offlineBody).length, 1, "still exactly once in the history");

    // The page still works both ways.
    await sendRest(base, aliceAcc, room.id, "all good now");
    await expectCount(ui.article(B, "all good now"), 1, "live after everything");
    await sendMessage(B, "bob is back");
    assert.equal((await fullHistory(base, aliceAcc, room.id)).filter((m) => m.body === "bob is back").length, 1);

    assert.deepEqual(bob.problems.pageErrors, [], "no uncaught exceptions");
    assert.deepEqual(firstLoad, [], "connection statuses shown on a first load, with the server up all along");
  },
);
