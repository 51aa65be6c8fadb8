#!/usr/bin/env node
// @ts-check
/**
 * Builds the browser UI into public/ (served by the gateway's static files):
 *
 *   public/assets/app-HASH.js   src/ui/main.tsx bundled by esbuild (Preact TSX), minified, ES2022
 *   public/assets/app-HASH.css  the CSS it imports
 *   public/assets/*.map         linked source maps (and chunk-HASH.js if code is ever split)
 *   public/index.html           src/ui/index.html with `<!-- styles -->` and `<!-- scripts -->` filled in
 *   public/sw.js                src/ui/sw.ts, with this build's asset list and version defined in
 *
 *   node scripts/build-ui.mjs            one build; assets of earlier builds are removed
 *   node scripts/build-ui.mjs --watch    rebuilds on change (scripts/dev.mjs runs it) until Ctrl-C
 *
 * All generated files are git-ignored. `buildUi()` is also imported by the tests.
 */
import { createHash } from "node:crypto";
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  watch as watchFile,
  writeFileSync,
} from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as esbuild from "esbuild";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const UI_DIR = path.join(ROOT, "src", "ui");
const ENTRY = path.join(UI_DIR, "main.tsx");
const SW_ENTRY = path.join(UI_DIR, "sw.ts");
const TEMPLATE = path.join(UI_DIR, "index.html");
const DEFAULT_OUT_DIR = path.join(ROOT, "public");

/**
 * One output file of the app bundle.
 * @typedef {object} UiAsset
 * @property {string} url           its URL path, `/assets/…`
 * @property {string} file          its absolute path
 * @property {number} bytes
 * @property {string[]} staticImports  URLs of the JS files it imports statically (loaded with it)
 */

/**
 * What one build produced.
 * @typedef {object} UiBuild
 * @property {string} outDir
 * @property {string} version       a hash of the shell (index.html and the asset names), also in sw.js
 * @property {string[]} scripts     URLs of the entry scripts index.html loads
 * @property {string[]} styles      URLs of the stylesheets index.html loads
 * @property {UiAsset[]} assets     every file in assets/ (source maps included)
 * @property {string[]} precache    what the service worker caches on install, besides `/` and index.html
 */

/**
 * @typedef {object} BuildOptions
 * @property {boolean} [watch]   keep rebuilding on change; stop with the result's `stop()`
 * @property {string} [outDir]   default: <repo>/public
 * @property {(message: string) => void} [log]  watch mode's progress and errors; default stderr
 */

/** @param {string} outDir @returns {esbuild.BuildOptions & { metafile: true }} */
function appOptions(outDir) {
  return {
    absWorkingDir: ROOT,
    entryPoints: { app: ENTRY },
    outdir: path.join(outDir, "assets"),
    entryNames: "[name]-[hash]",
    chunkNames: "chunk-[hash]",
    assetNames: "[name]-[hash]",
    bundle: true,
    format: "esm",
    splitting: true,
    platform: "browser",
    target: "es2022",
    minify: true,
    sourcemap: "linked",
    jsx: "automatic",
    jsxImportSource: "preact",
    tsconfig: path.join(UI_DIR, "tsconfig.json"),
    define: { "process.env.NODE_ENV": '"production"' },
    metafile: true,
    logLevel: "silent",
  };
}

/**
 * @param {string} outDir
 * @param {UiBuild} build
 * @returns {esbuild.BuildOptions}
 */
function swOptions(outDir, build) {
  return {
    absWorkingDir: ROOT,
    entryPoints: [SW_ENTRY],
    outfile: path.join(outDir, "sw.js"),
    bundle: true,
    format: "iife",
    platform: "browser",
    target: "es2022",
    minify: true,
    sourcemap: "linked",
    tsconfig: path.join(UI_DIR, "sw.tsconfig.json"),
    define: {
      __NOCHAT_ASSETS__: JSON.stringify(build.precache),
      __NOCHAT_BUILD__: JSON.stringify(build.version),
    },
    logLevel: "silent",
  };
}

