/**
 * Helpers for the Chromium end-to-end tests in test/browser/: a headless Chromium driven by
 * playwright-core (the system's /usr/bin/chromium; no browser is ever downloaded), real NoChat
 * nodes serving the built UI, and the UI's accessible contract (docs/UI.md): every part is
 * found by role and accessible name, never by CSS classes or ids.
 *
 *   test("…", { timeout: 170_000 }, async (t) => {
 *     const env = await browserTest(t); // skips (fails under CI=true) without Chromium
 *     if (!env) return;
 *     const { base, newPage } = env;   // an embedded node on a free port, the UI built
 *     const alice = await newPage("alice");
 *     await signUp(alice.page, { username: "alice", displayName: "Alice" });
 *     …
 *   });
 *
 * Every page records uncaught exceptions (`pageerror`), console errors and Content Security
 * Policy violations; the test fails on any of them when it ends (console errors matching an
 * `allowConsole` pattern excepted, e.g. refused connections while a test stops the server). When a
 * test fails, a screenshot of each page still open is written to $TMPDIR/nochat-browser-artifacts.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import {
  chromium,
  type Browser,
  type BrowserContext,
  type BrowserContextOptions,
  type Locator,
  type Page,
} from "playwright-core";
import { api, PASSWORD, type Account } from "./accounts-helpers.js";
import { startNode, REPO_ROOT, type NodeHandle, type StartNodeOptions } from "./processes.js";
import { freePort, isCI } from "./servers.js";
import { eventually, sleep } from "./wait.js";

export { PASSWORD };

// ---- Chromium -----------------------------------------------------------------------------------

/** The system Chromium (Debian's package); CHROMIUM_PATH overrides it. Never downloaded. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

/**
 * Passed on top of playwright's own headless switches (its `headless: true`, the default, adds
 * `--headless` and friends itself; the repeat is harmless). `--no-sandbox` because test machines
 * and containers often run as root or without user namespaces.
 */
export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"];

/** Default time a single UI expectation may take. */
export const UI_TIMEOUT_MS = 10_000;

/**
 * `false` when Chromium is there, otherwise a skip message — for node:test's `skip` option.
 * Under CI (CI=true) a missing Chromium throws instead, so the browser tests fail, never skip.
 */
export function chromiumSkip(): string | false {
  if (existsSync(CHROMIUM_PATH)) return false;
  const reason = `Chromium not found at ${CHROMIUM_PATH} (set CHROMIUM_PATH; browsers are never downloaded)`;
  if (isCI()) throw new Error(`${reason} (CI=true: the browser tests are required)`);
  return `${reason} — browser tests skipped (set CI=true to fail instead)`;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}

// ---- the UI build -------------------------------------------------------------------------------

const BUILD_SCRIPT = path.join(REPO_ROOT, "scripts", "build-ui.mjs");
export const PUBLIC_DIR = path.join(REPO_ROOT, "public");

let uiBuilt: Promise<void> | undefined;

/**
 * Builds the browser UI into public/ with scripts/build-ui.mjs's `buildUi({ watch, outDir })`, once
 * per test process (each test file is its own process). BROWSER_TESTS_NO_BUILD=1 uses public/ as
 * it is (say, while `build-ui --watch` runs).
 */
export function ensureUiBuilt(): Promise<void> {
  uiBuilt ??= (async () => {
    if (process.env.BROWSER_TESTS_NO_BUILD === "1") return;
    if (!existsSync(BUILD_SCRIPT)) {
      throw new Error(`${path.relative(REPO_ROOT, BUILD_SCRIPT)} is missing: the browser UI cannot be built`);
    }
    const mod = (await import(pathToFileURL(BUILD_SCRIPT).href)) as {
      buildUi?: (opts: { watch: boolean; outDir: string }) => Promise<unknown>;
    };
    assert.equal(typeof mod.buildUi, "function", "scripts/build-ui.mjs exports buildUi()");
    const started = Date.now();
    await mod.buildUi!({ watch: false, outDir: PUBLIC_DIR });
    process.stderr.write(`browser tests: UI built into public/ in ${Date.now() - started} ms\n`);
  })();
  return uiBuilt;
}

// ---- nodes --------------------------------------------------------------------------------------

export interface StartedNode {
  node: NodeHandle;
  port: number;
  /** http://127.0.0.1:<port> */
  base: string;
}

/**
 * An embedded NoChat node (all services in one process; SQLite and the file log store in DATA_DIR)
 * serving the built UI on `port` (default: a free one). Give `dataDir` to keep data across a
 * restart: stop() then leaves it alone.
 */
