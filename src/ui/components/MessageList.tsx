/**
 * The log "Messages": history with infinite scroll back (`before=`), day separators, author
 * grouping, replies, reactions, the "New messages" divider at the read marker, pending and failed
 * sends from the outbox, and the read marker moved as messages come into view.
 */
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { mentionedUsernames } from "../../contracts/domain-events.js";
import type { Message, Room } from "../../contracts/objects.js";
import { errorText } from "../api.js";
import { deleteMessage, discardSend, loadOlder, markRead, retrySend, toggleReaction } from "../chat.js";
import { renderMarkdown } from "../markdown.js";
import { outbox, type OutboxEntry } from "../outbox.js";
import { displayNameOf, editing, me, members, replyingTo, showToast, timeline, users } from "../state.js";
import { Icon } from "./icons.js";
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

function useMentionCheck(roomId: number) {
  const roomMembers = members.value.get(roomId);
  const known = new Set<string>();
  for (const id of roomMembers?.keys() ?? []) {
    const u = users.value.get(id);
    if (u) known.add(u.username);
  }
  return (username: string) => known.has(username);
}

function Reactions({ message }: { message: Message }) {
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
            title={ids.map(displayNameOf).join(", ")}
            onClick={() => toggleReaction(message, emoji).catch((e: unknown) => showToast(errorText(e)))}
          >
            {emoji} {ids.length}
          </button>
        );
      })}
    </div>
  );
}

function EmojiPicker({ onPick, onClose }: { onPick: (emoji: string) => void; onClose: () => void }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    ref.current?.querySelector("button")?.focus();
    const away = (e: PointerEvent) => {
      if (!ref.current?.contains(e.target as Node)) onClose();
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
          onClose();
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
  room: Room;
  grouped: boolean;
  quoted: Message | undefined;
  isMention: (username: string) => boolean;
}

function MessageItem({ message, room, grouped, quoted, isMention }: ItemProps) {
  const [picking, setPicking] = useState(false);
  const user = me.value;
  const own = message.userId === user?.id;
  const canModerate = room.role === "owner" || room.role === "admin";
  const author = users.value.get(message.userId);
  const name = displayNameOf(message.userId);
  const created = new Date(message.createdAt);
  const mentionsMe = !!user && !own && !message.deleted && mentionedUsernames(message.body).includes(user.username);
  const classes = [
    "message",
    grouped ? "grouped" : "",
    mentionsMe ? "mentions-me" : "",
    message.deleted ? "deleted" : "",
  ];
  const pick = (emoji: string) => {
    setPicking(false);
    toggleReaction(message, emoji).catch((e: unknown) => showToast(errorText(e)));
  };
  return (
    <article class={classes.filter(Boolean).join(" ")} data-seq={message.seq}>
      <div class="gutter">
        {grouped ? (
          <time class="hover-time" dateTime={message.createdAt} title={fullFormat.format(created)}>
            {timeFormat.format(created)}
          </time>
        ) : (
          <Avatar user={author ?? { id: message.userId, displayName: name, username: name }} />
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
                <bdi class="quote-author">{displayNameOf(quoted.userId)}</bdi>{" "}
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
              {renderMarkdown(message.body, { isMention, self: user?.username })}
              {message.editedAt && <span class="edited"> (edited)</span>}
            </>
          )}
        </div>
        {!message.deleted && <Reactions message={message} />}
        {picking && <EmojiPicker onPick={pick} onClose={() => setPicking(false)} />}
      </div>
      {!message.deleted && (
        <div class="message-actions" role="toolbar" aria-label="Message actions">
          <button
            type="button"
            class="icon-button small"
            aria-label="Reply"
            title="Reply"
            onClick={() => startReply(message)}
          >
            <Icon name="reply" size={16} />
          </button>
          <button
            type="button"
            class="icon-button small"
            aria-label="React"
            title="React"
            aria-expanded={picking}
            onClick={() => setPicking(!picking)}
          >
            <Icon name="smile" size={16} />
          </button>
          {own && (
            <button
              type="button"
              class="icon-button small"
              aria-label="Edit"
              title="Edit"
              onClick={() => startEdit(message)}
            >
              <Icon name="edit" size={16} />
            </button>
          )}
          {(own || canModerate) && (
            <button
              type="button"
              class="icon-button small danger"
              aria-label="Delete"
              title="Delete"
              onClick={() => deleteMessage(message).catch((e: unknown) => showToast(errorText(e)))}
            >
              <Icon name="trash" size={16} />
            </button>
          )}
        </div>
      )}
    </article>
  );
}

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
  // The read marker when the room was opened: where "New messages" goes.
  const [dividerAfter, setDividerAfter] = useState<number | null>(null);
  const isMention = useMentionCheck(room.id);
  const pending = outbox.value.filter((e) => e.roomId === room.id);

  useEffect(() => {
    setDividerAfter(null);
    stick.current = true;
    prevFirst.current = null;
  }, [room.id]);
  useEffect(() => {
    if (dividerAfter === null && tl.loaded) setDividerAfter(room.lastReadSeq ?? 0);
  }, [tl.loaded, room.id, dividerAfter]);

  const messages = tl.messages;
  const byId = new Map<number, Message>();
  for (const m of messages) byId.set(m.id, m);
  const firstUnread =
    dividerAfter === null ? undefined : messages.find((m) => m.seq > dividerAfter && m.userId !== me.value?.id);

  // Keep the view where the reader is: at the bottom when they were, in place when older loads.
  useLayoutEffect(() => {
    const el = listRef.current;
    if (!el) return;
    const first = messages[0];
    if (prevFirst.current && first && first.seq < prevFirst.current.seq) {
      el.scrollTop += el.scrollHeight - prevFirst.current.height;
    } else if (stick.current) {
      const divider = el.querySelector<HTMLElement>(".new-divider");
      if (divider && !prevFirst.current) {
        divider.scrollIntoView({ block: "center" });
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < STICK_PX;
      } else el.scrollTop = el.scrollHeight;
    }
    prevFirst.current = first ? { seq: first.seq, height: el.scrollHeight } : null;
    readVisible();
  });

  // Older history when the top comes into view.
  useEffect(() => {
    const el = listRef.current;
    const top = topRef.current;
    if (!el || !top) return;
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) loadOlder(room.id).catch((e: unknown) => showToast(errorText(e)));
      },
      { root: el, rootMargin: "300px 0px 0px 0px" },
    );
    observer.observe(top);
    return () => observer.disconnect();
  }, [room.id, tl.loaded]);

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
    if (!el || document.visibilityState !== "visible") return;
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
    if (m === firstUnread && (dividerAfter ?? 0) > 0) {
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
      !prev.deleted &&
      m.replyTo === null &&
      new Date(m.createdAt).getTime() - new Date(prev.createdAt).getTime() < GROUP_MS;
    items.push(
      <MessageItem
        key={m.seq}
        message={m}
        room={room}
        grouped={grouped}
        quoted={m.replyTo === null ? undefined : byId.get(m.replyTo)}
        isMention={isMention}
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
