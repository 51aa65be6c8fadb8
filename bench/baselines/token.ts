/** The baselines' handshake token: `<userId>.<HMAC-SHA256(secret, userId)>`, checked with the secret. */
import { createHmac } from "node:crypto";

export function tokenFor(userId: number, secret: string): string {
  return `${userId}.${createHmac("sha256", secret).update(String(userId)).digest("base64url")}`;
}
