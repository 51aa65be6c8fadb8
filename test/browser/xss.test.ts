/**
 * 200 script-injection payloads as messages, room names, topics and display names (sent over REST
 * for speed), then read in the browser: nothing may run, the text must show literally, no active
 * element may reach the DOM, and the page's Content Security Policy must forbid inline and eval'd
 * script.
 *
 * Every payload's side effect is detectable: it calls `__xss(N)` (an exposed function), opens an
 * `alert`, sets `document.title` to `xss-pwned-N`, sets a global `__pwnedN`, or fetches `/xss-N`.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Locator, Page } from "playwright-core";
import { api, register, type Account } from "../support/accounts-helpers.js";
import { browserTest, gone, joinRest, openRoom, signIn, ui, visible } from "../support/browser.js";
import { createRoom, sendRest } from "../support/chat-helpers.js";
import { eventually, sleep } from "../support/wait.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- page-side code: the Node type-check has no DOM lib */
declare const document: any;
declare const location: any;
declare const window: any;

const COUNT = 200;

/** What a payload does when it runs; `N` is its number. */
const ACTIONS: ((n: number) => string)[] = [
  (n) => `__xss(${n})`,
  (n) => `alert(${n})`,
  (n) => `__xss(${n})`,
  (n) => `document.title='xss-pwned-${n}'`,
  (n) => `window.__pwned${n}=1`,
  (n) => `top.__xss(${n})`,
  (n) => `fetch('/xss-${n}')`,
  (n) => `parent['__xss'](${n})`,
];

