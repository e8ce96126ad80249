/** Impact that explains: per decision only what was added and removed, decisions
 * that changed the same way grouped, and each differing rule marked old or new. */

import type { FactNode, ImpactResult, ProofNode, QueryAnswers } from "../api/types";

type Change = ImpactResult["changes"][number];

export interface ChangeGroup {
  added: string[];
  removed: string[];
  rules: { text: string; side: "old" | "new" | "both" }[];
  decisions: { id: string; version: number }[];
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
