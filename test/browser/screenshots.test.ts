/**
 * Screenshots of the main screens — sign-in, a room with a conversation (replies, reactions, a
 * mention, a day separator, an unread room in the list), a dialog — at 1280×800 and 360×740, light
 * and dark. The pages are always checked to have rendered (and dark to be darker than light); the
 * PNGs are written to docs/screenshots/ only with SCREENSHOTS=1:
 *
 *   SCREENSHOTS=1 node scripts/test.mjs test/browser/screenshots.test.ts
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import knex from "knex";
import type { Page } from "playwright-core";
import { api, register } from "../support/accounts-helpers.js";
import { browserTest, gone, joinRest, openRoom, signIn, ui, visible } from "../support/browser.js";
import { createRoom, sendRest } from "../support/chat-helpers.js";
import { REPO_ROOT } from "../support/processes.js";
import { sleep } from "../support/wait.js";

const OUT_DIR = path.join(REPO_ROOT, "docs", "screenshots");
const WRITE = process.env.SCREENSHOTS === "1";
const MAX_TOTAL_BYTES = 1_500_000;

const SIZES = {
  desktop: { viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 },
  mobile: { viewport: { width: 360, height: 740 }, deviceScaleFactor: 1, isMobile: true, hasTouch: true },
} as const;

/** Relative luminance (0 black … 1 white) of the page's background where nothing else is drawn. */
async function backgroundLuminance(page: Page): Promise<number> {
  const rgb = await page.evaluate(() => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the DOM (no DOM lib here)
    const g = globalThis as any;
    let el = g.document.elementFromPoint(g.innerWidth - 2, g.innerHeight / 2);
    while (el) {
      const bg = g.getComputedStyle(el).backgroundColor;
      if (bg && !/rgba\(\d+, \d+, \d+, 0\)|transparent/.test(bg)) return bg as string;
      el = el.parentElement;
    }
    return g.getComputedStyle(g.document.documentElement).backgroundColor as string;
  });
  const [r, g, b] = (rgb.match(/[\d.]+/g) ?? ["255", "255", "255"]).map(Number);
  const lin = (c: number) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

