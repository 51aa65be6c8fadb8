/** Password hashing: argon2id with OWASP's minimum parameters (m = 19 MiB, t = 2, p = 1). */
import { hash, verify, type Options } from "@node-rs/argon2";

const ARGON2ID = 2; // Algorithm.Argon2id: a const enum, which isolated-module builds cannot import

const OPTIONS: Options = {
  algorithm: ARGON2ID,
  memoryCost: 19 * 1024,
  timeCost: 2,
  parallelism: 1,
};

export function hashPassword(password: string): Promise<string> {
  return hash(password, OPTIONS);
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

let decoy: Promise<string> | undefined;

/**
 * Verifies against a throwaway hash of the same cost, so that a login for an unknown username
 * takes as long as a wrong password for a real one and timing reveals nothing.
 */
export async function spendVerifyTime(password: string): Promise<false> {
  decoy ??= hashPassword("decoy-password-that-matches-nothing");
  await verifyPassword(await decoy, password);
  return false;
}
