import type { User, UserStatus } from "../../contracts/objects.js";

export function PresenceDot({ status }: { status: UserStatus }) {
  return <span class={`presence presence-${status}`} aria-hidden="true" />;
}

/** Initials on a colour derived from the user id: recognisable without loading images. */
export function Avatar({ user, small }: { user: Pick<User, "id" | "displayName" | "username">; small?: boolean }) {
  const name = user.displayName || user.username;
  const initials = [...name.trim()].slice(0, 1).join("").toUpperCase() || "?";
  return (
    <span class={`avatar hue-${user.id % 8}${small ? " avatar-small" : ""}`} aria-hidden="true">
      {initials}
    </span>
  );
}
