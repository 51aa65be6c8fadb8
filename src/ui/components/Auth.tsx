/** Sign in and sign up: one form, two modes. Field errors come from the server's `fields`. */
import { useState } from "preact/hooks";
import type { AuthResult } from "../../contracts/objects.js";
import { api } from "../api.js";
import { signedOutReason, storeTokens } from "../session.js";
import { me, putUsers } from "../state.js";
import { FormError } from "./Dialog.js";
import { Field, useFormAction } from "./Field.js";

export function AuthScreen() {
  const [mode, setMode] = useState<"signin" | "signup">("signin");
  const { failure, setFailure, busy, run } = useFormAction();
  const signingUp = mode === "signup";

  const switchTo = (next: "signin" | "signup") => {
    setMode(next);
    setFailure(null);
  };

  const submit = async (event: SubmitEvent) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const username = String(form.get("username") ?? "").trim();
    const password = String(form.get("password") ?? "");
    const displayName = String(form.get("displayName") ?? "").trim();
    await run(async () => {
      const result = signingUp
        ? await api<AuthResult>(
            "POST",
            "/auth/register",
            { username, password, ...(displayName ? { displayName } : {}) },
            { auth: false },
          )
        : await api<AuthResult>("POST", "/auth/login", { username, password }, { auth: false });
      me.value = result.user;
      putUsers([result.user]);
      storeTokens(result, result.user.id);
    });
  };

  return (
    <main class="auth">
      <div class="auth-card">
        <div class="brand brand-large" aria-hidden="true">
          <span class="brand-mark">N</span> NoChat
        </div>
        <h1>{signingUp ? "Create your account" : "Sign in to NoChat"}</h1>
        {signedOutReason.value && !failure && <p class="notice">{signedOutReason.value}</p>}
        <FormError text={failure?.message ?? null} />
        <form onSubmit={submit} noValidate>
          <Field
            label="Username"
            name="username"
            autocomplete="username"
            autocapitalize="none"
            spellcheck={false}
            required
            error={failure?.fields.get("username")}
            hint={signingUp ? "3–32 letters, digits, dots, dashes or underscores" : undefined}
          />
          <Field
            label="Password"
            name="password"
            type="password"
            autocomplete={signingUp ? "new-password" : "current-password"}
            required
            error={failure?.fields.get("password")}
            hint={signingUp ? "At least 8 characters" : undefined}
          />
          {signingUp && (
            <Field
              label="Display name"
              name="displayName"
              autocomplete="name"
              maxLength={64}
              error={failure?.fields.get("displayName")}
            />
          )}
          <div class="auth-actions">
            {signingUp ? (
              <>
                <button type="submit" class="primary" disabled={busy}>
                  Sign up
                </button>
                <button type="button" class="link-button" onClick={() => switchTo("signin")}>
                  Sign in
                </button>
              </>
            ) : (
              <>
                <button type="submit" class="primary" disabled={busy}>
                  Sign in
                </button>
                <button type="button" class="link-button" onClick={() => switchTo("signup")}>
                  Sign up
                </button>
              </>
            )}
          </div>
        </form>
      </div>
    </main>
  );
}
