/**
 * src/log/redact.ts: the audit log's last line of defence — values under keys that name a secret
 * never reach the store, at any depth; everything else is kept as it is.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { REDACTED, redact } from "../../src/log/redact.js";

describe("redact", () => {
  it("blanks values under secret-looking keys, at any depth and in arrays", () => {
    const input = {
      userId: 7,
      username: "ann",
      password: "hunter2",
      newPassword: "x",
      passwordHash: "$argon2id$v=19$…",
      accessToken: "eyJ.a.b",
      refresh_token: "r",
      nested: { Authorization: "Bearer t", cookie: "c", ok: [1, { clientSecret: "s", keep: "k" }] },
    };
    assert.deepEqual(redact(input), {
      userId: 7,
      username: "ann",
      password: REDACTED,
      newPassword: REDACTED,
      passwordHash: REDACTED,
      accessToken: REDACTED,
      refresh_token: REDACTED,
      nested: { Authorization: REDACTED, cookie: REDACTED, ok: [1, { clientSecret: REDACTED, keep: "k" }] },
    });
    assert.equal(input.password, "hunter2", "the input is not modified");
  });

  it("leaves plain values, null and ordinary objects alone", () => {
    for (const value of [null, undefined, 3, "text", true]) assert.equal(redact(value), value);
    const event = { roomId: 1, mentions: ["bob"], reason: "bad_password", fields: ["displayName"] };
    assert.deepEqual(redact(event), event, "a value that merely mentions a password is kept");
  });
});
