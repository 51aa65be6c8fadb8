/**
 * The log "Messages": history with infinite scroll back (`before=`), day separators, author
 * grouping, replies, reactions, the "New messages" divider at the read marker, pending and failed
 * sends from the outbox, and the read marker moved as messages come into view.
 */
import { memo } from "preact/compat";
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { mentionedUsernames } from "../../contracts/domain-events.js";
import { SYSTEM_USER_ID, type Message, type Room, type User } from "../../contracts/objects.js";
import { errorText } from "../api.js";
import { deleteMessage, discardSend, loadOlder, markRead, retrySend, toggleReaction } from "../chat.js";
import { renderMarkdown } from "../markdown.js";
import { outbox, type OutboxEntry } from "../outbox.js";
import { editing, me, members, replyingTo, showToast, timeline, users } from "../state.js";
import { Icon, IconButton } from "./icons.js";
import { Avatar } from "./Presence.js";

const GROUP_MS = 5 * 60_000;
export const EMOJI = ["👍", "❤️", "😄", "🎉", "🙏", "👀", "🚀", "✅", "😮", "😢", "🔥", "👎"];

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });
const yearDayFormat = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "long", day: "numeric" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });

function dayKey(iso: string): string {
  const d = new Date(iso);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

function dayLabel(iso: string): string {
  const d = new Date(iso);
  const today = new Date();
  const yesterday = new Date(today.getTime() - 86_400_000);
  if (dayKey(iso) === dayKey(today.toISOString())) return "Today";
  if (dayKey(iso) === dayKey(yesterday.toISOString())) return "Yesterday";
  return d.getFullYear() === today.getFullYear() ? dayFormat.format(d) : yearDayFormat.format(d);
}

function snippet(m: Message): string {
  if (m.deleted) return "Message deleted";
  return m.body.length > 140 ? `${m.body.slice(0, 140)}…` : m.body;
}

function namesOf(all: ReadonlyMap<number, User>): Map<number, string> {
  const map = new Map<number, string>();
  for (const [id, u] of all) map.set(id, u.displayName || u.username);
  return map;
}

function sameNames(known: ReadonlyMap<number, string>, all: ReadonlyMap<number, User>): boolean {
  if (known.size !== all.size) return false;
  for (const [id, u] of all) if (known.get(id) !== (u.displayName || u.username)) return false;
  return true;
}

/** The room's usernames as one string: a stable prop that changes only when the members do. */
function memberNamesOf(roomId: number): string {
  const names: string[] = [];
  for (const id of members.value.get(roomId)?.keys() ?? []) {
    const u = users.value.get(id);
    if (u) names.push(u.username);
  }
  return names.sort().join(" ");
}

function Reactions({ message, names }: { message: Message; names: ReadonlyMap<number, string> }) {
  const mine = me.value?.id;
  const entries = Object.entries(message.reactions).filter(([, ids]) => ids.length > 0);
  if (entries.length === 0) return null;
  return (
    <div class="reactions">
      {entries.map(([emoji, ids]) => {
        const pressed = mine !== undefined && ids.includes(mine);
        return (
          <button
            type="button"
            key={emoji}
            class={pressed ? "chip chip-mine" : "chip"}
            aria-pressed={pressed}
            title={ids.map((id) => names.get(id) ?? `User ${id}`).join(", ")}
            onClick={() => toggleReaction(message, emoji).catch((e: unknown) => showToast(errorText(e)))}
          >
            {emoji} {ids.length}
          </button>
        );
      })}
    </div>
  );
}

function EmojiPicker({ onPick, onClose }: { onPick: (emoji: string) => void; onClose: (refocus: boolean) => void }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    ref.current?.querySelector("button")?.focus();
    const away = (e: PointerEvent) => {
      if (!ref.current?.contains(e.target as Node)) onClose(false);
    };
    document.addEventListener("pointerdown", away);
    return () => document.removeEventListener("pointerdown", away);
  }, []);
  return (
    <div
      ref={ref}
      class="picker"
      role="group"
      aria-label="Pick a reaction"
      onKeyDown={(e) => {
        if (e.key === "Escape") {
          e.stopPropagation();
          onClose(true);
        }
      }}
    >
      {EMOJI.map((emoji) => (
        <button type="button" key={emoji} class="picker-emoji" onClick={() => onPick(emoji)}>
          {emoji}
        </button>
      ))}
    </div>
  );
}

