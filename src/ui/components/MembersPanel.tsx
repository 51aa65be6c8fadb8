/** The complementary "Members": who is in the room, their presence, and kick for owners/admins. */
import type { MemberRole, User } from "../../contracts/objects.js";
import { errorText } from "../api.js";
import { kickMember } from "../chat.js";
import { currentRoom, me, members, membersOpen, showToast, users } from "../state.js";
import { IconButton } from "./icons.js";
import { Avatar, PresenceDot } from "./Presence.js";

const ORDER = { online: 0, away: 1, offline: 2 } as const;

export function MembersPanel() {
  const room = currentRoom.value;
  if (!room || !membersOpen.value) return null;
  const roomMembers = members.value.get(room.id);
  const list: { user: User; role: MemberRole }[] = [];
  for (const [id, role] of roomMembers ?? []) {
    const user = users.value.get(id);
    if (user) list.push({ user, role });
  }
  list.sort(
    (a, b) => ORDER[a.user.status] - ORDER[b.user.status] || a.user.displayName.localeCompare(b.user.displayName),
  );
  const moderator = room.role === "owner" || room.role === "admin";
  const mine = me.value?.id;
  return (
    <aside class="members" aria-label="Members">
      <div class="members-head">
        <h2>Members</h2>
        <span class="muted">{room.memberCount}</span>
        <IconButton label="Hide members" icon="close" size={16} small onClick={() => (membersOpen.value = false)} />
      </div>
      {!roomMembers && <p class="muted pad">Loading…</p>}
      <ul class="member-list">
        {list.map(({ user, role }) => (
          <li key={user.id} class="member" aria-label={`${user.displayName}, ${user.status}`}>
            <span class="avatar-wrap">
              <Avatar user={user} small />
              <PresenceDot status={user.status} />
            </span>
            <span class="member-names">
              <bdi class="member-name">{user.displayName}</bdi>
              <span class="muted member-username">
                @{user.username}
                {user.id === mine ? " · you" : ""}
              </span>
            </span>
            {role !== "member" && <span class="role-badge">{role}</span>}
            {moderator && user.id !== mine && role !== "owner" && room.kind !== "direct" && (
              <IconButton
                label={`Kick ${user.displayName}`}
                icon="close"
                size={14}
                small
                danger
                title={`Remove ${user.displayName} from the room`}
                onClick={() => kickMember(room.id, user.id).catch((e: unknown) => showToast(errorText(e)))}
              />
            )}
          </li>
        ))}
      </ul>
    </aside>
  );
}
