/**
 * A modal dialog on the native <dialog>: focus is trapped and Esc closes it (the browser does
 * both), its name is its title, and focus returns to whatever opened it.
 */
import type { ComponentChildren } from "preact";
import { useLayoutEffect, useRef } from "preact/hooks";
import { IconButton } from "./icons.js";

let nextId = 0;

export function Dialog(props: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useRef(`dialog-title-${++nextId}`).current;
  useLayoutEffect(() => {
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const dialog = ref.current;
    dialog?.showModal();
    return () => {
      // While the modal is open the rest of the page is inert: close it before moving focus back.
      if (dialog?.open) dialog.close();
      if (opener?.isConnected) opener.focus();
      else document.querySelector<HTMLElement>("#composer, nav a")?.focus();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      class={props.wide ? "dialog dialog-wide" : "dialog"}
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        props.onClose();
      }}
      onClick={(e) => {
        // A click on the backdrop lands on the <dialog> itself.
        if (e.target === ref.current) props.onClose();
      }}
    >
      <div class="dialog-head">
        <h2 id={titleId}>{props.title}</h2>
        <IconButton label="Close" icon="close" onClick={props.onClose} />
      </div>
      <div class="dialog-body">{props.children}</div>
    </dialog>
  );
}

/** A refused form: the server's message (role=alert) above the form. */
export function FormError({ text }: { text: string | null }) {
  return text ? (
    <p role="alert" class="form-error">
      {text}
    </p>
  ) : null;
}