/** `{JS}` is replaced by an action, `{N}` by the payload's number. */
const TEMPLATES: string[] = [
  // script elements
  `<script>{JS}</script>`,
  `<SCRIPT>{JS}</SCRIPT>`,
  `<script src="data:text/javascript,{JS}"></script>`,
  `<<script>script>{JS}<</script>/script>`,
  `<scr<script>ipt>{JS}</scr</script>ipt>`,
  `'><script>{JS}</script>`,
  `"><script>{JS}</script>`,
  `</textarea><script>{JS}</script>`,
  `</title><script>{JS}</script>`,
  `</script><script>{JS}</script>`,
  // images and event handlers
  `<img src=x onerror={JS}>`,
  `<img src="x" onerror="{JS}">`,
  `<IMG SRC=x ONERROR={JS}>`,
  `<img/src=x/onerror={JS}>`,
  `"><img src=x onerror={JS}>`,
  `' onmouseover='{JS}' x='`,
  `" autofocus onfocus="{JS}" x="`,
  `<img src=x onerror="eval(atob('{B64}'))">`,
  `<body onload={JS}>`,
  `<input autofocus onfocus={JS}>`,
  `<details open ontoggle={JS}>x</details>`,
  `<video><source onerror={JS}></video>`,
  `<audio src=x onerror={JS}>`,
  `<x onclick={JS}>click me</x>`,
  `<marquee onstart={JS}>m</marquee>`,
  `<div onpointerenter={JS} style="position:fixed;inset:0">cover</div>`,
  `<select autofocus onfocus={JS}>`,
  `<textarea autofocus onfocus={JS}>`,
  `<keygen autofocus onfocus={JS}>`,
  `<object data=x onerror={JS}>`,
  // javascript: URLs
  `<a href="javascript:{JS}">click</a>`,
  `<a href="  javascript:{JS}">spaced</a>`,
  `<a href="jav&#x09;ascript:{JS}">tab</a>`,
  `<a href="&#106;avascript:{JS}">entity</a>`,
  `javascript:{JS}`,
  `JaVaScRiPt:{JS}`,
  `<iframe src="javascript:{JS}"></iframe>`,
  `<iframe srcdoc="<script>{JS}</script>"></iframe>`,
  `<object data="javascript:{JS}"></object>`,
  `<embed src="javascript:{JS}">`,
  `<form><button formaction=javascript:{JS}>go</button></form>`,
  `<form action="javascript:{JS}"><input type=submit></form>`,
  `<meta http-equiv="refresh" content="0;url=javascript:{JS}">`,
  `<base href="javascript:{JS}//">`,
  `<link rel=stylesheet href="javascript:{JS}">`,
  `<a href="data:text/html,<script>{JS}</script>">data</a>`,
  `<a href="vbscript:{JS}">vb</a>`,
  // markdown
  `[x](javascript:{JS})`,
  `[x](JaVaScRiPt:{JS})`,
  `[x](  javascript:{JS}  )`,
  `[x](javas&#99;ript:{JS})`,
  `[x](data:text/html;base64,{B64})`,
  `![x](x" onerror="{JS})`,
  `![x](javascript:{JS})`,
  `[<img src=x onerror={JS}>](http://127.0.0.1:1/)`,
  `<javascript:{JS}>`,
  `[a]: javascript:{JS}\n\n[click][a]`,
  "`<img src=x onerror={JS}>`",
  "```html\n<script>{JS}</script>\n```",
  `*<img src=x onerror={JS}>*`,
  `**<svg onload={JS}>**`,
  `> <img src=x onerror={JS}>`,
  `- <script>{JS}</script>`,
  `# <img src=x onerror={JS}>`,
  `[x](#" onclick="{JS})`,
  `<http://127.0.0.1:1/" onclick="{JS}>`,
  // SVG and MathML
  `<svg onload={JS}>`,
  `<svg/onload={JS}>`,
  `<svg><script>{JS}</script></svg>`,
  `<svg><a xlink:href="javascript:{JS}"><text x="20" y="20">X</text></a></svg>`,
  `<svg><animate onbegin={JS} attributeName=x dur=1s>`,
  `<svg><set attributeName=onmouseover to={JS}>`,
  `<svg><foreignObject><iframe src="javascript:{JS}"></iframe></foreignObject></svg>`,
  `<svg><use href="data:image/svg+xml,<svg id='x' xmlns='http://www.w3.org/2000/svg'><image href='x' onerror='{JS}'/></svg>#x"/></svg>`,
  `<math href="javascript:{JS}">CLICK</math>`,
  `<math><mtext><table><mglyph><style><img src=x onerror={JS}>`,
  `<math><maction actiontype="statusline" xlink:href="javascript:{JS}">m</maction></math>`,
  // templates, styles, comments, parser tricks
  `<template><img src=x onerror={JS}></template>`,
  `<style>@import 'javascript:{JS}';</style><b>styled</b>`,
  `<style>*{background:url("javascript:{JS}")}</style>`,
  `<div style="background:url(javascript:{JS})">bg</div>`,
  `<div style="width:expression({JS})">ie</div>`,
  `<noscript><p title="</noscript><img src=x onerror={JS}>">`,
  `<!--<img src="--><img src=x onerror={JS}//">`,
  `<xmp><img src=x onerror={JS}></xmp>`,
  `<noembed><img title="</noembed><img src=x onerror={JS}>"></noembed>`,
  `<img src="x\n" onerror="{JS}">`,
  `<a href="#" onclick="{JS}">plain link</a>`,
  `{{constructor.constructor('{JS}')()}}`,
  `\${{JS}}`,
  `<%= {JS} %>`,
  `{{{JS}}}`,
  // entities and encodings: must be shown as typed, not decoded into markup
  `&lt;script&gt;{JS}&lt;/script&gt;`,
  `&#60;img src=x onerror={JS}&#62;`,
  `%3Cscript%3E{JS}%3C/script%3E`,
  `\\u003cscript\\u003e{JS}\\u003c/script\\u003e`,
  `\\x3cscript\\x3e{JS}\\x3c/script\\x3e`,
  // unicode tricks
  `＜script＞{JS}＜/script＞`,
  `<scr\u200Bipt>{JS}</scr\u200Bipt>`,
  `\u202E<img src=x onerror={JS}>`,
  `<img src=x onerror\u3000={JS}>`,
  `<ſcript>{JS}</ſcript>`,
  `<img src=x onerror=${"\uFF5B"}{JS}${"\uFF5D"}>`,
  `java\u2028script:{JS}`,
  `<a href="java\u00ADscript:{JS}">soft hyphen</a>`,
];

