/**
 * REST calls of docs/API.md. A 401 refreshes the access token once and retries; a failed
 * refresh ends the session. An unreachable server is a NetworkError and never signs anyone out.
 */
import type { ErrorBody } from "../contracts/errors.js";
import { refreshSession, session } from "./session.js";

export class ApiError extends Error {
  constructor(
    readonly body: ErrorBody,
    readonly status: number,
  ) {
    super(body.message);
  }
  get code() {
    return this.body.code;
  }
}

/** The server could not be reached (offline, restarting, a proxy error without our JSON). */
export class NetworkError extends Error {}

/** The user-facing text of any failure. */
export function errorText(err: unknown): string {
  if (err instanceof ApiError || err instanceof NetworkError) return err.message;
  return "Something went wrong. Please try again.";
}

export async function api<T>(method: string, path: string, body?: unknown, opts: { auth?: boolean } = {}): Promise<T> {
  const auth = opts.auth ?? true;
  let current = session.value;
  for (let attempt = 0; ; attempt++) {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth && current) headers.Authorization = `Bearer ${current.accessToken}`;
    let res: Response;
    try {
      res = await fetch(`/api${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new NetworkError("Can't reach the server. Check your connection.");
    }
    if (res.status === 401 && auth && current && attempt === 0) {
      current = await refreshSession(current.accessToken).catch(() => {
        throw new NetworkError("Can't reach the server. Check your connection.");
      });
      if (!current) throw new ApiError({ code: "UNAUTHORIZED", message: "Please sign in again." }, 401);
      continue;
    }
    if (res.status === 204) return undefined as T;
    const data = (await res.json().catch(() => null)) as { error?: ErrorBody } | null;
    if (!res.ok) {
      if (!data?.error) {
        if (res.status >= 500) throw new NetworkError("The server is unavailable. Retrying soon.");
        throw new ApiError({ code: "INTERNAL", message: `Request failed (${res.status})` }, res.status);
      }
      throw new ApiError(data.error, res.status);
    }
    return data as T;
  }
}
