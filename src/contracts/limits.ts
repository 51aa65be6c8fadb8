/**
 * The limits of shared/API.md as validator rules, shared by every service that checks them
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
  displayName: {
    type: "string",
    trim: true,
    min: LIMITS.displayName.min,
    max: LIMITS.displayName.max,
  },
  status: { type: "enum", values: ["online", "away"] },
  /** A page size from 1 to `max`; optional (each action has its default). */
  limit: (max: number) => integer(1, max, { optional: true }),
};
