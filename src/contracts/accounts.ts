/**
 * An account as the services that own or use accounts see it (users stores it; auth signs its
 * roles into tokens), and the two views of it the contract's `User` gives: typed once here so that
 * no service imports another's store.
 */
import type { Role, User, UserStatus } from "./objects.js";

/** A user as the owning services see it: the public User plus its roles. */
export interface UserRecord extends User {
  roles: Role[];
  /** The availability the user chose ("online" or "away"); `status` is what others see. */
  chosenStatus: UserStatus;
}

/** The User object of the contract, as others see it: offline without a connected socket. */
export function publicUser(record: UserRecord): User {
  const { roles: _roles, chosenStatus: _chosen, ...user } = record;
  return user;
}

/**
 * The caller's own User (`/api/users/me`, register, login): the status others see — `offline`
 * until one of their sockets connects, even right after registering — and their roles if any.
 */
export function ownUser(record: UserRecord, withRoles = true): User {
  const user = publicUser(record);
  return withRoles && record.roles.length > 0 ? { ...user, roles: record.roles } : user;
}