/** @param {string} url */
const escapeAttr = (url) => url.replace(/&/g, "&amp;").replace(/"/g, "&quot;");

/**
 * index.html from the template: one placeholder for the stylesheets, one for the scripts.
 * @param {string} template
 * @param {{ scripts: string[], styles: string[] }} refs
 */
export function renderIndex(template, { scripts, styles }) {
  for (const placeholder of ["<!-- styles -->", "<!-- scripts -->"]) {
    if (!template.includes(placeholder)) throw new Error(`${path.relative(ROOT, TEMPLATE)} has no ${placeholder}`);
  }
  const links = styles.map((url) => `<link rel="stylesheet" href="${escapeAttr(url)}">`).join("\n    ");
  const tags = scripts.map((url) => `<script type="module" src="${escapeAttr(url)}"></script>`).join("\n    ");
  return template.replace("<!-- styles -->", () => links).replace("<!-- scripts -->", () => tags);
}

/**
 * Reads esbuild's metafile: which files came out, which is the entry script and its CSS.
 * @param {esbuild.Metafile} metafile
 * @param {string} outDir
 * @returns {Omit<UiBuild, "version" | "precache">}
 */
function outputsOf(metafile, outDir) {
  const assetsDir = path.join(outDir, "assets");
  /** @param {string} key */
  const urlOf = (key) => "/assets/" + path.relative(assetsDir, path.resolve(ROOT, key)).split(path.sep).join("/");
  /** @type {string[]} */
  const scripts = [];
  /** @type {string[]} */
  const styles = [];
  /** @type {UiAsset[]} */
  const assets = [];
  for (const [key, output] of Object.entries(metafile.outputs)) {
    const file = path.resolve(ROOT, key);
    assets.push({
      url: urlOf(key),
      file,
      bytes: output.bytes,
      staticImports: output.imports
        .filter((imp) => imp.kind === "import-statement" && !imp.external)
        .map((imp) => urlOf(imp.path)),
    });
    if (output.entryPoint && path.resolve(ROOT, output.entryPoint) === ENTRY) {
      scripts.push(urlOf(key));
      if (output.cssBundle) styles.push(urlOf(output.cssBundle));
    }
  }
  if (scripts.length !== 1) throw new Error(`expected one entry script in the build, found ${scripts.length}`);
  assets.sort((a, b) => a.url.localeCompare(b.url));
  return { outDir, scripts, styles, assets };
}

/** Writes through a temp file, so the server never serves half a file. @param {string} file @param {string} text */
function writeAtomically(file, text) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/**
 * After the app bundle is written: sw.js, then index.html, then the old assets go.
 * @param {esbuild.Metafile} metafile
 * @param {string} outDir
 * @returns {Promise<UiBuild>}
 */
async function finish(metafile, outDir) {
  const outputs = outputsOf(metafile, outDir);
  const index = renderIndex(readFileSync(TEMPLATE, "utf8"), outputs);
  const precache = outputs.assets.filter((a) => !a.url.endsWith(".map")).map((a) => a.url);
  const version = createHash("sha256")
    .update(index)
    .update("\0")
    .update(precache.join("\n"))
    .digest("hex")
    .slice(0, 12);
  /** @type {UiBuild} */
  const build = { ...outputs, version, precache };

  await esbuild.build(swOptions(outDir, build));
  writeAtomically(path.join(outDir, "index.html"), index);

  const keep = new Set(outputs.assets.map((a) => path.basename(a.file)));
  const assetsDir = path.join(outDir, "assets");
  for (const name of readdirSync(assetsDir)) {
    if (!keep.has(name)) rmSync(path.join(assetsDir, name), { recursive: true, force: true });
  }
  return build;
}

/** @param {unknown} err */
function describe(err) {
  const failure = /** @type {Partial<esbuild.BuildFailure>} */ (err);
  if (Array.isArray(failure.errors) && failure.errors.length > 0) {
    return esbuild.formatMessagesSync(failure.errors, { kind: "error", color: false }).join("\n");
  }
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/**
 * Builds the UI into `outDir`. With `watch`, keeps rebuilding on change and resolves after the
 * first build (failed or not); `stop()` ends watching.
 *
 * @overload
 * @param {BuildOptions & { watch?: false }} [options]
 * @returns {Promise<UiBuild>}
 */
/**
 * @overload
 * @param {BuildOptions & { watch: true }} options
 * @returns {Promise<{ stop(): Promise<void>, current(): UiBuild | undefined }>}
 */
/**
 * @param {BuildOptions} [options]
 * @returns {Promise<UiBuild | { stop(): Promise<void>, current(): UiBuild | undefined }>}
 */
export async function buildUi({
  watch = false,
  outDir = DEFAULT_OUT_DIR,
  log = (m) => process.stderr.write(`${m}\n`),
} = {}) {
  outDir = path.resolve(outDir);
  mkdirSync(path.join(outDir, "assets"), { recursive: true });

  if (!watch) {
    const result = await esbuild.build(appOptions(outDir));
    return finish(result.metafile, outDir);
  }

  /** @type {UiBuild | undefined} */
  let current;
  /** @type {esbuild.Metafile | undefined} */
  let lastMetafile;
  /** @type {(value?: unknown) => void} */
  let firstDone = () => {};
  const first = new Promise((resolve) => (firstDone = resolve));

  /** @param {esbuild.Metafile} metafile @param {number} started */
  const afterBuild = async (metafile, started) => {
    try {
      current = await finish(metafile, outDir);
      log(`ui: built ${current.scripts.join(", ")} in ${Math.round(performance.now() - started)} ms`);
    } catch (err) {
      log(`ui: build failed\n${describe(err)}`);
    }
  };

  /** @type {esbuild.Plugin} */
  const shell = {
    name: "nochat-shell",
    setup(build) {
      let started = performance.now();
      build.onStart(() => {
        started = performance.now();
      });
      build.onEnd(async (result) => {
        if (result.errors.length > 0) {
          log(
            `ui: build failed\n${esbuild.formatMessagesSync(result.errors, { kind: "error", color: false }).join("\n")}`,
          );
        } else if (result.metafile) {
          lastMetafile = result.metafile;
          await afterBuild(result.metafile, started);
        }
        firstDone();
      });
    },
  };

  const ctx = await esbuild.context({ ...appOptions(outDir), plugins: [shell] });
  await ctx.watch();
  await first;

  // sw.ts is not part of the app's graph: rebuild sw.js (with the last asset list) when it changes.
  /** @type {NodeJS.Timeout | undefined} */
  let swTimer;
  const swWatcher = watchFile(UI_DIR, (_event, name) => {
    if (name !== path.basename(SW_ENTRY) && name !== path.basename(TEMPLATE)) return;
    clearTimeout(swTimer);
    swTimer = setTimeout(() => {
      if (lastMetafile && statSync(SW_ENTRY, { throwIfNoEntry: false }))
        void afterBuild(lastMetafile, performance.now());
    }, 50);
  });

  return {
    current: () => current,
    async stop() {
      clearTimeout(swTimer);
      swWatcher.close();
      await ctx.dispose();
    },
  };
}

/** @param {number} bytes */
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;

async function main() {
  const args = process.argv.slice(2);
  const unknown = args.filter((arg) => arg !== "--watch");
  if (unknown.length > 0) {
    process.stderr.write(`usage: node scripts/build-ui.mjs [--watch]\n`);
    process.exit(2);
  }
  if (args.includes("--watch")) {
    const watcher = await buildUi({ watch: true });
    process.stderr.write("ui: watching src/ui (Ctrl-C to stop)\n");
    for (const signal of /** @type {const} */ (["SIGINT", "SIGTERM"])) {
      process.once(signal, () => void watcher.stop().then(() => process.exit(0)));
    }
    return;
  }
  const started = performance.now();
  try {
    const build = await buildUi();
    const lines = build.assets.filter((a) => !a.url.endsWith(".map")).map((a) => `  public${a.url}  ${kb(a.bytes)}`);
    process.stdout.write(
      `ui: built in ${Math.round(performance.now() - started)} ms (version ${build.version})\n` +
        `${lines.join("\n")}\n  public/index.html\n  public/sw.js\n`,
    );
  } catch (err) {
    process.stderr.write(`ui: build failed\n${describe(err)}\n`);
    process.exit(1);
  }
}

// No top-level await: the tests (CommonJS under tsx) load this file with require().
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((err) => {
    process.stderr.write(`ui: ${describe(err)}\n`);
    process.exit(1);
  });
}
