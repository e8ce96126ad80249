/** The tenant's datasets (docs/datasets.md); one dataset's versions with their sizes
 * and fact counts, tags, the facts of a version, the diff of two versions and the
 * ruleset versions that bind it. */

import { useState } from "preact/hooks";
import {
  type DatasetDiff,
  type DatasetUse,
  type DatasetVersion,
  datasetDiff,
  datasetRulesets,
  datasetTagHistory,
  datasetVersions,
  listDatasets,
  moveDatasetTag,
  type TagMove,
} from "../api/datasets";
import { DatasetDiffView } from "../components/DatasetDiffView";
import { DatasetFacts } from "../components/DatasetFacts";
import { Empty, ErrorView, Spinner } from "../components/Status";
import { useSession } from "../context";
import { formatBytes, groupDigits } from "../format";
import { datasetHref } from "../router";
import { formatTime, useLoad } from "./Rulesets";

export function Datasets() {
  const { api } = useSession();
  const { data, error, loading, retry } = useLoad(() => listDatasets(api), []);
  return (
    <main id="main">
      <h1>Datasets</h1>
      <p class="muted">
        Reference data beside the rulesets: versioned, immutable, content-hashed facts that a program reads through its{" "}
        <code>%@dataset</code> declarations.
      </p>
      {loading && <Spinner label="Loading datasets…" />}
      {error !== null && <ErrorView error={error} onRetry={retry} />}
      {data && data.length === 0 && (
        <Empty>
          No datasets yet. Upload one with <code>entail dataset push NAME FILE</code> or{" "}
          <code>POST /v1/datasets/NAME</code> (JSON lines, CSV or Parquet).
        </Empty>
      )}
      {data && data.length > 0 && (
        <div class="table-scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Latest</th>
                <th scope="col">Facts</th>
                <th scope="col">Size</th>
                <th scope="col">Predicates</th>
                <th scope="col">Tags</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {data.map((d) => (
                <tr key={d.name}>
                  <td>
                    <a href={datasetHref(d.name)}>{d.name}</a>
                  </td>
                  <td>v{d.version}</td>
                  <td class="num">{groupDigits(d.facts)}</td>
                  <td class="num">{formatBytes(d.bytes)}</td>
                  <td>{predicateList(d)}</td>
                  <td>{(d.tags ?? []).join(", ") || "—"}</td>
                  <td>{formatTime(d.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </main>
  );
}

function predicateList(d: DatasetVersion): string {
  return d.predicates.map((p) => `${p.name}/${p.arity}`).join(", ") || "—";
}

export function DatasetPage({ name, version }: { name: string; version?: number }) {
  const { api, identity } = useSession();
  const canAuthor = identity.scopes.includes("author") || identity.scopes.includes("admin");
  const versions = useLoad<DatasetVersion[]>(() => datasetVersions(api, name), [name]);
  const uses = useLoad<DatasetUse[]>(() => datasetRulesets(api, name), [name]);
  const list = versions.data ?? [];
  const [shown, setShown] = useState<number | null>(version ?? null);
  const current = list.find((v) => v.version === shown) ?? list[0] ?? null;
  const [from, setFrom] = useState<number | "">("");
  const [to, setTo] = useState<number | "">("");
  const [compare, setCompare] = useState<{ from: number; to: number } | null>(null);
  const diff = useLoad<DatasetDiff | null>(
    () => (compare ? datasetDiff(api, name, compare.from, compare.to) : Promise.resolve(null)),
    [name, compare?.from, compare?.to],
  );
  const [tag, setTag] = useState("prod");
  const [tagVersion, setTagVersion] = useState<number | "">("");
  const [tagError, setTagError] = useState<unknown>(null);
  const [tagMoved, setTagMoved] = useState<string | null>(null);
  const [historyOf, setHistoryOf] = useState<string | null>(null);
  const history = useLoad<TagMove[] | null>(
    () => (historyOf ? datasetTagHistory(api, name, historyOf) : Promise.resolve(null)),
    [name, historyOf, tagMoved],
  );
  const tags = [...new Set(list.flatMap((v) => v.tags ?? []))].sort();
  // the two newest versions are what one usually compares
  const fromValue: number | "" = from !== "" ? from : list.length > 1 ? list[1].version : "";
  const toValue: number | "" = to !== "" ? to : list.length > 0 ? list[0].version : "";

  async function moveTag(event: Event) {
    event.preventDefault();
    if (tagVersion === "") return;
    setTagError(null);
    setTagMoved(null);
    try {
      await moveDatasetTag(api, name, tag.trim(), tagVersion);
      setTagMoved(`${tag.trim()} → v${tagVersion}`);
      versions.retry();
    } catch (e) {
      setTagError(e);
    }
  }

  return (
    <main id="main">
      <p>
        <a href="/datasets">← Datasets</a>
      </p>
      <h1>{name}</h1>
      {versions.loading && <Spinner label="Loading versions…" />}
      {versions.error !== null && <ErrorView error={versions.error} onRetry={versions.retry} />}
      {versions.data && list.length === 0 && <Empty>This dataset has no versions.</Empty>}
      {list.length > 0 && (
        <>
          <div class="table-scroll">
            <table data-testid="dataset-versions">
              <caption>Versions</caption>
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Uploaded</th>
                  <th scope="col">By</th>
                  <th scope="col">Facts</th>
                  <th scope="col">Size</th>
                  <th scope="col">Predicates (rows)</th>
                  <th scope="col">Tags</th>
                  <th scope="col">Hash</th>
                  <th scope="col">Contents</th>
                </tr>
              </thead>
              <tbody>
                {list.map((v) => (
                  <tr key={v.version} class={v.version === current?.version ? "selected" : ""}>
                    <td>v{v.version}</td>
                    <td>{formatTime(v.created_at)}</td>
                    <td>{v.created_by}</td>
                    <td class="num">{groupDigits(v.facts)}</td>
                    <td class="num">{formatBytes(v.bytes)}</td>
                    <td>{v.predicates.map((p) => `${p.name}/${p.arity}: ${groupDigits(p.rows)}`).join(", ") || "—"}</td>
                    <td>{(v.tags ?? []).join(", ") || "—"}</td>
                    <td>
                      <code title={v.hash}>{v.hash.slice(0, 12)}</code>
                    </td>
                    <td>
                      <button
                        type="button"
                        aria-pressed={v.version === current?.version}
                        onClick={() => setShown(v.version)}
                      >
                        View v{v.version}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <form
            class="inline-form"
            onSubmit={(e) => {
              e.preventDefault();
              if (fromValue !== "" && toValue !== "") setCompare({ from: fromValue, to: toValue });
            }}
          >
            <label for="ds-diff-from">Compare</label>
            <VersionSelect id="ds-diff-from" versions={list} value={fromValue} onChange={setFrom} />
            <label for="ds-diff-to">with</label>
            <VersionSelect id="ds-diff-to" versions={list} value={toValue} onChange={setTo} />
            <button type="submit" disabled={fromValue === "" || toValue === ""}>
              Show diff
            </button>
          </form>
          {canAuthor && (
            <form class="inline-form" onSubmit={moveTag}>
              <label for="ds-tag-name">Tag</label>
              <input
                id="ds-tag-name"
                value={tag}
                required
                size={10}
                onInput={(e) => setTag((e.target as HTMLInputElement).value)}
              />
              <label for="ds-tag-version">points at</label>
              <VersionSelect id="ds-tag-version" versions={list} value={tagVersion} onChange={setTagVersion} />
              <button type="submit" disabled={tagVersion === "" || !tag.trim()}>
                Move tag
              </button>
              {tagMoved && (
                <span role="status" class="ok">
                  Moved {tagMoved}
                </span>
              )}
            </form>
          )}
          {tagError !== null && <ErrorView error={tagError} />}
          {tags.length > 0 && (
            <p class="inline-form">
              Tag history:{" "}
              {tags.map((t) => (
                <button key={t} type="button" aria-pressed={historyOf === t} onClick={() => setHistoryOf(t)}>
                  {t}
                </button>
              ))}
            </p>
          )}
          {historyOf && history.loading && <Spinner label={`Loading the moves of ${historyOf}…`} />}
          {history.error !== null && <ErrorView error={history.error} onRetry={history.retry} />}
          {historyOf && history.data && (
            <div class="table-scroll">
              <table data-testid="dataset-tag-history">
                <caption>Moves of {historyOf}, newest first</caption>
                <thead>
                  <tr>
                    <th scope="col">To</th>
                    <th scope="col">From</th>
                    <th scope="col">By</th>
                    <th scope="col">When</th>
                  </tr>
                </thead>
                <tbody>
                  {history.data.map((m, i) => (
                    <tr key={i}>
                      <td>v{m.version}</td>
                      <td>{m.previous === null ? "—" : `v${m.previous}`}</td>
                      <td>{m.moved_by}</td>
                      <td>{formatTime(m.moved_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {compare && diff.loading && <Spinner label="Comparing the versions…" />}
          {diff.error !== null && <ErrorView error={diff.error} onRetry={diff.retry} />}
          {diff.data && compare && <DatasetDiffView diff={diff.data} label={`v${compare.from} → v${compare.to}`} />}
          {current && (
            <section aria-labelledby="ds-version-title">
              <h2 id="ds-version-title">Version {current.version}</h2>
              {current.description && <p>{current.description}</p>}
              <p class="muted">
                {groupDigits(current.facts)} facts, {formatBytes(current.bytes)}; hash <code>{current.hash}</code>
              </p>
              <DatasetFacts
                key={current.version}
                api={api}
                selector={`${name}@${current.version}`}
                predicates={current.predicates}
              />
            </section>
          )}
        </>
      )}
      <section aria-labelledby="ds-uses-title">
        <h2 id="ds-uses-title">Used by</h2>
        {uses.loading && <Spinner label="Loading the rulesets that bind it…" />}
        {uses.error !== null && <ErrorView error={uses.error} onRetry={uses.retry} />}
        {uses.data && uses.data.length === 0 && (
          <Empty>
            No ruleset version binds it. A program reads it with <code>%@dataset {name}: pred(type, …).</code>
          </Empty>
        )}
        {uses.data && uses.data.length > 0 && (
          <DatasetUses uses={uses.data} dataset={name} version={current?.version ?? null} />
        )}
      </section>
    </main>
  );
}

/** ``version``: the dataset version shown, whose impact on each binding ruleset is offered
 * ("same rules, new data": the decisions re-run with it instead of the version they read). */
export function DatasetUses({
  uses,
  dataset,
  version,
}: {
  uses: DatasetUse[];
  dataset: string;
  version: number | null;
}) {
  return (
    <div class="table-scroll">
      <table data-testid="dataset-uses">
        <thead>
          <tr>
            <th scope="col">Ruleset version</th>
            <th scope="col">Binding</th>
            <th scope="col">Selector</th>
            {version !== null && <th scope="col">Impact</th>}
          </tr>
        </thead>
        <tbody>
          {uses.map((u) => (
            <tr key={`${u.name}@${u.version}/${u.binding}`}>
              <td>
                <a href={`/rulesets/${encodeURIComponent(u.name)}`}>
                  {u.name} v{u.version}
                </a>
              </td>
              <td>{u.binding}</td>
              <td>
                <code>{u.selector}</code>
              </td>
              {version !== null && (
                <td>
                  <a href={impactHref(u, dataset, version)}>
                    Impact of v{version} on {u.name} v{u.version}
                  </a>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function VersionSelect({
  id,
  versions,
  value,
  onChange,
}: {
  id: string;
  versions: DatasetVersion[];
  value: number | "";
  onChange: (v: number | "") => void;
}) {
  return (
    <select
      id={id}
      value={value}
      onChange={(e) => {
        const v = (e.target as HTMLSelectElement).value;
        onChange(v === "" ? "" : Number(v));
      }}
    >
      <option value="">version…</option>
      {versions.map((v) => (
        <option key={v.version} value={v.version}>
          v{v.version}
        </option>
      ))}
    </select>
  );
}

/** The Impact page filled in: the binding ruleset version's decisions re-run with ``dataset@version``. */
export function impactHref(use: DatasetUse, dataset: string, version: number): string {
  const params = new URLSearchParams({
    ruleset: use.name,
    version: String(use.version),
    datasets: `${use.binding}=${dataset}@${version}`,
  });
  return `/impact?${params}`;
}
