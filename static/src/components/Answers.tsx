/** Answers per query: a table of atoms and bindings; selecting a row shows its proof. */

import { useState } from "preact/hooks";
import type { QueryAnswers } from "../api/types";
import { formatTerm, ProofTree } from "./ProofTree";

export function AnswersView({ answers, onRule }: { answers: QueryAnswers[]; onRule?: (line: number) => void }) {
  const [selected, setSelected] = useState<{ q: number; a: number } | null>(() => firstWithProof(answers));
  const chosen = selected ? answers[selected.q]?.answers[selected.a] : undefined;
  return (
    <div class="answers">
      {answers.map((q, qi) => {
        const variables = [...new Set(q.answers.flatMap((a) => Object.keys(a.bindings)))];
        return (
          <section key={q.query} class="query-answers" aria-label={`Answers to ${q.query}`}>
            <h3>
              <code>{q.query}</code> <span class="count">{q.answers.length} answer{q.answers.length === 1 ? "" : "s"}</span>
            </h3>
            {q.answers.length === 0 ? (
              <p class="empty">No answers: nothing in the model matches this query.</p>
            ) : (
              <div class="table-scroll">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Answer</th>
                      {variables.map((v) => (
                        <th scope="col" key={v}>
                          {v}
                        </th>
                      ))}
                      <th scope="col">Proof</th>
                    </tr>
                  </thead>
                  <tbody>
                    {q.answers.map((a, ai) => {
                      const isSelected = selected?.q === qi && selected?.a === ai;
                      return (
                        <tr key={a.atom} class={isSelected ? "selected" : ""}>
                          <td>
                            <code>{a.atom}</code>
                          </td>
                          {variables.map((v) => (
                            <td key={v}>{v in a.bindings ? formatTerm(a.bindings[v]) : ""}</td>
                          ))}
                          <td>
                            {a.proof ? (
                              <button type="button" aria-pressed={isSelected} onClick={() => setSelected({ q: qi, a: ai })}>
                                {isSelected ? "Shown" : "Show proof"}
                              </button>
                            ) : (
                              <span class="muted">not explained</span>
                            )}
                          </td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              </div>
            )}
          </section>
        );
      })}
      {chosen?.proof && <ProofTree key={chosen.atom} proof={chosen.proof} onRule={onRule} />}
    </div>
  );
}

function firstWithProof(answers: QueryAnswers[]): { q: number; a: number } | null {
  for (let q = 0; q < answers.length; q++) {
    const a = answers[q].answers.findIndex((x) => x.proof);
    if (a >= 0) return { q, a };
  }
  return null;
}
