/** Answers as flat tables: what the answers view renders. Built once per result,
 * in the parse worker for a run's answers (./parse.worker.ts), so the main thread
 * receives only strings and flags; proofs stay where the result was parsed and are
 * fetched one at a time when a row is selected. */

import type { AnswerDiagnostic, FactNode, QueryAnswers, Reason } from "../api/types";
import { formatTerm } from "./terms";

/** One query's answers: atoms, the bindings as text (row-major, one cell per variable),
 * and which rows have a proof. */
export interface AnswerTable {
  query: string;
  variables: string[];
  atoms: string[];
  /** `cells[row * variables.length + column]`; "" where a variable is unbound */
  cells: string[];
  hasProof: boolean[];
  /** each row's reasons as the API orders them (highest weight first); [] where none.
   * Small (a few per answer), so they travel with the table rather than on demand. */
  reasons: Reason[][];
  /** the engine's warnings about the query (components/QueryDiagnostics.tsx) */
  diagnostics?: AnswerDiagnostic[];
}

/** The answers of a result as the views need them: the tables at once, a proof or a
 * query's full JSON on demand (synchronously when the answers are on this thread). */
export interface AnswerSource {
  tables: AnswerTable[];
  proof(query: number, answer: number): FactNode | undefined | Promise<FactNode | undefined>;
  json(query: number): string | Promise<string>;
}

export function indexAnswers(answers: QueryAnswers[]): AnswerTable[] {
  return answers.map((q) => {
    const variables = [...new Set(q.answers.flatMap((a) => Object.keys(a.bindings)))];
    const atoms = new Array<string>(q.answers.length);
    const cells = new Array<string>(q.answers.length * variables.length);
    const hasProof = new Array<boolean>(q.answers.length);
    const reasons = new Array<Reason[]>(q.answers.length);
    q.answers.forEach((a, row) => {
      atoms[row] = a.atom;
      hasProof[row] = Boolean(a.proof);
      reasons[row] = a.reasons ?? [];
      variables.forEach((v, column) => {
        cells[row * variables.length + column] = v in a.bindings ? formatTerm(a.bindings[v]) : "";
      });
    });
    return { query: q.query, variables, atoms, cells, hasProof, reasons, diagnostics: q.diagnostics };
  });
}

/** A source over answers already on this thread (a decision's page, small results, tests). */
export function sourceFromAnswers(answers: QueryAnswers[]): AnswerSource {
  return {
    tables: indexAnswers(answers),
    proof: (q, a) => answers[q]?.answers[a]?.proof ?? undefined,
    json: (q) => JSON.stringify(answers[q], null, 2),
  };
}

/** A decision's principal reasons: every reason its answers cite, one per code (the
 * heaviest citation of it), highest weight first; equal weights keep first-cited order. */
export function principalReasons(tables: AnswerTable[]): Reason[] {
  const byCode = new Map<string, { reason: Reason; order: number }>();
  for (const table of tables) {
    for (const row of table.reasons) {
      for (const reason of row) {
        const seen = byCode.get(reason.code);
        if (!seen) byCode.set(reason.code, { reason, order: byCode.size });
        else if (reason.weight > seen.reason.weight) seen.reason = reason;
      }
    }
  }
  return [...byCode.values()]
    .sort((a, b) => b.reason.weight - a.reason.weight || a.order - b.order)
    .map((e) => e.reason);
}

/** Whether any answer of the tables cites a reason. */
export function hasReasons(table: AnswerTable): boolean {
  return table.reasons.some((r) => r.length > 0);
}

/** One row's cells. */
export function rowCells(table: AnswerTable, row: number): string[] {
  const width = table.variables.length;
  return table.cells.slice(row * width, row * width + width);
}

/** A table as CSV: one row per answer, the atom then each variable's binding. */
export function tableCsv(table: AnswerTable): string {
  const cell = (text: string) => (/[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);
  const rows = [["atom", ...table.variables].map(cell).join(",")];
  table.atoms.forEach((atom, row) => {
    rows.push([atom, ...rowCells(table, row)].map(cell).join(","));
  });
  return `${rows.join("\n")}\n`;
}
