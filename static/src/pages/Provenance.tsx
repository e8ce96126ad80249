/** Reverse provenance (issue 18 §3): which decisions of a time window used a rule
 * of a ruleset version, used a base fact, or cited a reason code, with links to
 * them and to the impact of a fixed version over the same window. */

import { useRef, useState } from "preact/hooks";
import * as ops from "../api/operations";
import { Empty, ErrorView, Spinner } from "../components/Status";
import { useSession } from "../context";
import { focusHeading } from "../focus";
import { formatTime } from "./Rulesets";
import { fromLocalInput, HOUR, toLocalInput } from "./timeRange";

/** One matching decision, as GET /v1/audit/provenance lists it. */
export interface ProvenanceItem {
  decision_id: string;
  completed_at: string;
  ruleset: { name: string; version: number };
  status: string;
  result_hash?: string | null;
  /** null: the decision was made without proofs, so which rules it used is not known */
  rule_ids?: number[] | null;
  reason_codes?: string[] | null;
  engine_version?: string | null;
}

interface ProvenancePage {
  items: ProvenanceItem[];
  next_page_token: string | null;
}

export interface ProvenanceForm {
  start: string;
  end: string;
  ruleset: string;
  version: string;
  rule: string;
  fact: string;
  reasonCode: string;
}

/** The API's query for a form (empty fields left out; times in UTC). */
export function provenanceQuery(f: ProvenanceForm): Parameters<typeof ops.provenance>[1] {
  const text = (v: string) => v.trim() || undefined;
  const int = (v: string) => (v.trim() === "" ? undefined : Number(v));
  return {
    start: fromLocalInput(f.start),
    end: fromLocalInput(f.end),
    ruleset: text(f.ruleset),
    version: int(f.version),
    rule: int(f.rule),
    fact: text(f.fact),
    reason_code: text(f.reasonCode),
  };
}

/** The impact page for a fixed version of the ruleset over the same window. */
export function fixLink(f: ProvenanceForm): string | null {
  if (!f.ruleset.trim()) return null;
  const q = new URLSearchParams({ ruleset: f.ruleset.trim(), version: "latest", start: f.start, end: f.end });
  return `/impact?${q}`;
}

/** A token list as a short text; null (no proofs stored) says so. */
export function tokens(value: (string | number)[] | null | undefined): string {
  if (value === null || value === undefined) return "not known (no proofs)";
  return value.length ? value.join(", ") : "none";
}

export function Provenance() {
  const { api } = useSession();
  const params = new URLSearchParams(location.search);
  const [form, setForm] = useState<ProvenanceForm>(() => ({
    start: toLocalInput(Date.now() - 7 * 24 * HOUR),
    end: toLocalInput(Date.now() + 60_000),
    ruleset: params.get("ruleset") ?? "",
    version: params.get("version") ?? "",
    rule: params.get("rule") ?? "",
    fact: params.get("fact") ?? "",
    reasonCode: params.get("reason_code") ?? "",
  }));
  const [applied, setApplied] = useState<ProvenanceForm | null>(null);
  const [pages, setPages] = useState<ProvenancePage[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const inFlight = useRef<AbortController | null>(null);
  const set = (k: keyof ProvenanceForm) => (e: Event) =>
    setForm({ ...form, [k]: (e.target as HTMLInputElement).value });

  async function search(f: ProvenanceForm, token?: string) {
    inFlight.current?.abort();
    const controller = new AbortController();
    inFlight.current = controller;
    setLoading(true);
    setError(null);
    try {
      const page = await ops.provenance<ProvenancePage>(
        api,
        { ...provenanceQuery(f), page_size: 100, page_token: token },
        controller.signal,
      );
      setPages((old) => (token ? [...old, page] : [page]));
      if (!token) setTimeout(() => focusHeading("#provenance-results"), 0);
    } catch (e) {
      if (!(e instanceof DOMException && e.name === "AbortError")) setError(e);
    } finally {
      if (inFlight.current === controller) setLoading(false);
    }
  }

  const items = pages.flatMap((p) => p.items);
  const next = pages.at(-1)?.next_page_token ?? null;
  const fix = applied ? fixLink(applied) : null;
  return (
    <main id="main">
      <h1>Provenance</h1>
      <p class="muted">
        Which decisions used a rule of a ruleset version, used a base fact, or cited a reason code — for example to find
        every decision a wrong rule made. Criteria combine (all must hold); at least one of rule, fact or reason code is
        needed.
      </p>
      <form
        class="filters"
        role="search"
        aria-label="Search provenance"
        onSubmit={(e) => {
          e.preventDefault();
          setPages([]);
          setApplied({ ...form });
          search(form);
        }}
      >
        <label>
          From <input type="datetime-local" value={form.start} onInput={set("start")} required />
        </label>
        <label>
          Until <input type="datetime-local" value={form.end} onInput={set("end")} required />
        </label>
        <label>
          Ruleset <input value={form.ruleset} onInput={set("ruleset")} placeholder="any" spellcheck={false} />
        </label>
        <label>
          Version <input type="number" min={1} value={form.version} onInput={set("version")} placeholder="any" />
        </label>
        <label>
          Rule{" "}
          <input
            type="number"
            min={0}
            value={form.rule}
            onInput={set("rule")}
            aria-describedby="rule-hint"
            placeholder="index"
          />
        </label>
        <span id="rule-hint" class="muted">
          rule: its index in the version (a proof's rule index); needs ruleset and version
        </span>
        <label>
          Base fact{" "}
          <input
            value={form.fact}
            onInput={set("fact")}
            placeholder='income("ann",5200000,"salary")'
            spellcheck={false}
            aria-describedby="fact-hint"
          />
        </label>
        <span id="fact-hint" class="muted">
          base fact: as clingo prints it, or its hash
        </span>
        <label>
          Reason code <input value={form.reasonCode} onInput={set("reasonCode")} spellcheck={false} />
        </label>
        <button type="submit">Search</button>
      </form>
      {error !== null && <ErrorView error={error} onRetry={() => applied && search(applied)} />}
      {loading && items.length === 0 && <Spinner label="Searching provenance…" />}
      {applied && pages.length > 0 && (
        <section aria-labelledby="provenance-results">
          <h2 id="provenance-results">
            {items.length} decision{items.length === 1 ? "" : "s"}
            {next ? " so far" : ""}
          </h2>
          {items.length === 0 ? (
            <Empty>No decision in this window matches.</Empty>
          ) : (
            <div class="table-scroll">
              <table data-testid="provenance-table">
                <thead>
                  <tr>
                    <th scope="col">Completed</th>
                    <th scope="col">Decision</th>
                    <th scope="col">Ruleset</th>
                    <th scope="col">Status</th>
                    <th scope="col">Reason codes</th>
                    <th scope="col">Rules used</th>
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
                        {d.ruleset.name} v{d.ruleset.version}
                      </td>
                      <td>
                        <span class={`status status-${d.status}`}>{d.status}</span>
                      </td>
                      <td>
                        <code>{tokens(d.reason_codes)}</code>
                      </td>
                      <td>
                        <code>{tokens(d.rule_ids)}</code>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {next && (
            <button type="button" onClick={() => applied && search(applied, next)} disabled={loading}>
              More
            </button>
          )}
          {fix && items.length > 0 && (
            <p>
              Fixed the rule? Publish the fix as a new version of <code>{applied.ruleset.trim()}</code>, then{" "}
              <a href={fix}>measure its impact over this window</a> (it re-runs the ruleset's decisions of the window
              with the latest version and lists those that change).
            </p>
          )}
        </section>
      )}
    </main>
  );
}
