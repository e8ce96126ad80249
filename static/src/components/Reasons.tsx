/** Reason codes people can act on (docs/engine.md, "Reason templates"): an answer's
 * reasons as code chips with their messages, and a decision's principal reasons
 * (every code its answers cite, once, highest weight first) at the top of its page. */

import type { Reason } from "../api/types";

/** A severity as a CSS class suffix: the template's word, or "other" for anything unusual. */
export function severityClass(severity: string): string {
  return /^[a-z][a-z0-9-]{0,30}$/.test(severity) ? `reason-${severity}` : "reason-other";
}

/** One answer's reasons, in the order the API gives them (highest weight first). */
export function ReasonList({ reasons, label }: { reasons: Reason[]; label: string }) {
  if (reasons.length === 0) return null;
  return (
    <ul class="reasons" aria-label={label}>
      {reasons.map((r) => (
        <li key={r.code} class={severityClass(r.severity)} title={`${r.severity}, weight ${r.weight}`}>
          <span class="reason-code">{r.code}</span> {r.message}
        </li>
      ))}
    </ul>
  );
}

/** The principal reasons of a decision (answerTables.principalReasons). */
export function PrincipalReasons({ reasons }: { reasons: Reason[] }) {
  if (reasons.length === 0) return null;
  return (
    <section class="principal-reasons" aria-labelledby="reasons-title" data-testid="principal-reasons">
      <h2 id="reasons-title">Principal reasons</h2>
      <ol>
        {reasons.map((r) => (
          <li key={r.code} class={severityClass(r.severity)}>
            <span class="reason-code">{r.code}</span> {r.message}{" "}
            <span class="reason-meta">
              ({r.severity}, weight {r.weight})
            </span>
          </li>
        ))}
      </ol>
    </section>
  );
}
