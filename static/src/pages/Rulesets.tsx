/** The tenant's rulesets; one ruleset's versions, source and a diff of two versions. */

import { useEffect, useState } from "preact/hooks";
import type { RulesetSummary, RulesetVersion } from "../api/types";
import { RulesetTests } from "../components/RulesetTests";
import { Empty, ErrorView, Spinner } from "../components/Status";
import { TextDiff } from "../components/TextDiff";
import { useSession } from "../context";
import { EXAMPLES } from "../examples";
import { datasetHref, navigate } from "../router";
import { saveDraft } from "../session";

/** Load with retry: ``load`` runs on mount and on every ``deps`` change. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<{ data: T | null; error: unknown; loading: boolean }>({
    data: null,
    error: null,
    loading: true,
  });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true, error: null }));
    load().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error) => live && setState({ data: null, error, loading: false }),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, n]);
  return { ...state, retry: () => setN(n + 1) };
}

export function Rulesets() {
  const { api } = useSession();
  const { data, error, loading, retry } = useLoad(() => api.rulesets(), []);
  return (
    <main id="main">
      <h1>Rulesets</h1>
      {loading && <Spinner label="Loading rulesets…" />}
      {error !== null && <ErrorView error={error} onRetry={retry} />}
      {data && data.length === 0 && (
        <Empty>
          No rulesets yet. Write one in the <a href="/playground">playground</a> and publish it.
        </Empty>
      )}
      {data && data.length > 0 && (
        <div class="table-scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Latest</th>
                <th scope="col">Tags</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {data.map((r) => (
                <tr key={r.name}>
                  <td>
                    <a href={`/rulesets/${encodeURIComponent(r.name)}`}>{r.name}</a>
                  </td>
                  <td>v{r.latest}</td>
                  <td>
                    {Object.entries(r.tags)
                      .map(([t, v]) => `${t}→v${v}`)
                      .join(", ") || "—"}
                  </td>
                  <td>{formatTime(r.updated_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </main>
  );
}

export function RulesetPage({ name }: { name: string }) {
  const { api, identity } = useSession();
  const canAuthor = identity.scopes.includes("author") || identity.scopes.includes("admin");
  const summary = useLoad<RulesetSummary>(() => api.ruleset(name), [name]);
  const versions = summary.data?.versions ?? [];
  const [shown, setShown] = useState<number | null>(null);
  const [compare, setCompare] = useState<{ a: number; b: number } | null>(null);
  const latest = summary.data?.latest ?? null;
  const current = shown ?? latest;
  const source = useLoad<RulesetVersion | null>(
    () => (current === null ? Promise.resolve(null) : api.version(name, current)),
    [name, current],
  );
  const left = useLoad<[RulesetVersion, RulesetVersion] | null>(
    () => (compare ? Promise.all([api.version(name, compare.a), api.version(name, compare.b)]) : Promise.resolve(null)),
    [name, compare?.a, compare?.b],
  );
  const [a, setA] = useState<number | "">("");
  const [b, setB] = useState<number | "">("");
  const [tag, setTag] = useState("prod");
  const [tagVersion, setTagVersion] = useState<number | "">("");
  const [tagError, setTagError] = useState<unknown>(null);
  const [tagMoved, setTagMoved] = useState<string | null>(null);

  async function moveTag(event: Event) {
    event.preventDefault();
    if (tagVersion === "") return;
    setTagError(null);
    setTagMoved(null);
    try {
      const move = await api.moveTag(name, tag.trim(), tagVersion);
      setTagMoved(`${move.tag} → v${move.version}${move.previous ? ` (was v${move.previous})` : ""}`);
      summary.retry();
    } catch (e) {
      setTagError(e);
    }
  }

  function openInPlayground(v: RulesetVersion) {
    saveDraft("source", v.source ?? "");
    saveDraft("name", v.name);
    saveDraft("origin", `${v.name} v${v.version}`);
    // the version's dataset bindings become the playground's choice
    saveDraft("datasets", v.datasets ?? {});
    // the cases that go with it: the bundled example's own test case when the
    // ruleset is an example, else an empty case (never another example's facts)
    const example = EXAMPLES.find((e) => e.name === v.name);
    saveDraft("facts", example ? example.facts : "{}");
    saveDraft("queries", example ? example.queries : [""]);
    navigate("/playground");
  }

  return (
    <main id="main">
      <p>
        <a href="/rulesets">← Rulesets</a>
      </p>
      <h1>{name}</h1>
      {summary.loading && <Spinner label="Loading versions…" />}
      {summary.error !== null && <ErrorView error={summary.error} onRetry={summary.retry} />}
      {summary.data && (
        <>
          <div class="table-scroll">
            <table>
              <caption>Versions</caption>
              <thead>
                <tr>
                  <th scope="col">Version</th>
                  <th scope="col">Published</th>
                  <th scope="col">By</th>
                  <th scope="col">Tests</th>
                  <th scope="col">Tags</th>
                  <th scope="col">Hash</th>
                  <th scope="col">Source</th>
                </tr>
              </thead>
              <tbody>
                {[...versions].reverse().map((v) => (
                  <tr key={v.version} class={v.version === current ? "selected" : ""}>
                    <td>v{v.version}</td>
                    <td>{formatTime(v.published_at)}</td>
                    <td>{v.published_by}</td>
                    <td>{v.tests}</td>
                    <td>{(v.tags ?? []).join(", ") || "—"}</td>
                    <td>
                      <code>{v.hash.slice(0, 12)}</code>
                    </td>
                    <td>
                      <button type="button" aria-pressed={v.version === current} onClick={() => setShown(v.version)}>
                        View v{v.version}
                      </button>{" "}
                      <a href={`/impact?ruleset=${encodeURIComponent(name)}&version=${v.version}`}>
                        Impact of v{v.version} vs prod
                      </a>
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
              if (a !== "" && b !== "") setCompare({ a, b });
            }}
          >
            <label for="diff-a">Compare</label>
            <VersionSelect id="diff-a" versions={versions} value={a} onChange={setA} />
            <label for="diff-b">with</label>
            <VersionSelect id="diff-b" versions={versions} value={b} onChange={setB} />
            <button type="submit" disabled={a === "" || b === ""}>
              Show diff
            </button>
          </form>
          {canAuthor && (
            <form class="inline-form" onSubmit={moveTag}>
              <label for="tag-name">Tag</label>
              <input
                id="tag-name"
                value={tag}
                required
                size={10}
                onInput={(e) => setTag((e.target as HTMLInputElement).value)}
              />
              <label for="tag-version">points at</label>
              <VersionSelect id="tag-version" versions={versions} value={tagVersion} onChange={setTagVersion} />
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
          {left.loading && compare && <Spinner label="Loading both versions…" />}
          {left.error !== null && <ErrorView error={left.error} onRetry={left.retry} />}
          {left.data && (
            <TextDiff
              before={left.data[0].source ?? ""}
              after={left.data[1].source ?? ""}
              label={`v${left.data[0].version} → v${left.data[1].version}`}
            />
          )}
          {source.error !== null && <ErrorView error={source.error} onRetry={source.retry} />}
          {source.data && (
            <section aria-label={`Source of version ${source.data.version}`}>
              <h2>
                Version {source.data.version}{" "}
                <button type="button" onClick={() => openInPlayground(source.data!)}>
                  Open in playground
                </button>
              </h2>
              {source.data.description && <p>{source.data.description}</p>}
              {Object.keys(source.data.datasets ?? {}).length > 0 && (
                <p data-testid="version-datasets">
                  Reads datasets:{" "}
                  {Object.entries(source.data.datasets ?? {}).map(([binding, selector], i) => (
                    <span key={binding}>
                      {i > 0 && ", "}
                      {binding} → <a href={datasetHref(selector.split("@")[0])}>{selector}</a>
                    </span>
                  ))}
                </p>
              )}
              <RulesetTests name={name} version={source.data.version} count={source.data.tests} />
              <pre class="source">
                {(source.data.source ?? "").split("\n").map((line, i) => (
                  <div key={i}>
                    <span class="ln">{i + 1}</span>
                    {line}
                  </div>
                ))}
              </pre>
            </section>
          )}
        </>
      )}
    </main>
  );
}

function VersionSelect({
  id,
  versions,
  value,
  onChange,
}: {
  id: string;
  versions: RulesetVersion[];
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

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}
