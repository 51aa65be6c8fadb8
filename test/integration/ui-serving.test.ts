/**
 * The gateway serves the built browser UI (scripts/build-ui.mjs → public/): index.html and sw.js
 * revalidated on every load, the hashed assets cached for good, and the security headers — the
 * strict Content-Security-Policy first — on every response: static files, REST, errors, socket.io.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { buildUi } from "../../scripts/build-ui.mjs";
import { startNode } from "../support/processes.js";
import { freePort } from "../support/servers.js";

/** Written out rather than imported, so that a change to the policy has to change this test too. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; " +
  "worker-src 'self'; manifest-src 'self'";
const IMMUTABLE = "public, max-age=31536000, immutable";

function assertSecurityHeaders(res: Response, what: string): void {
  const csp = res.headers.get("content-security-policy");
  assert.equal(csp, CSP, `${what}: Content-Security-Policy`);
  assert.doesNotMatch(csp ?? "", /unsafe-inline|unsafe-eval/, `${what}: nothing unsafe`);
  assert.match(csp ?? "", /(^|; )frame-ancestors 'none'(;|$)/, `${what}: no framing`);
  assert.equal(res.headers.get("x-content-type-options"), "nosniff", `${what}: X-Content-Type-Options`);
  assert.equal(res.headers.get("referrer-policy"), "no-referrer", `${what}: Referrer-Policy`);
  assert.equal(res.headers.get("x-frame-options"), "DENY", `${what}: X-Frame-Options`);
  assert.equal(res.headers.get("cross-origin-opener-policy"), "same-origin", `${what}: Cross-Origin-Opener-Policy`);
}

test("the gateway serves the built UI with cache and security headers", async (t) => {
  const build = await buildUi();
  const [script] = build.scripts;
  const [style] = build.styles;

  const port = await freePort();
  await startNode({
    t,
    env: { PORT: String(port), TRANSPORTER: undefined, DATABASE_URL: undefined, MONGO_URL: undefined },
    ready: { http: port },
  });
  const base = `http://127.0.0.1:${port}`;
  const get = (urlPath: string) => fetch(base + urlPath, { redirect: "manual" });

  await t.test("GET / is index.html, revalidated on every load", async () => {
    const res = await get("/");
    const html = await res.text();
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html\b/);
    assert.equal(res.headers.get("cache-control"), "no-cache");
    assertSecurityHeaders(res, "GET /");
    assert.ok(html.includes(`<script type="module" src="${script}"></script>`), `index.html loads ${script}`);
    assert.ok(html.includes(`<link rel="stylesheet" href="${style}">`), `index.html loads ${style}`);

    const direct = await get("/index.html");
    await direct.arrayBuffer();
    assert.equal(direct.status, 200);
    assert.equal(direct.headers.get("cache-control"), "no-cache");
  });

  await t.test("the hashed assets are cached for good", async () => {
    const js = await get(script);
    const body = await js.text();
    assert.equal(js.status, 200);
    assert.match(js.headers.get("content-type") ?? "", /^(text|application)\/javascript\b/);
    assert.equal(js.headers.get("cache-control"), IMMUTABLE);
    assertSecurityHeaders(js, `GET ${script}`);
    assert.ok(body.length > 0);

    const css = await get(style);
    await css.arrayBuffer();
    assert.equal(css.status, 200);
    assert.match(css.headers.get("content-type") ?? "", /^text\/css\b/);
    assert.equal(css.headers.get("cache-control"), IMMUTABLE);
  });

  await t.test("the service worker is revalidated on every load", async () => {
    const res = await get("/sw.js");
    const body = await res.text();
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^(text|application)\/javascript\b/);
    assert.equal(res.headers.get("cache-control"), "no-cache");
    assertSecurityHeaders(res, "GET /sw.js");
    assert.ok(body.includes(JSON.stringify(script)), "sw.js precaches the current script");
  });

  await t.test("API responses, errors and socket.io carry the security headers too", async () => {
    const health = await get("/api/health");
    await health.arrayBuffer();
    assert.equal(health.status, 200);
    assert.match(health.headers.get("content-type") ?? "", /^application\/json\b/);
    assertSecurityHeaders(health, "GET /api/health");
    assert.equal(health.headers.get("cache-control"), null, "the static cache policy is for static files only");

    const unauthorized = await get("/api/users/me");
    await unauthorized.arrayBuffer();
    assert.equal(unauthorized.status, 401);
    assertSecurityHeaders(unauthorized, "GET /api/users/me without a token");

    const missing = await get("/no-such-file.js");
    await missing.arrayBuffer();
    assert.equal(missing.status, 404);
    assertSecurityHeaders(missing, "GET /no-such-file.js");

    const polling = await get("/socket.io/?EIO=4&transport=polling");
    const handshake = await polling.text();
    assert.equal(polling.status, 200, handshake);
    assert.match(handshake, /"sid"/);
    assertSecurityHeaders(polling, "socket.io polling handshake");
  });
});
