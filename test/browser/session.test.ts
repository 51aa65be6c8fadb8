/**
 * The session in the browser: a refused sign-up shows the server's field errors; the access token
 * is refreshed before it expires (rotation) in two tabs at once without either refresh revoking the
 * session; the page keeps working past the first token's lifetime and stays signed in on reload;
 * a session ended on the server (here: a replayed refresh token) sends every tab back to sign-in.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "playwright-core";
import { login, register } from "../support/accounts-helpers.js";
import { browserTest, joinRest, openRoom, sendMessage, signIn, ui, visible } from "../support/browser.js";
import { createRoom, fullHistory } from "../support/chat-helpers.js";
import { eventually, sleep } from "../support/wait.js";

/** ACCESS_TOKEN_TTL's minimum: the page must refresh within it. */
const TTL_S = 10;

interface Stored {
  accessToken: string;
  refreshToken: string;
  expiresAt: number;
}

async function stored(page: Page): Promise<Stored | null> {
  return page.evaluate(() => {
    const raw = localStorage.getItem("nochat.session");
    return raw ? (JSON.parse(raw) as Stored) : null;
  });
}

test("session: field errors, token refresh in two tabs, reload, revocation", { timeout: 170_000 }, async (t) => {
  const env = await browserTest(t, { server: { env: { ACCESS_TOKEN_TTL: String(TTL_S) } } });
  if (!env) return;
  const { base } = env;

  // ---- a refused sign-up: the server's message as an alert, each field's message by its field
  const stranger = await env.newPage("stranger");
  const S = stranger.page;
  // The refusal itself is the browser's console line for a 422.
  stranger.problems.allowConsole = [/status of 422 .*\/api\/auth\/register/];
  await S.goto("/");
  await ui.signUpButton(S).click();
  await ui.username(S).fill("x!");
  await ui.password(S).fill("short");
  await ui.displayName(S).fill("X");
  await ui.signUpButton(S).click();
  await visible(S.getByRole("alert"));
  assert.equal(await ui.username(S).getAttribute("aria-invalid"), "true", "the username is marked invalid");
  assert.equal(await ui.password(S).getAttribute("aria-invalid"), "true", "the password is marked invalid");
  const described = await ui.username(S).getAttribute("aria-describedby");
  assert.ok(described, "the username's error is tied to it");
  const fieldError = (await S.locator(`[id="${described.split(" ")[0]}"]`).textContent()) ?? "";
  assert.match(fieldError, /\S/, "the field error has text");
  assert.equal(await ui.rooms(S).count(), 0, "still signed out");

  // ---- refresh before expiry, in two tabs of the same browser
  // (REST tokens live TTL_S too: log in again where one is needed later.)
  const alice = await register(base, "alice", { displayName: "Alice" });
  const bobRest = await register(base, "bob", { displayName: "Bob" });
  const room = await createRoom(base, alice, { name: "general", kind: "public" });
  await joinRest(base, bobRest, room.id);
  const bob = await env.newPage("bob");
  // The refresh replayed below is refused with 401s, in the page's console too.
  bob.problems.allowConsole = [/status of 401 /];
  const B = bob.page;
  await signIn(B, { username: "bob" });
  await openRoom(B, "general");
  const first = (await stored(B))!;
  const B2 = await bob.context.newPage();
  await B2.goto("/");
  await visible(ui.rooms(B2), 15_000);

  // Both tabs hold the new tokens before the first access token expires; the first is rotated out.
  const refreshed = await eventually(
    "tokens refreshed before expiry",
    async () => {
      const now = await stored(B);
      return now && now.accessToken !== first.accessToken ? now : false;
    },
    { timeoutMs: TTL_S * 1000 },
  );
  assert.ok(Date.now() < first.expiresAt, "refreshed before the old token expired");

  // Past two lifetimes (several refreshes by two tabs): still signed in, still sending.
  await sleep(2 * TTL_S * 1000);
  assert.ok((await stored(B))!.accessToken !== refreshed.accessToken, "refreshed again");
  await sendMessage(B, "still here after the tokens rotated");
  await sendMessage(B2, "and from the other tab");
  const history = await fullHistory(base, await login(base, "alice"), room.id);
  assert.equal(history.filter((m) => m.body === "still here after the tokens rotated").length, 1);
  assert.equal(history.filter((m) => m.body === "and from the other tab").length, 1);

  // A reload stays signed in.
  await B.reload();
  await visible(ui.rooms(B), 15_000);
  await visible(ui.article(B, "and from the other tab"));

  // ---- the session ends on the server: every tab goes back to sign-in. Here by a replay of the
  // first, rotated-out refresh token, which the server refuses and answers by revoking the session.
  const replay = await fetch(`${base}/api/auth/refresh`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refreshToken: first.refreshToken }),
  });
  assert.equal(replay.status, 401, "the rotated refresh token no longer works");
  for (const page of [B, B2]) {
    await visible(ui.signInButton(page), 15_000);
    await visible(ui.username(page));
    assert.equal(await ui.rooms(page).count(), 0, "the chat is gone");
  }
  assert.equal(await stored(B), null, "the tokens are gone");
  await B2.close();
});