interface Payload {
  n: number;
  text: string;
}

function b64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

function makePayloads(count: number): Payload[] {
  const out: Payload[] = [];
  for (let i = 0; i < count; i++) {
    const n = i + 1;
    const js = ACTIONS[i % ACTIONS.length](n);
    const text = TEMPLATES[i % TEMPLATES.length]
      .replaceAll("{B64}", b64(`<script>${js}</script>`))
      .replaceAll("{JS}", js)
      .replaceAll("{N}", String(n));
    out.push({ n, text });
  }
  return out;
}

/** Whitespace-normalized text, as a reader sees it. */
function norm(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/**
 * A payload a markdown renderer leaves alone (no emphasis, links, code, escapes, quotes or lists),
 * so a correct UI — markdown or not — shows it character for character.
 */
function markdownNeutral(text: string): boolean {
  return (
    !/[*_`~[\]\\]/.test(text) &&
    !/^\s*([>#+-]|\d+\.)/.test(text) &&
    !/\n/.test(text) &&
    !/javascript:|https?:|www\./i.test(text) &&
    !/[\u200B\u00AD\u202E\u2028\u3000]/.test(text)
  );
}

/** Runs in the page: every active or dangerous thing in the DOM. */
function findDangerous(): string[] {
  const bad: string[] = [];
  const origin = location.origin;
  const urlAttrs = new Set([
    "href",
    "src",
    "action",
    "formaction",
    "xlink:href",
    "data",
    "poster",
    "background",
    "lowsrc",
    "dynsrc",
    "ping",
    "codebase",
    "cite",
  ]);
  const dangerousTags = new Set([
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "base",
    "portal",
    "isindex",
  ]);
  const describe = (el: any) => el.outerHTML.slice(0, 160);
  for (const el of Array.from<any>(document.querySelectorAll("*"))) {
    const tag = el.tagName.toLowerCase();
    if (dangerousTags.has(tag)) bad.push(`<${tag}>: ${describe(el)}`);
    if (tag === "script") {
      const src = el.getAttribute("src");
      const type = (el.getAttribute("type") ?? "").toLowerCase();
      const dataBlock = /json/.test(type);
      if (!src && !dataBlock) bad.push(`inline <script>: ${describe(el)}`);
      if (src && !new URL(src, location.href).href.startsWith(`${origin}/`))
        bad.push(`foreign <script>: ${describe(el)}`);
    }
    const inBody = el.closest("body") !== null;
    if (inBody && ["meta", "style", "link", "template", "xmp", "noembed", "noscript", "marquee"].includes(tag)) {
      bad.push(`<${tag}> in the body: ${describe(el)}`);
    }
    if (
      el.closest("[role=log], nav, aside, h1, [role=dialog]") &&
      ["form", "math", "video", "audio", "source", "details", "keygen"].includes(tag)
    ) {
      bad.push(`<${tag}> in content: ${describe(el)}`);
    }
    if (["animate", "set", "foreignobject", "use", "image", "maction"].includes(tag))
      bad.push(`<${tag}>: ${describe(el)}`);
    for (const attr of Array.from<any>(el.attributes)) {
      const name = attr.name.toLowerCase();
      // eslint-disable-next-line no-control-regex
      const value = attr.value.replace(/[\u0000-\u0020\u00AD\u200B]/g, "").toLowerCase();
      if (name.startsWith("on")) bad.push(`${tag}[${name}]: ${describe(el)}`);
      if (name === "srcdoc") bad.push(`${tag}[srcdoc]: ${describe(el)}`);
      if (urlAttrs.has(name) && /^(javascript|vbscript|data:text\/html|data:text\/javascript)/.test(value)) {
        bad.push(`${tag}[${name}=${attr.value.slice(0, 40)}]`);
      }
      if (name === "style" && /url\(|expression\(/.test(value)) bad.push(`${tag}[style=${attr.value.slice(0, 60)}]`);
    }
  }
  for (const a of Array.from<any>(document.querySelectorAll("a[href], area[href]"))) {
    let protocol = "?";
    try {
      protocol = new URL(a.getAttribute("href")!, location.href).protocol;
    } catch {
      protocol = "invalid";
    }
    if (!["http:", "https:", "mailto:"].includes(protocol))
      bad.push(`link with ${protocol}: ${a.outerHTML.slice(0, 120)}`);
  }
  return bad;
}

/** Side effects of a payload that ran. */
async function sideEffects(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const found: string[] = [];
    if (/^xss-pwned/.test(document.title)) found.push(`document.title = ${document.title}`);
    for (const key of Object.getOwnPropertyNames(window)) if (key.startsWith("__pwned")) found.push(`global ${key}`);
    return found;
  });
}

/**
 * Finds the element that scrolls the log (the log itself or an ancestor) and scrolls it. Going to
 * the top, it first goes a screen down and waits a frame, as a reader scrolling up again would:
 * scrolling to where one already is changes nothing an IntersectionObserver could see.
 */
async function scrollLog(log: Locator, to: "top" | "bottom"): Promise<void> {
  await log.evaluate(async (el, where) => {
    let s: any = el;
    while (s && s.scrollHeight <= s.clientHeight + 1) s = s.parentElement;
    const target = s ?? document.scrollingElement ?? document.documentElement;
    const frame = () => new Promise((resolve) => (globalThis as any).requestAnimationFrame(() => resolve(null)));
    if (where === "top") {
      target.scrollTop = Math.min(target.scrollTop + target.clientHeight, target.scrollHeight);
      await frame();
      await frame();
    }
    target.scrollTop = where === "top" ? 0 : target.scrollHeight;
    target.dispatchEvent(new Event("scroll"));
  }, to);
}

test(
  "XSS: 200 payloads as messages, room names, topics and display names never run and show literally",
  { timeout: 170_000 },
  async (t) => {
    const env = await browserTest(t);
    if (!env) return;
    const { base } = env;
    const payloads = makePayloads(COUNT);
    assert.equal(new Set(payloads.map((p) => p.text)).size, COUNT, "200 different payloads");

    // ---- the Content Security Policy of the page ------------------------------------------------------
    const index = await fetch(`${base}/`);
    await index.body?.cancel();
    const csp = index.headers.get("content-security-policy");
    assert.ok(csp, "GET / has a Content-Security-Policy header");
    assert.doesNotMatch(csp, /unsafe-inline/, `CSP: ${csp}`);
    assert.doesNotMatch(csp, /unsafe-eval/, `CSP: ${csp}`);
    assert.match(csp, /(script-src|default-src)/, `CSP restricts scripts: ${csp}`);

    // ---- data over REST -------------------------------------------------------------------------------
    const fits = (max: number) => payloads.filter((p) => p.text.trim().length <= max && !p.text.includes("\n"));
    const aliceAcc = await register(base, "alice", { displayName: "Alice" });
    const lab = await createRoom(base, aliceAcc, {
      name: "xss-lab",
      kind: "public",
      topic: fits(250)[7].text,
    });

    // Display names: users who join the lab, say hello and mention alice; one opens a direct room.
    const nameAccounts: { acc: Account; payload: Payload }[] = [];
    for (const [i, payload] of fits(64).slice(0, 10).entries()) {
      const acc = await register(base, `mallory${i}`, { displayName: payload.text });
      await joinRest(base, acc, lab.id);
      nameAccounts.push({ acc, payload });
    }
    const dm = await api(base, "POST", "/api/rooms/direct", {
      token: nameAccounts[0].acc.accessToken,
      body: { userId: aliceAcc.user.id },
    });
    assert.ok(dm.status === 200 || dm.status === 201, dm.text);
    await sendRest(base, nameAccounts[0].acc, dm.body.id, payloads[10].text);

    // Room names and topics: rooms alice is in.
    const roomPayloads = fits(80).slice(20, 40);
    const refused: string[] = [];
    for (const [i, payload] of roomPayloads.entries()) {
      const res = await api(base, "POST", "/api/rooms", {
        token: aliceAcc.accessToken,
        body: { name: payload.text, kind: i % 2 ? "private" : "public", topic: fits(250)[(i * 7) % 150].text },
      });
      if (res.status !== 201) refused.push(`${res.status} ${payload.text}`);
    }
    if (refused.length) t.diagnostic(`room names refused: ${refused.join(" | ")}`);
    assert.ok(refused.length <= 2, `at most 2 room-name payloads refused: ${refused.join(" | ")}`);

    // Messages: all 200, each with its number after it on a line of its own (markdown-safe).
    const seqOf = new Map<number, number>();
    const bodies = payloads.map((p) => ({ ...p, body: `${p.text}\n⟦${p.n}⟧` }));
    for (let i = 0; i < bodies.length; i += 10) {
      await Promise.all(
        bodies.slice(i, i + 10).map(async (b) => seqOf.set(b.n, (await sendRest(base, aliceAcc, lab.id, b.body)).seq)),
      );
    }
    for (const { acc, payload } of nameAccounts) {
      await sendRest(base, acc, lab.id, `hello from ⟪${payload.n}⟫ @alice`);
    }

    // ---- the browser --------------------------------------------------------------------------------
    const alice = await env.newPage("alice");
    const A = alice.page;
    const hits: number[] = [];
    await alice.context.exposeFunction("__xss", (n: number) => void hits.push(n));
    const foreignRequests: string[] = [];
    // History pages the UI asked for (for the failure message when scrolling does not reach the start).
    const historyRequests: string[] = [];
    A.on("requestfinished", async (req) => {
      const m = /\/api\/rooms\/\d+\/messages\?(.*)$/.exec(req.url());
      if (!m || req.method() !== "GET") return;
      const res = await req.response().catch(() => null);
      historyRequests.push(`${m[1]} → ${res?.status() ?? "?"}`);
    });
    A.on("request", (req) => {
      const url = req.url();
      if (/^(data|blob):/.test(url)) return;
      if (!url.startsWith(`${base}/`) || /\/xss-\d+/.test(url)) foreignRequests.push(url);
    });
    // The sentinels work: on a blank page of the same context (no CSP), injected markup is caught.
    const canary = await alice.context.newPage();
    await canary.setContent("<div id=x></div>");
    await canary.evaluate(() => {
      document.getElementById("x").innerHTML = `<img src=x onerror="__xss(0)"><a href="javascript:alert(1)">x</a>`;
    });
    await eventually("the canary payload to call __xss(0)", () => hits.includes(0));
    const caught = await canary.evaluate(findDangerous);
    assert.ok(caught.length >= 2, `findDangerous sees the canary: ${JSON.stringify(caught)}`);
    await canary.close();
    hits.length = 0;

    const dangerous = new Set<string>();
    const checkPage = async (where: string) => {
      for (const item of await A.evaluate(findDangerous)) dangerous.add(`${where}: ${item}`);
      for (const item of await sideEffects(A)) dangerous.add(`${where}: ${item}`);
    };

    await signIn(A, { username: "alice" });
    await checkPage("after sign-in (room list)");

    // Every room in the list: a few opened, each link's text shown literally.
    const links = ui.rooms(A).getByRole("link");
    await visible(links);
    const linkTexts = norm((await links.allTextContents()).join(" \u0001 "));
    let literalNames = 0;
    for (const payload of roomPayloads) if (linkTexts.includes(norm(payload.text))) literalNames++;
    for (const { payload } of nameAccounts.slice(0, 1)) {
      assert.ok(
        linkTexts.includes(norm(payload.text)),
        `the direct room shows the other user's name literally: ${payload.text}`,
      );
    }
    const linkCount = await links.count();
    for (let i = 0; i < Math.min(linkCount, 6); i++) {
      await links.nth(i).click();
      await ui.title(A).waitFor();
      await sleep(200);
      await checkPage(`room #${i} (${norm((await ui.title(A).textContent()) ?? "")})`);
    }
    assert.ok(
      literalNames >= roomPayloads.length - refused.length - 2,
      `room names shown literally in Rooms: ${literalNames} of ${roomPayloads.length - refused.length}`,
    );

    // The lab: scroll through all 200 messages.
    await openRoom(A, "xss-lab");
    const log = ui.log(A);
    const articles = ui.articles(A);
    await visible(articles);
    const seen = new Map<number, string>();
    const collect = async () => {
      for (const text of await articles.allTextContents()) {
        const m = /⟦(\d+)⟧/.exec(text);
        if (m) seen.set(Number(m[1]), norm(text));
      }
    };
    await collect();
    for (let round = 0; round < 60 && seen.size < COUNT; round++) {
      const before = seen.size;
      await articles
        .first()
        .scrollIntoViewIfNeeded()
        .catch(() => undefined);
      await scrollLog(log, "top");
      await A.mouse.move(640, 300);
      await A.mouse.wheel(0, -3000);
      await sleep(300);
      await collect();
      await checkPage(`lab, scrolled up (round ${round})`);
      if (seen.size === before) await sleep(500);
    }
    await scrollLog(log, "bottom");
    await sleep(300);
    await collect();
    await checkPage("lab, scrolled to the end");

    // The topic and the members (display names) are shown literally too.
    const whole = norm((await A.locator("body").textContent()) ?? "");
    assert.ok(whole.includes(norm(fits(250)[7].text)), `the lab's topic is shown literally: ${fits(250)[7].text}`);
    const members = ui.members(A);
    if (await members.isVisible()) {
      const memberText = norm((await members.textContent()) ?? "");
      for (const { payload } of nameAccounts) {
        assert.ok(memberText.includes(norm(payload.text)), `display name literally in Members: ${payload.text}`);
      }
    }
    const helloArticles = await ui.article(A, /hello from ⟪\d+⟫/).allTextContents();
    for (const { payload } of nameAccounts) {
      const article = helloArticles.find((x) => x.includes(`⟪${payload.n}⟫`));
      assert.ok(article, `the message of the user named ${payload.text} is shown`);
      assert.ok(
        norm(article).includes(norm(payload.text)),
        `its author's name literally: ${payload.text} in ${article}`,
      );
    }

    // Notifications (mentions from users with payload names), then the dialog closes.
    await ui.notifications(A).click();
    const notes = ui.dialog(A, "Notifications");
    await notes.waitFor();
    await sleep(300);
    await checkPage("notifications dialog");
    await A.keyboard.press("Escape");
    await gone(notes);

    // ---- verdict ------------------------------------------------------------------------------------
    assert.deepEqual(
      hits.sort((a, b) => a - b),
      [],
      "payloads that called __xss()",
    );
    assert.deepEqual(alice.problems.dialogs, [], "dialogs opened by payloads");
    assert.deepEqual([...dangerous], [], "active content in the DOM or side effects");
    assert.deepEqual(foreignRequests, [], "requests caused by payloads");
    alice.problems.assertClean();

    t.diagnostic(
      `messages seen while scrolling: ${seen.size}; literal room names ${literalNames}; ` +
        `literal sample ${bodies.filter((b) => markdownNeutral(b.text)).length} payloads`,
    );
    const missing = bodies.filter((b) => !seen.has(b.n)).map((b) => `#${b.n} (seq ${seqOf.get(b.n)})`);
    const beginning = await A.getByText("This is the very beginning", { exact: false }).count();
    assert.deepEqual(
      missing,
      [],
      `every message was shown while scrolling through (saw ${seen.size} of ${COUNT}; ` +
        `seqs seen ${[...seen.keys()]
          .map((n) => seqOf.get(n)!)
          .sort((a, b) => a - b)
          .slice(0, 5)}…; ` +
        `"beginning of the history" shown: ${beginning > 0}; ` +
        `"Loading older messages…" shown: ${(await A.getByText("Loading older messages…").count()) > 0}; ` +
        `history requests: ${historyRequests.join(", ")})`,
    );
    const sample = bodies.filter((b) => markdownNeutral(b.text));
    assert.ok(sample.length >= 40, `a sample of ${sample.length} markdown-neutral payloads`);
    const notLiteral = sample.filter((b) => !seen.get(b.n)!.includes(norm(b.text))).map((b) => `${b.n}: ${b.text}`);
    assert.deepEqual(notLiteral, [], "payloads not shown character for character");
  },
);
