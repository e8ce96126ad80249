/** The difference between two versions of a dataset, per predicate: how many facts
 * were added and removed, and the API's samples of each. */

import { type DatasetDiff, rowFact } from "../api/datasets";
import { groupDigits } from "../format";
import { Empty } from "./Status";

export function DatasetDiffView({ diff, label }: { diff: DatasetDiff; label: string }) {
  const changed = diff.predicates.filter((p) => p.added > 0 || p.removed > 0);
  const added = changed.reduce((n, p) => n + p.added, 0);
  const removed = changed.reduce((n, p) => n + p.removed, 0);
  return (
    <section aria-label={`Diff ${label}`} data-testid="dataset-diff">
      <h3>Diff {label}</h3>
      {changed.length === 0 ? (
        <Empty>Identical: the two versions hold the same facts.</Empty>
      ) : (
        <>
          <p data-testid="dataset-diff-total">
            <span class="diff-added">+{groupDigits(added)}</span>{" "}
            <span class="diff-removed">−{groupDigits(removed)}</span> facts in {changed.length}{" "}
            {changed.length === 1 ? "predicate" : "predicates"}
          </p>
          <div class="table-scroll" tabindex={0}>
            <table>
              <thead>
                <tr>
                  <th scope="col">Predicate</th>
                  <th scope="col">Added</th>
                  <th scope="col">Removed</th>
                  <th scope="col">Samples</th>
                </tr>
              </thead>
              <tbody>
                {changed.map((p) => (
                  <tr key={`${p.predicate}/${p.arity}`}>
                    <th scope="row">
                      {p.predicate}/{p.arity}
                    </th>
                    <td class="num">{groupDigits(p.added)}</td>
                    <td class="num">{groupDigits(p.removed)}</td>
                    <td>
                      <ul class="diff-samples">
                        {p.added_sample.map((row, i) => (
                          <li key={`a${i}`} class="diff-added">
                            + {rowFact(p.predicate, row)}
                          </li>
                        ))}
                        {p.removed_sample.map((row, i) => (
                          <li key={`r${i}`} class="diff-removed">
                            − {rowFact(p.predicate, row)}
                          </li>
                        ))}
                        {p.added_sample.length + p.removed_sample.length < p.added + p.removed && (
                          <li class="muted">
                            {groupDigits(p.added + p.removed - p.added_sample.length - p.removed_sample.length)} more
                            not shown
                          </li>
                        )}
                      </ul>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
