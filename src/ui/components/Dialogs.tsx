/** The dialogs: new room, browse rooms, new direct message, invite, room settings, notifications. */
import { useEffect, useState } from "preact/hooks";
import type { Notification, Room, User } from "../../contracts/objects.js";
import { api, errorText } from "../api.js";
import { adoptRoom, leaveRoom, loadMembers, markNotificationsSeen, notificationText } from "../chat.js";
import { currentRoom, me, notifications, openDialog, putUsers, rooms, setRoom, showToast } from "../state.js";
import { Dialog, FormError } from "./Dialog.js";
import { Field, useFormAction } from "./Field.js";
import { Avatar } from "./Presence.js";

const close = () => (openDialog.value = null);
const whenFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** Results of a search that follows what is typed, a moment after the typing stops. */
function useSearch<T>(
  query: string,
  fetcher: (q: string) => Promise<T[]>,
  deps: unknown[] = [],
): { results: T[]; error: string | null } {
  const [results, setResults] = useState<T[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    const timer = setTimeout(() => {
      fetcher(query.trim())
        .then((r) => live && (setResults(r), setError(null)))
        .catch((e: unknown) => live && setError(errorText(e)));
    }, 200);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [query, ...deps]);
  return { results, error };
}

const searchUsers = async (q: string): Promise<User[]> => {
  if (!q) return [];
  const { users } = await api<{ users: User[] }>("GET", `/users?q=${encodeURIComponent(q)}&limit=20`);
  return users.filter((u) => u.id !== me.value?.id);
};

