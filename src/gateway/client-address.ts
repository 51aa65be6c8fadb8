/**
 * The client address the per-address limits count (login, registration, open sockets): the TCP
 * peer, or — behind TRUST_PROXY proxies — the address the outermost trusted proxy saw. Each proxy
 * appends the address it received from to X-Forwarded-For, so with N trusted proxies the client is
 * the Nth entry from the right (counting the peer itself as the first hop); anything further left
 * was written by the client and is not believed.
 */
import type { IncomingMessage } from "node:http";

export function clientAddress(req: Pick<IncomingMessage, "headers" | "socket">, trustProxy: number): string {
  const peer = normalize(req.socket?.remoteAddress ?? "unknown");
  if (trustProxy <= 0) return peer;
  const header = req.headers["x-forwarded-for"];
  const forwarded = (Array.isArray(header) ? header.join(",") : (header ?? ""))
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  // peer, then X-Forwarded-For from the right: hop i is the address the (i)th proxy saw.
  const hops = [peer, ...forwarded.reverse()];
  return normalize(hops[Math.min(trustProxy, hops.length - 1)]);
}

/** IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is the IPv4 address; at most 64 characters are kept. */
function normalize(address: string): string {
  return address
    .replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, "$1")
    .toLowerCase()
    .slice(0, 64);
}
