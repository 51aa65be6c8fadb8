/** The room rules of src/chat/rules.ts, each role against each kind of room. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canDeleteMessage, canEditRoom, canInvite, canKick, canLeave, canSee } from "../../src/chat/rules.js";

describe("room rules", () => {
  it("editing a room: its owner or admin, never a direct room", () => {
    assert.deepEqual(
      (["owner", "admin", "member", undefined] as const).map((role) => canEditRoom("public", role)),
      [true, true, false, false],
    );
    assert.equal(canEditRoom("direct", "owner"), false);
  });

  it("kicking: owner or admin, only the owner kicks the owner, nobody in a direct room", () => {
    assert.equal(canKick("public", "admin", "member"), true);
    assert.equal(canKick("private", "owner", "admin"), true);
    assert.equal(canKick("public", "admin", "owner"), false);
    assert.equal(canKick("public", "owner", "owner"), true);
    assert.equal(canKick("public", "member", "member"), false);
    assert.equal(canKick("direct", "owner", "member"), false);
  });

  it("inviting, leaving, seeing, deleting", () => {
    assert.deepEqual(
      [canInvite("public", "member"), canInvite("private", "member"), canInvite("private", "admin")],
      [true, false, true],
    );
    assert.equal(canInvite("direct", "owner"), false);
    assert.deepEqual([canLeave("public"), canLeave("private"), canLeave("direct")], [true, true, false]);
    assert.deepEqual(
      [canSee("public", undefined), canSee("private", undefined), canSee("private", "member")],
      [true, false, true],
    );
    assert.deepEqual(
      [canDeleteMessage(1, 1, "member"), canDeleteMessage(1, 2, "member"), canDeleteMessage(1, 2, "admin")],
      [true, false, true],
    );
  });
});
