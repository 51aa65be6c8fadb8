/**
 * Small REST and socket.io client helpers for the accounts integration tests
 * (test/integration/accounts*.test.ts). Every REST answer is checked for leaked internals
 * (stack traces) before the test sees it.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies of a black-box HTTP API */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { io, type Socket } from "socket.io-client";

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON, or undefined for an empty / non-JSON body. */
  body: T;
}

export interface ApiOptions {
  token?: string;
  /** JSON-encoded unless `raw` is given. */
  body?: unknown;
  /** Sent as is (with `contentType`, default application/json). */
  raw?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

/** A stack trace line ("    at fn (file.ts:1:2)"), a `stack` key, or a source path. */
const LEAK_PATTERNS: RegExp[] = [
  /(^|\\n|\n)\s*at\s+\S/,
  /\bat\s+[\w$.<>]+\s+\([^)]*:\d+:\d+\)/,
  /"stack"\s*:/,
  /node_modules/,
  /\.ts:\d+:\d+/,
];

export function assertNoLeak(text: string, what = "response"): void {
  for (const pattern of LEAK_PATTERNS) {
    assert.doesNotMatch(text, pattern, `${what} leaks internals (${String(pattern)}): ${text.slice(0, 500)}`);
  }
}

export async function api<T = any>(
  base: string,
  method: string,
  path: string,
  opts: ApiOptions = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let payload: string | undefined;
  if (opts.raw !== undefined) {
    payload = opts.raw;
    headers["content-type"] ??= opts.contentType ?? "application/json";
  } else if (opts.body !== undefined) {
    payload = JSON.stringify(opts.body);
    headers["content-type"] ??= opts.contentType ?? "application/json";
  }
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: payload,
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  assertNoLeak(text, `${method} ${path} → ${res.status}`);
  let body: any;
  if (text.length > 0) {
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
  }
  return { status: res.status, headers: res.headers, text, body };
}

/** A fresh username (≤ 32 characters of [a-z0-9_]) starting with `prefix`. */
export function uniqueName(prefix = "u"): string {
  return `${prefix}_${randomBytes(4).toString("hex")}`.slice(0, 32);
}

export const PASSWORD = "correct horse battery staple";

export interface Account {
  user: { id: number; username: string; [k: string]: unknown };
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  password: string;
}

export async function register(base: string, username = uniqueName(), password = PASSWORD): Promise<Account> {
  const res = await api(base, "POST", "/api/auth/register", { body: { username, password } });
  assert.equal(res.status, 201, `register ${username}: ${res.status} ${res.text}`);
  return { ...res.body, password };
}

export async function login(base: string, username: string, password = PASSWORD): Promise<Account> {
  const res = await api(base, "POST", "/api/auth/login", { body: { username, password } });
  assert.equal(res.status, 200, `login ${username}: ${res.status} ${res.text}`);
  return { ...res.body, password };
}

// ---- socket.io ----------------------------------------------------------------------------------

export type ConnectOutcome = { ok: true; socket: Socket } | { ok: false; message: string };

/**
 * Opens a socket.io connection (websocket only, no reconnection) and resolves once it connected
 * or was refused. `token: undefined` sends no auth at all.
 */
export function openSocket(base: string, token: string | undefined, timeoutMs = 10_000): Promise<ConnectOutcome> {
  const socket = io(base, {
    path: "/socket.io",
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    timeout: timeoutMs,
    ...(token === undefined ? {} : { auth: { token } }),
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.close();
      resolve({ ok: false, message: `no connect or connect_error within ${timeoutMs} ms` });
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve({ ok: true, socket });
    });
    socket.once("connect_error", (err: Error) => {
      clearTimeout(timer);
      socket.close();
      resolve({ ok: false, message: err.message });
    });
  });
}

/** Connects and asserts success; the socket is closed by `t.after` when a context is given. */
export async function connectSocket(
  base: string,
  token: string,
  t?: { after(fn: () => unknown): void },
): Promise<Socket> {
  const outcome = await openSocket(base, token);
  assert.ok(outcome.ok, `socket connect failed: ${outcome.ok ? "" : outcome.message}`);
  t?.after(() => outcome.socket.close());
  return outcome.socket;
}

/** Asserts the handshake is refused with connect_error "UNAUTHORIZED". */
export async function expectSocketRefused(base: string, token: string | undefined, what: string): Promise<void> {
  const outcome = await openSocket(base, token);
  if (outcome.ok) {
    outcome.socket.close();
    assert.fail(`${what}: the socket handshake was accepted`);
  }
  assert.equal(outcome.message, "UNAUTHORIZED", `${what}: connect_error message`);
}

/** Resolves with what happened to a socket within `timeoutMs`: the events seen, in order. */
export function watchRevocation(socket: Socket): {
  events: { name: string; at: number }[];
  disconnected: Promise<{ reason: string; at: number }>;
} {
  const events: { name: string; at: number }[] = [];
  socket.on("session:revoked", () => events.push({ name: "session:revoked", at: Date.now() }));
  const disconnected = new Promise<{ reason: string; at: number }>((resolve) => {
    socket.once("disconnect", (reason: string) => {
      events.push({ name: "disconnect", at: Date.now() });
      resolve({ reason, at: Date.now() });
    });
  });
  return { events, disconnected };
}