export async function startEmbeddedNode(
  opts: {
    t?: StartNodeOptions["t"];
    port?: number;
    dataDir?: string;
    env?: StartNodeOptions["env"];
    name?: string;
  } = {},
): Promise<StartedNode> {
  await ensureUiBuilt();
  const port = opts.port ?? (await freePort());
  const node = await startNode({
    t: opts.t,
    name: opts.name,
    env: {
      PORT: String(port),
      TRANSPORTER: undefined,
      DATABASE_URL: undefined,
      MONGO_URL: undefined,
      ...(opts.dataDir ? { DATA_DIR: opts.dataDir } : {}),
      ...opts.env,
    },
    ready: { http: port },
    timeoutMs: 60_000,
  });
  return { node, port, base: `http://127.0.0.1:${port}` };
}

// ---- pages and what went wrong on them ----------------------------------------------------------

/** Console errors nobody needs to hear about. */
const ALWAYS_ALLOWED_CONSOLE: RegExp[] = [/favicon\.ico/];

/** Console errors of a page whose server is down on purpose. */
export const NETWORK_DOWN_CONSOLE: RegExp[] = [
  /ERR_CONNECTION_REFUSED/,
  /ERR_CONNECTION_RESET/,
  /ERR_EMPTY_RESPONSE/,
  /ERR_INTERNET_DISCONNECTED/,
  /ERR_FAILED/,
  /WebSocket connection to .* failed/,
  /Failed to load resource/,
  /Failed to fetch/,
  /NetworkError/,
  /net::/,
  /socket\.io/i,
  /\b50[234]\b/,
];

export class PageProblems {
  readonly pageErrors: string[] = [];
  readonly consoleErrors: string[] = [];
  readonly cspViolations: string[] = [];
  readonly dialogs: string[] = [];
  /** Console errors matching one of these are kept but not counted. */
  allowConsole: RegExp[] = [];

  constructor(readonly label: string) {}

  unexpectedConsoleErrors(): string[] {
    const allowed = [...ALWAYS_ALLOWED_CONSOLE, ...this.allowConsole];
    return this.consoleErrors.filter((text) => !allowed.some((re) => re.test(text)));
  }

  /** Fails on any uncaught exception, CSP violation or (not allowed) console error so far. */
  assertClean(what = ""): void {
    const where = `${this.label}${what ? ` (${what})` : ""}`;
    assert.deepEqual(this.pageErrors, [], `uncaught exceptions on ${where}`);
    assert.deepEqual(this.cspViolations, [], `Content Security Policy violations on ${where}`);
    assert.deepEqual(this.unexpectedConsoleErrors(), [], `console errors on ${where}`);
  }
}

export interface UserPage {
  label: string;
  context: BrowserContext;
  page: Page;
  problems: PageProblems;
}

/**
 * A new context (its own cookies and storage: one user) with one page that records its problems.
 * CSP violations are reported from inside the page (`securitypolicyviolation`) and from Chromium's
 * console messages about them.
 */
