/** Share links: the program, facts, queries and the dataset versions the draft
 * reads, in the URL fragment (#share=…), which browsers never send to a server.
 *
 * The payload is base64url JSON, an array whose first member is its version:
 * 1: `[1, source, facts, queries]` (links made before datasets; still opened)
 * 2: `[2, source, facts, queries, {binding: selector}]`
 * A fragment is hostile input: anyone can hand one out. One that is too long or
 * does not decode to exactly this shape is ignored as a whole (the receiver would
 * otherwise run something other than what was shared), with a reason to show. */

export interface Shared {
  source: string;
  facts: string;
  queries: string[];
  /** binding → selector (`orgchart@3`, `orgchart@prod`, ...), as the playground's picker holds it */
  datasets: Record<string, string>;
}

/** What a fragment holds: nothing to do with sharing, a draft, or a link to ignore and why. */
export type ShareRead = { kind: "none" } | { kind: "draft"; shared: Shared } | { kind: "ignored"; problem: string };

/** Longest `#share=…` fragment made or opened, in characters. Browsers keep
 * fragments of megabytes; this bounds the work a stranger's link can cause and
 * leaves room for a large case. */
export const SHARE_MAX_CHARS = 512 * 1024;
/** At most this many dataset bindings, each name and selector bounded like the API's. */
export const SHARE_MAX_DATASETS = 64;
const BINDING = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const SELECTOR_MAX_CHARS = 200;

function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** The fragment for a draft (version 2). It may exceed SHARE_MAX_CHARS: see shareTooLong. */
export function encodeShare(draft: Shared): string {
  const payload = [2, draft.source, draft.facts, draft.queries, draft.datasets];
  return `#share=${toBase64Url(new TextEncoder().encode(JSON.stringify(payload)))}`;
}

/** Whether a fragment is longer than a share link may be (it would be ignored on open). */
export function shareTooLong(hash: string): boolean {
  return hash.length > SHARE_MAX_CHARS;
}

/** A v2 payload's datasets member, or a reason it is not one. */
function readDatasets(value: unknown): Record<string, string> | string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "its datasets are not an object";
  const entries = Object.entries(value);
  if (entries.length > SHARE_MAX_DATASETS) return `it names more than ${SHARE_MAX_DATASETS} datasets`;
  for (const [binding, selector] of entries) {
    // `__proto__` matches the name pattern but would be a prototype, not a binding
    if (!BINDING.test(binding) || binding === "__proto__") return "a dataset binding's name is not valid";
    if (typeof selector !== "string" || selector.trim() === "" || selector.length > SELECTOR_MAX_CHARS)
      return `the dataset selector for ${binding} is not valid`;
  }
  // own properties only (fromEntries defines, never assigns): no prototype pollution
  return Object.fromEntries(entries) as Record<string, string>;
}

const DAMAGED = "the link is damaged or was not made by this app (it was cut short, or edited)";

/** What a location's fragment holds. */
export function readShare(hash: string): ShareRead {
  if (!hash.startsWith("#share=")) return { kind: "none" };
  if (shareTooLong(hash))
    return { kind: "ignored", problem: `the link is longer than ${SHARE_MAX_CHARS.toLocaleString("en")} characters` };
  const m = /^#share=([A-Za-z0-9_-]+)$/.exec(hash);
  if (!m) return { kind: "ignored", problem: DAMAGED };
  let payload: unknown;
  try {
    payload = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(fromBase64Url(m[1])));
  } catch {
    return { kind: "ignored", problem: DAMAGED };
  }
  if (!Array.isArray(payload)) return { kind: "ignored", problem: DAMAGED };
  const [version, source, facts, queries, datasets] = payload as unknown[];
  if (version !== 1 && version !== 2)
    return { kind: "ignored", problem: `the link is of a version this app does not know (${String(version)})` };
  if (
    payload.length !== (version === 1 ? 4 : 5) ||
    typeof source !== "string" ||
    typeof facts !== "string" ||
    !Array.isArray(queries) ||
    !queries.every((q) => typeof q === "string")
  )
    return { kind: "ignored", problem: DAMAGED };
  let chosen: Record<string, string> = {};
  if (version === 2) {
    const read = readDatasets(datasets);
    if (typeof read === "string") return { kind: "ignored", problem: read };
    chosen = read;
  }
  return { kind: "draft", shared: { source, facts, queries: queries as string[], datasets: chosen } };
}

/** The draft in a fragment, or null when there is none or it is to be ignored. */
export function decodeShare(hash: string): Shared | null {
  const read = readShare(hash);
  return read.kind === "draft" ? read.shared : null;
}