function NewRoomDialog() {
  const { failure, busy, run } = useFormAction();
  const [query, setQuery] = useState("");
  const [picked, setPicked] = useState<User[]>([]);
  const { results } = useSearch(query, searchUsers);
  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    const topic = String(form.get("topic") ?? "").trim();
    await run(async () => {
      const room = await api<Room>("POST", "/rooms", {
        name: String(form.get("name") ?? "").trim(),
        kind: form.get("private") ? "private" : "public",
        ...(topic ? { topic } : {}),
        ...(picked.length ? { members: picked.map((u) => u.id) } : {}),
      });
      close();
      adoptRoom(room);
    });
  };
  return (
    <Dialog title="New room" onClose={close}>
      <FormError text={failure?.message ?? null} />
      <form onSubmit={submit} noValidate>
        <Field label="Room name" name="name" required maxLength={80} autoFocus error={failure?.fields.get("name")} />
        <Field label="Topic" name="topic" maxLength={250} error={failure?.fields.get("topic")} />
        <div class="check">
          <label>
            <input type="checkbox" name="private" aria-describedby="private-hint" /> Private
          </label>
          <span class="muted" id="private-hint">
            Only invited people can see and join it
          </span>
        </div>
        <Field
          label="Add people"
          name="people"
          type="text"
          value={query}
          onInput={setQuery}
          autocomplete="off"
          error={failure?.fields.get("members")}
        />
        {picked.length > 0 && (
          <ul class="chips" aria-label="People to add">
            {picked.map((u) => (
              <li key={u.id}>
                <bdi>{u.displayName}</bdi>
                <button
                  type="button"
                  class="link-button"
                  aria-label={`Remove ${u.displayName}`}
                  onClick={() => setPicked(picked.filter((p) => p.id !== u.id))}
                >
                  ×
                </button>
              </li>
            ))}
          </ul>
        )}
        {query && (
          <ul class="result-list">
            {results
              .filter((u) => !picked.some((p) => p.id === u.id))
              .map((u) => (
                <li key={u.id}>
                  <button
                    type="button"
                    class="result"
                    onClick={() => {
                      setPicked([...picked, u]);
                      setQuery("");
                    }}
                  >
                    <Avatar user={u} small /> <bdi>{u.displayName}</bdi> <span class="muted">@{u.username}</span>
                  </button>
                </li>
              ))}
          </ul>
        )}
        <div class="dialog-actions">
          <button type="button" onClick={close}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            Create
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function BrowseDialog() {
  const [query, setQuery] = useState("");
  const [busyId, setBusyId] = useState<number | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const { results, error } = useSearch(query, async (q) => {
    const { rooms: list } = await api<{ rooms: Room[] }>(
      "GET",
      `/rooms/public?limit=50${q ? `&q=${encodeURIComponent(q)}` : ""}`,
    );
    return list;
  });
  const join = async (room: Room) => {
    setBusyId(room.id);
    try {
      const joined = await api<Room>("POST", `/rooms/${room.id}/join`, {});
      close();
      adoptRoom(joined);
    } catch (err) {
      setFailure(errorText(err));
      setBusyId(null);
    }
  };
  return (
    <Dialog title="Browse rooms" onClose={close} wide>
      <FormError text={failure ?? error} />
      <Field label="Search rooms" name="q" value={query} onInput={setQuery} autoFocus autocomplete="off" />
      <ul class="browse-list">
        {results.map((room) => {
          const member = rooms.value.has(room.id);
          return (
            <li key={room.id} class="browse-item">
              <div class="browse-text">
                <bdi class="browse-name"># {room.name}</bdi>
                <span class="muted">
                  {room.memberCount} {room.memberCount === 1 ? "member" : "members"}
                </span>
                {room.topic && (
                  <p class="muted browse-topic" dir="auto">
                    {room.topic}
                  </p>
                )}
              </div>
              {member ? (
                <button
                  type="button"
                  onClick={() => {
                    close();
                    location.hash = `#/rooms/${room.id}`;
                  }}
                >
                  Open
                </button>
              ) : (
                <button type="button" class="primary" disabled={busyId === room.id} onClick={() => void join(room)}>
                  Join
                </button>
              )}
            </li>
          );
        })}
        {results.length === 0 && <li class="muted">{query ? "No public rooms match." : "No public rooms yet."}</li>}
      </ul>
    </Dialog>
  );
}

function DirectDialog() {
  const [query, setQuery] = useState("");
  const [failure, setFailure] = useState<string | null>(null);
  const { results, error } = useSearch(query, searchUsers);
  const open = async (user: User) => {
    try {
      const room = await api<Room>("POST", "/rooms/direct", { userId: user.id });
      putUsers([user]);
      close();
      adoptRoom(room);
      void loadMembers(room.id).catch(() => undefined);
    } catch (err) {
      setFailure(errorText(err));
    }
  };
  return (
    <Dialog title="New direct message" onClose={close}>
      <FormError text={failure ?? error} />
      <Field label="Search users" name="q" value={query} onInput={setQuery} autoFocus autocomplete="off" />
      <ul class="result-list">
        {results.map((u) => (
          <li key={u.id}>
            <button type="button" class="result" aria-description={`@${u.username}`} onClick={() => void open(u)}>
              <Avatar user={u} small /> <bdi>{u.displayName}</bdi>{" "}
              <span class="muted" aria-hidden="true">
                @{u.username}
              </span>
            </button>
          </li>
        ))}
        {query.trim() && results.length === 0 && <li class="muted">No one found.</li>}
      </ul>
    </Dialog>
  );
}

function InviteDialog({ room }: { room: Room }) {
  const { failure, setFailure, busy, run } = useFormAction();
  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const username = String(new FormData(e.currentTarget as HTMLFormElement).get("username") ?? "")
      .trim()
      .replace(/^@/, "")
      .toLowerCase();
    if (!username) {
      setFailure({ message: "Enter a username.", fields: new Map([["username", "Enter a username."]]) });
      return;
    }
    await run(async () => {
      const { users: found } = await api<{ users: User[] }>("GET", `/users?q=${encodeURIComponent(username)}&limit=20`);
      const user = found.find((u) => u.username === username);
      if (!user) {
        setFailure({ message: `No user named ${username}.`, fields: new Map([["username", "No such user."]]) });
        return;
      }
      await api("POST", `/rooms/${room.id}/members`, { userId: user.id });
      putUsers([user]);
      showToast(`Invited ${user.displayName} to ${room.name}.`);
      close();
    });
  };
  return (
    <Dialog title={`Invite to ${room.name}`} onClose={close}>
      <FormError text={failure?.message ?? null} />
      <form onSubmit={submit} noValidate>
        <Field
          label="Username"
          name="username"
          autoFocus
          autocomplete="off"
          autocapitalize="none"
          spellcheck={false}
          error={failure?.fields.get("username") ?? failure?.fields.get("userId")}
        />
        <div class="dialog-actions">
          <button type="button" onClick={close}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            Invite
          </button>
        </div>
      </form>
    </Dialog>
  );
}

type Level = "all" | "mentions" | "none";

