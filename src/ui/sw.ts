/**
 * NoChat's service worker (public/sw.js, built by scripts/build-ui.mjs): keeps the app shell —
 * `/`, index.html and this build's hashed assets — so that a reload while the server is down still
 * loads the UI, which then shows itself offline and reconnects.
 *
 * - install: precache the shell into a cache named after the build; activate at once.
 * - activate: delete earlier builds' shell caches; take over open pages.
 * - navigations: network first; when the network fails (or a proxy answers 5xx), the cached `/`.
 * - `/assets/*`: cache first (the names are content hashes, so a cached file is never stale).
 * - `/api/`, `/socket.io/` and everything else: not intercepted.
 *
 * The cached `/` is never replaced by a later navigation: it must stay the index.html that refers
 * to the assets of this cache. A new build changes sw.js (its asset list and version), so browsers
 * install the new worker with the new shell.
 */
/// <reference lib="webworker" />

/** This build's hashed files (`/assets/…`), injected by the build. */
declare const __NOCHAT_ASSETS__: readonly string[];
/** A hash of this build's shell, injected by the build. */
declare const __NOCHAT_BUILD__: string;
declare const self: ServiceWorkerGlobalScope;
// A module, so that `self` above is this file's own declaration.
export {};

const CACHE_PREFIX = "nochat-shell-";
const CACHE = CACHE_PREFIX + __NOCHAT_BUILD__;
const SHELL = ["/", "/index.html", ...__NOCHAT_ASSETS__];

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // Past the HTTP cache: the shell must be the one this worker was built with.
      await cache.addAll(SHELL.map((url) => new Request(url, { cache: "reload" })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      const old = names.filter((name) => name.startsWith(CACHE_PREFIX) && name !== CACHE);
      await Promise.all(old.map((name) => caches.delete(name)));
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (isPassThrough(url.pathname)) return;
  if (request.mode === "navigate") event.respondWith(networkFirst(request));
  else if (url.pathname.startsWith("/assets/")) event.respondWith(cacheFirst(request));
});

function isPassThrough(pathname: string): boolean {
  return (
    pathname === "/api" ||
    pathname.startsWith("/api/") ||
    pathname === "/socket.io" ||
    pathname.startsWith("/socket.io/")
  );
}

async function networkFirst(request: Request): Promise<Response> {
  try {
    const response = await fetch(request);
    if (response.status < 500) return response;
    return (await caches.match("/", { cacheName: CACHE })) ?? response;
  } catch (err) {
    const shell = await caches.match("/", { cacheName: CACHE });
    if (shell) return shell;
    throw err;
  }
}

async function cacheFirst(request: Request): Promise<Response> {
  const cached = await caches.match(request, { cacheName: CACHE });
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) {
    const copy = response.clone();
    void caches.open(CACHE).then((cache) => cache.put(request, copy));
  }
  return response;
}
