/**
 * The gateway's own response headers: security headers on every response (REST, static files,
 * errors, 404s, socket.io's polling transport) and the cache policy of the static files in public/.
 *
 * The CSP allows nothing inline and no eval: the browser UI is one bundled module script and one
 * stylesheet from /assets/, its service worker is /sw.js, and it talks to the same origin only
 * (REST and socket.io; CSP Level 3 `'self'` also matches the same host's ws:/wss:).
 */
import type { OutgoingHttpHeaders, ServerResponse } from "node:http";
import path from "node:path";

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "worker-src 'self'",
  "manifest-src 'self'",
].join("; ");

export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "Content-Security-Policy": CONTENT_SECURITY_POLICY,
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
  "Cross-Origin-Opener-Policy": "same-origin",
});

/** For the HTTP server's "request" event, before anything answers: whatever answers keeps them. */
export function setSecurityHeaders(res: ServerResponse): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
}

/** For engine.io's "initial_headers"/"headers" events: socket.io's polling responses bypass the listener above. */
export function addSecurityHeaders(headers: OutgoingHttpHeaders | Record<string, unknown>): void {
  Object.assign(headers, SECURITY_HEADERS);
}

/** Hashed build output: the name changes whenever the content does. */
export const IMMUTABLE = "public, max-age=31536000, immutable";
/** Everything else (index.html, sw.js): always revalidated, so a new build is seen at once. */
export const REVALIDATE = "no-cache";

/**
 * serve-static's `setHeaders` for the files under `root` (public/): files in `root/assets/` are
 * immutable, the rest must be revalidated. (send calls it before it sets its own Cache-Control,
 * which it then leaves alone.)
 */
export function staticCacheHeaders(root: string): (res: ServerResponse, filePath: string) => void {
  const assets = path.resolve(root, "assets") + path.sep;
  return (res, filePath) => {
    res.setHeader("Cache-Control", path.resolve(filePath).startsWith(assets) ? IMMUTABLE : REVALIDATE);
  };
}
