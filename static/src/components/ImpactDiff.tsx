/** Impact that explains: per decision only what was added and removed, decisions
 * that changed the same way grouped, and each differing rule marked old or new. */

import type { FactNode, ImpactResult, ProofNode, QueryAnswers } from "../api/types";
import { ProofTree } from "./ProofTree";

type Change = ImpactResult["changes"][number];

export interface ChangeGroup {
  added: string[];
  removed: string[];
  rules: { text: string; side: "old" | "new" | "both" }[];
  decisions: { id: string; version: number }[];
  /** the group's first decision: its proofs are shown side by side */
  example: Change;
}

/** One query's difference with its proofs: the old version's proofs of what it no
 * longer answers beside the candidate's proofs of what it answers instead. */
export interface ProofPair {
  query: string;
  removed: { atom: string; proof?: FactNode | null }[];
  added: { atom: string; proof?: FactNode | null }[];
}

export function proofPairs(change: Change): ProofPair[] {
  const queries = [...new Set([...change.old_answers, ...change.new_answers].map((q) => q.query))];
  const of = (answers: QueryAnswers[], query: string) => answers.find((q) => q.query === query)?.answers ?? [];
  const out: ProofPair[] = [];
  for (const query of queries) {
    const before = of(change.old_answers, query);
    const after = of(change.new_answers, query);
    const oldAtoms = new Set(before.map((a) => a.atom));
    const newAtoms = new Set(after.map((a) => a.atom));
    const removed = before.filter((a) => !newAtoms.has(a.atom)).map((a) => ({ atom: a.atom, proof: a.proof }));
    const added = after.filter((a) => !oldAtoms.has(a.atom)).map((a) => ({ atom: a.atom, proof: a.proof }));
    if (removed.length || added.length) out.push({ query, removed, added });
  }
  return out;
}

function atomSet(answers: QueryAnswers[]): Set<string> {
  return new Set(answers.flatMap((q) => q.answers.map((a) => a.atom)));
}

function ruleTexts(answers: QueryAnswers[]): Set<string> {
  const out = new Set<string>();
  const walk = (node: ProofNode) => {
    if (node.kind === "rule") {
      const rule = (node as FactNode).rule;
      if (rule) out.add(rule.text);
      for (const child of (node as FactNode).body ?? []) walk(child);
    }
  };
  for (const q of answers) for (const a of q.answers) if (a.proof) walk(a.proof);
  return out;
}

/** Where a differing rule is found: in the old version's proofs, the new one's, or both. */
export function ruleSide(text: string, change: Change): "old" | "new" | "both" {
  const inOld = ruleTexts(change.old_answers).has(text);
  const inNew = ruleTexts(change.new_answers).has(text);
  return inOld && inNew ? "both" : inNew ? "new" : "old";
}

export function groupChanges(changes: Change[]): ChangeGroup[] {
  const groups = new Map<string, ChangeGroup>();
  for (const c of changes) {
    const before = atomSet(c.old_answers);
    const after = atomSet(c.new_answers);
    const added = [...after].filter((a) => !before.has(a)).sort();
    const removed = [...before].filter((a) => !after.has(a)).sort();
    const key = JSON.stringify([added, removed]);
    let group = groups.get(key);
    if (!group) {
      group = {
        added,
        removed,
        rules: c.rules_differ.map((text) => ({ text, side: ruleSide(text, c) })),
        decisions: [],
        example: c,
      };
      groups.set(key, group);
    }
    group.decisions.push({ id: c.decision_id, version: c.version });
  }
  return [...groups.values()].sort((a, b) => b.decisions.length - a.decisions.length);
}

export function ImpactGroups({ result }: { result: ImpactResult }) {
  const groups = groupChanges(result.changes);
  return (
    <div data-testid="impact-groups">
      {groups.map((g, i) => (
        <section
          key={i}
          class="panel impact-group"
          aria-label={`Change ${i + 1}: ${g.decisions.length} decision${g.decisions.length === 1 ? "" : "s"}`}
        >
          <h3>
            {g.decisions.length} decision{g.decisions.length === 1 ? "" : "s"} changed this way
          </h3>
          <div class="diff-cols">
            <div>
              <h4>Removed (old version only)</h4>
              {g.removed.length ? (
                g.removed.map((a) => (
                  <code key={a} class="block diff-removed">
                    − {a}
                  </code>
                ))
              ) : (
                <span class="muted">nothing</span>
              )}
            </div>
            <div>
              <h4>Added (candidate only)</h4>
              {g.added.length ? (
                g.added.map((a) => (
                  <code key={a} class="block diff-added">
                    + {a}
                  </code>
                ))
              ) : (
                <span class="muted">nothing</span>
              )}
            </div>
          </div>
          {g.rules.length > 0 && (
            <>
              <h4>Rules that differ</h4>
              <ul class="rules-differ">
                {g.rules.map((r) => (
                  <li key={r.text}>
                    <span class={`kind kind-${r.side}`}>
                      {r.side === "new" ? "new" : r.side === "old" ? "old" : "old and new"}
                    </span>{" "}
                    <code>{r.text}</code>
                  </li>
                ))}
              </ul>
            </>
          )}
          <SideBySide change={g.example} />
          <p>
            Decisions:{" "}
            {g.decisions.map((d, j) => (
              <span key={d.id}>
                {j > 0 && ", "}
                <a href={`/decisions/${encodeURIComponent(d.id)}`}>
                  <code>{d.id}</code>
                </a>{" "}
                (v{d.version})
              </span>
            ))}
          </p>
        </section>
      ))}
    </div>
  );
}

/** The old and new proofs of one decision of a group, per query, in two columns. */
function SideBySide({ change }: { change: Change }) {
  const pairs = proofPairs(change);
  if (pairs.length === 0) return null;
  const column = (items: ProofPair["added"], none: string) =>
    items.length === 0 ? (
      <span class="muted">{none}</span>
    ) : (
      items.map((item) =>
        item.proof ? (
          <ProofTree key={item.atom} proof={item.proof} />
        ) : (
          <p key={item.atom}>
            <code>{item.atom}</code> <span class="muted">(no proof in the response)</span>
          </p>
        ),
      )
    );
  return (
    <details class="proof-pairs" data-testid="proof-pairs">
      <summary>
        Proofs side by side for <code>{change.decision_id}</code>
      </summary>
      {pairs.map((pair) => (
        <section key={pair.query} aria-label={`Proofs of ${pair.query}, old and new`}>
          <h4>
            <code>{pair.query}</code>
          </h4>
          <div class="diff-cols">
            <div>
              <h5>Old version (v{change.version})</h5>
              {column(pair.removed, "no answer removed")}
            </div>
            <div>
              <h5>Candidate</h5>
              {column(pair.added, "no answer added")}
            </div>
          </div>
        </section>
      ))}
    </details>
  );
}
