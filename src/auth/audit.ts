/**
 * What auth's audit events may say about a login attempt's username: the name itself only when the
 * account exists, and otherwise a keyed hash — HMAC-SHA256 under the token secret, 16 hex digits —
 * so repeated attempts on one name can be grouped but a password typed into the username field
 * cannot be read back or guessed from the log.
 */
import { createHmac } from "node:crypto";

export function usernameTag(secret: string, username: string): string {
  return createHmac("sha256", secret).update(username.trim().toLowerCase()).digest("hex").slice(0, 16);
}