interface ItemProps {
  message: Message;
  grouped: boolean;
  quoted: Message | undefined;
  /** Display names by user id, for the author, the quoted author and reactions. */
  names: ReadonlyMap<number, string>;
  /** Space-separated usernames of the room's members (highlighted as mentions). */
  memberNames: string;
  canModerate: boolean;
  myId: number | undefined;
  myUsername: string | undefined;
}

/**
 * One message. Memoized on plain props (no signal reads inside), so an event elsewhere — a
 * presence change, typing, another message — does not re-render, nor re-parse, the others.
 */
const MessageItem = memo(function MessageItem(props: ItemProps) {
  const { message, grouped, quoted, names, memberNames, canModerate, myId, myUsername } = props;
  const [picking, setPicking] = useState(false);
  const reactRef = useRef<HTMLButtonElement>(null);
  const own = message.userId === myId;
  // The operator's announcements: marked as the server's, never grouped, nobody's to edit.
  const system = message.userId === SYSTEM_USER_ID;
  const name = names.get(message.userId) ?? `User ${message.userId}`;
  const body = useMemo(() => {
    if (message.deleted) return null;
    const known = new Set(memberNames.split(" "));
    return renderMarkdown(message.body, { isMention: (u) => known.has(u), self: myUsername });
  }, [message.body, message.deleted, memberNames, myUsername]);
  const created = new Date(message.createdAt);
  const mentionsMe = !!myUsername && !own && !message.deleted && mentionedUsernames(message.body).includes(myUsername);
  const classes = [
    "message",
    grouped ? "grouped" : "",
    mentionsMe ? "mentions-me" : "",
    message.deleted ? "deleted" : "",
    system ? "system" : "",
  ];
  const pick = (emoji: string) => {
    setPicking(false);
    reactRef.current?.focus();
    toggleReaction(message, emoji).catch((e: unknown) => showToast(errorText(e)));
  };
  return (
    // tabIndex -1: a tap focuses the message, which shows its actions on touch screens.
    <article class={classes.filter(Boolean).join(" ")} data-seq={message.seq} tabIndex={-1}>
      <div class="gutter">
        {grouped ? (
          <time class="hover-time" dateTime={message.createdAt} title={fullFormat.format(created)}>
            {timeFormat.format(created)}
          </time>
        ) : system ? (
          <span class="avatar system-avatar" aria-hidden="true">
            <Icon name="megaphone" size={18} />
          </span>
        ) : (
          <Avatar user={{ id: message.userId, displayName: name, username: name }} />
        )}
      </div>
      <div class="message-main">
        {grouped ? (
          <span class="sr-only">{name}</span>
        ) : (
          <div class="message-head">
            <bdi class="author">{name}</bdi>
            <time dateTime={message.createdAt} title={fullFormat.format(created)}>
              {timeFormat.format(created)}
            </time>
          </div>
        )}
        {message.replyTo !== null && !message.deleted && (
          <blockquote class="quote">
            {quoted ? (
              <>
                <bdi class="quote-author">{names.get(quoted.userId) ?? `User ${quoted.userId}`}</bdi>{" "}
                <span class="quote-body" dir="auto">
                  {snippet(quoted)}
                </span>
              </>
            ) : (
              <span class="quote-body">Reply to an earlier message</span>
            )}
          </blockquote>
        )}
        <div class="message-body" dir="auto">
          {message.deleted ? (
            <em class="muted">Message deleted</em>
          ) : (
            <>
              {body}
              {message.editedAt && <span class="edited"> (edited)</span>}
            </>
          )}
        </div>
        {!message.deleted && <Reactions message={message} names={names} />}
        {picking && (
          <EmojiPicker
            onPick={pick}
            onClose={(refocus) => {
              setPicking(false);
              if (refocus) reactRef.current?.focus();
            }}
          />
        )}
      </div>
      {!message.deleted && (
        <div class="message-actions" role="toolbar" aria-label="Message actions">
          <IconButton label="Reply" icon="reply" size={16} small onClick={() => startReply(message)} />
          <IconButton
            label="React"
            icon="smile"
            size={16}
            small
            expanded={picking}
            buttonRef={reactRef}
            onClick={() => setPicking(!picking)}
          />
          {own && <IconButton label="Edit" icon="edit" size={16} small onClick={() => startEdit(message)} />}
          {(own || canModerate) && (
            <IconButton
              label="Delete"
              icon="trash"
              size={16}
              small
              danger
              onClick={() => deleteMessage(message).catch((e: unknown) => showToast(errorText(e)))}
            />
          )}
        </div>
      )}
    </article>
  );
});

