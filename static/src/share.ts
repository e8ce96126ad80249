/** Share links: the program, facts and queries in the URL fragment (#share=…),
 * which browsers never send to a server. */

export interface Shared {
  source: string;
  facts: string;
  queries: string[];
}

function toBase64Url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export function encodeShare(draft: Shared): string {
  return `#share=${toBase64Url(new TextEncoder().encode(JSON.stringify([1, draft.source, draft.facts, draft.queries])))}`;
}

/** The draft in a fragment, or null when there is none or it is damaged. */
export function decodeShare(hash: string): Shared | null {
  const m = /^#share=([A-Za-z0-9_-]+)$/.exec(hash);
  if (!m) return null;
  try {
    const [v, source, facts, queries] = JSON.parse(new TextDecoder().decode(fromBase64Url(m[1]))) as unknown[];
    if (v !== 1 || typeof source !== "string" || typeof facts !== "string" || !Array.isArray(queries)) return null;
    return { source, facts, queries: queries.filter((q): q is string => typeof q === "string") };
  } catch {
    return null;
  }
}
