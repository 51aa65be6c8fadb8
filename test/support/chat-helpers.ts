/**
 * Chat over REST for the tests: a fresh clientMsgId, shortcuts for rooms and messages that assert
 * success, and the shapes of the contract's Room and Message. REST answers go through
 * accounts-helpers' `api`, which fails on leaked internals. The socket side is in sockets.ts.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import type { Message, Room } from "../../src/contracts/objects.js";
import { api, type Account } from "./accounts-helpers.js";

/** A fresh clientMsgId (8–64 of [A-Za-z0-9_-]). */
export function newClientMsgId(prefix = "c"): string {
  return `${prefix}-${randomBytes(8).toString("hex")}`;
}

// ---- REST shortcuts -----------------------------------------------------------------------------

/** POST /api/rooms → the Room (201). */
export async function createRoom(
  base: string,
  who: Account,
  body: { name: string; kind: "public" | "private"; topic?: string; members?: number[] },
): Promise<Room> {
  const res = await api<Room>(base, "POST", "/api/rooms", { token: who.accessToken, body });
  assert.equal(res.status, 201, `create room: ${res.status} ${res.text}`);
  return res.body;
}

/** POST /api/rooms/:id/messages → the Message (201, or 200 for a repeated clientMsgId). */
export async function sendRest(
  base: string,
  who: Account,
  roomId: number,
  body: string,
  { clientMsgId = newClientMsgId("r"), replyTo }: { clientMsgId?: string; replyTo?: number } = {},
): Promise<Message> {
  const res = await api<Message>(base, "POST", `/api/rooms/${roomId}/messages`, {
    token: who.accessToken,
    body: { body, clientMsgId, ...(replyTo === undefined ? {} : { replyTo }) },
  });
  assert.ok(res.status === 201 || res.status === 200, `send to ${roomId}: ${res.status} ${res.text}`);
  return res.body;
}

/** Every message of a room (paging forward with ?after=), ascending. */
export async function fullHistory(base: string, who: Account, roomId: number): Promise<Message[]> {
  const all: Message[] = [];
  let after = 0;
  for (;;) {
    const res = await api<{ messages: Message[]; hasMore: boolean }>(
      base,
      "GET",
      `/api/rooms/${roomId}/messages?after=${after}&limit=100`,
      { token: who.accessToken },
    );
    assert.equal(res.status, 200, `history: ${res.status} ${res.text}`);
    all.push(...res.body.messages);
    if (!res.body.hasMore || res.body.messages.length === 0) return all;
    after = res.body.messages[res.body.messages.length - 1].seq;
  }
}

/** 1..n */
export function range(n: number, from = 1): number[] {
  return Array.from({ length: n }, (_, i) => i + from);
}

/** Asserts the shape of a Message object of the contract. */
export function assertMessageShape(m: Message, what = "message"): void {
  const label = `${what}: ${JSON.stringify(m)}`;
  assert.ok(Number.isInteger(m.id) && m.id > 0, label);
  assert.ok(Number.isInteger(m.roomId) && m.roomId > 0, label);
  assert.ok(Number.isInteger(m.seq) && m.seq > 0, label);
  assert.ok(Number.isInteger(m.userId) && m.userId > 0, label);
  assert.equal(typeof m.body, "string", label);
  assert.equal(typeof m.clientMsgId, "string", label);
  assert.ok(m.replyTo === null || (Number.isInteger(m.replyTo) && m.replyTo > 0), label);
  assert.ok(!Number.isNaN(Date.parse(m.createdAt)) && m.createdAt.endsWith("Z"), label);
  assert.ok(m.editedAt === null || !Number.isNaN(Date.parse(m.editedAt)), label);
  assert.equal(typeof m.deleted, "boolean", label);
  assert.ok(m.reactions && typeof m.reactions === "object" && !Array.isArray(m.reactions), label);
}

/** Asserts the shape of a Room object of the contract. */
export function assertRoomShape(r: Room, what = "room"): void {
  const label = `${what}: ${JSON.stringify(r)}`;
  assert.ok(Number.isInteger(r.id) && r.id > 0, label);
  assert.equal(typeof r.name, "string", label);
  assert.ok(["public", "private", "direct"].includes(r.kind), label);
  assert.equal(typeof r.topic, "string", label);
  assert.ok(Number.isInteger(r.createdBy), label);
  assert.ok(!Number.isNaN(Date.parse(r.createdAt)), label);
  assert.ok(Number.isInteger(r.memberCount) && r.memberCount >= 0, label);
  assert.ok(Number.isInteger(r.lastSeq) && r.lastSeq >= 0, label);
}
