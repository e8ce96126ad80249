/** The engine's warnings about one query, shown under it: why an answer may be
 * empty (an unknown predicate, strings where the program has constants) and what
 * to write instead. A query-text position gets a caret under the query. */

import type { AnswerDiagnostic } from "../api/types";

/** The caret line under `text` for a diagnostic positioned in it. */
export function caret(d: AnswerDiagnostic): string {
  const width = Math.max(1, (d.end_column ?? d.column + 1) - d.column);
  return " ".repeat(Math.max(0, d.column - 1)) + "^".repeat(width);
}

export function QueryDiagnostics({ query, items }: { query: string; items?: AnswerDiagnostic[] }) {
  if (!items || items.length === 0) return null;
  return (
    <ul class="diagnostics query-diagnostics" aria-label={`Warnings about ${query}`}>
      {items.map((d) => (
        <li key={`${d.code}:${d.line}:${d.column}`} class={`diag-${d.severity}`}>
          <span class="code">{d.code}</span> {d.message}
          {d.code.startsWith("query-") ? (
            <pre aria-hidden="true">
              {query}
              {"\n"}
              {caret(d)}
            </pre>
          ) : (
            <span class="where">
              {" "}
              (program line {d.line}, column {d.column})
            </span>
          )}
          {d.notes?.map((n) => (
            <div key={n} class="note">
              {n}
            </div>
          ))}
        </li>
      ))}
    </ul>
  );
}
