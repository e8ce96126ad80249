/** Answers as flat tables: what the answers view renders. Built once per result,
 * in the parse worker for a run's answers (./parse.worker.ts), so the main thread
 * receives only strings and flags; proofs stay where the result was parsed and are
 * fetched one at a time when a row is selected. */

import type { AnswerDiagnostic, FactNode, QueryAnswers } from "../api/types";
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
    q.answers.forEach((a, row) => {
      atoms[row] = a.atom;
      hasProof[row] = Boolean(a.proof);
      variables.forEach((v, column) => {
        cells[row * variables.length + column] = v in a.bindings ? formatTerm(a.bindings[v]) : "";
      });
    });
    return { query: q.query, variables, atoms, cells, hasProof, diagnostics: q.diagnostics };
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
