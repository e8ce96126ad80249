/** The dataset versions a decision used (`DecisionRecord.datasets`): each binding of
 * its program with the exact version and hash, linked to that version's page. */

import type { DatasetRef } from "../api/datasets";
import { datasetHref } from "../router";

export function DatasetRefs({ refs }: { refs: DatasetRef[] }) {
  return (
    <ul class="plain" data-testid="decision-datasets">
      {refs.map((r) => (
        <li key={r.binding}>
          {r.binding !== r.name && <span class="muted">{r.binding}: </span>}
          <a href={datasetHref(r.name, r.version)}>
            {r.name} v{r.version}
          </a>{" "}
          <code title={r.hash}>{r.hash.slice(0, 12)}</code>
        </li>
      ))}
    </ul>
  );
}
