/**
 * Bus events: name → payload, typed once for emitters and listeners alike.
 * `broadcast` ones reach every node (gateways fan out to their own sockets); the rest are
 * balanced to one instance of each listening service.
 */
import type { Role } from "./objects.js";

export interface BusEvents {
  /** A new account. */
  "users.created": { userId: number; username: string; roles: Role[] };
  /** A session ended (logout, refresh-token reuse): every gateway drops its tokens and sockets. */
  "auth.session.revoked": { sessionId: string; userId: number; reason: "logout" | "reuse" };
}

export type BusEventName = keyof BusEvents;

interface Emitter {
  emit(name: string, payload: unknown): Promise<void> | void;
  broadcast(name: string, payload: unknown): Promise<void> | void;
}

export function emitEvent<N extends BusEventName>(via: Emitter, name: N, payload: BusEvents[N]): Promise<void> {
  return Promise.resolve(via.emit(name, payload));
}

export function broadcastEvent<N extends BusEventName>(via: Emitter, name: N, payload: BusEvents[N]): Promise<void> {
  return Promise.resolve(via.broadcast(name, payload));
}