export async function openUserPage(
  browser: Browser,
  base: string,
  label: string,
  options: BrowserContextOptions = {},
): Promise<UserPage> {
  const context = await browser.newContext({
    baseURL: base,
    viewport: { width: 1280, height: 800 },
    reducedMotion: "reduce",
    locale: "en-US",
    ...options,
  });
  context.setDefaultTimeout(UI_TIMEOUT_MS);
  const problems = new PageProblems(label);
  await context.exposeBinding("__nochatTestCsp", (_source, text: string) => {
    problems.cspViolations.push(text);
  });
  // As source text: tsx (esbuild keepNames) wraps named functions in `__name(…)`, which pages lack;
  // the shim lets functions from this process run in page.evaluate().
  await context.addInitScript({
    content: `globalThis.__name ??= (f) => f;
      document.addEventListener("securitypolicyviolation", (e) => {
        globalThis.__nochatTestCsp?.(e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
          " (" + e.sourceFile + ":" + e.lineNumber + ") " + e.sample);
      });`,
  });
  const page = await context.newPage();
  page.on("pageerror", (err) => problems.pageErrors.push(`${err.name}: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const text = `${msg.text()} @ ${msg.location().url}`;
    if (/Content Security Policy/i.test(text)) problems.cspViolations.push(text);
    else problems.consoleErrors.push(text);
  });
  page.on("dialog", (dialog) => {
    problems.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
  });
  return { label, context, page, problems };
}

/**
 * Records every text a `role=status` element shows (also brief ones a poll would miss) in the
 * page, from the first paint on; read it with statusLog(). Call before the page navigates.
 */
export async function recordStatuses(context: BrowserContext): Promise<void> {
  await context.addInitScript({
    content: `(() => {
      const log = (globalThis.__nochatStatusLog = []);
      let last = new Map();
      const scan = () => {
        const now = new Map();
        document.querySelectorAll("[role=status]").forEach((el, i) => {
          const text = ((el.getAttribute("aria-label") || "") + "|" + el.textContent).trim();
          now.set(i, text);
          if (text !== "|" && last.get(i) !== text) log.push({ t: Date.now(), text: (el.getAttribute("aria-label") || el.textContent || "").trim() });
        });
        last = now;
      };
      new MutationObserver(scan).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
    })();`,
  });
}

/** What role=status elements showed so far (see recordStatuses), oldest first. */
export async function statusLog(page: Page): Promise<{ t: number; text: string }[]> {
  return page.evaluate(
    () => (globalThis as unknown as { __nochatStatusLog?: { t: number; text: string }[] }).__nochatStatusLog ?? [],
  );
}

const ARTIFACTS_DIR = path.join(os.tmpdir(), "nochat-browser-artifacts");

/** Writes a screenshot of the page for a failure report; returns its path (undefined if it failed). */
export async function failureScreenshot(page: Page, name: string): Promise<string | undefined> {
  try {
    if (page.isClosed()) return undefined;
    mkdirSync(ARTIFACTS_DIR, { recursive: true });
    const file = path.join(ARTIFACTS_DIR, `${name.replace(/[^\w.-]+/g, "_")}-${Date.now()}.png`);
    writeFileSync(file, await page.screenshot({ fullPage: false, timeout: 5_000 }));
    return file;
  } catch {
    return undefined;
  }
}

type TestContext = {
  after(fn: () => unknown): void;
  skip(message?: string): void;
  readonly name: string;
  readonly passed?: boolean;
  diagnostic(message: string): void;
};

export interface BrowserTest {
  browser: Browser;
  /** The embedded node (restartable: see startEmbeddedNode). */
  server: StartedNode;
  base: string;
  /** A user's page on `base` (or `opts.base`), checked for problems when the test ends. */
  newPage(label: string, options?: BrowserContextOptions & { base?: string }): Promise<UserPage>;
  /** Pages opened so far. */
  pages: UserPage[];
}

/**
 * Everything a browser test needs: Chromium (skip without it; fail under CI), the UI built, an
 * embedded node (unless `server: false`… then give `base` to newPage), all closed in `t.after`,
 * where every page is also checked for problems and screenshotted when the test failed.
 */
export async function browserTest(
  t: TestContext,
  opts: { server?: false | { dataDir?: string; env?: StartNodeOptions["env"] } } = {},
): Promise<BrowserTest | undefined> {
  const skip = chromiumSkip();
  if (skip) {
    t.skip(skip);
    return undefined;
  }
  await ensureUiBuilt();
  const browser = await launchChromium();
  const pages: UserPage[] = [];
  t.after(async () => {
    const failed = t.passed === false;
    const problems: string[] = [];
    for (const p of pages) {
      if (failed && !p.page.isClosed()) {
        const file = await failureScreenshot(p.page, `${t.name}-${p.label}`);
        if (file) process.stderr.write(`browser tests: screenshot of ${p.label}'s page: ${file}\n`);
      }
      for (const list of [p.problems.pageErrors, p.problems.cspViolations, p.problems.unexpectedConsoleErrors()]) {
        for (const item of list) problems.push(`${p.label}: ${item}`);
      }
      if (p.problems.consoleErrors.length > 0) {
        t.diagnostic(`${p.label}'s console errors: ${JSON.stringify(p.problems.consoleErrors.slice(0, 20))}`);
      }
    }
    await browser.close().catch(() => undefined);
    if (!failed) for (const p of pages) p.problems.assertClean("at the end of the test");
    else if (problems.length) process.stderr.write(`browser tests: page problems:\n  ${problems.join("\n  ")}\n`);
  });
  let server: StartedNode | undefined;
  if (opts.server !== false) server = await startEmbeddedNode({ t, ...(opts.server ?? {}) });
  return {
    browser,
    server: server!,
    base: server?.base ?? "",
    pages,
    async newPage(label, options = {}) {
      const { base, ...contextOptions } = options;
      const target = base ?? server?.base;
      assert.ok(target, "newPage: no server; give a base");
      const p = await openUserPage(browser, target, label, contextOptions);
      pages.push(p);
      return p;
    },
  };
}

