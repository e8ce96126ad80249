/** One dataset version's facts, a predicate at a time, in canonical order and paged
 * by the API's page token (never the whole table in the browser). */

import { useState } from "preact/hooks";
import { type DatasetPredicate, datasetFacts, type FactsPage } from "../api/datasets";
import type { Transport } from "../api/operations";
import { groupDigits } from "../format";
import { useLoad } from "../pages/Rulesets";
import { Empty, ErrorView, Spinner } from "./Status";

export const FACTS_PAGE_SIZE = 50;

export function DatasetFacts({
  api,
  selector,
  predicates,
  pageSize = FACTS_PAGE_SIZE,
}: {
  api: Transport;
  /** `name@N`: the version whose facts are shown */
  selector: string;
  predicates: DatasetPredicate[];
  pageSize?: number;
}) {
  const [chosen, setChosen] = useState(0);
  // the tokens of the pages before this one: Previous pops, Next pushes
  const [tokens, setTokens] = useState<(string | null)[]>([null]);
  const predicate = predicates[chosen] ?? predicates[0];
  const token = tokens[tokens.length - 1];
  const page = useLoad<FactsPage | null>(
    () =>
      predicate
        ? datasetFacts(api, selector, { predicate: predicate.name, page_size: pageSize, page_token: token })
        : Promise.resolve(null),
    [selector, predicate?.name, predicate?.arity, token, pageSize],
  );
  if (predicates.length === 0) return <Empty>This version has no facts.</Empty>;
  const first = (tokens.length - 1) * pageSize;
  const rows = page.data?.rows ?? [];
  const columns = predicate.arity;
  return (
    <section aria-labelledby="ds-facts-title" data-testid="dataset-facts">
      <h3 id="ds-facts-title">Facts</h3>
      <div class="inline-form">
        <label for="facts-predicate">Predicate</label>
        <select
          id="facts-predicate"
          value={chosen}
          onChange={(e) => {
            setChosen(Number((e.target as HTMLSelectElement).value));
            setTokens([null]);
          }}
        >
          {predicates.map((p, i) => (
            <option key={`${p.name}/${p.arity}`} value={i}>
              {p.name}/{p.arity} ({groupDigits(p.rows)} rows)
            </option>
          ))}
        </select>
        <button type="button" disabled={tokens.length < 2} onClick={() => setTokens(tokens.slice(0, -1))}>
          Previous page
        </button>
        <button
          type="button"
          disabled={!page.data?.next_page_token}
          onClick={() => setTokens([...tokens, page.data?.next_page_token ?? null])}
        >
          Next page
        </button>
        {page.data && (
          <span class="muted" role="status">
            {rows.length === 0
              ? "no rows"
              : `rows ${groupDigits(first + 1)}–${groupDigits(first + rows.length)} of ${groupDigits(predicate.rows)}`}
          </span>
        )}
      </div>
      {page.loading && <Spinner label={`Loading ${predicate.name}/${predicate.arity}…`} />}
      {page.error !== null && <ErrorView error={page.error} onRetry={page.retry} />}
      {page.data && rows.length > 0 && (
        <div class="table-scroll" tabindex={0}>
          <table>
            <caption>
              {predicate.name}/{predicate.arity}
            </caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                {Array.from({ length: columns }, (_, i) => (
                  <th scope="col" key={i}>
                    argument {i + 1}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((row, r) => (
                <tr key={first + r}>
                  <td class="muted">{first + r + 1}</td>
                  {row.map((value, c) => (
                    <td key={c} class={typeof value === "number" ? "num" : undefined}>
                      {typeof value === "number" ? String(value) : value}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
