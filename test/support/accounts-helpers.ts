/**
 * REST for the tests: api() (every answer checked for leaked internals, e.g. stack traces, before
 * the test sees it), fresh usernames, and accounts registered or logged in.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- JSON bodies of a black-box HTTP API */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";

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

/** POST /api/auth/register (201): a new account and its first session. */
export async function register(
  base: string,
  username = uniqueName(),
  { password = PASSWORD, displayName }: { password?: string; displayName?: string } = {},
): Promise<Account> {
  const res = await api(base, "POST", "/api/auth/register", { body: { username, password, displayName } });
  assert.equal(res.status, 201, `register ${username}: ${res.status} ${res.text}`);
  return { ...res.body, password };
}

/** POST /api/auth/login (200): a new session. */
export async function login(base: string, username: string, password = PASSWORD): Promise<Account> {
  const res = await api(base, "POST", "/api/auth/login", { body: { username, password } });
  assert.equal(res.status, 200, `login ${username}: ${res.status} ${res.text}`);
  return { ...res.body, password };
}
