/** Why an atom does not hold (entail.why_not.v1, docs/proofs.md), readably: each
 * rule that could derive it, and for each partial match the body literal that
 * failed — the missing fact (with its own why-not, nested to the engine's depth),
 * the negated atom that holds (with its reasons), or the comparison with its values. */

import type { Reason, Term, WhyNot, WhyNotExplanation, WhyNotFailure } from "../api/types";
import { formatTerm } from "../results/terms";
import { ReasonList } from "./Reasons";

function bindingsText(bindings: Record<string, Term>): string {
  return Object.entries(bindings)
    .map(([k, v]) => `${k} = ${formatTerm(v)}`)
    .join(", ");
}

/** What went wrong with one literal, in words. */
export function failureText(f: WhyNotFailure): string {
  switch (f.kind) {
    case "missing":
      return f.source === "input"
        ? `${f.atom} is not among the case facts`
        : `${f.atom ?? f.literal} is not derived${f.cycle ? " (it depends on itself)" : ""}`;
    case "negation_holds":
      return `${f.witness ?? f.atom} holds, so ${f.literal} fails`;
    case "comparison_false":
      return `the comparison is false: ${f.evaluated}`;
    case "aggregate_false":
      return `the aggregate is ${f.value === undefined ? "?" : formatTerm(f.value)}: ${f.evaluated} is false`;
    case "head_mismatch":
      return `the rule's head cannot match: ${f.evaluated}`;
    case "undefined":
      return `${f.literal} is undefined here${f.evaluated ? ` (${f.evaluated})` : ""}`;
  }
}

function Failure({ failure, onRule }: { failure: WhyNotFailure; onRule?: (line: number) => void }) {
  const bound = bindingsText(failure.bindings);
  const reasons: Reason[] = failure.reasons ?? [];
  return (
    <li class={`why-failure why-${failure.kind}`}>
      <span class="why-kind">{failure.position < 0 ? "head" : `literal ${failure.position + 1}`}</span>{" "}
      <code>{failure.literal}</code>: {failureText(failure)}
      {bound && <span class="muted"> (with {bound})</span>}
      {reasons.length > 0 && <ReasonList reasons={reasons} label={`Reasons ${failure.witness ?? ""} holds`} />}
      {failure.why_not && <Explanation why={failure.why_not} onRule={onRule} nested />}
    </li>
  );
}

function Explanation({
  why,
  onRule,
  nested = false,
}: {
  why: WhyNotExplanation;
  onRule?: (line: number) => void;
  nested?: boolean;
}) {
  const head = (
    <>
      <code>{why.atom}</code> does not hold
      {why.source === "input" ? ": it is a case-fact predicate, and no such fact was given" : ""}
      {why.rules.length === 0 && why.source === "derived" ? ": no rule can derive it" : ""}
      {why.message ? ` (${why.message})` : ""}
    </>
  );
  const body = (
    <>
      {why.rules.length > 0 && (
        <ul class="why-rules">
          {why.rules.map((attempt) => (
            <li key={attempt.rule.index} class="why-rule">
              <span>
                Rule{" "}
                {onRule ? (
                  <button type="button" class="rule-link" onClick={() => onRule(attempt.rule.line)}>
                    line {attempt.rule.line}
                  </button>
                ) : (
                  `line ${attempt.rule.line}`
                )}
                : <code>{attempt.rule.text}</code>
              </span>
              {attempt.failures.length === 0 ? (
                <p class="muted">no partial match of its body</p>
              ) : (
                <ul class="why-failures">
                  {attempt.failures.map((f, i) => (
                    <Failure key={`${i}:${f.literal}`} failure={f} onRule={onRule} />
                  ))}
                </ul>
              )}
              {!attempt.complete && (
                <p class="muted why-cap">
                  {attempt.failures.length} of {attempt.total_failures} failed matches shown (capped).
                </p>
              )}
            </li>
          ))}
        </ul>
      )}
      {why.truncated && <p class="muted why-cap">Deeper explanations were cut at the depth limit.</p>}
    </>
  );
  return nested ? (
    <div class="why-nested">
      <p>{head}</p>
      {body}
    </div>
  ) : (
    <>
      <p class="why-head">{head}</p>
      {body}
    </>
  );
}

/** One why-not document as returned by the API (for an atom that holds, a one-line note). */
export function WhyNotView({ why, onRule }: { why: WhyNot; onRule?: (line: number) => void }) {
  return (
    <div class="why-not" data-testid="why-not">
      {why.holds ? (
        <p>
          <code>{why.atom}</code> holds: {why.message}
        </p>
      ) : (
        <Explanation why={why} onRule={onRule} />
      )}
    </div>
  );
}
