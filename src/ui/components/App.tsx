/** The whole UI: sign-in when signed out, otherwise the sidebar, the open room and its members. */
import { useEffect, useState } from "preact/hooks";
import { applyRoute, startClient, stopClient } from "../chat.js";
import { session } from "../session.js";
import {
  caughtUp,
  connection,
  currentRoom,
  drawerOpen,
  membersOpen,
  openDialog,
  roomTitle,
  sortedRooms,
  toast,
  totalUnread,
} from "../state.js";
import { AuthScreen } from "./Auth.js";
import { Dialogs } from "./Dialogs.js";
import { MembersPanel } from "./MembersPanel.js";
import { RoomView } from "./RoomView.js";
import { Sidebar } from "./Sidebar.js";

/** `Offline` / `Reconnecting…` while the socket is down or catching up; `Back online` briefly after. */
function ConnectionStatus() {
  const state = connection.value;
  const up = state === "online" && caughtUp.value;
  const [wasDown, setWasDown] = useState(false);
  const [showBack, setShowBack] = useState(false);
  // The first connection and its first catch-up are not a "reconnect": nothing to announce.
  const [settled, setSettled] = useState(false);
  const quiet = !settled && (state === "connecting" || state === "online");
  useEffect(() => {
    if (up) setSettled(true);
    if (!up && !quiet) setWasDown(true);
    if (up && wasDown) {
      setWasDown(false);
      setShowBack(true);
      const timer = setTimeout(() => setShowBack(false), 2_500);
      return () => clearTimeout(timer);
    }
  }, [up, state]);
  const text = up || quiet ? (showBack ? "Back online" : "") : state === "offline" ? "Offline" : "Reconnecting…";
  return (
    <div
      class={`connection ${up ? "connection-up" : `connection-${state}`}${text ? " shown" : ""}`}
      role="status"
      aria-label={text || undefined}
    >
      {text}
    </div>
  );
}

function Toast() {
  return toast.value ? (
    <div class="toast" role="alert">
      {toast.value}
    </div>
  ) : null;
}

function ChatScreen() {
  // The tab title carries the unread count and the open room.
  useEffect(() => {
    const unread = totalUnread.value;
    const room = currentRoom.value;
    document.title = `${unread ? `(${unread}) ` : ""}${room ? `${roomTitle(room)} – ` : ""}NoChat`;
  });
  // A dialog opened from the drawer replaces it.
  useEffect(() => {
    if (openDialog.value) drawerOpen.value = false;
  }, [openDialog.value]);
  // With no room in the address, open the most recent one. replaceState fires no `hashchange`, so a
  // drawer the user opened meanwhile stays open (navigating closes it).
  useEffect(() => {
    if (location.hash || sortedRooms.value.length === 0) return;
    history.replaceState(history.state, "", `#/rooms/${sortedRooms.value[0].id}`);
    applyRoute();
  }, [sortedRooms.value.length > 0]);
  return (
    <div class="app">
      <Sidebar />
      {drawerOpen.value && <div class="scrim" aria-hidden="true" onClick={() => (drawerOpen.value = false)} />}
      {membersOpen.value && (
        <div class="scrim members-scrim" aria-hidden="true" onClick={() => (membersOpen.value = false)} />
      )}
      <RoomView />
      <MembersPanel />
      <ConnectionStatus />
      <Toast />
      <Dialogs />
    </div>
  );
}

export function App() {
  const s = session.value;
  const userId = s?.userId ?? null;
  useEffect(() => {
    if (userId === null) stopClient();
    else startClient(userId);
  }, [userId]);
  // Esc closes the drawer (dialogs close themselves).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape" && drawerOpen.value && !openDialog.value) drawerOpen.value = false;
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);
  if (!s) return <AuthScreen />;
  return <ChatScreen />;
}