export function focusComposer(): void {
  document.querySelector<HTMLTextAreaElement>("#composer")?.focus();
}

function startReply(message: Message): void {
  editing.value = null;
  replyingTo.value = message;
  focusComposer();
}

export function startEdit(message: Message): void {
  replyingTo.value = null;
  editing.value = message;
  focusComposer();
}

function PendingItem({ entry }: { entry: OutboxEntry }) {
  const user = me.value;
  const failed = entry.state === "failed";
  return (
    <article class={`message pending${failed ? " failed" : ""}`}>
      <div class="gutter">{user && <Avatar user={user} />}</div>
      <div class="message-main">
        <div class="message-head">
          <bdi class="author">{user?.displayName}</bdi>
          <span class="pending-state">{failed ? "Not sent" : "Sending…"}</span>
        </div>
        <div class="message-body" dir="auto">
          {entry.body}
        </div>
        {failed && (
          <div class="pending-error">
            <span>{entry.error}</span>
            <button type="button" class="link-button" onClick={() => retrySend(entry.clientMsgId)}>
              Retry
            </button>
            <button type="button" class="link-button" onClick={() => discardSend(entry.clientMsgId)}>
              Discard
            </button>
          </div>
        )}
      </div>
    </article>
  );
}

/** How close to the bottom (px) still counts as "at the bottom". */
const STICK_PX = 48;

