/**
 * `GET /api/openapi.json` (issue 12, item 5) on an embedded node: docs/openapi.json as it is, public,
 * cacheable (Cache-Control, a strong ETag, 304 on If-None-Match); scripts/release.sh ships it. The
 * probes answer on an embedded node too (SQLite): live and ready 200.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { startNode, REPO_ROOT } from "../support/processes.js";
import { freePort } from "../support/servers.js";

const DOC = path.join(REPO_ROOT, "docs", "openapi.json");

test("GET /api/openapi.json serves docs/openapi.json, cacheable; the probes answer on an embedded node", async (t) => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  await startNode({
    t,
    env: { PORT: String(port), TRANSPORTER: undefined, DATABASE_URL: undefined, MONGO_URL: undefined },
    ready: { http: port },
  });

  const file = readFileSync(DOC, "utf8");
  const res = await fetch(`${base}/api/openapi.json`, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  assert.equal(res.status, 200, text.slice(0, 500));
  assert.equal(text, file, "the file as it is");
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal(res.headers.get("cache-control"), "public, max-age=300");
  const etag = res.headers.get("etag");
  assert.match(etag ?? "", /^"sha256-[A-Za-z0-9_-]{43}"$/, "a strong ETag");
  assert.ok(res.headers.get("x-request-id"), "like every API response");

  // No token needed, and a stale one is no reason to refuse it (a public route).
  const withBadToken = await fetch(`${base}/api/openapi.json`, { headers: { authorization: "Bearer nope" } });
  assert.equal(withBadToken.status, 200);
  await withBadToken.arrayBuffer();

  // As a browser or a proxy revalidates (fetch() itself would add `Cache-Control: no-cache`).
  const revalidate = { "cache-control": "max-age=0" };
  const revalidated = await fetch(`${base}/api/openapi.json`, { headers: { ...revalidate, "if-none-match": etag! } });
  assert.equal(revalidated.status, 304);
  assert.equal(await revalidated.text(), "");
  const changed = await fetch(`${base}/api/openapi.json`, {
    headers: { ...revalidate, "if-none-match": '"sha256-other"' },
  });
  assert.equal(changed.status, 200);
  assert.equal(await changed.text(), file);

  // The probes, embedded (SQLite): the process answers, every service's database answers.
  const live = await fetch(`${base}/api/health/live`);
  assert.equal(live.status, 200);
  assert.deepEqual(await live.json(), { status: "ok" });
  const ready = await fetch(`${base}/api/health/ready`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { status: "ok", checked: ["api", "auth", "users", "chat", "notify"] });
});

test("scripts/release.sh packs docs/openapi.json where the gateway reads it", () => {
  const script = readFileSync(path.join(REPO_ROOT, "scripts", "release.sh"), "utf8");
  const inputs = /^INPUTS=\(([^)]*)\)/m.exec(script)?.[1] ?? "";
  assert.match(inputs, /(^|\s)docs\/openapi\.json(\s|$)/, "a change to the document makes a new release");
  // Staged as <release>/docs/openapi.json: PROJECT_ROOT/docs/openapi.json (src/gateway/openapi.ts).
  assert.match(script, /^cp -a docs\/openapi\.json "\$STAGE\/\$name\/docs\/"$/m);
});
