/** The audit trail: search decisions by time range, ruleset and status; one
 * decision with its proof and a Replay; the impact of a new version. */

import { useEffect, useRef, useState } from "preact/hooks";
import { type ApiClient, ApiError } from "../api/client";
import type { AuditPage, Decision, ImpactResult, ReplayResult } from "../api/types";
import { AnswersView } from "../components/Answers";
import { ImpactGroups } from "../components/ImpactDiff";
import { Empty, ErrorView, Progress, Spinner } from "../components/Status";
import { useSession } from "../context";
import { formatFacts } from "../editor/facts";
import { navigate } from "../router";
import { saveDraft } from "../session";
import { formatTime, useLoad } from "./Rulesets";

const HOUR = 3600_000;

/** <input type="datetime-local"> value for a time, in local time. */
export function toLocalInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

export function fromLocalInput(value: string): string {
  return new Date(value).toISOString();
}

interface Filters {
  start: string;
  end: string;
  ruleset: string;
  status: string;
}

export function Decisions() {
  const { api } = useSession();
  const [filters, setFilters] = useState<Filters>(() => ({
    start: toLocalInput(Date.now() - 24 * HOUR),
    end: "",
    ruleset: "",
    status: "",
  }));
  const [applied, setApplied] = useState(filters);
  const [live, setLive] = useState(true);
  const [pages, setPages] = useState<AuditPage[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const inFlight = useRef<AbortController | null>(null);
  const [moreError, setMoreError] = useState<unknown>(null);

  // The end of an open range ("until now") is fixed when a search starts: a page
  // token belongs to its time range, so "More" must ask with the same end.
  const rangeEnd = useRef<string>("");

  async function search(f: Filters, append?: string) {
    inFlight.current?.abort();
    // "until now" reaches a minute ahead so that what completes meanwhile is found
    if (!append) rangeEnd.current = f.end ? fromLocalInput(f.end) : new Date(Date.now() + 60_000).toISOString();
    const controller = new AbortController();
    inFlight.current = controller;
    setLoading(true);
    try {
      const page = await api.searchAudit(
        {
          start: fromLocalInput(f.start),
          end: rangeEnd.current,
          ruleset: f.ruleset.trim() || undefined,
          status: f.status || undefined,
          page_size: 50,
          page_token: append,
        },
        controller.signal,
      );
      setPages((old) => (append ? [...old, page] : [page]));
      setError(null);
      setMoreError(null);
    } catch (e) {
      if (!(e instanceof DOMException && e.name === "AbortError")) (append ? setMoreError : setError)(e);
    } finally {
      if (inFlight.current === controller) setLoading(false);
    }
  }

  useEffect(() => {
    search(applied);
    // live refresh replaces the list with the first page: not once the user paged on
    if (!live || applied.end) return;
    // live: re-run the search while the range is open-ended (no push channel exists for the audit trail)
    const timer = setInterval(() => {
      if (pagesRef.current.length <= 1) search(applied);
    }, 3000);
    return () => clearInterval(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [applied, live]);

  const pagesRef = useRef(pages);
  pagesRef.current = pages;
  const items = pages.flatMap((p) => p.items);
  const next = pages.at(-1)?.next_page_token ?? null;
  const set = (k: keyof Filters) => (e: Event) => setFilters({ ...filters, [k]: (e.target as HTMLInputElement).value });
  return (
    <main id="main">
      <h1>Decisions</h1>
      <form
        class="filters"
        role="search"
        aria-label="Find a decision by id"
        onSubmit={(e) => {
          e.preventDefault();
          const id = new FormData(e.target as HTMLFormElement).get("decision-id")?.toString().trim();
          if (id) navigate(`/decisions/${encodeURIComponent(id)}`);
        }}
      >
        <label>
          Decision id <input name="decision-id" placeholder="dec_…" spellcheck={false} />
        </label>
        <button type="submit">Open</button>
      </form>
      <form
        class="filters"
        role="search"
        aria-label="Search the audit trail"
        onSubmit={(e) => {
          e.preventDefault();
          setPages([]);
          setApplied({ ...filters });
        }}
      >
        <label>
          From <input type="datetime-local" value={filters.start} onInput={set("start")} required />
        </label>
        <label>
          Until <input type="datetime-local" value={filters.end} onInput={set("end")} aria-describedby="until-hint" />
          <span id="until-hint" class="muted">empty: now</span>
        </label>
        <label>
          Ruleset <input value={filters.ruleset} onInput={set("ruleset")} placeholder="any" />
        </label>
        <label>
          Status{" "}
          <select value={filters.status} onChange={set("status")}>
            <option value="">any</option>
            <option value="succeeded">succeeded</option>
            <option value="failed">failed</option>
          </select>
        </label>
        <button type="submit">Search</button>
        <label class="inline">
          <input type="checkbox" checked={live} onChange={(e) => setLive((e.target as HTMLInputElement).checked)} /> Live
        </label>
      </form>
      {error !== null && <ErrorView error={error} onRetry={() => search(applied)} />}
      {loading && items.length === 0 && <Spinner label="Searching the audit trail…" />}
      {!loading && error === null && items.length === 0 && pages.length > 0 && (
        <Empty>No decisions in this range. Decisions appear here a moment after they complete.</Empty>
      )}
      {items.length > 0 && (
        <div class="table-scroll">
          <table data-testid="audit-table">
            <thead>
              <tr>
                <th scope="col">Completed</th>
                <th scope="col">Decision</th>
                <th scope="col">Ruleset</th>
                <th scope="col">Status</th>
                <th scope="col">Query</th>
              </tr>
            </thead>
            <tbody>
              {items.map((d) => (
                <tr key={d.decision_id}>
                  <td>{formatTime(d.completed_at)}</td>
                  <td>
                    <a href={`/decisions/${encodeURIComponent(d.decision_id)}`}>
                      <code>{d.decision_id}</code>
                    </a>
                  </td>
                  <td>
                    {d.ruleset?.name} v{d.ruleset?.version}
                  </td>
                  <td>
                    <span class={`status status-${d.status}`}>{d.status}</span>
                  </td>
                  <td>
                    <code>{(d.query ?? []).join("; ")}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {next && (
        <button type="button" onClick={() => search(applied, next)} disabled={loading}>
          More
        </button>
      )}
      {/* beside the button that failed, not at the top of a long page */}
      {moreError !== null && <ErrorView error={moreError} onRetry={() => next && search(applied, next)} />}
      {items.length > 0 && (
        <p class="muted" data-testid="audit-count">
          {items.length} decision{items.length === 1 ? "" : "s"} shown{next ? "; more with “More”" : ""}.
        </p>
      )}
    </main>
  );
}

export function DecisionPage({ id, fresh = false }: { id: string; fresh?: boolean }) {
  const { api, identity } = useSession();
  const [live, setLive] = useState<Decision | null>(null);
  const canDecide = identity.scopes.includes("decide") || identity.scopes.includes("admin");
  // A decision just made (?fresh) may not be in the audit trail yet: follow it over
  // SSE, then wait for the audit search to list it, instead of asking for it by id
  // and meeting 404s while the audit sink catches up.
  const audited = useLoad<Decision | null>(
    () => (fresh && canDecide ? untilAudited(api, id, setLive) : api.audited(id)),
    [id, fresh],
  );
  const [replay, setReplay] = useState<ReplayResult | null>(null);
  const [replayError, setReplayError] = useState<unknown>(null);
  const [replaying, setReplaying] = useState<number | null>(null);

  async function doReplay() {
    setReplaying(Date.now());
    setReplayError(null);
    try {
      setReplay(await api.replay(id));
    } catch (e) {
      setReplayError(e);
    } finally {
      setReplaying(null);
    }
  }

  const d = audited.data ?? live;
  const [opening, setOpening] = useState<unknown>(null);

  /** This decision's case (facts and queries) with its ruleset version's source, as a playground draft. */
  async function openInPlayground(decision: Decision) {
    setOpening(null);
    try {
      const version = await api.version(decision.ruleset?.name ?? "", decision.ruleset?.version ?? 0);
      saveDraft("source", version.source ?? "");
      saveDraft("facts", formatFacts(decision.facts ?? {}));
      saveDraft("queries", decision.query ?? []);
      saveDraft("name", version.name);
      saveDraft("origin", `${version.name} v${version.version}`);
      navigate("/playground");
    } catch (e) {
      setOpening(e);
    }
  }
  return (
    <main id="main">
      <p>
        <a href="/decisions">← Decisions</a>
      </p>
      <h1>
        Decision <code>{id}</code>
      </h1>
      {audited.loading && (
        <Spinner label={live ? `Decision ${live.status}; waiting for the audit trail…` : "Loading the audit record…"} />
      )}
      {audited.error !== null && <ErrorView error={audited.error} onRetry={audited.retry} />}
      {d && (
        <>
          <dl class="facts-list">
            <dt>Status</dt>
            <dd>
              <span class={`status status-${d.status}`}>{d.status}</span>
            </dd>
            <dt>Ruleset</dt>
            <dd>
              <a href={`/rulesets/${encodeURIComponent(d.ruleset?.name ?? "")}`}>
                {d.ruleset?.name} v{d.ruleset?.version}
              </a>{" "}
              <code>{d.ruleset?.hash.slice(0, 12)}</code>
            </dd>
            <dt>Submitted / completed</dt>
            <dd>
              {formatTime(d.submitted_at)} / {formatTime(d.completed_at)}
            </dd>
            <dt>Result hash</dt>
            <dd>
              <code>{d.result_hash ?? "—"}</code>
            </dd>
          </dl>
          <p>
            <button type="button" onClick={() => openInPlayground(d)} disabled={!d.ruleset}>
              Open this case in the playground
            </button>{" "}
            <a href={`/rulesets/${encodeURIComponent(d.ruleset?.name ?? "")}`}>Ruleset source and versions</a>
          </p>
          {opening !== null && <ErrorView error={opening} />}
          {d.error && (
            <div class="alert alert-error" role="alert">
              <strong>{d.error.code}</strong>: {d.error.message}
            </div>
          )}
          {audited.data && (
            <section aria-labelledby="replay-title">
              <h2 id="replay-title">Replay</h2>
              <p class="muted">Re-run the stored facts and queries with the stored ruleset version.</p>
              <button type="button" onClick={doReplay} disabled={replaying !== null}>
                Replay
              </button>
              {replaying !== null && <Progress label="Replaying…" since={replaying} />}
              {replayError !== null && <ErrorView error={replayError} />}
              {replay && <ReplayView replay={replay} />}
            </section>
          )}
          <h2>Case facts</h2>
          <h2>Queries</h2>
          <ul data-testid="decision-queries">
            {(d.query ?? []).map((q) => (
              <li key={q}>
                <code>{q}</code>
              </li>
            ))}
          </ul>
          <pre class="json" tabIndex={0} aria-label="Case facts (JSON)">
            {formatFacts(d.facts ?? {})}
          </pre>
          <h2>Answers</h2>
          {d.answers ? <AnswersView answers={d.answers} /> : <Empty>No answers.</Empty>}
        </>
      )}
    </main>
  );
}

export function ReplayView({ replay }: { replay: ReplayResult }) {
  if (replay.identical) {
    return (
      <div class="alert alert-ok" role="status" data-testid="replay-result">
        <strong>Identical.</strong> The replay gives the same answers (result hash{" "}
        <code>{replay.replay_result_hash.slice(0, 16)}</code>).
      </div>
    );
  }
  return (
    <div class="alert alert-error" role="status" data-testid="replay-result">
      <strong>Different.</strong> Original <code>{replay.original_result_hash?.slice(0, 16) ?? "—"}</code>, replay{" "}
      <code>{replay.replay_result_hash.slice(0, 16)}</code>.
      {replay.diff.map((q) => (
        <div key={q.query}>
          <code>{q.query}</code>
          <ul>
            {q.added.map((a) => (
              <li key={a} class="diff-added">
                + {a}
              </li>
            ))}
            {q.removed.map((a) => (
              <li key={a} class="diff-removed">
                − {a}
              </li>
            ))}
          </ul>
        </div>
      ))}
    </div>
  );
}

export function Impact() {
  const { api } = useSession();
  // ?ruleset=&version= (the "Impact vs prod" link of a version row) fill the form
  const params = new URLSearchParams(location.search);
  const [form, setForm] = useState(() => ({
    ruleset: params.get("ruleset") ?? "loan",
    version: params.get("version") ?? "latest",
    start: toLocalInput(Date.now() - 7 * 24 * HOUR),
    end: toLocalInput(Date.now() + 60_000),
    limit: 1000,
  }));
  const [result, setResult] = useState<ImpactResult | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [since, setSince] = useState<number | null>(null);
  const [progress, setProgress] = useState<{ done: number; total: number } | null>(null);
  const set = (k: keyof typeof form) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value });

  async function run(event?: Event) {
    event?.preventDefault();
    setSince(Date.now());
    setError(null);
    setResult(null);
    setProgress(null);
    try {
      // the API runs impact as a job: start it, then follow its progress to the result
      setResult(
        await api.impact(
          form.ruleset.trim(),
          {
            version: String(form.version).trim(),
            start: fromLocalInput(form.start),
            end: fromLocalInput(form.end),
            limit: Number(form.limit),
          },
          (job) => setProgress(job.progress),
        ),
      );
    } catch (e) {
      setError(e);
    } finally {
      setSince(null);
    }
  }

  return (
    <main id="main">
      <h1>Impact of a version</h1>
      <p class="muted">
        Re-run the succeeded decisions of a time window with another version of their ruleset: which answers would
        change, and which rules make the difference.
      </p>
      <form class="filters" onSubmit={run}>
        <label>
          Ruleset <input value={form.ruleset} onInput={set("ruleset")} required />
        </label>
        <label>
          Candidate version <input value={form.version} onInput={set("version")} required placeholder="3, prod or latest" />
        </label>
        <label>
          From <input type="datetime-local" value={form.start} onInput={set("start")} required />
        </label>
        <label>
          Until <input type="datetime-local" value={form.end} onInput={set("end")} required />
        </label>
        <label>
          At most <input type="number" min={1} max={10000} value={form.limit} onInput={set("limit")} /> decisions
        </label>
        <button type="submit" disabled={since !== null}>
          Compute impact
        </button>
      </form>
      {since !== null && (
        <Progress
          label={
            progress && progress.total > 0
              ? `Re-running decisions… ${progress.done} of ${progress.total}`
              : "Re-running decisions…"
          }
          since={since}
        />
      )}
      {error !== null && <ErrorView error={error} onRetry={() => run()} />}
      {result && (
        <section aria-label="Impact">
          <p role="status">
            Version {result.candidate.version} of <strong>{result.ruleset}</strong> over {result.decisions} decision
            {result.decisions === 1 ? "" : "s"}: <strong>{result.changed} changed</strong>, {result.unchanged} unchanged
            {result.not_replayable ? `, ${result.not_replayable} not replayable (masked inputs)` : ""}
            {result.failed ? `, ${result.failed} could not be re-run (see below)` : ""}
            {result.truncated ? "; more decisions were in the window than the limit" : ""}.
          </p>
          {result.failures && result.failures.length > 0 && (
            <ul aria-label="Re-runs that failed">
              {result.failures.map((f) => (
                <li key={f.decision_id}>
                  <code>{f.decision_id}</code>: {f.code} — {f.detail}
                </li>
              ))}
            </ul>
          )}
          {result.changes.some((c) => c.version === result.candidate.version) && (
            <p class="alert alert-rate" role="status" data-testid="same-version">
              Some of these decisions were made with version {result.candidate.version} itself: comparing a version with
              itself shows no change for them. Pick another candidate version.
            </p>
          )}
          {result.changes.length === 0 ? (
            <Empty>No decision would change.</Empty>
          ) : (
            <ImpactGroups result={result} />
          )}
          {result.changes.length > 0 && (
            <details>
            <summary>Every changed decision, answer by answer</summary>
            <div class="table-scroll">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Decision</th>
                    <th scope="col">Was</th>
                    <th scope="col">Would be</th>
                    <th scope="col">Rules that differ</th>
                  </tr>
                </thead>
                <tbody>
                  {result.changes.map((c) => (
                    <tr key={c.decision_id}>
                      <td>
                        <a href={`/decisions/${encodeURIComponent(c.decision_id)}`}>
                          <code>{c.decision_id}</code>
                        </a>{" "}
                        (v{c.version})
                      </td>
                      <td>{atoms(c.old_answers)}</td>
                      <td>{atoms(c.new_answers)}</td>
                      <td>
                        {c.rules_differ.map((r) => (
                          <code key={r} class="block">
                            {r}
                          </code>
                        ))}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            </details>
          )}
        </section>
      )}
    </main>
  );
}

function atoms(answers: { answers: { atom: string }[] }[]) {
  const all = answers.flatMap((q) => q.answers.map((a) => a.atom));
  return all.length ? all.map((a) => <code key={a} class="block">{a}</code>) : <span class="muted">none</span>;
}


/** How long the page follows a decision that does not finish before it stops
 * waiting and says so (a stuck decision must not leave a spinner forever). */
export const FOLLOW_LIMIT_MS = 60_000;

async function followBounded(api: ApiClient, id: string, onLive: (d: Decision) => void): Promise<Decision> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FOLLOW_LIMIT_MS);
  try {
    return await api.follow(id, onLive, controller.signal);
  } catch (e) {
    if (e instanceof DOMException && e.name === "AbortError") {
      throw new ApiError(
        { status: 504, title: "Still not finished", detail: `decision ${id} has not finished after ${FOLLOW_LIMIT_MS / 1000} s; it may have failed on the worker. Retry to look again.` },
        null,
      );
    }
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** Follow a fresh decision to its end, then poll the audit search around its
 * completion time until the audit sink has written it (about a second locally). */
async function untilAudited(api: ApiClient, id: string, onLive: (d: Decision) => void): Promise<Decision> {
  let done = await api.decision(id);
  onLive(done);
  if (done.status !== "succeeded" && done.status !== "failed") done = await followBounded(api, id, onLive);
  // a failed decision is final: show it now rather than wait for its audit record
  if (done.status === "failed") return done;
  const completed = Date.parse(done.completed_at ?? new Date().toISOString());
  for (let attempt = 0; attempt < 60; attempt++) {
    const page = await api.searchAudit({
      start: new Date(completed - 1000).toISOString(),
      end: new Date(completed + 1000).toISOString(),
      ruleset: done.ruleset?.name,
      page_size: 1000,
    });
    const found = page.items.find((item) => item.decision_id === id);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new ApiError({ status: 404, title: "Not in the audit trail", detail: `decision ${id} completed but has not reached the audit trail after 30 s; is the audit sink running?` }, null);
}