// ---- waiting without @playwright/test's expect ---------------------------------------------------

export async function visible(locator: Locator, timeoutMs = UI_TIMEOUT_MS): Promise<Locator> {
  await locator.first().waitFor({ state: "visible", timeout: timeoutMs });
  return locator;
}

export async function gone(locator: Locator, timeoutMs = UI_TIMEOUT_MS): Promise<void> {
  await eventually(`${locator} to be gone`, async () => (await locator.count()) === 0 || !(await anyVisible(locator)), {
    timeoutMs,
  });
}

async function anyVisible(locator: Locator): Promise<boolean> {
  const n = await locator.count();
  for (let i = 0; i < n; i++) if (await locator.nth(i).isVisible()) return true;
  return false;
}

/** Waits until exactly `n` elements match (and stay so for `settleMs`, to catch late duplicates). */
export async function expectCount(locator: Locator, n: number, what: string, settleMs = 0, timeoutMs = UI_TIMEOUT_MS) {
  await eventually(
    `${what}: ${n} of ${locator}`,
    async () => {
      const count = await locator.count();
      if (count !== n) throw new Error(`found ${count}`);
      return true;
    },
    { timeoutMs },
  );
  if (settleMs > 0) {
    await sleep(settleMs);
    assert.equal(await locator.count(), n, `${what}: still exactly ${n} after ${settleMs} ms`);
  }
}

export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** A name that starts with `prefix`, then ends or goes on after a comma or space. */
export function startsWith(prefix: string, flags = ""): RegExp {
  return new RegExp(`^${escapeRegex(prefix)}(?:$|[,\\s])`, flags);
}

// ---- the accessible contract --------------------------------------------------------------------

export const ui = {
  username: (p: Page | Locator) => p.getByRole("textbox", { name: "Username", exact: true }),
  password: (p: Page | Locator) => p.getByRole("textbox", { name: "Password", exact: true }),
  displayName: (p: Page | Locator) => p.getByRole("textbox", { name: "Display name", exact: true }),
  signInButton: (p: Page) => p.getByRole("button", { name: "Sign in", exact: true }),
  signUpButton: (p: Page) => p.getByRole("button", { name: "Sign up", exact: true }),
  rooms: (p: Page) => p.getByRole("navigation", { name: "Rooms", exact: true }),
  /** The room's link in `Rooms`: its name starts with the room's name (maybe `, N unread` after). */
  roomLink: (p: Page, name: string) => ui.rooms(p).getByRole("link", { name: startsWith(name) }),
  title: (p: Page, name?: string) =>
    p.getByRole("heading", { level: 1, ...(name !== undefined ? { name, exact: true } : {}) }),
  log: (p: Page) => p.getByRole("log", { name: "Messages", exact: true }),
  articles: (p: Page) => ui.log(p).getByRole("article"),
  /** Articles of the open room whose text contains `text`. */
  article: (p: Page, text: string | RegExp) => ui.articles(p).filter({ hasText: text }),
  composer: (p: Page) => p.getByRole("textbox", { name: "Message", exact: true }),
  send: (p: Page) => p.getByRole("button", { name: "Send", exact: true }),
  members: (p: Page) => p.getByRole("complementary", { name: "Members", exact: true }),
  notifications: (p: Page) => p.getByRole("button", { name: /^Notifications(?:$|,)/ }),
  menu: (p: Page) => p.getByRole("button", { name: "Menu", exact: true }),
  dialog: (p: Page, name?: string) =>
    name === undefined ? p.getByRole("dialog") : p.getByRole("dialog", { name, exact: true }),
  /** `<name> is typing…` as a status (by its name, or its text when the name comes from content). */
  typing: (p: Page, displayName: string) => {
    const text = `${displayName} is typing…`;
    return p
      .getByRole("status", { name: text, exact: true })
      .or(p.getByRole("status").filter({ hasText: new RegExp(`^\\s*${escapeRegex(text)}\\s*$`) }));
  },
  /** The connection status: `Offline` / `Reconnecting…`. */
  connection: (p: Page) => {
    const re = /^\s*(Offline|Reconnecting…)\s*$/;
    return p.getByRole("status", { name: re }).or(p.getByRole("status").filter({ hasText: re }));
  },
  /**
   * A member row in `Members` whose accessible name starts with the display name and carries the
   * status, e.g. `Bob, online`.
   */
  member: (p: Page, displayName: string, status: "online" | "away" | "offline") => {
    const name = new RegExp(`^${escapeRegex(displayName)}\\b.*\\b${status}\\b`);
    const scope = ui.members(p);
    return scope
      .getByLabel(name)
      .or(scope.getByRole("listitem", { name }))
      .or(scope.getByRole("row", { name }))
      .or(scope.getByRole("button", { name }))
      .or(scope.getByRole("link", { name }));
  },
};

