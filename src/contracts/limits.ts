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

export const rules = {
  id: { type: "number", integer: true, positive: true, convert: true },
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
  limit: (max: number) => ({
    type: "number",
    integer: true,
    positive: true,
    max,
    convert: true,
    optional: true,
  }),
} as const;