test(
  "screenshots: sign-in, a conversation and a dialog at desktop and mobile sizes, light and dark",
  { timeout: 170_000 },
  async (t) => {
    const env = await browserTest(t);
    if (!env) return;
    const { base } = env;

    // ---- a conversation worth looking at -------------------------------------------------------------
    const alice = await register(base, "alice", { displayName: "Alice Martin" });
    const bob = await register(base, "bob", { displayName: "Bob Chen" });
    const carol = await register(base, "carol", { displayName: "Carol Diaz" });
    const design = await createRoom(base, alice, {
      name: "design",
      kind: "public",
      topic: "Product design and UI reviews",
    });
    const general = await createRoom(base, alice, { name: "general", kind: "public", topic: "Everything else" });
    await createRoom(base, alice, { name: "release-planning", kind: "private" });
    for (const who of [bob, carol]) {
      await joinRest(base, who, design.id);
      await joinRest(base, who, general.id);
    }
    const m1 = await sendRest(base, carol, design.id, "Morning! The new onboarding flow is ready for review.");
    await sendRest(base, alice, design.id, "Great — I'll take a look after standup.");
    await sendRest(base, bob, design.id, "Same here. Is there a prototype I can click through?");
    // Those three were "yesterday": moved back a day in the store, so a day separator shows.
    const db = knex({
      client: "better-sqlite3",
      connection: { filename: path.join(env.server.node.dataDir, "nochat.sqlite") },
      useNullAsDefault: true,
    });
    try {
      const moved = await db("messages")
        .where({ room_id: design.id })
        .where("seq", "<=", 3)
        .update({ created_at: db.raw("created_at - 86400000") });
      assert.equal(moved, 3, "three messages moved to yesterday");
    } finally {
      await db.destroy();
    }
    await sendRest(base, carol, design.id, "Yes — it's linked in the design doc, section 3.");
    const reply = await sendRest(base, alice, design.id, "Looks clean. The empty states read much better now.", {
      replyTo: m1.id,
    });
    await sendRest(base, bob, design.id, "@alice can you check the colour contrast on the buttons?");
    await sendRest(base, alice, design.id, "On it, I'll post the numbers by lunch.");
    for (const [who, emoji] of [
      [bob, "👍"],
      [carol, "👍"],
      [bob, "🎉"],
    ] as const) {
      const res = await api(base, "POST", `/api/rooms/${design.id}/messages/${reply.id}/reactions`, {
        token: who.accessToken,
        body: { emoji },
      });
      assert.equal(res.status, 200, res.text);
    }
    await sendRest(base, bob, general.id, "Lunch at noon?");
    const dm = await api(base, "POST", "/api/rooms/direct", {
      token: bob.accessToken,
      body: { userId: alice.user.id },
    });
    assert.ok(dm.status === 200 || dm.status === 201, dm.text);
    await sendRest(base, bob, dm.body.id, "Got a minute?");

    const shots: { name: string; png: Buffer }[] = [];
    const shoot = async (page: Page, name: string) => {
      // Transient connection notices are not part of the picture.
      await gone(page.getByRole("status").filter({ hasText: /Back online|Reconnecting…|Offline|Connecting…/ }), 10_000);
      await sleep(250);
      const png = await page.screenshot({ animations: "disabled", caret: "hide" });
      assert.ok(png.length > 5_000, `${name}: a real picture (${png.length} bytes)`);
      shots.push({ name, png });
    };
    const luminance: Record<string, number> = {};

    for (const [size, options] of Object.entries(SIZES)) {
      for (const scheme of ["light", "dark"] as const) {
        const label = `${size}-${scheme}`;
        const { page } = await env.newPage(`alice-${label}`, { ...options, colorScheme: scheme });

        // ---- sign-in -----------------------------------------------------------------------------------
        await page.goto("/");
        await visible(ui.username(page));
        await visible(ui.signInButton(page));
        luminance[`signin-${label}`] = await backgroundLuminance(page);
        await shoot(page, `signin-${label}`);

        // ---- the room ------------------------------------------------------------------------------------
        await signIn(page, { username: "alice" });
        await openRoom(page, "design");
        await visible(ui.article(page, "On it, I'll post the numbers by lunch."));
        const count = await ui.articles(page).count();
        assert.ok(count >= 7, `${label}: the conversation is shown (${count} articles)`);
        await visible(ui.article(page, "Looks clean.").getByRole("button", { name: /^👍.*\b2\b/ }));
        const replyText = (await ui.article(page, "Looks clean.").first().textContent()) ?? "";
        assert.match(replyText, /onboarding flow/, `${label}: the reply quotes its original`);
        const separators = (await ui.log(page).getByRole("separator").allTextContents())
          .map((text) => text.trim())
          .filter((text) => text && text !== "New messages");
        assert.ok(separators.length >= 2, `${label}: a day separator for each day: ${JSON.stringify(separators)}`);
        await ui.log(page).evaluate((el) => {
          // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a DOM element (no DOM lib here)
          let s: any = el;
          while (s && s.scrollHeight <= s.clientHeight + 1) s = s.parentElement;
          if (s) s.scrollTop = s.scrollHeight;
        });
        luminance[`room-${label}`] = await backgroundLuminance(page);
        await shoot(page, `room-${label}`);

        // ---- a dialog ------------------------------------------------------------------------------------
        if (size === "mobile" && (await ui.menu(page).getAttribute("aria-expanded")) !== "true") {
          await ui.menu(page).click();
        }
        await page.getByRole("button", { name: "New room", exact: true }).click();
        const dialog = ui.dialog(page, "New room");
        await visible(dialog);
        await dialog.getByRole("textbox", { name: "Room name", exact: true }).fill("research");
        await dialog.getByRole("textbox", { name: "Topic", exact: true }).fill("User interviews and findings");
        await shoot(page, `dialog-${label}`);
        await page.keyboard.press("Escape");
        await gone(dialog);
        await page.context().close();
      }
    }

    for (const size of Object.keys(SIZES)) {
      for (const screen of ["signin", "room"]) {
        const light = luminance[`${screen}-${size}-light`];
        const dark = luminance[`${screen}-${size}-dark`];
        assert.ok(
          dark < light,
          `${screen} at ${size}: dark (${dark.toFixed(3)}) is darker than light (${light.toFixed(3)})`,
        );
      }
    }

    const total = shots.reduce((sum, s) => sum + s.png.length, 0);
    t.diagnostic(`${shots.length} screenshots, ${Math.round(total / 1024)} KiB`);
    if (WRITE) {
      assert.ok(total <= MAX_TOTAL_BYTES, `screenshots total ${total} bytes (at most ${MAX_TOTAL_BYTES})`);
      mkdirSync(OUT_DIR, { recursive: true });
      for (const { name, png } of shots) writeFileSync(path.join(OUT_DIR, `${name}.png`), png);
      t.diagnostic(`written to ${path.relative(REPO_ROOT, OUT_DIR)}/`);
    }
    for (const p of env.pages) p.problems.assertClean();
  },
);