/** The composer's text (a textarea/input value, or the text of a contenteditable). */
export async function composerValue(page: Page): Promise<string> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a DOM element (no DOM lib here)
  return ui.composer(page).evaluate((el: any) => ("value" in el ? String(el.value) : String(el.innerText)));
}

/** Clicks a message action (`Reply`, `Edit`, `Delete`, `React`) on an article, hovering it first. */
export async function messageAction(article: Locator, action: "Reply" | "Edit" | "Delete" | "React"): Promise<void> {
  const one = article.first();
  await one.scrollIntoViewIfNeeded();
  await one.hover();
  await one.getByRole("button", { name: action, exact: true }).click();
}

// ---- flows --------------------------------------------------------------------------------------

export interface Credentials {
  username: string;
  password?: string;
  displayName?: string;
}

/** Waits until the signed-in screen is there (the room list, or at narrow widths its `Menu`). */
export async function waitSignedIn(page: Page, timeoutMs = 15_000): Promise<void> {
  await ui.rooms(page).or(ui.menu(page)).first().waitFor({ state: "visible", timeout: timeoutMs });
}

/** Signs up through the form: `Sign up` switches to it, fill the fields, `Sign up` submits. */
export async function signUp(page: Page, who: Credentials): Promise<void> {
  await page.goto("/");
  await ui.signUpButton(page).click();
  await ui.displayName(page).waitFor();
  await ui.username(page).fill(who.username);
  await ui.password(page).fill(who.password ?? PASSWORD);
  await ui.displayName(page).fill(who.displayName ?? who.username);
  await ui.signUpButton(page).click();
  await waitSignedIn(page);
}

/** Signs in through the form. */
export async function signIn(page: Page, who: Credentials): Promise<void> {
  await page.goto("/");
  await ui.username(page).fill(who.username);
  await ui.password(page).fill(who.password ?? PASSWORD);
  await ui.signInButton(page).click();
  await waitSignedIn(page);
}

/** Opens a room from `Rooms` (through `Menu` first when the list is in a closed drawer). */
export async function openRoom(page: Page, name: string): Promise<void> {
  const link = ui.roomLink(page, name).first();
  const menu = ui.menu(page);
  if ((await menu.isVisible()) && (await menu.getAttribute("aria-expanded")) !== "true") await menu.click();
  await link.waitFor({ state: "visible" });
  await link.click();
  await ui.title(page, name).waitFor();
}

/** `New room` → dialog `New room`: `Room name`, `Topic`, `Private`, `Create`; waits for its title. */
export async function createRoomUi(page: Page, room: { name: string; topic?: string; private?: boolean }) {
  await page.getByRole("button", { name: "New room", exact: true }).click();
  const dialog = ui.dialog(page, "New room");
  await dialog.waitFor();
  await dialog.getByRole("textbox", { name: "Room name", exact: true }).fill(room.name);
  if (room.topic !== undefined) await dialog.getByRole("textbox", { name: "Topic", exact: true }).fill(room.topic);
  if (room.private) await dialog.getByRole("checkbox", { name: "Private", exact: true }).check();
  await dialog.getByRole("button", { name: "Create", exact: true }).click();
  await gone(dialog);
  await ui.title(page, room.name).waitFor();
}

/** Types into the composer and presses Enter; waits until the article shows up in the log. */
export async function sendMessage(page: Page, text: string): Promise<Locator> {
  const composer = ui.composer(page);
  await composer.fill(text);
  await composer.press("Enter");
  const article = ui.article(page, text);
  await visible(article);
  return article;
}

// ---- REST shortcuts -----------------------------------------------------------------------------

export async function joinRest(base: string, who: Account, roomId: number): Promise<void> {
  const res = await api(base, "POST", `/api/rooms/${roomId}/join`, { token: who.accessToken });
  assert.equal(res.status, 200, `join ${roomId}: ${res.status} ${res.text}`);
}
