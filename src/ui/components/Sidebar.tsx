/** The room list (navigation "Rooms"), the buttons that add rooms, and the signed-in user. */
import type { Room } from "../../contracts/objects.js";
import { setMyStatus, signOut } from "../chat.js";
import {
  currentRoomId,
  directPeer,
  drawerOpen,
  me,
  openDialog,
  roomTitle,
  showToast,
  sortedRooms,
  unseenCount,
} from "../state.js";
import { errorText } from "../api.js";
import { Icon, IconButton } from "./icons.js";
import { Avatar, PresenceDot } from "./Presence.js";

/** "general" or "general, 3 unread" (UI.md); mentions go in the description. */
function roomLabel(room: Room): string {
  return room.unread ? `${roomTitle(room)}, ${room.unread} unread` : roomTitle(room);
}

function RoomLink({ room }: { room: Room }) {
  const current = currentRoomId.value === room.id;
  const peer = room.kind === "direct" ? directPeer(room) : undefined;
  const unread = room.unread ?? 0;
  return (
    <li>
      <a
        href={`#/rooms/${room.id}`}
        class={`room-link${current ? " current" : ""}${unread ? " has-unread" : ""}`}
        aria-current={current ? "page" : undefined}
        aria-label={roomLabel(room)}
        aria-description={
          room.mentions ? `${room.mentions} ${room.mentions === 1 ? "mention" : "mentions"} of you` : undefined
        }
        onClick={() => (drawerOpen.value = false)}
      >
        <span class="room-link-icon" aria-hidden="true">
          {room.kind === "direct" ? (
            <PresenceDot status={peer?.status ?? "offline"} />
          ) : (
            <Icon name={room.kind === "private" ? "lock" : "hash"} size={15} />
          )}
        </span>
        <bdi class="room-link-name">{roomTitle(room)}</bdi>
        {unread > 0 && (
          <span class={room.mentions ? "badge badge-mention" : "badge"} aria-hidden="true">
            {room.mentions ? `@${room.mentions}` : unread > 99 ? "99+" : unread}
          </span>
        )}
      </a>
    </li>
  );
}

export function Sidebar() {
  const list = sortedRooms.value;
  const channels = list.filter((r) => r.kind !== "direct");
  const direct = list.filter((r) => r.kind === "direct");
  const user = me.value;
  const unseen = unseenCount.value;
  const away = user?.status === "away";
  return (
    <div class={`sidebar${drawerOpen.value ? " open" : ""}`} id="sidebar">
      <div class="sidebar-head">
        <span class="brand">
          <span class="brand-mark" aria-hidden="true">
            N
          </span>
          NoChat
        </span>
        <button
          type="button"
          class="icon-button notifications-button"
          aria-label={unseen ? `Notifications, ${unseen} unseen` : "Notifications"}
          onClick={() => (openDialog.value = "notifications")}
        >
          <Icon name="bell" />
          {unseen > 0 && (
            <span class="badge badge-mention" aria-hidden="true">
              {unseen > 99 ? "99+" : unseen}
            </span>
          )}
        </button>
      </div>
      <nav aria-label="Rooms" class="room-nav">
        <div class="section-head">
          <h2>Rooms</h2>
          <IconButton
            label="Browse rooms"
            icon="search"
            size={16}
            small
            onClick={() => (openDialog.value = "browse")}
          />
          <IconButton label="New room" icon="plus" size={16} small onClick={() => (openDialog.value = "new-room")} />
        </div>
        <ul class="room-list">
          {channels.map((r) => (
            <RoomLink key={r.id} room={r} />
          ))}
          {channels.length === 0 && <li class="empty-hint">No rooms yet — create or browse one.</li>}
        </ul>
        <div class="section-head">
          <h2>Direct messages</h2>
          <IconButton
            label="New direct message"
            icon="plus"
            size={16}
            small
            onClick={() => (openDialog.value = "direct")}
          />
        </div>
        <ul class="room-list">
          {direct.map((r) => (
            <RoomLink key={r.id} room={r} />
          ))}
        </ul>
      </nav>
      {user && (
        <div class="sidebar-foot">
          <span class="avatar-wrap">
            <Avatar user={user} />
            <PresenceDot status={user.status === "away" ? "away" : "online"} />
          </span>
          <div class="me">
            <bdi class="me-name">{user.displayName}</bdi>
            <span class="me-status">{away ? "Away" : "Online"}</span>
          </div>
          <IconButton
            label={away ? "Set yourself online" : "Set yourself away"}
            icon={away ? "sun" : "moon"}
            size={16}
            small
            onClick={() => setMyStatus(away ? "online" : "away").catch((e: unknown) => showToast(errorText(e)))}
          />
          <IconButton label="Sign out" icon="logout" size={16} small onClick={() => void signOut()} />
        </div>
      )}
    </div>
  );
}
