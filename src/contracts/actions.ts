/** Params and results of the actions other services call over the bus (internal API). */
import type { Principal } from "./objects.js";

/** `auth.resolveToken` */
export interface ResolveTokenParams {
  token: string;
}
export interface ResolvedToken {
  principal: Principal;
  /** When the access token expires (epoch ms): nobody may cache it longer. */
  expiresAt: number;
}

/** `users.create` */
export interface CreateUserParams {
  username: string;
  displayName?: string;
}