export function MessageList({ room }: { room: Room }) {
  const tl = timeline(room.id).value;
  const listRef = useRef<HTMLDivElement>(null);
  const topRef = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const prevFirst = useRef<{ seq: number; height: number } | null>(null);
  /** The read marker when the room's messages first showed: where "New messages" goes. */
  const divider = useRef<{ roomId: number; after: number } | null>(null);
  /** Until the first scroll (to the divider or the bottom) is done, nothing counts as read. */
  const placed = useRef(false);
  const pending = outbox.value.filter((e) => e.roomId === room.id);
  const user = me.value;

  if (divider.current?.roomId !== room.id) {
    divider.current = tl.loaded ? { roomId: room.id, after: room.lastReadSeq ?? 0 } : null;
    placed.current = false;
    stick.current = true;
    prevFirst.current = null;
  }
  const dividerAfter = divider.current?.after ?? null;

  const messages = tl.messages;
  const byId = new Map<number, Message>();
  for (const m of messages) byId.set(m.id, m);
  const firstUnread =
    dividerAfter === null || dividerAfter === 0
      ? undefined
      : messages.find((m) => m.seq > dividerAfter && m.userId !== user?.id);

  // Names by user id, kept as the same object while no name changes (a presence event changes
  // `users` but no name), so memoized messages do not re-render.
  const namesRef = useRef<Map<number, string>>(new Map());
  const names = sameNames(namesRef.current, users.value) ? namesRef.current : (namesRef.current = namesOf(users.value));
  const memberNames = memberNamesOf(room.id);
  const canModerate = room.role === "owner" || room.role === "admin";

  // Keep the view where the reader is: at the divider on open, at the bottom when they were there,
  // in place when older messages load above.
  useLayoutEffect(() => {
    const el = listRef.current;
    if (!el || !tl.loaded) return;
    const first = messages[0];
    if (!placed.current) {
      const line = el.querySelector<HTMLElement>(".new-divider");
      if (line) {
        el.scrollTop = Math.max(0, line.offsetTop - el.clientHeight / 3);
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < STICK_PX;
      } else el.scrollTop = el.scrollHeight;
      placed.current = true;
    } else if (prevFirst.current && first && first.seq < prevFirst.current.seq) {
      el.scrollTop += el.scrollHeight - prevFirst.current.height;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
    prevFirst.current = first ? { seq: first.seq, height: el.scrollHeight } : null;
    readVisible();
    nearTop();
  });

  /** Older history while the top is near: after a scroll, and after each render (a page may not fill the view). */
  function nearTop(): void {
    const el = listRef.current;
    const top = topRef.current;
    const now = timeline(room.id).value;
    if (!el || !top || !placed.current || !now.loaded || !now.hasMoreBefore || now.loadingOlder) return;
    if (top.getBoundingClientRect().bottom > el.getBoundingClientRect().top - 300)
      loadOlder(room.id).catch((e: unknown) => showToast(errorText(e)));
  }

  useEffect(() => {
    const onVisible = () => readVisible();
    document.addEventListener("visibilitychange", onVisible);
    window.addEventListener("focus", onVisible);
    return () => {
      document.removeEventListener("visibilitychange", onVisible);
      window.removeEventListener("focus", onVisible);
    };
  }, [room.id]);

  /** The read marker follows the last message the reader can see. */
  function readVisible(): void {
    const el = listRef.current;
    if (!el || !placed.current || document.visibilityState !== "visible") return;
    const bottom = el.getBoundingClientRect().bottom;
    const articles = el.querySelectorAll<HTMLElement>("article[data-seq]");
    for (let i = articles.length - 1; i >= 0; i--) {
      const rect = articles[i].getBoundingClientRect();
      if (rect.top < bottom - 8) {
        markRead(room.id, Number(articles[i].dataset.seq));
        return;
      }
    }
  }

  const items = [];
  let prev: Message | undefined;
  for (const m of messages) {
    if (!prev || dayKey(prev.createdAt) !== dayKey(m.createdAt)) {
      const label = dayLabel(m.createdAt);
      items.push(
        <div class="day-divider" role="separator" aria-label={label} key={`day-${m.seq}`}>
          <span>{label}</span>
        </div>,
      );
      prev = undefined;
    }
    if (m === firstUnread) {
      items.push(
        <div class="new-divider" role="separator" aria-label="New messages" key="new">
          <span>New messages</span>
        </div>,
      );
      prev = undefined;
    }
    const grouped =
      !!prev &&
      prev.userId === m.userId &&
      m.userId !== SYSTEM_USER_ID &&
      !prev.deleted &&
      m.replyTo === null &&
      new Date(m.createdAt).getTime() - new Date(prev.createdAt).getTime() < GROUP_MS;
    items.push(
      <MessageItem
        key={m.seq}
        message={m}
        grouped={grouped}
        quoted={m.replyTo === null ? undefined : byId.get(m.replyTo)}
        names={names}
        memberNames={memberNames}
        canModerate={canModerate}
        myId={user?.id}
        myUsername={user?.username}
      />,
    );
    prev = m;
  }

  return (
    <div
      class="message-list"
      ref={listRef}
      role="log"
      aria-label="Messages"
      tabIndex={0}
      onScroll={(e) => {
        const el = e.currentTarget;
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < STICK_PX;
        readVisible();
        nearTop();
      }}
    >
      <div ref={topRef} class="history-top">
        {!tl.loaded ? (
          <p class="muted">Loading messages…</p>
        ) : tl.hasMoreBefore ? (
          <p class="muted">{tl.loadingOlder ? "Loading older messages…" : ""}</p>
        ) : (
          <div class="room-start">
            <h2>Welcome to {room.kind === "direct" ? "your conversation" : <bdi>{room.name}</bdi>}</h2>
            <p class="muted">This is the very beginning of the history.</p>
          </div>
        )}
      </div>
      {items}
      {pending.map((e) => (
        <PendingItem key={e.clientMsgId} entry={e} />
      ))}
    </div>
  );
}
