/** Answers per query: a filterable, virtualised table of atoms and bindings (only
 * the rows in view are in the DOM, so 10,000 answers stay fast); the selected row's
 * proof is shown in a side panel beside the table. */

import { useMemo, useState } from "preact/hooks";
import type { Answer, QueryAnswers } from "../api/types";
import { formatTerm, ProofTree } from "./ProofTree";

/** Row height of the virtualised table (px); rows are one line, clipped. */
export const ROW_HEIGHT = 34;
/** Tables up to this many rows render whole; longer ones are virtualised. */
export const VIRTUAL_FROM = 200;
const VIEWPORT_ROWS = 14;
const OVERSCAN = 6;

/** Which rows of a scrolled list are rendered: [first, last) with some overscan. */
export function visibleRange(scrollTop: number, rows: number, viewportRows = VIEWPORT_ROWS): [number, number] {
  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  return [first, Math.min(rows, first + viewportRows + 2 * OVERSCAN)];
}

export function matches(answer: Answer, needle: string): boolean {
  return !needle || answer.atom.toLowerCase().includes(needle.toLowerCase());
}

/** Answers as CSV: one row per answer, the atom then each variable's binding. */
export function answersCsv(q: QueryAnswers): string {
  const variables = [...new Set(q.answers.flatMap((a) => Object.keys(a.bindings)))];
  const cell = (text: string) => (/[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);
  const rows = [["atom", ...variables].map(cell).join(",")];
  for (const a of q.answers) {
    rows.push(
      [a.atom, ...variables.map((v) => (v in a.bindings ? formatTerm(a.bindings[v]) : ""))].map(cell).join(","),
    );
  }
  return `${rows.join("\n")}\n`;
}

export function AnswersView({ answers, onRule }: { answers: QueryAnswers[]; onRule?: (line: number) => void }) {
  const [selected, setSelected] = useState<{ q: number; a: number } | null>(() => firstWithProof(answers));
  const chosen = selected ? answers[selected.q]?.answers[selected.a] : undefined;
  return (
    <div class={chosen?.proof ? "answers with-proof" : "answers"}>
      <div class="answers-tables">
        {answers.map((q, qi) => (
          <QueryTable key={q.query} q={q} qi={qi} selected={selected} onSelect={setSelected} />
        ))}
      </div>
      {chosen?.proof && (
        <aside class="proof-panel" aria-label="Proof of the selected answer">
          <ProofTree key={chosen.atom} proof={chosen.proof} onRule={onRule} />
        </aside>
      )}
    </div>
  );
}

function QueryTable({
  q,
  qi,
  selected,
  onSelect,
}: {
  q: QueryAnswers;
  qi: number;
  selected: { q: number; a: number } | null;
  onSelect: (s: { q: number; a: number }) => void;
}) {
  const [filter, setFilter] = useState("");
  const [scrollTop, setScrollTop] = useState(0);
  const variables = useMemo(() => [...new Set(q.answers.flatMap((a) => Object.keys(a.bindings)))], [q]);
  const rows = useMemo(() => {
    const out: number[] = [];
    q.answers.forEach((a, i) => {
      if (matches(a, filter)) out.push(i);
    });
    return out;
  }, [q, filter]);
  const virtual = rows.length > VIRTUAL_FROM;
  const [first, last] = virtual ? visibleRange(scrollTop, rows.length) : [0, rows.length];
  const count = `${q.answers.length} answer${q.answers.length === 1 ? "" : "s"}`;
  return (
    <section class="query-answers" aria-label={`Answers to ${q.query}`}>
      <h3>
        <code>{q.query}</code> <span class="count">{filter ? `${rows.length} of ${count}` : count}</span>
      </h3>
      {q.answers.length === 0 ? (
        <p class="empty">No answers: nothing in the model matches this query.</p>
      ) : (
        <>
          <div class="table-tools">
            <label>
              Filter{" "}
              <input
                type="search"
                value={filter}
                onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
                aria-label={`Filter answers to ${q.query}`}
              />
            </label>
            <button type="button" onClick={() => download(`answers-${qi + 1}.csv`, answersCsv(q), "text/csv")}>
              CSV
            </button>
            <button
              type="button"
              onClick={() => download(`answers-${qi + 1}.json`, JSON.stringify(q, null, 2), "application/json")}
            >
              JSON
            </button>
          </div>
          <div
            class={virtual ? "table-scroll virtual" : "table-scroll"}
            tabIndex={virtual ? 0 : undefined}
            aria-label={virtual ? `${rows.length} answers, scroll to see more` : undefined}
            onScroll={virtual ? (e) => setScrollTop((e.target as HTMLElement).scrollTop) : undefined}
            data-testid={virtual ? "virtual-table" : undefined}
          >
            <table aria-rowcount={rows.length + 1}>
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
                {first > 0 && <tr aria-hidden="true" style={{ height: `${first * ROW_HEIGHT}px` }} />}
                {rows.slice(first, last).map((ai, k) => {
                  const a = q.answers[ai];
                  const isSelected = selected?.q === qi && selected?.a === ai;
                  return (
                    <tr key={a.atom} class={isSelected ? "selected" : ""} aria-rowindex={first + k + 2}>
                      <td>
                        <code>{a.atom}</code>
                      </td>
                      {variables.map((v) => (
                        <td key={v}>{v in a.bindings ? formatTerm(a.bindings[v]) : ""}</td>
                      ))}
                      <td>
                        {a.proof ? (
                          <button type="button" aria-pressed={isSelected} onClick={() => onSelect({ q: qi, a: ai })}>
                            {isSelected ? "Shown" : "Show proof"}
                          </button>
                        ) : (
                          <span class="muted">not explained</span>
                        )}
                      </td>
                    </tr>
                  );
                })}
                {last < rows.length && (
                  <tr aria-hidden="true" style={{ height: `${(rows.length - last) * ROW_HEIGHT}px` }} />
                )}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

function download(name: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function firstWithProof(answers: QueryAnswers[]): { q: number; a: number } | null {
  for (let q = 0; q < answers.length; q++) {
    const a = answers[q].answers.findIndex((x) => x.proof);
    if (a >= 0) return { q, a };
  }
  return null;
}
