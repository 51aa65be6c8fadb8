/**
 * The textbox "Message": Enter sends, Shift+Enter is a new line, Up on an empty box edits your
 * last message, Esc leaves edit or reply mode, `@` suggests the room's members. Drafts are kept
 * per room while the page lives.
 */
import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { LIMITS } from "../../contracts/limits.js";
import type { Room, User } from "../../contracts/objects.js";
import { errorText } from "../api.js";
import { editMessage, sendMessage, sendTyping } from "../chat.js";
import {
  displayNameOf,
  drafts,
  editing,
  me,
  members,
  replyingTo,
  roomTitle,
  showToast,
  timeline,
  users,
} from "../state.js";
import { Icon } from "./icons.js";
import { startEdit } from "./MessageList.js";

const MENTION_AT_CARET = /(?:^|[^a-z0-9_.-])@([a-z0-9_.-]{0,32})$/i;

interface Suggest {
  query: string;
  start: number;
  options: User[];
  active: number;
}

function suggestionsFor(roomId: number, query: string): User[] {
  const q = query.toLowerCase();
  const mine = me.value?.id;
  const out: User[] = [];
  for (const id of members.value.get(roomId)?.keys() ?? []) {
    const u = users.value.get(id);
    if (!u || u.id === mine) continue;
    if (u.username.startsWith(q) || u.displayName.toLowerCase().startsWith(q)) out.push(u);
  }
  return out.sort((a, b) => a.username.localeCompare(b.username)).slice(0, 8);
}

