/**
 * Access tokens: short-lived HS256 JWTs (jose) with the algorithm pinned and `exp`, `iss`, `aud`
 * checked. Refresh tokens: opaque random strings, stored only as their SHA-256.
 */
import { createHash, randomBytes } from "node:crypto";
import { jwtVerify, SignJWT } from "jose";
import type { Principal, Role } from "../contracts/objects.js";
import { AppError } from "../errors.js";

const ISSUER = "nochat";
const AUDIENCE = "nochat";
const ALGORITHM = "HS256";

export interface AccessClaims {
  principal: Principal;
  expiresAt: number;
}

export class TokenSigner {
  private readonly key: Uint8Array;

  constructor(
    secret: string,
    private readonly ttlSeconds: number,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  get accessTtlSeconds(): number {
    return this.ttlSeconds;
  }

  sign(principal: Principal): Promise<string> {
    return new SignJWT({
      sid: principal.sessionId,
      name: principal.username,
      roles: principal.roles,
    })
      .setProtectedHeader({ alg: ALGORITHM, typ: "JWT" })
      .setSubject(String(principal.id))
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(`${this.ttlSeconds}s`)
      .sign(this.key);
  }

  /** Any defect — bad signature, `alg: none`, expired, wrong issuer or audience — is UNAUTHORIZED. */
  async verify(token: string): Promise<AccessClaims> {
    try {
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: [ALGORITHM],
        issuer: ISSUER,
        audience: AUDIENCE,
        requiredClaims: ["exp", "sub", "sid"],
      });
      const id = Number(payload.sub);
      if (!Number.isInteger(id) || id <= 0 || typeof payload.sid !== "string") throw new Error("bad claims");
      // Only an account's roles: a token never carries "operator", whatever its payload says.
      const roles = Array.isArray(payload.roles)
        ? (payload.roles as unknown[]).filter((r): r is Role => r === "admin")
        : [];
      return {
        principal: {
          id,
          username: String(payload.name ?? ""),
          roles,
          sessionId: payload.sid,
        },
        expiresAt: (payload.exp as number) * 1000,
      };
    } catch {
      throw AppError.unauthorized("Invalid or expired token");
    }
  }
}

export function newRefreshToken(): string {
  return randomBytes(32).toString("base64url");
}

export function hashRefreshToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}
