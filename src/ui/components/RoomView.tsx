/** The open room: its header (h1 name, topic, tools), messages, typing indicator and composer. */
import type { Room } from "../../contracts/objects.js";
import {
  currentRoom,
  displayNameOf,
  drawerOpen,
  me,
  membersOpen,
  openDialog,
  roomTitle,
  sortedRooms,
  typing,
} from "../state.js";
import { Composer } from "./Composer.js";
import { Icon, IconButton } from "./icons.js";
import { MessageList } from "./MessageList.js";

function typingText(roomId: number): string {
  const mine = me.value?.id;
  const names = [...(typing.value.get(roomId)?.keys() ?? [])].filter((id) => id !== mine).map(displayNameOf);
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return "Several people are typing…";
}

export function MenuButton() {
  return (
    <button
      type="button"
      class="icon-button menu-button"
      aria-label="Menu"
      aria-expanded={drawerOpen.value}
      aria-controls="sidebar"
      onClick={() => (drawerOpen.value = !drawerOpen.value)}
    >
      <Icon name="menu" />
    </button>
  );
}

function RoomHeader({ room }: { room: Room }) {
  const canInvite =
    room.kind === "public" || (room.kind === "private" && (room.role === "owner" || room.role === "admin"));
  return (
    <header class="room-header">
      <MenuButton />
      <div class="room-title">
        <h1>
          <bdi>{roomTitle(room)}</bdi>
        </h1>
        {room.topic && (
          <p class="topic" dir="auto" title={room.topic}>
            {room.topic}
          </p>
        )}
      </div>
      <div class="room-tools">
        {canInvite && (
          <button type="button" class="tool-button" onClick={() => (openDialog.value = "invite")}>
            <Icon name="userPlus" size={16} />
            <span class="tool-label">Invite</span>
          </button>
        )}
        <button
          type="button"
          class="tool-button"
          aria-label="Member list"
          aria-pressed={membersOpen.value}
          title="Member list"
          onClick={() => (membersOpen.value = !membersOpen.value)}
        >
          <Icon name="users" size={16} />
          <span aria-hidden="true">{room.memberCount}</span>
        </button>
        <IconButton label="Room settings" icon="settings" onClick={() => (openDialog.value = "settings")} />
      </div>
    </header>
  );
}

export function RoomView() {
  const room = currentRoom.value;
  if (!room) {
    const none = sortedRooms.value.length === 0;
    return (
      <main class="room room-empty">
        <header class="room-header">
          <MenuButton />
          <div class="room-title">
            <h1>{none ? "Welcome to NoChat" : "Pick a room"}</h1>
          </div>
        </header>
        <div class="empty-state">
          <Icon name="message" size={40} />
          <p>
            {none ? "Create a room, browse public rooms or start a direct message." : "Choose a room from the list."}
          </p>
          <div class="empty-actions">
            <button type="button" class="primary" onClick={() => (openDialog.value = "new-room")}>
              Create a room
            </button>
            <button type="button" onClick={() => (openDialog.value = "browse")}>
              Browse public rooms
            </button>
          </div>
        </div>
      </main>
    );
  }
  const text = typingText(room.id);
  return (
    <main class="room" key={room.id}>
      <RoomHeader room={room} />
      <MessageList room={room} />
      <div class="typing" role="status" aria-label={text || undefined}>
        {text}
      </div>
      <Composer room={room} />
    </main>
  );
}