function SettingsDialog({ room }: { room: Room }) {
  const { failure, busy, run } = useFormAction();
  /** The saved level, and the one picked in the form (kept across re-renders). */
  const [level, setLevel] = useState<Level | null>(null);
  const [chosen, setChosen] = useState<Level | null>(null);
  const moderator = room.role === "owner" || room.role === "admin";
  const editable = moderator && room.kind !== "direct";
  useEffect(() => {
    api<{ level: Level }>("GET", `/rooms/${room.id}/notifications`)
      .then((r) => setLevel(r.level))
      .catch(() => setLevel("all"));
  }, [room.id]);
  const submit = async (e: SubmitEvent) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    await run(async () => {
      if (editable) {
        const name = String(form.get("name") ?? "").trim();
        const topic = String(form.get("topic") ?? "").trim();
        if (name !== room.name || topic !== room.topic)
          setRoom(await api<Room>("PATCH", `/rooms/${room.id}`, { name, topic }));
      }
      if (chosen && chosen !== level) await api("PUT", `/rooms/${room.id}/notifications`, { level: chosen });
      close();
    });
  };
  const leave = () =>
    run(async () => {
      await leaveRoom(room.id);
      close();
    });
  return (
    <Dialog title="Room settings" onClose={close}>
      <FormError text={failure?.message ?? null} />
      <form onSubmit={submit} noValidate>
        {room.kind !== "direct" && (
          <>
            <Field
              label="Room name"
              name="name"
              defaultValue={room.name}
              maxLength={80}
              disabled={!editable}
              error={failure?.fields.get("name")}
            />
            <Field
              label="Topic"
              name="topic"
              defaultValue={room.topic}
              maxLength={250}
              disabled={!editable}
              error={failure?.fields.get("topic")}
            />
            {!editable && <p class="muted">Only the room's owner and admins can rename it or change its topic.</p>}
          </>
        )}
        <div class="field">
          <label for="notify-level">Notify me about</label>
          {level && (
            <select
              id="notify-level"
              name="level"
              value={chosen ?? level}
              onChange={(e) => setChosen(e.currentTarget.value as Level)}
            >
              <option value="all">All messages</option>
              <option value="mentions">Mentions and direct messages only</option>
              <option value="none">Nothing</option>
            </select>
          )}
        </div>
        <div class="dialog-actions spread">
          {room.kind !== "direct" ? (
            <button type="button" class="danger" onClick={() => void leave()}>
              Leave room
            </button>
          ) : (
            <span />
          )}
          <span>
            <button type="button" onClick={close}>
              Cancel
            </button>{" "}
            <button type="submit" class="primary" disabled={busy || !level}>
              Save
            </button>
          </span>
        </div>
      </form>
    </Dialog>
  );
}

function NotificationsDialog() {
  const list = notifications.value;
  const [permission, setPermission] = useState(
    typeof Notification === "undefined" ? "unsupported" : Notification.permission,
  );
  const go = (n: Notification) => {
    close();
    location.hash = `#/rooms/${n.roomId}`;
    if (!n.seen) {
      notifications.value = notifications.value.map((x) => (x.id === n.id ? { ...x, seen: true } : x));
      api("POST", "/notifications/seen", { ids: [n.id] }).catch(() => undefined);
    }
  };
  return (
    <Dialog title="Notifications" onClose={close}>
      <div class="dialog-actions spread top">
        <button
          type="button"
          disabled={!list.some((n) => !n.seen)}
          onClick={() => markNotificationsSeen().catch((e: unknown) => showToast(errorText(e)))}
        >
          Mark all seen
        </button>
        {permission === "default" && (
          <button type="button" onClick={() => void Notification.requestPermission().then(setPermission)}>
            Enable desktop notifications
          </button>
        )}
      </div>
      <ul class="notification-list">
        {list.map((n) => (
          <li key={n.id} class={n.seen ? "" : "unseen"}>
            <button type="button" class="result" onClick={() => go(n)}>
              <span>{notificationText(n)}</span>
              <time class="muted" dateTime={n.createdAt}>
                {whenFormat.format(new Date(n.createdAt))}
              </time>
            </button>
          </li>
        ))}
        {list.length === 0 && (
          <li class="muted">Nothing yet. Mentions, direct messages and invitations show up here.</li>
        )}
      </ul>
    </Dialog>
  );
}

export function Dialogs() {
  const room = currentRoom.value;
  switch (openDialog.value) {
    case "new-room":
      return <NewRoomDialog />;
    case "browse":
      return <BrowseDialog />;
    case "direct":
      return <DirectDialog />;
    case "invite":
      return room ? <InviteDialog room={room} /> : null;
    case "settings":
      return room ? <SettingsDialog room={room} /> : null;
    case "notifications":
      return <NotificationsDialog />;
    default:
      return null;
  }
}
