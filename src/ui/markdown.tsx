/**
 * The small markdown subset of messages — **bold**, *italic*, `code`, fenced code blocks, links and
 * @mentions — rendered straight to Preact nodes. User text only ever becomes text nodes; the one
 * attribute built from it, a link's href, is re-serialized by URL and must be http(s) or mailto.
 */
import type { ComponentChildren } from "preact";

const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
/** Bounds nested emphasis, so a crafted body cannot recurse deeply. */
const MAX_DEPTH = 3;

export function safeHref(raw: string): string | null {
  try {
    const url = new URL(raw);
    return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

export interface MarkdownOptions {
  /** Usernames that exist in the room, highlighted as mentions. */
  isMention: (username: string) => boolean;
  /** The reader's username, highlighted more strongly. */
  self?: string;
}

// One alternative per inline construct; mentions as the server finds them (mentionedUsernames).
const INLINE =
  /(`{1,3})([^`]+?)\1|\*\*(?=\S)([^\n]+?)\*\*|(?<![\w*])[*_](?=\S)([^*_\n]+?)[*_](?![\w*])|\[([^\]\n]{1,300})\]\(([^()\s]{1,2000})\)|(\bhttps?:\/\/[^\s<>"'`]+[^\s<>"'`.,;:!?)\]}])|(?<![a-z0-9_.-])@([a-z0-9_.-]{3,32})/gi;

function inline(text: string, opts: MarkdownOptions, depth: number): ComponentChildren[] {
  const out: ComponentChildren[] = [];
  let last = 0;
  INLINE.lastIndex = 0;
  const matches = [...text.matchAll(INLINE)];
  for (const m of matches) {
    const at = m.index ?? 0;
    if (at > last) out.push(text.slice(last, at));
    last = at + m[0].length;
    const [whole, , code, bold, italic, linkText, linkUrl, bareUrl, mention] = m;
    if (code !== undefined) out.push(<code>{code}</code>);
    else if (bold !== undefined) out.push(<strong>{depth < MAX_DEPTH ? inline(bold, opts, depth + 1) : bold}</strong>);
    else if (italic !== undefined) out.push(<em>{depth < MAX_DEPTH ? inline(italic, opts, depth + 1) : italic}</em>);
    else if (linkText !== undefined) {
      const href = safeHref(linkUrl);
      out.push(href ? <Link href={href}>{linkText}</Link> : whole);
    } else if (bareUrl !== undefined) {
      const href = safeHref(bareUrl);
      out.push(href ? <Link href={href}>{bareUrl}</Link> : whole);
    } else if (mention !== undefined) {
      const name = mention.toLowerCase().replace(/[.-]+$/, "");
      const trailing = mention.slice(name.length);
      if (opts.isMention(name)) {
        out.push(
          <span class={name === opts.self ? "mention mention-me" : "mention"}>@{mention.slice(0, name.length)}</span>,
        );
        if (trailing) out.push(trailing);
      } else out.push(whole);
    } else out.push(whole);
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function Link({ href, children }: { href: string; children: ComponentChildren }) {
  return (
    <a href={href} target="_blank" rel="noopener noreferrer">
      {children}
    </a>
  );
}

/** Splits fenced code blocks (```…```) from the prose around them. */
export function renderMarkdown(body: string, opts: MarkdownOptions): ComponentChildren[] {
  const out: ComponentChildren[] = [];
  const fence = /```[^\n`]*\n?([\s\S]*?)```/g;
  let last = 0;
  for (const m of body.matchAll(fence)) {
    const at = m.index ?? 0;
    if (at > last) out.push(...inline(body.slice(last, at), opts, 0));
    out.push(
      <pre>
        <code>{m[1].replace(/\n$/, "")}</code>
      </pre>,
    );
    last = at + m[0].length;
  }
  if (last < body.length) out.push(...inline(body.slice(last), opts, 0));
  return out;
}
