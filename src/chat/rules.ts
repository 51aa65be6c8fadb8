/** Who may do what in a room: pure functions of the caller's role, shared by the chat service and tests. */
import type { MemberRole, RoomKind } from "../contracts/objects.js";

export const isModerator = (role: MemberRole | undefined): boolean => role === "owner" || role === "admin";

/** Room metadata (name, topic): owner or admin; never of a direct room. */
export function canEditRoom(kind: RoomKind, role: MemberRole | undefined): boolean {
  return kind !== "direct" && isModerator(role);
}

/** Kicks: owner or admin, never from a direct room, and only the owner may kick the owner. */
export function canKick(kind: RoomKind, role: MemberRole | undefined, targetRole: MemberRole): boolean {
  return kind !== "direct" && isModerator(role) && (targetRole !== "owner" || role === "owner");
}

/** Leaving: any room but a direct one (it belongs to its two people). */
export const canLeave = (kind: RoomKind): boolean => kind !== "direct";

/** Invites: any member of a public room; owner/admin of a private one; nobody in a direct room. */
export function canInvite(kind: RoomKind, role: MemberRole | undefined): boolean {
  if (kind === "direct" || role === undefined) return false;
  return kind === "public" || isModerator(role);
}

/** Deleting a message: its author, or the room's owner/admin. */
export function canDeleteMessage(authorId: number, userId: number, role: MemberRole | undefined): boolean {
  return authorId === userId || isModerator(role);
}

/** A room is visible to its members, and public rooms to everyone. */
export function canSee(kind: RoomKind, role: MemberRole | undefined): boolean {
  return role !== undefined || kind === "public";
}

/** The key that makes a direct room unique per pair, whatever the order. */
export function directKey(a: number, b: number): string {
  return a < b ? `${a}:${b}` : `${b}:${a}`;
}
