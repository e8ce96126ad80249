/** A decision's outcome in one line, for the audit list: its answers (the first few
 * atoms per query, then how many more) or why it failed. */

import type { Decision } from "../api/types";

/** Atoms shown per query before "+N more". */
export const OUTCOME_ATOMS = 2;

export function outcomeOf(d: Pick<Decision, "status" | "answers" | "error">): string {
  if (d.status === "failed") {
    return `failed: ${d.error ? `${d.error.code}: ${d.error.message}` : "no reason recorded"}`;
  }
  if (!d.answers) return d.status === "succeeded" ? "no answers recorded" : d.status;
  const parts = d.answers.map((q) => {
    if (q.answers.length === 0) return `${q.query}: no answers`;
    const shown = q.answers.slice(0, OUTCOME_ATOMS).map((a) => a.atom);
    const more = q.answers.length - shown.length;
    return more > 0 ? `${shown.join(", ")} +${more} more` : shown.join(", ");
  });
  return parts.join("; ") || "no queries";
}
