/**
 * The browser UI's first load stays small: every JS file the generated index.html loads — its
 * script tags and what they import statically — is at most 100 KB gzipped (level 9). The build's
 * file names are content hashes, and index.html refers to exactly the files the build wrote.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { buildUi, type UiBuild } from "../../scripts/build-ui.mjs";

const BUDGET_BYTES = 100 * 1024;
/** esbuild's [hash]: 8 characters of base32. */
const HASHED = /^\/assets\/(app|chunk)-[A-Z2-7]{8}\.(js|css)$/;

/** The values of `attr` on every `<tag …>` in the html. */
function attributes(html: string, tag: string, attr: string): string[] {
  const found: string[] = [];
  for (const [element] of html.matchAll(new RegExp(`<${tag}\\b[^>]*>`, "gi"))) {
    const value = new RegExp(`\\s${attr}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, "i").exec(element);
    if (value) found.push(value[1] ?? value[2] ?? value[3]);
  }
  return found;
}

describe("browser UI build", () => {
  let outDir: string;
  let build: UiBuild;
  let html: string;

  before(async () => {
    outDir = mkdtempSync(path.join(os.tmpdir(), "nochat-ui-budget-"));
    build = await buildUi({ outDir });
    html = readFileSync(path.join(outDir, "index.html"), "utf8");
  });
  after(() => rmSync(outDir, { recursive: true, force: true }));

  /** A URL path of the build → its file in outDir. */
  const fileOf = (url: string) => path.join(outDir, ...url.split("/").filter(Boolean));

  it("loads at most 100 KB of gzipped JavaScript on first load", () => {
    const scripts = attributes(html, "script", "src");
    assert.ok(scripts.length > 0, "index.html loads a script");

    // The script tags, then everything they import statically, transitively.
    const byUrl = new Map(build.assets.map((asset) => [asset.url, asset]));
    const loaded = new Set<string>();
    const queue = [...scripts];
    while (queue.length > 0) {
      const url = queue.shift()!;
      if (loaded.has(url)) continue;
      loaded.add(url);
      const asset = byUrl.get(url);
      assert.ok(asset, `${url} (loaded by index.html) is a file of the build`);
      queue.push(...asset.staticImports);
    }

    let total = 0;
    const sizes: string[] = [];
    for (const url of loaded) {
      const file = fileOf(url);
      assert.ok(existsSync(file), `${url} was written`);
      const gzipped = gzipSync(readFileSync(file), { level: 9 }).length;
      total += gzipped;
      sizes.push(`${url}: ${gzipped} B`);
    }
    const report = `${sizes.join(", ")}; total ${total} B (${(total / 1024).toFixed(1)} KB) of ${BUDGET_BYTES} B`;
    console.log(`first-load JavaScript, gzipped: ${report}`);
    assert.ok(total > 0, "the scripts are not empty");
    assert.ok(total <= BUDGET_BYTES, `first-load JavaScript over budget: ${report}`);
  });

  it("names its JS and CSS by content hash, and index.html loads exactly them", async () => {
    assert.equal(build.scripts.length, 1);
    assert.ok(build.styles.length >= 1, "the CSS imported by main.tsx is a stylesheet of its own");
    for (const url of [...build.scripts, ...build.styles]) assert.match(url, HASHED);

    const scripts = attributes(html, "script", "src");
    // Stylesheets only (the favicon is an inline data: URL).
    const styles = attributes(html, "link", "href").filter((href) => !href.startsWith("data:"));
    assert.deepEqual(scripts, build.scripts);
    assert.deepEqual(styles, build.styles);
    assert.match(html, /<script type="module" src="\/assets\/app-[A-Z2-7]{8}\.js"><\/script>/);
    assert.match(html, /<link rel="stylesheet" href="\/assets\/app-[A-Z2-7]{8}\.css">/);
    assert.doesNotMatch(html, /<!-- (styles|scripts) -->/, "both placeholders are filled in");

    // Everything in assets/ is named by its content (and so may be cached for good).
    for (const name of readdirSync(path.join(outDir, "assets"))) {
      assert.match(name, /^[\w.-]+-[A-Z2-7]{8}\.[a-z0-9]+(\.map)?$/);
    }
    // The same sources give the same names (content, not time or place, decides them).
    const again = mkdtempSync(path.join(os.tmpdir(), "nochat-ui-budget-"));
    try {
      const second = await buildUi({ outDir: again });
      assert.deepEqual(second.scripts, build.scripts);
      assert.deepEqual(second.styles, build.styles);
      assert.equal(second.version, build.version);
    } finally {
      rmSync(again, { recursive: true, force: true });
    }
  });

  it("index.html has nothing inline the Content-Security-Policy would block", () => {
    for (const [, attrs, body] of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
      assert.match(attrs, /\ssrc=/, "every script is a file");
      assert.equal(body.trim(), "", "no inline script");
    }
    assert.doesNotMatch(html, /<style\b/i, "no inline <style>");
    assert.doesNotMatch(html, /\sstyle\s*=/i, "no style attributes");
    assert.doesNotMatch(html, /\son[a-z]+\s*=/i, "no inline event handlers");
  });

  it("writes a service worker that precaches this build's shell", () => {
    const sw = readFileSync(path.join(outDir, "sw.js"), "utf8");
    for (const url of [...build.scripts, ...build.styles]) assert.ok(build.precache.includes(url), `precaches ${url}`);
    assert.ok(
      build.precache.every((url) => url.startsWith("/assets/") && !url.endsWith(".map")),
      "only the assets themselves",
    );
    for (const url of build.precache) assert.ok(sw.includes(JSON.stringify(url)), `sw.js precaches ${url}`);
    assert.ok(sw.includes(build.version), "sw.js carries the build version");
    assert.doesNotMatch(sw, /__NOCHAT_(ASSETS|BUILD)__/, "the build's values are defined in");
  });

  it("removes the assets of earlier builds", async () => {
    const stale = path.join(outDir, "assets", "app-AAAAAAAA.js");
    writeFileSync(stale, "// an earlier build\n");
    await buildUi({ outDir });
    assert.equal(existsSync(stale), false);
    for (const url of build.precache) assert.ok(existsSync(fileOf(url)), `${url} kept`);
  });
});
