/**
 * The REST surface of docs/API.md: one line per endpoint, mapped to the action that serves it
 * and the status it answers with on success (an action may override it, e.g. 200 for a repeat).
 */
export interface RestRoute {
  action: string;
  status?: number;
  /** For 201: where the created resource lives (the Location header). */
  location?: (result: never) => string;
  /** Counts against the caller's send rate limit, like `message:send` on the socket. */
  sendLimited?: boolean;
}

export const REST_ROUTES: Record<string, RestRoute> = {
  "GET /health": { action: "api.health" },
  // Extensions: for load balancers and systemd (200 / 503), and the API's own description.
  "GET /health/live": { action: "api.healthLive" },
  "GET /health/ready": { action: "api.healthReady" },
  "GET /openapi.json": { action: "api.openapi" },

  "POST /auth/register": {
    action: "auth.register",
    status: 201,
    location: (r: { user: { id: number } }) => `/api/users/${r.user.id}`,
  },
  "POST /auth/login": { action: "auth.login" },
  "POST /auth/refresh": { action: "auth.refresh" },
  "POST /auth/logout": { action: "auth.logout", status: 204 },

  "GET /users/me": { action: "users.me" },
  "PATCH /users/me": { action: "users.updateMe" },
  "GET /users": { action: "users.search" },
  "GET /users/:id": { action: "users.get" },

  "GET /rooms": { action: "chat.listRooms" },
  "GET /rooms/public": { action: "chat.browseRooms" },
  "POST /rooms": { action: "chat.createRoom", status: 201 },
  "POST /rooms/direct": { action: "chat.openDirect" },
  "GET /rooms/:id": { action: "chat.getRoom" },
  "PATCH /rooms/:id": { action: "chat.updateRoom" },
  "POST /rooms/:id/join": { action: "chat.joinRoom" },
  "POST /rooms/:id/leave": { action: "chat.leaveRoom", status: 204 },
  "GET /rooms/:id/members": { action: "chat.members" },
  "POST /rooms/:id/members": {
    action: "chat.invite",
    status: 201,
    location: (r: { roomId: number }) => `/api/rooms/${r.roomId}/members`,
  },
  "DELETE /rooms/:id/members/:userId": { action: "chat.kick", status: 204 },
  "GET /rooms/:roomId/messages": { action: "chat.history" },
  "POST /rooms/:roomId/messages": { action: "chat.send", status: 201, sendLimited: true },
  "PATCH /rooms/:roomId/messages/:messageId": { action: "chat.edit" },
  "DELETE /rooms/:roomId/messages/:messageId": {
    action: "chat.delete",
    status: 204,
  },
  "POST /rooms/:roomId/messages/:messageId/reactions": { action: "chat.react" },
  "POST /rooms/:roomId/read": { action: "chat.markRead", status: 204 },

  // Extension: per-room notification level ("all" | "mentions" | "none").
  "GET /rooms/:id/notifications": { action: "notify.getRoomLevel" },
  "PUT /rooms/:id/notifications": { action: "notify.setRoomLevel" },

  "GET /notifications": { action: "notify.list" },
  "POST /notifications/seen": { action: "notify.markSeen", status: 204 },

  "GET /admin/events": { action: "log.query" },
  "GET /admin/events/stats": { action: "log.stats" },
  // Extension: run the retention purge now (operators, tests); answers { deleted }.
  "POST /admin/events/purge": { action: "log.purge" },
  // Extension: durable events a consumer kept refusing (list, deliver again, drop; audited).
  "GET /admin/dead-letters": { action: "log.deadLetters" },
  "POST /admin/dead-letters/:id/retry": { action: "log.retryDeadLetter" },
  "DELETE /admin/dead-letters/:id": { action: "log.dropDeadLetter", status: 204 },
};

/** moleculer-web aliases (`"GET users/:id": "users.get"`) for the routes mounted under /api. */
export function aliasesOf(routes: Record<string, RestRoute>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(routes).map(([key, route]) => {
      const [method, path] = key.split(" ");
      return [`${method} ${path.replace(/^\//, "")}`, route.action];
    }),
  );
}

/** The route an alias was built from. */
export function routeOf(method: string, aliasPath: string): RestRoute | undefined {
  return REST_ROUTES[`${method} ${aliasPath.startsWith("/") ? aliasPath : `/${aliasPath}`}`];
}
