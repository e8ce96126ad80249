/** Answers per query: a filterable, virtualised table of atoms and bindings (only
 * the rows in view are in the DOM, so 10,000 answers stay fast); the selected row's
 * proof is shown in a side panel beside the table. The tables come ready-made
 * (src/results/answerTables.ts): a run's are built in the parse worker. */

import type { ComponentChildren } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import type { FactNode, QueryAnswers } from "../api/types";
import {
  type AnswerSource,
  type AnswerTable,
  hasReasons,
  indexAnswers,
  rowCells,
  sourceFromAnswers,
  tableCsv,
} from "../results/answerTables";
import { ProofTree } from "./ProofTree";
import { QueryDiagnostics } from "./QueryDiagnostics";
import { ReasonList } from "./Reasons";

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

export function matches(atom: string, needle: string): boolean {
  return !needle || atom.toLowerCase().includes(needle.toLowerCase());
}

/** Answers as CSV: one row per answer, the atom then each variable's binding. */
export function answersCsv(q: QueryAnswers): string {
  return tableCsv(indexAnswers([q])[0]);
}

type Selection = { q: number; a: number };

/** The answers of a result: pass `answers` when they are on this thread, or a `source`
 * (e.g. from the parse worker, src/results/offThread.ts) whose proofs come on demand. */
export function AnswersView({
  answers,
  source: given,
  onRule,
  whenEmpty,
}: {
  answers?: QueryAnswers[];
  source?: AnswerSource;
  onRule?: (line: number) => void;
  /** shown under a query with no answers (the playground's "Why not?") */
  whenEmpty?: (query: string) => ComponentChildren;
}) {
  const source = useMemo(() => given ?? sourceFromAnswers(answers ?? []), [given, answers]);
  // a selection belongs to one result: a new result starts at its first proof
  const [choice, setChoice] = useState<{ source: AnswerSource; at: Selection | null } | null>(null);
  const selected = choice?.source === source ? choice.at : firstWithProof(source.tables);
  const setSelected = (at: Selection) => setChoice({ source, at });
  const proof = useProof(source, selected);
  const atom = selected ? source.tables[selected.q]?.atoms[selected.a] : undefined;
  return (
    <div class={proof ? "answers with-proof" : "answers"}>
      <div class="answers-tables">
        {source.tables.map((table, qi) => (
          <QueryTable
            key={table.query}
            table={table}
            qi={qi}
            selected={selected}
            onSelect={setSelected}
            json={() => source.json(qi)}
            whenEmpty={whenEmpty}
          />
        ))}
      </div>
      {proof && (
        <aside class="proof-panel" aria-label="Proof of the selected answer">
          <ProofTree key={atom} proof={proof} onRule={onRule} />
        </aside>
      )}
    </div>
  );
}

/** The selected answer's proof: at once from a local source, when it arrives from the worker. */
function useProof(source: AnswerSource, selected: Selection | null): FactNode | undefined {
  const [loaded, setLoaded] = useState<{ source: AnswerSource; key: string; proof: FactNode | undefined } | null>(null);
  const key = selected ? `${selected.q}:${selected.a}` : "";
  // one call per selection (a worker round trip when the source is the worker's)
  const now = useMemo(() => (selected ? source.proof(selected.q, selected.a) : undefined), [source, key]);
  const pending = now instanceof Promise ? now : null;
  useEffect(() => {
    if (!pending) return;
    let current = true;
    pending.then(
      (proof) => current && setLoaded({ source, key, proof }),
      () => current && setLoaded({ source, key, proof: undefined }),
    );
    return () => {
      current = false;
    };
  }, [pending, source, key]);
  if (!selected) return undefined;
  if (!pending) return now as FactNode | undefined;
  return loaded && loaded.source === source && loaded.key === key ? loaded.proof : undefined;
}

function QueryTable({
  table,
  qi,
  selected,
  onSelect,
  json,
  whenEmpty,
}: {
  table: AnswerTable;
  qi: number;
  selected: Selection | null;
  onSelect: (s: Selection) => void;
  json: () => string | Promise<string>;
  whenEmpty?: (query: string) => ComponentChildren;
}) {
  const [filter, setFilter] = useState("");
  const [scrollTop, setScrollTop] = useState(0);
  const { variables, atoms } = table;
  const rows = useMemo(() => {
    const out: number[] = [];
    atoms.forEach((atom, i) => {
      if (matches(atom, filter)) out.push(i);
    });
    return out;
  }, [atoms, filter]);
  const virtual = rows.length > VIRTUAL_FROM;
  const withReasons = useMemo(() => hasReasons(table), [table]);
  const [first, last] = virtual ? visibleRange(scrollTop, rows.length) : [0, rows.length];
  const count = `${atoms.length} answer${atoms.length === 1 ? "" : "s"}`;
  return (
    <section class="query-answers" aria-label={`Answers to ${table.query}`}>
      <h3>
        <code>{table.query}</code> <span class="count">{filter ? `${rows.length} of ${count}` : count}</span>
      </h3>
      <QueryDiagnostics query={table.query} items={table.diagnostics} />
      {atoms.length === 0 ? (
        <>
          <p class="empty">No answers: nothing in the model matches this query.</p>
          {whenEmpty?.(table.query)}
        </>
      ) : (
        <>
          <div class="table-tools">
            <label>
              Filter{" "}
              <input
                type="search"
                value={filter}
                onInput={(e) => setFilter((e.target as HTMLInputElement).value)}
                aria-label={`Filter answers to ${table.query}`}
              />
            </label>
            <button type="button" onClick={() => download(`answers-${qi + 1}.csv`, tableCsv(table), "text/csv")}>
              CSV
            </button>
            <button
              type="button"
              onClick={async () => download(`answers-${qi + 1}.json`, await json(), "application/json")}
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
                  {withReasons && <th scope="col">Reasons</th>}
                  <th scope="col">Proof</th>
                </tr>
              </thead>
              <tbody>
                {first > 0 && <tr aria-hidden="true" style={{ height: `${first * ROW_HEIGHT}px` }} />}
                {rows.slice(first, last).map((ai, k) => {
                  const isSelected = selected?.q === qi && selected?.a === ai;
                  return (
                    <tr key={atoms[ai]} class={isSelected ? "selected" : ""} aria-rowindex={first + k + 2}>
                      <td>
                        <code>{atoms[ai]}</code>
                      </td>
                      {rowCells(table, ai).map((text, column) => (
                        <td key={variables[column]}>{text}</td>
                      ))}
                      {withReasons && (
                        <td class="reasons-cell">
                          <ReasonList reasons={table.reasons[ai] ?? []} label={`Reasons for ${atoms[ai]}`} />
                        </td>
                      )}
                      <td>
                        {table.hasProof[ai] ? (
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

function firstWithProof(tables: AnswerTable[]): Selection | null {
  for (let q = 0; q < tables.length; q++) {
    const a = tables[q].hasProof.indexOf(true);
    if (a >= 0) return { q, a };
  }
  return null;
}
