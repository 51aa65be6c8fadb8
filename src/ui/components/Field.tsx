import { useRef, useState } from "preact/hooks";
import { ApiError, errorText } from "../api.js";

let nextId = 0;

/** A labelled input whose server-side error (from the contract's `fields`) sits next to it. */
export interface FieldProps {
  label: string;
  name: string;
  error?: string;
  hint?: string;
  type?: "text" | "password";
  value?: string;
  defaultValue?: string;
  onInput?: (value: string) => void;
  autocomplete?: string;
  required?: boolean;
  maxLength?: number;
  disabled?: boolean;
  autoFocus?: boolean;
  spellcheck?: boolean;
  autocapitalize?: "none" | "sentences";
}

export function Field(props: FieldProps) {
  const { label, error, hint, onInput, ...input } = props;
  const id = useRef(`field-${++nextId}`).current;
  const described = [error ? `${id}-error` : "", hint ? `${id}-hint` : ""].filter(Boolean).join(" ");
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {/* Preact types <input> as a union on `type`; the attributes here fit every member. */}
      <input
        {...({
          id,
          ...input,
          type: input.type ?? "text",
          onInput: onInput && ((e: Event) => onInput((e.currentTarget as HTMLInputElement).value)),
          "aria-invalid": error ? true : undefined,
          "aria-describedby": described || undefined,
        } as Record<string, unknown>)}
      />
      {hint && (
        <p class="field-hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {error && (
        <p class="field-error" id={`${id}-error`}>
          {error}
        </p>
      )}
    </div>
  );
}

/** A failed call as the form shows it: the message, and each bad field's message by field name. */
export interface FormFailure {
  message: string;
  fields: Map<string, string>;
}

export function formFailure(err: unknown): FormFailure {
  const fields = new Map<string, string>();
  if (err instanceof ApiError) for (const f of err.body.fields ?? []) fields.set(f.field, f.message);
  return { message: errorText(err), fields };
}

/** A form's submission: busy while it runs, and its failure (message and fields) when refused. */
export function useFormAction() {
  const [failure, setFailure] = useState<FormFailure | null>(null);
  const [busy, setBusy] = useState(false);
  /** Runs `action`; a throw becomes the form's failure. On success the caller moves on (closes). */
  const run = async (action: () => Promise<void>): Promise<void> => {
    setBusy(true);
    try {
      await action();
    } catch (err) {
      setFailure(formFailure(err));
    }
    setBusy(false);
  };
  return { failure, setFailure, busy, run };
}
