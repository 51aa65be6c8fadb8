/**
 * The limits of docs/API.md as validator rules, shared by every service that checks them
 * (fastest-validator, Moleculer's built-in validator).
 */
export const LIMITS = {
  username: { min: 3, max: 32, pattern: /^[a-z0-9_.-]+$/i },
  password: { min: 8, max: 256 },
  displayName: { min: 1, max: 64 },
  roomName: { min: 1, max: 80 },
  topic: { max: 250 },
  body: { min: 1, max: 4000 },
  clientMsgId: { min: 8, max: 64, pattern: /^[A-Za-z0-9_-]+$/ },
  emoji: { min: 1, max: 32 },
  requestBytes: 64 * 1024,
  historyPage: { default: 50, max: 100 },
  syncPerRoom: 200,
  searchLimit: { default: 20, max: 50 },
} as const;

/**
 * An integer in [min, max] given as a number or a string of digits (REST paths and queries are
 * strings). Unlike fastest-validator's `convert`, it refuses `[5]`, `true` or `"5abc"` instead of
 * coercing them.
 */
function integer(min: number, max: number, extra: { optional?: boolean } = {}) {
  const message = `must be an integer from ${min} to ${max}`;
  return {
    type: "any",
    ...extra,
    custom(value: unknown, errors: { type: string; actual: unknown }[]) {
      if (value === undefined || value === null) return value;
      const n =
        typeof value === "number"
          ? value
          : typeof value === "string" && /^-?\d{1,16}$/.test(value)
            ? Number(value)
            : NaN;
      if (!Number.isInteger(n) || n < min || n > max) {
        errors.push({ type: "integerRange", actual: value });
        return value;
      }
      return n;
    },
    messages: { integerRange: `The '{field}' field ${message}.` },
  };
}

const MAX_ID = 2 ** 31 - 1;

// ---- user text ------------------------------------------------------------------------------
//
// What users type and others see: display names, room names, topics, message bodies, reaction
// emoji. One set of rules, applied by the validator of every service that accepts such text:
//   - well-formed Unicode only (no lone surrogates);
//   - no control characters: C0 (NUL included), DEL and C1; a body keeps \n and \t (a \r\n or
//     lone \r becomes \n first), one-line fields keep none;
//   - no bidi embedding, override or isolate characters (U+202A–U+202E, U+2066–U+2069): they let
//     text show in another order than it is stored ("gnp.exe" shown as "exe.png"). Refused in
//     names, topics and emoji; stripped from bodies, where they are invisible and often pasted
//     along with right-to-left text (the UI isolates every user text with dir="auto"/<bdi>, so
//     what is left can't reorder what surrounds it). The marks U+200E/U+200F/U+061C stay;
//   - not invisible-only: text made only of white space and default-ignorable characters (zero
//     width spaces and joiners, word joiner, variation selectors, Hangul fillers, soft hyphen, …)
//     and braille blanks is refused, as empty text is.

/** C0, DEL, C1. */
const CONTROL = /\p{Cc}/u;
/** C0, DEL, C1 except \t and \n. */
const CONTROL_EXCEPT_TAB_NEWLINE = /[^\P{Cc}\t\n]/u;
/** A surrogate code unit outside a pair (not well-formed UTF-16). */
const LONE_SURROGATE = /\p{Cs}/u;
const BIDI_CONTROL = /[\u202A-\u202E\u2066-\u2069]/u;
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/gu;
const INVISIBLE_ONLY = /^[\p{White_Space}\p{Default_Ignorable_Code_Point}\u2800]*$/u;

export interface TextRule {
  /** Keeps \n and \t (message bodies); one-line fields refuse every control character. */
  multiline?: boolean;
  /** Bidi embeddings, overrides and isolates: refused (default) or removed. */
  bidi?: "reject" | "strip";
  /** The empty string passes (an optional topic); invisible-only text never does. */
  allowEmpty?: boolean;
}

/**
 * Normalizes user text by the rules above: returns the text to store, or why it is refused (a
 * sentence starting after "The field …"). Expects trimmed text; trims again after stripping.
 */
export function checkText(value: string, rule: TextRule = {}): { value: string } | { problem: string } {
  if (LONE_SURROGATE.test(value)) return { problem: "must be valid Unicode text" };
  let text = rule.multiline ? value.replace(/\r\n?/g, "\n") : value;
  if ((rule.multiline ? CONTROL_EXCEPT_TAB_NEWLINE : CONTROL).test(text)) {
    return {
      problem: rule.multiline
        ? "must not contain control characters (other than line breaks and tabs)"
        : "must not contain control characters (line breaks and tabs included)",
    };
  }
  if (BIDI_CONTROL.test(text)) {
    if (rule.bidi !== "strip") {
      return {
        problem:
          "must not contain bidirectional embedding, override or isolate characters (U+202A–U+202E, U+2066–U+2069)",
      };
    }
    text = text.replace(BIDI_CONTROLS, "").trim();
  }
  if (text === "" && rule.allowEmpty) return { value: text };
  if (INVISIBLE_ONLY.test(text)) return { problem: "must contain visible characters" };
  return { value: text };
}

/** A fastest-validator string rule (trimmed) whose text also passes checkText(). */
function text(limits: { min?: number; max?: number }, rule: TextRule = {}, extra: { optional?: boolean } = {}) {
  return {
    type: "string",
    trim: true,
    ...limits,
    ...extra,
    custom(value: unknown, errors: { type: string; actual: unknown; expected: string }[]) {
      if (typeof value !== "string") return value;
      if (value === "" && !rule.allowEmpty) return value; // the string rule reports it
      const checked = checkText(value, rule);
      if ("problem" in checked) {
        errors.push({ type: "userText", actual: value, expected: checked.problem });
        return value;
      }
      return checked.value;
    },
    // fastest-validator fills in {field}, {expected} and {actual} only: {expected} is the problem.
    messages: { userText: "The '{field}' field {expected}." },
  };
}

// Getters hand out a fresh rule each time: fastest-validator loses the converted value of a custom
// rule whose object appears twice in one schema (`{ id: rules.id, userId: rules.id }`).
export const rules = {
  /** A positive id (rooms, users, messages). */
  get id() {
    return integer(1, MAX_ID);
  },
  /** A per-room sequence number; 0 means "before the first message". */
  get seq() {
    return integer(0, MAX_ID);
  },
  username: {
    type: "string",
    trim: true,
    min: LIMITS.username.min,
    max: LIMITS.username.max,
    pattern: LIMITS.username.pattern,
    messages: {
      stringPattern: "The 'username' field may contain only a-z, 0-9, '_', '.' and '-'.",
    },
  },
  password: {
    type: "string",
    min: LIMITS.password.min,
    max: LIMITS.password.max,
  },
  get displayName() {
    return text(LIMITS.displayName);
  },
  get roomName() {
    return text(LIMITS.roomName);
  },
  /** A room topic: one line, may be empty (no topic). */
  get topic() {
    return text(LIMITS.topic, { allowEmpty: true });
  },
  /** A message body: line breaks and tabs kept, bidi controls stripped; its maximum is checked apart (413). */
  get body() {
    return text({ min: LIMITS.body.min }, { multiline: true, bidi: "strip" });
  },
  get emoji() {
    return text(LIMITS.emoji);
  },
  status: { type: "enum", values: ["online", "away"] },
  /** A page size from 1 to `max`; optional (each action has its default). */
  limit: (max: number) => integer(1, max, { optional: true }),
};

/** The most sends one `chat.sendBatch` call carries and one chat transaction stores. */
export const SEND_BATCH_MAX = 256;
