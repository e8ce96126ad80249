/** How a term is written in the app: integers as numbers, strings quoted, constants bare
 * (the engine's own spelling, so an answer copied from a table reads back the same). */

import type { Term } from "../api/types";

export function formatTerm(term: Term): string {
  if (typeof term === "number") return String(term);
  if (typeof term === "string") return JSON.stringify(term);
  return term.const;
}