export function Composer({ room }: { room: Room }) {
  const ref = useRef<HTMLTextAreaElement>(null);
  const [value, setValue] = useState(drafts.get(room.id) ?? "");
  const [suggest, setSuggest] = useState<Suggest | null>(null);
  const edit = editing.value?.roomId === room.id ? editing.value : null;
  const reply = replyingTo.value?.roomId === room.id ? replyingTo.value : null;
  const max = LIMITS.body.max;
  const tooLong = value.trim().length > max;

  useEffect(() => {
    setValue(drafts.get(room.id) ?? "");
    setSuggest(null);
    if (matchMedia("(pointer: fine)").matches) ref.current?.focus();
  }, [room.id]);

  // Entering edit mode puts the message's text in the box, caret at the end — in one step, so
  // whatever the user does next (select all, type) applies to it.
  useLayoutEffect(() => {
    if (!edit) return;
    setValue(edit.body);
    const el = ref.current;
    if (el) {
      el.value = edit.body;
      el.setSelectionRange(edit.body.length, edit.body.length);
    }
  }, [edit?.id]);

  const update = (next: string, caret: number) => {
    setValue(next);
    if (!edit) drafts.set(room.id, next);
    if (!edit && next.trim()) sendTyping(room.id, true);
    else sendTyping(room.id, false);
    const m = MENTION_AT_CARET.exec(next.slice(0, caret));
    if (m) {
      const options = suggestionsFor(room.id, m[1]);
      setSuggest(options.length ? { query: m[1], start: caret - m[1].length - 1, options, active: 0 } : null);
    } else setSuggest(null);
  };

  const choose = (user: User) => {
    if (!suggest) return;
    const before = value.slice(0, suggest.start);
    const after = value.slice(suggest.start + 1 + suggest.query.length);
    const inserted = `@${user.username} `;
    const next = before + inserted + after.replace(/^ /, "");
    setValue(next);
    drafts.set(room.id, next);
    setSuggest(null);
    requestAnimationFrame(() => {
      const el = ref.current;
      if (!el) return;
      el.focus();
      const at = before.length + inserted.length;
      el.setSelectionRange(at, at);
    });
  };

  const leaveModes = () => {
    if (editing.value) {
      editing.value = null;
      setValue(drafts.get(room.id) ?? "");
    }
    replyingTo.value = null;
  };

  const submit = async () => {
    const body = value.trim();
    if (!body || tooLong) return;
    if (edit) {
      if (body === edit.body) return leaveModes();
      try {
        await editMessage(edit, body);
        editing.value = null;
        setValue(drafts.get(room.id) ?? "");
      } catch (err) {
        showToast(errorText(err));
      }
      return;
    }
    sendMessage(room.id, body, reply?.id ?? null);
    replyingTo.value = null;
    drafts.delete(room.id);
    setValue("");
    sendTyping(room.id, false);
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (suggest) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        const step = e.key === "ArrowDown" ? 1 : -1;
        const n = suggest.options.length;
        setSuggest({ ...suggest, active: (suggest.active + step + n) % n });
        return;
      }
      if (e.key === "Enter" || e.key === "Tab") {
        e.preventDefault();
        choose(suggest.options[suggest.active]);
        return;
      }
      if (e.key === "Escape") {
        e.preventDefault();
        setSuggest(null);
        return;
      }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void submit();
    } else if (e.key === "ArrowUp" && value === "" && !edit) {
      const mine = me.value?.id;
      const last = [...timeline(room.id).value.messages].reverse().find((m) => m.userId === mine && !m.deleted);
      if (last) {
        e.preventDefault();
        startEdit(last);
      }
    } else if (e.key === "Escape" && (edit || reply)) {
      e.preventDefault();
      leaveModes();
    }
  };

  const listId = `mentions-${room.id}`;
  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      {reply && (
        <div class="composer-banner">
          <Icon name="reply" size={14} />
          <span class="banner-text">
            Replying to <bdi>{displayNameOf(reply.userId)}</bdi>: <span dir="auto">{reply.body.slice(0, 80)}</span>
          </span>
          <button type="button" class="link-button" onClick={() => (replyingTo.value = null)}>
            Cancel reply
          </button>
        </div>
      )}
      {edit && (
        <div class="composer-banner editing">
          <Icon name="edit" size={14} />
          <span class="banner-text">Editing your message — Enter saves, Esc cancels</span>
          <button type="button" class="link-button" onClick={leaveModes}>
            Cancel edit
          </button>
        </div>
      )}
      {suggest && (
        <ul class="suggestions" role="listbox" id={listId} aria-label="Mention suggestions">
          {suggest.options.map((u, i) => (
            <li
              key={u.id}
              id={`${listId}-${u.id}`}
              role="option"
              aria-selected={i === suggest.active}
              class={i === suggest.active ? "active" : ""}
              onMouseDown={(e) => {
                e.preventDefault();
                choose(u);
              }}
            >
              <bdi>{u.displayName}</bdi> <span class="muted">@{u.username}</span>
            </li>
          ))}
        </ul>
      )}
      <div class={`composer-row${edit ? " editing" : ""}`}>
        <textarea
          id="composer"
          ref={ref}
          aria-label="Message"
          rows={1}
          placeholder={
            edit ? "Edit your message" : `Message ${room.kind === "direct" ? roomTitle(room) : `#${room.name}`}`
          }
          value={value}
          dir="auto"
          role="textbox"
          aria-multiline="true"
          aria-autocomplete="list"
          aria-controls={suggest ? listId : undefined}
          aria-expanded={suggest ? true : undefined}
          aria-activedescendant={suggest ? `${listId}-${suggest.options[suggest.active].id}` : undefined}
          onInput={(e) => update(e.currentTarget.value, e.currentTarget.selectionStart ?? e.currentTarget.value.length)}
          onKeyDown={onKeyDown}
          onBlur={() => setTimeout(() => setSuggest(null), 150)}
        />
        <button
          type="submit"
          class="send-button"
          aria-label={edit ? "Save" : "Send"}
          title={edit ? "Save" : "Send"}
          disabled={!value.trim() || tooLong}
        >
          <Icon name="send" />
        </button>
      </div>
      {value.length > max - 500 && (
        <p class={tooLong ? "counter over" : "counter"} aria-live="polite">
          {tooLong
            ? `${value.trim().length - max} characters over the limit`
            : `${max - value.trim().length} characters left`}
        </p>
      )}
    </form>
  );
}
