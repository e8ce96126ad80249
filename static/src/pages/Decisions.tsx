/** The audit trail: search decisions by time range, ruleset and status. */

import { useEffect, useRef, useState } from "preact/hooks";
import type { AuditPage } from "../api/types";
import { Empty, ErrorView, Spinner } from "../components/Status";
import { useSession } from "../context";
import { navigate } from "../router";
import { outcomeOf } from "./outcome";
import { formatTime } from "./Rulesets";
import { fromLocalInput, HOUR, toLocalInput } from "./timeRange";

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
      <p class="muted">
        To find the decisions that used a case fact, a rule or a reason code, see <a href="/provenance">Provenance</a>.
      </p>
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
          <span id="until-hint" class="muted">
            empty: now
          </span>
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
          <input type="checkbox" checked={live} onChange={(e) => setLive((e.target as HTMLInputElement).checked)} />{" "}
          Live
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
                <th scope="col">Outcome</th>
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
                  <td class="outcome" data-testid="outcome">
                    {outcomeOf(d)}
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
